"""The paper's objective built from a run's inputs: its targets computed by an evaluation
(evaluators.py: the whole image at once, or tile by tile), the same values either way."""

import hashlib
from typing import Dict, Optional

import numpy as np

from . import evaluators, masks
from .evaluators import losses_at  # noqa: F401  (tools and tests evaluate through it)
from .config import StyleTransferConfig
from .inputs import Inputs
from .losses import StyleObjective


# At most this many style images' Grams are kept (about 2.4 MB each for the paper's layers).
KNOWN_GRAMS = 16


def build_objective(source, inputs: Inputs, config: StyleTransferConfig,
                    known_grams: Optional[dict] = None) -> StyleObjective:
    """The paper's loss with targets from `inputs` (at their working sizes).

    `source`: an extractor, or an evaluation of one (evaluators.choose), which computes the
    targets. Several style images without masks: the target Grams are their weighted mean
    (config.style_blend_weights). With content masks: style i is the target of region i.
    A term weighted 0 has no targets: it is neither computed nor reported (its loss reads 0).
    `known_grams` (a dict kept between runs, such as `CompiledSteps.grams`) keeps each unmasked
    style image's Grams, so that runs with the same style compute them once.
    """
    source = evaluators.of(source)
    content_layers = config.content_layers if config.content_weight else ()
    style_layers = config.style_layers if config.style_weight else ()
    content_features = source.features(inputs.content, content_layers) if content_layers else {}
    grams = [_known(known_grams, source, style, style_layers) if not inputs.style_masks else
             source.grams(style, style_layers, inputs.style_masks[i])
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


def _known(known, source, image, layers):
    """The Grams of an unmasked style image, from `known` when it holds them."""
    if known is None:
        return source.grams(image, layers)
    key = (source.key, image.shape, tuple(layers),
           hashlib.sha1(np.ascontiguousarray(image).tobytes()).hexdigest())
    if key not in known:
        if len(known) >= KNOWN_GRAMS:  # the oldest goes: a batch of many sizes stays bounded
            del known[next(iter(known))]
        known[key] = source.grams(image, layers)
    return known[key]


def evaluate(source, inputs: Inputs, image, config: StyleTransferConfig,
             objective: Optional[StyleObjective] = None) -> Dict[str, float]:
    """The objective's terms for `image` (H x W x 3, the content's size), as floats.

    `source`: an extractor or an evaluation of one; `objective`: the one already built from
    `inputs` with it, if any."""
    source = evaluators.of(source)
    objective = objective or build_objective(source, inputs, config)
    return source.value(objective, image, config.layers)


def floats(losses) -> Dict[str, float]:
    return {name: float(value) for name, value in losses.items()}
