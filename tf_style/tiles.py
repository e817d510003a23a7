"""Where an image's tiles lie, and what evaluating the objective over them costs.

Geometry only, free of TensorFlow (planning code such as the ETA's costs reads it); tiling.py
evaluates the objective over the tiles (see its docstring and docs/tiling.md).
"""

import dataclasses
from typing import List, Sequence, Tuple

import numpy as np

from . import vgg_layers
from .errors import ConfigError
from .vgg_layers import pooling_grid, required_halo


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


# A tile runs forward twice (pass 1, pass 2) and backward once, against one forward and one
# backward untiled, where the backward costs about a forward: 1.5x before any halo.
PASSES_COST = 1.5


def relative_cost(height: int, width: int, tile_size: int, layers: Sequence[str]) -> float:
    """An evaluation's predicted cost with `tile_size` (0: untiled) ÷ the untiled one: the two
    passes over every crop's pixels ("What it costs" in docs/tiling.md)."""
    if not tile_size:
        return 1.0
    crops = sum((t.cy1 - t.cy0) * (t.cx1 - t.cx0)
                for t in tile_grid(height, width, tile_size, layers))
    return PASSES_COST * crops / (height * width)


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
