"""Images per hour three ways (separate processes, one batch, Apache Beam), and the exported
stylizer against stylize: the measurements behind `bin/benchmark --sections=pipelines`.

Every figure is the wall time of whole child processes, start-up included, as a user runs them.
Returns numbers; the benchmark command prints them. Asserts nothing.
"""

import glob
import os
import subprocess
import sys
import time
from typing import List, Sequence, Tuple

import numpy as np

from .. import images
from .reference import final_loss, tf_style_env

# A child process that serves the exported stylizer with TensorFlow alone (no tf_style import):
# argv: SavedModel directory, content PNG, output PNG. Prints the loss.
_SERVE = """
import sys
import numpy as np, tensorflow as tf
from PIL import Image
model = tf.saved_model.load(sys.argv[1])
content = np.asarray(Image.open(sys.argv[2]).convert('RGB'), np.float32)
out = model.signatures['serving_default'](content=tf.constant(content))
Image.fromarray(out['image'].numpy()).save(sys.argv[3])
print(f'loss {float(out["loss"]):.6g}')
"""


def content_set(example_paths: Sequence[str], out_dir: str, count: int, size: int) -> List[str]:
    """`count` different content images with a long side of `size` (PNG, in `out_dir`): the
    examples, then their mirror images, then crops, so no two are alike."""
    sources = [images.load_image(p) for p in example_paths]
    variants = [lambda a: a, lambda a: a[:, ::-1],
                lambda a: a[:, : a.shape[1] * 3 // 4], lambda a: a[:, a.shape[1] // 4:]]
    os.makedirs(out_dir, exist_ok=True)
    paths = []
    for k in range(count):
        source = sources[k % len(sources)]
        variant = variants[(k // len(sources)) % len(variants)]
        image = images.resize_long_side(np.ascontiguousarray(variant(source)), size)
        paths.append(os.path.join(out_dir, f'content_{k}.png'))
        images.save_image(paths[-1], np.clip(np.round(image), 0, 255).astype(np.uint8))
    return paths


def timed(argv: Sequence[str]) -> Tuple[float, str]:
    """(wall seconds, stdout) of a child `python ARGV...` that runs this process's tf_style."""
    start = time.perf_counter()
    done = subprocess.run([sys.executable, *argv], capture_output=True, text=True,
                          env=tf_style_env())
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        raise RuntimeError(f'{" ".join(argv[:3])} ... failed ({done.returncode}): '
                           f'{done.stderr.strip()[-2000:]}')
    return seconds, done.stdout


def separate_processes(contents, settings, out_dir) -> float:
    """Seconds for one `tf_style stylize` process per content image, one after another."""
    return sum(timed(['-m', 'tf_style', 'stylize', '--content', path, '--output',
                      os.path.join(out_dir, os.path.basename(path)), *settings])[0]
               for path in contents)


def one_batch(content_dir, settings, out_dir) -> float:
    """Seconds for one `tf_style stylize` process over every image in `content_dir`."""
    return timed(['-m', 'tf_style', 'stylize', '--content', content_dir, '--output_dir',
                  out_dir, *settings])[0]


def beam_direct(content_dir, settings, out_dir, workers: int) -> float:
    """Seconds for `tf_style stylize-beam` on the DirectRunner with `workers` processes."""
    return timed(['-m', 'tf_style', 'stylize-beam', '--input_pattern',
                  os.path.join(content_dir, '*.png'), '--output_dir', out_dir,
                  f'--direct_num_workers={workers}', '--direct_running_mode=multi_processing',
                  *settings])[0]


def exported_against_stylize(content, style, weights, iterations, work_dir):
    """((seconds, loss) of `tf_style stylize --init=content`, (seconds, loss) of a process that
    serves the fixed-style exported stylizer) on `content`, already at its working size. The
    export itself (once per style, offline) is not timed."""
    model = os.path.join(work_dir, 'stylizer')
    size = max(images.load_image(content).shape[:2])
    # The style at the size stylize gives it (style_scale 1: the content's long side).
    timed(['-m', 'tf_style', 'export-stylizer', f'--output_dir={model}', f'--style={style}',
           f'--style_size={size}', f'--weights={weights}', f'--iterations={iterations}'])
    ours = timed(['-m', 'tf_style', 'stylize', '--content', content, '--style', style,
                  '--output', os.path.join(work_dir, 'stylized.png'), f'--weights={weights}',
                  f'--image_size={size}', f'--iterations={iterations}', '--init=content',
                  '--precision=float32', '--scales=1', '--print_every=0'])
    served = timed(['-c', _SERVE, model, content, os.path.join(work_dir, 'served.png')])
    return (ours[0], final_loss(ours[1])), (served[0], final_loss(served[1]))


def outputs_in(directory: str) -> int:
    return len(glob.glob(os.path.join(directory, '*.png')))
