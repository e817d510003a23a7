import numpy as np
import pytest
import tensorflow as tf

from conftest import example
from tf_style import network, normalize, weights
from tf_style.errors import ConfigError

DEEP = ('block5_conv4', 'block5_pool')


@pytest.fixture(scope='module')
def calibration():
    return [example('tubingen', 48), example('the_scream', 40)]


@pytest.fixture(scope='module')
def normalized(hed_weights, calibration):
    """(original model, normalized model, scales), each model loaded afresh from the HED file."""
    original = weights.load_vgg19(hed_weights)
    model = weights.load_vgg19(hed_weights)
    scales = normalize.normalize_vgg19(model, network.VGG19Features(model), calibration)
    return original, model, scales


@pytest.mark.slow
def test_mean_activations_are_one_on_the_calibration_images(normalized, calibration):
    original, model, scales = normalized
    before = normalize.activation_means(network.VGG19Features(original), calibration)
    after = normalize.activation_means(network.VGG19Features(model), calibration)
    for name in normalize.CONV_LAYERS:
        median = np.median(before[name][before[name] > 0])
        common = before[name] >= normalize.RARE * median  # not rare (see RARE)
        assert common.mean() > 0.25, name
        np.testing.assert_allclose(after[name][common], 1.0, rtol=1e-3, err_msg=name)
        # Rare filters are scaled as a typical one: their means end below RARE.
        np.testing.assert_allclose(after[name][~common], before[name][~common] / median,
                                   rtol=1e-3, atol=1e-6, err_msg=name)
        assert (after[name][~common] < normalize.RARE).all(), name
    assert any(not (before[n] >= scales[n]).all() for n in normalize.CONV_LAYERS)


@pytest.mark.slow
def test_output_is_unchanged_up_to_the_per_channel_scales(normalized):
    """On an image it was not calibrated on, the deepest layers differ only by the scales."""
    original, model, scales = normalized
    image = tf.constant(example('starry_night', 56)[None])
    a = network.VGG19Features(original)(image, layers=DEEP)
    b = network.VGG19Features(model)(image, layers=DEEP)
    for name in DEEP:
        expected = a[name].numpy()
        np.testing.assert_allclose(b[name].numpy() * scales['block5_conv4'], expected,
                                   rtol=2e-3, atol=1e-4 * np.abs(expected).max())


def test_normalizing_twice_changes_nothing(normalized, calibration):
    _, model, _ = normalized
    weights = [layer.get_weights() for layer in model.layers]
    scales = normalize.normalize_vgg19(model, network.VGG19Features(model), calibration)
    for name, s in scales.items():
        np.testing.assert_allclose(s, 1.0, rtol=1e-3, err_msg=name)
    for layer, before in zip(model.layers, weights):
        for w, w0 in zip(layer.get_weights(), before):
            np.testing.assert_allclose(w, w0, rtol=2e-3, atol=1e-6)


def test_rare_and_silent_filters_are_scaled_by_the_median():
    means = np.array([0.0, 1e-5, 2.0, 4.0, 6.0])
    # The median of the firing filters (1e-5, 2, 4, 6) is 3; rare: below 0.3.
    np.testing.assert_allclose(normalize.channel_scales(means), [3.0, 3.0, 2.0, 4.0, 6.0])
    np.testing.assert_array_equal(normalize.channel_scales(np.zeros(4)), np.ones(4))


def test_no_calibration_images():
    with pytest.raises(ConfigError, match='at least one calibration image'):
        normalize.activation_means(None, [])


@pytest.mark.slow
def test_stylize_normalizes_on_its_inputs_and_refuses_a_plain_extractor(random_extractor):
    from tf_style.transfer import stylize
    content, style = example('tubingen', 32), example('starry_night', 32)
    with pytest.raises(ConfigError, match='not normalized'):
        stylize(content, style, extractor=random_extractor, normalize_weights=True,
                image_size=32, iterations=1)
    with pytest.raises(ConfigError, match='calibration images are for normalize_weights'):
        stylize(content, style, extractor=random_extractor, image_size=32, iterations=1,
                calibration_images=[style])
    extra = example('shipwreck', 64)
    result = stylize(content, style, weights='random', normalize_weights=True, image_size=32,
                     iterations=2, seed=0, calibration_images=[extra])
    assert result.completed and result.config.normalize_weights
    # The same normalization by hand: build_extractor on the images stylize names.
    from tf_style.inputs import calibration_set, scaled_inputs
    inputs = scaled_inputs(result.config, content, [style])[-1]
    images = calibration_set(result.config, inputs, [extra])
    assert len(images) == 3 and images[0] is inputs.content and images[1] is inputs.styles[0]
    assert max(images[2].shape[:2]) == 32  # resized to image_size
    extractor = network.build_extractor('random', calibration_images=images)
    assert extractor.normalized
    again = stylize(content, style, extractor=extractor, normalize_weights=True, image_size=32,
                    iterations=2, seed=0)
    np.testing.assert_array_equal(again.image, result.image)
