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
next, so a caller can stream and memory does not grow with the clip. Only the previous frame and
its stylization are kept.

Where we depart from the paper: optical flow is OpenCV's DIS (or Farneback), not DeepFlow or
EpicFlow; the objective is this project's (tf_style.stylize), with its weights, optimizers and
controls; the multi-pass algorithm (section 3.3) is not built.
"""

import collections
import dataclasses
import time
from typing import Callable, Iterable, Iterator, List, Optional, Sequence, Union

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


@dataclasses.dataclass
class VideoProgress:
    """What a stylize_video callback receives: the frame's stylize Progress and the clip's."""
    frame: int                  # 0-based index of the frame being stylized
    frames: Optional[int]       # the clip's frame count, when the caller gave it
    progress: object            # tf_style.Progress of this frame's run
    elapsed: float              # seconds since the clip began
    # Remaining seconds for the clip (None without `frames`): this frame's ETA plus the later
    # frames at the mean time per later frame so far (or per iteration of the first frame).
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


class FrameStopped(Exception):
    """A frame's run stopped early (should_stop, or a numerical fault): the clip is not done.

    `frame` is its index, `result` its partial StylizeResult; frames before it were yielded."""

    def __init__(self, frame: int, result):
        super().__init__(f'frame {frame + 1}: {result.stop_reason}')
        self.frame = frame
        self.result = result


def stylize_video(frames: Iterable[np.ndarray], style, **options) -> Iterator[np.ndarray]:
    """Yields each frame of `frames` stylized (H x W x 3 uint8, long side `image_size`), as
    soon as it is done. Options as `stylize_video_results`."""
    for done in stylize_video_results(frames, style, **options):
        yield done.image


def stylize_video_results(
        frames: Iterable[np.ndarray], style: Union[np.ndarray, Sequence[np.ndarray]], *,
        temporal_weight: float = TEMPORAL_WEIGHT,
        long_term: Union[bool, Sequence[int]] = False, passes: int = 1,
        first_frame_iterations: int = FIRST_FRAME_ITERATIONS,
        iterations: int = LATER_FRAME_ITERATIONS, flow: str = 'dis',
        warped_start: Optional[bool] = None,
        callback: Optional[Callable[[VideoProgress], None]] = None,
        frame_count: Optional[int] = None, extractor=None,
        finished: Sequence[np.ndarray] = (), checkpointer_for: Optional[Callable] = None,
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
    it keeps that many earlier frames. `passes` > 1 (multi-pass) is not built: ConfigError.
    Resuming a clip: `finished` are the results of its first frames (uint8, as yielded before),
    which are not stylized again nor yielded; `checkpointer_for(index)` gives each frame's
    `tf_style.checkpoint.Checkpointer` (a frame's run then resumes from its checkpoint).

    Raises FrameStopped when a frame's run stops early.
    """
    from ..network import build_extractor
    from ..optimize import CompiledSteps
    from .. import stylize

    _check_options(temporal_weight, long_term, passes, first_frame_iterations, iterations, flow,
                   warped_start, stylize_options)
    config = StyleTransferConfig(**{k: v for k, v in stylize_options.items()
                                    if k in _CONFIG_FIELDS})
    styles = [style] if isinstance(style, np.ndarray) and style.ndim == 3 else list(style)
    clip_start = time.perf_counter()
    if warped_start is None:
        warped_start = temporal_weight > 0
    timing = _Timing(frame_count, iterations if warped_start else first_frame_iterations)
    offsets = _offsets(long_term)
    history = collections.deque(maxlen=max(offsets))  # (frame, result), newest first
    previous_frame = None
    steps = CompiledSteps()  # the frames share their compiled steps
    for index, frame in enumerate(frames):
        frame = images.resize_long_side(frame, config.image_size)
        if previous_frame is not None and frame.shape != previous_frame.shape:
            raise ConfigError(f'frame {index + 1} is {frame.shape[1]}x{frame.shape[0]} at this '
                              f'image_size, frame {index} {previous_frame.shape[1]}x'
                              f'{previous_frame.shape[0]}: every frame must be the same size')
        if extractor is None:
            extractor = build_extractor(config.weights, config.pooling, calibration_images=[
                frame, *(images.resize_long_side(s, config.image_size) for s in styles)]
                if config.normalize_weights else None)
        if index < len(finished):
            previous_frame = frame
            history.appendleft((frame, np.asarray(finished[index])))
            continue
        options = dict(stylize_options, extractor=extractor, steps=steps,
                       callback=timing.reporter(index, callback, clip_start) if callback else None)
        if checkpointer_for is not None:
            options['checkpointer'] = checkpointer_for(index)
        warped = target = mask = None
        if previous_frame is None or not warped_start:
            options['iterations'] = first_frame_iterations
        else:
            carried = [carry_over(history[j - 1][0], frame, history[j - 1][1], flow)
                       for j in offsets if j <= len(history)]
            warped = carried[0][0]
            target, mask = combine_long_term(carried)
            options.update(iterations=iterations, init='image', init_image=warped,
                           init_noise_blend=0.0)
            if temporal_weight:
                options.update(temporal_weight=temporal_weight, temporal_target=target,
                               temporal_mask=mask)
        began = time.perf_counter()
        result = stylize(frame, styles, **options)
        if not result.completed:
            raise FrameStopped(index, result)
        timing.finished(index, time.perf_counter() - began)
        previous_frame = frame
        history.appendleft((frame, result.image))
        yield FrameResult(index=index, image=result.image, result=result, warped=warped,
                          target=target, mask=mask)


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
    if passes != 1:
        raise ConfigError(f'passes must be 1 (multi-pass is not built yet), got {passes!r}',
                          'passes')
    for name, value in (('first_frame_iterations', first_frame_iterations),
                        ('iterations', iterations)):
        if not (isinstance(value, int) and value >= 0):
            raise ConfigError(f'{name} must be a non-negative integer, got {value!r}', name)
    if flow not in optical_flow.METHODS:
        raise ConfigError(f'flow must be one of {", ".join(optical_flow.METHODS)}, got {flow!r}',
                          'flow')
    for name in ('init_image', 'temporal_target', 'temporal_mask', 'content_masks',
                 'style_masks'):
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
    """Seconds per frame so far, for the clip's ETA."""

    def __init__(self, frames: Optional[int], later_iterations: int):
        self.frames = frames
        self.later_iterations = later_iterations
        self.later: List[float] = []

    def finished(self, index: int, seconds: float) -> None:
        if index > 0:
            self.later.append(seconds)

    def per_later_frame(self, iterations_per_second: float) -> float:
        if self.later:
            return sum(self.later) / len(self.later)
        return self.later_iterations / max(iterations_per_second, 1e-9)

    def reporter(self, index: int, callback, clip_start: float):
        def report(progress):
            eta = None
            if self.frames is not None:
                left = max(self.frames - index - 1, 0)
                eta = progress.eta_seconds + left * self.per_later_frame(
                    progress.iterations_per_second)
            callback(VideoProgress(frame=index, frames=self.frames, progress=progress,
                                   elapsed=time.perf_counter() - clip_start, eta_seconds=eta))
        return report
