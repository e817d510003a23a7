"""Every path a run will write, checked before any work.

A run writes its output image, snapshots named by a pattern, checkpoints, TensorBoard logs and
exported directories. `plan_outputs` checks them all at once, before TensorFlow loads, so that a
run is refused in a fraction of a second instead of failing at its first snapshot or its end: no
path is or resolves to an input, every directory exists (or can be created) and is writable, every
name fits its filesystem, and each filesystem has room for what will be written on it.

No TensorFlow here.
"""

import collections
import dataclasses
import os
import shutil
import stat
import string
import unicodedata
from typing import Optional, Sequence, Tuple

from . import checkpoint
from .errors import OutputError

# Image formats by extension (as images.FORMATS; not imported, to keep Pillow out of this module).
IMAGE_EXTENSIONS = ('.png', '.jpg', '.jpeg', '.webp')

SNAPSHOT_FIELDS = ('stem', 'ext', 'iteration')

# What writing a file adds to its name: images._write_atomically's temporary file
# '.NAME.XXXXXXXX.tmp' (mkstemp's random part has 8 characters). A name that fits but whose
# temporary name does not would fail only when written.
TEMP_NAME_EXTRA = len('..') + 8 + len('.tmp')
# The longest path tf_style or TensorBoard writes inside a directory it is given:
# '.ckpt-new/vars.data-00000-of-00001', or an event file 'events.out.tfevents.TIME.HOST.PID.N.v2'.
DIRECTORY_CONTENT_EXTRA = 128


@dataclasses.dataclass(frozen=True)
class Planned:
    """One path a run writes: what names it (a library option), file or directory, bytes at most."""
    what: str
    path: str
    kind: str = 'file'  # or 'dir' (created with its missing parents)
    nbytes: int = 0
    # How the option gave this path, when not as itself: a snapshot's pattern and iteration.
    via: str = ''

    def __str__(self):
        return f'{self.what} {self.via}{self.path!r}'


class SnapshotPattern:
    """The names of snapshot images: `pattern` with {stem} and {ext} of `output`, and {iteration}.

    A relative pattern is relative to the output's directory, so snapshots go beside the output:
    '{stem}_{iteration:04d}{ext}' with output 'out/x.png' names iteration 7 'out/x_0007.png'.
    """

    def __init__(self, pattern: str, output: str):
        self.pattern = pattern
        self.directory = os.path.dirname(os.path.abspath(output))
        self.stem, self.ext = os.path.splitext(os.path.basename(output))
        for _, field, _, _ in self._parsed():
            if field is not None and field not in SNAPSHOT_FIELDS:
                self._fail(f'unknown field {{{field}}} (use {{stem}}, {{ext}}, {{iteration}})')
        name = self._name(1)  # a bad format spec fails here, e.g. {stem:04d}
        if not os.path.basename(name) or os.path.basename(name) in ('.', '..'):
            self._fail('it names a directory, not a file')
        if os.path.splitext(name)[1].lower() not in IMAGE_EXTENSIONS:
            self._fail(f'{os.path.basename(name)!r} has no image extension '
                       f'({", ".join(IMAGE_EXTENSIONS)}; {{ext}} is the output\'s)')

    def _parsed(self):
        try:
            return list(string.Formatter().parse(self.pattern))
        except ValueError as e:  # an unclosed or unmatched brace
            self._fail(f'{e} (write a literal brace as {{{{ or }}}})')

    def _fail(self, reason):
        raise OutputError(f'save_pattern {self.pattern!r}: {reason}', option='save_pattern')

    def _name(self, iteration):
        try:
            return self.pattern.format(stem=self.stem, ext=self.ext, iteration=iteration)
        except KeyError as e:  # a field in a format spec: {iteration:{width}}
            self._fail(f'unknown field {{{e.args[0]}}} (use {{stem}}, {{ext}}, {{iteration}})')
        except (IndexError, AttributeError, ValueError, TypeError) as e:
            self._fail(str(e))

    def path(self, iteration: int) -> str:
        name = os.path.expanduser(self._name(iteration))
        return os.path.abspath(os.path.join(self.directory, name))

    def paths(self, iterations) -> dict:
        """{path: first iteration written there}, for every iteration in `iterations`."""
        paths = {}
        for i in iterations:
            paths.setdefault(self.path(i), i)
        return paths


def snapshot_iterations(total: int, every: int) -> range:
    """The iterations a run of `total` iterations saves a snapshot at, one every `every`."""
    return range(every, total + 1, every) if every > 0 else range(0)


def _input_ids(paths) -> dict:
    """{(device, inode): path} of the input files: a symlink or hard link to one is that input."""
    ids = {}
    for path in paths:
        try:
            st = os.stat(path) if path else None
        except (OSError, ValueError):
            continue  # a missing input fails where it is read
        if st is not None:
            ids.setdefault((st.st_dev, st.st_ino), path)
    return ids


def check_writable(path: str, inputs=(), what: str = 'output', kind: str = 'file',
                   overwrite: bool = True) -> None:
    """Refuses `path` (a file, or a directory to create) if it is an input or cannot be written,
    or, without `overwrite`, if it is an existing file. `what` is the option that names it."""
    _check(Planned(what, os.path.abspath(path), kind), _input_ids(inputs), {}, overwrite)


