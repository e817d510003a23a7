import json

import h5py
import keras
import numpy as np
import pytest
import tensorflow as tf

import numerics
from tf_style import frozen_conv, network, weights
from tf_style.errors import WeightsError

ALL = network.vgg_layers.LAYERS


def test_no_max_pooling_left(random_extractor):
    model = random_extractor.model(ALL)
    kinds = [type(layer).__name__ for layer in model.layers]
    assert 'MaxPooling2D' not in kinds and kinds.count('AveragePooling2D') == 5
    assert kinds.count('FrozenConv2D') == 16


@pytest.mark.slow
def test_max_pooling_on_request():
    extractor = network.build_extractor('random', pooling='max')
    kinds = [type(layer).__name__ for layer in extractor.model(ALL).layers]
    assert kinds.count('MaxPooling2D') == 5 and 'AveragePooling2D' not in kinds


def test_layer_shapes(random_extractor):
    out = random_extractor(tf.zeros([2, 32, 48, 3]), layers=ALL)
    assert out['block1_conv1'].shape == (2, 32, 48, 64)
    assert out['block2_conv1'].shape == (2, 16, 24, 128)
    assert out['block3_conv4'].shape == (2, 8, 12, 256)
    assert out['block4_conv2'].shape == (2, 4, 6, 512)
    assert out['block5_pool'].shape == (2, 1, 1, 512)
    assert (out['block3_conv1'].numpy() >= 0).all()  # post-ReLU


def test_cut_after_deepest_layer(random_extractor):
    model = random_extractor.model(('block1_conv1', 'block2_conv1'))
    assert [type(l).__name__ for l in model.layers].count('FrozenConv2D') == 3


def test_weights_are_frozen(random_extractor):
    model = random_extractor.model(ALL)
    # Kernel, bias and rotated kernel of each of the 16 convolutions.
    assert model.trainable_weights == [] and len(model.weights) == 48


def _input_gradient(model, inputs, upstream):
    with tf.GradientTape() as tape:
        tape.watch(inputs)
        loss = tf.reduce_sum(tf.cast(model(inputs), tf.float32) * upstream)
    return tape.gradient(loss, inputs)


@pytest.mark.parametrize('precision,matmul_convs', [('float32', False), ('float32', True),
                                                    ('mixed', None)])
@pytest.mark.slow
@pytest.mark.kernels
def test_input_gradient_equals_keras(precision, matmul_convs):
    # FrozenConv2D computes the input gradient as a forward convolution with the rotated
    # kernel (or, for block4 and block5 in float32, as shifted matmuls, in a graph only): it must
    # be TensorFlow's own gradient of Keras' Conv2D, through the network.
    vgg19 = weights.load_vgg19('random', seed=5)
    features = network.VGG19Features(vgg19, pooling='max', precision=precision,
                                     matmul_convs=matmul_convs)
    assert features.model(ALL).get_layer('block4_conv2').as_matmuls is bool(matmul_convs)
    assert not features.model(ALL).get_layer('block4_conv1').as_matmuls  # 256 input channels
    reference = vgg19
    if precision == 'mixed':
        conv = features.model(ALL).get_layer('block2_conv1')
        # Weights stored in bfloat16: no casts in every call.
        assert conv.compute_dtype == conv.kernel.dtype == conv.rotated_kernel.dtype == 'bfloat16'
        # As ours: the first convolution, which reads the image, in float32.
        reference = keras.models.clone_model(vgg19, clone_function=lambda layer: type(
            layer).from_config({**layer.get_config(), 'dtype': 'float32' if layer.name ==
                                network.vgg_layers.FIRST_CONV else 'mixed_bfloat16'}))
        reference.set_weights(vgg19.get_weights())
    x = tf.random.uniform([2, 48, 80, 3], 0, 255, seed=2)
    upstream = tf.random.normal([2, 3, 5, 512], seed=3)
    ours = tf.function(lambda: _input_gradient(
        lambda images: features(images, ['block4_pool'])['block4_pool'], x, upstream))().numpy()
    keras_model = keras.Model(reference.input, reference.get_layer('block4_pool').output)
    theirs = _input_gradient(keras_model, network.preprocess(x), upstream).numpy()
    # The extractor's input is RGB, Keras' model's BGR.
    error = np.linalg.norm(ours[..., ::-1] - theirs) / np.linalg.norm(theirs)
    limit = (numerics.bfloat16_against_keras() if precision == 'mixed' else
             numerics.FLOAT32_OTHER_KERNELS.rtol / 10)  # L2 error: ulps, not a tolerance's tail
    assert error < limit, (error, numerics.bfloat16_path())


