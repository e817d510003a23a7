"""The stylize command's progress on stdout: a bar redrawn in place on a terminal, plain lines
otherwise; snapshots and TensorBoard summaries."""

import math
import sys
import time

from .. import images
from . import app


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

    def report_every(self) -> int:
        """How often the library calls back: every iteration when printing (a first line at the
        first; the others every --print_every), else every --save_every."""
        every = [n for n in (self.flags.print_every, self.flags.save_every) if n > 0]
        if self.flags.print_every and not self.flags.quiet:
            every.append(1)
        return math.gcd(*every) if every else 0

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
