"""evaluators.py: the whole image or its tiles, one interface and one definition of the loss."""

import numpy as np
import pytest
import tensorflow as tf

import numerics
from conftest import example
from tf_style import evaluators, tiling
from tf_style.config import StyleTransferConfig
from tf_style.inputs import Inputs
from tf_style.losses import StyleObjective
from tf_style.objective import build_objective

pytestmark = pytest.mark.kernels

CONFIG = StyleTransferConfig(image_size=64, tv_weight=0.01, weights='random')


@pytest.fixture(scope='module')
def inputs():
    return Inputs(example('tubingen', 64), [example('starry_night', 64)])


def _image(inputs):
    noise = np.random.default_rng(0).uniform(0, 255, inputs.content.shape)
    return (0.5 * inputs.content + 0.5 * noise).astype(np.float32)


def test_one_is_chosen_per_scale_and_keeps_its_kind(random_extractor):
    whole = evaluators.choose(random_extractor, 0)
    tiled = evaluators.choose(random_extractor, 32, on_tile=print)
    assert isinstance(whole, evaluators.WholeImage) and isinstance(tiled, tiling.Tiled)
    assert whole.compiled_targets and not whole.host_memory and not whole.costly
    assert tiled.host_memory and tiled.costly and not tiled.compiled_targets
    exact = random_extractor.with_precision('float32')
    again = tiled.with_extractor(exact)
    assert (again.extractor, again.tile_size, again.on_tile) == (exact, 32, print)
    assert evaluators.of(random_extractor).extractor is random_extractor
    assert evaluators.of(tiled) is tiled


@pytest.mark.slow
def test_both_give_the_same_targets_values_and_gradient(random_extractor, inputs):
    whole, tiled = (evaluators.choose(random_extractor, tile) for tile in (0, 32))
    objectives = [build_objective(e, inputs, CONFIG) for e in (whole, tiled)]
    for name, target in objectives[0].content_targets.items():
        numerics.FLOAT32_OTHER_KERNELS.check(objectives[1].content_targets[name], target, name)
    image = _image(inputs)
    values = [e.value(o, image) for e, o in zip((whole, tiled), objectives)]
    for term, value in values[0].items():
        assert values[1][term] == pytest.approx(value, rel=numerics.FLOAT32_OTHER_KERNELS.rtol,
                                                abs=1e-6), term
    x = tf.constant(image[None])
    (_, g_whole), (_, g_tiled) = (e.value_and_gradient(o)(x)
                                  for e, o in zip((whole, tiled), objectives))
    error = np.linalg.norm(g_tiled - g_whole) / np.linalg.norm(g_whole)
    assert error < numerics.FLOAT32_OTHER_KERNELS.rtol


@pytest.mark.slow
def test_both_weigh_the_terms_where_the_objective_does(random_extractor, inputs, monkeypatch):
    # The total is StyleObjective.weighted's, whole or tiled: no evaluator adds up the terms.
    image = _image(inputs)
    before = {tile: _total(random_extractor, inputs, image, tile) for tile in (0, 32)}
    weighted = StyleObjective.weighted

    def doubled(self, *terms):
        out = dict(weighted(self, *terms))
        out['total'] = 2 * out['total']
        return out
    monkeypatch.setattr(StyleObjective, 'weighted', doubled)
    for tile, total in before.items():
        assert _total(random_extractor, inputs, image, tile) == pytest.approx(2 * total), tile


def _total(extractor, inputs, image, tile):
    evaluation = evaluators.choose(extractor, tile)
    return evaluation.value(build_objective(evaluation, inputs, CONFIG), image)['total']