@pytest.mark.kernels
def test_mixed_reads_the_image_in_float32(random_extractor):
    # The first convolution's sum is the float32 network's, rounded once to bfloat16: with the
    # image itself in bfloat16, pixels move by up to half a level first.
    image = np.random.default_rng(0).uniform(0, 255, [1, 16, 16, 3]).astype(np.float32)
    exact = random_extractor.with_precision('float32')(image, ['block1_conv1'])
    mixed = random_extractor.with_precision('mixed')(image, ['block1_conv1'])
    assert mixed['block1_conv1'].dtype == tf.bfloat16
    np.testing.assert_array_equal(mixed['block1_conv1'],
                                  tf.cast(exact['block1_conv1'], tf.bfloat16))


@pytest.mark.kernels
def test_shifted_matmuls_are_the_same_convolution():
    x = tf.random.normal([2, 7, 10, 16], seed=1)
    kernel = tf.random.normal([3, 3, 16, 8], seed=2)
    expected = tf.nn.conv2d(x, kernel, 1, 'SAME').numpy()
    ours = tf.function(frozen_conv.shifted_matmuls)(x, kernel).numpy()
    numerics.FLOAT32_OTHER_KERNELS.check(ours, expected)


@pytest.mark.slow
def test_float32_matmuls_follow_the_hardware_decision(monkeypatch):
    from tf_style import hardware
    for faster in (True, False):
        monkeypatch.setattr(hardware, 'matmul_convs_are_faster', lambda caps: faster)
        features = network.VGG19Features(weights.load_vgg19('random'))
        assert features.model(ALL).get_layer('block5_conv1').as_matmuls is faster
        mixed = features.with_precision('mixed').model(ALL).get_layer('block5_conv1')
        assert not mixed.as_matmuls


@pytest.mark.parametrize('dtype', [None, 'bfloat16'])
def test_frozen_copy_holds_the_source_weights(dtype):
    conv = keras.layers.Conv2D(4, 3, padding='same', activation='relu',
                               bias_initializer='random_normal')
    keras.Sequential([keras.Input((5, 5, 2)), conv])
    copy = frozen_conv.FrozenConv2D.of(conv, dtype)
    kernel, bias = conv.get_weights()
    cast = (lambda w: w) if dtype is None else (lambda w: tf.cast(w, dtype).numpy())
    np.testing.assert_array_equal(copy.kernel.numpy(), cast(kernel))
    np.testing.assert_array_equal(copy.bias.numpy(), cast(bias))
    np.testing.assert_array_equal(copy.rotated_kernel.numpy(),
                                  cast(frozen_conv.rotate_kernel(kernel).numpy()))
    assert not copy.trainable
    json.dumps(copy.get_config())  # Keras can save it: no tensors in its config
    conv.kernel.assign(tf.zeros_like(conv.kernel))  # a copy, not a view of conv's weights
    np.testing.assert_array_equal(copy.kernel.numpy(), cast(kernel))


def test_rotated_kernel():
    kernel = np.arange(3 * 3 * 2 * 4, dtype=np.float32).reshape(3, 3, 2, 4)
    rotated = frozen_conv.rotate_kernel(kernel).numpy()
    assert rotated.shape == (3, 3, 4, 2)
    assert rotated[0, 0, 3, 1] == kernel[2, 2, 1, 3] and rotated[2, 1, 0, 1] == kernel[0, 1, 1, 0]


