"""How much memory a run needs, checked before it starts (no TensorFlow needed), and the tile
size that makes it fit.

The estimate counts what dominates: VGG19's activations up to the deepest layer the loss reads,
kept for the gradient, the image and its gradient, and the optimizer's state (L-BFGS: 2 x history
copies of the image). The constants are fitted to peak resident memory measured as the
benchmark's memory section does (docs/notes/benchmark-record.md), rounded so that it errs high.

Tiled (tiling.py), the network holds one tile and its halo at a time, and what grows with the
image is what stays in host memory: the image, its gradient and the optimizer's state. On a GPU
the network's part is on the device, and must fit the device's free memory.
"""

import dataclasses
import functools
import os
import sys
from typing import Optional

from . import precision, vgg_layers
from .config import StyleTransferConfig

# Peak resident memory the constants below were fitted to (long side; examples/tubingen, 4:3),
# kept so that a test can check that the estimate errs high on each.
MEASURED_GIB = {('float32', 512): 1.64, ('float32', 1024): 3.98, ('float32', 2048): 14.77,
                ('mixed', 1024): 3.87, ('mixed', 2048): 11.47}  # long side; examples/tubingen, 4:3
# Tiled runs: (precision, long side, tile) -> the highest peak GiB measured
# (docs/notes/benchmark-record.md: "Large images"; mixed 4096: the README's print).
MEASURED_TILED_GIB = {('float32', 2048, 1024): 5.48, ('float32', 4096, 1664): 10.62,
                      ('mixed', 4096, 2048): 12.03}
BASE_BYTES = 1.0 * 2 ** 30
ACTIVATION_COPIES = 3.5
# Tiled, a crop's activations cost fewer copies than an untiled image's: the network only runs
# inside the compiled per-tile functions (untiled, the first L-BFGS evaluation runs eagerly),
# one pass at a time. Fitted to MEASURED_TILED_GIB (1.1 and 1.2 copies) with a margin; 3.5
# made `auto` choose tiles a quarter the area that fits (512 px at 8192 x 6144).
TILED_ACTIVATION_COPIES = 1.6
# What a tiled run holds beyond that, whatever the sizes. Identical runs at 2048 px in 1024 px
# tiles peaked anywhere from 4.7 to 5.5 GiB, where the model above says 5.1.
TILED_EXTRA_BYTES = 0.6 * 2 ** 30


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


def network_bytes(height: int, width: int, config: StyleTransferConfig,
                  copies: float = ACTIVATION_COPIES) -> float:
    """The process's base and VGG19's activations for one height x width input, forward and
    backward: what the device holds. `copies`: TILED_ACTIVATION_COPIES for a tile's crop."""
    return BASE_BYTES + copies * activation_values(height, width, config) * bytes_per_value(config)


def crop_network_bytes(height: int, width: int, tile: int, config: StyleTransferConfig) -> float:
    """`network_bytes` of the largest crop a run at height x width in tiles of `tile` has."""
    return network_bytes(crop_side(height, tile, config), crop_side(width, tile, config), config,
                         TILED_ACTIVATION_COPIES)


def state_bytes(height: int, width: int, config: StyleTransferConfig) -> float:
    """The image, its gradient and the optimizer's state, at height x width."""
    pixels = height * width * 3
    # L-BFGS: its history, and up to 9 more copies while it steps (measured by
    # tools/lbfgs_memory: 7-9 at 2048 to 8192 px).
    optimizer = (2 * config.lbfgs_history + 10 if config.optimizer == 'lbfgs' else 4) * pixels * 4
    return optimizer + 4 * pixels * 4


def estimate_bytes(height: int, width: int, config: StyleTransferConfig) -> float:
    """Peak memory of an untiled run at height x width."""
    return network_bytes(height, width, config) + state_bytes(height, width, config)


def tiled_host_bytes(height: int, width: int, config: StyleTransferConfig) -> float:
    """What a tiled run keeps in host memory whatever the tile: `state_bytes`, the copies of the
    image and its gradient that the tiled evaluation passes to and from the optimizer, and the
    content targets (features of the whole content image)."""
    targets = sum(vgg_layers.positions(name, height, width) * vgg_layers.channels(name)
                  for name in config.content_layers) if config.content_weight else 0
    return (state_bytes(height, width, config) + 3 * height * width * 3 * 4 + 4 * targets +
            TILED_EXTRA_BYTES)


