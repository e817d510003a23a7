"""Renders a content image in the style of a painting (Gatys, Ecker & Bethge, CVPR 2016).

  tf-style stylize --content examples/tubingen.jpg --style examples/starry_night.jpg \
      --output tubingen_starry.png
  python bin/stylize --content examples/tubingen.jpg --style examples/starry_night.jpg \
      --style examples/the_scream.jpg --style_blend_weights=3,1 --preserve_colors=luminance

Defaults reproduce the paper: VGG19 with average pooling and ImageNet weights, content on conv4_2,
style on conv1_1 ... conv5_1, alpha/beta = 1e-3, white-noise start.
"""

import dataclasses
import json
import math
import os
import sys
import time

from absl import flags

from .. import images, masks, outputs
from ..config import INITS, INPUTS, NETWORK, PROGRESS, SPEED, START, check_inputs
from ..errors import TfStyleError
from . import app, batch, stopping
from .options import config_from_flags, define_config_flags, topic

INIT_MODES = [i for i in INITS if i != 'image']
# Options of the library that the command sets from other flags.
NOT_FLAGS = ('init',)


def define_flags(fv):
    # Grouped as --help lists them, by topic (the config's flags have theirs in config.py).
    with topic(fv, INPUTS):
        flags.DEFINE_multi_string('content', None, 'Content image (photo). Several (repeat the '
                                  'flag, or give a directory or a glob) stylize a batch in one '
                                  'process, into --output_dir.', required=True, flag_values=fv)
        flags.DEFINE_multi_string('style', None, 'Style image (painting); repeat the flag for '
                                  'several (blended, or one per mask region).', required=True,
                                  flag_values=fv)
        flags.DEFINE_string('output', 'out.png', 'Output image; format from the extension '
                            f'({", ".join(sorted(images.FORMATS))}).', flag_values=fv)
        flags.DEFINE_string('output_dir', None, 'Batch: where each content image\'s result goes, '
                            'named after it (.png); existing results are skipped unless '
                            '--overwrite.', flag_values=fv)
        flags.DEFINE_boolean('overwrite', False, 'Replace an existing --output.', flag_values=fv)
        flags.DEFINE_list('content_masks', None, 'Spatial control: one mask image per --style '
                          '(white: where that style goes); what no mask covers keeps the '
                          'content.', flag_values=fv)
        flags.DEFINE_list('style_masks', None, 'With --content_masks: one mask per --style '
                          '(white: the part of that style image to take the texture from).',
                          flag_values=fv)
        flags.DEFINE_string('labels', None, 'Spatial control from one label image instead of '
                            '--content_masks: its colours, darkest first, are the regions of '
                            '--style 1, 2, ...; further colours keep the content.', flag_values=fv)
    with topic(fv, START):
        flags.DEFINE_string('init', 'noise', 'Start image: ' + ', '.join(INIT_MODES) +
                            ' (see the init option), or an image FILE.', flag_values=fv)
    define_config_flags(fv, [n for n in _config_names() if n not in NOT_FLAGS])
    with topic(fv, NETWORK):
        flags.DEFINE_string('extractor', None, 'Use a SavedModel from export-extractor instead '
                            'of building VGG19 (--weights and --pooling are then unused).',
                            flag_values=fv)
        flags.DEFINE_string('calibration_dir', None, 'With --normalize_weights: more '
                            'calibration images (every image file in this directory).',
                            flag_values=fv)
    with topic(fv, SPEED):
        flags.DEFINE_integer('jobs', 0, 'Batch: images stylized at once, TensorFlow\'s threads '
                             'shared among them (0: one per CPU core, as many as fit in memory; '
                             '1 on a GPU). Results can differ in the last bits with the '
                             'threads.', lower_bound=0, flag_values=fv)
        flags.DEFINE_boolean('check_memory', True, 'Refuse an --image_size whose estimated '
                             'memory exceeds what this machine (or its GPU) has available, even '
                             'tiled.', flag_values=fv)
    with topic(fv, PROGRESS):
        flags.DEFINE_integer('print_every', 10, 'Progress every N iterations: a bar on a '
                             'terminal, a line otherwise; in a batch a line, "[k/n] iter ..." '
                             '(0: none).', flag_values=fv)
        flags.DEFINE_integer('save_every', 0, 'Also write the current image every N '
                             'iterations.', flag_values=fv)
        flags.DEFINE_string('save_pattern', '{stem}_{iteration:04d}{ext}',
                            'Names of the --save_every images: {stem} and {ext} of --output, '
                            '{iteration}; without a directory, beside --output.', flag_values=fv)
        flags.DEFINE_string('logdir', None, 'TensorBoard: loss scalars every --print_every, the '
                            'image every --save_every.', flag_values=fv)
        flags.DEFINE_string('checkpoint_dir', None, 'Save the run (image, optimizer state, '
                            'iteration) here every --checkpoint_every iterations and when '
                            'interrupted.', flag_values=fv)
        flags.DEFINE_integer('checkpoint_every', 100, 'Iterations between checkpoints.',
                             flag_values=fv)
        flags.DEFINE_boolean('resume', False, 'Continue the run saved in --checkpoint_dir (same '
                             'inputs and flags).', flag_values=fv)


