"""Peak memory of L-BFGS's own state and steps at a poster's size, without the network.

  python -m tf_style.tools.lbfgs_memory --size=8192 [--history=10] [--iterations=14]

Steps L-BFGS on an ill-conditioned quadratic over an image-sized variable (4:3, the long side
`--size`), past a full history, in a fresh process, and prints its resident memory before the
first step and at the peak, in GiB and in copies of the image. What a tiled run adds is one
tile's network (docs/notes/benchmark-record.md). Asserts nothing.
"""

import argparse
import json
import resource
import subprocess
import sys

GIB = 2 ** 30


def _measure(height: int, width: int, history: int, iterations: int) -> dict:
    """In this process, which must not have stepped an L-BFGS yet."""
    import numpy as np
    import tensorflow as tf
    from tf_style.lbfgs import LBFGS

    rng = np.random.default_rng(0)
    shape = (1, height, width, 3)
    target = tf.constant(rng.uniform(0, 255, shape).astype(np.float32))
    curvature = tf.constant(rng.uniform(1, 100, shape).astype(np.float32))
    image = tf.Variable(tf.fill(shape, 128.0))
    optimizer = LBFGS(image, history=history)

    def value_and_gradient(x):
        residual = x - target
        return {'total': tf.reduce_sum(curvature * residual * residual)}, 2 * curvature * residual

    step = tf.function(lambda: optimizer.step(value_and_gradient)[0], autograph=False)
    before = _peak_bytes()
    for _ in range(iterations):
        loss = float(step()['total'])
    return dict(before=before, peak=_peak_bytes(), pairs=int(optimizer.pairs), loss=loss,
                image_bytes=4 * height * width * 3)


def _peak_bytes() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def lbfgs_memory(size: int, history: int = 10, iterations: int = 14) -> dict:
    """The figures of a fresh process at `size` (long side, 4:3)."""
    out = subprocess.run(
        [sys.executable, '-m', 'tf_style.tools.lbfgs_memory', f'--size={size}',
         f'--history={history}', f'--iterations={iterations}', '--json'],
        check=True, capture_output=True, text=True).stdout
    return json.loads(out.splitlines()[-1])


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--size', type=int, default=2048)
    parser.add_argument('--history', type=int, default=10)
    parser.add_argument('--iterations', type=int, default=14)
    parser.add_argument('--json', action='store_true', help='one JSON line (for lbfgs_memory)')
    args = parser.parse_args(argv)
    figures = _measure(args.size * 3 // 4, args.size, args.history, args.iterations)
    if args.json:
        print(json.dumps(figures))
        return
    copies = lambda n: n / figures['image_bytes']
    print(f'{args.size} x {args.size * 3 // 4}, history {args.history}, {args.iterations} '
          f'iterations ({figures["pairs"]} pairs held): before the first step '
          f'{figures["before"] / GIB:.2f} GiB, peak {figures["peak"] / GIB:.2f} GiB; the steps '
          f'added {copies(figures["peak"] - figures["before"]):.1f} copies of the image')


if __name__ == '__main__':
    main()
