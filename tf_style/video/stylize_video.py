"""Stylizing a clip frame by frame with temporal consistency (Ruder, Dosovitskiy & Brox, GCPR 2016).

Stylizing each frame on its own flickers: each starts from new noise and lands in another local
minimum. The paper's two remedies, section 3:

- warped start: frame t > 1 starts from the stylized frame t-1 warped by the optical flow onto
  frame t;
- short-term temporal loss: temporal_weight * (1/D) sum_k c_k (x_k - w_k)^2 (D = H * W * 3),
  the distance to that warped frame w, per pixel weighted by the reliability c in {0, 1} of the
  flow (flow.consistency_mask: 0 at disocclusions and motion boundaries);
- optionally the long-term loss (section 3.2): the same against the results of the frames
  t - j, j in J, each warped straight onto frame t, every pixel held by the nearest frame whose
  flow is reliable there. Those weights c_long sum to at most 1 per pixel, so the sum of the
  terms is one term of the same form (target: each pixel's nearest reliable warped frame; c: 1
  where any is reliable): what the core's temporal loss takes.

`stylize_video` is a generator: it reads a frame, stylizes it and yields it before reading the
next, so a caller can stream and memory does not grow with the clip: only the previous frame and
its stylization are kept (the last J with the long-term loss; the whole clip with multi-pass).

Where we depart from the paper: optical flow is OpenCV's DIS (or Farneback), not DeepFlow or
EpicFlow; the objective is this project's (tf_style.stylize), with its weights, optimizers and
controls. Multi-pass (section 3.3): the paper's first pass stylizes each frame on its own and
turns the temporal loss on only in later passes; ours is the single pass above (warped start and
temporal loss), which is already consistent, so fewer passes are needed after it.
"""

import collections
import dataclasses
import time
from typing import Callable, Iterable, Iterator, List, Mapping, Optional, Sequence, Union

import numpy as np

from .. import images
from ..config import StyleTransferConfig
from ..errors import ConfigError
from . import flow as optical_flow

# Iterations of the first frame and of each later one. Later frames start from the warped
# previous result, most of the way there already.
FIRST_FRAME_ITERATIONS = StyleTransferConfig.iterations
LATER_FRAME_ITERATIONS = StyleTransferConfig.iterations // 2
# gamma of the temporal loss (losses.temporal_loss, a mean over pixels) against content_weight = 1
# and style_weight = 1e3 (sums over features): strong enough to remove most of the flicker left
# by the warped start, weak enough that the frames' style loss stays that of frame by frame
# (1e3 held them 20-27% above it; docs/video.md).
TEMPORAL_WEIGHT = 1e2
# The paper's example set J of earlier frames for the long-term loss.
LONG_TERM_FRAMES = (1, 2, 4)
# delta of the multi-pass start: where the flow is reliable, a frame starts wholly from its
# neighbour's warped result (the temporal loss pulls there anyway); elsewhere, at the borders
# the camera uncovers, from its own result of the pass before, which the other direction made.
MULTI_PASS_BLEND = 1.0


@dataclasses.dataclass
class VideoProgress:
    """What a stylize_video callback receives: the frame's stylize Progress and the clip's."""
    frame: int                  # 0-based index of the frame being stylized
    frames: Optional[int]       # the clip's frame count, when the caller gave it
    pass_number: int            # 1, and 2, 3, ... in the later passes of multi-pass
    passes: int
    progress: object            # tf_style.Progress of this frame's run
    elapsed: float              # seconds since the clip began
    # Remaining seconds for the clip (None without `frames`): this frame's ETA plus the
    # iterations left in this pass and the later ones, at the mean seconds per iteration so far
    # (the first frame's run, which traces, left out).
    eta_seconds: Optional[float]


@dataclasses.dataclass
class FrameResult:
    """One stylized frame, as `stylize_video_results` yields it."""
    index: int
    image: np.ndarray           # H x W x 3 uint8, the working size
    result: object              # the frame's tf_style.StylizeResult (losses, seconds, ...)
    # Frames after the first: the previous stylized frame warped onto this one (the start), the
    # temporal loss's target w and its c (long-term: combined over J).
    warped: Optional[np.ndarray] = None
    target: Optional[np.ndarray] = None
    mask: Optional[np.ndarray] = None
    pass_number: int = 1        # multi-pass: 1, 2, ... (the last pass's frames are the clip)


