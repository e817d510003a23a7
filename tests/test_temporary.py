"""Temporaries (temporary.py): what a process quitting at once removes."""

import os

from tf_style import images, temporary


def test_remove_all_removes_what_is_being_written_and_nothing_else(tmp_path):
    fd, written = temporary.mkstemp(dir=tmp_path)
    os.close(fd)
    folder = temporary.mkdtemp(dir=tmp_path)
    open(os.path.join(folder, 'frame.png'), 'wb').close()
    fd, renamed = temporary.mkstemp(dir=tmp_path)
    os.close(fd)
    temporary.release(renamed)
    temporary.remove_all()
    assert os.listdir(tmp_path) == [os.path.basename(renamed)]
    temporary.remove_all()  # nothing left to remove: no error


def test_an_atomic_write_is_registered_until_renamed(tmp_path):
    seen = []

    def write(f):
        seen.extend(path for path in temporary._pending if os.path.exists(path))
        f.write(b'x')
    images._write_atomically(str(tmp_path / 'out.bin'), write)
    assert [os.path.dirname(path) for path in seen] == [str(tmp_path)]
    assert not temporary._pending and os.listdir(tmp_path) == ['out.bin']
