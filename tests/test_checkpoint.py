"""Long runs: stop and resume, refused resumes, numerical faults, keeping the best image."""

import numpy as np
import pytest
import tensorflow as tf

from conftest import example
from tf_style.checkpoint import Checkpointer
from tf_style.errors import TfStyleError
from tf_style.adam import MAX_FAULTS
from tf_style.transfer import stylize

OPTIONS = dict(image_size=48, seed=3, weights='random', init='noise')


@pytest.fixture(scope='module')
def pair():
    return example('tubingen', 48), example('starry_night', 48)


def stop_after(n):
    calls = []
    return lambda: calls.append(1) or len(calls) >= n


@pytest.mark.parametrize('settings', [
    dict(optimizer='lbfgs', iterations=6),
    dict(optimizer='adam', iterations=6),
    # Stops inside the coarse scale; style_scale keeps the half-size style image deep enough
    # for block5_conv1.
    dict(optimizer='lbfgs', scales=2, scale_iterations=(4, 3), style_scale=1.5),
])
def test_resumed_run_ends_where_an_uninterrupted_one_does(random_extractor, pair, tmp_path,
                                                          settings):
    whole = stylize(*pair, extractor=random_extractor, **OPTIONS, **settings)
    first = stylize(*pair, extractor=random_extractor, should_stop=stop_after(3),
                    checkpointer=Checkpointer(str(tmp_path), every=0), **OPTIONS, **settings)
    assert not first.completed and first.iterations == 3
    assert (tmp_path / 'ckpt' / 'state.json').exists()
    rest = stylize(*pair, extractor=random_extractor,
                   checkpointer=Checkpointer(str(tmp_path), resume=True), **OPTIONS, **settings)
    assert rest.completed and rest.iterations == whole.iterations
    np.testing.assert_allclose(rest.image.astype(int), whole.image.astype(int), atol=1)
    assert rest.losses['total'] == pytest.approx(whole.losses['total'], rel=1e-4)


def test_a_run_that_went_on_in_float32_resumes_in_float32(random_extractor, pair, tmp_path,
                                                          monkeypatch):
    from tf_style import optimize
    # As if every line search failed: a mixed run goes on in float32 after its first iteration.
    monkeypatch.setattr(optimize.Optimization, 'stalled', lambda self: True)
    settings = dict(OPTIONS, precision='mixed', iterations=6)
    whole = stylize(*pair, extractor=random_extractor, **settings)
    stylize(*pair, extractor=random_extractor, should_stop=stop_after(3),
            checkpointer=Checkpointer(str(tmp_path), every=0), **settings)
    rest = stylize(*pair, extractor=random_extractor,
                   checkpointer=Checkpointer(str(tmp_path), resume=True), **settings)
    np.testing.assert_allclose(rest.image.astype(int), whole.image.astype(int), atol=1)
    assert rest.losses['total'] == pytest.approx(whole.losses['total'], rel=1e-4)


def test_resume_refuses_other_settings_or_inputs(random_extractor, pair, tmp_path):
    stylize(*pair, extractor=random_extractor, iterations=2, **OPTIONS,
            checkpointer=Checkpointer(str(tmp_path), every=1))
    with pytest.raises(TfStyleError, match='other inputs or settings'):
        stylize(*pair, extractor=random_extractor, iterations=2, style_weight=5.0, **OPTIONS,
                checkpointer=Checkpointer(str(tmp_path), resume=True))
    with pytest.raises(TfStyleError, match='other inputs or settings'):
        stylize(pair[1], pair[0], extractor=random_extractor, iterations=2, **OPTIONS,
                checkpointer=Checkpointer(str(tmp_path), resume=True))


def test_nothing_to_resume(random_extractor, pair, tmp_path):
    with pytest.raises(TfStyleError, match='nothing to resume'):
        stylize(*pair, extractor=random_extractor, iterations=2, **OPTIONS,
                checkpointer=Checkpointer(str(tmp_path), resume=True))


def test_periodic_checkpoints_leave_one_complete_directory(random_extractor, pair, tmp_path):
    stylize(*pair, extractor=random_extractor, iterations=4, **OPTIONS,
            checkpointer=Checkpointer(str(tmp_path), every=1))
    assert sorted(p.name for p in tmp_path.iterdir()) == ['ckpt']


class FlakyExtractor:
    """Features that are NaN on the evaluations whose number is in `bad` (all when None)."""

    def __init__(self, extractor, bad=None):
        self.extractor = extractor
        self.bad = bad
        self.calls = tf.Variable(0)

    def __call__(self, images, layers):
        self.calls.assign_add(1)
        features = self.extractor(images, layers=layers)
        if self.bad is None:
            poisoned = tf.constant(True)
        else:
            poisoned = tf.reduce_any(tf.equal(self.calls, tf.constant(self.bad)))
        scale = tf.where(poisoned, np.nan, 1.0)
        return {k: v * scale for k, v in features.items()}


@pytest.mark.parametrize('optimizer', ['adam', 'lbfgs'])
def test_nan_never_reaches_the_image(random_extractor, pair, optimizer):
    start = stylize(*pair, extractor=random_extractor, iterations=0, **OPTIONS).image
    result = stylize(*pair, extractor=FlakyExtractor(random_extractor), iterations=3 * MAX_FAULTS,
                     optimizer=optimizer, **OPTIONS)
    np.testing.assert_array_equal(result.image, start)  # the last good image: the start
    if optimizer == 'adam':
        assert not result.completed and 'NaN or Inf' in result.stop_reason


def test_adam_steps_over_a_few_nans(random_extractor, pair):
    # Evaluations 1 and 2 build the targets; 4 and 5 are iterations 2 and 3.
    flaky = stylize(*pair, extractor=FlakyExtractor(random_extractor, bad=[4, 5]),
                    iterations=8, optimizer='adam', **OPTIONS)
    clean = stylize(*pair, extractor=random_extractor, iterations=0, optimizer='adam', **OPTIONS)
    assert flaky.completed
    assert np.isfinite(flaky.losses['total']) and flaky.losses['total'] < clean.losses['total']


def test_keep_best_returns_the_lowest_loss_image(random_extractor, pair):
    # A large Adam step makes the loss jump about; the best image is not the last one.
    options = dict(extractor=random_extractor, iterations=12, optimizer='adam',
                   learning_rate=60.0, **OPTIONS)
    last = stylize(*pair, **options)
    best = stylize(*pair, keep_best=True, **options)
    assert best.losses['total'] <= last.losses['total']