def _check(item: Planned, inputs: dict, folders: dict, overwrite: bool) -> None:
    """check_writable's checks; `folders` keeps what is known of each parent directory, which
    many snapshots share."""
    def fail(reason, see=()):
        raise OutputError(f'{item} {reason}', option=item.what, see=see)

    path = item.path
    if item.kind == 'file':
        parent = os.path.dirname(path)
        if parent not in folders:
            folders[parent] = _Folder.of(parent)
        folder = folders[parent]
        if folder.problem:
            fail(f'cannot be written: {folder.problem}')
        # Only a name the folder holds can be an input or exist (one listing, not a stat each).
        exists = _folded(os.path.basename(path)) in folder.names
        st = _stat(path) if exists else None
    else:
        st = _stat(path)
        exists = st is not None
    if st is not None and (st.st_dev, st.st_ino) in inputs:
        fail(f'is the input {inputs[st.st_dev, st.st_ino]!r}: choose another {item.what}')
    if item.kind == 'file':
        if st is not None and stat.S_ISDIR(st.st_mode):
            fail('is a directory')
        if exists and not overwrite and os.path.lexists(path):
            fail(f'exists: choose another {item.what}, or replace it', see=('overwrite',))
        if st is not None and not os.access(path, os.W_OK):
            fail('is write-protected')
        _check_names(item, [os.path.basename(path)], folder.name_max, folder.path_max,
                     TEMP_NAME_EXTRA, fail)
    else:
        if st is not None and not stat.S_ISDIR(st.st_mode):
            fail('is a file, not a directory')
        existing = _existing_ancestor(path)
        if not os.path.isdir(existing):
            fail(f'cannot be created: {existing!r} is a file')
        if not os.access(existing, os.W_OK | os.X_OK):
            fail(f'cannot be written: {existing!r} is not writable')
        created = os.path.relpath(path, existing).split(os.sep) if existing != path else []
        _check_names(item, created, _limit(existing, 'PC_NAME_MAX', 255),
                     _limit(existing, 'PC_PATH_MAX', 4096), DIRECTORY_CONTENT_EXTRA, fail)


def _stat(path):
    try:
        return os.stat(path)
    except (OSError, ValueError):
        return None


def _folded(name):
    # Case-insensitive (and normalizing) filesystems: 'Content.png' may be 'content.png'.
    return unicodedata.normalize('NFC', name).casefold()


@dataclasses.dataclass(frozen=True)
class _Folder:
    """A directory files are written in: why it cannot be (or None), its name and path length
    limits, and the names it holds (folded)."""
    problem: Optional[str]
    name_max: int = 0
    path_max: int = 0
    names: frozenset = frozenset()

    @classmethod
    def of(cls, directory):
        if not os.path.isdir(directory):
            return cls(f'{directory!r} is not a directory' if os.path.exists(directory)
                       else f'directory {directory!r} does not exist')
        if not os.access(directory, os.W_OK | os.X_OK):
            return cls(f'directory {directory!r} is not writable')
        return cls(None, _limit(directory, 'PC_NAME_MAX', 255),
                   _limit(directory, 'PC_PATH_MAX', 4096),
                   frozenset(map(_folded, os.listdir(directory))))


def _check_names(item, names, name_max, path_max, extra, fail):
    """Refuses names and a path longer than the filesystem allows, with `extra` bytes written
    (files: the temporary name's; directories: the longest path written inside)."""
    for name in names:
        length = len(os.fsencode(name))
        if item.kind == 'file' and length + extra > name_max:
            fail(f'has a name too long for its filesystem ({length} bytes; at most '
                 f'{name_max - extra})')
        if item.kind == 'dir' and length > name_max:
            fail(f'has a name too long for its filesystem ({name[:20]}...: {length} bytes; at '
                 f'most {name_max})')
    if len(os.fsencode(item.path)) + extra >= path_max:
        fail(f'is too long a path ({len(os.fsencode(item.path))} bytes; at most '
             f'{path_max - extra - 1} here)')


def _limit(directory, name, default):
    try:
        return os.pathconf(directory, name)
    except (OSError, ValueError, AttributeError):  # no pathconf (Windows), or no such limit
        return default


def _existing_ancestor(path: str) -> str:
    """`path` if it exists, else its nearest existing ancestor (the filesystem it will be on)."""
    while not os.path.exists(path):
        parent = os.path.dirname(path)
        if parent == path:
            break
        path = parent
    return path


