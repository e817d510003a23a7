import os
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from conftest import example
from tf_style.errors import ConfigError, TfStyleError
from tf_style.export_stylizer import export_stylizer
from tf_style.transfer import stylize

pytestmark = pytest.mark.kernels

DEFAULT_ITERATIONS = 4
# Shallow layers keep the exports small and quick to trace and load; test_the_loss_is_stylize_s
# runs the paper's layers (to conv5_1).
SHALLOW = dict(content_layers=['conv2_2'], style_layers=['conv1_1', 'conv2_1'])

# Loads and runs a stylizer with TensorFlow alone, through the loader named by argv[1]; runs
# serving_default (the defaults) and with_settings with each iterations/weights in RUNS.
SCRIPT = '''
import sys
import numpy as np
import tensorflow as tf
loader, path, inputs, output = sys.argv[1:]
images = dict(np.load(inputs))
RUNS = {'default': None, 'it0': (0, 1.0, 1e3), 'it0_style2': (0, 1.0, 2e3),
        'it0_no_style': (0, 1.0, 0.0), 'it4': (4, 1.0, 1e3), 'it6': (6, 1.0, 1e3)}
feeds = {}
for run, settings in RUNS.items():
    feeds[run] = dict(images)
    if settings:
        feeds[run].update(iterations=np.int32(settings[0]),
                          content_weight=np.float32(settings[1]),
                          style_weight=np.float32(settings[2]))
results = {}
if loader == 'tf2':
    model = tf.saved_model.load(path)
    for run, feed in feeds.items():
        signature = model.signatures['serving_default' if run == 'default' else 'with_settings']
        out = signature(**{k: tf.constant(v) for k, v in feed.items()})
        results.update({run + '/' + k: v.numpy() for k, v in out.items()})
else:  # the session-based loader, as saved_model_cli and TensorFlow Serving load
    with tf.Graph().as_default(), tf.compat.v1.Session() as session:
        meta_graph = tf.compat.v1.saved_model.loader.load(session, ['serve'], path)
        for run, feed in feeds.items():
            signature = meta_graph.signature_def[
                'serving_default' if run == 'default' else 'with_settings']
            out = session.run({k: v.name for k, v in signature.outputs.items()},
                              {signature.inputs[k].name: v for k, v in feed.items()})
            results.update({run + '/' + k: v for k, v in out.items()})
assert not [m for m in sys.modules if m.startswith('tf_style')]
np.savez(output, **results)
'''


@pytest.fixture(scope='module')
def content():
    image = example('tubingen', 32)
    assert image.shape == (24, 32, 3)
    return image


@pytest.fixture(scope='module')
def style():
    return example('starry_night', 32)


@pytest.fixture(scope='module')
def stylizer(random_extractor, tmp_path_factory):
    return export_stylizer(str(tmp_path_factory.mktemp('stylizer') / 'model'), random_extractor,
                           iterations=DEFAULT_ITERATIONS, **SHALLOW)


@pytest.fixture(scope='module')
def fixed_stylizer(random_extractor, style, tmp_path_factory):
    return export_stylizer(str(tmp_path_factory.mktemp('fixed') / 'model'), random_extractor,
                           style=style, iterations=DEFAULT_ITERATIONS, **SHALLOW)


def _run_without_tf_style(loader, path, tmp_path, **images):
    np.savez(tmp_path / 'inputs.npz', **images)
    subprocess.run([sys.executable, '-c', SCRIPT, loader, path, str(tmp_path / 'inputs.npz'),
                    str(tmp_path / 'out.npz')], check=True, cwd=str(tmp_path),
                   env=dict(os.environ, PYTHONPATH=''))
    return dict(np.load(tmp_path / 'out.npz'))


def _check_runs(out, shape):
    for run in ('default', 'it0', 'it4', 'it6'):
        assert out[run + '/image'].dtype == np.uint8 and out[run + '/image'].shape == shape
        assert out[run + '/loss'].dtype == np.float32 and out[run + '/loss'].shape == ()
    losses = [float(out[f'it{n}/loss']) for n in (0, 4, 6)]
    assert losses[0] > losses[1] > losses[2] > 0, losses
    # The defaults given at export.
    assert out['default/loss'] == out[f'it{DEFAULT_ITERATIONS}/loss']
    np.testing.assert_array_equal(out['default/image'], out[f'it{DEFAULT_ITERATIONS}/image'])
    # The served weights: at the start (the content image) the content loss is 0.
    assert out['it0_no_style/loss'] == 0
    assert out['it0_style2/loss'] == pytest.approx(2 * out['it0/loss'], rel=1e-6)


@pytest.mark.slow
@pytest.mark.parametrize('loader', ['tf2', 'session'])
def test_runs_in_a_process_without_tf_style(stylizer, content, style, tmp_path, loader):
    out = _run_without_tf_style(loader, stylizer, tmp_path, content=content, style=style)
    _check_runs(out, content.shape)
    # Where the loss went down, so did the image.
    assert np.abs(out['it6/image'].astype(int) - content.round()).max() > 8