def _config_names():
    from .options import CONFIG_FIELDS
    return list(CONFIG_FIELDS)


def main(FLAGS):
    contents = batch.expand(FLAGS.content)
    if len(contents) > 1 or FLAGS.output_dir or contents != FLAGS.content:
        return batch.run(FLAGS, contents, stopping.current())
    FLAGS.content = contents[0]
    stop = stopping.current()
    init, init_file = batch.init_setting(FLAGS.init)
    config = config_from_flags(FLAGS, init=init)
    if FLAGS.resume and not FLAGS.checkpoint_dir:
        raise TfStyleError('--resume needs --checkpoint_dir')
    preflight(FLAGS, config)
    content = images.load_image(FLAGS.content)
    plan = plan_outputs(FLAGS, config, content, init_file)
    styles = [images.load_image(path) for path in FLAGS.style]
    content_masks, style_masks = load_masks(FLAGS, content, styles)
    init_image = images.load_image(init_file) if init_file else None
    if FLAGS.extractor and FLAGS.normalize_weights:
        raise TfStyleError('--normalize_weights builds VGG19 from --weights; an --extractor is '
                           'used as exported (export one built from normalized weights: '
                           'convert-weights --normalize)')
    if FLAGS.calibration_dir and not FLAGS.normalize_weights:
        raise TfStyleError('--calibration_dir is for --normalize_weights, which is off')
    calibration = images.load_directory(FLAGS.calibration_dir) if FLAGS.calibration_dir else None
    check_inputs(config, styles, content_masks, style_masks, init_image, calibration)
    if FLAGS.check_memory:
        check_memory(config, content, styles)
    reporter = Reporter(FLAGS, plan)

    # Seconds to load before the first iteration, and that first iteration (targets, tracing)
    # slower than the others: say so at once.
    app.say('loading TensorFlow and VGG19 ...')
    app.load_tensorflow()  # only now that the inputs are known to be good
    if FLAGS.check_memory and gpu_present():
        check_memory(config, content, styles)  # again, against the GPU's memory
    from ..transfer import stylize
    extractor = None  # --normalize_weights: stylize builds it, normalized on the inputs
    if FLAGS.extractor:
        from ..export import load_extractor
        extractor = load_extractor(FLAGS.extractor)
    elif not config.normalize_weights:
        from ..network import build_extractor
        extractor = build_extractor(config.weights, config.pooling)
    checkpointer = None
    if FLAGS.checkpoint_dir:
        from ..checkpoint import Checkpointer
        checkpointer = Checkpointer(FLAGS.checkpoint_dir, FLAGS.checkpoint_every, FLAGS.resume)
    reporter.open()
    stop.begin('saving after this iteration or tile')
    # Every iteration, for a first progress line at the first (the Reporter shows the others
    # every --print_every).
    every = [n for n in (FLAGS.print_every, FLAGS.save_every) if n > 0]
    if FLAGS.print_every and not FLAGS.quiet:
        every.append(1)
    app.say('compiling and running the first iteration ...')
    result = stylize(content, styles, config=config, extractor=extractor, callback=reporter,
                     on_stage=reporter.stage,
                     report_every=math.gcd(*every) if every else 0, should_stop=stop,
                     checkpointer=checkpointer, content_masks=content_masks,
                     style_masks=style_masks, init_image=init_image,
                     calibration_images=calibration)
    reporter.done()

    settings = dict(dataclasses.asdict(result.config), seed=result.seed)
    images.save_image(FLAGS.output, result.image, metadata={
        'Software': 'tf_style', 'tf_style.settings': json.dumps(settings)})
    h, w = result.image.shape[:2]
    if not result.completed:
        where = f'; checkpoint in {FLAGS.checkpoint_dir} (--resume)' if checkpointer else ''
        app.tell(f'{result.stop_reason} at iteration {result.iterations}: wrote the latest '
                 f'image to {FLAGS.output}{where}')
        sys.exit(128 + stop.signal if stop.signal else 3)
    app.say(f'wrote {FLAGS.output} ({w}x{h}) in {app.format_total(result.seconds)}, '
            f'seed {result.seed}, loss {result.losses["total"]:.4g}')


