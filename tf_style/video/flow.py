"""Optical flow, warping and the reliability mask of Ruder, Dosovitskiy & Brox (GCPR 2016).

Convention, used by every function here: `flow(a, b)` is an H x W x 2 float32 array of (dx, dy)
on the pixel grid of `a` such that the point seen at pixel p of `a` is seen at p + flow(a, b)[p]
in `b` (OpenCV's convention):

    a[p] ~ b[p + flow(a, b)[p]]        and so        warp(b, flow(a, b)) ~ a.

To carry frame t-1 (or its stylization) onto frame t, warp it by the *backward* flow
flow(frame_t, frame_t-1). `consistency_mask(flow(t-1, t), flow(t, t-1))` is the paper's c on
frame t's grid. Pixels are at integer positions; x is the column, y the row.

No TensorFlow here: flow runs on the CPU with OpenCV (opencv-python-headless, the `video` extra).
The paper uses DeepFlow / EpicFlow; OpenCV's DIS (default) or Farneback flows are what a pip
install provides, and are a hundred times faster.
"""

import numpy as np

from ..errors import VideoError

METHODS = ('dis', 'farneback')


def _cv2():
    try:
        import cv2
    except ImportError:
        raise VideoError('video needs OpenCV: pip install "tf_style[video]" '
                         '(opencv-python-headless)') from None
    return cv2


def _gray(image: np.ndarray) -> np.ndarray:
    """H x W x 3 RGB (uint8 or float, 0..255) -> H x W uint8 luminance, as OpenCV's flows take."""
    cv2 = _cv2()
    rgb = np.clip(np.round(np.asarray(image, np.float32)), 0, 255).astype(np.uint8)
    return cv2.cvtColor(np.ascontiguousarray(rgb), cv2.COLOR_RGB2GRAY)


def flow(a: np.ndarray, b: np.ndarray, method: str = 'dis') -> np.ndarray:
    """The optical flow from frame `a` to frame `b` (H x W x 3 RGB, 0..255): H x W x 2 float32
    (dx, dy) with a[p] ~ b[p + flow[p]] (see the module docstring).

    method: 'dis' (dense inverse search, Kroeger et al. 2016, OpenCV's medium preset) or
    'farneback' (polynomial expansion, Farneback 2003).
    """
    if method not in METHODS:
        raise VideoError(f'flow must be one of {", ".join(METHODS)}, got {method!r}', 'flow')
    if np.shape(a) != np.shape(b) or np.ndim(a) != 3:
        raise VideoError(f'flow: frames of different shapes {np.shape(a)} and {np.shape(b)}')
    cv2 = _cv2()
    ga, gb = _gray(a), _gray(b)
    if method == 'dis':
        dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)
        result = dis.calc(ga, gb, None)
    else:
        result = cv2.calcOpticalFlowFarneback(ga, gb, None, pyr_scale=0.5, levels=4, winsize=15,
                                              iterations=3, poly_n=5, poly_sigma=1.2, flags=0)
    return np.asarray(result, np.float32)


def flows(previous: np.ndarray, current: np.ndarray, method: str = 'dis'):
    """(forward, backward) = (flow(previous, current), flow(current, previous))."""
    return flow(previous, current, method), flow(current, previous, method)


def warp(image: np.ndarray, flow_field: np.ndarray) -> np.ndarray:
    """`image` (H x W x C, C <= 4, or H x W) resampled along `flow_field` (H x W x 2):
    out[p] = image[p + flow_field[p]], bilinear; float32.

    Where p + flow_field[p] falls outside the image the nearest edge pixel is taken
    (BORDER_REPLICATE); those pixels are disocclusions, which `consistency_mask` marks 0.
    """
    cv2 = _cv2()
    h, w = flow_field.shape[:2]
    if np.shape(image)[:2] != (h, w):
        raise VideoError(f'warp: image {np.shape(image)[:2]} and flow {(h, w)} differ in size')
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
    map_x = xs + flow_field[..., 0]
    map_y = ys + flow_field[..., 1]
    return cv2.remap(np.asarray(image, np.float32), map_x, map_y, interpolation=cv2.INTER_LINEAR,
                     borderMode=cv2.BORDER_REPLICATE)


def inside(flow_field: np.ndarray) -> np.ndarray:
    """H x W bool: where p + flow_field[p] lies within the image (bilinear support included)."""
    h, w = flow_field.shape[:2]
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
    x, y = xs + flow_field[..., 0], ys + flow_field[..., 1]
    return (x >= 0) & (x <= w - 1) & (y >= 0) & (y <= h - 1)


def consistency_mask(forward: np.ndarray, backward: np.ndarray) -> np.ndarray:
    """The paper's per-pixel weight c in {0, 1} on the second frame's grid (H x W float32).

    forward = flow(previous, current) = w, backward = flow(current, previous) = ŵ. After Ruder et
    al., section 3 (from Sundaram, Brox & Keutzer, ECCV 2010), c is 0 where
    - disocclusion: the forward flow carried to the current frame, w~(p) = w(p + ŵ(p)), is not
      about the opposite of the backward flow: |w~ + ŵ|² > 0.01 (|w~|² + |ŵ|²) + 0.5;
    - motion boundary: |∇û|² + |∇v̂|² > 0.01 |ŵ|² + 0.002;
    and, not stated in the paper but implied by it, where p + ŵ(p) leaves the previous frame (a
    strip the camera uncovered: there is nothing to carry over).
    """
    if forward.shape != backward.shape:
        raise VideoError(f'consistency_mask: flows of shapes {forward.shape} and '
                         f'{backward.shape}')
    carried = warp(forward, backward)                              # w~ on the current grid
    disoccluded = (np.sum((carried + backward) ** 2, axis=-1) >
                   0.01 * (np.sum(carried ** 2, axis=-1) + np.sum(backward ** 2, axis=-1)) + 0.5)
    du_dy, du_dx = np.gradient(backward[..., 0])
    dv_dy, dv_dx = np.gradient(backward[..., 1])
    boundary = (du_dx ** 2 + du_dy ** 2 + dv_dx ** 2 + dv_dy ** 2 >
                0.01 * np.sum(backward ** 2, axis=-1) + 0.002)
    return (~disoccluded & ~boundary & inside(backward)).astype(np.float32)
