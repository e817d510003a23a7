"""`stylize`: the library call behind the stylize command, read top-down.

prepare (settings, inputs at every scale, the network, the seed) -> for each scale of the
coarse-to-fine schedule: optimise the image from the previous scale's result -> finish (the
final losses in float32, the output image). Around the paper's algorithm, four named layers:
precision (precision.py), tiling (images larger than memory: memory.py, tiling.py),
checkpoints (checkpoint.py) and stopping (faults, requests).
"""

import dataclasses
import gc
import random
import time
from typing import Callable, Dict, List, Optional, Sequence

import numpy as np
import tensorflow as tf
from absl import logging

from . import colour, evaluators, images, memory, tiling
from .config import StyleTransferConfig, check_inputs
from .errors import ConfigError
from .inputs import Inputs, as_image, as_images, calibration_set, initial_image, scaled_inputs
from .objective import build_objective, evaluate, floats
from .optimize import CompiledSteps, NumericalFault, Optimization
from .precision import Precision


STOPPED = 'stopped on request'  # StylizeResult.stop_reason when should_stop said so


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
class Stage:
    """What a stage callback receives after each tile of a tiled scale: at poster sizes a pass
    over the tiles takes minutes, and a scale's first iteration (its targets, its start point,
    tracing) a quarter of an hour or more."""
    iteration: int             # iterations done, counted over all scales
    iterations: int
    scale: int
    size: tuple                # (height, width) of the current scale
    what: str                  # tiling.STYLE_TARGETS, CONTENT_TARGETS, GRAMS or GRADIENT
    tile: int                  # tiles done in this pass
    tiles: int


@dataclasses.dataclass
class StylizeResult:
    image: np.ndarray          # H x W x 3 uint8
    # Of the final image, at full size; a tiled run that stopped early: as its optimizer held them.
    losses: Dict[str, float]
    seed: int
    iterations: int
    seconds: float
    config: StyleTransferConfig
    # False when the run stopped early (should_stop, or a numerical fault): see stop_reason.
    completed: bool = True
    stop_reason: str = ''


def stylize(content, style, *, config: Optional[StyleTransferConfig] = None, extractor=None,
            callback: Optional[Callable[[Progress], None]] = None, report_every: int = 0,
            should_stop: Optional[Callable[[], bool]] = None, checkpointer=None,
            content_masks: Optional[Sequence[np.ndarray]] = None,
            style_masks: Optional[Sequence[np.ndarray]] = None,
            init_image=None, calibration_images=None, temporal_target=None,
            temporal_mask: Optional[np.ndarray] = None, steps: Optional[CompiledSteps] = None,
            on_stage: Optional[Callable[[Stage], None]] = None, **options) -> StylizeResult:
    """Renders `content` (H x W x 3, 0..255: a numpy array, tf.Tensor or PIL image) in the style
    of `style` (one such image, a list of them, or a batch [N, H, W, 3]).

    Without masks several styles' Gram matrices are blended (`style_blend_weights`); with
    `content_masks` (H x W, 0..1, one per style; see masks.py) style i goes where mask i is,
    taken from where `style_masks[i]` is when given, and what no mask covers is held by the
    content loss alone. `init_image` is the start for init='image'. `temporal_target` (the
    previous video frame's result, warped) and `temporal_mask` (where the warp is reliable) add
    the temporal loss weighted by `temporal_weight`. Settings come from `config` and/or keyword
    arguments named as in `StyleTransferConfig`. `extractor` (from `build_extractor` or
    `load_extractor`) is built from the config's weights and pooling when not given; with
    `normalize_weights` its weights are normalized on the content and style images as the
    network sees them, plus `calibration_images`. `callback(Progress)` is called every
    `report_every` iterations (never when 0) and after the last one; `on_stage(Stage)` after
    every tile of a tiled scale, between iterations and before the first. `should_stop()` is asked
    after every iteration, and in a tiled scale after every tile of an iteration's evaluations
    (that iteration is then dropped); when it says yes the run saves a checkpoint of its last
    finished iteration and returns early with `completed=False`. `checkpointer` (a
    `tf_style.checkpoint.Checkpointer`) saves the run every `checkpointer.every` iterations and, with `resume`, continues a saved run of the same inputs
    and settings. `steps` (a `CompiledSteps`, shared by the runs of a batch or a video) keeps
    the compiled steps, which a later run of the same settings and size reuses.
    """
    run = _prepare(content, style, config, options, extractor, checkpointer, content_masks,
                   style_masks, init_image, calibration_images, temporal_target, temporal_mask)
    run.callback, run.report_every, run.should_stop = callback, report_every, should_stop
    run.on_stage = on_stage
    run.steps = steps
    run.clock = _Clock(run.done)
    image = None
    try:
        for scale in range(run.first_scale, len(run.schedule)):
            image = _optimise_scale(run, scale, image)
            if run.stop_reason:
                break
    except tf.errors.ResourceExhaustedError as e:  # the memory check's estimate fell short
        raise memory.out_of_memory(*run.scaled[run.scale].content.shape[:2], run.tile_size,
                                   run.config) from e
    return _finish(run, image)


