"""A hostile but fair user: bad paths and damaged state, driven through bin/stylize.

Each case asserts exit status 2, exactly one line on stderr ('stylize: error: ...', no
traceback), nothing written anywhere (the run's folder and the working directory), and every
input byte-identical afterwards. Refusals come before TensorFlow loads, so each case is quick.
"""

import json
import os
import shutil
import subprocess
import sys

import pytest

from conftest import EXAMPLES, ROOT

TINY = ['--weights=random', '--image_size=32', '--iterations=1', '--seed=1']


@pytest.fixture
def run(tmp_path):
    """tmp_path/run with copies of two examples; a stylize() that runs the binary from
    tmp_path/cwd."""
    folder, cwd = tmp_path / 'run', tmp_path / 'cwd'
    folder.mkdir()
    cwd.mkdir()
    for name in ('tubingen', 'starry_night'):
        shutil.copy(os.path.join(EXAMPLES, f'{name}.jpg'), folder / f'{name}.jpg')

    def stylize(*args):
        command = [sys.executable, os.path.join(ROOT, 'bin', 'stylize'),
                   f'--content={folder / "tubingen.jpg"}', f'--style={folder / "starry_night.jpg"}',
                   *TINY, *map(str, args)]
        return subprocess.run(command, capture_output=True, text=True, cwd=cwd, timeout=600,
                              env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL='2'))

    stylize.folder = folder
    return stylize


def tree(root):
    found = {}
    for folder, dirs, files in os.walk(root):
        for name in dirs + files:
            path = os.path.join(folder, name)
            found[os.path.relpath(path, root)] = (
                os.readlink(path) if os.path.islink(path) else
                open(path, 'rb').read() if os.path.isfile(path) else None)
    return found


def refused(stylize, *args, match):
    """Runs stylize with `args`; asserts a one-line refusal that changed nothing."""
    root = stylize.folder.parent
    before = tree(root)
    result = stylize(*args)
    lines = result.stderr.splitlines()
    assert result.returncode == 2, result.stderr
    assert len(lines) == 1 and lines[0].startswith('stylize: error: '), result.stderr
    assert 'Traceback' not in result.stderr
    assert match in lines[0], lines[0]
    assert tree(root) == before  # nothing written, every input byte-identical
    return lines[0]


@pytest.mark.parametrize('pattern', ['{content}', 'tubingen.jpg', 'link.jpg', 'hard.jpg'])
def test_a_save_pattern_naming_the_content_image_is_refused(run, pattern):
    content = run.folder / 'tubingen.jpg'
    os.symlink(content, run.folder / 'link.jpg')
    os.link(content, run.folder / 'hard.jpg')
    pattern = str(content) if pattern == '{content}' else pattern
    refused(run, f'--output={run.folder / "out.png"}', '--save_every=1',
            f'--save_pattern={pattern}', match='is the input')


@pytest.mark.parametrize('pattern, match', [
    ('{stem}_{iter}{ext}', 'unknown field {iter}'),
    ('{stem}_{iteration{ext}', 'save_pattern'),
    ('{stem}_{iteration', 'save_pattern'),
    ('{stem:04d}{ext}', 'save_pattern'),
])
def test_a_bad_save_pattern_is_refused_before_any_work(run, pattern, match):
    refused(run, f'--output={run.folder / "out.png"}', '--save_every=1',
            f'--save_pattern={pattern}', match=match)


def test_a_checkpoint_dir_naming_a_file_is_refused(run):
    (run.folder / 'notes.txt').write_text('mine')
    refused(run, f'--output={run.folder / "out.png"}',
            f'--checkpoint_dir={run.folder / "notes.txt"}', match='is a file')


def test_a_logdir_naming_a_file_is_refused(run):
    (run.folder / 'notes.txt').write_text('mine')
    refused(run, f'--output={run.folder / "out.png"}', f'--logdir={run.folder / "notes.txt"}',
            match='is a file')