class FrameStopped(Exception):
    """A frame's run stopped early (should_stop, or a numerical fault): the clip is not done.

    `frame` is its index, `result` its partial StylizeResult; frames before it were yielded."""

    def __init__(self, frame: int, result):
        super().__init__(f'frame {frame + 1}: {result.stop_reason}')
        self.frame = frame
        self.result = result


def stylize_video(frames: Iterable[np.ndarray], style, **options) -> Iterator[np.ndarray]:
    """Yields each frame of `frames` stylized (H x W x 3 uint8, long side `image_size`), in clip
    order: with one pass as soon as it is done, with `passes` > 1 once the last pass ends (a
    backward last pass finishes the first frame last). Options as `stylize_video_results`."""
    passes = options.get('passes', 1)
    last = {}
    for done in stylize_video_results(frames, style, **options):
        if done.pass_number == passes:
            if passes % 2:  # the last pass runs forward
                yield done.image
            else:
                last[done.index] = done.image
    for index in sorted(last):
        yield last[index]


def stylize_video_results(
        frames: Iterable[np.ndarray], style: Union[np.ndarray, Sequence[np.ndarray]], *,
        temporal_weight: float = TEMPORAL_WEIGHT,
        long_term: Union[bool, Sequence[int]] = False, passes: int = 1,
        first_frame_iterations: int = FIRST_FRAME_ITERATIONS,
        iterations: int = LATER_FRAME_ITERATIONS, flow: str = 'dis',
        warped_start: Optional[bool] = None,
        callback: Optional[Callable[[VideoProgress], None]] = None,
        frame_count: Optional[int] = None, extractor=None,
        finished: Sequence[np.ndarray] = (),
        later_finished: Sequence[Mapping[int, np.ndarray]] = (),
        checkpointer_for: Optional[Callable] = None,
        **stylize_options) -> Iterator[FrameResult]:
    """Stylizes the frames of a clip (H x W x 3 arrays, 0..255, all one size) one at a time, each
    starting from the previous result warped by the optical flow, with the short-term temporal
    loss weighted by `temporal_weight`.

    `temporal_weight` = 0 is frame by frame, the baseline the paper improves on: every frame is
    stylized as the first is (`init`, `first_frame_iterations`, the same seed). `warped_start`
    overrides whether later frames start from the warped previous result (None: when
    temporal_weight > 0), for the paper's ablation: warped start without the loss.
    `first_frame_iterations` for the first frame (which starts as `init` says), `iterations` for
    each later one. `flow`: 'dis' or 'farneback' (flow.METHODS). `callback(VideoProgress)` every
    `report_every` iterations of each frame. `frame_count` (optional) is only for the callback's
    clip ETA. Every other keyword argument is a `tf_style.stylize` option (StyleTransferConfig
    fields, should_stop, report_every, ...), the same for every frame. `long_term`: the
    long-term loss over the frames t - j, j in LONG_TERM_FRAMES (True) or in the given offsets;
    it keeps that many earlier frames.

    `passes` > 1: the paper's multi-pass algorithm (section 3.3). After the pass above, passes - 1
    more over the whole clip in alternating directions (backward first), `iterations` per frame
    each: a frame starts from its result of the pass before, blended where the flow is reliable
    with its neighbour's result of this pass, warped (`multi_pass_start`), with the temporal
    loss towards that warped neighbour. It keeps the whole clip (frames and results) in memory
    and yields every frame of every pass (`FrameResult.pass_number`); the clip is the last
    pass's frames.

    Resuming a clip: `finished` are the results of the first frames of the first pass (uint8, as
    yielded before) and `later_finished` those of the passes after it, by frame index, one
    mapping per pass; they are not stylized again nor yielded. `checkpointer_for(index,
    pass_number)` gives each frame's `tf_style.checkpoint.Checkpointer` (a frame's run then
    resumes from its checkpoint).

    Raises FrameStopped when a frame's run stops early.
    """
    _check_options(temporal_weight, long_term, passes, first_frame_iterations, iterations, flow,
                   warped_start, stylize_options)
    config = StyleTransferConfig(**{k: v for k, v in stylize_options.items()
                                    if k in _CONFIG_FIELDS})
    styles = [style] if isinstance(style, np.ndarray) and style.ndim == 3 else list(style)
    if warped_start is None:
        warped_start = temporal_weight > 0
    timing = _Timing(frame_count, passes, iterations if warped_start else first_frame_iterations,
                     iterations)
    run = _FrameRunner(styles, config, stylize_options, extractor, callback, timing,
                       checkpointer_for)
    kept = [] if passes > 1 else None  # (frame, result) of every frame, for the later passes
    yield from _first_pass(frames, run, config, temporal_weight, _offsets(long_term),
                           warped_start, first_frame_iterations, iterations, flow, finished, kept)
    clip = [frame for frame, _ in kept or ()]
    results = [image for _, image in kept or ()]
    for pass_number in range(2, passes + 1):
        done = later_finished[pass_number - 2] if pass_number - 2 < len(later_finished) else {}
        yield from _later_pass(clip, results, pass_number, run, temporal_weight, iterations,
                               flow, done)


