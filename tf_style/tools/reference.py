"""The plain reference that our speed is measured against (issue 19).

What most peers write: the same VGG19 and the paper's loss, its value and gradient in one
`tf.function`, handed to `scipy.optimize.fmin_l_bfgs_b` (history 10, every pixel bounded to
0..255, float64 on scipy's side), starting from the content image. Its figure is process-
independent: the time the reference needs to reach our final loss divided by our wall time
(start-up included), so > 1 means ours is faster.

scipy is a dependency of the tooling only (the `bench` and `test` extras): imported here, lazily.
"""

import dataclasses
import os
import re
import subprocess
import sys
import time
from typing import Callable, List, Optional, Tuple

import numpy as np
import tensorflow as tf

from ..config import StyleTransferConfig
from ..inputs import Inputs, scaled_inputs
from ..objective import build_objective, losses_at
from .benchmark import time_to_reach

HISTORY = 10
PIXEL_BOUNDS = (0.0, 255.0)


@dataclasses.dataclass
class ReferenceRun:
    # (seconds since run_reference was called, loss) after every function evaluation.
    points: List[Tuple[float, float]]
    image: np.ndarray          # H x W x 3 float32, the lowest-loss image evaluated
    evaluations: int
    # 'reached the target', 'time limit', 'stopped on request', or scipy's own message
    stop_reason: str


def loss_and_gradient(extractor, inputs: Inputs, config: StyleTransferConfig) -> Callable:
    """The objective's total and its gradient at an image [1, H, W, 3], in one tf.function."""
    objective = build_objective(extractor, inputs, config)
    layers = config.layers

    def value_and_gradient(image):
        with tf.GradientTape() as tape:
            tape.watch(image)
            loss = losses_at(objective, extractor, image, layers)['total']
        return loss, tape.gradient(loss, image)

    # autograph=False, as wherever the network is traced: nothing here needs converting.
    return tf.function(value_and_gradient, autograph=False)


class _Stop(Exception):
    """Ends scipy's loop from inside the function it calls."""


def run_reference(content, style, extractor, config: StyleTransferConfig,
                  target: Optional[float] = None, max_seconds: Optional[float] = None,
                  max_evaluations: int = 15000, should_stop=None) -> ReferenceRun:
    """Runs the reference on `content` and `style` (H x W x 3, 0..255) at the final scale of
    `config` (its image_size and loss weights; its optimizer settings are not used) with the
    float32 `extractor`, until its loss reaches `target`, `max_seconds` have passed, scipy
    stops, or `should_stop()` says so (asked after every evaluation). The clock starts at the
    call: the objective's targets and the trace are timed."""
    from scipy.optimize import fmin_l_bfgs_b
    start = time.perf_counter()
    inputs = scaled_inputs(config, content, [style])[-1]
    evaluate = loss_and_gradient(extractor, inputs, config)
    shape = (1, *inputs.content.shape)
    points, best = [], {'loss': np.inf, 'image': inputs.content}

    def func(x):
        pixels = x.reshape(shape).astype(np.float32)
        loss, gradient = evaluate(tf.constant(pixels))
        loss = float(loss)
        points.append((time.perf_counter() - start, loss))
        if loss < best['loss']:
            best.update(loss=loss, image=pixels[0])
        if target is not None and loss <= target:
            raise _Stop('reached the target')
        if max_seconds is not None and points[-1][0] > max_seconds:
            raise _Stop('time limit')
        if should_stop is not None and should_stop():
            raise _Stop('stopped on request')
        return loss, gradient.numpy().astype(np.float64).ravel()

    x0 = inputs.content.astype(np.float64).ravel()
    try:
        _, _, info = fmin_l_bfgs_b(func, x0, m=HISTORY, bounds=[PIXEL_BOUNDS] * x0.size,
                                   maxfun=max_evaluations, maxiter=max_evaluations)
        reason = str(info['task'])
    except _Stop as stop:
        reason = str(stop)
    return ReferenceRun(points, best['image'], len(points), reason)


def speedup(reference_points, our_loss: float, our_seconds: float) -> Optional[float]:
    """Reference time to reach `our_loss` / our wall time: > 1 when ours is faster; None when
    the reference never reached it."""
    reached = time_to_reach(reference_points, our_loss)
    return None if reached is None else reached / our_seconds


def tf_style_env(env=None) -> dict:
    """`env` (default: this process's) for a child process that imports this tf_style."""
    package_root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    env = dict(os.environ if env is None else env)
    env['PYTHONPATH'] = os.pathsep.join(filter(None, [package_root, env.get('PYTHONPATH')]))
    return env


def our_run(argv, env=None) -> Tuple[float, float]:
    """(wall seconds, final loss) of `python -m tf_style stylize` with `argv`, as a user runs it:
    the clock is around the whole child process, start-up included. It runs this process's
    tf_style."""
    start = time.perf_counter()
    done = subprocess.run([sys.executable, '-m', 'tf_style', 'stylize', *argv],
                          capture_output=True, text=True, env=tf_style_env(env))
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        raise RuntimeError(f'tf_style stylize {" ".join(argv)} failed ({done.returncode}): '
                           f'{done.stderr.strip()[-2000:]}')
    return seconds, final_loss(done.stdout)


def final_loss(stdout: str) -> float:
    """The loss on stylize's last stdout line (`wrote ... loss X`)."""
    lines = stdout.strip().splitlines()
    match = re.search(r'\bloss (\S+)$', lines[-1]) if lines else None
    if not match:
        raise ValueError(f'no final loss in the last line of stylize\'s output: {stdout[-300:]!r}')
    return float(match.group(1))
