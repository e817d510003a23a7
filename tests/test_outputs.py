"""Every path a run writes, checked before any work: one case per kind of problem.

Each refusal is one line naming the option, and leaves the directory as it was.
"""

import collections
import os
import shutil
import subprocess
import sys

import pytest

from conftest import ROOT
from tf_style import checkpoint, outputs
from tf_style.errors import CheckpointError, OutputError


@pytest.fixture
def run_dir(tmp_path, monkeypatch):
    """A folder with two input files; cwd is elsewhere, so that nothing lands there unseen."""
    (tmp_path / 'content.png').write_bytes(b'content bytes')
    (tmp_path / 'style.jpg').write_bytes(b'style bytes')
    cwd = tmp_path / 'cwd'
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    return tmp_path


def tree(root):
    """{relative path: bytes, or None for a folder} of everything under `root`."""
    found = {}
    for folder, dirs, files in os.walk(root):
        for name in dirs:
            found[os.path.relpath(os.path.join(folder, name), root)] = None
        for name in files:
            path = os.path.join(folder, name)
            found[os.path.relpath(path, root)] = open(path, 'rb').read() \
                if os.path.isfile(path) else os.readlink(path)
    return found


def refused(run_dir, match, error=OutputError, option=None, see=(), **options):
    """Asserts that plan_outputs refuses `options` with one line naming `option` (and `see`, the
    other options that are a way out), and changes nothing."""
    before = tree(run_dir)
    options.setdefault('inputs', [str(run_dir / 'content.png'), str(run_dir / 'style.jpg')])
    with pytest.raises(error, match=match) as e:
        outputs.plan_outputs(**options)
    assert '\n' not in str(e.value)
    assert e.value.option == option and e.value.see == see
    assert tree(run_dir) == before
    return str(e.value)


def test_a_plan_lists_every_write(run_dir):
    plan = outputs.plan_outputs(
        str(run_dir / 'out.png'), inputs=[str(run_dir / 'content.png')], size=(24, 32),
        save_pattern='{stem}_{iteration:04d}{ext}', snapshot_iterations=range(5, 11, 5),
        checkpoint_dir=str(run_dir / 'ck'), checkpoint_bytes=1000, logdir=str(run_dir / 'logs'))
    assert [(w.what, os.path.relpath(w.path, run_dir), w.kind) for w in plan.writes] == [
        ('output', 'out.png', 'file'), ('save_pattern', 'out_0005.png', 'file'),
        ('save_pattern', 'out_0010.png', 'file'), ('checkpoint_dir', 'ck', 'dir'),
        ('logdir', 'logs', 'dir')]
    assert plan.snapshot_path(7) == str(run_dir / 'out_0007.png')
    assert not (run_dir / 'ck').exists() and not (run_dir / 'logs').exists()


def test_a_pattern_without_a_directory_goes_beside_the_output(run_dir):
    plan = outputs.plan_outputs(str(run_dir / 'out.png'), save_pattern='snap_{iteration}.png',
                                snapshot_iterations=[3])
    assert plan.snapshot_path(3) == str(run_dir / 'snap_3.png')  # not in the cwd
    assert outputs.snapshot_iterations(10, 4) == range(4, 11, 4)
    assert list(outputs.snapshot_iterations(10, 0)) == []


@pytest.mark.parametrize('pattern', [
    '../content.png',             # the content image itself (the run dir is the cwd's parent)
    'content.png',                # beside the output: the content image
    'link.png',                   # a symlink to it
    'hard.png',                   # a hard link to it
    'cont{stem:.0}ent.png',      # a format spec that renders it
    'content{iteration}.png',     # only at iteration 3 (content3.png is an input too)
])
def test_a_pattern_that_renders_an_input_is_refused(run_dir, pattern):
    os.symlink(run_dir / 'content.png', run_dir / 'link.png')
    os.link(run_dir / 'content.png', run_dir / 'hard.png')
    (run_dir / 'content3.png').write_bytes(b'third')
    inputs = [str(run_dir / name) for name in ('content.png', 'style.jpg', 'content3.png')]
    output = str(run_dir / 'out.png') if pattern != '../content.png' else 'out.png'
    message = refused(run_dir, 'is the input', option='save_pattern', output=output,
                      inputs=inputs, save_pattern=pattern, snapshot_iterations=range(1, 6))
    assert message.startswith(f'save_pattern {pattern!r} at iteration ')


