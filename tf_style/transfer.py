"""`stylize`: the library call behind the stylize command, read top-down.

prepare (settings, inputs at every scale, the plan, the network, the seed) -> for each scale of
the coarse-to-fine schedule: optimise the image from the previous scale's result -> finish (the
final losses in float32, the output image). Around the paper's algorithm, four named layers:
precision (precision.py), tiling (images larger than memory: plan.py chooses the tiles,
evaluators.py evaluates by them), checkpoints (checkpoint.py) and stopping (_Stopper).
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
from . import plan as plan_
from .config import StyleTransferConfig
from .errors import ConfigError
from .inputs import Inputs, RunInputs, calibration_set, initial_image
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


@dataclasses.dataclass(frozen=True)
class Hooks:
    """What a run tells its caller and asks it, each optional: `progress(Progress)` every
    `report_every` iterations (never when 0) and after the last one; `stage(Stage)` after every
    tile of a tiled scale; `should_stop()` after every iteration, and between the tiles of a
    tiled evaluation."""
    progress: Optional[Callable[[Progress], None]] = None
    report_every: int = 0
    stage: Optional[Callable[[Stage], None]] = None
    should_stop: Optional[Callable[[], bool]] = None


def stylize(content, style, *, config: Optional[StyleTransferConfig] = None, extractor=None,
            callback: Optional[Callable[[Progress], None]] = None, report_every: int = 0,
            should_stop: Optional[Callable[[], bool]] = None, checkpointer=None,
            content_masks: Optional[Sequence[np.ndarray]] = None,
            style_masks: Optional[Sequence[np.ndarray]] = None,
            init_image=None, calibration_images=None, temporal_target=None,
            temporal_mask: Optional[np.ndarray] = None, steps: Optional[CompiledSteps] = None,
            on_stage: Optional[Callable[[Stage], None]] = None, plan=None,
            **options) -> StylizeResult:
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
    network sees them, plus `calibration_images`. `callback`, `report_every`, `on_stage` and
    `should_stop`: see `Hooks`. A stop request saves a checkpoint of the last finished iteration
    (a tiled one cut short is dropped) and returns early with `completed=False`. `checkpointer`
    (a `tf_style.checkpoint.Checkpointer`) saves the run every `checkpointer.every` iterations
    and, with `resume`, continues a saved run of the same inputs and settings. `steps` (a
    `CompiledSteps`, shared by the runs of a batch or a video) keeps the compiled steps, which a
    later run of the same settings and size reuses. `plan` (`tf_style.plan.plan` of the same
    config and sizes, as a command checks it first) sets the scales and tiles; by default the
    run plans them itself.
    """
    config = config.replace(**options) if config else StyleTransferConfig(**options)
    inputs = RunInputs.of(content, style, content_masks, style_masks, init_image,
                          calibration_images, temporal_target, temporal_mask)
    run = _prepare(config, inputs, extractor, checkpointer, plan,
                   Hooks(callback, report_every, on_stage, should_stop), steps)
    image = None
    try:
        for scale in range(run.first_scale, len(run.plan.scales)):
            image = _optimise_scale(run, scale, image)
            if run.stop_reason:
                break
    except tf.errors.ResourceExhaustedError as e:  # the memory check's estimate fell short
        planned = run.plan.scales[run.scale]
        raise memory.out_of_memory(*planned.size, planned.tile, run.config) from e
    return _finish(run, image)


@dataclasses.dataclass
class _Run:
    """A run's state across scales."""
    config: StyleTransferConfig
    plan: plan_.Plan
    inputs: RunInputs            # as given: luminance mode puts the content's colours back
    scaled: List[Inputs]         # per scale, at its working size
    precision: Precision
    seed: int
    checkpointer: object
    resumed: Optional[dict]      # where a resumed run stands
    hooks: Hooks
    stopper: '_Stopper'
    steps: Optional[CompiledSteps]
    done: int                    # iterations, counted over all scales
    clock: '_Clock'
    costs: List[float]           # per scale, an iteration's cost for the ETA (_costs)
    stop_reason: str = ''
    # The current scale: its evaluation (evaluators.choose), objective and optimisation.
    scale: int = 0
    evaluation: object = None
    objective: object = None
    optimization: Optional[Optimization] = None

    @property
    def total(self) -> int:
        return self.plan.iterations

    @property
    def first_scale(self) -> int:
        return self.resumed['scale'] if self.resumed else 0

    def output(self, image):
        return colour.finish(self.config.preserve_colors, image, self.inputs.content)


