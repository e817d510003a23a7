import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import tensorflow as tf

from conftest import example
import numerics
from tf_style import network, weights
from tf_style.errors import ConfigError, TfStyleError
from tf_style.export import export_extractor, load_extractor
from tf_style.losses import gram_matrix
from tf_style.transfer import stylize

pytestmark = pytest.mark.kernels

LAYERS = ('block1_conv1', 'block3_conv1', 'block4_conv2', 'block5_conv1')


SAVED_MODEL_CLI = os.path.join(os.path.dirname(sys.executable), 'saved_model_cli')


@pytest.fixture(scope='module')
def exported(random_extractor, tmp_path_factory):
    # check_tflite (the default): this export also passed export_extractor's TFLite check.
    return export_extractor(str(tmp_path_factory.mktemp('export') / 'vgg'), random_extractor,
                            layers=LAYERS)


@pytest.fixture(scope='module')
def images():
    return np.random.default_rng(0).uniform(0, 255, (2, 40, 56, 3)).astype(np.float32)


@pytest.fixture(scope='module')
def tf2_outputs(exported, images):
    out = tf.saved_model.load(exported).signatures['serving_default'](images=tf.constant(images))
    return {name: value.numpy() for name, value in out.items()}


def _conv_weights(extractor, deepest):
    """{conv: [kernel, bias]} of `extractor` up to `deepest`."""
    model = extractor.model((deepest,))
    return {layer.name: layer.get_weights()[:2] for layer in model.layers
            if '_conv' in layer.name}


@pytest.mark.slow
def test_round_trip_in_a_process_without_tf_style(exported, random_extractor, tmp_path):
    images = np.random.default_rng(0).uniform(0, 255, (2, 40, 56, 3)).astype(np.float32)
    np.save(tmp_path / 'images.npy', images)
    script = textwrap.dedent(f'''
        import sys
        import numpy as np
        import tensorflow as tf
        model = tf.saved_model.load({exported!r})
        out = model.signatures['serving_default'](images=tf.constant(np.load(sys.argv[1])))
        assert not any(m.startswith('tf_style') for m in sys.modules)
        np.savez(sys.argv[2], **{{k: v.numpy() for k, v in out.items()}})
    ''')
    subprocess.run([sys.executable, '-c', script, str(tmp_path / 'images.npy'),
                    str(tmp_path / 'out.npz')], check=True, cwd=str(tmp_path),
                   env=dict(os.environ, PYTHONPATH=''))
    out = np.load(tmp_path / 'out.npz')
    assert sorted(out.files) == sorted(list(LAYERS) + [n + '_gram' for n in LAYERS])
    expected = random_extractor(images, layers=LAYERS)
    for name in LAYERS:
        # The export holds plain convolutions, the extractor may use shifted matmuls.
        numerics.FLOAT32_OTHER_KERNELS.check(out[name], expected[name], name)
        numerics.FLOAT32_OTHER_KERNELS.check(out[name + '_gram'], gram_matrix(expected[name]),
                                             name)
    assert out['block1_conv1'].shape == (2, 40, 56, 64)
    assert out['block5_conv1_gram'].shape == (2, 512, 512)


def test_gradients_flow_through_the_loaded_model(exported, random_extractor):
    loaded = load_extractor(exported)
    image = tf.Variable(tf.random.uniform([1, 32, 32, 3], 0, 255, seed=3))
    grads = []
    for extractor in (loaded, random_extractor):
        with tf.GradientTape() as tape:
            loss = tf.reduce_sum(extractor(image, layers=['conv4_2'])['block4_conv2'])
        grads.append(tape.gradient(loss, image).numpy())
    assert np.abs(grads[0]).sum() > 0
    numerics.FLOAT32_OTHER_KERNELS.check(grads[0], grads[1])


@pytest.mark.slow
def test_stylize_with_an_exported_extractor(exported, random_extractor):
    content, style = example('tubingen', 32), example('starry_night', 32)
    # float32 on both sides: an exported extractor computes in nothing else.
    options = dict(image_size=32, iterations=3, seed=0, content_layers=['block4_conv2'],
                   style_layers=['block1_conv1', 'block3_conv1', 'block5_conv1'],
                   precision='float32')
    a = stylize(content, style, extractor=load_extractor(exported), **options)
    b = stylize(content, style, extractor=random_extractor, **options)
    assert a.losses['total'] == pytest.approx(b.losses['total'], rel=1e-3)
    assert np.abs(a.image.astype(int) - b.image.astype(int)).max() <= 1