def test_a_folder_tf_style_did_not_write_is_not_replaced_by_a_checkpoint(run):
    ckpt = run.folder / 'ck' / 'ckpt'
    ckpt.mkdir(parents=True)
    (ckpt / 'model.weights').write_bytes(b'not tf_style\'s')
    refused(run, f'--output={run.folder / "out.png"}', f'--checkpoint_dir={run.folder / "ck"}',
            '--checkpoint_every=1', match='not a tf_style checkpoint')


def _damaged_checkpoint(directory, kind):
    """A checkpoint folder as tf_style writes one, then damaged (no TensorFlow needed)."""
    from tf_style import checkpoint
    folder = directory / 'ckpt'
    folder.mkdir(parents=True)
    (folder / 'vars.index').write_bytes(b'index' * 100)
    (folder / 'vars.data-00000-of-00001').write_bytes(b'\0' * 10000)
    (folder / 'state.json').write_text(json.dumps(dict(scale=0, done=1, seed=1, fingerprint='x')))
    checkpoint._write_manifest(str(folder))
    if kind == 'truncated':
        os.truncate(folder / 'vars.data-00000-of-00001', 100)
    elif kind == 'corrupt':
        (folder / 'vars.index').write_bytes(b'INDEX' * 100)
    elif kind == 'newer':
        manifest = json.loads((folder / 'manifest.json').read_text())
        (folder / 'manifest.json').write_text(json.dumps(dict(manifest, version=99)))
    elif kind == 'of 0.8 (no manifest), cut short':
        (folder / 'manifest.json').unlink()
        (folder / 'state.json').write_text('{"sca')


@pytest.mark.parametrize('kind, match', [
    ('truncated', 'truncated'), ('corrupt', 'corrupt'), ('newer', 'newer tf_style'),
    ('of 0.8 (no manifest), cut short', 'no manifest.json'),
])
def test_resuming_a_damaged_checkpoint_is_refused(run, kind, match):
    _damaged_checkpoint(run.folder / 'ck', kind)
    line = refused(run, f'--output={run.folder / "out.png"}',
                   f'--checkpoint_dir={run.folder / "ck"}', '--resume', match=match)
    assert str(run.folder / 'ck') in line


def test_an_output_name_too_long_for_its_filesystem_is_refused_before_the_run(run):
    name = 'x' * (os.pathconf(run.folder, 'PC_NAME_MAX') - 4) + '.png'
    refused(run, f'--output={run.folder / name}', match='too long')


def test_a_weights_file_that_is_not_hdf5_is_refused(run):
    (run.folder / 'vgg19.weights.h5').write_text('<html>Not Found</html>')
    refused(run, f'--output={run.folder / "out.png"}',
            f'--weights={run.folder / "vgg19.weights.h5"}', match='not an HDF5 file')


def test_an_extractor_that_is_not_a_saved_model_is_refused(run):
    (run.folder / 'model').mkdir()
    refused(run, f'--output={run.folder / "out.png"}', f'--extractor={run.folder / "model"}',
            match='saved_model.pb')


def test_paths_naming_options_are_quoted_exactly_the_flag_beside_the_message(run):
    weights = run.folder / 'tile_size' / 'my.weights.h5'  # missing
    line = refused(run, f'--output={run.folder / "out.png"}', f'--weights={weights}',
                   match=repr(str(weights)))
    assert line.startswith(f"stylize: error: --weights: weights '{weights}': no such file")
    output = run.folder / 'overwrite.png'
    output.write_bytes(b'mine')
    line = refused(run, f'--output={output}', match=repr(str(output)))
    assert line == (f"stylize: error: --output: output '{output}' exists: choose another "
                    'output, or replace it (see --overwrite)')


def test_an_unknown_flag_is_one_line_and_status_2(run):
    refused(run, '--outptu=x.png', match='outptu')


@pytest.mark.slow  # a whole (tiny) run
def test_snapshots_from_a_pattern_without_a_directory_go_beside_the_output(run, tmp_path):
    result = run(f'--output={run.folder / "out.png"}', '--save_every=1',
                 '--save_pattern=snap_{iteration}.png', '--quiet')
    assert result.returncode == 0, result.stderr
    assert (run.folder / 'snap_1.png').exists()
    assert os.listdir(tmp_path / 'cwd') == []
