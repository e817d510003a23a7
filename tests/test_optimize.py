import numpy as np
import pytest

from conftest import example
from tf_style.errors import ConfigError
from tf_style.optimize import initial_image, stylize

TINY = dict(image_size=32, weights='random')


@pytest.fixture(scope='module')
def tiny_pair():
    return example('tubingen', 32), example('starry_night', 32)


@pytest.mark.parametrize('optimizer', ['lbfgs', 'adam'])
def test_loss_decreases_and_pixels_stay_valid(random_extractor, tiny_pair, optimizer):
    content, style = tiny_pair
    start = stylize(content, style, extractor=random_extractor, iterations=0, seed=1, **TINY)
    end = stylize(content, style, extractor=random_extractor, iterations=8, seed=1,
                  optimizer=optimizer, **TINY)
    assert end.losses['total'] < 0.8 * start.losses['total']
    assert end.image.dtype == np.uint8 and end.image.shape == (24, 32, 3)
    assert end.image.min() >= 0 and end.image.max() <= 255
    assert end.image.std() > 1  # not collapsed to a flat colour


def test_same_seed_same_output(random_extractor, tiny_pair):
    runs = [stylize(*tiny_pair, extractor=random_extractor, iterations=3, seed=s, **TINY)
            for s in (5, 5, 6)]
    np.testing.assert_array_equal(runs[0].image, runs[1].image)
    assert not np.array_equal(runs[0].image, runs[2].image)
    assert runs[0].seed == 5


def test_seed_is_chosen_and_reported(random_extractor, tiny_pair):
    result = stylize(*tiny_pair, extractor=random_extractor, iterations=0, init='noise', **TINY)
    again = stylize(*tiny_pair, extractor=random_extractor, iterations=0, init='noise',
                    seed=result.seed, **TINY)
    np.testing.assert_array_equal(result.image, again.image)


def test_inits():
    content = np.full((4, 6, 3), 10.0, np.float32)
    style = np.full((8, 8, 3), 200.0, np.float32)
    np.testing.assert_array_equal(initial_image('content', content, style, 0), content)
    assert initial_image('style', content, style, 0).shape == (4, 6, 3)
    np.testing.assert_allclose(initial_image('style', content, style, 0), 200.0, atol=0.01)
    noise = initial_image('noise', content, style, 0)
    assert noise.shape == (4, 6, 3) and noise.std() > 50
    np.testing.assert_array_equal(noise, initial_image('noise', content, style, 0))


def test_zero_iterations_returns_the_content(random_extractor, tiny_pair):
    content, style = tiny_pair
    result = stylize(content, style, extractor=random_extractor, iterations=0, init='content',
                     **TINY)
    np.testing.assert_array_equal(result.image, np.round(content).astype(np.uint8))
    assert result.losses['content'] == 0.0


def test_progress_callback(random_extractor, tiny_pair):
    seen = []
    stylize(*tiny_pair, extractor=random_extractor, iterations=5, report_every=2, seed=0,
            callback=seen.append, **TINY)
    assert [p.iteration for p in seen] == [2, 4, 5]
    last = seen[-1]
    assert last.iterations == 5 and last.eta_seconds == 0 and last.iterations_per_second > 0
    assert set(last.losses) == {'content', 'style', 'tv', 'total'}
    assert last.current_image().shape == (24, 32, 3)


def test_tv_weight_smooths(random_extractor, tiny_pair):
    plain = stylize(*tiny_pair, extractor=random_extractor, iterations=5, seed=2, **TINY)
    smooth = stylize(*tiny_pair, extractor=random_extractor, iterations=5, seed=2,
                     tv_weight=1e3, **TINY)
    assert smooth.losses['tv'] > 0
    roughness = [np.abs(np.diff(r.image.astype(float), axis=1)).mean() for r in (plain, smooth)]
    assert roughness[1] < roughness[0]


