"""Checks of what a run will read that need no TensorFlow, run before it loads (seconds).

Each refuses with one line naming the option: a weights file that is missing or not HDF5 (or
truncated), a SavedModel directory without its graph or variables, TensorBoard not installed.
What they cannot see (a weights file of another network, say) fails where TensorFlow reads it,
still as one line.
"""

import importlib.util
import os
import struct

from .errors import ConfigError, WeightsError

HDF5_SIGNATURE = b'\x89HDF\r\n\x1a\n'
WEIGHTS_EXTENSIONS = ('.h5', '.hdf5')  # '.weights.h5' (Keras 3) ends in '.h5'
_UNDEFINED = object()


def check_weights(weights: str) -> None:
    """Refuses a weights file that Keras could not read: missing, not HDF5, or truncated."""
    if weights in ('imagenet', 'random'):
        return

    def fail(reason):
        raise WeightsError(f'weights {weights!r}: {reason}', option='weights')

    if not os.path.exists(weights):
        fail('no such file (use imagenet, a VGG19 weights file such as convert_weights writes, '
             'or random for tests)')
    if os.path.isdir(weights):
        fail('is a directory (an exported extractor? give it as extractor)')
    if not weights.lower().endswith(WEIGHTS_EXTENSIONS):
        fail('expected a Keras .weights.h5 file or the legacy .h5')
    try:
        with open(weights, 'rb') as f:
            size = os.fstat(f.fileno()).st_size
            eof = _hdf5_end(f, size)
    except OSError as e:
        fail(f'cannot be read: {e.strerror or e}')
    if eof is None:
        fail('empty' if size == 0 else 'not an HDF5 file (no HDF5 signature)')
    if eof is not _UNDEFINED and size < eof:
        fail(f'truncated ({size} of {eof} bytes)')


def _hdf5_end(f, size):
    """The file size an HDF5 file's superblock records (None: no superblock; _UNDEFINED: none
    recorded).

    The superblock is at 0, 512, 1024, 2048, ... (after a user block). Its end-of-file address is
    what HDF5 itself compares with the file's size to detect a truncated file (HDF5 file format
    specification, section II.A).
    """
    offset = 0
    while offset + len(HDF5_SIGNATURE) <= size:
        f.seek(offset)
        head = f.read(64)
        if head.startswith(HDF5_SIGNATURE):
            return _superblock_end(head, offset)
        offset = 512 if offset == 0 else 2 * offset
    return None


def _superblock_end(head, offset):
    version = head[8]
    if version in (0, 1):
        size_of_offsets, addresses = head[13], 24 if version == 0 else 28
    elif version in (2, 3):
        size_of_offsets, addresses = head[9], 12
    else:
        return _UNDEFINED  # a format this check does not know: leave it to HDF5
    codes = {2: '<H', 4: '<I', 8: '<Q'}
    if size_of_offsets not in codes or addresses + 3 * size_of_offsets > len(head):
        return _UNDEFINED
    code = codes[size_of_offsets]
    # Addresses, in order: base, free-space info (v0/1) or superblock extension (v2/3), end of
    # file. HDF5 compares the last with the file's whole size, user block included.
    end = struct.unpack_from(code, head, addresses + 2 * size_of_offsets)[0]
    return _UNDEFINED if end == (1 << (8 * size_of_offsets)) - 1 else end


def check_saved_model(path: str, option: str = 'extractor') -> None:
    """Refuses a directory that is not a whole SavedModel: no saved_model.pb, or no variables."""
    def fail(reason):
        raise ConfigError(f'{option} {path!r}: {reason}', option=option)

    if not os.path.exists(path):
        fail('no such directory')
    if not os.path.isdir(path):
        fail('is a file, not a SavedModel directory (write one with export_extractor)')
    graph = os.path.join(path, 'saved_model.pb')
    if not os.path.isfile(graph):
        fail('not a SavedModel directory (no saved_model.pb): write one with export_extractor')
    if os.path.getsize(graph) == 0:
        fail('saved_model.pb is empty')
    variables = os.path.join(path, 'variables')
    if os.path.isdir(variables) and not os.path.isfile(os.path.join(variables,
                                                                    'variables.index')):
        fail('incomplete SavedModel: variables/variables.index is missing')
    if not os.access(graph, os.R_OK):
        fail('saved_model.pb is not readable')


def check_tensorboard(logdir) -> None:
    """Refuses a `logdir` when TensorBoard, which writes it, is not installed."""
    if logdir and importlib.util.find_spec('tensorboard') is None:
        raise ConfigError("logdir needs TensorBoard: pip install tensorboard (or pip install "
                          "'tf_style[tensorboard]')", option='logdir')
