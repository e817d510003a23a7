"""How the paper's objective is evaluated, chosen once per scale: the whole image through the
network at once (`WholeImage`), or tile by tile when it would not fit in memory
(`tiling.Tiled`). Both compute the same values with the same loss terms (losses.py); nothing else
knows which one runs.

An evaluation gives:
- `features(image, layers)` and `grams(image, layers, mask)`: an objective's targets;
- `value_and_gradient(objective, layers)`: image [1, H, W, 3] -> ({term: scalar}, d total /
  d image), called inside the optimizer's compiled step;
- `value(objective, image, layers)`: the terms at an H x W x 3 image, as floats;
- `host_memory`: whether the image and the optimizer's state belong in host memory (and what
  the last scale held is freed first);
- `costly`: whether one evaluation more than needed is worth avoiding (minutes at poster
  sizes: a stopped run reports the losses its optimizer holds);
- `compiled_targets`: whether a compiled step may take the objective's targets as arguments (and
  so serve another run of the same settings);
- `with_extractor(extractor)`: the same evaluation through another network (precision.py).
"""

from typing import Dict, Sequence

import numpy as np
import tensorflow as tf

from . import masks
from .losses import guided_gram, position_mean_gram


def losses_at(objective, extractor, image, layers) -> Dict[str, tf.Tensor]:
    """The objective's terms at `image` ([1, H, W, 3]), from the extractor's `layers`."""
    return objective(extractor(image, layers=layers), image)


class WholeImage:
    """The whole image through the network at once."""

    host_memory = False
    compiled_targets = True
    costly = False  # whether one more evaluation than needed is worth avoiding

    def __init__(self, extractor):
        self.extractor = extractor
        self.key = (id(extractor),)  # what a cache of this evaluation's targets is keyed on

    def with_extractor(self, extractor) -> 'WholeImage':
        return WholeImage(extractor)

    def features(self, image: np.ndarray, layers: Sequence[str]):
        return self.extractor(image[None], layers=layers)

    def grams(self, image: np.ndarray, layers: Sequence[str], mask=None):
        """{layer: the Gram per position of `image`}, guided by `mask` when given."""
        features = self.extractor(image[None], layers=layers)
        guides = masks.at_layers(mask, layers) if mask is not None else None
        return {name: position_mean_gram(features[name]) if guides is None else
                guided_gram(features[name], guides[name]) for name in layers}

    def value_and_gradient(self, objective, layers: Sequence[str] = None):
        layers = layers or objective.layers

        # Plain TensorFlow code: autograph need not convert it, nor Keras' layers below it, when
        # a caller's tf.function has autograph on.
        @tf.autograph.experimental.do_not_convert
        def value_and_gradient(image):
            with tf.GradientTape() as tape:
                tape.watch(image)
                losses = losses_at(objective, self.extractor, image, layers)
            return losses, tape.gradient(losses['total'], image)
        return value_and_gradient

    def value(self, objective, image: np.ndarray, layers: Sequence[str] = None
              ) -> Dict[str, float]:
        image = tf.constant(np.asarray(image, np.float32)[None])
        losses = losses_at(objective, self.extractor, image, layers or objective.layers)
        return {name: float(value) for name, value in losses.items()}


def choose(extractor, tile_size: int = 0, on_tile=None):
    """The evaluation for one scale: `tile_size` > 0, tile by tile (telling `on_tile`, see
    tiling.py); else the whole image."""
    if tile_size:
        from .tiling import Tiled
        return Tiled(extractor, tile_size, on_tile)
    return WholeImage(extractor)


def of(extractor_or_evaluation):
    """An evaluation as given, or the whole-image one of an extractor."""
    if hasattr(extractor_or_evaluation, 'value_and_gradient'):
        return extractor_or_evaluation
    return WholeImage(extractor_or_evaluation)
