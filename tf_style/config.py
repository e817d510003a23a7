"""The settings of a style-transfer run, with their defaults in one place.

`StyleTransferConfig` is what `tf_style.stylize(**options)` builds from its keyword arguments and
what `bin/stylize` builds from its flags (whose defaults are read from here). The defaults are the
paper's: VGG19 with average pooling, content on conv4_2, style on conv1_1 ... conv5_1 with equal
weights, alpha/beta = 1e-3, white-noise initialisation.
"""

import dataclasses
import math
from typing import Optional, Tuple, Union

from . import colour, masks, vgg_layers
from .errors import ConfigError

# 'image': the init_image given to stylize (bin/stylize: --init=FILE).
INITS = ('content', 'noise', 'style', 'content_in_style_colors', 'image')
POOLINGS = ('avg', 'max')
OPTIMIZERS = ('lbfgs', 'adam')
PRECISIONS = ('auto', 'float32', 'mixed')
# Step sizes when learning_rate is None: L-BFGS takes the quasi-Newton step whole; Adam moves
# pixels (0..255) by about this much per iteration.
DEFAULT_LEARNING_RATES = {'lbfgs': 1.0, 'adam': 10.0}


@dataclasses.dataclass
class StyleTransferConfig:
    # Long side of the output in pixels; the content image is resized to it.
    image_size: int = 512
    iterations: int = 500
    # Start image: white noise (the paper), the content image, the (first) style image, the
    # content image in the (first) style image's colours, or an image of the caller's.
    init: str = 'noise'
    # Fraction of white noise mixed into the start image (0: none; 1: noise alone).
    init_noise_blend: float = 0.0
    # None picks a seed at random; the seed used is reported in the result.
    seed: Optional[int] = None
    # alpha and beta of the paper's total loss alpha * L_content + beta * L_style.
    content_weight: float = 1.0
    style_weight: float = 1e3
    # Not in the paper: a squared total-variation smoothness term, off by default.
    tv_weight: float = 0.0
    content_layers: Tuple[str, ...] = vgg_layers.CONTENT_LAYERS
    # None: weight 1 for each content layer.
    content_layer_weights: Optional[Tuple[float, ...]] = None
    style_layers: Tuple[str, ...] = vgg_layers.STYLE_LAYERS
    # None: w_l = 1 / (number of style layers), as in the paper.
    style_layer_weights: Optional[Tuple[float, ...]] = None
    # The style image's long side is the content's long side times this; one value for every
    # style image or one per style image.
    style_scale: Union[float, Tuple[float, ...]] = 1.0
    # With several style images: their weights in the target Gram matrices (normalised to sum
    # to 1); None: equal.
    style_blend_weights: Optional[Tuple[float, ...]] = None
    # Keep the content's colours: 'luminance' (stylize luminance only) or 'histogram' (match the
    # style's colour statistics to the content's first); see colour.py.
    preserve_colors: str = 'none'
    # L-BFGS, as in the paper, or Adam (the TensorFlow tutorial's choice).
    optimizer: str = 'lbfgs'
    # None: DEFAULT_LEARNING_RATES[optimizer].
    learning_rate: Optional[float] = None
    lbfgs_history: int = 10
    adam_beta_1: float = 0.9
    adam_beta_2: float = 0.999
    adam_epsilon: float = 1e-1
    # VGG19 weights: 'imagenet' (Keras download, cached), a weights file, or 'random' (tests).
    weights: str = 'imagenet'
    # The paper replaces VGG19's max pooling by average pooling.
    pooling: str = 'avg'
    # The paper's weight normalization (normalize.py): every conv filter's mean activation made
    # 1 over the content and style images (and stylize's calibration_images). It changes the
    # balance of the loss terms: see README, "Fidelity", for the weights to use with it.
    normalize_weights: bool = False
    # Coarse-to-fine: the number of resolutions, each twice the previous, ending at image_size.
    scales: int = 1
    # Iterations at each scale, coarsest first; None: `iterations` at the final scale and twice
    # as many at each coarser one (they cost a quarter as much per iteration).
    scale_iterations: Optional[Tuple[int, ...]] = None
    # Return the lowest-loss image of the final scale rather than the last one (Adam's loss is
    # not monotone; L-BFGS's is).
    keep_best: bool = False
    # 'mixed' runs the network in bfloat16 (float16 on a GPU); Grams and losses stay float32, and
    # an L-BFGS run goes on in float32 once bfloat16's rounding stops its progress. 'auto': mixed
    # where that is measured to be faster (network.bfloat16_is_fast), else float32.
    precision: str = 'auto'

    def __post_init__(self):
        self.content_layers = _layer_tuple(self.content_layers, 'content_layers')
        self.style_layers = _layer_tuple(self.style_layers, 'style_layers')
        self.content_layer_weights = _weight_tuple(
            self.content_layer_weights, self.content_layers, 'content_layer_weights')
        self.style_layer_weights = _weight_tuple(
            self.style_layer_weights, self.style_layers, 'style_layer_weights')
        _check(isinstance(self.image_size, int) and self.image_size >= 16,
               f'image_size must be an integer of at least 16 pixels, got {self.image_size!r}')
        _check(isinstance(self.iterations, int) and self.iterations >= 0,
               f'iterations must be a non-negative integer, got {self.iterations!r}')
        _check(self.init in INITS, f'init must be one of {", ".join(INITS)}, got {self.init!r}')
        _check(self.pooling in POOLINGS,
               f'pooling must be one of {", ".join(POOLINGS)}, got {self.pooling!r}')
        _check(self.seed is None or (isinstance(self.seed, int) and self.seed >= 0),
               f'seed must be a non-negative integer, got {self.seed!r}')
        for name in ('content_weight', 'style_weight', 'tv_weight'):
            _check_non_negative(getattr(self, name), name)
        _check(self.optimizer in OPTIMIZERS,
               f'optimizer must be one of {", ".join(OPTIMIZERS)}, got {self.optimizer!r}')
        _check(self.precision in PRECISIONS,
               f'precision must be one of {", ".join(PRECISIONS)}, got {self.precision!r}')
        _check(_finite(self.step_size) and self.step_size > 0,
               f'learning_rate must be positive, got {self.step_size!r}')
        if not isinstance(self.style_scale, (int, float)):
            self.style_scale = _numbers(self.style_scale, 'style_scale')
        for value in _as_tuple(self.style_scale):
            _check(_finite(value) and value > 0, f'style_scale must be positive, got {value!r}')
        if self.style_blend_weights is not None:
            self.style_blend_weights = _numbers(self.style_blend_weights, 'style_blend_weights')
            for value in self.style_blend_weights:
                _check_non_negative(value, 'style_blend_weights')
            _check(sum(self.style_blend_weights) > 0, 'style_blend_weights are all 0')
        _check(self.preserve_colors in colour.MODES, 'preserve_colors must be one of '
               f'{", ".join(colour.MODES)}, got {self.preserve_colors!r}')
        _check(_finite(self.init_noise_blend) and 0 <= self.init_noise_blend <= 1,
               f'init_noise_blend must be between 0 and 1, got {self.init_noise_blend!r}')
        _check(isinstance(self.lbfgs_history, int) and self.lbfgs_history >= 1,
               f'lbfgs_history must be a positive integer, got {self.lbfgs_history!r}')
        _check(isinstance(self.scales, int) and 1 <= self.scales <= 8,
               f'scales must be an integer from 1 to 8, got {self.scales!r}')
        if self.scale_iterations is not None:
            if isinstance(self.scale_iterations, str):
                try:
                    self.scale_iterations = [int(n) for n in self.scale_iterations.split(',')]
                except ValueError:
                    raise ConfigError('scale_iterations must be comma-separated integers, got '
                                      f'{self.scale_iterations!r}') from None
            self.scale_iterations = tuple(self.scale_iterations)
            _check(len(self.scale_iterations) == self.scales,
                   f'scale_iterations has {len(self.scale_iterations)} values for '
                   f'{self.scales} scales')
            _check(all(isinstance(n, int) and n >= 0 for n in self.scale_iterations),
                   f'scale_iterations must be non-negative integers, got {self.scale_iterations}')
        _check(self.content_weight > 0 or self.style_weight > 0,
               'content_weight and style_weight are both 0: there is nothing to optimise')

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
               f'style_scale has {len(scales)} values for {count} style image(s)')
        return scales

    def blend_weights(self, count: int) -> Tuple[float, ...]:
        """The normalised weight of each of `count` style images in the target Grams."""
        weights = self.style_blend_weights or (1.0,) * count
        _check(len(weights) == count,
               f'style_blend_weights has {len(weights)} values for {count} style image(s)')
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
    _check(len(styles) > 0, 'no style image')
    config.style_scales(len(styles))
    config.blend_weights(len(styles))
    if content_masks is not None:
        _check(config.style_blend_weights is None, 'style_blend_weights and content masks '
               'exclude each other: with masks each style image has its own region')
        masks.check_masks(content_masks, len(styles), 'content masks')
    if style_masks is not None:
        _check(content_masks is not None, 'style masks need content masks (where each style goes)')
        masks.check_masks(style_masks, len(styles), 'style masks')
    _check(config.init != 'image' or init_image is not None, "init='image' needs an init_image")
    _check(not calibration_images or config.normalize_weights,
           'calibration images are for normalize_weights, which is off')


