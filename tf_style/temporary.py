"""The temporary files and folders being written.

Every output goes to a temporary name beside it first and is renamed when complete, so an
interrupted write never leaves a partial output. A process that must quit at once (a second
Ctrl-C ends it with os._exit: no `finally` runs) calls `remove_all` first, so it leaves no
temporaries either.
"""

import os
import shutil
import tempfile
import threading

_lock = threading.Lock()
_pending = set()


def mkstemp(**kwargs):
    """tempfile.mkstemp, the name registered until `release`."""
    fd, path = tempfile.mkstemp(**kwargs)
    with _lock:
        _pending.add(path)
    return fd, path


def mkdtemp(**kwargs) -> str:
    """tempfile.mkdtemp, the name registered until `release`."""
    path = tempfile.mkdtemp(**kwargs)
    with _lock:
        _pending.add(path)
    return path


def release(path: str) -> None:
    """`path` was renamed or removed: nothing to clean up."""
    with _lock:
        _pending.discard(path)


def remove_all() -> None:
    """Removes every registered temporary that still exists."""
    with _lock:
        paths = list(_pending)
        _pending.clear()
    for path in paths:
        if os.path.isdir(path):
            shutil.rmtree(path, ignore_errors=True)
        else:
            try:
                os.unlink(path)
            except OSError:
                pass