@pytest.mark.parametrize('pattern, match', [
    ('{stem}_{iter}{ext}', r'unknown field \{iter\}'),
    ('{stem}_{iteration{ext}', "unexpected '{'"),
    ('{stem}_{iteration', "expected '}'"),
    ('{stem}_}{iteration}{ext}', "Single '}'"),
    ('{stem}_{}{ext}', r'unknown field \{\}'),
    ('{stem}_{iteration.real}{ext}', 'unknown field'),
    ('{stem:04d}{ext}', "Unknown format code 'd'"),
    ('{stem}_{iteration:{width}}{ext}', r'unknown field \{width\}'),
    ('{stem}_{iteration}', 'no image extension'),
    ('snaps/', 'names a directory'),
])
def test_a_bad_pattern_is_refused_before_any_work(run_dir, pattern, match):
    message = refused(run_dir, match, option='save_pattern', output=str(run_dir / 'out.png'),
                      save_pattern=pattern, snapshot_iterations=[1])
    assert message.startswith(f'save_pattern {pattern!r}: ')


@pytest.mark.parametrize('name', ['content.png', './content.png', 'link.png', 'hard.png'])
def test_an_output_that_is_an_input_is_refused(run_dir, name):
    os.symlink(run_dir / 'content.png', run_dir / 'link.png')
    os.link(run_dir / 'content.png', run_dir / 'hard.png')
    refused(run_dir, "is the input '.*content.png'", option='output', output=str(run_dir / name),
            overwrite=True)


@pytest.mark.parametrize('option', ['checkpoint_dir', 'logdir'])
def test_a_directory_option_naming_a_file_is_refused(run_dir, option):
    (run_dir / 'notes.txt').write_text('mine')
    refused(run_dir, 'is a file, not a directory', option=option,
            **{option: str(run_dir / 'notes.txt')})
    refused(run_dir, "cannot be created: .*notes.txt' is a file", option=option,
            **{option: str(run_dir / 'notes.txt' / 'sub')})
    refused(run_dir, 'is the input', option=option, **{option: str(run_dir / 'content.png')})


def test_an_output_naming_a_directory_is_refused(run_dir):
    (run_dir / 'out.png').mkdir()
    refused(run_dir, 'is a directory', option='output', output=str(run_dir / 'out.png'))
    refused(run_dir, 'is a directory', option='save_pattern', output=str(run_dir / 'x.png'),
            save_pattern='out.png', snapshot_iterations=[1])


def test_a_missing_or_unwritable_directory_is_refused(run_dir, monkeypatch):
    refused(run_dir, "directory '.*nowhere' does not exist", option='output',
            output=str(run_dir / 'nowhere' / 'out.png'))
    refused(run_dir, "directory '.*nowhere' does not exist", option='save_pattern',
            output=str(run_dir / 'out.png'), save_pattern='nowhere/{iteration}.png',
            snapshot_iterations=[1])
    # Tests may run as root, whom permissions do not stop: a read-only folder, as os.access says.
    locked = str(run_dir / 'locked')
    os.mkdir(locked)
    access = os.access
    monkeypatch.setattr(os, 'access', lambda p, mode: access(p, mode) and p != locked)
    refused(run_dir, 'is not writable', option='output', output=os.path.join(locked, 'o.png'))
    refused(run_dir, 'is not writable', option='checkpoint_dir',
            checkpoint_dir=os.path.join(locked, 'a', 'b'))


def test_a_name_too_long_for_its_filesystem_is_refused(run_dir):
    name_max = os.pathconf(run_dir, 'PC_NAME_MAX')
    # Fits as a name, but not with the temporary name it is written under first.
    long_name = 'x' * (name_max - 4) + '.png'
    refused(run_dir, 'name too long for its filesystem', option='output',
            output=str(run_dir / long_name))
    refused(run_dir, 'name too long', option='save_pattern', output=str(run_dir / 'out.png'),
            save_pattern='{iteration}' + 'x' * (name_max - 8) + '.png', snapshot_iterations=[1])
    refused(run_dir, 'name too long', option='checkpoint_dir',
            checkpoint_dir=str(run_dir / 'ok' / ('c' * (name_max + 1))))
    deep = os.path.join(str(run_dir), *['d' * 200] * 21)
    refused(run_dir, 'too long a path', option='logdir', logdir=deep)
    outputs.plan_outputs(str(run_dir / ('x' * (name_max - outputs.TEMP_NAME_EXTRA - 4) + '.png')))


