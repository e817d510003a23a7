r"""Stylizes every image a glob matches with an Apache Beam pipeline (DirectRunner by default).

  tf-style stylize-beam --input_pattern='photos/*.jpg' --style=examples/starry_night.jpg \
      --output_dir=stylized --weights=vgg19_hed.weights.h5 --image_size=256 \
      --direct_num_workers=2 --direct_running_mode=multi_processing

Each output is OUTPUT_DIR/<input stem>.png, written atomically; finished outputs are skipped on a
re-run; an image that fails goes to OUTPUT_DIR/errors.jsonl (input, stage, error) instead of
failing the pipeline. Flags this command does not know are Beam's pipeline options (--runner,
--direct_num_workers, --direct_running_mode, Dataflow's, ...). Beam's notices and its workers'
start-up lines are held back unless --verbosity is given.

Default --init=content_in_style_colors: the fastest start, a recognisable picture in few iterations.
"""

import contextlib
import logging
import os
import sys

from absl import flags

from .. import outputs
from ..errors import TfStyleError
from . import app, stopping
from .options import config_from_flags, define_config_flags

# Unknown flags go to Beam's PipelineOptions.
PASS_UNKNOWN_FLAGS = True
CONFIG_FLAGS = ('image_size', 'iterations', 'init', 'seed', 'content_weight', 'style_weight',
                'tv_weight', 'content_layers', 'style_layers', 'style_scale',
                'style_blend_weights', 'preserve_colors', 'optimizer', 'learning_rate',
                'weights', 'pooling', 'scales', 'precision')
# A newcomer's first batch should look like the photos: from the paper's noise, a few hundred
# iterations give texture without the picture; from the content in the style's colours they
# give the picture, painted (--init=noise still asks for the paper's start).
DEFAULTS = {'init': 'content_in_style_colors', 'iterations': 300}
INIT_NOTE = (' Here content_in_style_colors by default, the fastest start: a recognisable '
             'picture in few iterations, where noise gives texture alone; not image.')


def define_flags(fv):
    flags.DEFINE_string('input_pattern', None, 'Content images: a glob.', required=True,
                        flag_values=fv)
    flags.DEFINE_multi_string('style', None, 'Style image; repeat for several.', required=True,
                              flag_values=fv)
    flags.DEFINE_string('output_dir', None, 'Where the stylized PNGs and errors.jsonl go.',
                        required=True, flag_values=fv)
    flags.DEFINE_boolean('overwrite', False, 'Stylize again the inputs whose output exists.',
                         flag_values=fv)
    define_config_flags(fv, CONFIG_FLAGS, help_notes={'init': INIT_NOTE}, defaults=DEFAULTS)


def main(FLAGS, beam_args=()):
    config = config_from_flags(FLAGS)
    if config.init == 'image':
        raise TfStyleError('--init=image needs one start image per content: not in a pipeline')
    for path in FLAGS.style:
        if not os.path.isfile(path):
            raise TfStyleError(f'--style={path}: no such file')
    outputs.check_writable(FLAGS.output_dir, inputs=FLAGS.style, what='output_dir', kind='dir')
    os.makedirs(FLAGS.output_dir, exist_ok=True)
    verbose = 'verbosity' in FLAGS and FLAGS['verbosity'].present
    if not verbose:
        quiet_beam_notices()  # before Beam's import, which has one
        # The workers' Python logs: errors only (they go to this process's log too).
        if not any(a.startswith('--default_sdk_harness_log_level') for a in beam_args):
            beam_args = [*beam_args, '--default_sdk_harness_log_level=ERROR']
    try:
        from apache_beam.options.pipeline_options import PipelineOptions
    except ImportError:
        raise TfStyleError("stylize-beam needs Apache Beam: pip install 'tf_style[beam]'") from None
    pipeline_options = PipelineOptions(list(beam_args))
    # Beam's workers (other processes, perhaps) take no stop hook: a signal quits at once. Each
    # output is written atomically and a re-run skips it, so only the images in flight are lost.
    stopping.current().quit_note = ('stopped: the images written are kept (run the same command '
                                    'again to go on)')
    share_threads(pipeline_options)
    app.load_tensorflow()  # the DirectRunner's in-process workers
    from ..beam import (dead_letters, describe_failures, direct_running_mode, pipeline_counts,
                        stylize_pipeline)
    options = {name: getattr(config, name) for name in CONFIG_FLAGS}
    processes = direct_running_mode(pipeline_options) == 'multi_processing'
    # Worker processes write Beam's start-up notices (before any option reaches them) and
    # TensorFlow's C++ lines to the stderr they inherit: held back, shown if the run fails.
    held = app.held_stderr(python_lines=True) if processes and not verbose else None
    with held or contextlib.nullcontext():
        result = stylize_pipeline(pipeline_options, FLAGS.input_pattern,
                                  FLAGS.style, FLAGS.output_dir, overwrite=FLAGS.overwrite,
                                  **options)
    counts = pipeline_counts(result)
    app.say(f'wrote {counts["written"]} image(s) to {FLAGS.output_dir}, skipped '
            f'{counts["skipped"]} finished, {counts["failed"]} failed' +
            (f' (see {os.path.join(FLAGS.output_dir, "errors.jsonl")})' if counts['failed']
             else ''))
    if counts['failed']:
        app.tell(describe_failures(dead_letters(FLAGS.output_dir)))
        sys.exit(1)


def quiet_beam_notices():
    """Beam's log records below errors (a missing GCP client at import, memory it cannot measure
    for each batch, ...) are not for our users: left out of this process's log."""
    def not_beams_notice(record):
        return (record.levelno >= logging.ERROR or
                f'{os.sep}apache_beam{os.sep}' not in (record.pathname or ''))
    for handler in logging.getLogger().handlers:
        handler.addFilter(not_beams_notice)


def share_threads(pipeline_options, cores: int = None):
    """The DirectRunner's workers on this machine share its cores: each worker's TensorFlow gets
    cores / workers threads (TF_NUM_INTRAOP_THREADS, which worker processes inherit), as
    stylize's --jobs does, rather than every worker all of them. Other runners' workers are
    machines of their own."""
    from apache_beam.options.pipeline_options import DirectOptions
    from ..beam import direct_running_mode
    if direct_running_mode(pipeline_options) not in ('multi_threading', 'multi_processing'):
        return
    cores = cores or os.cpu_count() or 1
    workers = pipeline_options.view_as(DirectOptions).direct_num_workers or cores  # 0: per core
    if workers > 1:
        os.environ.setdefault('TF_NUM_INTRAOP_THREADS', str(max(1, cores // workers)))
