"""The optimisation: pixels of a tf.Variable image, a tf.function-compiled step.

`stylize` is the library call behind bin/stylize: arrays in, an array out, progress through a
callback. The network's weights are constants to it; only the image changes. With `scales` > 1 it
works coarse-to-fine: each scale starts from the previous scale's result, upsampled; the last
scale is the full size with the single-scale objective.
"""

import dataclasses
import random
import time
from typing import Callable, Dict, List, Optional, Sequence, Union

import numpy as np
import tensorflow as tf
import keras
from absl import logging

from . import colour, images, masks, vgg_layers
from .config import StyleTransferConfig, check_inputs
from .errors import ConfigError
from .lbfgs import LBFGS
from .network import resolve_precision
from .losses import StyleObjective, guided_gram, position_mean_gram


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
    # False when the run stopped early (should_stop, or a numerical fault): see stop_reason.
    completed: bool = True
    stop_reason: str = ''


def _min_side(layers):
    """Smallest image side that leaves every one of `layers` at least one position."""
    return 2 ** max(map(vgg_layers.halvings, layers))


def _prepare(image, long_side, what, layers):
    image = images.resize_long_side(image, long_side)
    need = _min_side(layers)
    if min(image.shape[:2]) < need:
        raise ConfigError(
            f'the {what} image is {image.shape[1]}x{image.shape[0]} at this size; layer '
            f'{max(layers, key=vgg_layers.depth)} needs a short side of at least {need} px: use '
            'a larger --image_size or --style_scale, fewer --scales, or shallower layers')
    return image


@dataclasses.dataclass
class Inputs:
    """What the objective is built from at one scale: arrays at their working sizes."""
    content: np.ndarray                                # H x W x 3, as the network sees it
    styles: List[np.ndarray]
    content_masks: Optional[List[np.ndarray]] = None   # H x W each, one per style
    style_masks: Optional[List[np.ndarray]] = None     # each the size of its style image


def initial_image(init: str, content: np.ndarray, style: np.ndarray, seed: int,
                  image: Optional[np.ndarray] = None, noise_blend: float = 0.0) -> np.ndarray:
    """The start of the optimisation, at the content image's size (float32, 0..255).

    `image` is the start for init='image'. `noise_blend` mixes that fraction of white noise in.
    """
    # White noise, as in the paper: independent uniform pixels over the whole range.
    noise = np.random.default_rng(seed).uniform(0, 255, content.shape).astype(np.float32)
    if init == 'noise':
        return noise
    if init == 'content':
        start = content.astype(np.float32)
    elif init == 'content_in_style_colors':
        # Not in the paper. Content init keeps the photo's colours, and the first style layers'
        # Grams are far from the painting's until the optimisation has moved every pixel's colour;
        # starting from the photo's colours moved to the style's mean and covariance (the reverse
        # of preserve_colors='histogram') puts the start nearer, without changing the objective:
        # the fastest start in bin/benchmark's quality table (BUILD.md).
        start = colour.match_histogram(content, style)
    elif init == 'style':
        start = images.resize_to(style, content.shape[:2])
    elif image is None:
        raise ConfigError("init='image' needs an init_image")
    else:
        start = images.resize_to(image, content.shape[:2])
    if noise_blend:
        start = (1 - noise_blend) * start + noise_blend * noise
    return start


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
        style_layer_weights=config.style_layer_weights)


# Adam: consecutive non-finite losses or gradients (each skipped, halving the step) before a run
# gives up and keeps its last good image.
MAX_FAULTS = 8


class NumericalFault(Exception):
    """The loss or gradient stayed NaN or Inf; the image still holds the last good one."""


