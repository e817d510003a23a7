"""Stylizes a video with temporal consistency (Ruder, Dosovitskiy & Brox, GCPR 2016).

  tf-style stylize-video --content=clip.mp4 --style=examples/starry_night.jpg --output=out.mp4
  tf-style stylize-video --content=frames/ --style=... --output=stylized_frames/ \
      --checkpoint_dir=run --resume

Each frame after the first starts from the previous result warped by the optical flow, with the
temporal loss against it where the flow is reliable (--temporal_weight=0: frame by frame). A clip
is a video file (.mp4, .webm, .gif, ... through PyAV) or a directory of frames; a video output
keeps the input's frame rate and audio. --passes=3: the paper's multi-pass, two more passes over
the clip, backward then forward. With --checkpoint_dir, finished frames and the current frame's
run are saved there: Ctrl-C saves, and --resume continues at the pass, frame and iteration.
"""

import dataclasses
import os
import shutil
import sys

from absl import flags

from .. import images, outputs, temporary
from ..errors import TfStyleError
from . import app, batch, stopping
from ..video.stylize_video import TEMPORAL_WEIGHT  # numpy alone
from .options import CONFIG_FIELDS, config_from_flags, define_config_flags

NOT_VIDEO_OPTIONS = ('scales', 'scale_iterations', 'keep_best', 'init', 'iterations')


def define_flags(fv):
    flags.DEFINE_string('content', None, 'Input clip: a video file or a directory of frames.',
                        required=True, flag_values=fv)
    flags.DEFINE_multi_string('style', None, 'Style image; repeat for several.', required=True,
                              flag_values=fv)
    flags.DEFINE_string('output', None, 'Output clip: a video file (.mp4, .webm, .gif, ...) or a '
                        'directory for PNG frames.', required=True, flag_values=fv)
    define_config_flags(fv, [n for n in CONFIG_FIELDS if n not in NOT_VIDEO_OPTIONS],
                        defaults={'temporal_weight': TEMPORAL_WEIGHT, 'image_size': 256})
    flags.DEFINE_string('init', 'noise', 'Start of the first frame (and of every frame with '
                        '--temporal_weight=0): noise, content, style, content_in_style_colors, '
                        'or an image FILE.', flag_values=fv)
    flags.DEFINE_integer('first_frame_iterations', 500, 'Iterations of the first frame.',
                         flag_values=fv)
    flags.DEFINE_integer('iterations', 250, 'Iterations of each later frame.', flag_values=fv)
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
        from ..video import io
    except ImportError:
        raise TfStyleError("stylize-video needs OpenCV and PyAV: pip install 'tf_style[video]'")
    init, init_file = batch.init_setting(FLAGS.init)
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
    work = Frames(FLAGS.checkpoint_dir, FLAGS.output, FLAGS.resume)
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
    from ..checkpoint import Checkpointer
    from ..video import io
    from ..video.stylize_video import FrameStopped, stylize_video_results
    finished = work.finished()
    later_finished = [work.finished_in(p) for p in range(2, FLAGS.passes + 1)]
    last_pass = later_finished[-1] if later_finished else finished
    if len(last_pass) == info.frames:
        return 0
    stop.begin('saving after this iteration or tile')
    every = FLAGS.print_every

    def checkpointer_for(index, pass_number):
        if not FLAGS.checkpoint_dir:
            return None
        directory = work.checkpoint(index, pass_number)
        return Checkpointer(directory, FLAGS.checkpoint_every,
                            resume=os.path.isdir(os.path.join(directory, 'ckpt')))

    options = {k: v for k, v in dataclasses.asdict(config).items()
               if k not in ('iterations', 'temporal_weight')}
    results = stylize_video_results(
        io.read_frames(FLAGS.content), styles, **options,
        temporal_weight=config.temporal_weight, long_term=FLAGS.long_term, passes=FLAGS.passes,
        first_frame_iterations=FLAGS.first_frame_iterations, iterations=FLAGS.iterations,
        flow=FLAGS.flow, callback=Progress(info.frames), report_every=every,
        frame_count=info.frames, finished=finished, later_finished=later_finished,
        checkpointer_for=checkpointer_for,
        should_stop=stop, init_image=init_image)
    count = 0
    try:
        for frame in results:
            work.add(frame.index, frame.image, frame.pass_number)
            count += 1
    except FrameStopped as e:
        where = (f'; --resume continues from {FLAGS.checkpoint_dir}' if FLAGS.checkpoint_dir
                 else '')
        app.tell(f'{e.result.stop_reason} at frame {e.frame + 1} of {info.frames}'
                 f'{where}')
        return None
    return count


class Progress:
    """A line per report: frame k of n, the frame's iteration, iterations/s, the clip's ETA."""

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


class Frames:
    """The finished frames of a clip (PNG files, each written atomically): in
    <checkpoint_dir>/frames (multi-pass: frames_pass2, ... for the later passes) when resuming
    is possible, else in a temporary folder beside the output, removed at the end."""

    def __init__(self, checkpoint_dir, output, resume):
        self.temporary = checkpoint_dir is None
        if self.temporary:
            parent = os.path.dirname(os.path.abspath(output.rstrip('/')))
            self.root = temporary.mkdtemp(prefix='.tf_style_frames.', dir=parent)
        else:
            self.root = checkpoint_dir
            if not resume:
                for name in os.listdir(self.root) if os.path.isdir(self.root) else ():
                    if name.startswith('frames'):
                        shutil.rmtree(os.path.join(self.root, name))

    def _dir(self, pass_number):
        return os.path.join(self.root, 'frames' if pass_number == 1 else
                            f'frames_pass{pass_number}')

    def _path(self, index, pass_number=1):
        return os.path.join(self._dir(pass_number), f'{index:06d}.png')

    def finished(self):
        """The first frames of the first pass done, in order (a gap ends them)."""
        done = []
        while os.path.exists(self._path(len(done))):
            done.append(images.load_image(self._path(len(done))))
        return done

    def finished_in(self, pass_number):
        """The frames of a later pass done, by index."""
        folder = self._dir(pass_number)
        names = sorted(os.listdir(folder)) if os.path.isdir(folder) else []
        return {int(name[:-4]): images.load_image(os.path.join(folder, name))
                for name in names if name.endswith('.png') and name[:-4].isdigit()}

    def checkpoint(self, index, pass_number=1):
        prefix = '' if pass_number == 1 else f'pass{pass_number}_'
        return os.path.join(self.root, f'{prefix}frame_{index:06d}')

    def add(self, index, image, pass_number=1):
        os.makedirs(self._dir(pass_number), exist_ok=True)
        images.save_image(self._path(index, pass_number), image)
        previous = self.checkpoint(index, pass_number)
        if os.path.isdir(previous):
            shutil.rmtree(previous)  # the frame is done: its run's checkpoint is not needed

    def read(self, count, pass_number=1):
        for index in range(count):
            yield images.load_image(self._path(index, pass_number))

    def close(self):
        if self.temporary:
            shutil.rmtree(self.root, ignore_errors=True)
            temporary.release(self.root)
