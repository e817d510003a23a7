"""What the binaries share: quiet TensorFlow, the import path, and one-line errors.

Not part of the library (the library never reads flags or prints): only bin/ imports this.
"""

import os
import sys

# TensorFlow's C++ start-up chatter (CUDA probing, oneDNN notices) is not for our users.
os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')
# Run from a checkout without installing: `python bin/stylize ...`.
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from absl import app  # noqa: E402

from tf_style.errors import TfStyleError  # noqa: E402


def run(main):
    """absl's app.run, with tf_style's errors as one line on stderr and exit status 2."""
    def guarded(argv):
        if len(argv) > 1:
            _fail(f'unexpected arguments: {" ".join(argv[1:])} (flags look like --name=value)')
        try:
            return main(argv)
        except TfStyleError as e:
            _fail(str(e))
        except KeyboardInterrupt:
            print(f'{_program()}: interrupted', file=sys.stderr)
            sys.exit(130)
    app.run(guarded)


def _program():
    return os.path.basename(sys.argv[0])


def _fail(message):
    print(f'{_program()}: error: {message}', file=sys.stderr)
    sys.exit(2)


def check_output(path, overwrite, inputs=()):
    """Fails before any work if image `path` cannot be written, is an input, or exists unasked."""
    from tf_style import images
    images.check_output_path(path, inputs=inputs)
    refuse_existing(path, overwrite)


def refuse_existing(path, overwrite):
    """Fails if `path` exists and --overwrite was not given."""
    if os.path.exists(path) and not overwrite:
        raise TfStyleError(f'{path!r} exists: pass --overwrite to replace it')


def format_seconds(seconds: float) -> str:
    seconds = int(round(seconds))
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    return f'{h}h{m:02d}m{s:02d}s' if h else f'{m}m{s:02d}s' if m else f'{s}s'
