"""Measures temporal consistency (Ruder, Dosovitskiy & Brox, GCPR 2016) on small clips.

Stylizes one clip twice, frame by frame (temporal_weight 0: every frame from noise) and with the
temporal defaults (warped start + short-term temporal loss), and with --passes > 1 a third time
with the paper's multi-pass, and prints per way:

- warping error: mean |out_t - warp(out_t-1)| (0..255) where the mask c of the input frames is 1,
  averaged over the pairs of consecutive frames (stylize_video.warping_error);
- style loss: the unweighted style term of the later frames' results, averaged;
- iterations to reach: for each later frame of the temporal run, the first iteration whose
  content + style + tv loss (the temporal term left out) is at or below the final loss of the
  same frame stylized frame by frame; the median over the later frames.

  python -m tf_style.tools.video_benchmark --clip=pan --image_size=128 --frames=6 \
      --weights=/tmp/vgg19_hed.weights.h5 --strip=docs/video_strip.png
  python -m tf_style.tools.video_benchmark --clip=examples/shipwreck_zoom.gif ...
  python -m tf_style.tools.video_benchmark --make_clip=examples/shipwreck_zoom.gif

--clip=pan is a window panning across --pan_image (known motion); otherwise a clip file or
directory of frames. --make_clip renders the example clip (a slow zoom and rotation across
examples/shipwreck.jpg) and exits.
"""

import os
import statistics
import sys

import numpy as np
from absl import app, flags
from PIL import Image

from .. import images
from ..network import build_extractor
from ..video import io as clip_io
from ..video import stylize_video as sv
from .sheets import contact_sheet

EXAMPLES = os.path.join(os.path.dirname(__file__), '..', '..', 'examples')

FLAGS = flags.FLAGS
flags.DEFINE_string('clip', 'pan', "'pan' (a window panning across --pan_image) or a clip.")
flags.DEFINE_string('pan_image', os.path.join(EXAMPLES, 'tubingen.jpg'), 'Image to pan across.')
flags.DEFINE_string('style', os.path.join(EXAMPLES, 'starry_night.jpg'), 'Style image.')
flags.DEFINE_string('weights', 'random', 'Extractor weights (a .weights.h5 file or random).')
flags.DEFINE_integer('image_size', 128, 'Long side of the frames, pixels.')
flags.DEFINE_integer('frames', 6, 'Frames of the clip used.')
flags.DEFINE_integer('first_frame_iterations', sv.FIRST_FRAME_ITERATIONS,
                     'Iterations of the first frame (and of every frame, frame by frame).')
flags.DEFINE_integer('iterations', sv.LATER_FRAME_ITERATIONS,
                     'Iterations of each later frame with the temporal loss.')
flags.DEFINE_float('temporal_weight', sv.TEMPORAL_WEIGHT, 'The temporal run\'s weight.')
flags.DEFINE_integer('passes', 1, 'Also run multi-pass with this many passes (1: not).')
flags.DEFINE_integer('seed', 0, 'Seed of the noise start.')
flags.DEFINE_string('strip', None, 'Write a strip PNG: 4 consecutive frames each way.')
flags.DEFINE_string('make_clip', None, 'Render the example zoom/rotation clip here and exit.')


def panning_clip(image: np.ndarray, frames: int, size: int, step=(3, 1)):
    """`frames` windows of size x 3/4 size moving `step` (dx, dy) pixels per frame across
    `image` resized to twice `size`: a clip whose motion is known."""
    scene = images.resize_long_side(image, 2 * size)
    h, w = size * 3 // 4, size
    x0, y0 = (scene.shape[1] - w - step[0] * frames) // 2, (scene.shape[0] - h) // 3
    return [scene[y0 + step[1] * t:y0 + step[1] * t + h, x0 + step[0] * t:x0 + step[0] * t + w]
            for t in range(frames)]


