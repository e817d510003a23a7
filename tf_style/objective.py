"""The paper's objective built from a run's inputs, and evaluated at an image."""

from typing import Dict, Optional

import numpy as np
import tensorflow as tf

from . import masks
from .config import StyleTransferConfig
from .inputs import Inputs
from .losses import StyleObjective, guided_gram, position_mean_gram


def build_objective(extractor, inputs: Inputs, config: StyleTransferConfig) -> StyleObjective:
    """The paper's loss with targets from `inputs` (at their working sizes).

    Several style images without masks: the target Grams are their weighted mean
    (config.style_blend_weights). With content masks: style i is the target of region i.
    A term weighted 0 has no targets: it is neither computed nor reported (its loss reads 0).
    """
    content_layers = config.content_layers if config.content_weight else ()
    style_layers = config.style_layers if config.style_weight else ()
    content_features = (extractor(inputs.content[None], layers=content_layers)
                        if content_layers else {})
    grams = []
    for i, style in enumerate(inputs.styles if style_layers else []):
        features = extractor(style[None], layers=style_layers)
        guides = (masks.at_layers(inputs.style_masks[i], style_layers)
                  if inputs.style_masks else None)
        grams.append({name: position_mean_gram(features[name]) if guides is None else
                      guided_gram(features[name], guides[name]) for name in style_layers})
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


def losses_at(objective: StyleObjective, extractor, image, layers) -> Dict[str, tf.Tensor]:
    """The objective's terms at `image` ([1, H, W, 3]), from the extractor's `layers`."""
    return objective(extractor(image, layers=layers), image)


def evaluate(extractor, inputs: Inputs, image, config: StyleTransferConfig,
             objective: Optional[StyleObjective] = None) -> Dict[str, float]:
    """The objective's terms for `image` (H x W x 3, the content's size), as floats.

    `objective`: the one already built from `inputs` with this extractor, if any.
    """
    objective = objective or build_objective(extractor, inputs, config)
    image = tf.constant(np.asarray(image, np.float32)[None])
    return floats(losses_at(objective, extractor, image, config.layers))


def floats(losses) -> Dict[str, float]:
    return {name: float(value) for name, value in losses.items()}
