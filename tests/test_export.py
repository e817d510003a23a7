import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import tensorflow as tf

from conftest import example
from tf_style import network, weights
from tf_style.errors import ConfigError, TfStyleError
from tf_style.export import export_extractor, load_extractor
from tf_style.losses import gram_matrix
from tf_style.transfer import stylize

LAYERS = ('block1_conv1', 'block3_conv1', 'block4_conv2', 'block5_conv1')


@pytest.fixture(scope='module')
def exported(random_extractor, tmp_path_factory):
    return export_extractor(str(tmp_path_factory.mktemp('export') / 'vgg'), random_extractor,
                            layers=LAYERS)


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
        np.testing.assert_allclose(out[name], expected[name].numpy(), rtol=1e-4, atol=1e-3)
        np.testing.assert_allclose(out[name + '_gram'], gram_matrix(expected[name]).numpy(),
                                   rtol=1e-4, atol=1e-2)
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
    np.testing.assert_allclose(grads[0], grads[1], rtol=1e-3, atol=1e-3)


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


def test_the_export_holds_plain_convolutions(tmp_path):
    # Even from an extractor that computes block4 and block5 as shifted matmuls.
    features = network.VGG19Features(weights.load_vgg19('random'), matmul_convs=True)
    path = export_extractor(str(tmp_path / 'vgg'), features, layers=LAYERS)
    graph = tf.saved_model.load(path).signatures['serving_default'].graph.as_graph_def()
    ops = [node.op for function in graph.library.function for node in function.node_def]
    convs = [name for name in network.vgg_layers.LAYERS[:network.vgg_layers.depth('block5_conv1')
                                                          + 1] if '_conv' in name]
    # Each convolution and its (saved, custom) input gradient.
    assert ops.count('Conv2D') == 2 * len(convs) == 26 and 'Pad' not in ops


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
    with pytest.raises(TfStyleError, match='--overwrite'):
        export_extractor(str(target), random_extractor, layers=['block1_conv1'])
    assert (target / 'keep.txt').read_text() == 'precious'
    export_extractor(str(target), random_extractor, layers=['block1_conv1'], overwrite=True)
    assert (target / 'saved_model.pb').exists() and not (target / 'keep.txt').exists()
    assert sorted(os.listdir(tmp_path)) == ['out']