class _FrameRunner:
    """Runs `tf_style.stylize` on one frame with what the clip's frames share: the styles and
    options, the extractor (built at the first frame), the compiled steps, progress and
    checkpoints."""

    def __init__(self, styles, config, stylize_options, extractor, callback, timing,
                 checkpointer_for):
        from ..optimize import CompiledSteps
        self.styles, self.config, self.options = styles, config, stylize_options
        self.extractor, self.callback, self.timing = extractor, callback, timing
        self.checkpointer_for = checkpointer_for
        self.steps = CompiledSteps()  # the frames share their compiled steps
        self.clip_start = time.perf_counter()

    def prepare(self, frame: np.ndarray) -> None:
        """Builds the extractor at the first frame (its weights' normalisation reads it)."""
        if self.extractor is None:
            from ..network import build_extractor
            config = self.config
            self.extractor = build_extractor(config.weights, config.pooling, calibration_images=[
                frame, *(images.resize_long_side(s, config.image_size) for s in self.styles)]
                if config.normalize_weights else None)

    def __call__(self, frame, index: int, pass_number: int, **options):
        from .. import stylize
        options = dict(self.options, **options, extractor=self.extractor, steps=self.steps,
                       callback=self.timing.reporter(index, pass_number, self.callback,
                                                     self.clip_start)
                       if self.callback else None)
        if self.checkpointer_for is not None:
            options['checkpointer'] = self.checkpointer_for(index, pass_number)
        began = time.perf_counter()
        result = stylize(frame, self.styles, **options)
        if not result.completed:
            raise FrameStopped(index, result)
        self.timing.finished(options['iterations'], time.perf_counter() - began)
        return result


def _first_pass(frames, run, config, temporal_weight, offsets, warped_start,
                first_frame_iterations, iterations, flow, finished, kept):
    """The paper's single pass, forward; appends (frame, result) of every frame to `kept` (a
    list, or None)."""
    history = collections.deque(maxlen=max(offsets))  # (frame, result), newest first
    previous_frame = None
    for index, frame in enumerate(frames):
        frame = images.resize_long_side(frame, config.image_size)
        if previous_frame is not None and frame.shape != previous_frame.shape:
            raise ConfigError(f'frame {index + 1} is {frame.shape[1]}x{frame.shape[0]} at this '
                              f'image_size, frame {index} {previous_frame.shape[1]}x'
                              f'{previous_frame.shape[0]}: every frame must be the same size')
        run.prepare(frame)
        if index < len(finished):
            image = np.asarray(finished[index])
        else:
            warped = target = mask = None
            options = dict(iterations=first_frame_iterations)
            if previous_frame is not None and warped_start:
                carried = [carry_over(history[j - 1][0], frame, history[j - 1][1], flow)
                           for j in offsets if j <= len(history)]
                warped = carried[0][0]
                target, mask = combine_long_term(carried)
                options.update(iterations=iterations, init='image', init_image=warped,
                               init_noise_blend=0.0)
                if temporal_weight:
                    options.update(temporal_weight=temporal_weight, temporal_target=target,
                                   temporal_mask=mask)
            result = run(frame, index, 1, **options)
            image = result.image
            yield FrameResult(index=index, image=image, result=result, warped=warped,
                              target=target, mask=mask)
        previous_frame = frame
        history.appendleft((frame, image))
        if kept is not None:
            kept.append((frame, image))


