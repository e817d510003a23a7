"""The settings of a style-transfer run: each option defined once, with its default and help.

`StyleTransferConfig` is what `tf_style.stylize(**options)` builds from its keyword arguments; the
command-line flags of the binaries are generated from its fields (tf_style/cli/options.py), and so
is docs/flags.md. The defaults are the paper's: VGG19 with average pooling, content on conv4_2,
style on conv1_1 ... conv5_1 with equal weights, alpha/beta = 1e-3, white-noise initialisation.
"""

import dataclasses
import math
from typing import Optional, Tuple, Union

from . import colour, masks, vgg_layers
from .errors import ConfigError

INITS = ('noise', 'content', 'style', 'content_in_style_colors', 'image')
POOLINGS = ('avg', 'max')
OPTIMIZERS = ('lbfgs', 'adam')
PRECISIONS = ('auto', 'float32', 'mixed')
# Step sizes when learning_rate is None: L-BFGS takes the quasi-Newton step whole; Adam moves
# pixels (0..255) by about this much per iteration.
DEFAULT_LEARNING_RATES = {'lbfgs': 1.0, 'adam': 10.0}


# What --help groups the flags under, most used first (tf_style/cli/options.py).
INPUTS, SIZE, WEIGHTS, START, OPTIMIZER, NETWORK, SPEED, PROGRESS, OTHER = TOPICS = (
    'Inputs and output', 'Size and iterations', 'Style and content weights', 'Start and colours',
    'Optimizer', 'Network', 'Speed and memory', 'Checkpoints and progress', 'Other')


def option(default, help: str, topic: str, **cli):
    """A config field: its default, its help (shown by --help and docs/flags.md), the topic
    --help lists it under, and how the flag parses it (`choices`; `kind`: 'layers', 'floats' or
    'ints' for lists)."""
    return dataclasses.field(default=default, metadata=dict(help=help, topic=topic, **cli))


