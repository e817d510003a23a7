"""A run's inputs read from the files a command names, checked before any work (no
TensorFlow): images, masks and label maps, the start image, calibration images, and that the
weights, an exported extractor and TensorBoard's logdir will load."""

import glob
import os
from typing import Optional, Sequence

from . import images, masks, preflight
from .config import INITS
from .errors import TfStyleError
from .inputs import RunInputs

INIT_MODES = tuple(i for i in INITS if i != 'image')


def init_setting(value: str):
    """An init given as a mode or an image file: (the init option, the file or None)."""
    if value in INIT_MODES:
        return value, None
    if not os.path.exists(value):
        raise TfStyleError(f'{value!r}: not one of {", ".join(INIT_MODES)}, and no such image '
                           'file', option='init')
    return 'image', value


def expand(contents: Sequence[str]):
    """Content paths as files: a directory gives its image files, a glob its matches."""
    files = []
    for value in contents:
        if os.path.isdir(value):
            found = sorted(os.path.join(value, n) for n in os.listdir(value)
                           if n.lower().endswith(images.IMAGE_EXTENSIONS))
        elif glob.has_magic(value):
            found = sorted(glob.glob(value))
        else:
            found = [value]
        if not found:
            raise TfStyleError(f'{value!r}: no image files there', option='content')
        files += found
    return files


def check_sources(weights: str, extractor: Optional[str] = None,
                  logdir: Optional[str] = None) -> None:
    """The weights (or an exported extractor) and TensorBoard, checked without TensorFlow."""
    if extractor:
        preflight.check_saved_model(extractor)
    elif weights not in ('imagenet', 'random'):
        preflight.check_weights(weights)
    preflight.check_tensorboard(logdir)


def read_inputs(content: str, styles: Sequence[str], *, content_masks=None, labels=None,
                style_masks=None, init_file=None, calibration_dir=None) -> RunInputs:
    """The images a run reads, with its masks (one per style, from mask files or a label map)."""
    content_image = images.load_image(content)
    style_images = [images.load_image(path) for path in styles]
    return RunInputs(
        content_image, style_images,
        content_masks=_content_masks(content, content_image, len(styles), content_masks,
                                     labels),
        style_masks=(None if not style_masks else
                     [_mask(path, style, image) for path, style, image in
                      zip(style_masks, styles, style_images)]),
        init_image=images.load_image(init_file) if init_file else None,
        calibration_images=images.load_directory(calibration_dir) if calibration_dir else None)


def _content_masks(content, image, count, paths, labels):
    if labels and paths:
        raise TfStyleError('give content_masks or labels, not both', option='labels')
    if labels:
        return masks.masks_from_labels(_checked(labels, images.load_image(labels), content,
                                                image), count)
    return [_mask(path, content, image) for path in paths] if paths else None


def _mask(path, image_path, image):
    return _checked(path, masks.load_mask(path), image_path, image)


def _checked(mask_path, mask, image_path, image):
    """Masks are resized to their image: refuses one drawn for another picture."""
    (mh, mw), (h, w) = mask.shape[:2], image.shape[:2]
    if abs(mh * w - h * mw) > 0.01 * h * mw:
        raise TfStyleError(f'mask {mask_path!r} is {mw}x{mh} but {image_path!r} is {w}x{h}: a '
                           'mask needs its image\'s aspect ratio')
    return mask
