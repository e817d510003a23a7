"""What every command shares: flag parsing, a quiet terminal, and one-line errors.

Not part of the library (the library never reads flags or prints): only the commands use it.
A healthy run prints its progress and last line on stdout and nothing on stderr; errors are one
line on stderr with exit status 2 (usage and input errors) or 1 (anything else, a bug).
"""

import contextlib
import logging as py_logging
import math
import os
import sys
import tempfile
import time

from absl import app, flags, logging

from ..errors import TfStyleError
from . import stopping

# TensorFlow's C++ logging below errors (CUDA probing, oneDNN notices) is not for our users.
os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')

_PROGRAM = {'name': os.path.basename(sys.argv[0])}
_STARTED = time.monotonic()  # about when the command started: before TensorFlow loads


def program() -> str:
    return _PROGRAM['name']


def set_program(name: str):
    _PROGRAM['name'] = name


def run(module, name: str = None):
    """Runs a command module: `module.define_flags(FLAGS)`, then `module.main(FLAGS)`, with
    tf_style's errors and flag errors as one line on stderr and exit status 2."""
    if name:
        set_program(name)
    module.define_flags(flags.FLAGS)
    flags.DEFINE_boolean('quiet', False, 'Errors only: no progress, no summary line.')
    app.run(lambda argv: _guarded(module, argv), flags_parser=lambda argv: _parse(module, argv))


HELP = ('--help', '-h', '--helpshort', '-help', '-?')


def _parse(module, argv):
    if any(arg in HELP for arg in argv[1:]):
        from ..config import OTHER
        from .options import flags_help
        show(module.__doc__.strip() + '\n')
        show(flags_help(flags.FLAGS, [(module.__name__, None), (f'{__package__}.options', None),
                                      (__name__, OTHER)]))
        show('\n--helpfull: every flag with its whole help (absl\'s own flags too).')
        sys.exit(0)
    try:
        return flags.FLAGS(argv, known_only=getattr(module, 'PASS_UNKNOWN_FLAGS', False))
    except flags.Error as e:
        fail('; '.join(line.strip() for line in str(e).splitlines() if line.strip()))


def _guarded(module, argv):
    passed = getattr(module, 'PASS_UNKNOWN_FLAGS', False)
    if len(argv) > 1 and not passed:
        fail(f'unexpected arguments: {" ".join(argv[1:])} (flags look like --name=value)')
    apply_verbosity()
    stop = stopping.start(tell)  # Ctrl-C and SIGTERM: see stopping.py
    try:
        return module.main(flags.FLAGS, argv[1:]) if passed else module.main(flags.FLAGS)
    except TfStyleError as e:
        fail(flag_message(e))
    except stopping.Stopped as e:
        tell(str(e))
        sys.exit(128 + stop.signal)


def flag_message(error: TfStyleError) -> str:
    """The error's message as it is, after the flag of the option it is about and followed by
    the flags of those it suggests as a way out, where they are flags of this command:
    `--weights: weights '/data/my.weights.h5': no such file ...`, `... (see --overwrite)`."""
    message = str(error)
    option = getattr(error, 'option', None)
    if option and option in flags.FLAGS:
        message = f'--{option}: {message}'
    see = [f'--{name}' for name in getattr(error, 'see', ()) if name in flags.FLAGS]
    return f'{message} (see {", ".join(see)})' if see else message


def show(text: str, end: str = '\n'):
    """Text on stdout whatever the flags: help, usage, generated documents."""
    print(text, end=end, flush=True)


def fail(message: str):
    print(f'{program()}: error: {message}', file=sys.stderr, flush=True)
    sys.exit(2)


def tell(message: str, flush_line: bool = False):
    """A line on stderr that is not an error but must be seen (a run stopped, a bad item of a
    batch), even with --quiet."""
    print(f'{chr(10) if flush_line else ""}{program()}: {message}', file=sys.stderr, flush=True)


def note(message: str):
    """A line on stderr that the user should see (not an error), unless --quiet."""
    if not flags.FLAGS.quiet:
        print(f'{program()}: note: {message}', file=sys.stderr, flush=True)


def say(message: str, end: str = '\n'):
    """A line on stdout, unless --quiet."""
    if not flags.FLAGS.quiet:
        print(message, end=end, flush=True)


