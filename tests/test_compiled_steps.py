"""CompiledSteps: later runs of the same settings and size reuse the compiled step, and end
exactly where fresh runs end."""

import numpy as np
import pytest

from conftest import example
from tf_style.optimize import CompiledSteps
from tf_style.transfer import stylize


@pytest.fixture(scope='module')
def contents():
    a = example('tubingen', 40)
    return a, a[:, ::-1].copy(), a[::-1].copy()   # one size, three images


@pytest.mark.slow
@pytest.mark.parametrize('options', [
    dict(),
    dict(optimizer='adam', keep_best=True),
    dict(scales=2, image_size=64, init='content_in_style_colors'),
], ids=['lbfgs', 'adam-keep-best', 'two-scales'])
def test_a_reused_step_ends_where_a_fresh_one_does(random_extractor, contents, options):
    settings = dict(dict(extractor=random_extractor, iterations=4, seed=3, image_size=40,
                         precision='float32'), **options)
    style = example('starry_night', 40)
    steps = CompiledSteps()
    for content in contents:
        fresh = stylize(content, style, **settings)
        reused = stylize(content, style, steps=steps, **settings)
        np.testing.assert_array_equal(reused.image, fresh.image)
        assert reused.losses == fresh.losses
    # One optimisation per scale, each traced once for all three images.
    kept = list(steps._kept.values())
    assert len(kept) == settings.get('scales', 1)
    assert all(o._compiled_step.experimental_get_tracing_count() == 1 for o in kept)


@pytest.mark.slow
def test_other_settings_or_sizes_get_their_own_step(random_extractor, contents):
    steps = CompiledSteps(capacity=2)
    style = example('starry_night', 40)
    common = dict(extractor=random_extractor, iterations=2, seed=0, precision='float32',
                  steps=steps)
    stylize(contents[0], style, image_size=40, **common)
    stylize(contents[0], style, image_size=32, **common)
    stylize(contents[0], style, image_size=40, style_weight=10.0, **common)
    # Three keys, two kept: the least recently used went.
    assert len(steps._kept) == 2
    sizes = sorted(key[0] for key in steps._kept)
    assert sizes == [(24, 32, 3), (30, 40, 3)]


def test_a_batch_computes_each_style_images_grams_once(random_extractor, contents, monkeypatch):
    from tf_style.evaluators import WholeImage
    computed = []
    real = WholeImage.grams
    monkeypatch.setattr(WholeImage, 'grams', lambda *a, **k: computed.append(1) or real(*a, **k))
    steps = CompiledSteps()
    style = example('starry_night', 40)
    for content in contents:
        stylize(content, style, extractor=random_extractor, iterations=1, image_size=40,
                precision='float32', steps=steps)
    assert len(computed) == 1 and len(steps.grams) == 1