@dataclasses.dataclass
class _Run:
    """A run's state across scales."""
    config: StyleTransferConfig
    content: np.ndarray          # as given: luminance mode puts its colours back at the end
    scaled: List[Inputs]
    precision: Precision
    seed: int
    init_image: Optional[np.ndarray]
    checkpointer: object = None
    resumed: Optional[dict] = None
    callback: Optional[Callable] = None
    report_every: int = 0
    should_stop: Optional[Callable] = None
    on_stage: Optional[Callable] = None
    evaluation: object = None    # at the current scale: evaluators.choose
    stepping: bool = False       # inside an iteration's step, where a stop may cut it short
    interrupted: bool = False    # a stop request cut a tiled evaluation short
    done: int = 0
    stop_reason: str = ''
    scale: int = 0
    tile_size: int = 0           # at the current scale; 0: untiled
    optimization: Optional[Optimization] = None
    steps: Optional[CompiledSteps] = None
    objective: object = None
    clock: Optional['_Clock'] = None
    # Per scale, what an iteration costs relative to the others (pixels x tiling.relative_cost),
    # for the ETA; with each scale's tile size, planned, and actual once it has started.
    costs: Optional[List[float]] = None
    tiles: Optional[List[int]] = None

    @property
    def schedule(self):
        return self.config.schedule()

    @property
    def total(self) -> int:
        return sum(n for _, n in self.schedule)

    @property
    def first_scale(self) -> int:
        return self.resumed['scale'] if self.resumed else 0

    def output(self, image):
        return colour.finish(self.config.preserve_colors, image, self.content)


def _prepare(content, style, config, options, extractor, checkpointer, content_masks,
             style_masks, init_image, calibration_images, temporal_target, temporal_mask):
    """Settings, inputs and network, every check made before any optimisation."""
    config = config.replace(**options) if config else StyleTransferConfig(**options)
    content = as_image(content, 'content')
    styles = as_images(style, 'style')
    content_masks, style_masks = _arrays(content_masks), _arrays(style_masks)
    init_image = None if init_image is None else as_image(init_image, 'init_image')
    if temporal_target is not None:
        temporal_target = as_image(temporal_target, 'temporal_target')
    check_inputs(config, styles, content_masks, style_masks, init_image, calibration_images)
    resumed = None
    if checkpointer is not None:
        from .checkpoint import fingerprint
        arrays = [content, *styles, *(content_masks or []), *(style_masks or []),
                  *([init_image] if config.init == 'image' else []),
                  *(calibration_images or []),
                  *([temporal_target] if temporal_target is not None else []),
                  *([temporal_mask] if temporal_mask is not None else [])]
        # Not tile_size: tiled and untiled runs compute the same values, so a run may resume
        # with other tiles (or none), on a machine with more or less memory.
        settings = {k: v for k, v in dataclasses.asdict(config).items() if k != 'tile_size'}
        checkpointer.fingerprint = fingerprint(arrays, settings)
        resumed = checkpointer.load_state()
    seed = resumed['seed'] if resumed else (
        config.seed if config.seed is not None else random.SystemRandom().randrange(2 ** 31))
    logging.info('stylize: seed %d', seed)
    scaled = scaled_inputs(config, content, styles, content_masks, style_masks,
                           temporal_target, temporal_mask)
    extractor = _extractor(extractor, config, scaled[-1], calibration_images)
    precision = Precision(extractor, config.precision)
    logging.info('stylize: precision %s', precision.name)
    return _Run(config.replace(precision=precision.name), content, scaled, precision, seed,
                init_image, checkpointer, resumed, done=resumed['done'] if resumed else 0)