class Optimization:
    """The image variable, the optimizer's state, and the compiled step, at one scale."""

    def __init__(self, objective, extractor, start: np.ndarray, config: StyleTransferConfig,
                 track_best: bool = False):
        self.image = tf.Variable(start[None], name='image')
        self._objective = objective
        self.extractor = extractor
        self._config = config
        self.faults = tf.Variable(0, trainable=False)
        self.best_loss = tf.Variable(np.inf, dtype=tf.float32, trainable=False)
        self.best_image = tf.Variable(start[None], trainable=False) if track_best else None
        if config.optimizer == 'lbfgs':
            self.optimizer = LBFGS(self.image, history=config.lbfgs_history,
                                   learning_rate=config.step_size, terms=StyleObjective.TERMS)
            optimizer_state = {f'v{i}': v for i, v in enumerate(self.optimizer.variables)}
        else:
            self.optimizer = keras.optimizers.Adam(
                learning_rate=config.step_size, beta_1=config.adam_beta_1,
                beta_2=config.adam_beta_2, epsilon=config.adam_epsilon)
            self.optimizer.build([self.image])
            optimizer_state = {f'v{i}': v.value for i, v in enumerate(self.optimizer.variables)}
        # What a checkpoint holds: everything the next iteration depends on.
        self.state = dict(image=self.image, faults=self.faults, best_loss=self.best_loss,
                          optimizer=optimizer_state)
        if track_best:
            self.state['best_image'] = self.best_image
        # Without autograph: the step's control flow is written as tf.cond and tf.while_loop,
        # and converting its source (and Keras' below it) cost a second in every process.
        self._compiled_step = tf.function(self._step, autograph=False)

    def step(self):
        """One update; returns the latest losses (L-BFGS: after it, Adam: before it)."""
        if isinstance(self.optimizer, LBFGS):
            self.optimizer.prime(self.value_and_gradient)  # eagerly, once: see lbfgs.py
        return self._compiled_step()

    def _losses(self, image=None):
        image = self.image if image is None else image
        return losses_at(self._objective, self.extractor, image, self._config.layers)

    # Plain TensorFlow code: autograph need not convert it, nor Keras' layers below it, when a
    # caller's tf.function (benchmark.py's evaluation, say) has autograph on.
    @tf.autograph.experimental.do_not_convert
    def value_and_gradient(self, image):
        """The losses at `image` and the total's gradient: one evaluation."""
        with tf.GradientTape() as tape:
            tape.watch(image)
            losses = self._losses(image)
        return losses, tape.gradient(losses['total'], image)

    def _step(self):
        """The compiled body of `step`."""
        if isinstance(self.optimizer, LBFGS):
            # L-BFGS never accepts a non-finite trial point (see lbfgs.py).
            losses = self.optimizer.step(self.value_and_gradient)
            self._remember_best(losses['total'], self.image)
            return losses
        before = tf.identity(self.image)
        losses, gradient = self.value_and_gradient(before)

        def update():
            self._remember_best(losses['total'], before)
            self.optimizer.apply_gradients([(gradient, self.image)])
            self.image.assign(tf.clip_by_value(self.image, 0.0, 255.0))
            self.faults.assign(0)

        def skip():
            # Leave the image as it was and retry with half the step.
            self.optimizer.learning_rate.assign(self.optimizer.learning_rate * 0.5)
            self.faults.assign_add(1)
        tf.cond(tf.logical_and(tf.math.is_finite(losses['total']),
                               tf.reduce_all(tf.math.is_finite(gradient))), update, skip)
        return losses

    def _remember_best(self, loss, image):
        if self.best_image is None:
            return

        def better():
            self.best_loss.assign(loss)
            self.best_image.assign(image)
        tf.cond(loss < self.best_loss, better, lambda: None)

    def stalled(self) -> bool:
        """Whether L-BFGS's line search has found no decrease (the loss can go no lower
        along its directions, or rounding hides what is left)."""
        return isinstance(self.optimizer, LBFGS) and int(self.optimizer.stalled_pairs) >= 0

    def switch(self, objective, extractor):
        """Goes on from the current image with another objective and network, keeping L-BFGS's
        curvature pairs. In place: a second optimizer state would hold 2 x history more copies
        of the image while both exist (measured: +0.13 GiB at the peak at 1024 px)."""
        self._objective, self.extractor = objective, extractor
        self._compiled_step = tf.function(self._step, autograph=False)
        # Losses of another objective do not compare with this one's.
        self.best_loss.assign(np.inf)
        if isinstance(self.optimizer, LBFGS):
            self.optimizer.forget_stall()

    def current_image(self) -> np.ndarray:
        return self.image.numpy()[0]

    def final_image(self) -> np.ndarray:
        """The lowest-loss image seen when tracking the best, else the current one."""
        if self.best_image is not None:
            # Adam's losses are of the image before each update: the last one is not yet seen.
            current = float(tf.function(self._losses, autograph=False)()['total'])
            if float(self.best_loss.numpy()) < current:
                return self.best_image.numpy()[0]
        return self.current_image()

    def check(self):
        if int(self.faults.numpy()) >= MAX_FAULTS:
            raise NumericalFault(f'the loss or its gradient was NaN or Inf {MAX_FAULTS} times '
                                 'in a row, even with smaller steps')


