"""Checkpoints of a run: the image, the optimizer's state, where the run stands, and what it is.

A checkpoint is a directory `<checkpoint_dir>/ckpt` holding a tf.train.Checkpoint of the image and
optimizer variables (`vars.*`), `state.json` (scale, iterations done, and a fingerprint of the
inputs and settings) and, written last, `manifest.json`: the format, its version, and the size and
sha256 of every other file. It is written beside its final place and swapped in by renames, so a
crash or a second Ctrl-C while saving leaves the previous checkpoint whole; it is trusted only when
its files match its manifest, and a folder that is not a tf_style checkpoint is never replaced.

TensorFlow is imported only to write and read the variables: `verify_checkpoint` runs before it
loads.
"""

import hashlib
import json
import os
import shutil

import numpy as np

from .errors import CheckpointError

_CURRENT, _NEW, _OLD = 'ckpt', '.ckpt-new', '.ckpt-old'
NAMES = (_CURRENT, _NEW, _OLD)
MANIFEST, STATE = 'manifest.json', 'state.json'
FORMAT, VERSION = 'tf_style checkpoint', 1
# A manifest lists a handful of files; a larger one is not ours (and is not read whole).
_MANIFEST_MAX_BYTES = 1 << 20


def fingerprint(arrays, settings: dict) -> str:
    """A hash of the input arrays (images, masks) and of every setting that changes the result."""
    h = hashlib.sha256()
    for image in arrays:
        array = np.ascontiguousarray(image, dtype=np.float32)
        h.update(repr(array.shape).encode())
        h.update(array.tobytes())
    h.update(json.dumps(settings, sort_keys=True, default=str).encode())
    return h.hexdigest()


def state_bytes(height: int, width: int, optimizer: str = 'lbfgs', lbfgs_history: int = 10) -> int:
    """About how many bytes a checkpoint of a height x width run takes (float32 variables)."""
    # L-BFGS: the image, its gradient, the history's pairs and the search's copies; Adam: the
    # image and its two moments, and the best image.
    copies = 2 * lbfgs_history + 4 if optimizer == 'lbfgs' else 4
    return copies * height * width * 3 * 4 + 4096


def verify_checkpoint(directory: str) -> dict:
    """The state of the newest checkpoint in `directory`, once its files match its manifest.

    Raises CheckpointError naming the directory and what is wrong: no checkpoint, a file
    missing, truncated or changed, not a tf_style checkpoint, or one of a newer format.
    """
    path = _newest(directory)
    if path is None:
        _fail(directory, 'nothing to resume: no checkpoint in it')
    _verify_files(directory, path)
    return _read_state(directory, path)


def check_replaceable(directory: str) -> None:
    """Refuses a `directory` whose `ckpt` a save would replace but which tf_style did not write."""
    _check_directory(directory)
    path = os.path.join(directory, _CURRENT)
    if os.path.lexists(path) and not _written_by_us(path):
        _fail(directory, f'{_CURRENT!r} in it is not a tf_style checkpoint, and a checkpoint '
                         'would replace it: choose another checkpoint_dir')


def _fail(directory, reason):
    raise CheckpointError(f'checkpoint_dir {directory!r}: {reason}', option='checkpoint_dir')


def _check_directory(directory):
    if os.path.exists(directory) and not os.path.isdir(directory):
        _fail(directory, 'is a file, not a directory')


def _newest(directory):
    """The folder of the newest complete checkpoint, or None."""
    _check_directory(directory)
    for name in (_CURRENT, _OLD):  # _OLD: a crash between the two renames of a save
        path = os.path.join(directory, name)
        if os.path.lexists(path):
            return path
    return None


def _written_by_us(path):
    """Whether folder `path` is a tf_style checkpoint, whole or not (0.8's had no manifest)."""
    if not os.path.isdir(path):
        return False
    try:
        return _read_manifest(path).get('format') == FORMAT
    except (OSError, ValueError, AttributeError):
        return os.path.isfile(os.path.join(path, STATE))


def _read_manifest(path):
    with open(os.path.join(path, MANIFEST), 'rb') as f:
        data = f.read(_MANIFEST_MAX_BYTES + 1)
    if len(data) > _MANIFEST_MAX_BYTES:
        raise ValueError('too large')
    return json.loads(data.decode('utf-8'))


def _verify_files(directory, path):
    def fail(reason):
        _fail(directory, f'{os.path.basename(path)}: {reason}')

    if not os.path.isdir(path):
        fail('not a folder: not a tf_style checkpoint')
    if not os.path.isfile(os.path.join(path, MANIFEST)):
        fail(f'no {MANIFEST}: not a tf_style checkpoint, or one of tf_style 0.8 or earlier, '
             'which cannot be verified (start the run again)')
    try:
        manifest = _read_manifest(path)
    except (OSError, ValueError) as e:
        fail(f'{MANIFEST} is unreadable or corrupt ({getattr(e, "strerror", None) or e})')
    if not isinstance(manifest, dict) or manifest.get('format') != FORMAT:
        fail('not a tf_style checkpoint')
    version, files = manifest.get('version'), manifest.get('files')
    if not isinstance(version, int) or not isinstance(files, dict) or STATE not in files:
        fail(f'{MANIFEST} is corrupt')
    if version > VERSION:
        fail(f'written by a newer tf_style (checkpoint format {version}; this one reads '
             f'{VERSION}): upgrade tf_style, or start the run again')
    for name, entry in files.items():
        _verify_file(path, name, entry, fail)


