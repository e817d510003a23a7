"""Tiled evaluation (tiling.py): the same losses and gradient as the untiled objective."""

import numpy as np
import pytest
import tensorflow as tf

import numerics
from tf_style import colour, tiling, vgg_layers
from tf_style.config import StyleTransferConfig
from tf_style.errors import ConfigError
from tf_style.losses import StyleObjective
from tf_style.inputs import Inputs
from tf_style.objective import build_objective, losses_at

pytestmark = pytest.mark.kernels

# 384 px on the long side, 128 px tiles: 3 x 3 tiles, the last row ragged (24 px, not a multiple
# of the 16 px pooling grid, so conv5_1's map drops a row as valid pooling does untiled).
HEIGHT, WIDTH, TILE = 280, 384, 128
# Tiles with halos against the whole image: float32 through other kernels and shapes.
TOLERANCE = numerics.FLOAT32_OTHER_KERNELS.rtol


def _image(seed, height=HEIGHT, width=WIDTH):
    return np.random.default_rng(seed).uniform(0, 255, (height, width, 3)).astype(np.float32)


def _smooth(seed, height=HEIGHT, width=WIDTH):
    """A photo-like image: smooth colour gradients plus a little noise."""
    y, x = np.mgrid[0:height, 0:width] / max(height, width)
    base = np.stack([np.sin(6 * x + seed), np.cos(5 * y - seed), np.sin(4 * (x + y))], -1)
    return np.clip(127 + 100 * base + _image(seed, height, width) * 0.1 - 12, 0, 255
                   ).astype(np.float32)


def _masks():
    """Two soft, complementary content masks whose boundary is a diagonal across tiles."""
    y, x = np.mgrid[0:HEIGHT, 0:WIDTH]
    first = np.clip((x - 0.8 * y - 100) / 40.0, 0, 1).astype(np.float32)
    return [first, 1 - first]


def _case(name):
    """(inputs, config) of each situation the tiled objective must reproduce."""
    content, styles = _smooth(1), [_smooth(2, 200, 256), _image(3, 160, 224)]
    config = StyleTransferConfig(weights='random')
    inputs = Inputs(content, styles[:1])
    if name == 'one_style_tv':
        config = config.replace(tv_weight=1e-2)
    elif name == 'blend':
        config = config.replace(style_blend_weights=(0.7, 0.3))
        inputs = Inputs(content, styles)
    elif name == 'masks':
        style_masks = [np.tril(np.ones(s.shape[:2], np.float32)) for s in styles]
        inputs = Inputs(content, styles, content_masks=_masks(), style_masks=style_masks)
    elif name == 'preserve_colors':
        config = config.replace(preserve_colors='luminance')
        content, prepared = colour.prepare('luminance', content, styles[:1])
        inputs = Inputs(content, prepared)
    return inputs, config


def _untiled(extractor, objective, image):
    with tf.GradientTape() as tape:
        x = tf.constant(image[None])
        tape.watch(x)
        losses = losses_at(objective, extractor, x, objective.layers)
    return {k: float(v) for k, v in losses.items()}, tape.gradient(losses['total'], x).numpy()[0]


_CACHE = {}


def _evaluations(extractor, name):
    """(untiled (losses, gradient), tiled (losses, gradient), objective) for a case, once."""
    key = (id(extractor), name)
    if key not in _CACHE:
        inputs, config = _case(name)
        objective = build_objective(extractor, inputs, config)
        image = _image(10)
        _CACHE[key] = (_untiled(extractor, objective, image),
                       tiling.TiledObjective(extractor, objective, TILE).value_and_gradient(image),
                       objective)
    return _CACHE[key]


def _relative(a, b):
    return float(np.linalg.norm(np.asarray(a) - b) / np.linalg.norm(b))


def _assert_equal(untiled, tiled):
    (losses, gradient), (tiled_losses, tiled_gradient) = untiled, tiled
    assert set(tiled_losses) == set(losses)
    for term, value in losses.items():
        assert abs(tiled_losses[term] - value) <= TOLERANCE * abs(value), term
    assert _relative(tiled_gradient, gradient) <= TOLERANCE


