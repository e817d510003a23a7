"""Measurements behind bin/benchmark: FLOPs, throughput, time to a loss, peak memory, and the
machine they were taken on. Its sections (tools/in_process.py, tools/child_processes.py) are
built from these.

Everything returns numbers; bin/benchmark prints them. No timing here is asserted anywhere.
"""

import dataclasses
import os
import platform
import re
import subprocess
import sys
import tempfile
import time

import numpy as np
import tensorflow as tf

from .. import vgg_layers
from ..config import StyleTransferConfig
from ..hardware import cpu_flags, cpu_name, onednn_enabled, vector_units
from ..images import sized
from ..inputs import scaled_inputs
from ..objective import build_objective, losses_at
from ..optimize import Optimization
from ..precision import Precision
from ..transfer import stylize


@dataclasses.dataclass(frozen=True)
class Machine:
    cpu: str
    vector_units: str  # the widest SIMD units the CPU has, '' when unknown
    device: str        # the GPUs' names, or 'CPU only, N cores'
    tensorflow: str
    onednn: bool
    python: str


def machine() -> Machine:
    """What this process measures on: every table is only comparable with one from the same."""
    gpus = tf.config.list_physical_devices('GPU')
    device = ', '.join(tf.config.experimental.get_device_details(g).get('device_name', g.name)
                       for g in gpus) or f'CPU only, {os.cpu_count()} cores'
    return Machine(cpu_name(), vector_units(cpu_flags()), device, tf.__version__,
                   onednn_enabled(), platform.python_version())


def content_shape(content, size: int):
    """(height, width) of `content` (H x W x ...) scaled to a long side of `size`."""
    return sized(content.shape[:2], size)


def iteration_flops(height: int, width: int, config: StyleTransferConfig) -> float:
    """Analytic FLOPs of one loss-and-gradient evaluation (multiply-add = 2 FLOPs).

    Forward convs up to the deepest layer the loss reads, the same again for the gradient with
    respect to their inputs (the weights are frozen, so no weight gradients), and the Gram
    matrices (forward and backward) of the style layers.
    """
    deepest = max(map(vgg_layers.depth, config.layers))
    conv = sum(2.0 * 9 * vgg_layers.input_channels(name) * vgg_layers.channels(name)
               * vgg_layers.positions(name, height, width)
               for name in vgg_layers.LAYERS[:deepest + 1] if '_conv' in name)
    # G = F^T F forward; its gradient needs one more product of the same size.
    gram = sum(2 * 2.0 * vgg_layers.positions(name, height, width) * vgg_layers.channels(name) ** 2
               for name in config.style_layers)
    return 2 * conv + gram


def conv_throughput(dtype=tf.float32, size: int = 128, channels: int = 256,
                    repeats: int = 10) -> float:
    """GFLOP/s of a VGG-shaped 3x3 conv2d (stride 1, same padding) on this machine."""
    x = tf.random.uniform([1, size, size, channels], dtype=tf.float32)
    k = tf.random.normal([3, 3, channels, channels], stddev=0.05)
    x, k = tf.cast(x, dtype), tf.cast(k, dtype)
    conv = tf.function(lambda: tf.nn.conv2d(x, k, 1, 'SAME'))
    conv().numpy()
    start = time.perf_counter()
    for _ in range(repeats):
        out = conv()
    out.numpy()
    seconds = (time.perf_counter() - start) / repeats
    return 2.0 * 9 * channels * channels * size * size / seconds / 1e9


def seconds_per_iteration(content, style, extractor, size: int, precision: str,
                          iterations: int = 5, should_stop=None) -> float:
    """Mean wall time of an L-BFGS iteration at `size`, after a warm-up run at that size;
    NaN when `should_stop` (stylize's) ended a run early."""
    options = dict(extractor=extractor, image_size=size, init='content', seed=0,
                   precision=precision, should_stop=should_stop)
    stopped = should_stop or (lambda: False)
    stylize(content, style, iterations=2, **options)  # traces and warms up
    if stopped():
        return float('nan')
    times = []

    def record(progress):
        times.append(time.perf_counter())

    stylize(content, style, iterations=iterations + 1, callback=record, report_every=1, **options)
    return float('nan') if stopped() else float(np.mean(np.diff(times)))


