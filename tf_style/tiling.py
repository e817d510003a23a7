"""The paper's objective and its gradient for an image larger than memory, computed tile by tile.

Exact, not an approximation: the losses and the gradient are those of the untiled image (to
float32 rounding). The image lives in host memory (numpy); the network only ever sees one tile
plus its halo, so its memory is bounded by the tile, not the image. See docs/tiling.md.

- Tiles' interiors partition the image; interior offsets are multiples of the pooling grid of the
  deepest layer used (2^halvings), and each tile runs through VGG19 with a halo of
  `required_halo(layers)` pixels (none beyond the image: there the network's own zero padding
  applies, as untiled). Every feature position whose pixel block lies in a tile's interior is
  then computed exactly from that tile: the tile OWNS it, and the owned positions of all tiles
  partition each layer's feature map. Deeper layers need less of the halo, and each layer's
  output keeps only what the layers after it read (`_owned_features`).
- Content (equation 1) and total variation are sums over positions: each tile adds its owned
  part, and its gradient.
- Style (equation 4) is a function of the whole image's Gram matrices, G = sum over tiles of the
  owned positions' Grams. Pass 1 sums them (forward only); the loss and dL/dG then follow (in
  float64). Pass 2 backpropagates <dL/dG, G_tile> through each tile, whose gradient is the
  tile's exact share of dL/dx, because dL/dx = sum_t dL/dG . dG_t/dx. The largest tile is in
  both passes at once: pass 1 leaves it out, and its pass 2 adds its own Grams to the sums
  before dL/dG (a constant of the backward pass), so it runs forward once, not twice.
- Gradients of overlapping halos are summed into the image's gradient.

`TiledObjective(extractor, objective, tile_size).value_and_gradient(image)` is the evaluation;
`tiled_features` and `tiled_grams` compute an objective's targets the same way, for content and
style images too large for one pass of the network. Each takes `on_tile(what, done, count)`,
called after every tile: at poster sizes a pass over the tiles takes minutes.
"""

import dataclasses
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np
import tensorflow as tf

from . import vgg_layers
from .errors import ConfigError
from .losses import StyleObjective, gram_matrix, total_variation_loss
from .network import preprocess
# The halo's geometry is VGG19's, free of TensorFlow (memory.py sizes tiles with it).
from .vgg_layers import pooling_grid, receptive_radius, required_halo  # noqa: F401


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

    def pixels(self) -> int:
        """The crop's pixels: what the network computes for this tile."""
        return (self.cy1 - self.cy0) * (self.cx1 - self.cx0)

    def offsets(self) -> np.ndarray:
        """The interior in the crop's pixel coordinates: [y0, y1, x0, x1]."""
        return np.array([self.y0 - self.cy0, self.y1 - self.cy0,
                         self.x0 - self.cx0, self.x1 - self.cx0], np.int32)


# Per evaluation every crop runs forward and backward (pass 2), and every crop but the largest
# also forward alone (pass 1; the largest runs once for both passes), against one forward and
# one backward untiled, where the backward costs about a forward: up to 1.5x before any halo.
PASSES_COST = 1.5


def relative_cost(height: int, width: int, tile_size: int, layers: Sequence[str]) -> float:
    """An evaluation's predicted cost with `tile_size` (0: untiled) ÷ the untiled one: the two
    passes over the crops, counted in the network's multiply-adds as `_owned_features` trims
    each crop ("What it costs" in docs/tiling.md)."""
    if not tile_size:
        return 1.0
    work = [_work(t, layers) for t in tile_grid(height, width, tile_size, layers)]
    whole = _work(Tile(0, height, 0, width, 0, height, 0, width), layers)
    return (PASSES_COST * sum(work) - (PASSES_COST - 1) * max(work)) / whole


def _work(tile: Tile, layers: Sequence[str]) -> float:
    """The multiply-adds of one forward pass over a tile's crop: each convolution runs on the
    interior plus what is left of each side's halo at its input (vgg_layers.margins)."""
    halos = (tile.y0 - tile.cy0, tile.cy1 - tile.y1, tile.x0 - tile.cx0, tile.cx1 - tile.x1)
    work, margin = 0.0, max(halos)
    for name, kept in vgg_layers.margins(layers).items():
        top, bottom, left, right = (min(halo, margin) for halo in halos)
        work += vgg_layers.multiply_adds(name) * (
            (tile.y1 - tile.y0 + top + bottom) * (tile.x1 - tile.x0 + left + right))
        margin = kept
    return work


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