def check_disk(needs: Sequence[Planned]) -> None:
    """Refuses a run whose writes do not fit the free space of the filesystem each goes to.

    Writes are grouped by the filesystem (device) of their path's nearest existing ancestor.
    """
    by_device, devices = collections.defaultdict(list), {}
    for item in needs:
        if item.nbytes > 0:
            # A file is on its folder's filesystem; the folder is looked up once for all files.
            start = os.path.dirname(item.path) if item.kind == 'file' else item.path
            if start not in devices:
                where = _existing_ancestor(start)
                devices[start] = where, os.stat(where).st_dev
            where, device = devices[start]
            by_device[device].append((where, item))
    for items in by_device.values():
        where = items[0][0]
        free = shutil.disk_usage(where).free
        need = sum(item.nbytes for _, item in items)
        if need > free:
            per_option = collections.Counter()
            for _, item in items:
                per_option[item.what] += item.nbytes
            parts = ', '.join(f'{what} {n / 2**20:.0f} MiB' for what, n in
                              per_option.most_common())
            raise OutputError(f'{where!r} has {free / 2**20:.0f} MiB free; this run may write '
                              f'{need / 2**20:.0f} MiB on its filesystem ({parts})',
                              option=per_option.most_common(1)[0][0])


@dataclasses.dataclass(frozen=True)
class Plan:
    """What a run will write, checked: every path, and the snapshots' names."""
    writes: Tuple[Planned, ...]
    snapshots: Optional[SnapshotPattern] = None

    def snapshot_path(self, iteration: int) -> str:
        return self.snapshots.path(iteration)


def plan_outputs(output: Optional[str] = None, *, inputs=(), size=None, overwrite: bool = False,
                 save_pattern: Optional[str] = None, snapshot_iterations=(),
                 checkpoint_dir: Optional[str] = None, resume: bool = False,
                 checkpoint_bytes: int = 0, logdir: Optional[str] = None,
                 extra: Sequence[Planned] = ()) -> Plan:
    """Checks every path a run will write before it starts; returns the plan.

    `output` is the image the run writes, `size` its (height, width) for the disk check (none
    without it). `save_pattern` names a snapshot at each of `snapshot_iterations`; every name it
    gives is checked. `checkpoint_dir` is checked as a directory to write checkpoints of
    `checkpoint_bytes` in, and with `resume` its checkpoint is verified; `logdir` is TensorBoard's.
    `extra` are further writes (exported directories, a batch's outputs). Existing files are
    replaced only with `overwrite`; no write may be an input, whatever the options.
    """
    raw = 3 * size[0] * size[1] if size else 0
    writes, snapshots = [], None
    if output is not None:
        if os.path.splitext(output)[1].lower() not in IMAGE_EXTENSIONS:
            raise OutputError(f'output {output!r}: unknown image format; use '
                              f'{", ".join(IMAGE_EXTENSIONS)}', option='output')
        writes.append(Planned('output', os.path.abspath(output), nbytes=raw))
    if save_pattern is not None and len(snapshot_iterations):
        snapshots = SnapshotPattern(save_pattern, output or '')
        writes += [Planned('save_pattern', path, nbytes=raw, via=f'{save_pattern!r} at iteration '
                           f'{iteration}: ') for path, iteration in
                   snapshots.paths(snapshot_iterations).items()]
    if checkpoint_dir is not None:
        # Written beside the previous checkpoint before that is removed: twice its size.
        writes.append(Planned('checkpoint_dir', os.path.abspath(checkpoint_dir), 'dir',
                              2 * checkpoint_bytes))
    if logdir is not None and '://' not in logdir:  # TensorBoard also writes to gs:// and such
        # Scalars, and an image (a PNG) at every snapshot.
        writes.append(Planned('logdir', os.path.abspath(logdir), 'dir',
                              2**20 + raw * len(snapshot_iterations)))
    writes += [dataclasses.replace(item, path=os.path.abspath(item.path)) for item in extra]
    _check_overlaps(writes)
    known, folders = _input_ids(inputs), {}
    for item in writes:
        _check(item, known, folders, overwrite)
    if checkpoint_dir is not None:
        if resume:
            checkpoint.verify_checkpoint(checkpoint_dir)
        else:
            checkpoint.check_replaceable(checkpoint_dir)
    check_disk(writes)
    return Plan(tuple(writes), snapshots)


def _check_overlaps(writes):
    """Refuses a file that is another option's directory, or inside a checkpoint's own folders
    (replaced whole at every save)."""
    directories = {item.path: item for item in writes if item.kind == 'dir'}
    managed = [os.path.join(item.path, name) for item in writes
               if item.what == 'checkpoint_dir' for name in checkpoint.NAMES]
    for item in writes:
        if item.kind != 'file':
            continue
        if item.path in directories:
            raise OutputError(f'{item} is also {directories[item.path].what}', option=item.what)
        for folder in managed:
            if item.path == folder or item.path.startswith(folder + os.sep):
                raise OutputError(f'{item} is inside the checkpoint folder {folder!r}, which '
                                  'every checkpoint replaces', option=item.what)


def check_directory_output(path: str, overwrite: bool, option: str = 'output_dir') -> None:
    """Refuses a directory to write that cannot be created, or that exists and holds files,
    unless `overwrite` (a SavedModel or a batch is written there whole)."""
    check_writable(path, what=option, kind='dir')
    if os.path.isdir(path) and os.listdir(path) and not overwrite:
        raise OutputError(f'{option} {path!r} exists and is not empty: choose another '
                          f'{option}, or replace it', option=option, see=('overwrite',))