# ---- the halo and the tiles ----

def test_receptive_radius_and_halo():
    # S: pixels per position; each 3x3 conv adds S, each pooling doubles S.
    assert tiling.receptive_radius('block1_conv1') == 1
    assert tiling.receptive_radius('block2_conv1') == 2 + 2
    assert tiling.receptive_radius('block4_conv2') == 6 + 4 * 4 + 2 * 8
    assert tiling.receptive_radius('block5_conv1') == 54 + 16
    assert tiling.required_halo(['block4_conv2']) == 40            # 38 up to the 8 px grid
    assert tiling.required_halo(vgg_layers.STYLE_LAYERS) == 80     # 70 up to the 16 px grid
    assert tiling.required_halo(['block1_conv1']) == 1


@pytest.mark.parametrize('layer, halvings', [('block3_conv1', 2), ('block4_conv2', 3)])
def test_receptive_radius_is_what_the_network_reads(random_extractor, layer, halvings):
    """The pixels one feature's gradient reaches span exactly its block plus the radius."""
    stride, radius, j = 2 ** halvings, tiling.receptive_radius(layer), 10
    side = stride * (2 * j + 1)
    image = tf.constant(_image(4, side, side)[None])
    with tf.GradientTape() as tape:
        tape.watch(image)
        feature = tf.reduce_sum(random_extractor(image, layers=(layer,))[layer][0, j, j])
    reached = np.nonzero(np.abs(tape.gradient(feature, image).numpy()[0]).sum(axis=(1, 2)))[0]
    assert (reached.min(), reached.max()) == (j * stride - radius, j * stride + stride - 1 + radius)


def test_tile_grid_partitions_pixels_and_features():
    layers = vgg_layers.STYLE_LAYERS + vgg_layers.CONTENT_LAYERS
    tiles = tiling.tile_grid(HEIGHT, WIDTH, 130, layers)   # rounded down to 128
    assert [(t.y0, t.x0) for t in tiles[:4]] == [(0, 0), (0, 128), (0, 256), (128, 0)]
    covered = np.zeros((HEIGHT, WIDTH), int)
    for t in tiles:
        covered[t.y0:t.y1, t.x0:t.x1] += 1
        assert t.cy0 == max(t.y0 - 80, 0) and t.cx1 == min(t.x1 + 80, WIDTH)
    assert np.all(covered == 1)
    for halvings in range(5):
        owned = np.zeros((HEIGHT >> halvings, WIDTH >> halvings), int)
        for t in tiles:
            r0, r1, c0, c1 = t.owned(halvings)
            owned[r0:r1, c0:c1] += 1
        assert np.all(owned == 1), halvings
    with pytest.raises(ConfigError, match='tile_size'):
        tiling.tile_grid(HEIGHT, WIDTH, 8, layers)


def test_margins_fall_from_the_halo_to_nothing():
    margins = vgg_layers.margins(vgg_layers.STYLE_LAYERS)
    assert margins['block1_conv1'] == 80 and margins['block5_conv1'] == 0
    assert margins['block3_conv1'] == 64      # 70 - 10 read up to conv3_1, up to the grid
    assert margins['block4_conv4'] == 16      # conv5_1 reads one 16 px position each side
    assert list(margins.values()) == sorted(margins.values(), reverse=True)


def _worst_owned_error(extractor, image, layers):
    """The largest difference between a tile's owned features and the whole image's, over all
    tiles and layers, relative to the largest feature."""
    whole = extractor(image[None], layers=layers)
    worst = 0.0
    for tile in tiling.tile_grid(*image.shape[:2], TILE, layers):
        owned = tiling._owned_features(extractor, tf.constant(image[None, tile.cy0:tile.cy1,
                                                                    tile.cx0:tile.cx1]),
                                       tf.constant(tile.offsets()), layers)
        for name in layers:
            r0, r1, c0, c1 = tile.owned(vgg_layers.halvings(name))
            expected = whole[name][:, r0:r1, c0:c1].numpy()
            worst = max(worst, np.abs(owned[name].numpy() - expected).max() /
                        np.abs(whole[name].numpy()).max())
    return worst


