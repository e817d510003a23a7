import numpy as np
import pytest

from conftest import example
import numerics
from tf_style import colour
from tf_style.errors import ConfigError
from tf_style.inputs import initial_image
from tf_style.transfer import stylize

TINY = dict(image_size=32, weights='random')


@pytest.fixture(scope='module')
def tiny_pair():
    return example('tubingen', 32), example('starry_night', 32)


@pytest.mark.slow
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


@pytest.mark.slow
@pytest.mark.kernels
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


def test_content_in_style_colors_keeps_the_content_and_takes_the_style_colours():
    rng = np.random.default_rng(0)
    content = rng.uniform(50, 100, (6, 8, 3)).astype(np.float32)
    style = rng.uniform(0, 255, (10, 10, 3)) * [0.7, 0.5, 0.2] + 20  # no pixel is clipped
    start = initial_image('content_in_style_colors', content, style, 0)
    assert start.shape == content.shape
    np.testing.assert_allclose(start.reshape(-1, 3).mean(0), style.reshape(-1, 3).mean(0),
                               rtol=1e-4)
    # An affine map of the content's colours: the structure is the content's.
    fit = np.linalg.lstsq(np.c_[content.reshape(-1, 3), np.ones(48)], start.reshape(-1, 3),
                          rcond=None)
    assert fit[1].max() < 1e-6 * np.square(start).sum()


def test_zero_iterations_return_the_start(random_extractor, tiny_pair):
    content, style = tiny_pair
    result = stylize(content, style, extractor=random_extractor, iterations=0, init='content',
                     **TINY)
    np.testing.assert_array_equal(result.image, np.round(content).astype(np.uint8))
    assert result.losses['content'] == 0.0
    # The recoloured start is made from the images at their working sizes.
    recoloured = stylize(content, style, extractor=random_extractor, iterations=0,
                         init='content_in_style_colors', **TINY)
    np.testing.assert_array_equal(
        recoloured.image, np.round(colour.match_histogram(content, style)).astype(np.uint8))


@pytest.mark.slow
def test_progress_callback(random_extractor, tiny_pair):
    seen = []
    stylize(*tiny_pair, extractor=random_extractor, iterations=5, report_every=2, seed=0,
            callback=seen.append, **TINY)
    assert [p.iteration for p in seen] == [2, 4, 5]
    last = seen[-1]
    assert last.iterations == 5 and last.eta_seconds == 0 and last.iterations_per_second > 0
    assert set(last.losses) == {'content', 'style', 'tv', 'temporal', 'total'}
    assert last.current_image().shape == (24, 32, 3)


@pytest.mark.slow
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


@pytest.mark.slow
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


@pytest.mark.slow
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


@pytest.mark.slow
def test_coarse_to_fine_reports_each_scale(random_extractor, tiny_pair):
    seen = []
    stylize(*tiny_pair, extractor=random_extractor, image_size=64, scales=2, iterations=2,
            weights='random', seed=0, callback=seen.append, report_every=1)
    assert [(p.scale, p.size) for p in seen] == [(0, (24, 32))] * 4 + [(1, (48, 64))] * 2
    assert [p.iteration for p in seen] == list(range(1, 7))


@pytest.mark.slow
@pytest.mark.kernels
def test_mixed_precision_loss_is_close_to_float32(random_extractor):
    from tf_style.config import StyleTransferConfig
    from tf_style.inputs import Inputs
    from tf_style.objective import evaluate
    pair = example('tubingen', 64), example('starry_night', 64)
    inputs = Inputs(pair[0], [pair[1]])
    config = StyleTransferConfig(image_size=64)
    image = np.random.default_rng(0).uniform(0, 255, pair[0].shape[:2] + (3,))
    # The same image, its loss computed in bfloat16 and in float32.
    exact = evaluate(random_extractor, inputs, image, config)['total']
    mixed = evaluate(random_extractor.with_precision('mixed'), inputs, image, config)['total']
    numerics.bfloat16_against_float32().check(mixed, exact)
    # A mixed-precision run optimises the float32 loss nearly as well.
    runs = {p: stylize(*pair, extractor=random_extractor, iterations=10, seed=0, image_size=64,
                       init='content', precision=p) for p in ('float32', 'mixed')}
    start = stylize(*pair, extractor=random_extractor, iterations=0, init='content',
                    image_size=64)
    assert runs['mixed'].losses['total'] < 0.5 * start.losses['total']
    assert runs['mixed'].losses['total'] == pytest.approx(runs['float32'].losses['total'],
                                                          rel=0.3)