def zoom_rotate_clip(image: np.ndarray, frames: int = 8, size=(96, 72), zoom: float = 0.015,
                     degrees: float = 0.6):
    """A slow zoom (`zoom` per frame) and rotation (`degrees` per frame) about the centre of
    `image`, each frame rendered at `size` (w, h) with a bicubic affine transform."""
    pil = Image.fromarray(images.to_uint8(images.resize_long_side(image, 2 * max(size))))
    cx, cy = pil.width / 2, pil.height / 2
    base = 1.5 * max(size) / pil.width  # the first frame shows 2/3 of the picture's width
    out = []
    for t in range(frames):
        scale, angle = base * (1 + zoom * t), np.deg2rad(degrees * t)
        c, s = np.cos(angle) / scale, np.sin(angle) / scale
        # Output (u, v) around its centre -> input (x, y) around the picture's centre.
        u0, v0 = size[0] / 2, size[1] / 2
        coefficients = (c, -s, cx - c * u0 + s * v0, s, c, cy - s * u0 - c * v0)
        out.append(np.asarray(pil.transform(size, Image.AFFINE, coefficients, Image.BICUBIC)))
    return out


def perceptual(losses, temporal_weight: float) -> float:
    """The loss without its temporal term: what frame by frame minimises."""
    return float(losses['total']) - temporal_weight * float(losses.get('temporal', 0.0))


def run_clip(frames, style, extractor, temporal_weight: float, first: int, later: int,
             image_size: int, seed: int, passes: int = 1):
    """Stylizes `frames`; returns (outputs, final losses, trajectories) of the last pass:
    trajectories[i] is [(updates, loss without the temporal term)] of frame i's run (first
    pass), one entry per iteration."""
    trajectories = {}

    def record(video_progress):
        p = video_progress.progress
        # opt.step() reports the losses of the image before its update: after iteration - 1.
        if video_progress.pass_number == 1:
            trajectories.setdefault(video_progress.frame, []).append(
                (p.iteration - 1, perceptual(p.losses, temporal_weight)))

    last = {r.index: r for r in sv.stylize_video_results(
        iter(frames), style, temporal_weight=temporal_weight, first_frame_iterations=first,
        iterations=later, extractor=extractor, image_size=image_size, seed=seed,
        callback=record, report_every=1, passes=passes)}
    results = [last[i] for i in range(len(frames))]
    return ([r.image for r in results], [r.result.losses for r in results],
            [trajectories.get(i, []) for i in range(len(results))])


def iterations_to_reach(trajectory, final_loss: float, final_updates: int, target: float):
    """First number of updates whose loss is <= target, or None if never reached."""
    for updates, loss in trajectory:
        if loss <= target:
            return updates
    return final_updates if final_loss <= target else None


def measure(frames, style, extractor, image_size, first, later, temporal_weight, seed,
            passes=1):
    """Each way on one clip: {way: dict of figures and 'outputs'}."""
    runs = {}
    ways = [('frame by frame', 0.0, first, 1), ('temporal', temporal_weight, later, 1)]
    if passes > 1:
        ways.append((f'{passes} passes', temporal_weight, later, passes))
    for way, weight, iterations, count in ways:
        outputs, losses, trajectories = run_clip(frames, style, extractor, weight, first,
                                                 iterations, image_size, seed, count)
        runs[way] = dict(outputs=outputs, losses=losses, trajectories=trajectories,
                         weight=weight, iterations=iterations,
                         error=float(np.mean(sv.warping_error(frames, outputs))),
                         style=float(np.mean([l['style'] for l in losses[1:]])),
                         loss=float(np.mean([perceptual(l, weight) for l in losses[1:]])))
    base, temporal = runs['frame by frame'], runs['temporal']
    reached = []
    for i in range(1, len(frames)):
        target = perceptual(base['losses'][i], 0.0)
        reached.append(iterations_to_reach(
            temporal['trajectories'][i], perceptual(temporal['losses'][i], temporal_weight),
            later, target))
    temporal['reached'] = reached
    return runs