def test_trimmed_tiles_compute_the_whole_images_features(random_extractor, monkeypatch):
    """Each tile drops its halo layer by layer, and its owned features are still exact; with
    every margin one grid step (16 px) short they are not."""
    layers = tuple(vgg_layers.canonical(name) for name in
                   vgg_layers.STYLE_LAYERS + vgg_layers.CONTENT_LAYERS)
    assert _worst_owned_error(random_extractor, _image(6), layers) <= 1e-5
    exact = vgg_layers.margins
    monkeypatch.setattr(vgg_layers, 'margins', lambda layers: {
        name: max(margin - 16, 0) for name, margin in exact(layers).items()})
    assert _worst_owned_error(random_extractor, _image(6), layers) > 1e-2


# ---- tiled equals untiled ----

@pytest.mark.slow
@pytest.mark.parametrize('name', ['one_style_tv', 'blend', 'masks', 'preserve_colors'])
def test_tiled_equals_untiled(random_extractor, name):
    untiled, tiled, objective = _evaluations(random_extractor, name)
    assert all(untiled[0][term] > 0 for term in ('content', 'style'))
    if name == 'masks':
        assert len(objective.regions) == 2
    _assert_equal(untiled, tiled)
    if name in ('one_style_tv', 'masks'):  # the value alone: one forward pass over the tiles
        value = tiling.TiledObjective(random_extractor, objective, TILE).value(_image(10))
        assert all(abs(value[k] - v) <= TOLERANCE * abs(v) for k, v in untiled[0].items())


@pytest.mark.slow
def test_tiled_equals_untiled_with_real_weights(real_extractor):
    _assert_equal(*_evaluations(real_extractor, 'one_style_tv')[:2])


@pytest.mark.slow
@pytest.mark.parametrize('real', [False, True])
def test_no_seam_at_tile_boundaries(random_extractor, real_extractor, real):
    """The gradient on the pixels either side of every tile boundary is the untiled one."""
    extractor = real_extractor if real else random_extractor
    (_, gradient), (_, tiled), _ = _evaluations(extractor, 'one_style_tv')
    rows = [r for b in range(TILE, HEIGHT, TILE) for r in (b - 1, b)]
    cols = [c for b in range(TILE, WIDTH, TILE) for c in (b - 1, b)]
    for seam in (np.s_[rows, :], np.s_[:, cols]):
        assert _relative(tiled[seam], gradient[seam]) <= TOLERANCE


@pytest.mark.slow
def test_too_small_a_halo_is_caught(random_extractor, monkeypatch):
    """The tests above can fail: with a 16 px halo (too small for conv5_1's 70 px) the
    style term and the gradient at the seams differ."""
    (losses, gradient), _, objective = _evaluations(random_extractor, 'one_style_tv')
    monkeypatch.setattr(tiling, 'required_halo', lambda layers: 16)
    tiled_losses, tiled = tiling.TiledObjective(random_extractor, objective, TILE
                                                ).value_and_gradient(_image(10))
    assert abs(tiled_losses['style'] - losses['style']) > 10 * TOLERANCE * losses['style']
    rows = [TILE - 1, TILE]
    assert _relative(tiled[rows], gradient[rows]) > 10 * TOLERANCE


def test_one_tile_is_the_untiled_evaluation(random_extractor):
    """A tile as large as the image: the same losses and gradient, on a small image, in one
    pass (the largest tile, here the only one, completes the Gram sums itself)."""
    config = StyleTransferConfig(weights='random', style_layers=('block1_conv1', 'block2_conv1'),
                                 content_layers=('block2_conv2',), tv_weight=1e-2)
    objective = build_objective(random_extractor, Inputs(_smooth(1, 40, 48), [_image(2, 32, 32)]),
                                config)
    image = _image(5, 40, 48)
    passes = []
    _assert_equal(_untiled(random_extractor, objective, image),
                  tiling.tiled_value_and_gradient(random_extractor, objective, image, 64,
                                                  lambda *told: passes.append(told)))
    assert passes == [(tiling.GRADIENT, 1, 1)]