def seconds_per_evaluation(content, style, extractor, size: int, precision: str,
                           repeats: int = 3) -> float:
    """Mean wall time of one compiled loss-and-gradient evaluation at `size`, after a warm-up.

    An L-BFGS iteration costs one evaluation unless its line search backtracks, so this is the
    figure to compare with the conv throughput; seconds_per_iteration includes the optimizer.
    """
    config = StyleTransferConfig(image_size=size, precision=precision)
    network = Precision(extractor, precision).working
    inputs = scaled_inputs(config, content, [style])[-1]
    run = Optimization(build_objective(network, inputs, config), network, inputs.content, config)
    evaluate = tf.function(lambda: run.value_and_gradient(run.image.read_value()))
    tf.nest.map_structure(lambda t: t.numpy(), evaluate())
    start = time.perf_counter()
    for _ in range(repeats):
        losses, gradient = evaluate()
        gradient.numpy()
    return (time.perf_counter() - start) / repeats


def loss_trajectory(content, style, extractor, should_stop=None, **options):
    """[(seconds since the call, final-scale loss in float32)] of every final-scale iteration of
    a run, and its StylizeResult (`should_stop`: stylize's).

    A mixed-precision run's own losses are bfloat16 approximations (about 1% below the float32
    loss of the same image near the end), so its images are kept and their float32 losses
    computed after the run, outside the timing.
    """
    points, kept = [], []
    start = time.perf_counter()
    config = StyleTransferConfig(**options)
    last_scale = config.scales - 1
    precision = Precision(extractor, config.precision)
    mixed = not precision.is_exact

    def record(progress):
        if progress.scale == last_scale:
            points.append((time.perf_counter() - start, progress.losses['total']))
            if mixed:
                kept.append(progress.current_image())

    result = stylize(content, style, extractor=extractor, callback=record, report_every=1,
                     should_stop=should_stop, **options)
    points.append((time.perf_counter() - start, result.losses['total']))
    if mixed and not (should_stop and should_stop()):  # stopped: not worth converting
        exact = precision.exact
        inputs = scaled_inputs(config, content, [style])[-1]
        objective = build_objective(exact, inputs, config)
        # autograph=False, as wherever the network is traced: nothing here needs converting.
        loss = tf.function(
            lambda image: losses_at(objective, exact, image, config.layers)['total'],
            autograph=False)
        points[:-1] = [(seconds, float(loss(tf.constant(image[None]))))
                       for (seconds, _), image in zip(points, kept)]
    return points, result


def time_to_reach(points, target):
    """Seconds until the loss first reaches `target`, or None."""
    for seconds, loss in points:
        if loss <= target:
            return seconds
    return None


# Runs a script, or `-m module`, as __main__ and then writes its peak resident memory (VmHWM, KiB)
# to the file named in argv[1]. Not ru_maxrss: Linux keeps that across exec, so a child's would
# include the resident memory of the parent that forked it.
_PEAK_OF = """
import os, runpy, sys
report, sys.argv = sys.argv[1], sys.argv[2:]
try:
    if sys.argv[0] == '-m':
        sys.argv = sys.argv[1:]
        runpy.run_module(sys.argv[0], run_name='__main__', alter_sys=True)
    else:
        sys.path[0] = os.path.dirname(os.path.abspath(sys.argv[0]))  # as for a script
        runpy.run_path(sys.argv[0], run_name='__main__')
finally:
    with open('/proc/self/status') as status, open(report, 'w') as out:
        out.write(next(l for l in status if l.startswith('VmHWM:')).split()[1])
"""


def peak_memory_gib(argv) -> float:
    """Peak resident memory (GiB) of a child Python process running `argv` (a script and its
    arguments, or '-m', a module and its arguments; Linux)."""
    return peak_memory_run(argv)[0]


def peak_memory_run(argv):
    """(peak resident GiB, stdout) of a child Python process running `argv`, as
    peak_memory_gib."""
    with tempfile.TemporaryDirectory() as tmp:
        report = os.path.join(tmp, 'peak')
        done = subprocess.run([sys.executable, '-c', _PEAK_OF, report, *argv], check=True,
                              stdout=subprocess.PIPE, text=True)
        with open(report) as f:
            return int(f.read()) / 2 ** 20, done.stdout


def last_rate(stdout: str) -> float:
    """Iterations per second on stylize's last progress line (`... 1.92 s/it ...`; older versions
    printed `... 0.52 it/s ...` at one a second or more)."""
    rates = re.findall(r'([0-9.]+) (it/s|s/it)', stdout)
    if not rates:
        raise ValueError(f'no progress line in stylize\'s output: {stdout[-300:]!r}')
    value, unit = rates[-1]
    return float(value) if unit == 'it/s' else 1 / float(value)
