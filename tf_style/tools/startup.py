"""Where a stylize process's start-up goes: the parts timed in a fresh process, in the order a
run meets them.

  python -m tf_style.tools.startup --weights=FILE [--size=256]

Prints one line per part (seconds). Asserts nothing; the figures are for docs/notes.
"""

import argparse
import json
import os
import subprocess
import sys
import time

# The parts, in order; each is timed from the end of the previous one.
PARTS = ('interpreter and numpy, absl, PIL', 'import tensorflow (and find devices)',
         'import tf_style and keras', 'build VGG19 from the weights file',
         'precision: hardware capabilities', 'objective: content features, style Grams (eager)',
         'first step: the start point\'s evaluation (eager)', 'first step: tracing',
         'first step: its first compiled run', 'second step (a steady one)',
         'final float32 losses (eager)')
FIRST_STEP_END = PARTS.index('first step: its first compiled run') + 1


def _measure(weights: str, size: int) -> dict:
    """The parts in this process, which must not have imported TensorFlow yet."""
    clock = [time.perf_counter()]
    times = {}

    def done(part):
        now = time.perf_counter()
        times[part] = now - clock[0]
        clock[0] = now

    import numpy as np
    from absl import logging
    from PIL import Image  # noqa: F401  (what a run imports before TensorFlow)
    times[PARTS[0]] = _since_process_start()
    clock[0] = time.perf_counter()
    import tensorflow as tf
    tf.config.list_physical_devices()
    done(PARTS[1])
    from tf_style.config import StyleTransferConfig
    from tf_style.inputs import initial_image, scaled_inputs
    from tf_style.network import build_extractor
    from tf_style.objective import build_objective, evaluate
    from tf_style.optimize import Optimization
    from tf_style.precision import Precision
    logging.set_verbosity(logging.ERROR)
    done(PARTS[2])
    extractor = build_extractor(weights)
    done(PARTS[3])
    precision = Precision(extractor, 'auto')
    done(PARTS[4])
    rng = np.random.default_rng(0)
    content = rng.uniform(0, 255, (size * 3 // 4, size, 3)).astype(np.float32)
    style = rng.uniform(0, 255, (size, size, 3)).astype(np.float32)
    config = StyleTransferConfig(image_size=size, weights=weights, init='content')
    inputs = scaled_inputs(config, content, [style])[-1]
    objective = build_objective(precision.network, inputs, config)
    done(PARTS[5])
    start = initial_image('content', inputs.content, inputs.styles[0], 0)
    run = Optimization(objective, precision.network, start, config)
    run.optimizer.prime(run.value_and_gradient)
    done(PARTS[6])
    run._compiled_step.get_concrete_function(run.objective.tensors())
    done(PARTS[7])
    float(run.step()['total'])
    done(PARTS[8])
    float(run.step()['total'])
    done(PARTS[9])
    evaluate(precision.exact, inputs, run.current_image(), config,
             objective=objective if precision.is_exact else None)
    done(PARTS[10])
    return dict(times, precision=precision.name)


def _since_process_start() -> float:
    """Seconds since this process started (Linux: /proc)."""
    with open('/proc/self/stat') as f:
        started = int(f.read().rsplit(')', 1)[1].split()[19]) / os.sysconf('SC_CLK_TCK')
    with open('/proc/uptime') as f:
        return float(f.read().split()[0]) - started


def startup_parts(weights: str, size: int = 256) -> dict:
    """{part: seconds} of a fresh process (and 'precision': the one auto chose)."""
    done = subprocess.run([sys.executable, '-m', __name__, f'--weights={weights}',
                           f'--size={size}', '--json'], capture_output=True, text=True,
                          check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def main(argv):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--weights', required=True, help='VGG19 weights file')
    parser.add_argument('--size', type=int, default=256, help='long side of the images')
    parser.add_argument('--json', action='store_true', help='one JSON line')
    options = parser.parse_args(argv)
    times = _measure(options.weights, options.size)
    if options.json:
        print(json.dumps(times))
        return
    for part in PARTS:
        print(f'{times[part]:7.2f} s  {part}')
    print(f'{sum(times[p] for p in PARTS[:FIRST_STEP_END]):7.2f} s  to the end of the first step '
          f'(precision {times["precision"]})')


if __name__ == '__main__':
    os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')
    main(sys.argv[1:])