def test_coarsest_scale_too_small_is_refused_before_work(random_extractor, tiny_pair):
    with pytest.raises(ConfigError, match='fewer scales'):
        stylize(*tiny_pair, extractor=random_extractor, image_size=64, scales=3, iterations=1,
                weights='random')


# Artistic controls: several styles, masks, colour preservation, initialisation.

@pytest.mark.slow
def test_blend_weights_one_zero_equal_the_single_style(random_extractor, tiny_pair):
    content, style = tiny_pair
    other = example('the_scream', 32)
    single = stylize(content, style, extractor=random_extractor, iterations=3, seed=2, **TINY)
    # style_scale per style: the second style's scale must not matter at weight 0.
    blend = stylize(content, [style, other], extractor=random_extractor, iterations=3, seed=2,
                    style_blend_weights=(1, 0), style_scale=(1.0, 0.7), **TINY)
    np.testing.assert_array_equal(blend.image, single.image)
    mixed = stylize(content, [style, other], extractor=random_extractor, iterations=3, seed=2,
                    **TINY)
    assert not np.array_equal(mixed.image, single.image)


@pytest.mark.slow
def test_a_mask_that_covers_nothing_leaves_the_other_styles_run_unchanged(random_extractor,
                                                                          tiny_pair):
    content, style = tiny_pair
    other = example('the_scream', 32)
    ones, zeros = np.ones(content.shape[:2]), np.zeros(content.shape[:2])
    # float32: equal to the last bit (bfloat16 rounds the two paths' sums differently).
    exact = dict(TINY, precision='float32')
    single = stylize(content, style, extractor=random_extractor, iterations=3, seed=2, **exact)
    masked = stylize(content, [style, other], content_masks=[ones, zeros],
                     style_masks=[np.ones(style.shape[:2]), np.ones(other.shape[:2])],
                     extractor=random_extractor, iterations=3, seed=2, **exact)
    np.testing.assert_array_equal(masked.image, single.image)
    assert masked.losses['total'] == pytest.approx(single.losses['total'], rel=1e-6)
    # No style anywhere: only the content loss is left, and a content start is already optimal.
    none = stylize(content, [style], content_masks=[zeros], extractor=random_extractor,
                   iterations=2, init='content', **TINY)
    assert none.losses['style'] == 0 and none.losses['total'] == 0


def test_bad_control_combinations_are_refused(random_extractor, tiny_pair):
    content, style = tiny_pair
    ones = np.ones(content.shape[:2])
    cases = [
        (dict(style=[style, style], style_blend_weights=(1, 2, 3)), 'has 3 values for 2'),
        (dict(style=[style, style], style_scale=(1, 2, 3)), 'has 3 values for 2'),
        (dict(content_masks=[ones], style_blend_weights=(1,)), 'exclude each other'),
        (dict(style_masks=[ones]), 'need content masks'),
        (dict(content_masks=[ones, ones]), 'one per style'),
        (dict(init='image'), 'needs an init_image'),
        (dict(style=[]), 'no style image'),
    ]
    for changes, message in cases:
        options = dict(style=style, extractor=random_extractor, iterations=1, **TINY)
        options.update(changes)
        with pytest.raises(ConfigError, match=message):
            stylize(content, **options)


def test_init_image_and_noise_blend(random_extractor, tiny_pair):
    content, style = tiny_pair
    start = example('the_scream', 48)
    result = stylize(content, style, extractor=random_extractor, iterations=0, init='image',
                     init_image=start, **TINY)
    np.testing.assert_array_equal(
        result.image, np.round(np.clip(initial_image('image', content, style, 0, start), 0, 255)))
    assert result.image.shape == (24, 32, 3)
    blend = initial_image('content', content, style, 4, noise_blend=0.25)
    noise = initial_image('noise', content, style, 4)
    np.testing.assert_allclose(blend, 0.75 * content + 0.25 * noise, atol=1e-4)


