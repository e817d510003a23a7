"""The plain scipy L-BFGS-B reference (tools/reference.py) and benchmark --sections=reference."""

import numpy as np
import pytest
import tensorflow as tf

import numerics
from conftest import example
from tf_style.config import StyleTransferConfig
from tf_style.inputs import scaled_inputs
from tf_style.objective import build_objective
from tf_style.optimize import Optimization
from tf_style.tools import reference

pytest.importorskip('scipy')

CONFIG = StyleTransferConfig(image_size=32, weights='random')


@pytest.fixture(scope='module')
def pair():
    return example('tubingen', 32), example('starry_night', 32)


@pytest.mark.kernels
def test_loss_and_gradient_are_ours(random_extractor, pair):
    inputs = scaled_inputs(CONFIG, pair[0], [pair[1]])[-1]
    image = 0.5 * inputs.content + np.random.default_rng(0).uniform(
        0, 127, inputs.content.shape).astype(np.float32)
    image = tf.constant(image[None])
    ours = Optimization(build_objective(random_extractor, inputs, CONFIG), random_extractor,
                        inputs.content, CONFIG)
    losses, gradient = tf.function(ours.value_and_gradient, autograph=False)(image)
    loss, reference_gradient = reference.loss_and_gradient(random_extractor, inputs, CONFIG)(image)
    numerics.FLOAT32_OBJECTIVE.check(float(loss), float(losses['total']))
    numerics.FLOAT32_OTHER_RUN.check(reference_gradient, gradient)


def test_scipy_lowers_the_loss_within_the_pixel_bounds(random_extractor, pair):
    run = reference.run_reference(*pair, random_extractor, CONFIG, max_evaluations=20)
    losses = [loss for _, loss in run.points]
    assert run.evaluations == len(run.points) <= 21  # scipy may finish its last line search
    assert min(losses) < 0.5 * losses[0]
    assert all(a <= b for (a, _), (b, _) in zip(run.points, run.points[1:]))
    # The random network pushes pixels past 0..255; the bounds hold them there.
    assert run.image.min() == 0.0 and run.image.max() == 255.0


def test_it_starts_from_the_content_image(random_extractor, pair):
    inputs = scaled_inputs(CONFIG, pair[0], [pair[1]])[-1]
    first, _ = reference.loss_and_gradient(random_extractor, inputs, CONFIG)(
        tf.constant(inputs.content[None]))
    run = reference.run_reference(*pair, random_extractor, CONFIG, target=np.inf)
    assert run.evaluations == 1 and run.stop_reason == 'reached the target'
    assert run.points[0][1] == pytest.approx(float(first), rel=1e-6)
    np.testing.assert_array_equal(run.image, inputs.content)
    run = reference.run_reference(*pair, random_extractor, CONFIG, max_seconds=0)
    assert run.evaluations == 1 and run.stop_reason == 'time limit'


def test_speedup_is_reference_time_to_our_loss_over_our_time():
    points = [(1.0, 10.0), (3.0, 5.0), (6.0, 4.0)]
    assert reference.speedup(points, 5.0, 1.5) == 2.0
    assert reference.speedup(points, 4.5, 2.0) == 3.0    # the first point at or below it
    assert reference.speedup(points, 3.9, 1.0) is None   # never reached


def test_final_loss_is_read_from_stylizes_last_line():
    out = ('iter 10/10  24x32  total 1.5e+05  3.1 it/s\n'
           'wrote o.png (32x24) in 3s, seed 0, loss 1.299e+05\n')
    assert reference.final_loss(out) == 1.299e5
    with pytest.raises(ValueError):
        reference.final_loss('wrote o.png\n')


@pytest.mark.slow
def test_the_reference_section_prints_a_table(random_extractor, monkeypatch, capsys):
    from absl import flags
    from tf_style import hardware
    from tf_style.cli import app, benchmark
    from tf_style.tools.child_processes import OUR_RUNS
    fv = flags.FlagValues()
    benchmark.define_flags(fv)
    fv(['benchmark', '--reference_sizes=32', '--reference_pairs=tubingen:starry_night',
        '--reference_iterations=2', '--reference_patience=3'])
    monkeypatch.setattr(app, 'say', lambda message, **kwargs: print(message, **kwargs))
    benchmark.reference(fv, random_extractor, 'random')
    out = capsys.readouterr().out
    assert hardware.cpu_name() in out and f'TensorFlow {tf.__version__}' in out
    assert '--iterations=2' in out
    rows = [line for line in out.splitlines() if line.lstrip().startswith('32  tubingen')]
    assert [name in row for name, row in zip(
        [name for name, _ in OUR_RUNS], rows)] == [True] * 3
    for row in rows:
        # Two iterations from anywhere are far from what scipy reaches in 3x their time, or
        # not: either a ratio or the limit it was not reached within.
        assert row.endswith('x') and ('not within' in row) == ('> ' in row)
    assert 'reference at 32 px, tubingen:starry_night:' in out
