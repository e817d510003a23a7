"""Spatial control: region masks and guided Gram matrices (Gatys et al., CVPR 2017, section 4).

A mask is an H x W float array in 0..1 (1: the region). Content mask r says where style r goes in
the output; style mask r (optional) says which part of style image r to take the texture from.
At each layer the masks are average-pooled exactly as the network pools its features, so a
mask of ones stays ones and the guided Gram of the whole image is the ordinary one.
"""

from typing import List, Sequence

import numpy as np

from . import images, vgg_layers
from .errors import ConfigError

# More distinct colours than this in a label image means it is not flat (a JPEG, anti-aliasing).
MAX_LABELS = 64


def load_mask(path: str) -> np.ndarray:
    """An image file as a mask: its gray level / 255 (white = inside the region)."""
    return images.load_image(path).astype(np.float32).mean(axis=-1) / 255.0


def masks_from_labels(labels: np.ndarray, regions: int) -> List[np.ndarray]:
    """Masks from a label image (H x W x 3): one region per distinct colour.

    Colours are taken in order of increasing R + G + B (then R, G, B), so black is the first
    region; the first `regions` of them become masks, and any further colours are areas no style
    covers.
    """
    flat = np.asarray(labels, np.uint8).reshape(-1, 3)
    colours = np.unique(flat, axis=0)
    if len(colours) > MAX_LABELS:
        raise ConfigError(f'the label image has {len(colours)} colours: paint regions in flat '
                          f'colours (at most {MAX_LABELS}) and save it losslessly (PNG)')
    order = sorted(range(len(colours)), key=lambda i: (int(colours[i].sum()), *colours[i]))
    if len(colours) < regions:
        raise ConfigError(f'the label image has {len(colours)} colour(s) but there are {regions} '
                          'style images: paint one region per style')
    return [np.all(labels == colours[i], axis=-1).astype(np.float32) for i in order[:regions]]


def resize_mask(mask: np.ndarray, size) -> np.ndarray:
    """A mask resized to `size` = (height, width), values kept in 0..1."""
    if mask.shape == tuple(size):
        return np.asarray(mask, np.float32)
    return images.resize_to(np.asarray(mask, np.float32)[..., None] * 255.0, size)[..., 0] / 255.0


def check_masks(masks: Sequence[np.ndarray], count: int, what: str) -> None:
    if len(masks) != count:
        raise ConfigError(f'{len(masks)} {what} for {count} style image(s): give one per style')
    for mask in masks:
        if mask.ndim != 2 or not np.all((mask >= 0) & (mask <= 1)):
            raise ConfigError(f'{what} must be H x W arrays of values in 0..1')


def at_layers(mask: np.ndarray, layers: Sequence[str]):
    """{layer: [1, h, w, 1] float32 mask} at each layer's resolution, as the network pools."""
    import tensorflow as tf  # here, so that masks are checked before TensorFlow loads
    current = tf.constant(np.asarray(mask, np.float32)[None, :, :, None])
    by_halvings = [current]
    for _ in range(max(map(vgg_layers.halvings, layers))):
        current = tf.nn.avg_pool2d(current, 2, 2, 'VALID')
        by_halvings.append(current)
    return {name: by_halvings[vgg_layers.halvings(name)] for name in layers}
