"""Checks of what a run reads, made before TensorFlow loads: one case per kind of problem."""

import importlib.util

import numpy as np
import pytest

from tf_style import preflight
from tf_style.errors import ConfigError, WeightsError


@pytest.fixture(params=['earliest', 'latest'])  # HDF5 superblock versions 0 and 3
def h5_file(tmp_path, request):
    h5py = pytest.importorskip('h5py')
    path = tmp_path / 'vgg19.weights.h5'
    with h5py.File(path, 'w', libver=request.param) as f:
        f.create_dataset('kernel', data=np.arange(20000, dtype=np.float32))
    return path


def test_a_whole_weights_file_passes(h5_file):
    preflight.check_weights(str(h5_file))
    preflight.check_weights('imagenet')
    preflight.check_weights('random')


def test_a_weights_file_after_a_user_block_passes(tmp_path):
    h5py = pytest.importorskip('h5py')
    path = tmp_path / 'vgg19.h5'
    with h5py.File(path, 'w', userblock_size=512) as f:
        f.create_dataset('kernel', data=np.zeros(100, np.float32))
    preflight.check_weights(str(path))
    path.write_bytes(path.read_bytes()[:2000])
    with pytest.raises(WeightsError, match='truncated'):
        preflight.check_weights(str(path))


def refused(weights, match):
    with pytest.raises(WeightsError, match=match) as e:
        preflight.check_weights(str(weights))
    assert str(e.value).startswith(f'weights {str(weights)!r}: ') and '\n' not in str(e.value)
    assert e.value.option == 'weights'


def test_a_truncated_weights_file_is_refused(h5_file):
    whole = h5_file.read_bytes()
    h5_file.write_bytes(whole[:len(whole) // 2])
    refused(h5_file, rf'truncated \({len(whole) // 2} of {len(whole)} bytes\)')


def test_a_weights_file_that_is_not_hdf5_is_refused(tmp_path):
    (tmp_path / 'empty.h5').write_bytes(b'')
    refused(tmp_path / 'empty.h5', 'empty')
    (tmp_path / 'page.h5').write_bytes(b'<html>404 Not Found</html>' * 40)
    refused(tmp_path / 'page.h5', 'not an HDF5 file')
    (tmp_path / 'vgg19.npz').write_bytes(b'PK')
    refused(tmp_path / 'vgg19.npz', 'expected a Keras .weights.h5')
    refused(tmp_path / 'missing.h5', 'no such file')
    refused(tmp_path, 'is a directory')


def test_a_directory_that_is_not_a_saved_model_is_refused(tmp_path):
    def refused_model(path, match):
        with pytest.raises(ConfigError, match=match) as e:
            preflight.check_saved_model(str(path))
        assert str(e.value).startswith(f'extractor {str(path)!r}: ')
        assert e.value.option == 'extractor'

    refused_model(tmp_path / 'missing', 'no such directory')
    (tmp_path / 'file').write_bytes(b'x')
    refused_model(tmp_path / 'file', 'is a file')
    refused_model(tmp_path, r'no saved_model\.pb')
    (tmp_path / 'saved_model.pb').write_bytes(b'')
    refused_model(tmp_path, 'saved_model.pb is empty')
    (tmp_path / 'saved_model.pb').write_bytes(b'\x08\x01')
    (tmp_path / 'variables').mkdir()
    refused_model(tmp_path, 'variables.index is missing')
    (tmp_path / 'variables' / 'variables.index').write_bytes(b'x')
    preflight.check_saved_model(str(tmp_path))


def test_a_logdir_needs_tensorboard(monkeypatch):
    preflight.check_tensorboard(None)
    find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, 'find_spec',
                        lambda name, *a: None if name == 'tensorboard' else find_spec(name, *a))
    preflight.check_tensorboard(None)
    with pytest.raises(ConfigError, match='^logdir needs TensorBoard: pip install tensorboard'):
        preflight.check_tensorboard('logs')
