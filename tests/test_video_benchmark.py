"""The video benchmark's clips and its iterations-to-reach count (no stylization here)."""

import numpy as np
import pytest

pytest.importorskip('cv2')

from tf_style.tools import video_benchmark as vb  # noqa: E402


def test_panning_clip_moves_by_the_step():
    image = np.random.default_rng(0).uniform(0, 255, (120, 160, 3)).astype(np.float32)
    frames = vb.panning_clip(image, frames=3, size=64, step=(3, 1))
    assert [f.shape for f in frames] == [(48, 64, 3)] * 3
    # frame t+1 at (x, y) shows what frame t shows at (x + 3, y + 1)
    np.testing.assert_array_equal(frames[1][:-1, :-3], frames[0][1:, 3:])
    assert not np.array_equal(frames[1], frames[0])


def test_zoom_rotate_clip_is_a_small_moving_clip():
    image = np.random.default_rng(1).uniform(0, 255, (90, 120, 3)).astype(np.float32)
    frames = vb.zoom_rotate_clip(image, frames=4, size=(48, 36))
    assert [f.shape for f in frames] == [(36, 48, 3)] * 4
    assert all(f.dtype == np.uint8 for f in frames)
    steps = [np.abs(b.astype(float) - a).mean() for a, b in zip(frames, frames[1:])]
    assert all(s > 0 for s in steps)


def test_iterations_to_reach_is_the_first_update_at_or_below_the_target():
    trajectory = [(0, 10.0), (1, 5.0), (2, 4.0), (3, 3.0)]
    assert vb.iterations_to_reach(trajectory, 2.5, 4, target=4.0) == 2
    assert vb.iterations_to_reach(trajectory, 2.5, 4, target=2.6) == 4   # only the final image
    assert vb.iterations_to_reach(trajectory, 2.5, 4, target=1.0) is None


def test_perceptual_leaves_out_the_weighted_temporal_term():
    losses = {'total': 110.0, 'temporal': 0.01}
    assert vb.perceptual(losses, 1000.0) == pytest.approx(100.0)
    assert vb.perceptual({'total': 7.0}, 0.0) == 7.0


@pytest.mark.slow
def test_measure_with_multi_pass_adds_a_way_to_the_table_and_strip(random_extractor):
    image = np.random.default_rng(2).uniform(0, 255, (60, 80, 3)).astype(np.float32)
    frames = vb.panning_clip(image, frames=5, size=32)
    runs = vb.measure(frames, image[:32, :32], random_extractor, 32, first=2, later=1,
                      temporal_weight=100.0, seed=0, passes=2)
    assert list(runs) == ['frame by frame', 'temporal', '2 passes']
    assert len(runs['2 passes']['outputs']) == 5 and runs['2 passes']['error'] >= 0
    text = vb.table(runs, first=2)
    assert '| 2 passes (temporal_weight=100) |' in text
    assert text.count('| warping error (0..255) |') == 2
    rows = [vb.strip(runs, count=4), vb.strip({k: runs[k] for k in list(runs)[:2]}, count=4)]
    assert rows[0].shape[0] > rows[1].shape[0]  # a third row of frames