@dataclasses.dataclass
class StyleTransferConfig:
    image_size: int = option(512, 'Long side of the output in pixels; the content image is '
                             'resized to it.', topic=SIZE)
    iterations: int = option(500, 'Optimisation steps (at the final scale).', topic=SIZE)
    init: str = option('noise', 'Start image: noise (white noise, the paper), content, style '
                       '(the first style image), content_in_style_colors (the content image in '
                       "the first style image's colour mean and covariance: the fastest start), "
                       'or image (init_image).', choices=INITS, topic=START)
    init_noise_blend: float = option(0.0, 'Fraction of white noise mixed into the start image '
                                     '(0: none; 1: noise alone).', topic=START)
    seed: Optional[int] = option(None, 'Random seed (default: random; the seed used is '
                                 'reported).', kind='int', topic=START)
    content_weight: float = option(1.0, 'alpha, the content loss weight.', topic=WEIGHTS)
    style_weight: float = option(1e3, 'beta, the style loss weight.', topic=WEIGHTS)
    tv_weight: float = option(0.0, 'Total-variation smoothness weight (not in the paper).',
                              topic=WEIGHTS)
    temporal_weight: float = option(0.0, 'Video: weight of the temporal loss against the '
                                    'previous frame warped by the optical flow (Ruder et al.).',
                                    topic=WEIGHTS)
    content_layers: Tuple[str, ...] = option(vgg_layers.CONTENT_LAYERS, 'Content layers '
                                             '(block4_conv2, conv4_2 or relu4_2).', kind='layers',
                                             topic=WEIGHTS)
    content_layer_weights: Optional[Tuple[float, ...]] = option(
        None, 'One weight per content layer (default: 1 each).', kind='floats', topic=WEIGHTS)
    style_layers: Tuple[str, ...] = option(vgg_layers.STYLE_LAYERS, 'Style layers (any VGG19 '
                                           'layer).', kind='layers', topic=WEIGHTS)
    style_layer_weights: Optional[Tuple[float, ...]] = option(
        None, 'One weight per style layer (default: 1/n each, as in the paper).', kind='floats',
        topic=WEIGHTS)
    style_scale: Union[float, Tuple[float, ...]] = option(
        1.0, "Style image's long side relative to the output's: one value, or one per style "
        'image.', kind='floats', topic=SIZE)
    style_blend_weights: Optional[Tuple[float, ...]] = option(
        None, 'Several style images: their weights in the target Gram matrices, normalised to '
        'sum to 1 (default: equal).', kind='floats', topic=WEIGHTS)
    preserve_colors: str = option('none', "Keep the content's colours: luminance (stylize "
                                  "luminance only) or histogram (match the style's colour mean "
                                  "and covariance to the content's first).", choices=colour.MODES,
                                  topic=START)
    optimizer: str = option('lbfgs', 'L-BFGS (the paper) or Adam (the TensorFlow tutorial).',
                            choices=OPTIMIZERS, topic=OPTIMIZER)
    learning_rate: Optional[float] = option(
        None, 'Step size (default: ' + ', '.join(
            f'{k} {v:g}' for k, v in DEFAULT_LEARNING_RATES.items()) +
        '; Adam: in pixel values 0..255).', kind='float', topic=OPTIMIZER)
    lbfgs_history: int = option(10, 'L-BFGS: curvature pairs kept.', topic=OPTIMIZER)
    adam_beta_1: float = option(0.9, 'Adam: beta_1.', topic=OPTIMIZER)
    adam_beta_2: float = option(0.999, 'Adam: beta_2.', topic=OPTIMIZER)
    adam_epsilon: float = option(1e-1, 'Adam: epsilon (in pixel values 0..255).', topic=OPTIMIZER)
    weights: str = option('imagenet', "VGG19 weights: 'imagenet' (Keras download, cached), a "
                          "weights file (.h5 / .weights.h5), or 'random' (tests only).",
                          topic=NETWORK)
    pooling: str = option('avg', 'Pooling in VGG19: avg (the paper) or max.', choices=POOLINGS,
                          topic=NETWORK)
    normalize_weights: bool = option(False, "The paper's weight normalization: every conv "
                                     "filter's mean activation made 1 over the content and style "
                                     'images (see docs/usage.md for the weights to use with it).',
                                     topic=NETWORK)
    scales: int = option(1, 'Coarse-to-fine: resolutions, each twice the previous, ending at '
                         'image_size; each starts from the previous one\'s result, upsampled.',
                         topic=SIZE)
    scale_iterations: Optional[Tuple[int, ...]] = option(
        None, 'Iterations per scale, coarsest first (default: iterations at the final scale and '
        'twice as many at each coarser one).', kind='ints', topic=SIZE)
    keep_best: bool = option(False, 'Return the lowest-loss image of the final scale, not the '
                             'last one (for Adam, whose loss is not monotone).', topic=OPTIMIZER)
    precision: str = option('auto', 'mixed: VGG19 in bfloat16, Grams and losses in float32, '
                            'L-BFGS finishing in float32; auto: mixed where bfloat16 is fast '
                            '(CPUs with AMX or AVX512_BF16, GPUs of compute capability 8.0+), '
                            'else float32 (mixed runs there too, no faster).',
                            choices=PRECISIONS, topic=SPEED)
    tile_size: Optional[int] = option(
        None, 'Images larger than memory: VGG19 runs on tiles of this side in pixels (rounded '
        'down to the pooling grid, 16 for the paper\'s layers), each with a halo wide enough '
        'that the loss and gradient are the untiled ones (docs/tiling.md); the image and the '
        "optimizer's state stay in host memory. 0: never tile; auto (the default): tile only "
        'when the untiled run would not fit the memory available, with the largest tile that '
        'fits.', kind='int_or_auto', topic=SPEED)

    def __post_init__(self):
        self.content_layers = _layer_tuple(self.content_layers, 'content_layers')
        self.style_layers = _layer_tuple(self.style_layers, 'style_layers')
        self.content_layer_weights = _weight_tuple(
            self.content_layer_weights, self.content_layers, 'content_layer_weights')
        self.style_layer_weights = _weight_tuple(
            self.style_layer_weights, self.style_layers, 'style_layer_weights')
        _check(isinstance(self.image_size, int) and self.image_size >= 16,
               f'image_size must be an integer of at least 16 pixels, got {self.image_size!r}',
               'image_size')
        _check(isinstance(self.iterations, int) and self.iterations >= 0,
               f'iterations must be a non-negative integer, got {self.iterations!r}',
               'iterations')
        for name, choices in (('init', INITS), ('pooling', POOLINGS),
                              ('optimizer', OPTIMIZERS), ('precision', PRECISIONS),
                              ('preserve_colors', colour.MODES)):
            value = getattr(self, name)
            _check(value in choices,
                   f'{name} must be one of {", ".join(choices)}, got {value!r}', name)
        _check(self.seed is None or (isinstance(self.seed, int) and self.seed >= 0),
               f'seed must be a non-negative integer, got {self.seed!r}', 'seed')
        for name in ('content_weight', 'style_weight', 'tv_weight', 'temporal_weight'):
            _check_non_negative(getattr(self, name), name)
        _check(_finite(self.step_size) and self.step_size > 0,
               f'learning_rate must be positive, got {self.step_size!r}', 'learning_rate')
        if not isinstance(self.style_scale, (int, float)):
            self.style_scale = _numbers(self.style_scale, 'style_scale')
        for value in _as_tuple(self.style_scale):
            _check(_finite(value) and value > 0, f'style_scale must be positive, got {value!r}',
                   'style_scale')
        if self.style_blend_weights is not None:
            self.style_blend_weights = _numbers(self.style_blend_weights, 'style_blend_weights')
            for value in self.style_blend_weights:
                _check_non_negative(value, 'style_blend_weights')
            _check(sum(self.style_blend_weights) > 0, 'style_blend_weights are all 0',
                   'style_blend_weights')
        _check(_finite(self.init_noise_blend) and 0 <= self.init_noise_blend <= 1,
               f'init_noise_blend must be between 0 and 1, got {self.init_noise_blend!r}',
               'init_noise_blend')
        _check(isinstance(self.lbfgs_history, int) and self.lbfgs_history >= 1,
               f'lbfgs_history must be a positive integer, got {self.lbfgs_history!r}',
               'lbfgs_history')
        _check(isinstance(self.scales, int) and 1 <= self.scales <= 8,
               f'scales must be an integer from 1 to 8, got {self.scales!r}', 'scales')
        if self.scale_iterations is not None:
            self.scale_iterations = tuple(self.scale_iterations)
            _check(len(self.scale_iterations) == self.scales,
                   f'scale_iterations has {len(self.scale_iterations)} values for '
                   f'{self.scales} scales', 'scale_iterations')
            _check(all(isinstance(n, int) and n >= 0 for n in self.scale_iterations),
                   f'scale_iterations must be non-negative integers, got '
                   f'{self.scale_iterations}', 'scale_iterations')
        _check(self.content_weight > 0 or self.style_weight > 0,
               'content_weight and style_weight are both 0: there is nothing to optimise',
               'style_weight')
        grid = vgg_layers.pooling_grid(self.layers)
        _check(self.tile_size is None or (isinstance(self.tile_size, int) and (
            self.tile_size == 0 or self.tile_size >= grid)),
            f'tile_size must be 0 (never tile) or at least {grid} pixels (the pooling grid of '
            f'{self.layers[-1]}), got {self.tile_size!r}', 'tile_size')

    @property
    def layers(self) -> Tuple[str, ...]:
        """Every layer the objective reads, in network order: a term weighted 0 reads none (a
        content reconstruction from conv1_2 runs block 1 alone)."""
        used = ((self.content_layers if self.content_weight else ()) +
                (self.style_layers if self.style_weight else ()))
        return tuple(sorted(set(used), key=vgg_layers.depth))

    @property
    def step_size(self) -> float:
        """learning_rate, or the optimizer's default when it is None."""
        if self.learning_rate is None:
            return DEFAULT_LEARNING_RATES[self.optimizer]
        return self.learning_rate

    def style_scales(self, count: int) -> Tuple[float, ...]:
        """style_scale for each of `count` style images."""
        scales = _as_tuple(self.style_scale)
        if len(scales) == 1:
            return scales * count
        _check(len(scales) == count,
               f'style_scale has {len(scales)} values for {count} style image(s)', 'style_scale')
        return scales

    def blend_weights(self, count: int) -> Tuple[float, ...]:
        """The normalised weight of each of `count` style images in the target Grams."""
        weights = self.style_blend_weights or (1.0,) * count
        _check(len(weights) == count,
               f'style_blend_weights has {len(weights)} values for {count} style image(s)',
               'style_blend_weights')
        return tuple(w / sum(weights) for w in weights)

    def schedule(self):
        """[(long side, iterations)] per scale, coarsest first; the last is the full size."""
        sides = [max(1, round(self.image_size / 2 ** k)) for k in range(self.scales)][::-1]
        iterations = self.scale_iterations or tuple(
            self.iterations * 2 ** k for k in range(self.scales))[::-1]
        return list(zip(sides, iterations))

    def replace(self, **changes) -> 'StyleTransferConfig':
        return dataclasses.replace(self, **changes)