def table(runs, first: int) -> str:
    base, temporal = runs['frame by frame'], runs['temporal']
    reached = temporal['reached']
    known = [r for r in reached if r is not None]
    median = (f'{statistics.median(known):g}' if len(known) == len(reached)
              else f'> {temporal["iterations"]} for {len(reached) - len(known)} of '
                   f'{len(reached)} frames')
    rows = ['| | frame by frame (temporal_weight=0) | temporal (temporal_weight='
            f'{temporal["weight"]:g}) | ratio |', '|---|---|---|---|',
            f'| warping error (0..255) | {base["error"]:.2f} | {temporal["error"]:.2f} | '
            f'{base["error"] / temporal["error"]:.2f}x lower |',
            f'| style loss, later frames | {base["style"]:.4g} | {temporal["style"]:.4g} | '
            f'{temporal["style"] / base["style"] - 1:+.1%} |',
            f'| iterations per later frame | {first} | {temporal["iterations"]} | |',
            f'| iterations to reach frame-by-frame loss (median) | {first} | {median} | |',
            f'| per later frame | | {", ".join("-" if r is None else str(r) for r in reached)} |'
            ' |']
    for way, run in runs.items():
        if way not in ('frame by frame', 'temporal'):
            rows += ['', f'| {way} (temporal_weight={run["weight"]:g}) | frame by frame | '
                     f'temporal (1 pass) | {way} |', '|---|---|---|---|']
            rows += [f'| {name} | {base[key]:.4g} | {temporal[key]:.4g} | {run[key]:.4g} |'
                     for name, key in (('warping error (0..255)', 'error'),
                                       ('style loss, later frames', 'style'),
                                       ('content + style loss, later frames', 'loss'))]
    return '\n'.join(rows)


def strip(runs, start: int = 1, count: int = 4) -> np.ndarray:
    """A row per way (frame by frame; temporal; multi-pass if run) of `count` consecutive
    output frames, captioned."""
    tiles = []
    for way, run in runs.items():
        outputs = run['outputs']
        tiles += [(f'{way}, frame {t + 1}', outputs[t]) for t in range(start, start + count)]
    height, width = runs['temporal']['outputs'][0].shape[:2]
    return contact_sheet(tiles, columns=count, tile_size=max(160, width, height))


def load_clip(path: str, count: int, image_size: int):
    frames = []
    for frame in clip_io.read_frames(path):
        frames.append(images.resize_long_side(frame, image_size))
        if len(frames) == count:
            break
    return frames


def main(argv):
    del argv
    if FLAGS.make_clip:
        shipwreck = images.load_image(os.path.join(EXAMPLES, 'shipwreck.jpg'))
        clip_io.write_clip(FLAGS.make_clip, zoom_rotate_clip(shipwreck), fps=8)
        print(f'wrote {FLAGS.make_clip}')
        return 0
    if FLAGS.clip == 'pan':
        frames = panning_clip(images.load_image(FLAGS.pan_image), FLAGS.frames, FLAGS.image_size)
    else:
        frames = load_clip(FLAGS.clip, FLAGS.frames, FLAGS.image_size)
    style = images.resize_long_side(images.load_image(FLAGS.style), FLAGS.image_size)
    extractor = build_extractor(FLAGS.weights)
    runs = measure(frames, style, extractor, FLAGS.image_size, FLAGS.first_frame_iterations,
                   FLAGS.iterations, FLAGS.temporal_weight, FLAGS.seed, FLAGS.passes)
    print(f'clip={FLAGS.clip} frames={len(frames)} size={frames[0].shape[1]}x'
          f'{frames[0].shape[0]} weights={FLAGS.weights}')
    print(table(runs, FLAGS.first_frame_iterations))
    if FLAGS.strip:
        images.save_image(FLAGS.strip, strip(runs))
        print(f'wrote {FLAGS.strip}')
    return 0


if __name__ == '__main__':
    sys.exit(app.run(main))
