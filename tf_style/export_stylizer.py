"""Export stylization itself as a SavedModel: the whole optimisation runs in its graph.

Serving it needs TensorFlow alone (any loader that runs functions: `tf.saved_model.load`, the
session-based one of `saved_model_cli` and TensorFlow Serving), and a GPU server runs all of it
on the GPU. Its signatures:

  serving_default    content (float32 [H, W, 3], RGB 0..255) and style (float32 [h, w, 3])
                     -> image (uint8 [H, W, 3]), loss (float32, the paper's total at image)
  with_settings      the same inputs, plus iterations (int32), content_weight and
                     style_weight (float32 scalars)

A SavedModel signature has no optional inputs (the TF2 loader's signature functions require
every input, and a signature input is a placeholder without a default), so the defaults are a
second signature: `serving_default` runs `with_settings` with the values given at export. With
`style=` at export the style's target Gram matrices are computed once and stored, and neither
signature takes `style`.

The run is `stylize`'s with init='content' at one scale: the paper's objective (losses.py) on
the network's convolutions (plain_vgg.PlainVGG19, each weight once), optimised by L-BFGS or Adam
as loop_optimizers.py writes them for images whose size is known only when served. The style
image is first resized (Lanczos) so its long side is the content's times `style_scale`, as
stylize does (its resizing is PIL's, so results agree exactly when the style has that size).
"""

from typing import Optional, Sequence

import numpy as np
import tensorflow as tf

from . import images, loop_optimizers, vgg_layers
from .config import StyleTransferConfig
from .errors import ConfigError
from .export import save_module
from .losses import StyleObjective, position_mean_gram
from .plain_vgg import PlainVGG19

_DEFAULTS = StyleTransferConfig()
_CONTENT = tf.TensorSpec([None, None, 3], tf.float32, name='content')
_STYLE = tf.TensorSpec([None, None, 3], tf.float32, name='style')
_SETTINGS = [tf.TensorSpec([], tf.int32, name='iterations'),
             tf.TensorSpec([], tf.float32, name='content_weight'),
             tf.TensorSpec([], tf.float32, name='style_weight')]


def export_stylizer(output_dir: str, extractor, style: Optional[np.ndarray] = None, *,
                    iterations: int = _DEFAULTS.iterations,
                    content_weight: float = _DEFAULTS.content_weight,
                    style_weight: float = _DEFAULTS.style_weight,
                    tv_weight: float = _DEFAULTS.tv_weight,
                    content_layers: Sequence[str] = _DEFAULTS.content_layers,
                    style_layers: Sequence[str] = _DEFAULTS.style_layers,
                    content_layer_weights: Optional[Sequence[float]] = None,
                    style_layer_weights: Optional[Sequence[float]] = None,
                    optimizer: str = _DEFAULTS.optimizer,
                    learning_rate: Optional[float] = None,
                    lbfgs_history: int = _DEFAULTS.lbfgs_history,
                    style_scale: Optional[float] = 1.0,
                    style_size: Optional[int] = None,
                    overwrite: bool = False) -> str:
    """Writes a SavedModel in `output_dir` that stylizes with `extractor`'s network (see the
    module's docstring for its signatures); returns the directory.

    The settings are `StyleTransferConfig`'s (iterations, content_weight and style_weight being
    the served defaults). `style` (H x W x 3, 0..255): the fixed style, first resized to a long
    side of `style_size` if given. `style_scale`: the style's long side over the content's for a
    style given when served; None: as given. Written atomically; an existing non-empty directory
    is replaced only with `overwrite`.
    """
    config = StyleTransferConfig(
        iterations=iterations, content_weight=content_weight, style_weight=style_weight,
        tv_weight=tv_weight, content_layers=content_layers, style_layers=style_layers,
        content_layer_weights=content_layer_weights, style_layer_weights=style_layer_weights,
        optimizer=optimizer, learning_rate=learning_rate, lbfgs_history=lbfgs_history)
    if style_scale is not None and not (isinstance(style_scale, (int, float))
                                        and 0 < style_scale < float('inf')):
        raise ConfigError(f'style_scale must be a positive number or None, got {style_scale!r}')
    layers = tuple(sorted(set(config.content_layers + config.style_layers),
                          key=vgg_layers.depth))
    vgg = PlainVGG19.of(extractor, layers)
    targets = None
    if style is not None:
        style = np.asarray(style, np.float32)
        if style.ndim != 3 or style.shape[-1] != 3:
            raise ConfigError(f'style must be an H x W x 3 image, got shape {style.shape}')
        if style_size is not None:
            style = images.resize_long_side(style, style_size)
        _check_size(style.shape[:2], config.style_layers, 'style')
        features = vgg(style[None], config.style_layers)
        targets = {name: position_mean_gram(features[name]) for name in config.style_layers}
    elif style_size is not None:
        raise ConfigError('style_size is for a fixed style: pass style= too')
    module = (_StyleInput(vgg, config, style_scale) if targets is None
              else _FixedStyle(vgg, config, targets))
    return save_module(module, output_dir, {'serving_default': module.serve,
                                            'with_settings': module.with_settings}, overwrite)


def _check_size(size, layers, what):
    need = 2 ** max(map(vgg_layers.halvings, layers))
    if min(size) < need:
        raise ConfigError(f'the {what} image is {size[1]}x{size[0]}; layer '
                          f'{max(layers, key=vgg_layers.depth)} needs a short side of at least '
                          f'{need} px')