def test_temporal_term_tiled(random_extractor):
    """The temporal term (video) reads no network: computed whole, it adds the untiled loss and
    gradient (shallow layers, 16 px tiles, so the comparison is quick)."""
    config = StyleTransferConfig(weights='random', style_layers=('block1_conv1',),
                                 content_layers=('block1_conv2',), temporal_weight=50.0)
    mask = np.tril(np.ones((40, 48), np.float32))
    inputs = Inputs(_smooth(1, 40, 48), [_image(2, 32, 32)], temporal_target=_image(3, 40, 48),
                    temporal_mask=mask)
    objective = build_objective(random_extractor, inputs, config)
    image = _image(5, 40, 48)
    untiled, tiled = (_untiled(random_extractor, objective, image),
                      tiling.TiledObjective(random_extractor, objective, 16
                                            ).value_and_gradient(image))
    assert untiled[0]['temporal'] > 0
    _assert_equal(untiled, tiled)


def test_each_tile_function_is_traced_once(random_extractor):
    """Tiles of many shapes (image borders, a ragged last row and column), masks included: one
    trace per per-tile function, not one per shape (and no TensorFlow retracing warnings)."""
    config = StyleTransferConfig(weights='random', style_layers=('block1_conv1', 'block2_conv1'),
                                 content_layers=('block1_conv2',))
    content_masks = [np.tril(np.ones((40, 52), np.float32))]
    content_masks.append(1 - content_masks[0])
    inputs = Inputs(_smooth(1, 40, 52), [_image(2, 32, 32), _image(3, 24, 40)],
                    content_masks=content_masks)
    tiled = tiling.TiledObjective(random_extractor,
                                  build_objective(random_extractor, inputs, config), 16)
    assert len({(t.cy1 - t.cy0, t.cx1 - t.cx0) for t in tiled.tiles(40, 52)}) > 2
    for seed in (5, 6):
        tiled.value_and_gradient(_image(seed, 40, 52))
    assert tiled._forward.compiled.experimental_get_tracing_count() == 1
    assert tiled._gradient.compiled.experimental_get_tracing_count() == 1


# ---- targets of images too large for one forward pass ----

@pytest.mark.slow
def test_tiled_features_and_grams_equal_untiled(random_extractor):
    from tf_style import masks
    from tf_style.losses import guided_gram, position_mean_gram
    layers = vgg_layers.STYLE_LAYERS + vgg_layers.CONTENT_LAYERS
    image, mask = _smooth(6, 120, 160), _masks()[0][:120, 100:260]
    untiled = random_extractor(image[None], layers=layers)
    tiled = tiling.tiled_features(random_extractor, image, layers, 64)
    for name in layers:
        assert tiled[name].shape == tuple(untiled[name].shape)
        assert _relative(tiled[name], untiled[name].numpy()) <= TOLERANCE, name
    guides = masks.at_layers(mask, layers)
    for guided in (False, True):
        grams = tiling.tiled_grams(random_extractor, image, layers, 64,
                                   mask=mask if guided else None)
        for name in layers:
            expected = (guided_gram(untiled[name], guides[name]) if guided else
                        position_mean_gram(untiled[name])).numpy()
            assert _relative(grams[name].numpy(), expected) <= TOLERANCE, (name, guided)


# ---- an optimizer driving the tiled objective ----

