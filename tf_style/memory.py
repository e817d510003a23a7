"""How much memory a run needs, checked before it starts.

The estimate counts what dominates: VGG19's activations up to the deepest layer the loss reads,
kept for the gradient (float32, or half that for mixed precision), the image and its gradient,
and the optimizer's state (L-BFGS: 2 x history copies of the image). The constants come from
peak resident memory measured with bin/benchmark's memory section (see BUILD.md).
"""

import os

from . import vgg_layers
from .config import StyleTransferConfig

_BLOCK_CHANNELS = (64, 128, 256, 512, 512)
# Process baseline (TensorFlow, the network's 80 MB of weights, Python) and how many copies of
# the activations a forward-and-gradient pass holds at its peak (measured; see BUILD.md).
BASE_BYTES = 1.2 * 2 ** 30
ACTIVATION_COPIES = 3.0


def activation_values(height: int, width: int, config: StyleTransferConfig) -> int:
    """Number of activation values of VGG19 up to the deepest layer the loss reads."""
    deepest = max(map(vgg_layers.depth, config.layers))
    total = 0
    for name in vgg_layers.LAYERS[:deepest + 1]:
        block = int(name[len('block')])
        halvings = block if name.endswith('_pool') else block - 1
        total += (height >> halvings) * (width >> halvings) * _BLOCK_CHANNELS[block - 1]
    return total


def estimate_bytes(height: int, width: int, config: StyleTransferConfig) -> float:
    bytes_per_value = 2 if config.precision == 'mixed' else 4
    pixels = height * width * 3
    optimizer = (2 * config.lbfgs_history + 4 if config.optimizer == 'lbfgs' else 4) * pixels * 4
    return (BASE_BYTES + ACTIVATION_COPIES * activation_values(height, width, config)
            * bytes_per_value + optimizer + 4 * pixels * 4)


def available_bytes() -> float:
    """Memory this process may still use: MemAvailable on Linux, else physical memory."""
    try:
        with open('/proc/meminfo') as f:
            for line in f:
                if line.startswith('MemAvailable:'):
                    return float(line.split()[1]) * 1024
    except OSError:
        pass
    return float(os.sysconf('SC_PAGE_SIZE') * os.sysconf('SC_PHYS_PAGES'))


def largest_fitting_size(aspect: float, config: StyleTransferConfig, budget: float) -> int:
    """The largest long side (a multiple of 64) whose estimate fits `budget` bytes.

    `aspect` is short side / long side of the content image.
    """
    size = 64
    while estimate_bytes(round((size + 64) * aspect), size + 64, config) <= budget:
        size += 64
        if size > 65536:
            break
    return size
