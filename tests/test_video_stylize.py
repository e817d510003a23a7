"""The frame loop (tf_style/video/stylize_video.py) on a 6-frame 48x36 synthetic pan."""

import numpy as np
import pytest

cv2 = pytest.importorskip('cv2')

from tf_style import images  # noqa: E402
from tf_style.errors import ConfigError  # noqa: E402
from tf_style.video import flow as F  # noqa: E402
from tf_style.video import stylize_video as SV  # noqa: E402

FRAMES, SIZE = 6, 48


def texture(shape, seed):
    noise = np.random.default_rng(seed).uniform(0, 255, shape).astype(np.float32)
    noise = cv2.GaussianBlur(noise, (0, 0), 2.0)
    return np.clip((noise - noise.mean()) / noise.std() * 50 + 128, 0, 255)


def pan():
    """A 48x36 window moving 2 px right per frame across a textured scene."""
    scene = texture((60, 80, 3), 0)
    return [scene[6:42, 2 * t:2 * t + SIZE] for t in range(FRAMES)]


STYLE = texture((48, 48, 3), 5)
OPTIONS = dict(image_size=SIZE, weights='random', seed=0)


class Counted:
    """An iterator over frames that counts how many were taken."""

    def __init__(self, frames):
        self.frames, self.taken = frames, 0

    def __iter__(self):
        for frame in self.frames:
            self.taken += 1
            yield frame


@pytest.mark.slow
def test_yields_one_frame_per_input_frame_lazily(random_extractor):
    source = Counted(pan())
    calls = []
    out = SV.stylize_video(source, STYLE, extractor=random_extractor, first_frame_iterations=3,
                           iterations=2, temporal_weight=0, warped_start=True,
                           frame_count=FRAMES,
                           callback=calls.append, report_every=1, **OPTIONS)
    assert source.taken == 0  # nothing happens before the first frame is asked for
    first = next(out)
    assert first.shape == (36, SIZE, 3) and first.dtype == np.uint8
    assert source.taken == 1 and {p.frame for p in calls} == {0}  # frame 2 not begun
    rest = list(out)
    assert len(rest) == FRAMES - 1 and source.taken == FRAMES
    assert [p.frame for p in calls] == [0] * 3 + sum([[t] * 2 for t in range(1, FRAMES)], [])
    assert calls[-1].eta_seconds == pytest.approx(0, abs=1e-6) and calls[0].eta_seconds > 0


def test_later_frames_start_from_the_previous_result_warped(random_extractor):
    frames = pan()
    results = list(SV.stylize_video_results(
        iter(frames[:3]), STYLE, extractor=random_extractor, first_frame_iterations=3,
        iterations=0, temporal_weight=0, warped_start=True, **OPTIONS))
    # With no iterations a later frame is its start: the previous result carried by the flow.
    for t in (1, 2):
        backward = F.flow(frames[t], frames[t - 1])
        expected = images.to_uint8(F.warp(results[t - 1].image, backward))
        np.testing.assert_array_equal(results[t].image, expected)
        assert results[t].mask.shape == (36, SIZE) and results[t].mask[:, -2:].max() == 0
    assert np.abs(results[1].image.astype(int) - results[0].image).mean() > 1  # it moved


def test_temporal_weight_0_is_frame_by_frame(random_extractor):
    frames = pan()
    # Each frame starts as init says, not from the previous result: with init='content' and no
    # iterations, each output is its own frame.
    results = list(SV.stylize_video_results(
        iter(frames[:3]), STYLE, extractor=random_extractor, first_frame_iterations=0,
        iterations=5, temporal_weight=0, init='content', **OPTIONS))
    for frame, result in zip(frames, results):
        np.testing.assert_array_equal(result.image, images.to_uint8(frame))
        assert result.result.iterations == 0


def test_long_term_target_is_the_nearest_reliable_frame():
    w1, w2, w4 = (np.full((2, 3, 3), v, np.float32) for v in (10.0, 20.0, 40.0))
    c1 = np.array([[1, 0, 0], [1, 0, 0]], np.float32)
    c2 = np.array([[1, 1, 0], [0, 0, 0]], np.float32)
    c4 = np.array([[1, 1, 1], [0, 1, 0]], np.float32)
    target, mask = SV.combine_long_term([(w1, c1), (w2, c2), (w4, c4)])
    np.testing.assert_array_equal(target[..., 0], [[10, 20, 40], [10, 40, 10]])
    np.testing.assert_array_equal(mask, [[1, 1, 1], [1, 1, 0]])
    target, mask = SV.combine_long_term([(w1, c1)])  # J = {1}: the short-term loss
    np.testing.assert_array_equal(target, w1)
    np.testing.assert_array_equal(mask, c1)


