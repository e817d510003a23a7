"""Reading, resizing and writing images (RGB arrays, values 0..255).

No TensorFlow here: the binaries check their inputs and outputs with this module before paying for
the TensorFlow import, so bad input fails in a fraction of a second.
"""

import os
import warnings

import numpy as np
from absl import logging
from PIL import Image, ImageOps, PngImagePlugin

from . import temporary
from .errors import ImageError

# Output formats by file extension.
FORMATS = {'.png': 'PNG', '.jpg': 'JPEG', '.jpeg': 'JPEG', '.webp': 'WEBP'}


def load_image(path: str) -> np.ndarray:
    """Reads an image file as an H x W x 3 uint8 RGB array.

    EXIF orientation is applied; grayscale, palette, CMYK and 16-bit images are converted to RGB;
    transparency is composited onto white; of an animated image the first frame is used.
    """
    if not os.path.exists(path):
        raise ImageError(f'cannot read image {path!r}: no such file')
    if os.path.isdir(path):
        raise ImageError(f'cannot read image {path!r}: it is a directory')
    try:
        with warnings.catch_warnings():
            # Pillow warns between 1x and 2x its pixel limit and raises above 2x: refuse both.
            warnings.simplefilter('error', Image.DecompressionBombWarning)
            with Image.open(path) as image:
                if getattr(image, 'n_frames', 1) > 1:
                    logging.warning('%s has %d frames: using the first', path, image.n_frames)
                image.load()
                return _to_rgb(ImageOps.exif_transpose(image))
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise ImageError(f'cannot read image {path!r}: it is too large '
                         f'(over {Image.MAX_IMAGE_PIXELS} pixels; a decompression bomb?)') from None
    except Image.UnidentifiedImageError:
        raise ImageError(f'cannot read image {path!r}: not an image file Pillow can read') from None
    except (OSError, ValueError, SyntaxError) as e:
        reason = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise ImageError(f'cannot read image {path!r}: {reason}') from None


# Extensions `load_directory` reads.
IMAGE_EXTENSIONS = ('.jpg', '.jpeg', '.png', '.webp', '.bmp', '.tif', '.tiff', '.gif')


def load_directory(path: str) -> list:
    """Every image file directly in directory `path` (by extension, sorted by name), loaded."""
    if not os.path.isdir(path):
        raise ImageError(f'{path!r} is not a directory')
    names = sorted(n for n in os.listdir(path) if n.lower().endswith(IMAGE_EXTENSIONS))
    if not names:
        raise ImageError(f'{path!r} holds no image files ({", ".join(IMAGE_EXTENSIONS)})')
    return [load_image(os.path.join(path, name)) for name in names]


def _to_rgb(image: Image.Image) -> np.ndarray:
    if image.mode in ('I', 'I;16', 'I;16B', 'I;16L', 'I;16N'):
        # 16-bit grayscale: Pillow's convert('RGB') would clip at 255, so scale instead.
        values = np.asarray(image, dtype=np.float64)
        scale = 257.0 if values.max() > 255 else 1.0
        gray = np.clip(np.round(values / scale), 0, 255).astype(np.uint8)
        return np.repeat(gray[..., None], 3, axis=-1)
    if image.mode == 'F':
        gray = np.clip(np.round(np.asarray(image)), 0, 255).astype(np.uint8)
        return np.repeat(gray[..., None], 3, axis=-1)
    if image.mode == 'P':
        image = image.convert('RGBA')
    if image.mode in ('RGBA', 'LA', 'La', 'RGBa', 'PA'):
        image = image.convert('RGBA')
        white = Image.new('RGBA', image.size, (255, 255, 255, 255))
        image = Image.alpha_composite(white, image)
    return np.asarray(image.convert('RGB'), dtype=np.uint8).copy()


def resize_long_side(image: np.ndarray, long_side: int) -> np.ndarray:
    """Resizes an H x W x 3 array (uint8 or float 0..255) so its long side is `long_side`.

    Returns float32 values in 0..255.
    """
    return resize_to(image, sized(image.shape[:2], long_side))


def sized(size, long_side: int):
    """(height, width) of an image of `size` resized so that its long side is `long_side`."""
    height, width = size
    scale = long_side / max(height, width)
    return max(1, round(height * scale)), max(1, round(width * scale))


def to_uint8(image: np.ndarray) -> np.ndarray:
    return np.clip(np.round(np.asarray(image, dtype=np.float32)), 0, 255).astype(np.uint8)


def output_format(path: str) -> str:
    ext = os.path.splitext(path)[1].lower()
    if ext not in FORMATS:
        raise ImageError(f'cannot write {path!r}: unknown image format {ext or "(no extension)"!r}; '
                         f'use one of {", ".join(sorted(FORMATS))}')
    return FORMATS[ext]


def save_image(path: str, image: np.ndarray, metadata=None) -> None:
    """Writes an H x W x 3 array atomically: a temporary file in the same folder, then a rename.

    The format comes from the extension. `metadata` (str -> str) goes into PNG text chunks.
    """
    fmt = output_format(path)
    pil = Image.fromarray(to_uint8(image))
    options = {}
    if fmt == 'PNG' and metadata:
        info = PngImagePlugin.PngInfo()
        for key, value in metadata.items():
            info.add_text(str(key), str(value))
        options['pnginfo'] = info
    elif fmt in ('JPEG', 'WEBP'):
        options['quality'] = 95
    _write_atomically(path, lambda f: pil.save(f, format=fmt, **options))


def write_text(path: str, text: str) -> None:
    """Writes a text file atomically, as save_image writes images."""
    _write_atomically(path, lambda f: f.write(text.encode('utf-8')))


def _write_atomically(path: str, write) -> None:
    """Calls write(binary file) on a temporary file in `path`'s folder, then renames it."""
    directory = os.path.dirname(os.path.abspath(path))
    try:
        fd, tmp = temporary.mkstemp(prefix='.' + os.path.basename(path) + '.', suffix='.tmp',
                                    dir=directory)
    except OSError as e:
        raise ImageError(f'cannot write {path!r}: {e.strerror or e}') from None
    try:
        with os.fdopen(fd, 'wb') as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        # mkstemp creates the file private (0600); give it the mode a plain open() would.
        os.chmod(tmp, file_mode(path))
        os.replace(tmp, path)
    except OSError as e:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise ImageError(f'cannot write {path!r}: {e.strerror or e}') from None
    finally:
        temporary.release(tmp)


def file_mode(path: str) -> int:
    """The replaced file's permissions, or those of a new file under the current umask."""
    if os.path.exists(path):
        return os.stat(path).st_mode & 0o777
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


def resize_to(image: np.ndarray, size) -> np.ndarray:
    """Resizes an H x W x 3 array to `size` = (height, width); float32 0..255, Lanczos."""
    h, w = size
    image = np.asarray(image, dtype=np.float32)
    if image.shape[:2] == (h, w):
        return image.copy()
    channels = [
        np.asarray(Image.fromarray(np.ascontiguousarray(image[..., c])).resize((w, h), Image.LANCZOS))
        for c in range(image.shape[-1])
    ]
    return np.clip(np.stack(channels, axis=-1), 0, 255)