@pytest.mark.slow
def test_lbfgs_steps_on_tiled_match_untiled(random_extractor):
    """tf_style.lbfgs.LBFGS, in a tf.function as optimize.py runs it, takes the same steps on
    the tiled objective as on the untiled one (shallow layers: 3 x 3 tiles of 32 px, 12 px
    halos, on a 96 x 80 image)."""
    from tf_style.lbfgs import LBFGS
    config = StyleTransferConfig(weights='random', content_layers=('block3_conv1',),
                                 style_layers=('block1_conv1', 'block2_conv1', 'block3_conv1'),
                                 tv_weight=1e-3)
    objective = build_objective(random_extractor, Inputs(_smooth(1, 80, 96), [_image(2, 64, 64)]),
                                config)
    tiled = tiling.TiledObjective(random_extractor, objective, 32)
    assert len(tiled.tiles(80, 96)) == 9

    def untiled(image):
        with tf.GradientTape() as tape:
            tape.watch(image)
            losses = losses_at(objective, random_extractor, image, objective.layers)
        return losses, tape.gradient(losses['total'], image)

    runs = []
    for value_and_gradient in (untiled, tiled.tensor_value_and_gradient):
        image = tf.Variable(_image(7, 80, 96)[None])
        lbfgs = LBFGS(image, terms=StyleObjective.TERMS)
        lbfgs.prime(value_and_gradient)
        step = tf.function(lambda: lbfgs.step(value_and_gradient), autograph=False)
        losses = [float(step()[0]['total']) for _ in range(4)]
        runs.append((losses, image.numpy()))
    (losses, image), (tiled_losses, tiled_image) = runs
    assert losses[-1] < losses[0]
    np.testing.assert_allclose(tiled_losses, losses, rtol=TOLERANCE)
    assert _relative(tiled_image, image) <= TOLERANCE


def test_an_image_of_another_size_is_refused(random_extractor):
    config = StyleTransferConfig(weights='random', content_layers=('block1_conv2',),
                                 style_layers=('block1_conv1',))
    objective = build_objective(random_extractor, Inputs(_image(1, 32, 32), [_image(2, 32, 32)]),
                                config)
    with pytest.raises(ValueError, match='another size'):
        tiling.TiledObjective(random_extractor, objective, 16).value_and_gradient(_image(3, 48, 32))


# ---- in stylize: tile_size ----

def _content_and_style():
    return _smooth(1, 64, 96), _image(2, 64, 64)


def _count_tiled_evaluations(monkeypatch):
    calls = []
    evaluate = tiling.TiledObjective.value_and_gradient
    monkeypatch.setattr(tiling.TiledObjective, 'value_and_gradient',
                        lambda self, image: calls.append(1) or evaluate(self, image))
    return calls


@pytest.mark.slow
def test_tiled_stylize_equals_untiled(random_extractor, monkeypatch):
    """stylize(tile_size=64) on 96 x 64 px (2 tiles, the paper's layers): the L-BFGS run and its
    result are the untiled one's."""
    from tf_style.transfer import stylize
    # float32: in mixed precision each tile rounds in bfloat16 on its own (docs/tiling.md), and
    # `auto` is mixed on CPUs with bfloat16 units.
    options = dict(image_size=96, iterations=2, seed=1, weights='random', tv_weight=1e-2,
                   precision='float32', extractor=random_extractor)
    untiled = stylize(*_content_and_style(), tile_size=0, **options)
    calls = _count_tiled_evaluations(monkeypatch)
    tiled = stylize(*_content_and_style(), tile_size=64, **options)
    assert calls, 'the tiled run did not evaluate tile by tile'
    for term, value in untiled.losses.items():
        assert tiled.losses[term] == pytest.approx(value, rel=TOLERANCE, abs=1e-6), term
    assert np.abs(tiled.image.astype(int) - untiled.image).max() <= 1
    assert np.abs(tiled.image.astype(int) - untiled.image).mean() < 0.01


