"""How much memory a run needs, checked before it starts (no TensorFlow needed).

The estimate counts what dominates: VGG19's activations up to the deepest layer the loss reads,
kept for the gradient, the image and its gradient, and the optimizer's state (L-BFGS: 2 x history
copies of the image). The constants are fitted to peak resident memory measured as the
benchmark's memory section does (docs/benchmarks.md), rounded so that the estimate errs high.
"""

import os

from . import precision, vgg_layers
from .config import StyleTransferConfig

# Peak resident memory the constants below were fitted to (long side; examples/tubingen, 4:3),
# kept so that a test can check that the estimate errs high on each.
MEASURED_GIB = {('float32', 512): 1.64, ('float32', 1024): 3.98, ('float32', 2048): 14.77,
                ('mixed', 1024): 3.87, ('mixed', 2048): 11.47}  # long side; examples/tubingen, 4:3
BASE_BYTES = 1.0 * 2 ** 30
ACTIVATION_COPIES = 3.5


def bytes_per_value(config: StyleTransferConfig) -> float:
    """Bytes an activation value costs at the peak, by precision and optimizer."""
    if precision.expected(config.precision) != 'mixed':
        return 4.0
    # Mixed precision saves less than half: the layers compute in bfloat16, but the losses read
    # float32 casts of the features and the gradient passes through float32 at their
    # boundaries. A mixed L-BFGS run goes on in float32 once bfloat16 stalls, and then peaks
    # about as high as a float32 run at 1024 px, lower at 2048 px (MEASURED_GIB).
    return 3.4 if config.optimizer == 'lbfgs' else 3.0


def activation_values(height: int, width: int, config: StyleTransferConfig) -> int:
    """Number of activation values of VGG19 up to the deepest layer the loss reads."""
    deepest = max(map(vgg_layers.depth, config.layers))
    return sum(vgg_layers.positions(name, height, width) * vgg_layers.channels(name)
               for name in vgg_layers.LAYERS[:deepest + 1])


def estimate_bytes(height: int, width: int, config: StyleTransferConfig) -> float:
    pixels = height * width * 3
    optimizer = (2 * config.lbfgs_history + 4 if config.optimizer == 'lbfgs' else 4) * pixels * 4
    return (BASE_BYTES + ACTIVATION_COPIES * activation_values(height, width, config)
            * bytes_per_value(config) + optimizer + 4 * pixels * 4)


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


def style_bytes(style_sizes) -> float:
    """What computing the style targets holds at once: the largest style image, resized, and its
    forward pass through VGG19 (no gradient), one after another."""
    return max((BASE_BYTES + 4 * (3 * h * w + sum(
        vgg_layers.positions(name, h, w) * vgg_layers.channels(name) for name in vgg_layers.LAYERS))
        for h, w in style_sizes), default=0.0)


def check_fits(height: int, width: int, config: StyleTransferConfig, style_sizes=()) -> None:
    """Refuses, before any work, a run of height x width whose optimisation, or whose style
    images at `style_sizes` ((height, width) each, as the network sees them), cannot fit in the
    memory available."""
    from .errors import TfStyleError
    have = available_bytes()
    need = estimate_bytes(height, width, config)
    if need > have:
        largest = largest_fitting_size(min(height, width) / max(height, width), config, have)
        raise TfStyleError(
            f'image_size={config.image_size} needs about {need / 2**30:.1f} GiB of memory; '
            f'{have / 2**30:.1f} GiB is available: use image_size={largest} or less '
            '(or check_memory=false)', option='image_size')
    need = style_bytes(style_sizes)
    if need > have:
        raise TfStyleError(
            f'a style image of {max(h * w for h, w in style_sizes) / 1e6:.0f} megapixels needs '
            f'about {need / 2**30:.1f} GiB of memory; {have / 2**30:.1f} GiB is available: use '
            'a smaller style_scale', option='style_scale')
