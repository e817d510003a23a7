"""Long runs: stop and resume, refused resumes, numerical faults, keeping the best image."""

import shutil

import numpy as np
import pytest
import tensorflow as tf

from conftest import example
from tf_style.checkpoint import CheckpointError, Checkpointer, verify_checkpoint
from tf_style.errors import TfStyleError
from tf_style.adam import MAX_FAULTS
from tf_style.transfer import stylize

pytestmark = pytest.mark.kernels

OPTIONS = dict(image_size=48, seed=3, weights='random', init='noise')


@pytest.fixture(scope='module')
def pair():
    return example('tubingen', 48), example('starry_night', 48)


def stop_after(n):
    calls = []
    return lambda: calls.append(1) or len(calls) >= n


@pytest.mark.parametrize('settings', [
    dict(optimizer='lbfgs', iterations=6),
    dict(optimizer='adam', iterations=6),
    # Stops inside the coarse scale; style_scale keeps the half-size style image deep enough
    # for block5_conv1.
    dict(optimizer='lbfgs', scales=2, scale_iterations=(4, 3), style_scale=1.5),
])
@pytest.mark.slow
def test_resumed_run_ends_where_an_uninterrupted_one_does(random_extractor, pair, tmp_path,
                                                          settings):
    whole = stylize(*pair, extractor=random_extractor, **OPTIONS, **settings)
    first = stylize(*pair, extractor=random_extractor, should_stop=stop_after(3),
                    checkpointer=Checkpointer(str(tmp_path), every=0), **OPTIONS, **settings)
    assert not first.completed and first.iterations == 3
    assert (tmp_path / 'ckpt' / 'state.json').exists()
    rest = stylize(*pair, extractor=random_extractor,
                   checkpointer=Checkpointer(str(tmp_path), resume=True), **OPTIONS, **settings)
    assert rest.completed and rest.iterations == whole.iterations
    # Exact: the same computation, resumed from every bit of its state.
    np.testing.assert_array_equal(rest.image, whole.image)
    assert rest.losses['total'] == whole.losses['total']


@pytest.mark.slow
def test_a_run_that_went_on_in_float32_resumes_in_float32(random_extractor, pair, tmp_path,
                                                          monkeypatch):
    from tf_style import optimize
    # As if every line search failed: a mixed run goes on in float32 after its first iteration.
    monkeypatch.setattr(optimize.Optimization, 'stalled', lambda self: True)
    settings = dict(OPTIONS, precision='mixed', iterations=6)
    whole = stylize(*pair, extractor=random_extractor, **settings)
    stylize(*pair, extractor=random_extractor, should_stop=stop_after(3),
            checkpointer=Checkpointer(str(tmp_path), every=0), **settings)
    rest = stylize(*pair, extractor=random_extractor,
                   checkpointer=Checkpointer(str(tmp_path), resume=True), **settings)
    # Exact: the same computation, resumed from every bit of its state.
    np.testing.assert_array_equal(rest.image, whole.image)
    assert rest.losses['total'] == whole.losses['total']


def test_resume_refuses_other_settings_or_inputs(random_extractor, pair, tmp_path):
    stylize(*pair, extractor=random_extractor, iterations=2, **OPTIONS,
            checkpointer=Checkpointer(str(tmp_path), every=1))
    with pytest.raises(TfStyleError, match='other inputs or settings'):
        stylize(*pair, extractor=random_extractor, iterations=2, style_weight=5.0, **OPTIONS,
                checkpointer=Checkpointer(str(tmp_path), resume=True))
    with pytest.raises(TfStyleError, match='other inputs or settings'):
        stylize(pair[1], pair[0], extractor=random_extractor, iterations=2, **OPTIONS,
                checkpointer=Checkpointer(str(tmp_path), resume=True))


def test_nothing_to_resume(random_extractor, pair, tmp_path):
    with pytest.raises(TfStyleError, match='nothing to resume'):
        stylize(*pair, extractor=random_extractor, iterations=2, **OPTIONS,
                checkpointer=Checkpointer(str(tmp_path), resume=True))


def test_periodic_checkpoints_leave_one_complete_directory(random_extractor, pair, tmp_path):
    stylize(*pair, extractor=random_extractor, iterations=4, **OPTIONS,
            checkpointer=Checkpointer(str(tmp_path), every=1))
    assert sorted(p.name for p in tmp_path.iterdir()) == ['ckpt']