@pytest.mark.slow
def test_automatic_tiles_and_resume(random_extractor, tmp_path, monkeypatch):
    """With too little memory for the untiled run (faked), stylize tiles by itself; a tiled run
    stopped and resumed from its checkpoint ends where an untiled uninterrupted run does."""
    from tf_style import memory
    from tf_style.checkpoint import Checkpointer
    from tf_style.transfer import stylize
    # Shallow layers (6 px halos), so that a 64 px tile needs less than the whole 96 x 64 image.
    options = dict(image_size=96, iterations=3, seed=1, weights='random', precision='float32',
                   content_layers=('block2_conv2',), style_layers=('block1_conv1', 'block2_conv1'),
                   extractor=random_extractor)
    whole = stylize(*_content_and_style(), tile_size=0, **options)

    config = StyleTransferConfig(**{k: v for k, v in options.items() if k != 'extractor'})
    monkeypatch.setattr(memory, 'TILED_EXTRA_BYTES', 0)  # a large run's, here all the estimate
    untiled, tiled = (memory.estimate_bytes(64, 96, config),
                      memory.tiled_estimate_bytes(64, 96, 64, config))
    assert tiled < untiled
    monkeypatch.setattr(memory, 'available_bytes', lambda: (tiled + untiled) / 2)
    monkeypatch.setattr(memory, 'gpu_available_bytes', lambda: None)
    monkeypatch.setattr(memory, 'SMALLEST_TILE', 64)
    monkeypatch.setattr(memory, 'TILE_STEP', 64)
    calls = _count_tiled_evaluations(monkeypatch)
    stages = []  # a stop is heard between tiles too: stop once the third iteration starts
    first = stylize(*_content_and_style(), on_stage=stages.append,
                    should_stop=lambda: any(s.iteration == 2 for s in stages),
                    checkpointer=Checkpointer(str(tmp_path), every=0), **options)
    assert calls and not first.completed and first.iterations == 2
    rest = stylize(*_content_and_style(), checkpointer=Checkpointer(str(tmp_path), resume=True),
                   **options)
    assert rest.completed and rest.iterations == 3
    assert rest.losses['total'] == pytest.approx(whole.losses['total'], rel=TOLERANCE)
    assert np.abs(rest.image.astype(int) - whole.image).max() <= 1


def test_a_tiled_scale_starts_without_the_last_scales_optimizer(random_extractor, monkeypatch):
    """Coarse-to-fine into a tiled scale: the previous scale's optimizer (L-BFGS's history) and
    targets are gone before the tiled scale's targets are computed, not left to chance."""
    import weakref
    from tf_style import transfer
    real, made, alive = transfer.Optimization, [], []

    def optimization(*args, **kwargs):
        result = real(*args, **kwargs)
        made.append(weakref.ref(result))
        return result
    monkeypatch.setattr(transfer, 'Optimization', optimization)
    transfer.stylize(*_content_and_style(), image_size=96, scales=2, iterations=2, seed=1,
                     tile_size=64, weights='random', precision='float32',
                     content_layers=('block2_conv2',), style_layers=('block1_conv1',),
                     extractor=random_extractor,
                     on_stage=lambda stage: alive or alive.append(made[0]() is not None))
    assert len(made) == 2 and alive == [False]


def test_relative_cost_counts_both_passes_over_the_trimmed_crops():
    layers = StyleTransferConfig().layers
    assert tiling.relative_cost(3072, 4096, 0, layers) == 1.0
    assert tiling.relative_cost(300, 400, 512, layers) == 1.0  # one tile, no halo: one pass
    # conv1_1 and conv1_2 (halo 2 px, 1 px left after conv1_1), a 100 x 200 image in two 100 px
    # tiles: each crop is 100 x 102 at conv1_1's input, 100 x 101 at conv1_2's; one of them runs
    # forward once.
    two = ('block1_conv1', 'block1_conv2')
    crop = 3 * 64 * 9 * 100 * 102 + 64 * 64 * 9 * 100 * 101
    assert tiling.relative_cost(100, 200, 100, two) == pytest.approx(
        (1.5 * 2 * crop - 0.5 * crop) / ((3 * 64 * 9 + 64 * 64 * 9) * 100 * 200))
    # The paper's layers, 4096 x 3072 in 1664 px tiles (3 x 2): below the cost of whole crops
    # (80 px halos, cut at the edges: widths 1744 + 1824 + 848, heights 1744 + 1488), above
    # that of no halos at all.
    crops = (1.5 * (1744 + 1824 + 848) * (1744 + 1488) - 0.5 * 1824 * 1744) / (4096 * 3072)
    interiors = (1.5 * 4096 * 3072 - 0.5 * 1664 * 1664) / (4096 * 3072)
    assert interiors < tiling.relative_cost(3072, 4096, 1664, layers) < crops


