"""The optimisation: pixels of a tf.Variable image, a tf.function-compiled step.

`stylize` is the library call behind bin/stylize: arrays in, an array out, progress through a
callback. The network's weights are constants to it; only the image changes. With `scales` > 1 it
works coarse-to-fine: each scale starts from the previous scale's result, upsampled; the last
scale is the full size with the single-scale objective.
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
from .lbfgs import LBFGS
from .losses import StyleObjective, position_mean_gram


@dataclasses.dataclass
class Progress:
    """What a progress callback receives: where the run stands."""
    iteration: int             # counted over all scales
    iterations: int
    scale: int                 # 0 = coarsest
    size: tuple                # (height, width) of the current scale
    losses: Dict[str, float]   # at the current scale, before this iteration's update
    elapsed: float
    iterations_per_second: float
    eta_seconds: float
    # Returns the current image (H x W x 3 float32, 0..255); call it only when you need it.
    current_image: Callable[[], np.ndarray] = dataclasses.field(repr=False, default=None)


@dataclasses.dataclass
class StylizeResult:
    image: np.ndarray          # H x W x 3 uint8
    losses: Dict[str, float]   # of the final image, at full size
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
            f'{max(layers, key=vgg_layers.depth)} needs a short side of at least {need} px: use '
            'a larger --image_size or --style_scale, fewer --scales, or shallower layers')
    return image


def initial_image(init: str, content: np.ndarray, style: np.ndarray, seed: int) -> np.ndarray:
    """The start of the optimisation, at the content image's size (float32, 0..255)."""
    if init == 'content':
        return content.astype(np.float32)
    if init == 'style':
        return images.resize_to(style, content.shape[:2])
    # White noise, as in the paper: independent uniform pixels over the whole range.
    return np.random.default_rng(seed).uniform(0, 255, content.shape).astype(np.float32)


def build_objective(extractor, content, style, config: StyleTransferConfig) -> StyleObjective:
    """The paper's loss with targets from `content` and `style` (arrays at their final sizes)."""
    content_features = extractor(content[None], layers=config.content_layers)
    style_features = extractor(style[None], layers=config.style_layers)
    return StyleObjective(
        {name: content_features[name] for name in config.content_layers},
        {name: position_mean_gram(style_features[name]) for name in config.style_layers},
        content_weight=config.content_weight, style_weight=config.style_weight,
        tv_weight=config.tv_weight, content_layer_weights=config.content_layer_weights,
        style_layer_weights=config.style_layer_weights)


class Optimization:
    """The image variable, the optimizer's state, and the compiled step, at one scale."""

    def __init__(self, objective, extractor, start: np.ndarray, config: StyleTransferConfig):
        self.image = tf.Variable(start[None], name='image')
        self._objective = objective
        self._extractor = extractor
        self._layers = config.layers
        if config.optimizer == 'lbfgs':
            self.optimizer = LBFGS(self.image, history=config.lbfgs_history,
                                   learning_rate=config.step_size)
        else:
            self.optimizer = keras.optimizers.Adam(
                learning_rate=config.step_size, beta_1=config.adam_beta_1,
                beta_2=config.adam_beta_2, epsilon=config.adam_epsilon)
        self.step = tf.function(self._step)

    def _losses(self, image=None):
        image = self.image if image is None else image
        return self._objective(self._extractor(image, layers=self._layers), image)

    def _value_and_gradient(self, image):
        with tf.GradientTape() as tape:
            tape.watch(image)
            losses = self._losses(image)
        return losses, tape.gradient(losses['total'], image)

    def _step(self):
        """One update; returns the latest losses (L-BFGS: after it, Adam: before it)."""
        if isinstance(self.optimizer, LBFGS):
            return self.optimizer.step(self._value_and_gradient)
        losses, gradient = self._value_and_gradient(tf.convert_to_tensor(self.image))
        self.optimizer.apply_gradients([(gradient, self.image)])
        self.image.assign(tf.clip_by_value(self.image, 0.0, 255.0))
        return losses

    def current_image(self) -> np.ndarray:
        return self.image.numpy()[0]


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
    if extractor is None:
        from .network import build_extractor
        extractor = build_extractor(config.weights, config.pooling)
    exact = extractor
    if config.precision != 'float32':
        if not hasattr(extractor, 'with_precision'):
            raise ConfigError('precision=mixed needs a VGG19 extractor, not an exported one')
        exact = extractor.with_precision('float32')
        extractor = extractor.with_precision(config.precision)

    schedule = config.schedule()
    # Check every scale's sizes before any work.
    scaled = []
    for side, _ in schedule:
        c = _prepare(content, side, 'content', config.layers)
        style_side = max(1, round(max(c.shape[:2]) * config.style_scale))
        scaled.append((c, _prepare(style, style_side, 'style', config.style_layers)))

    total = sum(n for _, n in schedule)
    done = 0
    start = time.perf_counter()
    last_report = (0, start)
    image = None
    for scale, ((c, s), (_, iterations)) in enumerate(zip(scaled, schedule)):
        objective = build_objective(extractor, c, s, config)
        begin = (initial_image(config.init, c, s, seed) if image is None
                 else images.resize_to(image, c.shape[:2]))
        run = Optimization(objective, extractor, begin, config)
        for _ in range(iterations):
            losses = run.step()
            done += 1
            if callback and ((report_every and done % report_every == 0) or done == total):
                now = time.perf_counter()
                rate = (done - last_report[0]) / max(now - last_report[1], 1e-9)
                last_report = (done, now)
                callback(Progress(
                    iteration=done, iterations=total, scale=scale, size=c.shape[:2],
                    losses=_floats(losses), elapsed=now - start, iterations_per_second=rate,
                    eta_seconds=_eta(schedule, scale, done, total, rate),
                    current_image=run.current_image))
        image = run.current_image()
    seconds = time.perf_counter() - start
    # Reported in float32 whatever the precision of the run, so that runs compare.
    final = evaluate(exact, *scaled[-1], image, config)
    logging.info('stylize: %d iterations in %.1f s, final loss %.4g', total, seconds,
                 final['total'])
    return StylizeResult(image=images.to_uint8(image), losses=final, seed=seed,
                         iterations=total, seconds=seconds, config=config)


def evaluate(extractor, content, style, image, config: StyleTransferConfig) -> Dict[str, float]:
    """The objective's terms for `image` (H x W x 3, content's size), as floats."""
    objective = build_objective(extractor, content, style, config)
    image = tf.constant(np.asarray(image, np.float32)[None])
    return _floats(objective(extractor(image, layers=config.layers), image))


def _eta(schedule, scale, done, total, rate):
    """Remaining time, counting each scale's iterations by their cost (pixels) relative to now."""
    now_side = schedule[scale][0]
    remaining = total - done - sum(n for _, n in schedule[scale + 1:])
    remaining += sum(n * (side / now_side) ** 2 for side, n in schedule[scale + 1:])
    return remaining / rate


def _floats(losses):
    return {name: float(value) for name, value in losses.items()}