def _later_pass(clip, results, pass_number, run, temporal_weight, iterations, flow, finished):
    """Pass `pass_number` (2, 3, ...) of the multi-pass algorithm over the whole clip: backward
    when even, forward when odd. Replaces `results[i]` as each frame is done."""
    order = range(len(clip)) if pass_number % 2 else range(len(clip) - 1, -1, -1)
    neighbour = None  # the frame done just before in this pass
    for index in order:
        if index in finished:
            results[index] = np.asarray(finished[index])
        else:
            warped = mask = None
            start = results[index]
            options = dict(iterations=iterations, init='image', init_noise_blend=0.0)
            if neighbour is not None:
                warped, mask = carry_over(clip[neighbour], clip[index], results[neighbour], flow)
                start = multi_pass_start(results[index], warped, mask)
                if temporal_weight:
                    options.update(temporal_weight=temporal_weight, temporal_target=warped,
                                   temporal_mask=mask)
            result = run(clip[index], index, pass_number, init_image=start, **options)
            results[index] = result.image
            yield FrameResult(index=index, image=result.image, result=result, warped=warped,
                              target=warped, mask=mask, pass_number=pass_number)
        neighbour = index


def multi_pass_start(own: np.ndarray, warped: np.ndarray, mask: np.ndarray,
                     blend: float = MULTI_PASS_BLEND) -> np.ndarray:
    """The paper's start of a frame in a later pass (section 3.3): delta c o w + (1 - delta c) o
    x, with x the frame's result of the pass before, w its neighbour's result of this pass
    warped onto it, c where that flow is reliable and delta = `blend`."""
    weight = blend * np.asarray(mask, np.float32)[..., None]
    return weight * warped + (1.0 - weight) * np.asarray(own, np.float32)


_CONFIG_FIELDS = {f.name for f in dataclasses.fields(StyleTransferConfig)}


def _check_options(temporal_weight, long_term, passes, first_frame_iterations, iterations, flow,
                   warped_start, stylize_options):
    if not (isinstance(temporal_weight, (int, float)) and np.isfinite(temporal_weight)
            and temporal_weight >= 0):
        raise ConfigError(f'temporal_weight must be a finite number >= 0, got {temporal_weight!r}',
                          'temporal_weight')
    if temporal_weight and warped_start is False:
        raise ConfigError('temporal_weight > 0 needs warped_start: the temporal loss pulls '
                          'towards the warped previous frame', 'warped_start')
    if not (isinstance(passes, int) and passes >= 1):
        raise ConfigError(f'passes must be an integer >= 1, got {passes!r}', 'passes')
    if passes > 1 and long_term not in (False, None):
        raise ConfigError('long_term works with passes=1: the later passes of multi-pass use '
                          'the short-term loss', 'long_term')
    for name, value in (('first_frame_iterations', first_frame_iterations),
                        ('iterations', iterations)):
        if not (isinstance(value, int) and value >= 0):
            raise ConfigError(f'{name} must be a non-negative integer, got {value!r}', name)
    if flow not in optical_flow.METHODS:
        raise ConfigError(f'flow must be one of {", ".join(optical_flow.METHODS)}, got {flow!r}',
                          'flow')
    # (init_image is the first frame's start, as init is.)
    for name in ('temporal_target', 'temporal_mask', 'content_masks', 'style_masks'):
        if stylize_options.get(name) is not None:
            raise ConfigError(f'{name} is per image: stylize_video does not take it', name)