def stylize(content: np.ndarray, style: Union[np.ndarray, Sequence[np.ndarray]], *,
            config: Optional[StyleTransferConfig] = None, extractor=None,
            callback: Optional[Callable[[Progress], None]] = None, report_every: int = 0,
            should_stop: Optional[Callable[[], bool]] = None, checkpointer=None,
            content_masks: Optional[Sequence[np.ndarray]] = None,
            style_masks: Optional[Sequence[np.ndarray]] = None,
            init_image: Optional[np.ndarray] = None,
            calibration_images: Optional[Sequence[np.ndarray]] = None,
            **options) -> StylizeResult:
    """Renders `content` (H x W x 3, 0..255) in the style of `style`.

    `style` is one image or a list of them: without masks their Gram matrices are blended
    (`style_blend_weights`); with `content_masks` (H x W, 0..1, one per style; see masks.py) style
    i goes where mask i is, taken from where `style_masks[i]` is when given, and what no mask
    covers is held by the content loss alone. `init_image` is the start for init='image'.
    Settings come from `config` and/or keyword arguments named as in `StyleTransferConfig`.
    `extractor` (from `build_extractor` or `load_extractor`) is built from the config's weights and
    pooling when not given; with `normalize_weights` its weights are normalized on the content
    and style images as the network sees them, plus `calibration_images` (resized to
    `image_size`). `callback(Progress)` is called every `report_every` iterations (never
    when 0) and after the last one. `should_stop()` is asked after every iteration; when it says
    yes the run saves a checkpoint and returns early with `completed=False`. `checkpointer` (a
    `tf_style.checkpoint.Checkpointer`) saves the run every `checkpointer.every` iterations and,
    with `resume`, continues a saved run of the same inputs and settings.
    """
    config = config.replace(**options) if config else StyleTransferConfig(**options)
    styles = [style] if isinstance(style, np.ndarray) and style.ndim == 3 else list(style)
    content_masks = _arrays(content_masks)
    style_masks = _arrays(style_masks)
    check_inputs(config, styles, content_masks, style_masks, init_image, calibration_images)
    resumed = None
    if checkpointer is not None:
        from .checkpoint import fingerprint
        arrays = [content, *styles, *(content_masks or []), *(style_masks or []),
                  *([init_image] if config.init == 'image' else []),
                  *(calibration_images or [])]
        checkpointer.fingerprint = fingerprint(arrays, dataclasses.asdict(config))
        resumed = checkpointer.load_state()
    if resumed:
        seed = resumed['seed']
    else:
        seed = config.seed if config.seed is not None else random.SystemRandom().randrange(2 ** 31)
    logging.info('stylize: seed %d', seed)
    schedule = config.schedule()
    scaled = scaled_inputs(config, content, styles, content_masks, style_masks)
    if extractor is None:
        from .network import build_extractor
        extractor = build_extractor(
            config.weights, config.pooling, calibration_images=calibration_set(
                config, scaled[-1], calibration_images) if config.normalize_weights else None)
    elif config.normalize_weights and not getattr(extractor, 'normalized', False):
        raise ConfigError('normalize_weights: the extractor given is not normalized (build it '
                          'with build_extractor(..., calibration_images=...))')
    config = config.replace(precision=resolve_precision(config.precision, extractor))
    logging.info('stylize: precision %s', config.precision)
    exact = extractor
    if config.precision != 'float32':
        if not hasattr(extractor, 'with_precision'):
            raise ConfigError('precision=mixed needs a VGG19 extractor, not an exported one')
        exact = extractor.with_precision('float32')
        extractor = extractor.with_precision(config.precision)

    def output(image):
        # Luminance mode puts back the colours of the content as given.
        return colour.finish(config.preserve_colors, image, content)

    total = sum(n for _, n in schedule)
    done = resumed['done'] if resumed else 0
    first_scale = resumed['scale'] if resumed else 0
    start = time.perf_counter()
    last_report = (done, start)
    image, run, stop_reason = None, None, ''

    def save():
        if checkpointer is not None:
            checkpointer.save(run.state, {'scale': scale, 'done': done, 'seed': seed,
                                          'float32': run.extractor is exact})

    for scale, (inputs, (_, iterations)) in enumerate(zip(scaled, schedule)):
        if scale < first_scale:
            continue
        # A mixed run saved after it went on in float32 resumes in float32: its kept losses are
        # float32 losses, which bfloat16 ones must not be compared with.
        network = exact if resumed and scale == first_scale and resumed.get('float32') \
            else extractor
        objective = build_objective(network, inputs, config)
        c = inputs.content
        begin = (initial_image(config.init, c, inputs.styles[0], seed, init_image,
                               config.init_noise_blend) if image is None
                 else images.resize_to(image, c.shape[:2]))
        final_scale = scale == len(schedule) - 1
        run = Optimization(objective, network, begin, config,
                           track_best=config.keep_best and final_scale)
        if resumed and scale == first_scale:
            checkpointer.restore(run.state)
        end = sum(n for _, n in schedule[:scale + 1])
        while done < end:
            losses = run.step()
            done += 1
            if run.extractor is not exact and done < end and run.stalled():
                # Not in the paper: bfloat16's rounding hides the last decreases of the loss
                # from the line search (tubingen x starry_night at 256 px stalled 0.4-2% above
                # float32's loss), so the run goes on from here in float32, with its pairs.
                objective = build_objective(exact, inputs, config)
                run.switch(objective, exact)
                logging.info('stylize: bfloat16 stalled at iteration %d; going on in float32',
                             done)
            if callback and ((report_every and done % report_every == 0) or done == total):
                now = time.perf_counter()
                rate = (done - last_report[0]) / max(now - last_report[1], 1e-9)
                last_report = (done, now)
                callback(Progress(
                    iteration=done, iterations=total, scale=scale, size=c.shape[:2],
                    losses=_floats(losses), elapsed=now - start, iterations_per_second=rate,
                    eta_seconds=_eta(schedule, scale, done, total, rate),
                    current_image=lambda: output(run.current_image())))
            try:
                if done % 10 == 0 or done == end:
                    run.check()
            except NumericalFault as e:
                stop_reason = str(e)
            if not stop_reason and done < total and should_stop is not None and should_stop():
                stop_reason = 'stopped on request'
            if stop_reason:
                save()
                break
            if checkpointer is not None and checkpointer.every and done % checkpointer.every == 0:
                save()
        image = run.final_image() if final_scale else run.current_image()
        if stop_reason:
            break
    else:
        save()  # a resume of a finished run then returns at once
    seconds = time.perf_counter() - start
    # Reported in float32 whatever the precision of the run, so that runs compare. (`scale` is
    # the last one run: the final one, unless the run stopped early.)
    final = evaluate(exact, scaled[scale], image, config,
                     objective=objective if run.extractor is exact else None)
    logging.info('stylize: %d of %d iterations in %.1f s, loss %.4g%s', done, total, seconds,
                 final['total'], f' ({stop_reason})' if stop_reason else '')
    return StylizeResult(image=images.to_uint8(output(image)), losses=final, seed=seed,
                         iterations=done, seconds=seconds, config=config,
                         completed=not stop_reason, stop_reason=stop_reason)