@pytest.mark.slow
def test_the_export_holds_plain_convolutions(tmp_path):
    # Even from an extractor that computes block4 and block5 as shifted matmuls.
    features = network.VGG19Features(weights.load_vgg19('random'), matmul_convs=True)
    path = export_extractor(str(tmp_path / 'vgg'), features, layers=LAYERS, check_tflite=False)
    graph = tf.saved_model.load(path).signatures['serving_default'].graph.as_graph_def()
    ops = [node.op for function in graph.library.function for node in function.node_def]
    convs = [name for name in network.vgg_layers.LAYERS[:network.vgg_layers.depth('block5_conv1')
                                                          + 1] if '_conv' in name]
    assert ops.count('Conv2D') == len(convs) == 13 and 'Pad' not in ops


def test_each_weight_is_held_once(exported, random_extractor):
    weights = _conv_weights(random_extractor, 'block5_conv1')
    assert len(weights) == 13
    expected = sum(w.nbytes for pair in weights.values() for w in pair)
    # 12.94 million float32 values: 51.8 MB (VGG19's 16 convs, to conv5_4, hold 80 MB).
    assert 51.5e6 < expected < 52e6
    saved = tf.train.list_variables(os.path.join(exported, 'variables', 'variables'))
    shapes = [shape for name, shape in saved if '_CHECKPOINTABLE_OBJECT_GRAPH' not in name]
    assert len(shapes) == 26
    assert sum(4 * int(np.prod(shape)) for shape in shapes) == expected
    on_disk = sum(os.path.getsize(os.path.join(d, f)) for d, _, files in os.walk(exported)
                  for f in files)
    assert expected < on_disk < expected + 2e6
    loaded = tf.saved_model.load(exported)
    held = loaded.vgg.kernels + loaded.vgg.biases
    assert sum(v.numpy().nbytes for v in held) == expected
    np.testing.assert_array_equal(loaded.vgg.kernels[12].numpy(), weights['block5_conv1'][0])


def test_session_based_loader(exported, images, tf2_outputs):
    # What TensorFlow Serving does: the SignatureDef's tensors in a tf.compat.v1.Session.
    with tf.Graph().as_default(), tf.compat.v1.Session() as session:
        meta_graph = tf.compat.v1.saved_model.loader.load(session, ['serve'], exported)
        signature = meta_graph.signature_def['serving_default']
        out = session.run({name: info.name for name, info in signature.outputs.items()},
                          {signature.inputs['images'].name: images})
    assert sorted(out) == sorted(tf2_outputs)
    for name, value in tf2_outputs.items():
        numerics.FLOAT32_OTHER_RUN.check(out[name], value, name)


@pytest.mark.slow
def test_saved_model_cli_runs_the_export(exported, images, tf2_outputs, tmp_path):
    np.save(tmp_path / 'x.npy', images)
    subprocess.run([SAVED_MODEL_CLI, 'run', '--dir', exported, '--tag_set', 'serve',
                    '--signature_def', 'serving_default', '--inputs', f'images={tmp_path}/x.npy',
                    '--outdir', str(tmp_path / 'out')], check=True, capture_output=True,
                   env=dict(os.environ, PYTHONPATH=''))
    for name, value in tf2_outputs.items():
        numerics.FLOAT32_OTHER_RUN.check(np.load(tmp_path / 'out' / f'{name}.npy'), value, name)


def test_keras_tfsm_layer(exported, images, tf2_outputs):
    import keras
    layer = keras.layers.TFSMLayer(exported, call_endpoint='serving_default')
    out = layer(images)
    for name, value in tf2_outputs.items():
        numerics.FLOAT32_OTHER_RUN.check(np.asarray(out[name]), value, name)