class FlakyExtractor:
    """Features that are NaN on the evaluations whose number is in `bad` (all when None)."""

    def __init__(self, extractor, bad=None):
        self.extractor = extractor
        self.bad = bad
        self.calls = tf.Variable(0)

    def __call__(self, images, layers):
        self.calls.assign_add(1)
        features = self.extractor(images, layers=layers)
        if self.bad is None:
            poisoned = tf.constant(True)
        else:
            poisoned = tf.reduce_any(tf.equal(self.calls, tf.constant(self.bad)))
        scale = tf.where(poisoned, np.nan, 1.0)
        return {k: v * scale for k, v in features.items()}


@pytest.mark.parametrize('optimizer', ['adam', 'lbfgs'])
def test_nan_never_reaches_the_image(random_extractor, pair, optimizer):
    start = stylize(*pair, extractor=random_extractor, iterations=0, **OPTIONS).image
    result = stylize(*pair, extractor=FlakyExtractor(random_extractor), iterations=3 * MAX_FAULTS,
                     optimizer=optimizer, **OPTIONS)
    np.testing.assert_array_equal(result.image, start)  # the last good image: the start
    if optimizer == 'adam':
        assert not result.completed and 'NaN or Inf' in result.stop_reason


def test_adam_steps_over_a_few_nans(random_extractor, pair):
    # Evaluations 1 and 2 build the targets; 4 and 5 are iterations 2 and 3.
    flaky = stylize(*pair, extractor=FlakyExtractor(random_extractor, bad=[4, 5]),
                    iterations=8, optimizer='adam', **OPTIONS)
    clean = stylize(*pair, extractor=random_extractor, iterations=0, optimizer='adam', **OPTIONS)
    assert flaky.completed
    assert np.isfinite(flaky.losses['total']) and flaky.losses['total'] < clean.losses['total']


@pytest.mark.slow
def test_keep_best_returns_the_lowest_loss_image(random_extractor, pair):
    # A large Adam step makes the loss jump about; the best image is not the last one.
    options = dict(extractor=random_extractor, iterations=12, optimizer='adam',
                   learning_rate=60.0, **OPTIONS)
    last = stylize(*pair, **options)
    best = stylize(*pair, keep_best=True, **options)
    assert best.losses['total'] <= last.losses['total']


# Saved state verified before it is trusted: one case per kind of damage. Each is refused with one
# line naming the directory, before and after TensorFlow, and leaves every byte where it was.

def saved(directory, every=1):
    """A checkpoint of two small variables in `directory`; returns its Checkpointer."""
    checkpointer = Checkpointer(str(directory), every=every)
    checkpointer.fingerprint = 'f'
    checkpointer.save({'image': tf.Variable(np.arange(3000, dtype=np.float32)),
                       'step': tf.Variable(7)}, {'scale': 0, 'done': 7, 'seed': 1})
    return checkpointer


def tree(root):
    return {str(p.relative_to(root)): p.read_bytes() if p.is_file() else None
            for p in sorted(root.rglob('*'))}


def test_a_checkpoint_has_a_manifest_of_every_file(tmp_path):
    import hashlib
    import json
    saved(tmp_path)
    folder = tmp_path / 'ckpt'
    manifest = json.loads((folder / 'manifest.json').read_text())
    assert manifest['format'] == 'tf_style checkpoint' and manifest['version'] == 1
    files = sorted(p.name for p in folder.iterdir() if p.name != 'manifest.json')
    assert sorted(manifest['files']) == files and 'state.json' in files
    for name, entry in manifest['files'].items():
        data = (folder / name).read_bytes()
        assert entry == {'size': len(data), 'sha256': hashlib.sha256(data).hexdigest()}
    assert verify_checkpoint(str(tmp_path))['done'] == 7


def _truncate(folder):
    data = next(folder.glob('vars.data-*'))
    data.write_bytes(data.read_bytes()[:100])