class _Stylizer(tf.Module):
    """The optimisation, for the two variants below (which add the signatures)."""

    def __init__(self, vgg: PlainVGG19, config: StyleTransferConfig):
        super().__init__(name='tf_style_stylizer')
        self.vgg = vgg
        self._config = config

    def _defaults(self):
        return (tf.constant(self._config.iterations, tf.int32),
                tf.constant(self._config.content_weight, tf.float32),
                tf.constant(self._config.style_weight, tf.float32))

    def _stylize(self, content, style_targets, iterations, content_weight, style_weight):
        """The optimisation from the content image: {'image': uint8, 'loss': float32}."""
        config = self._config
        content = _assert_size(content, config.content_layers + config.style_layers, 'content')
        shape = tf.shape(content)
        content_features = self.vgg(content[None], config.content_layers)
        # Unit weights: the served ones multiply the terms below.
        objective = StyleObjective(
            content_features, style_targets, content_weight=1.0, style_weight=1.0,
            tv_weight=config.tv_weight, content_layer_weights=config.content_layer_weights,
            style_layer_weights=config.style_layer_weights)
        layers = objective.layers
        # FrozenConv2D's input gradient, its kernels rearranged once per call, outside the loops.
        rotated = self.vgg.rotated_kernels()

        def losses_at(x):
            image = tf.reshape(x, [1, shape[0], shape[1], 3])
            terms = objective(self.vgg(image, layers, rotated), image)
            total = (content_weight * terms['content'] + style_weight * terms['style'] +
                     config.tv_weight * terms['tv'])
            return {**terms, 'total': total}

        def value_and_gradient(x):
            with tf.GradientTape() as tape:
                tape.watch(x)
                losses = losses_at(x)
            return losses, tape.gradient(losses['total'], x)

        x0 = tf.reshape(content, [-1])
        if config.optimizer == 'lbfgs':
            x, losses = loop_optimizers.lbfgs(value_and_gradient, x0, iterations,
                                              history=config.lbfgs_history,
                                              learning_rate=config.step_size)
        else:
            x = loop_optimizers.adam(value_and_gradient, x0, iterations,
                                     learning_rate=config.step_size, beta_1=config.adam_beta_1,
                                     beta_2=config.adam_beta_2, epsilon=config.adam_epsilon)
            losses = losses_at(x)
        image = tf.reshape(x, shape)
        return {'image': tf.cast(tf.round(tf.clip_by_value(image, 0.0, 255.0)), tf.uint8),
                'loss': losses['total']}


class _StyleInput(_Stylizer):
    """Takes the style image when served."""

    def __init__(self, vgg, config, style_scale: Optional[float] = 1.0):
        super().__init__(vgg, config)
        self._style_scale = style_scale

    @tf.function(input_signature=[_CONTENT, _STYLE])
    def serve(self, content, style):
        return self.with_settings(content, style, *self._defaults())

    @tf.function(input_signature=[_CONTENT, _STYLE] + _SETTINGS)
    def with_settings(self, content, style, iterations, content_weight, style_weight):
        style = self._resized_style(style, tf.shape(content))
        style = _assert_size(style, self._config.style_layers, 'style')
        features = self.vgg(style[None], self._config.style_layers)
        targets = {name: position_mean_gram(features[name])
                   for name in self._config.style_layers}
        return self._stylize(content, targets, iterations, content_weight, style_weight)

    def _resized_style(self, style, content_shape):
        if self._style_scale is None:
            return style
        shape = tf.shape(style)
        scale = (tf.cast(tf.reduce_max(content_shape[:2]), tf.float32) * self._style_scale /
                 tf.cast(tf.reduce_max(shape[:2]), tf.float32))
        size = tf.maximum(1, tf.cast(tf.round(tf.cast(shape[:2], tf.float32) * scale), tf.int32))
        return tf.cond(
            tf.reduce_all(tf.equal(size, shape[:2])), lambda: style,
            lambda: tf.clip_by_value(tf.image.resize(style, size, 'lanczos3', antialias=True),
                                     0.0, 255.0))


class _FixedStyle(_Stylizer):
    """Holds one style's targets, computed at export."""

    def __init__(self, vgg, config, targets):
        super().__init__(vgg, config)
        # The target Grams (A / M, [1, C, C]), saved with the weights.
        self.style_targets = {name: tf.Variable(value, trainable=False, name=name + '_target')
                              for name, value in targets.items()}

    @tf.function(input_signature=[_CONTENT])
    def serve(self, content):
        return self.with_settings(content, *self._defaults())

    @tf.function(input_signature=[_CONTENT] + _SETTINGS)
    def with_settings(self, content, iterations, content_weight, style_weight):
        targets = {name: v.read_value() for name, v in self.style_targets.items()}
        return self._stylize(content, targets, iterations, content_weight, style_weight)


def _assert_size(image, layers, what):
    """`image`, once checked: fails the call (InvalidArgumentError) for an image too small for
    `layers`. The network must read the returned tensor: nothing orders a graph's convolutions
    after an assert they do not depend on, and one may fail first with a cryptic error."""
    need = 2 ** max(map(vgg_layers.halvings, layers))
    check = tf.debugging.assert_greater_equal(
        tf.reduce_min(tf.shape(image)[:2]), need,
        message=f'the {what} image needs a short side of at least {need} px for layer '
                f'{max(layers, key=vgg_layers.depth)}')
    with tf.control_dependencies([check]):
        return tf.identity(image)