@pytest.mark.slow
def test_fixed_style_runs_in_a_process_without_tf_style(fixed_stylizer, content, tmp_path):
    # The session-based loader; the TF2 one runs it in test_fixed_style_takes_only_the_content.
    _check_runs(_run_without_tf_style('session', fixed_stylizer, tmp_path, content=content),
                content.shape)


def test_fixed_style_takes_only_the_content(fixed_stylizer, stylizer, content, style):
    fixed = tf.saved_model.load(fixed_stylizer)
    inputs = fixed.signatures['serving_default'].structured_input_signature[1]
    assert sorted(inputs) == ['content']
    assert sorted(fixed.signatures['with_settings'].structured_input_signature[1]) == [
        'content', 'content_weight', 'iterations', 'style_weight']
    settings = dict(iterations=tf.constant(2), content_weight=tf.constant(1.0),
                    style_weight=tf.constant(1e3))
    a = fixed.signatures['with_settings'](content=tf.constant(content), **settings)
    b = tf.saved_model.load(stylizer).signatures['with_settings'](
        content=tf.constant(content), style=tf.constant(style), **settings)
    # The style's targets stored at export are those the other computes when served.
    assert float(a['loss']) == pytest.approx(float(b['loss']), rel=1e-4)


@pytest.mark.slow
def test_the_loss_is_stylize_s(random_extractor, content, style, tmp_path):
    iterations = 10
    # The paper's layers and weights (to conv5_1: at 32 x 24 the smallest image they allow).
    path = export_stylizer(str(tmp_path / 'model'), random_extractor)
    exported = tf.saved_model.load(path).signatures['with_settings'](
        content=tf.constant(content), style=tf.constant(style),
        iterations=tf.constant(iterations), content_weight=tf.constant(1.0),
        style_weight=tf.constant(1e3))
    result = stylize(content, style, extractor=random_extractor, init='content',
                     iterations=iterations, image_size=32, precision='float32', seed=0)
    assert float(exported['loss']) == pytest.approx(result.losses['total'], rel=0.02)
    # Not the start's: both went as far.
    assert result.losses['total'] < 0.2 * stylize(
        content, style, extractor=random_extractor, init='content', iterations=0,
        image_size=32, precision='float32', seed=0).losses['total']


@pytest.mark.slow
def test_adam_is_stylize_s(random_extractor, content, style, tmp_path):
    options = dict(optimizer='adam', iterations=8, **SHALLOW)
    path = export_stylizer(str(tmp_path / 'adam'), random_extractor, **options)
    out = tf.saved_model.load(path).signatures['serving_default'](
        content=tf.constant(content), style=tf.constant(style))
    result = stylize(content, style, extractor=random_extractor, init='content', image_size=32,
                     precision='float32', seed=0, **options)
    start = stylize(content, style, extractor=random_extractor, init='content', image_size=32,
                    precision='float32', seed=0, **{**options, 'iterations': 0})
    assert result.losses['total'] < 0.9 * start.losses['total']
    assert float(out['loss']) == pytest.approx(result.losses['total'], rel=0.02)


def test_a_style_scaled_when_served(stylizer, content, style):
    # A style given at another size is resized to the content's long side (stylize's
    # style_scale=1), so twice as large it gives nearly the same targets.
    import PIL.Image
    large = np.asarray(PIL.Image.fromarray(style.round().astype(np.uint8)).resize(
        (64, 40), PIL.Image.LANCZOS), np.float32)
    signature = tf.saved_model.load(stylizer).signatures['with_settings']
    settings = dict(iterations=tf.constant(0), content_weight=tf.constant(0.0),
                    style_weight=tf.constant(1.0))
    a = signature(content=tf.constant(content), style=tf.constant(style), **settings)
    b = signature(content=tf.constant(content), style=tf.constant(large), **settings)
    assert float(b['loss']) == pytest.approx(float(a['loss']), rel=0.1)


def test_bad_settings_are_clear_errors(random_extractor, tmp_path):
    with pytest.raises(ConfigError, match='optimizer'):
        export_stylizer(str(tmp_path / 'm'), random_extractor, optimizer='sgd')
    with pytest.raises(ConfigError, match='style_size'):
        export_stylizer(str(tmp_path / 'm'), random_extractor, style_size=64)
    with pytest.raises(ConfigError, match='short side'):
        export_stylizer(str(tmp_path / 'm'), random_extractor, style=np.zeros((8, 64, 3)))
    (tmp_path / 'm').mkdir()
    (tmp_path / 'm' / 'keep').write_text('x')
    with pytest.raises(TfStyleError, match='exists and is not empty') as e:
        export_stylizer(str(tmp_path / 'm'), random_extractor, style_layers=['conv1_1'],
                        content_layers=['conv1_2'])
    assert e.value.see == ('overwrite',)
    assert os.listdir(tmp_path / 'm') == ['keep']


def test_too_small_a_content_fails_the_call(stylizer):
    signature = tf.saved_model.load(stylizer).signatures['serving_default']
    with pytest.raises(tf.errors.InvalidArgumentError, match='short side of at least 2 px'):
        signature(content=tf.zeros([1, 5, 3]), style=tf.zeros([4, 4, 3]))
