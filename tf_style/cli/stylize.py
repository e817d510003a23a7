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
import os
import sys

from absl import flags

from .. import files, images, memory, plan
from ..config import INPUTS, NETWORK, PROGRESS, SPEED, START
from ..errors import TfStyleError
from . import app, batch, progress, stopping
from .options import config_from_flags, define_config_flags, topic
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
        flags.DEFINE_string('init', 'noise', 'Start image: ' + ', '.join(files.INIT_MODES) +
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
    contents = files.expand(FLAGS.content)
    if len(contents) > 1 or FLAGS.output_dir or contents != FLAGS.content:
        return batch.run(FLAGS, contents, stopping.current())
    init, init_file = files.init_setting(FLAGS.init)
    config = config_from_flags(FLAGS, init=init)
    _check_flags(FLAGS, config)
    files.check_sources(config.weights, FLAGS.extractor, FLAGS.logdir)
    inputs = files.read_inputs(
        contents[0], FLAGS.style, content_masks=FLAGS.content_masks, labels=FLAGS.labels,
        style_masks=FLAGS.style_masks, init_file=init_file, calibration_dir=FLAGS.calibration_dir)
    run = _plan(FLAGS, config, inputs, [contents[0], init_file])
    reporter = progress.Reporter(FLAGS, run.writes)

    # Seconds to load before the first iteration, and that first iteration (targets, tracing)
    # slower than the others: say so at once.
    app.say('loading TensorFlow and VGG19 ...')
    app.load_tensorflow()  # only now that the inputs are known to be good
    if FLAGS.check_memory and memory.gpu_available_bytes() is not None:
        plan.check_memory(run)  # again, against the GPU's memory
    result = _stylize(FLAGS, config, inputs, run, reporter)
    _write(FLAGS, result)


def _check_flags(FLAGS, config):
    if FLAGS.resume and not FLAGS.checkpoint_dir:
        raise TfStyleError('--resume needs --checkpoint_dir')
    if FLAGS.extractor and config.normalize_weights:
        raise TfStyleError('--normalize_weights builds VGG19 from --weights; an --extractor is '
                           'used as exported (export one built from normalized weights: '
                           'convert-weights --normalize)')
    if FLAGS.calibration_dir and not config.normalize_weights:
        raise TfStyleError('--calibration_dir is for --normalize_weights, which is off')


def _plan(FLAGS, config, inputs, paths):
    """The library's plan of the run, refused here if it cannot fit or write what it must."""
    run = plan.for_inputs(config, inputs)
    if FLAGS.check_memory:
        plan.check_memory(run)
    read = [*paths, *FLAGS.style, *(FLAGS.content_masks or []), FLAGS.labels,
            *(FLAGS.style_masks or []), FLAGS.weights, FLAGS.calibration_dir]
    run = plan.check_outputs(
        run, FLAGS.output, inputs=[p for p in read if p and os.path.exists(p)],
        overwrite=FLAGS.overwrite, save_pattern=FLAGS.save_pattern, save_every=FLAGS.save_every,
        checkpoint_dir=FLAGS.checkpoint_dir, resume=FLAGS.resume, logdir=FLAGS.logdir)
    if run.upscaled:  # once it fits: a refusal is one line
        h, w = inputs.content.shape[:2]
        app.note(f'the content image is {w}x{h}; upscaling it to {run.size[1]}x{run.size[0]}')
    return run


def _stylize(FLAGS, config, inputs, run, reporter):
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
    stop = stopping.current()
    stop.begin('saving after this iteration or tile')
    app.say('compiling and running the first iteration ...')
    result = stylize(inputs.content, inputs.styles, config=config, extractor=extractor,
                     callback=reporter, on_stage=reporter.stage,
                     report_every=reporter.report_every(), should_stop=stop,
                     checkpointer=checkpointer, content_masks=inputs.content_masks,
                     style_masks=inputs.style_masks, init_image=inputs.init_image,
                     calibration_images=inputs.calibration_images, plan=run)
    reporter.done()
    return result


def _write(FLAGS, result):
    settings = dict(dataclasses.asdict(result.config), seed=result.seed)
    images.save_image(FLAGS.output, result.image, metadata={
        'Software': 'tf_style', 'tf_style.settings': json.dumps(settings)})
    h, w = result.image.shape[:2]
    if not result.completed:
        where = f'; checkpoint in {FLAGS.checkpoint_dir} (--resume)' if FLAGS.checkpoint_dir else ''
        app.tell(f'{result.stop_reason} at iteration {result.iterations}: wrote the latest '
                 f'image to {FLAGS.output}{where}')
        signal = stopping.current().signal
        sys.exit(128 + signal if signal else 3)
    app.say(f'wrote {FLAGS.output} ({w}x{h}) in {app.format_total(result.seconds)}, '
            f'seed {result.seed}, loss {result.losses["total"]:.4g}')
