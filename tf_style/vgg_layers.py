"""VGG19 layer names, and the short names the paper and the peers use for them.

Kept free of TensorFlow so that flags can be checked before the (slow) TensorFlow import.
"""

from typing import Sequence

from .errors import ConfigError

_BLOCK_CONVS = (2, 2, 4, 4, 4)

# Keras' names, in network order (the ones `keras.applications.VGG19(include_top=False)` uses).
LAYERS = tuple(
    name
    for block, convs in enumerate(_BLOCK_CONVS, start=1)
    for name in [f'block{block}_conv{i}' for i in range(1, convs + 1)] + [f'block{block}_pool']
)

# The layer that reads the image.
FIRST_CONV = LAYERS[0]

# The paper's choice (section 2.3 and Fig. 2): content on conv4_2, style on conv1_1 ... conv5_1.
CONTENT_LAYERS = ('block4_conv2',)
STYLE_LAYERS = ('block1_conv1', 'block2_conv1', 'block3_conv1', 'block4_conv1', 'block5_conv1')


def _aliases():
    table = {}
    for name in LAYERS:
        block, kind = name[len('block'):].split('_')
        if kind == 'pool':
            table[f'pool{block}'] = name
        else:
            i = kind[len('conv'):]
            # Keras' convs include their ReLU, so conv4_2 and relu4_2 are the same tensor: the
            # paper's (Caffe) conv4_2 is also taken after its in-place ReLU.
            table[f'conv{block}_{i}'] = name
            table[f'relu{block}_{i}'] = name
    return table


_ALIASES = _aliases()


def canonical(name: str) -> str:
    """Keras' name of a VGG19 layer given as `block4_conv2`, `conv4_2` or `relu4_2`."""
    key = name.strip()
    if key in LAYERS:
        return key
    if key in _ALIASES:
        return _ALIASES[key]
    raise ConfigError(
        f'unknown VGG19 layer {name!r}: use a Keras name such as block4_conv2 '
        f'(or conv4_2 / relu4_2 / pool4); layers: {", ".join(LAYERS)}')


def depth(name: str) -> int:
    """Position of a layer in the network (0 = block1_conv1)."""
    return LAYERS.index(canonical(name))


_BLOCK_CHANNELS = (64, 128, 256, 512, 512)


def channels(name: str) -> int:
    """Feature maps a layer outputs."""
    return _BLOCK_CHANNELS[int(canonical(name)[len('block')]) - 1]


def input_channels(name: str) -> int:
    """Channels entering a conv layer: the previous conv's, or 3 (RGB) for the first."""
    previous = [n for n in LAYERS[:depth(name)] if '_conv' in n]
    return channels(previous[-1]) if previous else 3


def multiply_adds(name: str) -> float:
    """A layer's multiply-adds per input pixel of the network (3x3 convolutions; poolings: 0)."""
    if '_conv' not in canonical(name):
        return 0.0
    return 9 * input_channels(name) * channels(name) / 4 ** halvings(name)


def halvings(name: str) -> int:
    """2x2 poolings between the input and a layer's output."""
    name = canonical(name)
    return int(name[len('block')]) - (0 if name.endswith('_pool') else 1)


def positions(name: str, height: int, width: int) -> int:
    """Feature-map positions of a layer for an input of height x width (valid 2x2 pooling)."""
    n = halvings(name)
    return (height >> n) * (width >> n)


# ---- what a tile needs around it (tiling.py) ----

def receptive_radius(layer: str) -> int:
    """How many pixels beyond its own pixel block a feature of `layer` depends on, each side.

    A position of a layer with cumulative stride S (pixels per position) and radius R depends on
    pixels [jS - R, jS + S - 1 + R]. A 3x3 stride-1 convolution reads the neighbouring positions,
    so R grows by S; a 2x2 stride-2 pooling (average or max) reads two aligned positions, so R
    stays and S doubles. Pixels: S = 1, R = 0.
    """
    stride, radius = 1, 0
    for name in LAYERS[:depth(layer) + 1]:
        if name.endswith('_pool'):
            stride *= 2
        else:
            radius += stride
    return radius


def pooling_grid(layers: Sequence[str]) -> int:
    """Pixels per position of the deepest of `layers`: tiles start on multiples of it."""
    return 2 ** max(halvings(name) for name in layers)


def required_halo(layers: Sequence[str]) -> int:
    """Pixels of context a tile needs on each side for its owned features at `layers` to be
    exact: the deepest layer's receptive radius, rounded up to the pooling grid so that the
    halo's start keeps every pooling window where it is in the whole image."""
    grid = pooling_grid(layers)
    radius = max(receptive_radius(name) for name in layers)
    return -(-radius // grid) * grid


def margins(layers: Sequence[str]):
    """{layer: pixels of context its output must keep beyond a tile's interior} for every layer
    up to the deepest of `layers`: what the layers after it still read (the deepest layer's
    receptive radius less its own), rounded up to the pooling grid like the halo. It falls from
    `required_halo` at the input to 0 at the deepest layer, so a tile can drop the rest of its
    halo as it goes (tiling.py)."""
    grid = pooling_grid(layers)
    deepest = max(layers, key=depth)
    radius = receptive_radius(deepest)
    return {name: -(-(radius - receptive_radius(name)) // grid) * grid
            for name in LAYERS[:depth(deepest) + 1]}