def test_an_existing_file_is_replaced_only_with_overwrite(run_dir):
    (run_dir / 'out.png').write_bytes(b'an earlier result')
    (run_dir / 'out_0002.png').write_bytes(b'an earlier snapshot')
    # The option that replaces it is the caller's to spell (a flag, a keyword argument).
    message = refused(run_dir, 'exists: choose another output, or replace it$', option='output',
                      see=('overwrite',), output=str(run_dir / 'out.png'))
    assert message.startswith(f"output {str(run_dir / 'out.png')!r} exists")
    refused(run_dir, 'out_0002.png.* exists', option='save_pattern', see=('overwrite',),
            output=str(run_dir / 'new.png'), save_pattern='out_{iteration:04d}.png',
            snapshot_iterations=[1, 2])
    outputs.plan_outputs(str(run_dir / 'out.png'), save_pattern='out_{iteration:04d}.png',
                         snapshot_iterations=[1, 2], overwrite=True)


def test_a_file_inside_the_checkpoint_folders_is_refused(run_dir):
    refused(run_dir, 'inside the checkpoint folder', option='save_pattern',
            output=str(run_dir / 'out.png'), checkpoint_dir=str(run_dir),
            save_pattern='ckpt/{iteration}.png', snapshot_iterations=[1])


def test_a_foreign_checkpoint_folder_is_never_replaced(run_dir):
    (run_dir / 'ck' / 'ckpt').mkdir(parents=True)
    (run_dir / 'ck' / 'ckpt' / 'model.weights').write_bytes(b'someone else\'s')
    refused(run_dir, 'not a tf_style checkpoint', error=CheckpointError, option='checkpoint_dir',
            output=str(run_dir / 'out.png'), checkpoint_dir=str(run_dir / 'ck'))
    refused(run_dir, 'no manifest.json', error=CheckpointError, option='checkpoint_dir',
            output=str(run_dir / 'out.png'), checkpoint_dir=str(run_dir / 'ck'), resume=True)


Usage = collections.namedtuple('Usage', 'total used free')


def test_free_space_is_measured_on_each_path_s_own_filesystem(run_dir, monkeypatch):
    other = '/dev/shm'
    if not os.access(other, os.W_OK) or os.stat(other).st_dev == os.stat(run_dir).st_dev:
        pytest.skip('needs a second writable filesystem at /dev/shm')
    big = 1 << 30
    usage = shutil.disk_usage
    free = {os.stat(run_dir).st_dev: 10 << 20, os.stat(other).st_dev: 100 << 30}
    monkeypatch.setattr(shutil, 'disk_usage',
                        lambda p: Usage(0, 0, free.get(os.stat(p).st_dev, usage(p).free)))
    ck = os.path.join(other, f'tf_style_test_{os.getpid()}', 'ck')
    # 1 GiB of checkpoints on the large filesystem, a small output on the small one: fits.
    outputs.plan_outputs(str(run_dir / 'out.png'), size=(512, 512), checkpoint_dir=ck,
                         checkpoint_bytes=big)
    # The same checkpoints beside the output do not.
    message = refused(run_dir, 'has 10 MiB free; this run may write 2049 MiB on its filesystem '
                      r'\(checkpoint_dir 2048 MiB, output 1 MiB\)', option='checkpoint_dir',
                      output=str(run_dir / 'out.png'), size=(512, 512),
                      checkpoint_dir=str(run_dir / 'ck'), checkpoint_bytes=big)
    assert repr(str(run_dir)) in message
    # Every snapshot counts, and the logdir's image of each.
    refused(run_dir, r'\(logdir 10 MiB, save_pattern 9 MiB, output 2 MiB\)', option='logdir',
            output=str(run_dir / 'out.png'), size=(768, 1024), save_pattern='{iteration}.png',
            snapshot_iterations=range(1, 5), logdir=str(run_dir / 'logs'))
    assert not os.path.exists(os.path.dirname(ck))


def test_check_writable_is_the_same_check_for_one_path(run_dir):
    outputs.check_writable(str(run_dir / 'a.png'), inputs=[str(run_dir / 'content.png')])
    with pytest.raises(OutputError, match="^output_dir '.*content.png' is the input"):
        outputs.check_writable(str(run_dir / 'content.png'), [str(run_dir / 'content.png')],
                               what='output_dir', kind='dir')


def test_planning_needs_no_tensorflow(tmp_path):
    code = ('import sys; from tf_style import outputs, preflight; '
            'outputs.plan_outputs("x.png", checkpoint_dir="ck"); '
            'assert "tensorflow" not in sys.modules and "keras" not in sys.modules')
    subprocess.run([sys.executable, '-c', code], check=True, cwd=tmp_path,
                   env=dict(os.environ, PYTHONPATH=ROOT))
    assert checkpoint.NAMES == ('ckpt', '.ckpt-new', '.ckpt-old')
