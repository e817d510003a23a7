"""The paper's objective and its gradient for an image larger than memory, computed tile by tile.

Exact, not an approximation: the losses and the gradient are those of the untiled image (to
float32 rounding). The image lives in host memory (numpy); the network only ever sees one tile
plus its halo, so its memory is bounded by the tile, not the image. See docs/tiling.md.

- Tiles' interiors partition the image; interior offsets are multiples of the pooling grid of the
  deepest layer used (2^halvings), and each tile runs through VGG19 with a halo of
  `required_halo(layers)` pixels (none beyond the image: there the network's own zero padding
  applies, as untiled). Every feature position whose pixel block lies in a tile's interior is
  then computed exactly from that tile: the tile OWNS it, and the owned positions of all tiles
  partition each layer's feature map.
- Content (equation 1) and total variation are sums over positions: each tile adds its owned
  part, and its gradient.
- Style (equation 4) is a function of the whole image's Gram matrices, G = sum over tiles of the
  owned positions' Grams. Pass 1 sums them (forward only); the loss and dL/dG then follow on the
  host. Pass 2 backpropagates <dL/dG, G_tile> through each tile, whose gradient is the tile's
  exact share of dL/dx, because dL/dx = sum_t dL/dG . dG_t/dx.
- Gradients of overlapping halos are summed into the image's gradient.
"""

import dataclasses
from typing import Dict, List, Mapping, Sequence, Tuple

import numpy as np
import tensorflow as tf

from . import vgg_layers
from .errors import ConfigError
from .losses import content_loss, gram_matrix


def receptive_radius(layer: str) -> int:
    """How many pixels beyond its own pixel block a feature of `layer` depends on, each side.

    A position of a layer with cumulative stride S (pixels per position) and radius R depends on
    pixels [jS - R, jS + S - 1 + R]. A 3x3 stride-1 convolution reads the neighbouring positions,
    so R grows by S; a 2x2 stride-2 pooling (average or max) reads two aligned positions, so R
    stays and S doubles. Pixels: S = 1, R = 0.
    """
    stride, radius = 1, 0
    for name in vgg_layers.LAYERS[:vgg_layers.depth(layer) + 1]:
        if name.endswith('_pool'):
            stride *= 2
        else:
            radius += stride
    return radius


def pooling_grid(layers: Sequence[str]) -> int:
    """Pixels per position of the deepest of `layers`: tiles start on multiples of it."""
    return 2 ** max(vgg_layers.halvings(name) for name in layers)