def _check(ok, message):
    if not ok:
        raise ConfigError(message)


def _as_tuple(value):
    return tuple(value) if isinstance(value, (list, tuple)) else (value,)


def _finite(value):
    return isinstance(value, (int, float)) and math.isfinite(value)


def _check_non_negative(value, name):
    _check(_finite(value) and value >= 0, f'{name} must be a finite number >= 0, got {value!r}')


def _layer_tuple(layers, name):
    if isinstance(layers, str):
        layers = layers.split(',')
    layers = tuple(vgg_layers.canonical(layer) for layer in layers if layer.strip())
    _check(layers, f'{name} is empty: name at least one VGG19 layer')
    _check(len(set(layers)) == len(layers), f'{name} names a layer twice: {", ".join(layers)}')
    return layers


def _numbers(values, name) -> Tuple[float, ...]:
    """A tuple of floats from a sequence or a comma-separated string."""
    if isinstance(values, str):
        values = [v for v in values.split(',') if v.strip()]
    try:
        return tuple(float(v) for v in values)
    except (TypeError, ValueError):
        raise ConfigError(f'{name} must be comma-separated numbers, got {values!r}') from None


def _weight_tuple(weights, layers, name):
    if weights is None:
        return None
    weights = _numbers(weights, name)
    _check(len(weights) == len(layers),
           f'{name} has {len(weights)} values for {len(layers)} layers ({", ".join(layers)})')
    for w in weights:
        _check_non_negative(w, name)
    return weights