def check_output(path, overwrite, inputs=()):
    """Fails before any work if image `path` cannot be written, is an input, or exists unasked."""
    outputs.plan_outputs(path, inputs=[p for p in inputs if p], overwrite=overwrite)


def preflight(FLAGS, config):
    """Weights, an extractor and TensorBoard, checked without TensorFlow."""
    from .. import preflight as checks
    if FLAGS.extractor:
        checks.check_saved_model(FLAGS.extractor)
    elif config.weights not in ('imagenet', 'random'):
        checks.check_weights(config.weights)
    checks.check_tensorboard(FLAGS.logdir)


def plan_outputs(FLAGS, config, content, init_file):
    """Every path the run writes (output, snapshots, checkpoints, logdir), checked now."""
    from .. import checkpoint
    inputs = [FLAGS.content, *FLAGS.style, *(FLAGS.content_masks or []), FLAGS.labels,
              *(FLAGS.style_masks or []), init_file, FLAGS.weights, FLAGS.calibration_dir]
    height, width = output_size(content, config.image_size)
    total = sum(n for _, n in config.schedule())
    return outputs.plan_outputs(
        FLAGS.output, inputs=[p for p in inputs if p and os.path.exists(p)],
        size=(height, width), overwrite=FLAGS.overwrite or FLAGS.resume,
        save_pattern=FLAGS.save_pattern if FLAGS.save_every else None,
        snapshot_iterations=outputs.snapshot_iterations(total, FLAGS.save_every),
        checkpoint_dir=FLAGS.checkpoint_dir, resume=FLAGS.resume,
        checkpoint_bytes=checkpoint.state_bytes(height, width, config.optimizer,
                                                config.lbfgs_history),
        logdir=FLAGS.logdir)


def output_size(image, long_side):
    h, w = image.shape[:2]
    scale = long_side / max(h, w)
    return max(1, round(h * scale)), max(1, round(w * scale))


def gpu_present() -> bool:
    from .. import memory
    return memory.gpu_available_bytes() is not None


def check_memory(config, content, styles):
    """Refuses, before any work, a run that cannot fit in memory: the optimisation at the final
    size (tiled when it must be, unless --tile_size=0), and each style image at its size."""
    from .. import memory
    height, width = output_size(content, config.image_size)
    sides = [max(1, round(max(height, width) * k)) for k in config.style_scales(len(styles))]
    memory.check_fits(height, width, config, [output_size(s, n) for s, n in zip(styles, sides)])
    if max(content.shape[:2]) < config.image_size / 4:  # once it fits: a refusal is one line
        app.note(f'the content image is {content.shape[1]}x{content.shape[0]}; upscaling it to '
                 f'{width}x{height}')