def crop_side(side: int, tile: int, config: StyleTransferConfig) -> int:
    """The largest crop the network sees along an image side: a tile and its halo either side."""
    return min(side, tile + 2 * vgg_layers.required_halo(config.layers))


def tiled_estimate_bytes(height: int, width: int, tile: int,
                         config: StyleTransferConfig) -> float:
    """Peak memory of a run at height x width with tiles of `tile` pixels, all in one memory."""
    return crop_network_bytes(height, width, tile, config) + tiled_host_bytes(height, width,
                                                                              config)


@dataclasses.dataclass(frozen=True)
class Memory:
    """Bytes a run may still use: on the host, and on the GPU the network runs on (None: the
    network runs on the host)."""
    host: float
    gpu: Optional[float] = None


def available() -> Memory:
    return Memory(available_bytes(), gpu_available_bytes())


def fits(height: int, width: int, tile: int, config: StyleTransferConfig,
         memory: Memory) -> bool:
    """Whether a run at height x width fits `memory`, untiled (`tile` 0) or with `tile`."""
    if not tile:
        return estimate_bytes(height, width, config) <= (
            memory.host if memory.gpu is None else memory.gpu)
    network = crop_network_bytes(height, width, tile, config)
    host = tiled_host_bytes(height, width, config)
    if memory.gpu is None:
        return network + host <= memory.host
    # The image and the optimizer's state stay on the host (optimize.py); the process's base
    # is counted on both sides.
    return network <= memory.gpu and BASE_BYTES + host <= memory.host


def available_bytes(meminfo: str = '/proc/meminfo',
                    status: str = '/proc/self/status') -> float:
    """Memory this process may use in all, on Linux what it holds (VmRSS) and what is still
    available (MemAvailable); elsewhere physical memory. The estimates are of the whole
    process, so what it already holds (TensorFlow, the network, the images, when a scale plans
    its tiles) must not also be counted as taken."""
    available, held = _kib(meminfo, 'MemAvailable:'), _kib(status, 'VmRSS:')
    if available is None:
        return float(os.sysconf('SC_PAGE_SIZE') * os.sysconf('SC_PHYS_PAGES'))
    return (available + (held or 0)) * 1024.0


def _kib(path: str, field: str) -> Optional[float]:
    """A `field: N kB` line of a /proc file, in KiB (None when there is none)."""
    try:
        with open(path) as f:
            for line in f:
                if line.startswith(field):
                    return float(line.split()[1])
    except OSError:
        pass
    return None


def gpu_available_bytes() -> Optional[float]:
    """The free memory of the GPU TensorFlow runs on: the memory its allocator may use less
    what it holds. None without a GPU, and before TensorFlow is loaded (a command checks its
    inputs before loading it, against host memory)."""
    tf = sys.modules.get('tensorflow')
    if tf is None or not tf.config.list_physical_devices('GPU'):
        return None
    in_use = tf.config.experimental.get_memory_info('GPU:0')['current']
    return _gpu_total_bytes() - in_use


@functools.lru_cache(maxsize=None)
def _gpu_total_bytes() -> float:
    # No public API gives it: device_lib reports the allocator's limit (the device's memory less
    # what TensorFlow reserves, or the limit a virtual device configuration set).
    from tensorflow.python.client import device_lib
    return float(next(d.memory_limit for d in device_lib.list_local_devices()
                      if d.device_type == 'GPU'))


# Automatic tiles: the largest of these that fits, smaller ones only when a larger one does not
# (the halo's share of the work grows as tiles shrink: docs/tiling.md), and none above
# LARGEST_AUTO_TILE, which keeps a 4096 x 3072 print within 16 GiB: larger tiles are faster
# (tiling.relative_cost 1.16x in 3072 px tiles, 1.42x in 2048 px) but the estimate gives them
# 23.3 against 15.1 GiB (mixed); --tile_size asks for them.
TILE_STEP, SMALLEST_TILE, LARGEST_AUTO_TILE = 128, 128, 2048