def test_image_too_small_for_the_layers(random_extractor):
    thin = np.zeros((4, 200, 3), np.float32)
    with pytest.raises(ConfigError, match='short side of at least 16'):
        stylize(thin, thin, extractor=random_extractor, iterations=1, image_size=200,
                weights='random')


def test_real_features_stylize(real_extractor):
    """HED-derived VGG19 at 96 px: the style moves towards the painting, the content stays."""
    content, style = example('tubingen', 96), example('starry_night', 96)
    options = dict(extractor=real_extractor, image_size=96, init='content', seed=0)
    before = stylize(content, style, iterations=0, **options)
    as_painting = stylize(content, style, iterations=0, **dict(options, init='style'))
    after = stylize(content, style, iterations=40, **options)
    # The content photo's own style loss is the yardstick: stylization must cut it hard.
    assert after.losses['style'] < 0.25 * before.losses['style']
    # The content stays recognisable: far closer to the photo than the painting is.
    assert after.losses['content'] < 0.5 * as_painting.losses['content']
    photo = content.mean(axis=-1)
    result = after.image.astype(np.float32).mean(axis=-1)
    assert np.corrcoef(photo.ravel(), result.ravel())[0, 1] > 0.5


def test_lbfgs_and_coarse_to_fine_beat_adam(random_extractor):
    content, style = example('tubingen', 64), example('starry_night', 64)
    options = dict(extractor=random_extractor, image_size=64, init='content', seed=0,
                   weights='random')
    adam = stylize(content, style, optimizer='adam', iterations=10, **options)
    lbfgs = stylize(content, style, optimizer='lbfgs', iterations=10, **options)
    coarse_to_fine = stylize(content, style, scales=2, scale_iterations=(5, 5), **options)
    assert lbfgs.losses['total'] < adam.losses['total']
    assert coarse_to_fine.losses['total'] < adam.losses['total']
    assert coarse_to_fine.image.shape == lbfgs.image.shape == (48, 64, 3)


def test_coarse_to_fine_reports_each_scale(random_extractor, tiny_pair):
    seen = []
    stylize(*tiny_pair, extractor=random_extractor, image_size=64, scales=2, iterations=2,
            weights='random', seed=0, callback=seen.append, report_every=1)
    assert [(p.scale, p.size) for p in seen] == [(0, (24, 32))] * 4 + [(1, (48, 64))] * 2
    assert [p.iteration for p in seen] == list(range(1, 7))


def test_mixed_precision_loss_is_close_to_float32(random_extractor):
    from tf_style.config import StyleTransferConfig
    from tf_style.optimize import evaluate
    pair = example('tubingen', 64), example('starry_night', 64)
    config = StyleTransferConfig(image_size=64)
    image = np.random.default_rng(0).uniform(0, 255, pair[0].shape[:2] + (3,))
    # The same image, its loss computed in bfloat16 and in float32.
    exact = evaluate(random_extractor, *pair, image, config)['total']
    mixed = evaluate(random_extractor.with_precision('mixed'), *pair, image, config)['total']
    assert mixed == pytest.approx(exact, rel=0.05)
    # A mixed-precision run optimises the float32 loss nearly as well.
    runs = {p: stylize(*pair, extractor=random_extractor, iterations=10, seed=0, image_size=64,
                       init='content', precision=p) for p in ('float32', 'mixed')}
    start = stylize(*pair, extractor=random_extractor, iterations=0, init='content',
                    image_size=64)
    assert runs['mixed'].losses['total'] < 0.5 * start.losses['total']
    assert runs['mixed'].losses['total'] == pytest.approx(runs['float32'].losses['total'],
                                                          rel=0.3)


def test_coarsest_scale_too_small_is_refused_before_work(random_extractor, tiny_pair):
    with pytest.raises(ConfigError, match='fewer --scales'):
        stylize(*tiny_pair, extractor=random_extractor, image_size=64, scales=3, iterations=1,
                weights='random')