@pytest.mark.kernels
def test_average_pooling_averages(random_extractor):
    out = random_extractor(tf.random.uniform([1, 8, 8, 3], 0, 255),
                           layers=('block1_conv2', 'block1_pool'))
    expected = tf.nn.avg_pool2d(out['block1_conv2'], 2, 2, 'VALID')
    numerics.FLOAT32_OTHER_KERNELS.check(out['block1_pool'], expected)


def test_caffe_preprocessing():
    out = network.preprocess(tf.constant([[[[10.0, 20.0, 30.0]]]])).numpy().ravel()
    np.testing.assert_allclose(out, [30 - 103.939, 20 - 116.779, 10 - 123.68], rtol=1e-6)


@pytest.mark.slow
def test_random_weights_are_seeded():
    a = weights.load_vgg19('random', seed=3).get_layer('block1_conv1').get_weights()[0]
    b = weights.load_vgg19('random', seed=3).get_layer('block1_conv1').get_weights()[0]
    c = weights.load_vgg19('random', seed=4).get_layer('block1_conv1').get_weights()[0]
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


def write_legacy_h5(model, path):
    """The layout of Keras' distributed vgg19_weights_tf_dim_ordering_tf_kernels_notop.h5."""
    with h5py.File(path, 'w') as f:
        f.attrs['layer_names'] = [layer.name.encode() for layer in model.layers]
        f.attrs['backend'] = b'tensorflow'
        f.attrs['keras_version'] = b'2.2.4'
        for layer in model.layers:
            group = f.create_group(layer.name)
            names = [f'{layer.name}/{w}:0'.encode() for w in ('kernel', 'bias')[:len(layer.weights)]]
            group.attrs['weight_names'] = names
            for name, value in zip(names, layer.get_weights()):
                group.create_dataset(name.decode(), data=value)


@pytest.mark.slow
@pytest.mark.parametrize('fmt', ['legacy.h5', 'keras3.weights.h5'])
def test_weights_file_formats(tmp_path, fmt):
    source = weights.load_vgg19('random', seed=11)
    path = str(tmp_path / fmt)
    if fmt == 'legacy.h5':
        write_legacy_h5(source, path)
    else:
        source.save_weights(path)
    loaded = network.build_extractor(path)
    expected = network.VGG19Features(source)
    x = tf.random.uniform([1, 32, 32, 3], 0, 255, seed=1)
    numerics.FLOAT32_OTHER_RUN.check(loaded(x)['block5_conv1'], expected(x)['block5_conv1'])


@pytest.mark.parametrize('name, data, message', [
    ('missing.h5', None, 'does not exist'),
    ('garbage.h5', b'not hdf5' * 100, 'not an HDF5 file'),
    ('weights.txt', b'x', 'expected a Keras'),
])
def test_bad_weights_file(tmp_path, name, data, message):
    path = tmp_path / name
    if data is not None:
        path.write_bytes(data)
    with pytest.raises(WeightsError, match=message):
        network.build_extractor(str(path))


def test_wrong_network_weights_file(tmp_path):
    path = str(tmp_path / 'small.weights.h5')
    keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)]).save_weights(path)
    with pytest.raises(WeightsError, match='cannot load VGG19 weights'):
        network.build_extractor(path)


def test_imagenet_download_failure_names_the_way_out(monkeypatch, tmp_path):
    def offline(**kwargs):
        raise Exception('URL fetch failure on https://example: None -- [Errno -2] Name or '
                        'service not known')
    monkeypatch.setattr(keras.applications, 'VGG19', offline)
    monkeypatch.setenv('KERAS_HOME', str(tmp_path))
    with pytest.raises(WeightsError) as e:
        network.build_extractor('imagenet')
    message = str(e.value)
    assert 'weights=FILE' in message and weights.IMAGENET_WEIGHTS_FILE in message
    assert str(tmp_path) in message and '\n' not in message