def _extractor(extractor, config, final_inputs, calibration_images):
    if extractor is None:
        from .network import build_extractor
        calibration = (calibration_set(config, final_inputs, calibration_images)
                       if config.normalize_weights else None)
        return build_extractor(config.weights, config.pooling, calibration_images=calibration)
    if config.normalize_weights and not getattr(extractor, 'normalized', False):
        raise ConfigError('normalize_weights: the extractor given is not normalized (build it '
                          'with build_extractor(..., calibration_images=...))',
                          option='normalize_weights')
    return extractor


def _optimise_scale(run: _Run, scale: int, previous: Optional[np.ndarray]) -> np.ndarray:
    """Optimises the image at one scale, from `previous` (the last scale's result) upsampled;
    returns the scale's result."""
    inputs, config = run.scaled[scale], run.config
    resuming = run.resumed is not None and scale == run.first_scale
    run.precision.start_scale(run.resumed.get('precision') if resuming else None)
    run.scale = scale
    run.tile_size = _tile_size(config, *inputs.content.shape[:2])
    _plan_costs(run)
    run.evaluation = evaluators.choose(run.precision.network, run.tile_size, _tile_callback(run))
    if run.evaluation.host_memory and run.optimization is not None:
        _release(run)  # the last scale's, before this one's targets
    run.objective = build_objective(run.evaluation, inputs, config,
                                    run.steps.grams if run.steps is not None else None)
    start = (initial_image(config.init, inputs.content, inputs.styles[0], run.seed,
                           run.init_image, config.init_noise_blend) if previous is None
             else images.resize_to(previous, inputs.content.shape[:2]))
    final_scale = scale == len(run.schedule) - 1
    new = run.steps.optimization if run.steps is not None else Optimization
    run.optimization = opt = new(run.objective, run.evaluation, start, config,
                                 track_best=config.keep_best and final_scale)
    if resuming:
        run.checkpointer.restore(opt.state)
    end = sum(n for _, n in run.schedule[:scale + 1])
    while run.done < end:
        losses = _step(run, opt)
        if losses is None:  # stopped within the iteration: it did not happen
            run.stop_reason = STOPPED
            _save(run)
            break
        run.done += 1
        run.clock.iteration_done(scale, run.done)
        if run.done < end and run.precision.should_switch(opt):
            _go_on_exact(run, inputs)
        _report(run, losses)
        run.stop_reason = _stop_reason(run, end)
        if run.stop_reason:
            _save(run)
            break
        if run.checkpointer is not None and run.checkpointer.every \
                and run.done % run.checkpointer.every == 0:
            _save(run)
    return opt.final_image() if final_scale else opt.current_image()


def _planned_tile(config: StyleTransferConfig, height: int, width: int):
    """Tiling layer: (the tile side for a scale of height x width, 0: untiled; whether it fits)
    as memory.plan_tile chooses it. When nothing fits (the library does not refuse: the stylize
    command's memory check does), the least demanding tiles."""
    tile = memory.plan_tile(height, width, config)
    if tile is not None:
        return tile, True
    tile = memory.plan_tile(height, width, config, memory.Memory(float('inf')))
    if config.tile_size is None and max(height, width) > memory.SMALLEST_TILE:
        tile = memory.SMALLEST_TILE
    return tile, False