def required_halo(layers: Sequence[str]) -> int:
    """Pixels of context a tile needs on each side for its owned features at `layers` to be
    exact: the deepest layer's receptive radius, rounded up to the pooling grid so that the
    halo's start keeps every pooling window where it is in the whole image."""
    grid = pooling_grid(layers)
    radius = max(receptive_radius(name) for name in layers)
    return -(-radius // grid) * grid


@dataclasses.dataclass(frozen=True)
class Tile:
    """One tile: its interior [y0, y1) x [x0, x1) and the crop around it that the network sees,
    [cy0, cy1) x [cx0, cx1) (the interior plus the halo, cut at the image's edges)."""
    y0: int
    y1: int
    x0: int
    x1: int
    cy0: int
    cy1: int
    cx0: int
    cx1: int

    def owned(self, halvings: int) -> Tuple[int, int, int, int]:
        """The feature rows and columns [r0, r1) x [c0, c1) this tile owns at a layer with
        `halvings` poolings, in the whole feature map (valid pooling drops a ragged edge)."""
        return (self.y0 >> halvings, self.y1 >> halvings,
                self.x0 >> halvings, self.x1 >> halvings)

    def offsets(self) -> np.ndarray:
        """The interior in the crop's pixel coordinates: [y0, y1, x0, x1]."""
        return np.array([self.y0 - self.cy0, self.y1 - self.cy0,
                         self.x0 - self.cx0, self.x1 - self.cx0], np.int32)


def _spans(length: int, tile: int, halo: int):
    for start in range(0, length, tile):
        end = min(start + tile, length)
        yield start, end, max(start - halo, 0), min(end + halo, length)


def tile_grid(height: int, width: int, tile_size: int, layers: Sequence[str],
              halo: int = None) -> List[Tile]:
    """The tiles of a height x width image for an objective reading `layers`, row by row.

    `tile_size` (pixels of an interior's side) is rounded down to the pooling grid; the last
    tile of a row or column takes what is left. `halo`: default `required_halo(layers)`.
    """
    grid = pooling_grid(layers)
    if tile_size < grid:
        raise ConfigError(f'tile_size must be at least {grid} px (the pooling grid of layer '
                          f'{max(layers, key=vgg_layers.depth)}), got {tile_size}')
    tile = tile_size // grid * grid
    halo = required_halo(layers) if halo is None else halo
    return [Tile(y0, y1, x0, x1, cy0, cy1, cx0, cx1)
            for y0, y1, cy0, cy1 in _spans(height, tile, halo)
            for x0, x1, cx0, cx1 in _spans(width, tile, halo)]


def _owned(features, offsets, halvings):
    """The owned positions of a crop's feature map [1, h, w, C], as float32."""
    o = offsets // (2 ** halvings)
    return tf.cast(features[:, o[0]:o[1], o[2]:o[3], :], tf.float32)


def _owned_tv(crop, offsets):
    """Total variation of the pixel pairs whose first pixel is in the interior (those pairs
    partition the image's pairs; the second pixel is in the halo or beyond the image)."""
    y0, y1, x0, x1 = offsets[0], offsets[1], offsets[2], offsets[3]
    shape = tf.shape(crop)
    dy = crop[:, y0 + 1:tf.minimum(y1, shape[1] - 1) + 1, x0:x1] - \
        crop[:, y0:tf.minimum(y1, shape[1] - 1), x0:x1]
    dx = crop[:, y0:y1, x0 + 1:tf.minimum(x1, shape[2] - 1) + 1] - \
        crop[:, y0:y1, x0:tf.minimum(x1, shape[2] - 1)]
    return tf.reduce_sum(tf.square(dy)) + tf.reduce_sum(tf.square(dx))


class TiledObjective:
    """A `StyleObjective` evaluated tile by tile on host images (H x W x 3 float32, RGB 0..255).

    `value_and_gradient(image)` -> (losses, gradient): the objective's terms as floats (the keys
    of `StyleObjective.TERMS`) and d total / d image as an H x W x 3 float32 array, equal to the
    untiled ones. The two per-tile functions are compiled once per objective (relaxed shapes:
    a few traces cover the tile shapes), so build one per objective and reuse it.
    """

    def __init__(self, extractor, objective, tile_size: int):
        self.extractor = extractor
        self.objective = objective
        self.tile_size = int(tile_size)
        self.layers = tuple(vgg_layers.canonical(name) for name in objective.layers)
        self.halo = required_halo(self.layers)
        # (region, layer, target, mask, halvings) for every style term.
        self._style = [(r, name, target, mask, vgg_layers.halvings(name))
                       for r, region in enumerate(objective.regions)
                       for name, target, mask in region]
        self._style_layers = tuple(dict.fromkeys(name for _, name, *_ in self._style))
        # On the host, in float64: the targets, and the guided Grams' divisors (sum of mask^2).
        self._targets = [np.asarray(target, np.float64) for _, _, target, _, _ in self._style]
        self._mask_norms = [None if mask is None else
                            float(np.sum(np.square(np.asarray(mask, np.float64))))
                            for _, _, _, mask, _ in self._style]
        self._content = [(name, target, vgg_layers.halvings(name))
                         for name, target in objective.content_targets.items()]
        # Without autograph: plain TensorFlow code, as in optimize.py.
        self._grams = tf.function(self._tile_grams, autograph=False, reduce_retracing=True)
        self._gradient = tf.function(self._tile_gradient, autograph=False,
                                     reduce_retracing=True)

    def tiles(self, height: int, width: int) -> List[Tile]:
        return tile_grid(height, width, self.tile_size, self.layers, self.halo)

    # ---- the per-tile functions (graphs) ----

    def _tile_grams(self, crop, offsets, masks):
        """Pass 1: the Gram matrix of each style term over the tile's owned positions,
        unnormalised ([1, C, C]); features weighted by the owned part of the term's mask."""
        features = self.extractor(crop, layers=self._style_layers)
        grams = []
        for (_, name, _, _, halvings), mask in zip(self._style, masks):
            f = _owned(features[name], offsets, halvings)
            grams.append(gram_matrix(f if mask is None else f * mask))
        return grams

    def _tile_gradient(self, crop, offsets, content_targets, masks, residuals):
        """Pass 2: the tile's content and TV terms, and the gradient of its share of the total:
        its content and TV terms plus sum over style terms of <dL/dG, G_tile>."""
        objective = self.objective
        with tf.GradientTape() as tape:
            tape.watch(crop)
            features = self.extractor(crop, layers=self.layers)
            content = tf.constant(0.0)
            for (name, _, halvings), target in zip(self._content, content_targets):
                content += objective.content_layer_weights[name] * content_loss(
                    _owned(features[name], offsets, halvings), target)
            style = tf.constant(0.0)
            for (_, name, _, _, halvings), mask, residual in zip(self._style, masks, residuals):
                f = _owned(features[name], offsets, halvings)
                style += tf.reduce_sum(residual * gram_matrix(f if mask is None else f * mask))
            tv = _owned_tv(crop, offsets) if objective.tv_weight else tf.constant(0.0)
            share = objective.content_weight * content + style + objective.tv_weight * tv
        return content, tv, tape.gradient(share, crop)

    # ---- the host side ----

    def _masks(self, tile):
        """The owned part of each style term's mask (None where the term has none)."""
        masks = []
        for _, _, _, mask, halvings in self._style:
            r0, r1, c0, c1 = tile.owned(halvings)
            masks.append(None if mask is None else mask[:, r0:r1, c0:c1, :])
        return masks

    def _crop(self, image, tile):
        return tf.constant(image[None, tile.cy0:tile.cy1, tile.cx0:tile.cx1])

    def style_terms(self, image: np.ndarray):
        """Pass 1 and the style loss: (style loss, [dL_total / dG per style term])."""
        sums = [0.0] * len(self._style)
        for tile in self.tiles(*image.shape[:2]):
            grams = self._grams(self._crop(image, tile), tf.constant(tile.offsets()),
                                self._masks(tile))
            sums = [s + g.numpy().astype(np.float64) for s, g in zip(sums, grams)]
        style, residuals = 0.0, []
        height, width = image.shape[:2]
        for (_, name, _, _, halvings), gram, target, mask_norm in zip(
                self._style, sums, self._targets, self._mask_norms):
            # Normalised as position_mean_gram (no mask) or guided_gram divide the whole Gram.
            norm = (height >> halvings) * (width >> halvings) if mask_norm is None else mask_norm
            n = target.shape[-1]
            difference = gram / norm - target
            weight = self.objective.style_layer_weights[name]
            style += weight * float(np.sum(np.square(difference))) / (4.0 * n * n)
            residuals.append(tf.constant(
                (self.objective.style_weight * weight * 2.0 / (4.0 * n * n * norm)) * difference,
                tf.float32))
        return style, residuals

    def value_and_gradient(self, image: np.ndarray) -> Tuple[Dict[str, float], np.ndarray]:
        """The objective's terms at `image` (H x W x 3) and d total / d image (H x W x 3)."""
        image = np.asarray(image, np.float32)
        if image.ndim != 3:
            raise ValueError(f'image must be H x W x 3, got shape {image.shape}')
        style, residuals = self.style_terms(image) if self._style else (0.0, [])
        content = tv = 0.0
        gradient = np.zeros_like(image)
        for tile in self.tiles(*image.shape[:2]):
            targets = []
            for _, target, halvings in self._content:
                r0, r1, c0, c1 = tile.owned(halvings)
                targets.append(target[:, r0:r1, c0:c1, :])
            c, t, g = self._gradient(self._crop(image, tile), tf.constant(tile.offsets()),
                                     targets, self._masks(tile), residuals)
            content += float(c)
            tv += float(t)
            gradient[tile.cy0:tile.cy1, tile.cx0:tile.cx1] += g.numpy()[0]
        o = self.objective
        losses = {'content': content, 'style': style, 'tv': tv,
                  'total': o.content_weight * content + o.style_weight * style + o.tv_weight * tv}
        return losses, gradient


def tiled_value_and_gradient(extractor, objective, image: np.ndarray, tile_size: int
                             ) -> Tuple[Dict[str, float], np.ndarray]:
    """One tiled evaluation: `TiledObjective(extractor, objective, tile_size)
    .value_and_gradient(image)`. Build a TiledObjective instead to evaluate repeatedly."""
    return TiledObjective(extractor, objective, tile_size).value_and_gradient(image)
