"""Ctrl-C and SIGTERM for the commands: the first stops a long command after its current
iteration or image (it keeps what it wrote and exits 128 + the signal: 130 for SIGINT, 143 for
SIGTERM), a second quits at once.

app.run starts the stopper before a command's main; nothing happens at import. The library
never reads signals: a command passes the stopper on as `should_stop` (calling it says whether
to stop) and between its own steps calls `check`, whose Stopped app.run reports.
"""

import os
import signal
import threading

from .. import temporary

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class Stopped(Exception):
    """A command stopped on a signal: app.run tells this message and exits 128 + the signal."""


class Stopper:
    """`stopper()`: whether a signal asked to stop; `signal`: which."""

    def __init__(self, tell=None):
        self.tell = tell
        self.signal = None
        # What the first signal does once `begin` is called; until then it quits at once.
        self.first = None
        # What quitting at once says (commands whose outputs are all written atomically and
        # have no iterations to stop between set their own).
        self.quit_note = 'stopped before the run'

    def __call__(self) -> bool:
        return self.signal is not None

    def begin(self, first: str = 'saving after this iteration or tile'):
        """From now on there is work to keep: a first signal stops it (`first` says how)."""
        self.first = first

    def check(self, message: str):
        """Raises Stopped(`message`: what was kept) once a signal asked to stop."""
        if self.signal is not None:
            raise Stopped(message)

    def take(self, signum: int):
        """A signal, from the listening thread: the first after `begin` asks to stop, any other
        quits at once."""
        name = signal.Signals(signum).name
        if self.first is None or self.signal is not None:
            if self.first is None:
                self.tell(f'{name}: {self.quit_note}', flush_line=True)
            # Everything we write goes to a temporary name first: quitting now corrupts
            # nothing, and the temporaries go too.
            temporary.remove_all()
            os._exit(128 + signum)
        self.signal = signum
        self.tell(f'{name}: {self.first} (Ctrl-C again to quit at once)', flush_line=True)


# Until a command starts one, a stopper no signal reaches (commands' code called in-process).
_CURRENT = [Stopper()]


def current() -> Stopper:
    return _CURRENT[0]


def start(tell) -> Stopper:
    """Takes SIGINT and SIGTERM for the command from now on (call it from the main thread);
    `tell(message, flush_line=True)` shows what a signal does.

    CPython's C handler, in whichever thread the kernel gives a signal, writes its number to
    the wakeup fd, which a thread of ours reads: each signal is seen at once, even while the
    main thread is inside a long TensorFlow call (its Python handler would run only after the
    call returns, two Ctrl-Cs merged into one).
    """
    stopper = _CURRENT[0] = Stopper(tell)
    read, write = os.pipe()
    os.set_blocking(write, False)
    # Not a blocked mask and sigwait: numpy's OpenBLAS threads (started at import, before
    # this) would still take signals, and Beam's worker processes would inherit the mask.
    signal.set_wakeup_fd(write, warn_on_full_buffer=False)
    for signum in STOP_SIGNALS:
        signal.signal(signum, _listened)
        signal.siginterrupt(signum, False)  # other threads' system calls go on (SA_RESTART)
    threading.Thread(target=_listen, args=(read, stopper), daemon=True,
                     name='stopping').start()
    return stopper


def _listened(signum, frame):
    """The main thread's Python handler: the listening thread acts (no KeyboardInterrupt)."""


def _listen(fd: int, stopper: Stopper):
    while True:
        for signum in os.read(fd, 64):
            if signum in STOP_SIGNALS:
                stopper.take(signum)
