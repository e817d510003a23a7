r"""Stylizes a video with temporal consistency (Ruder, Dosovitskiy & Brox, GCPR 2016).

  tf-style stylize-video --content=clip.mp4 --style=examples/starry_night.jpg --output=out.mp4
  tf-style stylize-video --content=frames/ --style=... --output=stylized_frames/ \
      --checkpoint_dir=run --resume

Each frame after the first starts from the previous result warped by the optical flow, with the
temporal loss against it where the flow is reliable (--temporal_weight=0: frame by frame). A clip
is a video file (.mp4, .webm, .gif, ... through PyAV) or a directory of frames; a video output
keeps the input's frame rate and audio. --passes=3: the paper's multi-pass, two more passes over
the clip, backward then forward. With --checkpoint_dir, finished frames and the current frame's
run are saved there: Ctrl-C saves, and --resume continues at the pass, frame and iteration.

Default --init=content_in_style_colors: the fastest start, a recognisable picture in few iterations.
"""

import os
import sys

from absl import flags

from .. import files, images, outputs
from ..errors import TfStyleError
from . import app, stopping
from ..video.stylize_video import TEMPORAL_WEIGHT  # numpy alone
from .options import CONFIG_FIELDS, config_from_flags, define_config_flags

NOT_VIDEO_OPTIONS = ('scales', 'scale_iterations', 'keep_best', 'init', 'iterations')
# A newcomer's first clip should look like the clip: from the paper's noise, a few hundred
# iterations give texture without the picture; from the content in the style's colours they
# give the picture, painted (--init=noise still asks for the paper's start).
INIT, FIRST_FRAME_ITERATIONS, LATER_FRAME_ITERATIONS = 'content_in_style_colors', 300, 150


def define_flags(fv):
    flags.DEFINE_string('content', None, 'Input clip: a video file or a directory of frames.',
                        required=True, flag_values=fv)
    flags.DEFINE_multi_string('style', None, 'Style image; repeat for several.', required=True,
                              flag_values=fv)
    flags.DEFINE_string('output', None, 'Output clip: a video file (.mp4, .webm, .gif, ...) or a '
                        'directory for PNG frames.', required=True, flag_values=fv)
    define_config_flags(fv, [n for n in CONFIG_FIELDS if n not in NOT_VIDEO_OPTIONS],
                        defaults={'temporal_weight': TEMPORAL_WEIGHT, 'image_size': 256})
    flags.DEFINE_string('init', INIT, 'Start of the first frame (and of every frame with '
                        '--temporal_weight=0): content_in_style_colors, noise (the paper\'s), '
                        'content, style, or an image FILE. The default, the content in the '
                        "style's colours, is the fastest start: a recognisable picture in few "
                        'iterations, where noise gives texture alone.', flag_values=fv)
    flags.DEFINE_integer('first_frame_iterations', FIRST_FRAME_ITERATIONS,
                         'Iterations of the first frame.', flag_values=fv)
    flags.DEFINE_integer('iterations', LATER_FRAME_ITERATIONS, 'Iterations of each later frame.',
                         flag_values=fv)
    flags.DEFINE_boolean('long_term', False, "The paper's long-term loss over the frames 1, 2 "
                         'and 4 before.', flag_values=fv)
    flags.DEFINE_integer('passes', 1, "The paper's multi-pass: after the first pass, passes - 1 "
                         'more over the whole clip in alternating directions, --iterations per '
                         'frame each (repaints the borders the camera uncovers; keeps the clip '
                         'in memory).', flag_values=fv)
    flags.DEFINE_enum('flow', 'dis', ['dis', 'farneback'], "OpenCV's optical flow.",
                      flag_values=fv)
    flags.DEFINE_integer('print_every', 10, 'Progress every N iterations (0: per frame only).',
                         flag_values=fv)
    flags.DEFINE_string('checkpoint_dir', None, 'Keep finished frames and the current frame\'s '
                        'run here (Ctrl-C saves; --resume continues).', flag_values=fv)
    flags.DEFINE_integer('checkpoint_every', 50, 'Iterations between a frame\'s checkpoints.',
                         flag_values=fv)
    flags.DEFINE_boolean('resume', False, 'Continue the clip saved in --checkpoint_dir.',
                         flag_values=fv)
    flags.DEFINE_boolean('overwrite', False, 'Replace an existing --output.', flag_values=fv)