class Reporter:
    """Progress on stdout: a bar redrawn in place on a terminal, plain lines otherwise; snapshots
    and TensorBoard summaries. Tiled scales also show their passes over the tiles (`stage`)."""

    # Without a terminal, a stage line only after this many seconds without a line.
    STAGE_SECONDS = 60

    def __init__(self, FLAGS, plan, now=time.monotonic):
        self.flags = FLAGS
        self.plan = plan
        self.tty = sys.stdout.isatty()
        self.writer = None
        self.now = now
        self.last_line = now()
        self.unfinished_line = False  # on a terminal: a line being redrawn in place
        self.rate = ''  # the last progress line's rate and ETA
        self.shown = None  # (iteration, elapsed seconds) of the last progress line

    def open(self):
        if self.flags.logdir:
            import tensorflow as tf
            self.writer = tf.summary.create_file_writer(self.flags.logdir)

    def __call__(self, p):
        FLAGS = self.flags
        due = FLAGS.print_every and (p.iteration % FLAGS.print_every == 0 or
                                     p.iteration == p.iterations)
        if FLAGS.print_every and self.shown is None and p.iteration < p.iterations:
            # A line at once, at the first iteration. That iteration also computed the targets
            # and compiled the step: no rate or ETA from it.
            if due:
                self.log(p)
            self.show(p, f'first iteration {p.elapsed:.1f}s (compiling included)')
        elif due:
            self.progress(p)
        if FLAGS.save_every and p.iteration % FLAGS.save_every == 0:
            image = p.current_image()
            images.save_image(self.plan.snapshot_path(p.iteration), image)
            if self.writer:
                import tensorflow as tf
                with self.writer.as_default():
                    tf.summary.image('image', image[None] / 255.0, step=p.iteration)

    def progress(self, p):
        """A progress line, its rate since the last one, and TensorBoard's scalars."""
        self.log(p)
        iterations_per_second = p.iterations_per_second  # since the library's last report
        if self.shown is not None and p.iteration > self.shown[0]:
            iterations_per_second = (p.iteration - self.shown[0]) / max(
                p.elapsed - self.shown[1], 1e-9)
        self.rate = app.progress_rate(p, iterations_per_second)
        self.show(p, self.rate)

    def log(self, p):
        if self.writer:
            import tensorflow as tf
            with self.writer.as_default():
                for name, value in p.losses.items():
                    tf.summary.scalar(f'loss/{name}', value, step=p.iteration)
            self.writer.flush()

    def show(self, p, rate: str):
        self.shown = (p.iteration, p.elapsed)
        if self.flags.quiet:
            return
        text = app.progress_text(p, rate)
        if self.tty:
            app.say(f'\r{_bar(p.iteration, p.iterations)}  {text}\x1b[K',
                    end='' if p.iteration < p.iterations else '\n')
            self.unfinished_line = p.iteration < p.iterations
        else:
            app.say(f'iter {p.iteration}/{p.iterations}  {text}')
        self.last_line = self.now()

    def stage(self, s):
        """A tiled scale's pass over its tiles (transfer.Stage), between progress lines."""
        if self.flags.quiet or not self.flags.print_every:
            return
        text = f'{s.size[1]}x{s.size[0]}  {s.what}: {s.tile}/{s.tiles} tiles'
        if self.tty:
            app.say(f'\r{_bar(s.iteration, s.iterations)}  {text}  {self.rate}\x1b[K', end='')
            self.unfinished_line = True
        elif self.now() - self.last_line >= self.STAGE_SECONDS:
            app.say(f'iter {s.iteration}/{s.iterations}  {text}')
            self.last_line = self.now()

    def done(self):
        if self.unfinished_line and not self.flags.quiet:
            app.say('')
        if self.writer:
            self.writer.close()


def _bar(done: int, total: int) -> str:
    filled = round(20 * done / total)
    return f'[{"#" * filled}{"." * (20 - filled)}] {done}/{total}'


def load_masks(FLAGS, content, styles):
    """(content masks, style masks) from --content_masks/--labels and --style_masks."""
    if FLAGS.labels and FLAGS.content_masks:
        raise TfStyleError('give --content_masks or --labels, not both')
    content_masks = style_masks = None
    if FLAGS.labels:
        labels = images.load_image(FLAGS.labels)
        _check_aspect(FLAGS.labels, labels, FLAGS.content, content)
        content_masks = masks.masks_from_labels(labels, len(FLAGS.style))
    elif FLAGS.content_masks:
        content_masks = [masks.load_mask(path) for path in FLAGS.content_masks]
        for path, mask in zip(FLAGS.content_masks, content_masks):
            _check_aspect(path, mask, FLAGS.content, content)
    if FLAGS.style_masks:
        style_masks = [masks.load_mask(path) for path in FLAGS.style_masks]
        for path, mask, style_path, style in zip(FLAGS.style_masks, style_masks, FLAGS.style,
                                                 styles):
            _check_aspect(path, mask, style_path, style)
    return content_masks, style_masks


def _check_aspect(mask_path, mask, image_path, image):
    """Masks are resized to their image; refuse one drawn for another picture."""
    (mh, mw), (h, w) = mask.shape[:2], image.shape[:2]
    if abs(mh * w - h * mw) > 0.01 * h * mw:
        raise TfStyleError(f'mask {mask_path!r} is {mw}x{mh} but {image_path!r} is {w}x{h}: a '
                           'mask needs its image\'s aspect ratio')