def _tile_size(config: StyleTransferConfig, height: int, width: int) -> int:
    tile, fits = _planned_tile(config, height, width)
    if not fits:
        logging.warning('stylize: %dx%d px may not fit in the memory available, with '
                        'tile_size=%d', width, height, tile)
    if tile:
        logging.info('stylize: %dx%d px in tiles of %d px', width, height, tile)
    return tile


def _plan_costs(run: _Run):
    """The ETA's cost of an iteration at each scale, with the current scale's tiles and the
    tiles planned for the later ones."""
    sizes = [inputs.content.shape[:2] for inputs in run.scaled]
    if run.tiles is None:  # the current scale's was planned by _tile_size
        run.tiles = [None if k == run.scale else _planned_tile(run.config, *size)[0]
                     for k, size in enumerate(sizes)]
    run.tiles[run.scale] = run.tile_size
    run.costs = [h * w * tiling.relative_cost(h, w, tile, run.config.layers)
                 for (h, w), tile in zip(sizes, run.tiles)]


def _tile_callback(run: _Run):
    """`on_tile` (tiling.py) for the current, tiled, scale. Progress layer: tells run.on_stage.
    Stopping layer: a stop request is heard between the tiles of an iteration's evaluations,
    which at poster sizes take minutes each, not only after the iteration."""
    size = run.scaled[run.scale].content.shape[:2]

    def on_tile(what: str, tile: int, tiles: int):
        if run.on_stage is not None:
            run.on_stage(Stage(run.done, run.total, run.scale, size, what, tile, tiles))
        if run.stepping and run.should_stop is not None and run.should_stop():
            run.interrupted = True
            raise _Interrupted()
    return on_tile


class _Interrupted(Exception):
    """A stop request heard between tiles (_tile_callback)."""


def _step(run: _Run, opt: Optimization):
    """One iteration's losses; None when a stop request cut it short. The optimizer's state is
    then the last iteration's: L-BFGS and Adam assign it only after their evaluations."""
    run.stepping = True
    try:
        return opt.step()
    except (_Interrupted, tf.errors.OpError):  # from a compiled step, through tf.py_function
        if not run.interrupted:
            raise
        return None
    finally:
        run.stepping = False


def _go_on_exact(run: _Run, inputs: Inputs):
    """Precision layer: bfloat16's rounding hides the last decreases of the loss from the line
    search, so a stalled mixed run goes on from here in float32, with its curvature pairs."""
    run.precision.switch_to_exact()
    run.evaluation = run.evaluation.with_extractor(run.precision.network)
    run.objective = build_objective(run.evaluation, inputs, run.config)
    run.optimization.switch(run.objective, run.evaluation)
    logging.info('stylize: bfloat16 stalled at iteration %d; going on in float32', run.done)


def _stop_reason(run: _Run, end: int) -> str:
    """Stopping layer: a numerical fault (checked every 10 iterations and at a scale's end), or
    a request, ends the run early."""
    try:
        if run.done % 10 == 0 or run.done == end:
            run.optimization.check()
    except NumericalFault as e:
        return str(e)
    if run.done < run.total and run.should_stop is not None and run.should_stop():
        return STOPPED
    return ''


def _save(run: _Run):
    """Checkpoint layer: everything the next iteration depends on, and where the run stands."""
    if run.checkpointer is not None:
        run.checkpointer.save(run.optimization.state, {
            'scale': run.scale, 'done': run.done, 'seed': run.seed,
            'precision': run.precision.state()})


def _report(run: _Run, losses):
    if not run.callback or not ((run.report_every and run.done % run.report_every == 0)
                                or run.done == run.total):
        return
    rate, elapsed = run.clock.tick(run.done)
    opt, size = run.optimization, run.scaled[run.scale].content.shape[:2]
    run.callback(Progress(
        iteration=run.done, iterations=run.total, scale=run.scale, size=size,
        losses=floats(losses), elapsed=elapsed, iterations_per_second=rate,
        eta_seconds=run.clock.eta(run.costs, run.schedule, run.scale, run.done, rate),
        current_image=lambda: run.output(opt.current_image())))