def _offsets(long_term) -> tuple:
    """The set J of the long-term loss, sorted; (1,) for the short-term loss alone."""
    if long_term is False or long_term is None:
        return (1,)
    offsets = LONG_TERM_FRAMES if long_term is True else long_term
    try:
        offsets = tuple(sorted(set(int(j) for j in offsets)))
    except (TypeError, ValueError):
        offsets = ()
    if not offsets or offsets[0] != 1:
        raise ConfigError(f'long_term must be True, False or frame offsets including 1 (e.g. '
                          f'1,2,4), got {long_term!r}', 'long_term')
    return offsets


def combine_long_term(carried):
    """The long-term loss as one term: `carried` is [(w_j, c_j)] for the offsets j of J, nearest
    first. c_long_j = max(c_j - sum_{k < j} c_k, 0) (paper, eq. 5) gives each pixel to the
    nearest frame whose flow is reliable there; returns (target, mask): that frame's w_j, and 1
    where there is one. With one frame it is (w_1, c_1), the short-term loss."""
    target = np.array(carried[0][0], np.float32)
    covered = np.array(carried[0][1], np.float32)
    for warped, mask in carried[1:]:
        claimed = np.maximum(mask - covered, 0.0)
        target += claimed[..., None] * (warped - target)
        covered = covered + claimed
    return target, np.minimum(covered, 1.0)


def carry_over(previous_frame: np.ndarray, frame: np.ndarray, previous_image: np.ndarray,
               method: str = 'dis'):
    """The paper's w and c for `frame`: `previous_image` (the stylized previous frame) warped
    onto `frame` by the flow between the input frames, and where that flow is reliable."""
    forward, backward = optical_flow.flows(previous_frame, frame, method)
    warped = np.clip(optical_flow.warp(previous_image, backward), 0, 255)
    return warped, optical_flow.consistency_mask(forward, backward)


def warping_error(frames: Sequence[np.ndarray], outputs: Sequence[np.ndarray],
                  method: str = 'dis') -> List[float]:
    """The temporal warping error of a stylized clip, per pair of consecutive frames: the mean
    |out_t - warp(out_t-1)| (0..255, over channels) where c = 1, with the flow and c of the
    input frames (resized to the outputs' size)."""
    errors = []
    size = np.shape(outputs[0])[:2]
    inputs = [images.resize_to(f, size) for f in frames]
    for t in range(1, len(outputs)):
        warped, mask = carry_over(inputs[t - 1], inputs[t], outputs[t - 1], method)
        difference = np.abs(np.asarray(outputs[t], np.float32) - warped).mean(axis=-1)
        errors.append(float((difference * mask).sum() / max(mask.sum(), 1.0)))
    return errors


class _Timing:
    """Seconds per iteration so far (the first frame's run, which traces, left out), for the
    clip's ETA."""

    def __init__(self, frames: Optional[int], passes: int, first_pass_iterations: int,
                 later_pass_iterations: int):
        self.frames, self.passes = frames, passes
        self.first_pass_iterations = first_pass_iterations  # per frame after the first
        self.later_pass_iterations = later_pass_iterations
        self.runs, self.seconds, self.iterations = 0, 0.0, 0

    def finished(self, iterations: int, seconds: float) -> None:
        self.runs += 1
        if self.runs > 1:
            self.seconds += seconds
            self.iterations += iterations

    def iterations_left(self, index: int, pass_number: int) -> int:
        """The iterations of the frames' runs after this one, in this pass and the later ones."""
        if pass_number == 1:
            this_pass = (self.frames - index - 1) * self.first_pass_iterations
        else:
            after = index if pass_number % 2 == 0 else self.frames - index - 1
            this_pass = after * self.later_pass_iterations
        return max(this_pass, 0) + (self.passes - pass_number) * self.frames * \
            self.later_pass_iterations

    def reporter(self, index: int, pass_number: int, callback, clip_start: float):
        def report(progress):
            eta = None
            if self.frames is not None:
                per_iteration = (self.seconds / self.iterations if self.iterations else
                                 1 / max(progress.iterations_per_second, 1e-9))
                eta = progress.eta_seconds + self.iterations_left(index, pass_number) * \
                    per_iteration
            callback(VideoProgress(frame=index, frames=self.frames, pass_number=pass_number,
                                   passes=self.passes, progress=progress,
                                   elapsed=time.perf_counter() - clip_start, eta_seconds=eta))
        return report
