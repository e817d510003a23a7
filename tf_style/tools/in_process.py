"""The sections of bin/benchmark timed in this process: speed, time to quality, the GPU check.

Each takes plain arguments and returns its table's rows as numbers; the command formats and
prints them. `should_stop()` is asked between measurements (and passed on to stylize): once
it says so a section returns early, and the command prints none of what it returned.
"""

import dataclasses
import time
from typing import Callable, List, Optional, Sequence, Tuple

import tensorflow as tf
from absl import logging

from ..config import StyleTransferConfig
from ..transfer import stylize
from .benchmark import (content_shape, conv_throughput, iteration_flops, loss_trajectory,
                        seconds_per_evaluation, seconds_per_iteration, time_to_reach)


def _never() -> bool:
    return False


@dataclasses.dataclass
class SpeedRow:
    width: int
    height: int
    precision: str
    iteration: float   # s per L-BFGS iteration, its line search included
    evaluation: float  # s per compiled loss-and-gradient evaluation
    gflops: float      # analytic GFLOP per evaluation
    conv: float        # GFLOP/s of a VGG-shaped conv2d in the row's precision
    vs_float32: Optional[float] = None  # iteration / the float32 row's of this size, if before

    @property
    def gflops_per_second(self) -> float:
        return self.gflops / self.evaluation

    @property
    def of_conv(self) -> float:
        return self.gflops_per_second / self.conv


def speed(content, style, extractor, sizes: Sequence[int], precisions: Sequence[str],
          steps: int, should_stop: Callable[[], bool] = _never) -> List[SpeedRow]:
    """A row per size and precision: `steps` timed iterations after a warm-up, then evaluations
    and their conv reference."""
    rows = []
    for size in sizes:
        float32 = None
        for precision in precisions:
            if should_stop():
                return rows
            row = _speed_row(content, style, extractor, size, precision, steps, should_stop)
            if row is None:  # stopped during its timed iterations
                return rows
            float32 = row.iteration if precision == 'float32' else float32
            row.vs_float32 = None if float32 is None else row.iteration / float32
            rows.append(row)
    return rows


def _speed_row(content, style, extractor, size, precision, steps, should_stop):
    logging.info('benchmark speed: %d px, %s', size, precision)
    iteration = seconds_per_iteration(content, style, extractor, size, precision, steps,
                                      should_stop)
    if should_stop():
        return None
    # The conv reference right before the evaluations it is compared with: this kind of shared
    # machine's throughput drifts by up to 2x within an hour.
    conv = conv_throughput(tf.float32 if precision == 'float32' else tf.bfloat16)
    evaluation = seconds_per_evaluation(content, style, extractor, size, precision, steps)
    h, w = content_shape(content, size)
    return SpeedRow(w, h, precision, iteration, evaluation,
                    iteration_flops(h, w, StyleTransferConfig()) / 1e9, conv)


# The TensorFlow tutorial's Adam (lr 0.02, beta_1 0.99, epsilon 0.1 on a [0, 1] image), moved to
# our 0..255 pixels: the same updates need lr x 255 and epsilon / 255.
TUTORIAL_ADAM = dict(optimizer='adam', learning_rate=0.02 * 255, adam_beta_1=0.99,
                     adam_epsilon=0.1 / 255, adam_beta_2=0.999)