def tile_candidates(height: int, width: int):
    """Tile sides that split a height x width image, largest first: multiples of TILE_STEP (so
    of every pooling grid) below its long side and up to LARGEST_AUTO_TILE, down to
    SMALLEST_TILE."""
    largest = min((max(height, width) - 1) // TILE_STEP * TILE_STEP, LARGEST_AUTO_TILE)
    return range(largest, SMALLEST_TILE - 1, -TILE_STEP)


def plan_tile(height: int, width: int, config: StyleTransferConfig,
              memory: Optional[Memory] = None) -> Optional[int]:
    """The tile side a run at height x width uses: 0 untiled, else the tile's side in pixels;
    None when it cannot fit `memory` (default: `available()`).

    config.tile_size when set (0 also when one tile covers the image: the same evaluation);
    when None (auto), untiled if that fits, else the largest of `tile_candidates` that fits.
    """
    memory = memory or available()
    if config.tile_size is not None:
        grid = vgg_layers.pooling_grid(config.layers)
        tile = config.tile_size // grid * grid
        tile = 0 if tile >= max(height, width) else tile
        return tile if fits(height, width, tile, config, memory) else None
    if fits(height, width, 0, config, memory):
        return 0
    return next((tile for tile in tile_candidates(height, width)
                 if fits(height, width, tile, config, memory)), None)


def largest_fitting_size(aspect: float, config: StyleTransferConfig, budget: float) -> int:
    """The largest long side (a multiple of 64) whose untiled estimate fits `budget` bytes.

    `aspect` is short side / long side of the content image.
    """
    return _largest_size(aspect, lambda h, w: estimate_bytes(h, w, config) <= budget)


def largest_size(aspect: float, config: StyleTransferConfig, memory: Memory) -> int:
    """The largest long side (a multiple of 64) that some plan (untiled or tiled, as
    config.tile_size allows) fits into `memory`."""
    return _largest_size(aspect, lambda h, w: _least_bytes(h, w, config, memory) is None)


def _largest_size(aspect: float, ok) -> int:
    """Binary search over long sides 64, 128, ... 65536 for the last one `ok(height, width)`
    accepts (64 when none: the caller reports it), `ok` being monotone in the size."""
    low, high = 1, 1024
    while low < high:
        middle = (low + high + 1) // 2
        side = 64 * middle
        if ok(round(side * aspect), side):
            low = middle
        else:
            high = middle - 1
    return 64 * low


def _least_bytes(height: int, width: int, config: StyleTransferConfig,
                 memory: Memory) -> Optional[float]:
    """None when a run at height x width fits `memory`, else the bytes its least demanding plan
    needs (all in one memory). The smallest automatic tile needs the least of all tiles: the
    host's part does not depend on the tile."""
    if config.tile_size is not None:
        if plan_tile(height, width, config, memory) is not None:
            return None
        tile = plan_tile(height, width, config, Memory(float('inf')))
        return (tiled_estimate_bytes(height, width, tile, config) if tile else
                estimate_bytes(height, width, config))
    plans = [0] + ([SMALLEST_TILE] if max(height, width) > SMALLEST_TILE else [])
    if any(fits(height, width, tile, config, memory) for tile in plans):
        return None
    return min(tiled_estimate_bytes(height, width, tile, config) if tile else
               estimate_bytes(height, width, config) for tile in plans)


# A refusal proposes a shorter L-BFGS history (each pair holds 2 copies of the image) down to
# FEWEST_PAIRS (the README example ends 1 % lower with 5 than with the default 10; much
# shorter ones slow L-BFGS down), when with it `auto` gets tiles of GOOD_TILE px or more
# (smaller ones spend most of their time on halos).
FEWEST_PAIRS, GOOD_TILE = 5, 1024


def _fitting_history(height: int, width: int, config: StyleTransferConfig,
                     memory: Memory) -> Optional[int]:
    """The longest L-BFGS history shorter than config's, and at least FEWEST_PAIRS, with which
    a run at height x width fits `memory` untiled or in tiles of GOOD_TILE px or more; None
    when there is none."""
    if config.optimizer != 'lbfgs':
        return None
    good = min(GOOD_TILE, max(height, width))
    for pairs in range(config.lbfgs_history - 1, FEWEST_PAIRS - 1, -1):
        tile = plan_tile(height, width, config.replace(lbfgs_history=pairs), memory)
        if tile is not None and (tile == 0 or tile >= good):
            return pairs
    return None


def style_bytes(style_sizes, crop=lambda height, width: (height, width)) -> float:
    """What computing the style targets holds at once: the largest style image, resized, and its
    forward pass through VGG19 (no gradient), one after another. `crop(height, width)`: the
    part of an image the network sees at once (tiled: a tile and its halo)."""
    def forward(height, width):
        return sum(vgg_layers.positions(name, height, width) * vgg_layers.channels(name)
                   for name in vgg_layers.LAYERS)
    return max((BASE_BYTES + 4 * (3 * h * w + forward(*crop(h, w))) for h, w in style_sizes),
               default=0.0)


def check_fits(height: int, width: int, config: StyleTransferConfig, style_sizes=()) -> None:
    """Refuses, before any work, a run of height x width that no tile size (or the one
    config.tile_size sets) fits into the memory available, or whose style images at
    `style_sizes` ((height, width) each, as the network sees them) cannot fit."""
    from .errors import TfStyleError
    memory = available()
    need = _least_bytes(height, width, config, memory)
    if need is not None:
        largest = largest_size(min(height, width) / max(height, width), config, memory)
        how = {None: 'even tiled', 0: 'untiled (tile_size=0)'}.get(
            config.tile_size, f'with tile_size={config.tile_size}')
        auto = config.tile_size is not None and _least_bytes(
            height, width, config.replace(tile_size=None), memory) is None
        history = _fitting_history(height, width, config, memory)
        raise TfStyleError(
            f'image_size={config.image_size} needs about {need / 2**30:.1f} GiB of memory {how}; '
            f'{_describe(memory)} available: use image_size={largest} or less'
            f'{", or leave tile_size unset (tiles that fit)" if auto else ""}'
            f'{f", or lbfgs_history={history}" if history else ""}', option='image_size',
            see=('check_memory',))
    # Tiled, the style targets are computed a tile (and its halo) at a time, too.
    tile = plan_tile(height, width, config, memory)
    need = style_bytes(style_sizes, lambda h, w: (
        (crop_side(h, tile, config), crop_side(w, tile, config)) if tile else (h, w)))
    have = memory.host if memory.gpu is None else memory.gpu
    if need > have:
        raise TfStyleError(
            f'a style image of {max(h * w for h, w in style_sizes) / 1e6:.0f} megapixels needs '
            f'about {need / 2**30:.1f} GiB of memory; {have / 2**30:.1f} GiB is available: use '
            'a smaller style_scale', option='style_scale', see=('check_memory',))


def out_of_memory(height: int, width: int, tile: int, config: StyleTransferConfig):
    """The error for a run at height x width (in tiles of `tile` px, 0: untiled) that ran out
    of memory all the same (the estimate is an estimate; a GPU's memory may be taken by other
    processes): what it tried, and the largest size that fits by the estimate."""
    from .errors import TfStyleError
    memory = available()
    largest = largest_size(min(height, width) / max(height, width), config, memory)
    if largest >= config.image_size:  # the estimate said it fits: a quarter smaller, then
        largest = max(16, config.image_size * 3 // 4)
    how = f'in tiles of {tile} px' if tile else 'untiled'
    return TfStyleError(
        f'out of memory at {width}x{height} px ({how}); {_describe(memory)} available: use '
        f'image_size={largest} or less'
        f'{", or a smaller tile_size" if tile else ""}', option='image_size')


def _describe(memory: Memory) -> str:
    if memory.gpu is None:
        return f'{memory.host / 2**30:.1f} GiB is'
    return (f'{memory.gpu / 2**30:.1f} GiB on the GPU and {memory.host / 2**30:.1f} GiB on the '
            'host are')
