"""Contact sheets: images laid out in a grid with captions, for figures and README."""

import numpy as np
from PIL import Image, ImageDraw

from ..images import resize_long_side, to_uint8


def contact_sheet(tiles, columns: int, tile_size: int = 192, caption_height: int = 16,
                  margin: int = 4) -> np.ndarray:
    """Lays out [(caption, H x W x 3 image)] in a grid on white, each fitted into a square of
    `tile_size` with its caption underneath; returns a uint8 array."""
    rows = -(-len(tiles) // columns)
    cell_w, cell_h = tile_size + margin, tile_size + caption_height + margin
    sheet = Image.new('RGB', (columns * cell_w + margin, rows * cell_h + margin), 'white')
    draw = ImageDraw.Draw(sheet)
    for i, (caption, image) in enumerate(tiles):
        x, y = margin + (i % columns) * cell_w, margin + (i // columns) * cell_h
        fitted = to_uint8(resize_long_side(image, tile_size))
        h, w = fitted.shape[:2]
        sheet.paste(Image.fromarray(fitted), (x + (tile_size - w) // 2, y + (tile_size - h) // 2))
        draw.text((x + 2, y + tile_size + 2), caption, fill='black')
    return np.asarray(sheet)


def with_inset(image: np.ndarray, inset: np.ndarray, fraction: float = 0.3,
               border: int = 1) -> np.ndarray:
    """`image` with `inset` shrunk to `fraction` of its long side in the bottom-left corner,
    framed in white (the paper's Fig. 2 shows each painting so beside its stylization)."""
    out = np.asarray(image, np.float32).copy()
    h, w = out.shape[:2]
    small = resize_long_side(inset, max(1, round(fraction * max(h, w))))
    ih, iw = min(small.shape[0], h - border), min(small.shape[1], w - border)
    out[h - ih - border:, :iw + border] = 255.0
    out[h - ih:, :iw] = small[:ih, :iw]
    return out