def main(FLAGS):
    stop = stopping.current()
    try:
        from ..video import io, resumable
    except ImportError:
        raise TfStyleError("stylize-video needs OpenCV and PyAV: pip install 'tf_style[video]'")
    init, init_file = files.init_setting(FLAGS.init)
    config = config_from_flags(FLAGS, init=init, iterations=FLAGS.first_frame_iterations)
    if FLAGS.resume and not FLAGS.checkpoint_dir:
        raise TfStyleError('--resume needs --checkpoint_dir')
    info = io.probe(FLAGS.content)
    io.check_output(FLAGS.output, [FLAGS.content, *FLAGS.style, init_file],
                    io.frame_names(info))
    if os.path.exists(FLAGS.output) and not (FLAGS.overwrite or FLAGS.resume) and (
            io.is_video_path(FLAGS.output) or os.listdir(FLAGS.output)):
        raise TfStyleError(f'{FLAGS.output!r} exists: pass --overwrite to replace it')
    if FLAGS.checkpoint_dir:
        outputs.check_writable(FLAGS.checkpoint_dir, inputs=[FLAGS.content, *FLAGS.style],
                               what='checkpoint_dir', kind='dir')
    styles = [images.load_image(path) for path in FLAGS.style]
    init_image = images.load_image(init_file) if init_file else None

    app.load_tensorflow()
    work = resumable.FrameStore(FLAGS.checkpoint_dir, FLAGS.output, FLAGS.resume)
    try:
        stylized = run(FLAGS, config, info, styles, init_image, work, stop)
        if stylized is None:
            sys.exit(128 + stop.signal)
        io.write_clip(FLAGS.output, work.read(info.frames, FLAGS.passes), source=info)
    finally:
        work.close()
    runs = (f'{stylized} stylized in this run' if FLAGS.passes == 1 else
            f'{FLAGS.passes} passes; {stylized} frame runs in this run')
    app.say(f'wrote {FLAGS.output} ({info.frames} frames; {runs})')


def run(FLAGS, config, info, styles, init_image, work, stop):
    """Stylizes the frames not yet in `work`; returns how many, or None when stopped."""
    from ..video.resumable import stylize_clip
    from ..video.stylize_video import FrameStopped
    if not work.complete(info.frames, FLAGS.passes):
        stop.begin('saving after this iteration or tile')
    try:
        return stylize_clip(
            work, FLAGS.content, styles, config, frames=info.frames, passes=FLAGS.passes,
            long_term=FLAGS.long_term, first_frame_iterations=FLAGS.first_frame_iterations,
            iterations=FLAGS.iterations, flow=FLAGS.flow, checkpoint_every=FLAGS.checkpoint_every,
            callback=Progress(info.frames), report_every=FLAGS.print_every, should_stop=stop,
            init_image=init_image)
    except FrameStopped as e:
        where = (f'; --resume continues from {FLAGS.checkpoint_dir}' if FLAGS.checkpoint_dir
                 else '')
        app.tell(f'{e.result.stop_reason} at frame {e.frame + 1} of {info.frames}{where}')
        return None


class Progress:
    """A line per report: frame k of n, the frame's iteration, seconds per iteration, the clip's
    ETA."""

    def __init__(self, frames):
        self.frames = frames

    def __call__(self, p):
        progress = p.progress
        eta = (f'  clip ETA {app.format_seconds(p.eta_seconds)}'
               if p.eta_seconds is not None else '')
        where = f'  pass {p.pass_number}/{p.passes}' if p.passes > 1 else ''
        app.say(f'frame {p.frame + 1}/{self.frames}{where}  iter {progress.iteration}/'
                f'{progress.iterations}  loss {progress.losses["total"]:.4g}  '
                f'{app.format_rate(progress.iterations_per_second)}{eta}')