@pytest.mark.slow
def test_tflite_conversion_equals_tf2(exported, images, tf2_outputs):
    flatbuffer = tf.lite.TFLiteConverter.from_saved_model(exported).convert()
    # The weights are in the model (a converter that drops them wrote 26 KB).
    assert len(flatbuffer) > 51e6
    runner = tf.lite.Interpreter(model_content=flatbuffer).get_signature_runner()
    out = runner(images=images)  # 40 x 56: not the size export_extractor checked at
    assert sorted(out) == sorted(tf2_outputs)
    for name, value in tf2_outputs.items():
        numerics.FLOAT32_OTHER_KERNELS.check(out[name], value, name)


class _Converter:
    """Stands in for TFLiteConverter.from_saved_model(path), converting `function` of the
    SavedModel's serving_default instead."""

    def __init__(self, function):
        self.function = function

    def __call__(self, path):
        loaded = tf.saved_model.load(path)
        serve = loaded.signatures['serving_default']

        @tf.function(input_signature=[tf.TensorSpec([None, None, None, 3], tf.float32)])
        def images(images):
            return self.function(serve, images)
        converter = tf.lite.TFLiteConverter.from_concrete_functions(
            [images.get_concrete_function()], loaded)
        return converter


def _without_weights(serve, images):
    """What a converter that drops the weights computes (the outputs' names and shapes)."""
    shape = tf.shape(images)
    return {'block1_conv2': tf.zeros([shape[0], shape[1], shape[2], 64]),
            'block1_conv2_gram': tf.zeros([shape[0], 64, 64])}


def _another_function(serve, images):
    """All the weights, but not the same function."""
    return serve(images=images * 1.001)


@pytest.mark.parametrize('function, message', [(_without_weights, 'kept 0.0 MiB'),
                                               (_another_function, 'relative error of 0.00')])
def test_a_bad_tflite_conversion_refuses_the_export(monkeypatch, random_extractor, tmp_path,
                                                    function, message):
    monkeypatch.setattr(tf.lite.TFLiteConverter, 'from_saved_model', _Converter(function))
    with pytest.raises(TfStyleError, match=message):
        export_extractor(str(tmp_path / 'vgg'), random_extractor, layers=['block1_conv2'])
    assert os.listdir(tmp_path) == []


def test_missing_layer_is_a_clear_error(exported):
    with pytest.raises(ConfigError, match='no layer block2_conv1'):
        load_extractor(exported)(tf.zeros([1, 32, 32, 3]), layers=['block2_conv1'])


def test_not_a_saved_model(tmp_path):
    with pytest.raises(TfStyleError, match='not a SavedModel'):
        load_extractor(str(tmp_path))


def test_existing_directory_is_kept_without_overwrite(tmp_path, random_extractor):
    target = tmp_path / 'out'
    target.mkdir()
    (target / 'keep.txt').write_text('precious')
    with pytest.raises(TfStyleError, match='exists and is not empty') as e:
        export_extractor(str(target), random_extractor, layers=['block1_conv1'])
    assert e.value.option == 'output_dir' and e.value.see == ('overwrite',)
    assert (target / 'keep.txt').read_text() == 'precious'
    export_extractor(str(target), random_extractor, layers=['block1_conv1'], overwrite=True)
    assert os.stat(target).st_mode & 0o777 == 0o777 & ~_umask()
    assert (target / 'saved_model.pb').exists() and not (target / 'keep.txt').exists()
    assert sorted(os.listdir(tmp_path)) == ['out']


def _umask():
    umask = os.umask(0)
    os.umask(umask)
    return umask


@pytest.mark.slow
def test_max_pooling_and_a_pooling_layer(tmp_path, images):
    extractor = network.build_extractor('random', pooling='max', seed=1)
    # Small enough for the TFLite check to be quick: it runs (the default) and passes.
    path = export_extractor(str(tmp_path / 'vgg'), extractor, layers=['conv2_1', 'pool2'])
    out = tf.saved_model.load(path).signatures['serving_default'](images=tf.constant(images))
    expected = extractor(images, layers=['block2_conv1', 'block2_pool'])
    assert out['block2_pool'].shape == (2, 10, 14, 128)
    for name, value in expected.items():
        numerics.FLOAT32_OTHER_KERNELS.check(out[name], value, name)
