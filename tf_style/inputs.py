"""What a run is made of, before any TensorFlow: its images as given (`RunInputs`), the same
at each scale's working size (`Inputs`), and the start image."""

import dataclasses
from typing import List, Optional, Sequence

import numpy as np

from . import colour, images, masks
from .config import StyleTransferConfig
from .plan import scale_sizes
from .errors import ConfigError


@dataclasses.dataclass
class Inputs:
    """What the objective is built from at one scale: arrays at their working sizes."""
    content: np.ndarray                                # H x W x 3, as the network sees it
    styles: List[np.ndarray]
    content_masks: Optional[List[np.ndarray]] = None   # H x W each, one per style
    style_masks: Optional[List[np.ndarray]] = None     # each the size of its style image
    temporal_target: Optional[np.ndarray] = None       # H x W x 3 (video: the warped frame)
    temporal_mask: Optional[np.ndarray] = None         # H x W, 0..1


@dataclasses.dataclass
class RunInputs:
    """Everything a run reads, at the sizes given (`stylize`'s images, as one value)."""
    content: np.ndarray
    styles: List[np.ndarray]
    content_masks: Optional[List[np.ndarray]] = None
    style_masks: Optional[List[np.ndarray]] = None
    init_image: Optional[np.ndarray] = None            # the start for init='image'
    calibration_images: Optional[List[np.ndarray]] = None
    temporal_target: Optional[np.ndarray] = None
    temporal_mask: Optional[np.ndarray] = None

    @classmethod
    def of(cls, content, style, content_masks=None, style_masks=None, init_image=None,
           calibration_images=None, temporal_target=None, temporal_mask=None) -> 'RunInputs':
        """From numpy arrays, tf.Tensors or PIL images (`style`: one, a list, or a batch)."""
        def arrays(values):
            return None if values is None else [np.asarray(v, np.float32) for v in values]
        return cls(as_image(content, 'content'), as_images(style, 'style'),
                   arrays(content_masks), arrays(style_masks),
                   None if init_image is None else as_image(init_image, 'init_image'),
                   calibration_images,
                   None if temporal_target is None else as_image(temporal_target,
                                                                 'temporal_target'),
                   temporal_mask)

    def arrays(self, init: str) -> list:
        """Every array the run depends on with start `init` (a checkpoint's fingerprint)."""
        return [self.content, *self.styles, *(self.content_masks or []),
                *(self.style_masks or []), *([self.init_image] if init == 'image' else []),
                *(self.calibration_images or []),
                *([self.temporal_target] if self.temporal_target is not None else []),
                *([self.temporal_mask] if self.temporal_mask is not None else [])]

    def scaled(self, config: StyleTransferConfig, scales=None) -> List['Inputs']:
        return scaled_inputs(config, self.content, self.styles, self.content_masks,
                             self.style_masks, self.temporal_target, self.temporal_mask, scales)


def as_image(value, option: str) -> np.ndarray:
    """An H x W x 3 float32 array (0..255) from a numpy array, a tf.Tensor or a PIL image."""
    if hasattr(value, 'convert') and hasattr(value, 'size') and hasattr(value, 'mode'):
        value = value.convert('RGB')  # PIL
    elif hasattr(value, 'numpy'):
        value = value.numpy()  # tf.Tensor
    array = np.asarray(value)
    if array.ndim != 3 or array.shape[-1] != 3 or not np.issubdtype(array.dtype, np.number):
        raise ConfigError(f'{option} must be an H x W x 3 RGB image, got an array of shape '
                          f'{array.shape}', option=option)
    return array.astype(np.float32)


def as_images(value, option: str) -> List[np.ndarray]:
    """One image, a batch [N, H, W, 3], or a sequence of images, as a list of images."""
    if isinstance(value, (list, tuple)):
        return [as_image(v, option) for v in value]
    array = value if hasattr(value, 'mode') else np.asarray(
        value.numpy() if hasattr(value, 'numpy') else value)
    if getattr(array, 'ndim', 3) == 4:
        return [as_image(v, option) for v in array]
    return [as_image(value, option)]


def scaled_inputs(config: StyleTransferConfig, content, styles, content_masks=None,
                  style_masks=None, temporal_target=None, temporal_mask=None,
                  scales=None) -> List[Inputs]:
    """Every scale's inputs, coarsest first, at the sizes of `scales` (a plan's) or else
    plan.scale_sizes (which refuses, before any work, sizes the network's layers cannot use)."""
    scales = scales or scale_sizes(config, content.shape[:2], [s.shape[:2] for s in styles])
    # Colour preservation changes what the network sees; done once, at full resolution.
    content, styles = colour.prepare(config.preserve_colors, content, styles)
    scaled = []
    for scale in scales:
        size = scale.size
        inputs = Inputs(images.resize_to(content, size),
                        [images.resize_to(x, s) for x, s in zip(styles, scale.styles)])
        if content_masks is not None:
            inputs.content_masks = [masks.resize_mask(m, size) for m in content_masks]
        if style_masks is not None:
            inputs.style_masks = [masks.resize_mask(m, s)
                                  for m, s in zip(style_masks, scale.styles)]
        if temporal_target is not None:
            inputs.temporal_target = images.resize_to(temporal_target, size)
            inputs.temporal_mask = (None if temporal_mask is None
                                    else masks.resize_mask(temporal_mask, size))
        scaled.append(inputs)
    return scaled


def initial_image(init: str, content: np.ndarray, style: np.ndarray, seed: int,
                  image: Optional[np.ndarray] = None, noise_blend: float = 0.0) -> np.ndarray:
    """The start of the optimisation, at the content image's size (float32, 0..255).

    `image` is the start for init='image'. `noise_blend` mixes that fraction of white noise in.
    """
    def noise():  # white noise, as in the paper: independent uniform pixels over the whole range
        return np.random.default_rng(seed).uniform(0, 255, content.shape).astype(np.float32)
    if init == 'noise':
        return noise()
    if init == 'content':
        start = content.astype(np.float32)
    elif init == 'content_in_style_colors':
        # Not in the paper: the photo's colours moved to the style's mean and covariance (the
        # reverse of preserve_colors='histogram') starts nearer the optimum without changing
        # the objective.
        start = colour.match_histogram(content, style)
    elif init == 'style':
        start = images.resize_to(style, content.shape[:2])
    elif image is None:
        raise ConfigError("init='image' needs an init_image", option='init_image')
    else:
        start = images.resize_to(image, content.shape[:2])
    if noise_blend:
        start = (1 - noise_blend) * start + noise_blend * noise()
    return start


def calibration_set(config: StyleTransferConfig, inputs: Inputs,
                    extra: Optional[Sequence[np.ndarray]] = None) -> List[np.ndarray]:
    """What stylize normalizes the weights on: the content and style images as the network sees
    them at the final scale (`inputs`), and `extra` images resized to image_size."""
    return [inputs.content, *inputs.styles] + [
        images.resize_long_side(x, config.image_size) for x in extra or []]