def test_stages_follow_each_pass_over_the_tiles(random_extractor):
    """on_stage hears every tile of every pass, in order: the targets, then the evaluations of
    each iteration; an untiled run has no stages."""
    from tf_style.transfer import stylize
    options = dict(image_size=96, iterations=2, seed=1, weights='random',
                   content_layers=('block2_conv2',), style_layers=('block1_conv1',),
                   extractor=random_extractor)
    stages = []
    stylize(*_content_and_style(), tile_size=64, on_stage=stages.append, **options)
    targets = (tiling.STYLE_TARGETS, tiling.CONTENT_TARGETS)
    first = [s.what for s in stages if s.iteration == 0]
    assert set(first) == {*targets, tiling.GRAMS, tiling.GRADIENT}
    assert max(first.index(what) for what in targets) < first.index(tiling.GRAMS)
    assert any(s.iteration == 1 and s.what == tiling.GRADIENT for s in stages)
    tiles = len(tiling.tile_grid(64, 96, 64, ('block2_conv2', 'block1_conv1')))
    assert tiles == 2 and all(s.tiles == tiles for s in stages if s.what == tiling.GRADIENT)
    # The largest tile runs in both passes at once: pass 1 has the others. After the last
    # gradient, only a mixed run's final float32 losses: its targets, one pass over all tiles.
    last = max(i for i, s in enumerate(stages) if s.what == tiling.GRADIENT)
    assert all(s.tiles == tiles - 1 for s in stages[:last] if s.what == tiling.GRAMS)
    assert all(s.what in targets or (s.what == tiling.GRAMS and s.tiles == tiles)
               for s in stages[last + 1:])
    previous = None
    for s in stages:  # each pass counts its tiles from 1 to the last
        new_pass = previous is None or previous.tile == previous.tiles
        assert s.tile == (1 if new_pass else previous.tile + 1), (previous, s)
        previous = s
    assert previous.tile == previous.tiles
    assert all(s.size == (64, 96) and s.iterations == 2 for s in stages)
    stages.clear()
    stylize(*_content_and_style(), tile_size=0, on_stage=stages.append, **options)
    assert stages == []


@pytest.mark.slow
def test_a_stop_between_tiles_keeps_the_last_iteration_and_resumes(random_extractor, tmp_path):
    """A stop request heard between the tiles of an iteration's evaluation ends the run there,
    mid-pass: the image and the checkpoint are the last finished iteration's, and the resumed
    run ends where an uninterrupted one does."""
    from tf_style.checkpoint import Checkpointer
    from tf_style.transfer import stylize
    options = dict(image_size=96, seed=1, weights='random', precision='float32', tile_size=64,
                   content_layers=('block2_conv2',), style_layers=('block1_conv1',),
                   extractor=random_extractor)
    two = stylize(*_content_and_style(), iterations=2, **options)
    whole = stylize(*_content_and_style(), iterations=3, **options)
    stages = []
    first = stylize(*_content_and_style(), iterations=3, on_stage=stages.append,
                    should_stop=lambda: any(s.iteration == 2 and s.what == tiling.GRADIENT
                                            for s in stages),
                    checkpointer=Checkpointer(str(tmp_path), every=0), **options)
    assert not first.completed and first.iterations == 2
    last = stages[-1]
    assert last.iteration == 2 and last.what == tiling.GRADIENT and last.tile < last.tiles
    assert np.array_equal(first.image, two.image)
    assert first.losses['total'] == pytest.approx(two.losses['total'], rel=TOLERANCE)
    rest = stylize(*_content_and_style(), iterations=3,
                   checkpointer=Checkpointer(str(tmp_path), resume=True), **options)
    assert rest.completed and rest.iterations == 3
    assert np.array_equal(rest.image, whole.image)
