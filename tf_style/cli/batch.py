"""stylize over many content images in one process: the network is built once, one bad image
is reported and skipped, and a re-run skips the results that exist."""

import glob
import os
import sys
import time

from .. import images, outputs
from ..config import INITS, check_inputs
from ..errors import TfStyleError
from . import app
from .options import config_from_flags

# Flags of a single run that a batch does not take.
SINGLE_RUN_FLAGS = ('checkpoint_dir', 'resume', 'save_every', 'labels', 'content_masks',
                    'style_masks', 'logdir', 'calibration_dir')


def init_setting(value: str):
    """--init as (the init option, the start image's file or None): a value that is not one of
    the modes is an image file."""
    if value in INITS and value != 'image':
        return value, None
    if not os.path.exists(value):
        modes = ', '.join(i for i in INITS if i != 'image')
        raise TfStyleError(f'--init={value}: not one of {modes}, and no such image file')
    return 'image', value


def expand(contents):
    """--content values as files: a directory gives its image files, a glob its matches."""
    files = []
    for value in contents:
        if os.path.isdir(value):
            found = sorted(os.path.join(value, n) for n in os.listdir(value)
                           if n.lower().endswith(images.IMAGE_EXTENSIONS))
        elif glob.has_magic(value):
            found = sorted(glob.glob(value))
        else:
            found = [value]
        if not found:
            raise TfStyleError(f'--content={value}: no image files there')
        files += found
    return files


def output_path(output_dir: str, content: str) -> str:
    return os.path.join(output_dir, os.path.splitext(os.path.basename(content))[0] + '.png')


def run(FLAGS, contents):
    given = [name for name in SINGLE_RUN_FLAGS if FLAGS[name].present]
    if given:
        raise TfStyleError(f'--{given[0]} is for one content image, not a batch')
    if not FLAGS.output_dir:
        raise TfStyleError('several --content images need --output_dir')
    outputs.check_writable(FLAGS.output_dir, what='output_dir', kind='dir')
    init, init_file = init_setting(FLAGS.init)
    config = config_from_flags(FLAGS, init=init)
    styles = [images.load_image(path) for path in FLAGS.style]
    init_image = images.load_image(init_file) if init_file else None
    check_inputs(config, styles, init_image=init_image)
    todo = [(content, output_path(FLAGS.output_dir, content)) for content in contents
            if FLAGS.overwrite or not os.path.exists(output_path(FLAGS.output_dir, content))]
    skipped = len(contents) - len(todo)
    outputs.plan_outputs(inputs=[*FLAGS.style, *contents, *([init_file] if init_file else [])],
                         overwrite=True, extra=[outputs.Planned('output_dir', out)
                                                for _, out in todo])
    if skipped:
        app.say(f'skipping {skipped} image(s) already in {FLAGS.output_dir} (--overwrite '
                'replaces them)')

    app.load_tensorflow()
    from ..network import build_extractor
    from ..transfer import stylize
    extractor = None if config.normalize_weights else build_extractor(config.weights,
                                                                        config.pooling)
    from ..optimize import CompiledSteps
    steps = CompiledSteps()  # images of one size share their compiled steps
    start, failed = time.perf_counter(), []
    for k, (content, out) in enumerate(todo, 1):
        app.say(f'[{k}/{len(todo)}] {content}')
        try:
            result = stylize(images.load_image(content), styles, config=config,
                             extractor=extractor, init_image=init_image, steps=steps)
            images.save_image(out, result.image)
        except TfStyleError as e:
            failed.append(content)
            app.tell(f'{content}: {app.flag_message(e)}')
            continue
        app.say(f'wrote {out} in {app.format_seconds(result.seconds)}, loss '
                f'{result.losses["total"]:.4g}')
    done = len(todo) - len(failed)
    app.say(f'wrote {done} of {len(todo)} image(s) to {FLAGS.output_dir} in '
            f'{app.format_seconds(time.perf_counter() - start)}' +
            (f'; failed: {", ".join(failed)}' if failed else ''))
    if failed:
        sys.exit(1)
