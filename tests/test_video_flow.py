"""Optical flow, warping and the reliability mask (tf_style/video/flow.py) on clips with known
motion: a smooth random texture seen through a window that moves by (DX, DY) pixels."""

import numpy as np
import pytest

cv2 = pytest.importorskip('cv2')

from tf_style.errors import VideoError  # noqa: E402
from tf_style.video import flow as F  # noqa: E402

DX, DY = 3, 2
H, W = 48, 64
INNER = (slice(8, -8), slice(8, -8))


def texture(shape, seed):
    """Seeded noise, blurred so that it has the structure flow needs, stretched to 0..255."""
    noise = np.random.default_rng(seed).uniform(0, 255, shape).astype(np.float32)
    noise = cv2.GaussianBlur(noise, (0, 0), 2.0)
    return np.clip((noise - noise.mean()) / noise.std() * 50 + 128, 0, 255)


def pan():
    """Frames a and b of a camera pan: b's window is (DX, DY) right of and below a's, so the
    scene moves by (-DX, -DY): a[p] = b[p - (DX, DY)]."""
    scene = texture((H + 20, W + 20, 3), seed=0)
    return scene[5:5 + H, 5:5 + W], scene[5 + DY:5 + DY + H, 5 + DX:5 + DX + W]


@pytest.mark.parametrize('method', F.METHODS)
def test_flow_of_a_pan_is_right_within_half_a_pixel_both_ways(method):
    a, b = pan()
    forward, backward = F.flows(a, b, method)
    assert forward.shape == (H, W, 2) and forward.dtype == np.float32
    assert np.abs(forward[INNER] - [-DX, -DY]).max() < 0.5
    assert np.abs(backward[INNER] - [DX, DY]).max() < 0.5


@pytest.mark.parametrize('method', F.METHODS)
def test_warp_by_the_flow_reproduces_the_other_frame(method):
    a, b = pan()
    forward, backward = F.flows(a, b, method)
    # warp(b, flow(a, b)) ~ a and warp(a, flow(b, a)) ~ b, away from the uncovered border.
    assert np.abs(F.warp(b, forward) - a)[INNER].mean() < 2.0
    assert np.abs(F.warp(a, backward) - b)[INNER].mean() < 2.0
    # Without the warp the frames differ by far more: the test can tell.
    assert np.abs(a - b)[INNER].mean() > 10.0


def test_warp_by_a_whole_pixel_shift_is_exact_and_replicates_the_border():
    image = np.arange(5 * 6 * 3, dtype=np.float32).reshape(5, 6, 3)
    shift = np.zeros((5, 6, 2), np.float32)
    shift[..., 0] = 2  # out[y, x] = image[y, x + 2]
    out = F.warp(image, shift)
    np.testing.assert_array_equal(out[:, :4], image[:, 2:])
    np.testing.assert_array_equal(out[:, 4:], image[:, 5:6].repeat(2, axis=1))


@pytest.mark.parametrize('method', F.METHODS)
def test_mask_is_0_on_the_uncovered_border_and_1_inside(method):
    a, b = pan()
    c = F.consistency_mask(*F.flows(a, b, method))
    assert c.shape == (H, W) and set(np.unique(c)) <= {0.0, 1.0}
    # b's last DX columns and DY rows show what a never saw.
    assert c[:, -DX:].max() == 0 and c[-DY:, :].max() == 0
    assert c[INNER].mean() > 0.95


def test_mask_is_0_where_a_moving_square_uncovers_the_background():
    background, square = texture((64, 80, 3), 1), texture((20, 20, 3), 2)
    a, b = background.copy(), background.copy()
    a[20:40, 20:40] = square
    b[20:40, 26:46] = square  # the square moves 6 px right: b[20:40, 20:26] is uncovered
    c = F.consistency_mask(*F.flows(a, b, 'dis'))
    assert c[20:40, 20:26].mean() < 0.1
    assert c[4:12, 4:76].mean() > 0.95  # background far from the square


def test_mask_forward_backward_check_on_given_flows():
    backward = np.zeros((10, 12, 2), np.float32)
    backward[:, :6, 0] = 4.0
    assert F.consistency_mask(-backward, backward)[:, 7:].min() == 1
    # Forward says still, backward says moving: the check fails where backward moves.
    c = F.consistency_mask(np.zeros_like(backward), backward)
    assert c[:, :5].max() == 0 and c[:, 7:].min() == 1


def test_mask_is_0_at_a_motion_boundary_on_given_flows():
    # The right half moves up by one pixel, the left half stands still: consistent both ways
    # (forward = -backward, constant along y), with a motion boundary at columns 5-6.
    backward = np.zeros((10, 12, 2), np.float32)
    backward[:, 6:, 1] = 1.0
    c = F.consistency_mask(-backward, backward)
    assert c[:-1, 5:7].max() == 0
    assert c[:-1, :5].min() == 1 and c[:-1, 7:].min() == 1
    # The same motion without the boundary: reliable everywhere (the bottom row of a frame
    # moving up shows what the previous frame did not).
    backward[:, :, 1] = 1.0
    c = F.consistency_mask(-backward, backward)
    assert c[:-1].min() == 1 and c[-1].max() == 0


def test_bad_method_and_shapes_raise_video_error():
    a, b = pan()
    with pytest.raises(VideoError, match='flow must be one of'):
        F.flow(a, b, 'deepflow')
    with pytest.raises(VideoError, match='different shapes'):
        F.flow(a, b[:-1])