@pytest.mark.slow
def test_preserve_colors(random_extractor, tiny_pair):
    content, style = tiny_pair
    plain = stylize(content, style, extractor=random_extractor, iterations=4, seed=1, **TINY)
    kept = stylize(content, style, extractor=random_extractor, iterations=4, seed=1,
                   preserve_colors='luminance', **TINY)
    chroma = lambda image: colour.rgb_to_yiq(image)[..., 1:]
    error = lambda image: np.abs(chroma(image) - chroma(content)).mean()
    # The content's I and Q, up to clipping to 0..255 and rounding to uint8.
    assert error(kept.image) < 1.5 < 10 < error(plain.image)
    # histogram: the run of a style whose colours were matched to the content's beforehand.
    matched = stylize(content, style, extractor=random_extractor, iterations=4, seed=1,
                      preserve_colors='histogram', **TINY)
    by_hand = stylize(content, colour.match_histogram(style, content),
                      extractor=random_extractor, iterations=4, seed=1, **TINY)
    np.testing.assert_array_equal(matched.image, by_hand.image)
    assert not np.array_equal(matched.image, plain.image)


@pytest.mark.slow
def test_masks_put_each_style_in_its_region(real_extractor):
    """Real features: the left half takes starry_night's texture, the right half the_scream's."""
    from tf_style.losses import guided_gram, position_mean_gram
    from tf_style.masks import at_layers
    content = example('tubingen', 96)
    styles = [example('starry_night', 96), example('the_scream', 96)]
    left = np.zeros(content.shape[:2], np.float32)
    left[:, :content.shape[1] // 2] = 1
    result = stylize(content, styles, content_masks=[left, 1 - left], extractor=real_extractor,
                     image_size=96, iterations=40, init='content', seed=0)
    layer = 'block2_conv1'
    features = real_extractor(result.image[None].astype(np.float32), layers=[layer])[layer]
    targets = [position_mean_gram(real_extractor(s[None], layers=[layer])[layer]) for s in styles]
    for region, mask in enumerate([left, 1 - left]):
        gram = guided_gram(features, at_layers(mask, [layer])[layer])
        distances = [float(np.sum(np.square(gram - t))) for t in targets]
        assert distances[region] < distances[1 - region], (region, distances)


@pytest.mark.slow
def test_a_term_weighted_zero_is_neither_computed_nor_reported(random_extractor):
    """Reconstructions (the paper's Fig. 1) run the network only as deep as their layer."""
    content, style = example('tubingen', 32), example('starry_night', 32)
    r = stylize(content, style, extractor=random_extractor, image_size=32, iterations=2, seed=0,
                style_weight=0.0, content_layers=('conv1_2',))
    assert r.losses['style'] == 0 and r.losses['content'] > 0
    r = stylize(content, style, extractor=random_extractor, image_size=32, iterations=2, seed=0,
                content_weight=0.0, style_layers=('conv1_1', 'conv2_1'))
    assert r.losses['content'] == 0 and r.losses['style'] > 0


@pytest.mark.slow
def test_a_stalled_mixed_run_goes_on_in_float32(random_extractor, tiny_pair, monkeypatch):
    from tf_style import optimize
    switches = []
    original = optimize.Optimization.switch

    def spy(self, objective, extractor):
        before = self.extractor.precision, self.image.numpy(), self.optimizer.s.numpy()
        original(self, objective, extractor)
        switches.append((before[0], self.extractor.precision))
        np.testing.assert_array_equal(self.image.numpy(), before[1])
        np.testing.assert_array_equal(self.optimizer.s.numpy(), before[2])
        assert int(self.optimizer.pairs) > 0
        # bfloat16 losses do not compare with float32 ones: the best is tracked anew.
        assert self.best_image is not None and np.isinf(self.best_loss.numpy())
    monkeypatch.setattr(optimize.Optimization, 'switch', spy)
    # As if every line search failed: a mixed run switches after its first iteration, once.
    monkeypatch.setattr(optimize.Optimization, 'stalled', lambda self: True)
    start = stylize(*tiny_pair, extractor=random_extractor, iterations=0, init='content', **TINY)
    result = stylize(*tiny_pair, extractor=random_extractor, iterations=6, seed=0,
                     init='content', precision='mixed', keep_best=True, **TINY)
    assert switches == [('mixed', 'float32')]
    assert result.config.precision == 'mixed'
    assert result.losses['total'] < 0.8 * start.losses['total']
    # float32 runs have nothing to switch to.
    stylize(*tiny_pair, extractor=random_extractor, iterations=3, precision='float32', **TINY)
    assert switches == [('mixed', 'float32')]


def test_a_tiled_mixed_runs_final_evaluation_frees_the_optimizer_first(
        random_extractor, tiny_pair, monkeypatch):
    """The float32 evaluation that ends a tiled mixed run does not hold the optimizer's state
    (2 x history copies of the image) at the same time: at poster sizes that was the run's
    peak."""
    import gc
    import weakref
    from tf_style import optimize, transfer
    made, alive = [], []
    original_init, original_evaluate = optimize.Optimization.__init__, transfer.evaluate

    def init(self, *args, **kwargs):
        original_init(self, *args, **kwargs)
        made.append(weakref.ref(self))

    def evaluate(*args, **kwargs):
        gc.collect()
        alive.append(sum(ref() is not None for ref in made))
        return original_evaluate(*args, **kwargs)
    monkeypatch.setattr(optimize.Optimization, '__init__', init)
    monkeypatch.setattr(transfer, 'evaluate', evaluate)
    result = stylize(*tiny_pair, extractor=random_extractor, iterations=2, seed=0,
                     init='content', precision='mixed', tile_size=16, **TINY)
    assert made and alive == [0]
    assert result.losses['total'] > 0


@pytest.mark.slow
def test_auto_precision_is_resolved_in_the_result(random_extractor, tiny_pair, monkeypatch):
    from tf_style import hardware
    for fast, expected in ((True, 'mixed'), (False, 'float32')):
        monkeypatch.setattr(hardware, 'bfloat16_is_fast', lambda caps, fast=fast: fast)
        result = stylize(*tiny_pair, extractor=random_extractor, iterations=1, **TINY)
        assert result.config.precision == expected


def test_eta_leaves_out_each_scales_first_iteration():
    # Two scales, 256 then 512 px, 4 iterations each: every scale's first iteration costs 10 s
    # more (targets, tracing), later ones 1 s at 256 px and 4 s at 512.
    from tf_style.transfer import _Clock
    schedule = [(256, 4), (512, 4)]
    t = [0.0]
    clock = _Clock(0, now=lambda: t[0])
    etas = []
    for done, seconds in enumerate([11, 1, 1, 1, 14, 4, 4, 4], start=1):
        t[0] += seconds
        scale = 0 if done <= 4 else 1
        clock.iteration_done(scale, done)
        rate, _ = clock.tick(done)
        etas.append(clock.eta([1.0, 4.0], schedule, scale, done, rate))  # costs: pixels
    # After the first iteration only the raw rate exists; then the steady 1 s (256 px) predicts
    # 4 s at 512 px, before and after the 512 px scale's own first iteration.
    assert etas[0] == pytest.approx(11 * (3 + 4 * 4))
    assert etas[1:] == pytest.approx([2 + 16, 1 + 16, 16, 12, 8, 4, 0])


def test_eta_costs_count_pixels_and_the_tiles_planned():
    from tf_style import plan, tiling
    from tf_style.config import StyleTransferConfig
    from tf_style.transfer import _costs
    config = StyleTransferConfig(tile_size=128, image_size=256, scales=2)
    planned = plan.plan(config, (192, 256), [(192, 256)])
    # A 128 px tile covers the coarse scale: untiled.
    assert [scale.tile for scale in planned.scales] == [0, 128]
    costs = _costs(planned)
    assert costs[1] / costs[0] == pytest.approx(
        4 * tiling.relative_cost(192, 256, 128, config.layers))
    assert costs[1] / costs[0] > 4 * tiling.PASSES_COST
