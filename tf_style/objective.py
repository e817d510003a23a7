"""The paper's objective built from a run's inputs, and evaluated at an image: the whole image
through the network at once, or tile by tile (tiling.py) when it would not fit in memory."""

import hashlib
from typing import Dict, Optional

import numpy as np
import tensorflow as tf

from . import masks
from .config import StyleTransferConfig
from .inputs import Inputs
from .losses import StyleObjective, guided_gram, position_mean_gram


# At most this many style images' Grams are kept (about 2.4 MB each for the paper's layers).
KNOWN_GRAMS = 16


def build_objective(extractor, inputs: Inputs, config: StyleTransferConfig,
                    tile_size: int = 0, known_grams: Optional[dict] = None,
                    on_tile=None) -> StyleObjective:
    """The paper's loss with targets from `inputs` (at their working sizes).

    Several style images without masks: the target Grams are their weighted mean
    (config.style_blend_weights). With content masks: style i is the target of region i.
    A term weighted 0 has no targets: it is neither computed nor reported (its loss reads 0).
    `tile_size` > 0: the targets are computed tile by tile, the same values. `known_grams` (a
    dict kept between runs, such as `CompiledSteps.grams`) keeps each unmasked style image's
    Grams, so that runs with the same style compute them once. `on_tile`: see tiling.py.
    """
    content_layers = config.content_layers if config.content_weight else ()
    style_layers = config.style_layers if config.style_weight else ()
    content_features = (_features(extractor, inputs.content, content_layers, tile_size, on_tile)
                        if content_layers else {})
    grams = [_known(known_grams, extractor, style, style_layers, tile_size, on_tile)
             if not inputs.style_masks else
             _grams(extractor, style, style_layers, tile_size, inputs.style_masks[i], on_tile)
             for i, style in enumerate(inputs.styles if style_layers else [])]
    if inputs.content_masks and style_layers:
        targets = grams
        guides = [masks.at_layers(m, style_layers) for m in inputs.content_masks]
    else:
        weights = config.blend_weights(len(inputs.styles))
        targets = {name: sum(w * g[name] for w, g in zip(weights, grams))
                   for name in style_layers}
        guides = None
    return StyleObjective(
        {name: content_features[name] for name in content_layers}, targets,
        style_guides=guides, content_weight=config.content_weight,
        style_weight=config.style_weight, tv_weight=config.tv_weight,
        content_layer_weights=config.content_layer_weights,
        style_layer_weights=config.style_layer_weights,
        temporal_target=inputs.temporal_target, temporal_mask=inputs.temporal_mask,
        temporal_weight=config.temporal_weight)


def _features(extractor, image, layers, tile_size, on_tile=None):
    if tile_size:
        from .tiling import tiled_features
        return tiled_features(extractor, image, layers, tile_size, on_tile)
    return extractor(image[None], layers=layers)


def _grams(extractor, image, layers, tile_size, mask=None, on_tile=None):
    """{layer: the Gram per position of `image`}, guided by `mask` when given."""
    if tile_size:
        from .tiling import tiled_grams
        return tiled_grams(extractor, image, layers, tile_size, mask, on_tile)
    features = extractor(image[None], layers=layers)
    guides = masks.at_layers(mask, layers) if mask is not None else None
    return {name: position_mean_gram(features[name]) if guides is None else
            guided_gram(features[name], guides[name]) for name in layers}


def _known(known, extractor, image, layers, tile_size, on_tile=None):
    """_grams of an unmasked style image, from `known` when it holds them."""
    if known is None:
        return _grams(extractor, image, layers, tile_size, on_tile=on_tile)
    key = (id(extractor), image.shape, tuple(layers), tile_size,
           hashlib.sha1(np.ascontiguousarray(image).tobytes()).hexdigest())
    if key not in known:
        if len(known) >= KNOWN_GRAMS:  # the oldest goes: a batch of many sizes stays bounded
            del known[next(iter(known))]
        known[key] = _grams(extractor, image, layers, tile_size, on_tile=on_tile)
    return known[key]


def losses_at(objective: StyleObjective, extractor, image, layers) -> Dict[str, tf.Tensor]:
    """The objective's terms at `image` ([1, H, W, 3]), from the extractor's `layers`."""
    return objective(extractor(image, layers=layers), image)


def evaluator(objective: StyleObjective, extractor, layers, tile_size: int = 0, on_tile=None):
    """`value_and_gradient(image)`: image [1, H, W, 3] -> ({term: scalar}, d total / d image).

    The whole image through the network at once, or with `tile_size` > 0 tile by tile
    (tiling.TiledObjective, on the host), the same values with the network's memory bounded by
    one tile. Either is called inside the optimizer's compiled step. `on_tile`: see tiling.py.
    """
    if tile_size:
        from .tiling import TiledObjective
        return TiledObjective(extractor, objective, tile_size, on_tile).tensor_value_and_gradient

    # Plain TensorFlow code: autograph need not convert it, nor Keras' layers below it, when a
    # caller's tf.function has autograph on.
    @tf.autograph.experimental.do_not_convert
    def value_and_gradient(image):
        with tf.GradientTape() as tape:
            tape.watch(image)
            losses = losses_at(objective, extractor, image, layers)
        return losses, tape.gradient(losses['total'], image)
    return value_and_gradient


def evaluate(extractor, inputs: Inputs, image, config: StyleTransferConfig,
             objective: Optional[StyleObjective] = None, tile_size: int = 0,
             on_tile=None) -> Dict[str, float]:
    """The objective's terms for `image` (H x W x 3, the content's size), as floats.

    `objective`: the one already built from `inputs` with this extractor, if any. `tile_size`
    > 0: computed tile by tile, telling `on_tile` (see tiling.py).
    """
    objective = objective or build_objective(extractor, inputs, config, tile_size,
                                             on_tile=on_tile)
    if tile_size:
        from .tiling import TiledObjective
        return TiledObjective(extractor, objective, tile_size, on_tile).value(image)
    image = tf.constant(np.asarray(image, np.float32)[None])
    return floats(losses_at(objective, extractor, image, config.layers))


def floats(losses) -> Dict[str, float]:
    return {name: float(value) for name, value in losses.items()}