# What `on_tile` is told each pass over the tiles does.
STYLE_TARGETS, CONTENT_TARGETS = 'style targets', 'content targets'
GRAMS, GRADIENT = 'Gram matrices', 'gradient'
OnTile = Optional[Callable[[str, int, int], None]]


def _each(tiles: List[Tile], what: str, on_tile: OnTile):
    """The tiles in order, telling `on_tile` (when given) after each one."""
    for done, tile in enumerate(tiles, 1):
        yield tile
        if on_tile is not None:
            on_tile(what, done, len(tiles))


def _owned_features(extractor, crop, offsets, layers: Sequence[str]):
    """{layer: the crop's owned features [1, h, w, C], as float32} for each of `layers`.

    The network runs a layer at a time, and each layer's output keeps only the context the
    layers after it still read (vgg_layers.margins): of an 80 px halo at the input, 64 px are
    left in block 3 and 16 px before conv5_1; the rest would be computed only to be thrown away.
    Trims are multiples of the pooling grid, so every pooling window stays where it is."""
    margins = vgg_layers.margins(layers)
    margin = max(margins.values())
    top = left = tf.constant(0)  # where x starts in the crop, in pixels
    x, owned = preprocess(crop), {}
    for name, layer in extractor.stages(layers):
        x = layer(x)
        step = 2 ** vgg_layers.halvings(name)  # pixels per position
        if margins[name] < margin:
            margin = margins[name]
            y0 = tf.maximum(offsets[0] - margin, top)
            x0 = tf.maximum(offsets[2] - margin, left)
            x = _window(x, (y0 - top) // step, (offsets[1] + margin - top) // step,
                        (x0 - left) // step, (offsets[3] + margin - left) // step)
            top, left = y0, x0
        if name in layers:
            owned[name] = tf.cast(_window(x, (offsets[0] - top) // step,
                                          (offsets[1] - top) // step, (offsets[2] - left) // step,
                                          (offsets[3] - left) // step), tf.float32)
    return owned


def _window(x, r0, r1, c0, c1):
    """x[:, r0:r1, c0:c1] (ends clipped to x), by tf.slice: its gradient is a pad, where a
    strided slice's (StridedSliceGrad) costs about what trimming saves (docs/tiling.md)."""
    shape = tf.shape(x)
    r1, c1 = tf.minimum(r1, shape[1]), tf.minimum(c1, shape[2])
    return tf.slice(x, [0, r0, c0, 0], [-1, r1 - r0, c1 - c0, -1])


def _any_size(value):
    """A TensorSpec for `value` whose height and width (of a rank-4 tensor) can be anything."""
    if value is None:
        return None
    shape = list(value.shape)
    if len(shape) == 4:
        shape[1:3] = None, None
    return tf.TensorSpec(shape, value.dtype)


def _compiled(function):
    """`function` as a tf.function without autograph (plain TensorFlow code, as in optimize.py),
    traced once for tiles of any height and width. Tiles differ in shape (image borders, the
    last row and column), and retracing per shape would cost time and, as several objects
    compile the same code, bring TensorFlow's retracing warnings."""
    compiled = tf.function(function, autograph=False)
    traced = []

    def call(*args):
        if not traced:
            traced.append(compiled.get_concrete_function(
                *tf.nest.map_structure(_any_size, args)))
        return compiled(*args)
    call.compiled = compiled
    return call


def _owned_gram(features, mask):
    """The unnormalised Gram [1, C, C] of a layer's owned features, weighted by the owned part of
    its mask (None: unweighted)."""
    return gram_matrix(features if mask is None else features * mask)


def _owned_grams(extractor, layers: Sequence[str]):
    """The compiled Gram pass for `layers` (repeats allowed: one per style term):
    (crop, offsets, masks) -> `_owned_gram` of each layer."""
    unique = tuple(dict.fromkeys(layers))

    def grams(crop, offsets, masks):
        features = _owned_features(extractor, crop, offsets, unique)
        return [_owned_gram(features[name], mask) for name, mask in zip(layers, masks)]
    return _compiled(grams)


def _owned_slice(array, tile, halvings):
    """The positions `tile` owns of a whole-image map [1, h, w, C] (None stays None)."""
    if array is None:
        return None
    r0, r1, c0, c1 = tile.owned(halvings)
    return array[:, r0:r1, c0:c1, :]


def _crop(image, tile):
    return tf.constant(image[None, tile.cy0:tile.cy1, tile.cx0:tile.cx1])


def _added(sums, grams):
    """Gram sums accumulated on the host in float64."""
    return [s + g.numpy().astype(np.float64) for s, g in zip(sums, grams)]


class TiledObjective:
    """A `StyleObjective` evaluated tile by tile on host images (H x W x 3 float32, RGB 0..255).

    `value_and_gradient(image)` -> (losses, gradient): the objective's terms as floats (the keys
    of `StyleObjective.TERMS`) and d total / d image as an H x W x 3 float32 array, equal to the
    untiled ones; `value(image)` the terms alone (one forward pass over the tiles, about a third
    of the work). (The temporal term reads no network: it is computed on the whole image.)
    The two per-tile functions are compiled once per objective, for every tile shape, so build
    one per objective and reuse it. `on_tile(what, done, count)` follows every pass.
    """

    def __init__(self, extractor, objective, tile_size: int, on_tile: OnTile = None):
        self.extractor = extractor
        self.on_tile = on_tile
        self.objective = objective
        self.tile_size = int(tile_size)
        self.layers = tuple(vgg_layers.canonical(name) for name in objective.layers)
        self.halo = required_halo(self.layers)
        # (layer, target, mask or None, halvings) for every style term: each layer of each region.
        self._style = [(name, target, mask, vgg_layers.halvings(name))
                       for name, target, mask in objective.style_terms()]
        # On the host, in float64: the guided Grams' divisors (sum of mask^2).
        self._mask_norms = [None if mask is None else
                            float(np.sum(np.square(np.asarray(mask, np.float64))))
                            for _, _, mask, _ in self._style]
        self._content = [(name, target, vgg_layers.halvings(name))
                         for name, target in objective.content_targets.items()]
        self._forward = _compiled(self._tile_terms)
        self._gradient = _compiled(self._tile_gradient)

    def tiles(self, height: int, width: int) -> List[Tile]:
        return tile_grid(height, width, self.tile_size, self.layers, self.halo)

    # ---- the per-tile functions (graphs) ----

    def _tile_terms(self, crop, offsets, content_targets, masks):
        """A tile's owned share of each term: the unnormalised Gram [1, C, C] of every style
        term, its content and TV terms (pass 1, and the value alone). The TV pairs it owns are
        those whose first pixel is in its interior."""
        features = _owned_features(self.extractor, crop, offsets, self.layers)
        grams = [_owned_gram(features[name], mask) for (name, *_), mask in zip(self._style, masks)]
        content = self.objective.content_term(features, content_targets)
        tv = (total_variation_loss(crop, offsets) if self.objective.tv_weight
              else tf.constant(0.0))
        return grams, content, tv

    def _tile_gradient(self, crop, offsets, content_targets, masks, sums, norms, own):
        """Pass 2: the tile's terms, and the gradient of its share of the total: its content
        and TV terms plus sum over style terms of <dL/dG, G_tile>.

        dL/dG (and the style loss) follow from the whole image's Grams: `sums` (float64, one per
        style term) plus, where `own` is 1, this tile's own, which pass 1 left out; their
        divisors are `norms`. Returns (style, content, tv, the tile's Grams, the gradient)."""
        with tf.GradientTape() as tape:
            tape.watch(crop)
            grams, content, tv = self._tile_terms(crop, offsets, content_targets, masks)
            style, residuals = self._style_terms(
                [total + own * tf.cast(g, tf.float64) for total, g in zip(sums, grams)], norms)
            share = self.objective.weighted(content, 0.0, tv, 0.0)['total'] + sum(
                (tf.reduce_sum(r * g) for r, g in zip(residuals, grams)), tf.constant(0.0))
        return style, content, tv, grams, tape.gradient(share, crop)

    def _style_terms(self, sums, norms):
        """The style loss (the objective's, in float64) and [d total / dG per style term]
        (constants: no gradient flows through them) from the whole image's Gram sums."""
        sums = [tf.convert_to_tensor(s, tf.float64) for s in sums]
        with tf.GradientTape() as tape:
            tape.watch(sums)
            style = self.objective.style_term(
                [s / norm for s, norm in zip(sums, tf.unstack(norms, len(sums)))], tf.float64)
            total = self.objective.weighted(0.0, style, 0.0, 0.0)['total']
        residuals = tape.gradient(total, sums) if sums else []
        return style, [tf.stop_gradient(tf.cast(r, tf.float32)) for r in residuals]

    # ---- the host side ----

    def _inputs(self, image, tile):
        """The per-tile functions' first arguments for `tile`: its crop, offsets, the owned
        parts of the content targets, and of each style term's mask (None where it has none)."""
        return (_crop(image, tile), tf.constant(tile.offsets()),
                [_owned_slice(target, tile, halvings) for _, target, halvings in self._content],
                [_owned_slice(mask, tile, halvings) for _, _, mask, halvings in self._style])

    def _norms(self, height: int, width: int):
        """Each style term's Gram divisor: its positions (position_mean_gram) or, with a mask,
        the sum of the mask's squares (guided_gram)."""
        return tf.constant([(height >> halvings) * (width >> halvings) if norm is None else norm
                            for (_, _, _, halvings), norm in zip(self._style, self._mask_norms)],
                           tf.float64)

    def value_and_gradient(self, image: np.ndarray) -> Tuple[Dict[str, float], np.ndarray]:
        """The objective's terms at `image` (H x W x 3) and d total / d image (H x W x 3).

        Pass 1 sums the Gram matrices of every tile but the largest; the largest then runs
        once for both passes (its own Grams complete the sums inside its gradient's graph),
        saving one forward pass of the largest crop; pass 2 does the rest."""
        image = self._checked(image)
        height, width = image.shape[:2]
        tiles = self.tiles(height, width)
        fused = max(tiles, key=Tile.pixels)
        others = [tile for tile in tiles if tile is not fused]
        sums, _, _ = self._pass_1(image, others)
        norms = self._norms(height, width)
        content = tv = 0.0
        gradient = np.zeros_like(image)
        for tile in _each([fused] + others, GRADIENT, self.on_tile):
            own = tf.constant(1.0 if tile is fused else 0.0, tf.float64)
            s, c, t, grams, g = self._gradient(*self._inputs(image, tile), sums, norms, own)
            if tile is fused:
                style, sums = float(s), _added(sums, grams)
            content += float(c)
            tv += float(t)
            gradient[tile.cy0:tile.cy1, tile.cx0:tile.cx1] += g.numpy()[0]
        return self._losses(image, content, style, tv, gradient), gradient

    def value(self, image: np.ndarray) -> Dict[str, float]:
        """The objective's terms at `image` (H x W x 3), without the gradient: one forward pass
        over the tiles."""
        image = self._checked(image)
        sums, content, tv = self._pass_1(image, self.tiles(*image.shape[:2]))
        style, _ = self._style_terms(sums, self._norms(*image.shape[:2]))
        return self._losses(image, content, float(style), tv)

    def _pass_1(self, image, tiles):
        """The Gram sums (float64, per style term), content and TV terms over `tiles`."""
        sums = [np.zeros(target.shape, np.float64) for _, target, _, _ in self._style]
        content = tv = 0.0
        for tile in _each(tiles, GRAMS, self.on_tile):
            grams, c, t = self._forward(*self._inputs(image, tile))
            sums, content, tv = _added(sums, grams), content + float(c), tv + float(t)
        return sums, content, tv

    def _checked(self, image) -> np.ndarray:
        image = np.asarray(image, np.float32)
        if image.ndim != 3:
            raise ValueError(f'image must be H x W x 3, got shape {image.shape}')
        height, width = image.shape[:2]
        for name, target, n in self._content:
            if tuple(target.shape[1:3]) != (height >> n, width >> n):
                raise ValueError(f'image of {height} x {width} px for an objective built for '
                                 f'another size ({name}: {tuple(target.shape[1:3])} positions)')
        return image

    def _losses(self, image, content, style, tv, gradient=None) -> Dict[str, float]:
        """All the terms and their total; the temporal term's gradient goes into `gradient`."""
        temporal = self._temporal(image, gradient)
        return {name: float(value) for name, value in
                self.objective.weighted(content, style, tv, temporal).items()}

    def _temporal(self, image, gradient) -> float:
        """The temporal term, its gradient added to `gradient` (when given): it reads no
        network, so it is computed on the whole image."""
        if not self.objective.temporal_weight:
            return 0.0
        x = tf.constant(image[None])
        with tf.GradientTape() as tape:
            tape.watch(x)
            temporal = self.objective.temporal_term(x)
        if gradient is not None:
            gradient += self.objective.temporal_weight * tape.gradient(temporal, x).numpy()[0]
        return float(temporal)

    def tensor_value_and_gradient(self, image):
        """`value_and_gradient` for TensorFlow callers such as `tf_style.lbfgs.LBFGS`:
        image [1, H, W, 3] -> ({term: float32 scalar}, gradient [1, H, W, 3]). The evaluation
        runs on the host (tf.py_function), also when the caller is a tf.function; keep the
        caller's variables in host memory (tf.device('/CPU:0')) for images larger than a GPU's.
        """
        terms = StyleObjective.TERMS

        def host(x):
            losses, gradient = self.value_and_gradient(x.numpy()[0])
            return [np.float32(losses[k]) for k in terms] + [gradient[None]]
        *values, gradient = tf.py_function(host, [image], [tf.float32] * (len(terms) + 1))
        for value in values:
            value.set_shape([])
        gradient.set_shape(image.shape)
        return dict(zip(terms, values)), gradient


class Tiled:
    """The tiled evaluation (see evaluators.py for the interface): the image and the
    optimizer's state in host memory, the network on one tile at a time."""

    host_memory = True
    compiled_targets = False  # the evaluation runs on the host, outside the compiled step
    costly = True

    def __init__(self, extractor, tile_size: int, on_tile: OnTile = None):
        self.extractor, self.tile_size, self.on_tile = extractor, int(tile_size), on_tile
        self.key = (id(extractor), self.tile_size)

    def with_extractor(self, extractor) -> 'Tiled':
        return Tiled(extractor, self.tile_size, self.on_tile)

    def features(self, image, layers):
        return tiled_features(self.extractor, image, layers, self.tile_size, self.on_tile)

    def grams(self, image, layers, mask=None):
        return tiled_grams(self.extractor, image, layers, self.tile_size, mask, self.on_tile)

    def value_and_gradient(self, objective, layers=None):
        return TiledObjective(self.extractor, objective, self.tile_size,
                              self.on_tile).tensor_value_and_gradient

    def value(self, objective, image, layers=None) -> Dict[str, float]:
        return TiledObjective(self.extractor, objective, self.tile_size, self.on_tile).value(image)


def tiled_value_and_gradient(extractor, objective, image: np.ndarray, tile_size: int,
                             on_tile: OnTile = None) -> Tuple[Dict[str, float], np.ndarray]:
    """One tiled evaluation: `TiledObjective(extractor, objective, tile_size)
    .value_and_gradient(image)`. Build a TiledObjective instead to evaluate repeatedly."""
    return TiledObjective(extractor, objective, tile_size, on_tile).value_and_gradient(image)


def tiled_features(extractor, image: np.ndarray, layers: Sequence[str], tile_size: int,
                   on_tile: OnTile = None) -> Dict[str, np.ndarray]:
    """`extractor(image[None], layers)` computed tile by tile, as host arrays [1, h, w, C]
    (float32): content targets of an image too large for one forward pass."""
    image = np.asarray(image, np.float32)
    layers = tuple(vgg_layers.canonical(name) for name in layers)
    height, width = image.shape[:2]

    def owned(crop, offsets):
        features = _owned_features(extractor, crop, offsets, layers)
        return [features[name] for name in layers]
    forward = _compiled(owned)
    result = {}
    for tile in _each(tile_grid(height, width, tile_size, layers), CONTENT_TARGETS, on_tile):
        for name, f in zip(layers, forward(_crop(image, tile), tf.constant(tile.offsets()))):
            n = vgg_layers.halvings(name)
            if name not in result:
                result[name] = np.zeros((1, height >> n, width >> n, f.shape[-1]), np.float32)
            r0, r1, c0, c1 = tile.owned(n)
            result[name][:, r0:r1, c0:c1] = f.numpy()
    return result


def tiled_grams(extractor, image: np.ndarray, layers: Sequence[str], tile_size: int,
                mask: np.ndarray = None, on_tile: OnTile = None) -> Dict[str, tf.Tensor]:
    """The Gram matrices per position of `image` at `layers`, [1, C, C] each, computed tile by
    tile: `position_mean_gram` of the untiled features, or with `mask` (H x W) `guided_gram`
    with the mask pooled to each layer as `masks.at_layers` does. Style targets of an image too
    large for one forward pass."""
    image = np.asarray(image, np.float32)
    layers = tuple(vgg_layers.canonical(name) for name in layers)
    height, width = image.shape[:2]
    guides = None
    if mask is not None:
        from .masks import at_layers
        guides = at_layers(mask, layers)
    grams = _owned_grams(extractor, layers)
    sums = [0.0] * len(layers)
    for tile in _each(tile_grid(height, width, tile_size, layers), STYLE_TARGETS, on_tile):
        masks = [_owned_slice(None if guides is None else guides[name], tile,
                              vgg_layers.halvings(name)) for name in layers]
        parts = grams(_crop(image, tile), tf.constant(tile.offsets()), masks)
        sums = _added(sums, parts)
    result = {}
    for name, gram in zip(layers, sums):
        n = vgg_layers.halvings(name)
        norm = ((height >> n) * (width >> n) if guides is None else
                float(np.sum(np.square(np.asarray(guides[name], np.float64)))))
        result[name] = tf.constant(gram / norm, tf.float32)
    return result
