"""The optimisation: pixels of a tf.Variable image, a tf.function-compiled step.

`stylize` is the library call behind bin/stylize: arrays in, an array out, progress through a
callback. The network's weights are constants to it; only the image changes.
"""

import dataclasses
import random
import time
from typing import Callable, Dict, Optional

import numpy as np
import tensorflow as tf
import keras
from absl import logging

from . import images, vgg_layers
from .config import StyleTransferConfig
from .errors import ConfigError
from .losses import StyleObjective, position_mean_gram


@dataclasses.dataclass
class Progress:
    """What a progress callback receives: where the run stands."""
    iteration: int
    iterations: int
    losses: Dict[str, float]
    elapsed: float
    iterations_per_second: float
    eta_seconds: float
    # Returns the current image (H x W x 3 float32, 0..255); call it only when you need it.
    current_image: Callable[[], np.ndarray] = dataclasses.field(repr=False, default=None)


@dataclasses.dataclass
class StylizeResult:
    image: np.ndarray          # H x W x 3 uint8
    losses: Dict[str, float]   # of the final image
    seed: int
    iterations: int
    seconds: float
    config: StyleTransferConfig


def _min_side(layers):
    """Smallest image side that leaves every one of `layers` at least one position."""
    pools = sum(1 for name in vgg_layers.LAYERS[:max(map(vgg_layers.depth, layers)) + 1]
                if name.endswith('_pool'))
    return 2 ** pools


def _prepare(image, long_side, what, layers):
    image = images.resize_long_side(image, long_side)
    need = _min_side(layers)
    if min(image.shape[:2]) < need:
        raise ConfigError(
            f'the {what} image is {image.shape[1]}x{image.shape[0]} at this size; layer '
            f'{layers[-1]} needs a short side of at least {need} px: use a larger --image_size '
            'or --style_scale, or shallower layers')
    return image


def initial_image(init: str, content: np.ndarray, style: np.ndarray, seed: int) -> np.ndarray:
    """The start of the optimisation, at the content image's size (float32, 0..255)."""
    if init == 'content':
        return content.astype(np.float32)
    if init == 'style':
        h, w = content.shape[:2]
        return images.resize_to(style, (h, w))
    # White noise, as in the paper: independent uniform pixels over the whole range.
    return np.random.default_rng(seed).uniform(0, 255, content.shape).astype(np.float32)


def stylize(content: np.ndarray, style: np.ndarray, *, config: Optional[StyleTransferConfig] = None,
            extractor=None, callback: Optional[Callable[[Progress], None]] = None,
            report_every: int = 0, **options) -> StylizeResult:
    """Renders `content` (H x W x 3, 0..255) in the style of `style`.

    Settings come from `config` and/or keyword arguments named as in `StyleTransferConfig`.
    `extractor` (from `build_extractor` or `load_extractor`) is built from the config's weights and
    pooling when not given. `callback(Progress)` is called every `report_every` iterations (never
    when 0) and after the last one.
    """
    config = config.replace(**options) if config else StyleTransferConfig(**options)
    seed = config.seed if config.seed is not None else random.SystemRandom().randrange(2 ** 31)
    logging.info('stylize: seed %d', seed)

    content = _prepare(content, config.image_size, 'content', config.layers)
    style_side = max(1, round(max(content.shape[:2]) * config.style_scale))
    style = _prepare(style, style_side, 'style', config.style_layers)
    if extractor is None:
        from .network import build_extractor
        extractor = build_extractor(config.weights, config.pooling)

    content_features = extractor(content[None], layers=config.content_layers)
    style_features = extractor(style[None], layers=config.style_layers)
    objective = StyleObjective(
        {name: content_features[name] for name in config.content_layers},
        {name: position_mean_gram(style_features[name]) for name in config.style_layers},
        content_weight=config.content_weight, style_weight=config.style_weight,
        tv_weight=config.tv_weight, content_layer_weights=config.content_layer_weights,
        style_layer_weights=config.style_layer_weights)

    image = tf.Variable(initial_image(config.init, content, style, seed)[None], name='image')
    optimizer = keras.optimizers.Adam(
        learning_rate=config.learning_rate, beta_1=config.adam_beta_1,
        beta_2=config.adam_beta_2, epsilon=config.adam_epsilon)
    layers = config.layers

    @tf.function
    def evaluate():
        return objective(extractor(image, layers=layers), image)

    @tf.function
    def step():
        with tf.GradientTape() as tape:
            losses = objective(extractor(image, layers=layers), image)
        gradient = tape.gradient(losses['total'], image)
        optimizer.apply_gradients([(gradient, image)])
        image.assign(tf.clip_by_value(image, 0.0, 255.0))
        return losses

    def current_image():
        return image.numpy()[0]

    start = time.perf_counter()
    last_report = (0, start)
    for i in range(1, config.iterations + 1):
        losses = step()
        if callback and ((report_every and i % report_every == 0) or i == config.iterations):
            now = time.perf_counter()
            rate = (i - last_report[0]) / max(now - last_report[1], 1e-9)
            last_report = (i, now)
            callback(Progress(
                iteration=i, iterations=config.iterations, losses=_floats(losses),
                elapsed=now - start, iterations_per_second=rate,
                eta_seconds=(config.iterations - i) / rate, current_image=current_image))
    seconds = time.perf_counter() - start
    final = _floats(evaluate())
    logging.info('stylize: %d iterations in %.1f s, final loss %.4g',
                 config.iterations, seconds, final['total'])
    return StylizeResult(image=images.to_uint8(current_image()), losses=final, seed=seed,
                         iterations=config.iterations, seconds=seconds, config=config)


def _floats(losses):
    return {name: float(value) for name, value in losses.items()}
