"""Colour preservation: luminance-only transfer and colour-histogram matching."""

import numpy as np
import pytest

from conftest import example
from tf_style import colour


@pytest.fixture(scope='module')
def pair():
    return example('tubingen', 64), example('starry_night', 64)


def test_yiq_round_trip_and_gray_is_its_luminance(pair):
    content, _ = pair
    np.testing.assert_allclose(colour.yiq_to_rgb(colour.rgb_to_yiq(content)), content, atol=1e-6)
    y = colour.luminance(content)
    gray = colour.gray(y)
    assert gray.shape == content.shape
    np.testing.assert_allclose(colour.rgb_to_yiq(gray)[..., 1:], 0, atol=1e-3)
    np.testing.assert_allclose(colour.luminance(gray), np.clip(y, 0, 255), atol=1e-3)


def test_matched_luminance_has_the_contents_statistics(pair):
    content, style = pair
    y = colour.match_luminance(style, content)
    assert y.mean() == pytest.approx(colour.luminance(content).mean(), abs=1e-3)
    assert y.std() == pytest.approx(colour.luminance(content).std(), rel=1e-4)
    # Still the style's luminance pattern: perfectly correlated with it.
    assert np.corrcoef(y.ravel(), colour.luminance(style).ravel())[0, 1] > 0.9999


def test_with_chroma_keeps_the_sources_chroma_and_the_images_luminance(pair):
    content, style = pair
    # The luminance of a gray-ish image, the chroma of the content (no clipping at these values).
    image = colour.gray(colour.luminance(content) * 0.5 + 60)
    out = colour.with_chroma(image, content)
    np.testing.assert_allclose(colour.rgb_to_yiq(out)[..., 1:], colour.rgb_to_yiq(content)[..., 1:],
                               atol=0.5)
    np.testing.assert_allclose(colour.luminance(out), colour.luminance(image), atol=0.5)


def test_histogram_match_has_the_contents_mean_and_covariance(pair):
    content, style = pair
    matched = colour.match_histogram(style, content, clip=False)
    mean_m, cov_m = colour.colour_statistics(matched)
    mean_c, cov_c = colour.colour_statistics(content)
    np.testing.assert_allclose(mean_m, mean_c, atol=1e-3)
    np.testing.assert_allclose(cov_m, cov_c, rtol=1e-3, atol=1e-2)
    # Clipped to 0..255 (what the network sees), close to the same statistics.
    clipped = colour.match_histogram(style, content)
    assert clipped.min() >= 0 and clipped.max() <= 255
    np.testing.assert_allclose(colour.colour_statistics(clipped)[0], mean_c, atol=5)


def test_histogram_match_of_a_flat_style_does_not_blow_up(pair):
    content, _ = pair
    flat = np.full((16, 16, 3), 90.0, np.float32)
    matched = colour.match_histogram(flat, content)
    assert np.all(np.isfinite(matched))
    expected = np.broadcast_to(colour.colour_statistics(content)[0], matched.shape)
    np.testing.assert_allclose(matched, expected, atol=1e-3)


def test_prepare_and_finish(pair):
    content, style = pair
    c, (s,) = colour.prepare('none', content, [style])
    assert c is content and s is style
    c, (s,) = colour.prepare('luminance', content, [style])
    assert np.ptp(c, axis=-1).max() < 1e-3 and np.ptp(s, axis=-1).max() < 1e-3  # gray
    c, (s,) = colour.prepare('histogram', content, [style])
    assert c is content and not np.allclose(s, style)
    assert colour.finish('none', style, content) is style
