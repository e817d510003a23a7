"""Colour preservation after Gatys, Ecker, Bethge, Hertzmann & Shechtman, *Controlling
Perceptual Factors in Neural Style Transfer* (CVPR 2017), section 5.

Two ways to keep the content photo's colours while taking the painting's texture:

- 'luminance': stylize luminance only. The style's luminance is shifted and scaled to the content
  luminance's mean and standard deviation; both images become gray (Y in all three channels);
  the stylized luminance is recombined with the content's chroma (YIQ's I and Q).
- 'histogram': before stylizing, transform the style image's colours linearly so their mean and
  covariance are the content's (x' = A (x - mu_s) + mu_c with A = Sigma_c^1/2 Sigma_s^-1/2, the
  symmetric square roots).

Arrays are H x W x 3 RGB, float 0..255. No TensorFlow here.
"""

from typing import Sequence, Tuple

import numpy as np

from . import images

MODES = ('none', 'luminance', 'histogram')

# NTSC YIQ; its inverse maps Y with I = Q = 0 to gray, so the luminance is the gray level.
_RGB_TO_YIQ = np.array([[0.299, 0.587, 0.114],
                        [0.595716, -0.274453, -0.321263],
                        [0.211456, -0.522591, 0.311135]])
_YIQ_TO_RGB = np.linalg.inv(_RGB_TO_YIQ)


def rgb_to_yiq(image: np.ndarray) -> np.ndarray:
    return np.asarray(image, np.float64) @ _RGB_TO_YIQ.T


def yiq_to_rgb(image: np.ndarray) -> np.ndarray:
    return np.asarray(image, np.float64) @ _YIQ_TO_RGB.T


def luminance(image: np.ndarray) -> np.ndarray:
    """Y of YIQ, H x W."""
    return rgb_to_yiq(image)[..., 0]


def gray(y: np.ndarray) -> np.ndarray:
    """A luminance map as an RGB image (Y in every channel), float32."""
    return np.repeat(np.clip(y, 0, 255)[..., None], 3, axis=-1).astype(np.float32)


def match_luminance(style: np.ndarray, content: np.ndarray) -> np.ndarray:
    """The style's luminance with the content luminance's mean and standard deviation, H x W."""
    ys, yc = luminance(style), luminance(content)
    return (ys - ys.mean()) * (yc.std() / max(ys.std(), 1e-6)) + yc.mean()


def with_chroma(image: np.ndarray, chroma_source: np.ndarray) -> np.ndarray:
    """`image`'s luminance with `chroma_source`'s I and Q (same size), RGB float32 0..255."""
    yiq = rgb_to_yiq(chroma_source)
    yiq[..., 0] = luminance(image)
    return np.clip(yiq_to_rgb(yiq), 0, 255).astype(np.float32)


def _sqrtm(covariance: np.ndarray, power: float) -> np.ndarray:
    """covariance ** power for a symmetric positive semi-definite 3 x 3 matrix."""
    values, vectors = np.linalg.eigh(covariance)
    # A flat image (a colour channel without variance) has zero eigenvalues: keep it invertible.
    values = np.maximum(values, 1e-6)
    return (vectors * values ** power) @ vectors.T


def colour_statistics(image: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    """Mean (3,) and covariance (3, 3) of an image's RGB values."""
    pixels = np.asarray(image, np.float64).reshape(-1, 3)
    return pixels.mean(axis=0), np.cov(pixels, rowvar=False, bias=True)


def match_histogram(image: np.ndarray, reference: np.ndarray, clip: bool = True) -> np.ndarray:
    """`image` with its colours' mean and covariance moved to the reference's.

    preserve_colors='histogram' moves the style image to the content's colours;
    init='content_in_style_colors' moves the content image to the style's.
    """
    mu_i, cov_i = colour_statistics(image)
    mu_r, cov_r = colour_statistics(reference)
    a = _sqrtm(cov_r, 0.5) @ _sqrtm(cov_i, -0.5)
    matched = (np.asarray(image, np.float64) - mu_i) @ a.T + mu_r
    return (np.clip(matched, 0, 255) if clip else matched).astype(np.float32)


def prepare(mode: str, content: np.ndarray, styles: Sequence[np.ndarray]):
    """(content, styles) as the network should see them for `mode`."""
    if mode == 'luminance':
        return gray(luminance(content)), [gray(match_luminance(s, content)) for s in styles]
    if mode == 'histogram':
        return content, [match_histogram(s, content) for s in styles]
    return content, list(styles)


def finish(mode: str, image: np.ndarray, content: np.ndarray) -> np.ndarray:
    """The output for `mode` from the optimised image (content: the original, any size)."""
    if mode != 'luminance':
        return image
    return with_chroma(image, images.resize_to(content, image.shape[:2]))