def _arrays(masks_or_none):
    if masks_or_none is None:
        return None
    return [np.asarray(m, np.float32) for m in masks_or_none]


def scaled_inputs(config, content, styles, content_masks=None, style_masks=None) -> List[Inputs]:
    """Every scale's inputs, coarsest first, their sizes checked before any work."""
    # Colour preservation changes what the network sees; done once, at full resolution.
    content, styles = colour.prepare(config.preserve_colors, content, styles)
    scaled = []
    for side, _ in config.schedule():
        c = _prepare(content, side, 'content', config.layers)
        size = c.shape[:2]
        sides = [max(1, round(max(size) * k)) for k in config.style_scales(len(styles))]
        s = [_prepare(x, n, 'style', config.style_layers) for x, n in zip(styles, sides)]
        inputs = Inputs(c, s)
        if content_masks is not None:
            inputs.content_masks = [masks.resize_mask(m, size) for m in content_masks]
        if style_masks is not None:
            inputs.style_masks = [masks.resize_mask(m, x.shape[:2])
                                  for m, x in zip(style_masks, s)]
        scaled.append(inputs)
    return scaled


def calibration_set(config: StyleTransferConfig, inputs: Inputs,
                    extra: Optional[Sequence[np.ndarray]] = None) -> List[np.ndarray]:
    """What stylize normalizes the weights on: the content and style images as the network sees
    them at the final scale (`inputs`), and `extra` images resized to image_size."""
    return [inputs.content, *inputs.styles] + [
        images.resize_long_side(x, config.image_size) for x in extra or []]


def evaluate(extractor, inputs: Inputs, image, config: StyleTransferConfig,
             objective: Optional[StyleObjective] = None) -> Dict[str, float]:
    """The objective's terms for `image` (H x W x 3, the content's size), as floats.

    `objective`: the one already built from `inputs` with this extractor, if any.
    """
    objective = objective or build_objective(extractor, inputs, config)
    image = tf.constant(np.asarray(image, np.float32)[None])
    return _floats(losses_at(objective, extractor, image, config.layers))


def losses_at(objective: StyleObjective, extractor, image, layers) -> Dict[str, tf.Tensor]:
    """The objective's terms at `image` ([1, H, W, 3]), from the extractor's `layers`."""
    return objective(extractor(image, layers=layers), image)


def _eta(schedule, scale, done, total, rate):
    """Remaining time, counting each scale's iterations by their cost (pixels) relative to now."""
    now_side = schedule[scale][0]
    remaining = total - done - sum(n for _, n in schedule[scale + 1:])
    remaining += sum(n * (side / now_side) ** 2 for side, n in schedule[scale + 1:])
    return remaining / rate


def _floats(losses):
    return {name: float(value) for name, value in losses.items()}