@pytest.mark.slow
def test_long_term_run_uses_the_earlier_frames(random_extractor):
    # The camera goes right and back: what frame 2 uncovers at its left, frame 1 did not see,
    # frame 0 did.
    frames = [pan()[i] for i in (0, 2, 0)]
    results = list(SV.stylize_video_results(
        iter(frames), STYLE, extractor=random_extractor, first_frame_iterations=2,
        iterations=1, temporal_weight=1e3, long_term=(1, 2), **OPTIONS))
    third = results[2]
    w2, c2 = SV.carry_over(frames[0], frames[2], results[0].image)
    c1 = F.consistency_mask(*F.flows(frames[1], frames[2]))
    np.testing.assert_array_equal(third.mask, np.maximum(c1, c2))
    np.testing.assert_allclose(third.target[c1 == 1], third.warped[c1 == 1])
    only_2 = (c1 == 0) & (c2 == 1)
    assert only_2[:, :4].mean() > 0.5
    np.testing.assert_allclose(third.target[only_2], w2[only_2])
    assert third.result.losses['temporal'] > 0


def test_init_image_starts_the_first_frame(random_extractor):
    start = texture((36, SIZE, 3), 9)
    first = next(SV.stylize_video(iter(pan()), STYLE, extractor=random_extractor,
                                  first_frame_iterations=0, init='image', init_image=start,
                                  **OPTIONS))
    np.testing.assert_array_equal(first, images.to_uint8(start))


def test_multi_pass_start_blends_where_the_flow_is_reliable():
    own, warped = np.full((2, 3, 3), 10.0), np.full((2, 3, 3), 200.0)
    mask = np.array([[1, 0, 1], [0, 0, 1]], np.float32)
    start = SV.multi_pass_start(own, warped, mask)
    np.testing.assert_array_equal(start[..., 0], np.where(mask == 1, 200.0, 10.0))
    np.testing.assert_allclose(SV.multi_pass_start(own, warped, mask, blend=0.5)[0, 0], 105.0)


@pytest.mark.slow
def test_multi_pass_alternates_directions_and_starts_from_the_blend(random_extractor):
    frames = pan()[:4]
    options = dict(extractor=random_extractor, first_frame_iterations=2, iterations=0,
                   **OPTIONS)
    results = list(SV.stylize_video_results(iter(frames), STYLE, passes=3, **options))
    assert [(r.pass_number, r.index) for r in results] == (
        [(1, i) for i in range(4)] + [(2, i) for i in (3, 2, 1, 0)] + [(3, i) for i in range(4)])
    first, second = {r.index: r for r in results[:4]}, {r.index: r for r in results[4:8]}
    # Backward: the last frame starts from its own first-pass result (no iterations: is it);
    # each earlier one from the blend with the later frame's second-pass result, warped.
    np.testing.assert_array_equal(second[3].image, first[3].image)
    for t in (2, 1, 0):
        warped, mask = SV.carry_over(frames[t + 1], frames[t], second[t + 1].image)
        expected = images.to_uint8(SV.multi_pass_start(first[t].image, warped, mask))
        np.testing.assert_array_equal(second[t].image, expected)
        assert 0 < second[t].mask.mean() < 1 and second[t].mask[:, :2].max() == 0
    # stylize_video yields the last pass's frames, in clip order.
    streamed = list(SV.stylize_video(iter(frames), STYLE, passes=2, **options))
    np.testing.assert_array_equal(np.stack(streamed), np.stack([second[i].image for i in range(4)]))


def test_warping_error_is_0_for_the_input_and_large_for_noise():
    frames = pan()
    assert max(SV.warping_error(frames, frames)) < 2.0
    rng = np.random.default_rng(0)
    flicker = [np.clip(f + rng.normal(0, 30, f.shape), 0, 255) for f in frames]
    assert min(SV.warping_error(frames, flicker)) > 15.0


@pytest.mark.parametrize('options, message', [
    (dict(temporal_weight=-1), 'temporal_weight must be'),
    (dict(flow='deepflow'), 'flow must be one of'),
    (dict(iterations=-1), 'iterations must be'),
    (dict(long_term=(2, 4)), 'long_term must be'),
    (dict(long_term='often'), 'long_term must be'),
    (dict(passes=0), 'passes must be an integer'),
    (dict(passes=2, long_term=True), 'long_term works with passes=1'),
    (dict(temporal_weight=1.0, warped_start=False), 'needs warped_start'),
    (dict(temporal_mask=np.zeros((4, 4))), 'temporal_mask is per image'),
])
def test_bad_options_raise_config_error_before_any_frame_is_read(options, message):
    source = Counted(pan())
    with pytest.raises(ConfigError, match=message):
        next(SV.stylize_video(source, STYLE, **OPTIONS, **options))
    assert source.taken == 0


@pytest.mark.slow
def test_temporal_loss_lowers_the_warping_error(random_extractor):
    frames = pan()[:4]

    def error(**options):
        results = list(SV.stylize_video_results(
            iter(frames), STYLE, extractor=random_extractor, first_frame_iterations=20,
            iterations=10, **OPTIONS, **options))
        return np.mean(SV.warping_error(frames, [r.image for r in results])), results

    # temporal_weight=0 with the warped start (frame by frame is far worse still: see
    # test_temporal_weight_0_is_frame_by_frame and the measurements in the docs).
    without, _ = error(temporal_weight=0, warped_start=True)
    with_loss, results = error(temporal_weight=1e4)
    assert all(r.result.losses['temporal'] > 0 for r in results[1:])
    # The loss pulls each frame towards the warped previous one where the flow is reliable.
    assert with_loss < 0.7 * without, (with_loss, without)