def apply_verbosity():
    """absl logs: warnings by default, errors only with --quiet, more with --verbosity/-v."""
    # absl.app sets the verbosity to INFO unless the command line gave one.
    given = flags.FLAGS['verbosity'].present
    level = (logging.ERROR if flags.FLAGS.quiet else flags.FLAGS.verbosity if given
             else logging.WARNING)
    logging.set_verbosity(level)
    # absl.app installs its handler on the root logger, whose level set_verbosity leaves alone
    # when the verbosity does not change.
    standard = logging.converter.absl_to_standard(level)
    py_logging.getLogger().setLevel(standard)
    logging.get_absl_logger().setLevel(standard)


def load_tensorflow():
    """Imports TensorFlow and finds its devices with its C++ start-up lines held back (shown
    with --verbosity=1 or more): called once the inputs are known to be good."""
    if 'tensorflow' in sys.modules:
        return
    verbose = flags.FLAGS['verbosity'].present and flags.FLAGS.verbosity >= 1
    if verbose:
        os.environ['TF_CPP_MIN_LOG_LEVEL'] = '0'
    with held_stderr(show=lambda failed: verbose or failed):
        import tensorflow as tf
        tf.config.list_physical_devices()
    apply_verbosity()  # TensorFlow's import resets absl's level


@contextlib.contextmanager
def held_stderr(show=lambda failed: failed, python_lines: bool = False):
    """Holds back what is written to file descriptor 2 (TensorFlow's C++ lines, which no
    setting quiets before they are written; child processes, which inherit it) in a temporary
    file, written out afterwards when `show(failed)` says so. `python_lines`: this process's own
    lines (sys.stderr) still reach the terminal meanwhile."""
    sys.stderr.flush()
    terminal, stream = os.dup(2), sys.stderr
    failed = True
    with tempfile.TemporaryFile() as held:
        os.dup2(held.fileno(), 2)
        if python_lines:
            sys.stderr = open(terminal, 'w', buffering=1, closefd=False,
                              errors='backslashreplace')
        try:
            yield
            failed = False
        finally:
            if python_lines:
                sys.stderr.close()
                sys.stderr = stream
            os.dup2(terminal, 2)
            os.close(terminal)
            if show(failed):
                held.seek(0)
                stream.write(held.read().decode('utf-8', 'replace'))
                stream.flush()


def format_rate(iterations_per_second: float) -> str:
    """Seconds per iteration, to three figures: `0.414 s/it`, `38.5 s/it`, `120 s/it` (one unit
    whatever the speed, so that runs compare at a glance)."""
    if not 0 < iterations_per_second < float('inf'):
        return '? s/it'
    seconds = float(f'{1 / iterations_per_second:.3g}')
    return f'{seconds:.{min(4, max(0, 2 - math.floor(math.log10(seconds))))}f} s/it'


def progress_text(p, rate: str = None) -> str:
    """A progress line after its iteration count (transfer.Progress `p`): the scale's size, the
    losses that are not zero, and `rate` (default: progress_rate(p), the rate and the ETA)."""
    losses = '  '.join(f'{name} {value:.4g}' for name, value in p.losses.items()
                       if value or name == 'total')
    return f'{p.size[1]}x{p.size[0]}  {losses}  {rate or progress_rate(p)}'


def progress_rate(p, iterations_per_second: float = None) -> str:
    """The rate (default: p's, since the last report) and the ETA."""
    rate = p.iterations_per_second if iterations_per_second is None else iterations_per_second
    return f'{format_rate(rate)}  ETA {format_seconds(p.eta_seconds)}'


def format_total(run_seconds: float) -> str:
    """The time since the command started, and the part of it before a run of `run_seconds`
    (loading TensorFlow and VGG19, reading the inputs): `2m42s (start-up 12s)`."""
    total = time.monotonic() - _STARTED
    return f'{format_seconds(total)} (start-up {format_seconds(max(0.0, total - run_seconds))})'


def format_seconds(seconds: float) -> str:
    seconds = int(round(seconds))
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    return f'{h}h{m:02d}m{s:02d}s' if h else f'{m}m{s:02d}s' if m else f'{s}s'