def _flip_a_byte(folder):
    index = folder / 'vars.index'
    data = bytearray(index.read_bytes())
    data[len(data) // 2] ^= 0xFF
    index.write_bytes(bytes(data))


def _newer(folder):
    import json
    manifest = json.loads((folder / 'manifest.json').read_text())
    (folder / 'manifest.json').write_text(json.dumps(dict(manifest, version=99)))


DAMAGE = {
    'truncated': (_truncate, r'vars.data-00000-of-00001 is truncated \(100 of \d+ bytes\)'),
    'corrupt': (_flip_a_byte, 'vars.index is corrupt'),
    'state cut': (lambda f: (f / 'state.json').write_text('{"sca'), 'state.json is truncated'),
    'file missing': (lambda f: (f / 'vars.index').unlink(), 'vars.index is missing'),
    'manifest not JSON': (lambda f: (f / 'manifest.json').write_text('{"fo'),
                          'manifest.json is unreadable or corrupt'),
    'manifest of another file': (lambda f: (f / 'manifest.json').write_text('[1, 2]'),
                                 'not a tf_style checkpoint'),
    'newer': (_newer, r'written by a newer tf_style \(checkpoint format 99; this one reads 1\)'),
    'foreign': (lambda f: (f / 'manifest.json').unlink(), 'no manifest.json'),
    'a file': (lambda f: (shutil.rmtree(f), f.write_text('x')), 'ckpt: not a folder'),
}


@pytest.mark.parametrize('damage', DAMAGE)
def test_a_damaged_checkpoint_is_refused_and_left_alone(tmp_path, damage):
    saved(tmp_path)
    harm, match = DAMAGE[damage]
    harm(tmp_path / 'ckpt')
    before = tree(tmp_path)
    with pytest.raises(CheckpointError, match=match) as e:
        verify_checkpoint(str(tmp_path))
    assert str(e.value).startswith(f'checkpoint_dir {str(tmp_path)!r}: ckpt: ')
    assert '\n' not in str(e.value) and e.value.option == 'checkpoint_dir'
    resuming = Checkpointer(str(tmp_path), resume=True)
    resuming.fingerprint = 'f'
    with pytest.raises(CheckpointError, match=match):
        resuming.load_state()
    assert tree(tmp_path) == before


def test_a_damaged_checkpoint_is_replaced_only_by_a_whole_new_one(tmp_path):
    saved(tmp_path)
    _truncate(tmp_path / 'ckpt')
    saved(tmp_path)  # a new run in the same directory: its first save replaces the damaged one
    assert verify_checkpoint(str(tmp_path))['done'] == 7
    assert sorted(p.name for p in tmp_path.iterdir()) == ['ckpt']


def test_a_folder_tf_style_did_not_write_is_never_replaced(tmp_path):
    (tmp_path / 'ckpt').mkdir()
    (tmp_path / 'ckpt' / 'model.weights').write_bytes(b'not ours')
    before = tree(tmp_path)
    with pytest.raises(CheckpointError, match="'ckpt' in it is not a tf_style checkpoint"):
        Checkpointer(str(tmp_path))
    assert tree(tmp_path) == before


def test_a_checkpoint_dir_naming_a_file_is_refused(tmp_path):
    (tmp_path / 'notes.txt').write_text('mine')
    for resume in (False, True):
        with pytest.raises(CheckpointError, match="notes.txt': is a file, not a directory$"):
            Checkpointer(str(tmp_path / 'notes.txt'), resume=resume)
        with pytest.raises(CheckpointError, match='cannot be created'):
            Checkpointer(str(tmp_path / 'notes.txt' / 'sub'), resume=resume)
    assert (tmp_path / 'notes.txt').read_text() == 'mine'
    assert sorted(p.name for p in tmp_path.iterdir()) == ['notes.txt']


def test_a_checkpoint_of_other_variables_is_refused_in_one_line(tmp_path):
    saved(tmp_path)
    resuming = Checkpointer(str(tmp_path), resume=True)
    resuming.fingerprint = 'f'
    resuming.load_state()
    with pytest.raises(CheckpointError, match='does not fit this run') as e:
        resuming.restore({'image': tf.Variable(np.zeros(5, np.float32))})
    assert '\n' not in str(e.value)


def test_verifying_a_checkpoint_needs_no_tensorflow(tmp_path):
    import os
    import subprocess
    import sys
    from conftest import ROOT
    saved(tmp_path)
    code = ('import sys; from tf_style.checkpoint import verify_checkpoint; '
            f'assert verify_checkpoint({str(tmp_path)!r})["done"] == 7; '
            'assert "tensorflow" not in sys.modules')
    subprocess.run([sys.executable, '-c', code], check=True, env=dict(os.environ, PYTHONPATH=ROOT))