def _prepare(config, inputs: RunInputs, extractor, checkpointer, plan, hooks: Hooks,
             steps) -> _Run:
    """Settings, inputs, plan and network, every check made before any optimisation (a plan
    given was made by plan.for_inputs, which checked the inputs)."""
    plan = plan or plan_.for_inputs(config, inputs)
    resumed = None
    if checkpointer is not None:
        from .checkpoint import fingerprint
        # Not tile_size: tiled and untiled runs compute the same values, so a run may resume
        # with other tiles (or none), on a machine with more or less memory.
        settings = {k: v for k, v in dataclasses.asdict(config).items() if k != 'tile_size'}
        checkpointer.fingerprint = fingerprint(inputs.arrays(config.init), settings)
        resumed = checkpointer.load_state()
    seed = resumed['seed'] if resumed else (
        config.seed if config.seed is not None else random.SystemRandom().randrange(2 ** 31))
    logging.info('stylize: seed %d', seed)
    scaled = inputs.scaled(config, plan.scales)
    plan_.log(plan)
    extractor = _extractor(extractor, config, scaled[-1], inputs.calibration_images)
    precision = Precision(extractor, config.precision)
    logging.info('stylize: precision %s', precision.name)
    done = resumed['done'] if resumed else 0
    return _Run(config.replace(precision=precision.name), plan, inputs, scaled, precision, seed,
                checkpointer, resumed, hooks, _Stopper(hooks.should_stop), steps, done,
                _Clock(done), _costs(plan))


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
    opt = _start_scale(run, scale, previous)
    end = sum(s.iterations for s in run.plan.scales[:scale + 1])
    while run.done < end:
        losses = run.stopper.step(opt)
        if losses is None:  # stopped within the iteration: it did not happen
            run.stop_reason = STOPPED
            _save(run)
            break
        run.done += 1
        run.clock.iteration_done(scale, run.done)
        if run.done < end and run.precision.should_switch(opt):
            _go_on_exact(run)
        _report(run, losses)
        run.stop_reason = _stop_reason(run, end)
        if run.stop_reason or _checkpoint_due(run):
            _save(run)
        if run.stop_reason:
            break
    return opt.final_image() if scale == len(run.plan.scales) - 1 else opt.current_image()


def _start_scale(run: _Run, scale: int, previous: Optional[np.ndarray]) -> Optimization:
    """The scale's evaluation (as planned), objective, start image and optimisation, restored
    from the checkpoint when the run resumes here."""
    inputs, config, planned = run.scaled[scale], run.config, run.plan.scales[scale]
    resuming = run.resumed is not None and scale == run.first_scale
    run.precision.start_scale(run.resumed.get('precision') if resuming else None)
    run.scale = scale
    run.evaluation = evaluators.choose(run.precision.network, planned.tile, _tile_callback(run))
    if run.evaluation.host_memory and run.optimization is not None:
        _release(run)  # the last scale's, before this one's targets
    run.objective = build_objective(run.evaluation, inputs, config,
                                    run.steps.grams if run.steps is not None else None)
    start = (initial_image(config.init, inputs.content, inputs.styles[0], run.seed,
                           run.inputs.init_image, config.init_noise_blend) if previous is None
             else images.resize_to(previous, inputs.content.shape[:2]))
    new = run.steps.optimization if run.steps is not None else Optimization
    run.optimization = opt = new(run.objective, run.evaluation, start, config,
                                 track_best=config.keep_best and scale == len(run.scaled) - 1)
    if resuming:
        run.checkpointer.restore(opt.state)
    return opt


def _tile_callback(run: _Run):
    """`on_tile` (tiling.py) for the current scale, when tiled. Progress layer: tells the
    stage hook. Stopping layer: a stop request is heard between the tiles of an iteration's
    evaluations, which at poster sizes take minutes each, not only after the iteration."""
    size = run.plan.scales[run.scale].size

    def on_tile(what: str, tile: int, tiles: int):
        if run.hooks.stage is not None:
            run.hooks.stage(Stage(run.done, run.total, run.scale, size, what, tile, tiles))
        run.stopper.between_tiles()
    return on_tile


