"""What every command shares: flag parsing, a quiet terminal, and one-line errors.

Not part of the library (the library never reads flags or prints): only the commands use it.
A healthy run prints its progress and last line on stdout and nothing on stderr; errors are one
line on stderr with exit status 2 (usage and input errors) or 1 (anything else, a bug).
"""

import logging as py_logging
import os
import re
import sys
import tempfile

from absl import app, flags, logging

from ..errors import TfStyleError

# TensorFlow's C++ logging below errors (CUDA probing, oneDNN notices) is not for our users.
os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')

_PROGRAM = {'name': os.path.basename(sys.argv[0])}


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
        show(module.__doc__.strip() + '\n\nflags (--helpfull: absl\'s too):\n')
        for name in (module.__name__, f'{__package__}.options', __name__):
            text = flags.FLAGS.module_help(name).strip()
            if text:
                show(text + '\n')
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
    try:
        return module.main(flags.FLAGS, argv[1:]) if passed else module.main(flags.FLAGS)
    except TfStyleError as e:
        fail(flag_message(e))
    except KeyboardInterrupt:
        tell('interrupted')
        sys.exit(130)


def flag_message(error: TfStyleError) -> str:
    """The error's message, with the option it names spelled as this command's flag."""
    message = str(error)
    # The option the error is about, and those its messages suggest as the way out.
    for option in (getattr(error, 'option', None), 'overwrite', 'check_memory', 'tile_size'):
        if option and option in flags.FLAGS:
            message = re.sub(rf'(?<![\w-]){re.escape(option)}\b', f'--{option}', message)
    return message


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
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as held:
        os.dup2(held.fileno(), 2)
        try:
            import tensorflow as tf
            tf.config.list_physical_devices()
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            if verbose:
                held.seek(0)
                sys.stderr.write(held.read().decode('utf-8', 'replace'))
    apply_verbosity()  # TensorFlow's import resets absl's level


def format_rate(iterations_per_second: float) -> str:
    """`2.41 it/s`, or below one iteration a second `38.2 s/it` (large images: 0.03 it/s would
    hide a third of the figure)."""
    if iterations_per_second >= 1 or iterations_per_second <= 0:
        return f'{iterations_per_second:.2f} it/s'
    return f'{1 / iterations_per_second:.1f} s/it'


def progress_text(p) -> str:
    """A progress line after its iteration count (transfer.Progress `p`): the scale's size, the
    losses that are not zero, the rate and the ETA."""
    losses = '  '.join(f'{name} {value:.4g}' for name, value in p.losses.items()
                       if value or name == 'total')
    return f'{p.size[1]}x{p.size[0]}  {losses}  {progress_rate(p)}'


def progress_rate(p) -> str:
    return f'{format_rate(p.iterations_per_second)}  ETA {format_seconds(p.eta_seconds)}'


def format_seconds(seconds: float) -> str:
    seconds = int(round(seconds))
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    return f'{h}h{m:02d}m{s:02d}s' if h else f'{m}m{s:02d}s' if m else f'{s}s'