def _verify_file(path, name, entry, fail):
    if (not isinstance(entry, dict) or not isinstance(entry.get('size'), int)
            or not isinstance(entry.get('sha256'), str) or not _is_relative(name)):
        fail(f'{MANIFEST} is corrupt')
    try:
        size = os.path.getsize(os.path.join(path, name))
    except OSError:
        fail(f'{name} is missing')
    if size < entry['size']:
        fail(f'{name} is truncated ({size} of {entry["size"]} bytes)')
    if size != entry['size']:
        fail(f'{name} has {size} bytes, not the {entry["size"]} its manifest says')
    if _sha256(os.path.join(path, name)) != entry['sha256']:
        fail(f'{name} is corrupt (its sha256 is not the one its manifest says)')


def _is_relative(name):
    """A path inside the checkpoint's folder (a manifest must not name files elsewhere)."""
    return (isinstance(name, str) and name and not os.path.isabs(name)
            and os.path.normpath(name) == name and not name.startswith('..') and name != MANIFEST)


def _sha256(path, fsync=False):
    h = hashlib.sha256()
    with open(path, 'rb') as f:
        for block in iter(lambda: f.read(1 << 20), b''):
            h.update(block)
        if fsync:
            os.fsync(f.fileno())
    return h.hexdigest()


def _read_state(directory, path):
    try:
        with open(os.path.join(path, STATE), 'rb') as f:
            state = json.loads(f.read().decode('utf-8'))
    except (OSError, ValueError) as e:
        _fail(directory, f'{STATE} is unreadable or corrupt ({getattr(e, "strerror", None) or e})')
    if not isinstance(state, dict) or not all(k in state for k in ('fingerprint', 'scale', 'done')):
        _fail(directory, f'{STATE} is corrupt')
    return state


def _write_manifest(path):
    """Writes `path`/manifest.json for the files in `path`, read back from the disk (and synced)."""
    files = {}
    for root, _, names in os.walk(path):
        for name in sorted(names):
            full = os.path.join(root, name)
            files[os.path.relpath(full, path)] = dict(size=os.path.getsize(full),
                                                      sha256=_sha256(full, fsync=True))
    with open(os.path.join(path, MANIFEST), 'w') as f:
        json.dump(dict(format=FORMAT, version=VERSION, files=files), f, indent=1, sort_keys=True)
        f.flush()
        os.fsync(f.fileno())


def _fsync_directory(path):
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return  # not possible everywhere (Windows); the renames are still atomic
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


class Checkpointer:
    """Saves every `every` iterations (and on request) into `directory`; restores on resume."""

    def __init__(self, directory: str, every: int = 100, resume: bool = False):
        if every < 0:
            raise CheckpointError(f'checkpoint_every must be >= 0, got {every}',
                                  option='checkpoint_every')
        self.directory = directory
        self.every = every
        self.resume = resume
        self.fingerprint = None
        self._verified = None
        _check_directory(directory)
        if not resume:
            check_replaceable(directory)
        try:
            os.makedirs(directory, exist_ok=True)
        except OSError as e:
            _fail(directory, f'cannot be created: {e.strerror or e}')
        if not os.access(directory, os.W_OK | os.X_OK):
            _fail(directory, 'is not writable')

    def _path(self, name):
        return os.path.join(self.directory, name)

    def load_state(self):
        """On resume: {'scale', 'done', ...} of the saved run, or None when not resuming.

        Refuses a checkpoint that does not match its manifest, or is of other inputs or settings.
        """
        if not self.resume:
            return None
        state = verify_checkpoint(self.directory)
        if state.get('fingerprint') != self.fingerprint:
            _fail(self.directory, 'its checkpoint is of other inputs or settings: resume with '
                                  'the same images and settings, or use another checkpoint_dir')
        self._verified = _newest(self.directory)
        return state

    def restore(self, variables: dict):
        import tensorflow as tf
        path = self._verified or _newest(self.directory)
        try:
            tf.train.Checkpoint(**variables).read(os.path.join(path, 'vars')).assert_consumed()
        except (tf.errors.OpError, AssertionError, ValueError) as e:
            reason = str(e).splitlines()[0][:200] if str(e) else type(e).__name__
            _fail(self.directory, f'its checkpoint does not fit this run ({reason})')

    def save(self, variables: dict, state: dict):
        import tensorflow as tf
        new, current, old = self._path(_NEW), self._path(_CURRENT), self._path(_OLD)
        shutil.rmtree(new, ignore_errors=True)
        try:
            os.makedirs(new)
            tf.train.Checkpoint(**variables).write(os.path.join(new, 'vars'))
            with open(os.path.join(new, STATE), 'w') as f:
                json.dump(dict(state, fingerprint=self.fingerprint), f)
                f.flush()
                os.fsync(f.fileno())
            _write_manifest(new)  # last: a folder with a valid manifest is a whole checkpoint
            _fsync_directory(new)
        except (OSError, tf.errors.OpError) as e:
            shutil.rmtree(new, ignore_errors=True)
            _fail(self.directory, f'cannot write a checkpoint: '
                                  f'{getattr(e, "strerror", None) or e}')
        if os.path.lexists(current):
            shutil.rmtree(old, ignore_errors=True)
            os.replace(current, old)
        os.replace(new, current)
        _fsync_directory(self.directory)
        shutil.rmtree(old, ignore_errors=True)
        return current