def check_inputs(config: StyleTransferConfig, styles, content_masks=None, style_masks=None,
                 init_image=None, calibration_images=None) -> None:
    """Refuses, before any work, style images, masks and an init that `config` cannot use."""
    _check(len(styles) > 0, 'no style image', 'style')
    config.style_scales(len(styles))
    config.blend_weights(len(styles))
    if content_masks is not None:
        _check(config.style_blend_weights is None, 'style_blend_weights and content masks '
               'exclude each other: with masks each style image has its own region',
               'content_masks')
        masks.check_masks(content_masks, len(styles), 'content masks')
    if style_masks is not None:
        _check(content_masks is not None, 'style masks need content masks (where each style '
               'goes)', 'style_masks')
        masks.check_masks(style_masks, len(styles), 'style masks')
    _check(config.init != 'image' or init_image is not None, "init='image' needs an init_image",
           'init')
    _check(not calibration_images or config.normalize_weights,
           'calibration images are for normalize_weights, which is off', 'calibration_images')


def _check(ok, message, option=None):
    if not ok:
        raise ConfigError(message, option=option)


def _as_tuple(value):
    return tuple(value) if isinstance(value, (list, tuple)) else (value,)


def _finite(value):
    return isinstance(value, (int, float)) and math.isfinite(value)


def _check_non_negative(value, name):
    _check(_finite(value) and value >= 0, f'{name} must be a finite number >= 0, got {value!r}',
           name)


def _layer_tuple(layers, name):
    if isinstance(layers, str):
        layers = (layers,)
    layers = tuple(vgg_layers.canonical(layer) for layer in layers)
    _check(layers, f'{name} is empty: name at least one VGG19 layer', name)
    _check(len(set(layers)) == len(layers), f'{name} names a layer twice: {", ".join(layers)}',
           name)
    return layers


def _numbers(values, name) -> Tuple[float, ...]:
    """A tuple of floats from a sequence of numbers."""
    try:
        return tuple(float(v) for v in _as_tuple(values))
    except (TypeError, ValueError):
        raise ConfigError(f'{name} must be numbers, got {values!r}', option=name) from None


def _weight_tuple(weights, layers, name):
    if weights is None:
        return None
    weights = _numbers(weights, name)
    _check(len(weights) == len(layers),
           f'{name} has {len(weights)} values for {len(layers)} layers ({", ".join(layers)})',
           name)
    for w in weights:
        _check_non_negative(w, name)
    return weights