def quality_runs(n: int, precisions: Sequence[str]) -> List[Tuple[str, dict]]:
    """(name, stylize options) of the quality table's rows for `n` baseline steps: the two
    baselines, always (their final losses are the targets A and B), then those of our
    configurations in one of `precisions` (a multi-scale run's `n` iterations shared out
    between its scales)."""
    baselines = [(f'tutorial Adam, {n} steps', dict(TUTORIAL_ADAM, iterations=n)),
                 (f'L-BFGS, {n} iterations', dict(iterations=n))]
    ours = [
        ('Adam (ours: lr 10, eps 0.1)', dict(optimizer='adam', iterations=n)),
        ('L-BFGS, content in style colours', dict(init='content_in_style_colors',
                                                  iterations=n)),
        ('L-BFGS, 2 scales', dict(scales=2, iterations=n // 2)),
        ('L-BFGS, 3 scales', dict(scales=3, iterations=n // 3)),
        ('L-BFGS, mixed precision', dict(precision='mixed', iterations=n)),
        ('L-BFGS, mixed, content in style colours', dict(precision='mixed', iterations=n,
                                                         init='content_in_style_colors')),
        ('L-BFGS, 3 scales, mixed', dict(scales=3, iterations=n // 3, precision='mixed')),
    ]
    return baselines + [(name, options) for name, options in ours
                        if options.get('precision', 'float32') in precisions]


@dataclasses.dataclass
class QualityRow:
    name: str
    final_loss: float
    seconds: float               # the whole run, tracing included
    to_a: Optional[float]        # s until the loss reached target A; None: never
    of_tutorial: Optional[float]  # to_a / the tutorial Adam run's seconds
    to_b: Optional[float]        # the same for target B and the L-BFGS baseline
    of_lbfgs: Optional[float]


@dataclasses.dataclass
class Quality:
    target_a: float  # final loss of the tutorial Adam baseline
    target_b: float  # final loss of the single-scale float32 L-BFGS baseline
    rows: List[QualityRow]


def quality(content, style, extractor, size: int, steps: int, precisions: Sequence[str],
            should_stop: Callable[[], bool] = _never) -> Optional[Quality]:
    """Time to the losses of `steps` tutorial-Adam steps (A) and `steps` L-BFGS iterations (B)
    at `size`, content init and float32 unless a row says otherwise (its rows in a precision
    not in `precisions` are left out); None once stopped."""
    common = dict(image_size=size, init='content', seed=0, precision='float32',
                  should_stop=should_stop)
    runs = []
    for name, options in quality_runs(steps, precisions):
        if should_stop():
            return None
        logging.info('benchmark quality: %s', name)
        runs.append((name, loss_trajectory(content, style, extractor,
                                           **{**common, **options})[0]))
    if should_stop():  # the last run was cut short
        return None
    (_, tutorial), (_, lbfgs) = runs[:2]
    return Quality(tutorial[-1][1], lbfgs[-1][1],
                   [_quality_row(name, points, tutorial, lbfgs) for name, points in runs])


def _quality_row(name, points, tutorial, lbfgs) -> QualityRow:
    (t_a, target_a), (t_b, target_b) = tutorial[-1], lbfgs[-1]
    to_a, to_b = time_to_reach(points, target_a), time_to_reach(points, target_b)
    return QualityRow(name, points[-1][1], points[-1][0], to_a, _over(to_a, t_a), to_b,
                      _over(to_b, t_b))


def _over(seconds: Optional[float], baseline: float) -> Optional[float]:
    return None if seconds is None else seconds / baseline


@dataclasses.dataclass
class GpuRun:
    size: int
    iterations: int
    wall: float  # s of the whole stylize call, after a warm-up run
    loop: float  # s of its optimisation loop (StylizeResult.seconds)
    loss: float


def gpu(content, style, extractor, should_stop: Callable[[], bool] = _never,
        size: int = 512, iterations: int = 500) -> Optional[GpuRun]:
    """The GPU check: `iterations` L-BFGS iterations at `size` after a warm-up; None once
    stopped."""
    options = dict(extractor=extractor, image_size=size, init='content', seed=0,
                   should_stop=should_stop)
    stylize(content, style, iterations=5, **options)  # warm-up: tracing, cuDNN autotuning
    if should_stop():
        return None
    start = time.perf_counter()
    result = stylize(content, style, iterations=iterations, **options)
    if should_stop():
        return None
    return GpuRun(size, iterations, time.perf_counter() - start, result.seconds,
                  result.losses['total'])