def _finish(run: _Run, image) -> StylizeResult:
    if not run.stop_reason:
        _save(run)  # a resume of a finished run then returns at once
    seconds = run.clock.elapsed()
    # Reported in float32 whatever the precision of the run, so that runs compare. (`scale` is
    # the last one run: the final one, unless the run stopped early.)
    held = _held_losses(run, image)
    if not held and not run.precision.is_exact and run.evaluation.host_memory:
        _release(run)
    final = held or evaluate(
        run.evaluation.with_extractor(run.precision.exact), run.scaled[run.scale], image,
        run.config, objective=run.objective if run.precision.is_exact else None)
    logging.info('stylize: %d of %d iterations in %.1f s, loss %.4g%s', run.done, run.total,
                 seconds, final['total'], f' ({run.stop_reason})' if run.stop_reason else '')
    return StylizeResult(image=images.to_uint8(run.output(image)), losses=final, seed=run.seed,
                         iterations=run.done, seconds=seconds, config=run.config,
                         completed=not run.stop_reason, stop_reason=run.stop_reason)


def _held_losses(run: _Run, image) -> Optional[dict]:
    """The final losses when no evaluation is needed for them: L-BFGS holds them when `image`
    is its last point and it ran in float32. A tiled run that stopped does not wait for one
    more evaluation (at poster sizes, in float32, a quarter of an hour): it reports what the
    optimizer holds, in its precision."""
    if run.stop_reason and run.evaluation.costly:
        return run.optimization.held_losses(image) or {'total': float('nan')}
    return run.optimization.held_losses(image) if run.precision.is_exact else None


def _release(run: _Run):
    """Memory layer: frees the optimizer's state (L-BFGS: 2 x history copies of the image and
    more) and the objective's targets before a tiled scale, which needs neither: its own
    targets, or a tiled mixed run's final evaluation in float32. Left to Python's cyclic
    collector, they lingered into the next scale or not, by chance (docs/notes/benchmark-record.md, the
    4096 px print). (Untiled runs, whose estimate counts all that, skip the collection: a
    batch image or a video frame would pay its 0.2 s.)"""
    run.optimization = run.objective = None
    gc.collect()  # the compiled step and its Optimization refer to each other


class _Clock:
    """Iterations per second since the last report, time since the first iteration, and each
    scale's steady rate for the ETA.

    A scale's first iteration also computes its targets, evaluates its start point and traces
    its step: at 4096 px 15 minutes against 6 for a later one. So the steady rate counts from
    the end of that iteration on, and until a scale has one, the ETA uses the previous scale's,
    scaled by the scales' costs (pixels, and tiling's overhead).
    """

    def __init__(self, done: int, now=time.perf_counter):
        self.now = now
        self.start = now()
        self.last = (done, self.start)
        self.steady_from = {}  # scale -> (iterations done, time) at the end of its first iteration
        self.steady = None     # (scale, iterations per second) of the last scale with one

    def iteration_done(self, scale: int, done: int):
        now = self.now()
        first = self.steady_from.setdefault(scale, (done, now))
        if done > first[0]:
            self.steady = (scale, (done - first[0]) / max(now - first[1], 1e-9))

    def tick(self, done: int):
        now = self.now()
        rate = (done - self.last[0]) / max(now - self.last[1], 1e-9)
        self.last = (done, now)
        return rate, now - self.start

    def eta(self, costs, schedule, scale: int, done: int, rate: float) -> float:
        """Seconds left, with `rate` (iterations per second) the fallback before any steady
        rate; `costs[k]`: an iteration's cost at scale k; `schedule`: [(side, iterations)]."""
        if self.steady is not None:
            steady_scale, steady_rate = self.steady
            rate = steady_rate * costs[steady_scale] / costs[scale]
        left = sum(n for _, n in schedule[:scale + 1]) - done
        left += sum(n * costs[k] / costs[scale]
                    for k, (_, n) in enumerate(schedule) if k > scale)
        return left / rate

    def elapsed(self) -> float:
        return self.now() - self.start


def _arrays(masks_or_none):
    if masks_or_none is None:
        return None
    return [np.asarray(m, np.float32) for m in masks_or_none]