class _Interrupted(Exception):
    """A stop request heard between tiles (_Stopper.between_tiles)."""


class _Stopper:
    """Stopping layer: asks `should_stop` after each iteration (`requested`) and, inside an
    iteration's tiled evaluations, after each tile (`between_tiles`), which drops the
    iteration."""

    def __init__(self, should_stop: Optional[Callable[[], bool]]):
        self.should_stop = should_stop
        self.stepping = False      # inside an iteration's step, where a stop may cut it short
        self.interrupted = False   # a stop request cut a tiled evaluation short

    def requested(self) -> bool:
        return self.should_stop is not None and bool(self.should_stop())

    def between_tiles(self):
        if self.stepping and self.requested():
            self.interrupted = True
            raise _Interrupted()

    def step(self, opt: Optimization):
        """One iteration's losses; None when a stop request cut it short. The optimizer's
        state is then the last iteration's: L-BFGS and Adam assign it only after their
        evaluations."""
        self.stepping = True
        try:
            return opt.step()
        except (_Interrupted, tf.errors.OpError):  # from a compiled step, via tf.py_function
            if not self.interrupted:
                raise
            return None
        finally:
            self.stepping = False


def _go_on_exact(run: _Run):
    """Precision layer: bfloat16's rounding hides the last decreases of the loss from the line
    search, so a stalled mixed run goes on from here in float32, with its curvature pairs."""
    run.precision.switch_to_exact()
    run.evaluation = run.evaluation.with_extractor(run.precision.network)
    run.objective = build_objective(run.evaluation, run.scaled[run.scale], run.config)
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
    if run.done < run.total and run.stopper.requested():
        return STOPPED
    return ''


def _checkpoint_due(run: _Run) -> bool:
    every = run.checkpointer.every if run.checkpointer is not None else 0
    return bool(every) and run.done % every == 0


def _save(run: _Run):
    """Checkpoint layer: everything the next iteration depends on, and where the run stands."""
    if run.checkpointer is not None:
        run.checkpointer.save(run.optimization.state, {
            'scale': run.scale, 'done': run.done, 'seed': run.seed,
            'precision': run.precision.state()})


def _report(run: _Run, losses):
    hooks = run.hooks
    if not hooks.progress or not ((hooks.report_every and run.done % hooks.report_every == 0)
                                  or run.done == run.total):
        return
    rate, elapsed = run.clock.tick(run.done)
    opt, size = run.optimization, run.plan.scales[run.scale].size
    hooks.progress(Progress(
        iteration=run.done, iterations=run.total, scale=run.scale, size=size,
        losses=floats(losses), elapsed=elapsed, iterations_per_second=rate,
        eta_seconds=run.clock.eta(run.costs, run.config.schedule(), run.scale, run.done,
                                  rate),
        current_image=lambda: run.output(opt.current_image())))


def _costs(plan) -> List[float]:
    """The ETA's cost of an iteration at each scale: its pixels, times what its planned tiles
    add (tiling.relative_cost)."""
    return [scale.pixels * tiling.relative_cost(*scale.size, scale.tile, plan.config.layers)
            for scale in plan.scales]


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
    is its last point and it ran in float32. A run whose evaluations are costly (tiled) and
    that stopped does not wait for one more (at poster sizes, in float32, a quarter of an
    hour): it reports what the optimizer holds, in its precision."""
    if run.stop_reason and run.evaluation.costly:
        return run.optimization.held_losses(image) or {'total': float('nan')}
    return run.optimization.held_losses(image) if run.precision.is_exact else None


def _release(run: _Run):
    """Memory layer: frees the optimizer's state (L-BFGS: 2 x history copies of the image and
    more) and the objective's targets before a tiled scale, which needs neither: its own
    targets, or a tiled mixed run's final evaluation in float32. Left to Python's cyclic
    collector, they lingered into the next scale or not, by chance (a 4096 px print's peak).
    (Untiled runs, whose estimate counts all that, skip the collection: a batch image or a video
    frame would pay its 0.2 s.)"""
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
