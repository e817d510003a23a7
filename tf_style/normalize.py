"""The paper's weight normalization (Gatys et al. 2016, section 2).

"We normalized the network by scaling the weights such that the mean activation of each
convolutional filter over images and positions is equal to one. Such re-scaling can be done for
the VGG network without changing its output, because it contains only rectifying linear
activation functions and no normalization or pooling over feature maps."

Dividing filter c of a conv layer (its kernel slice and bias) by s_c divides its output after the
ReLU by s_c, since relu(x / s) = relu(x) / s for s > 0; pooling is per channel and commutes with
the scale too. Multiplying the next layer's kernel by s_c along its input channel c undoes it. So
every layer's output becomes the original divided by its own per-channel scales, and choosing
those scales as the original mean activations makes every mean 1. The means of all layers are
therefore measured in one pass of the original network.

The feature values change, so the balance of the loss terms does too: see README ("Fidelity")
for the content and style weights to use with a normalized network.
"""

from typing import Dict, Sequence

import numpy as np
import tensorflow as tf
from absl import logging

from . import vgg_layers
from .errors import ConfigError

CONV_LAYERS = tuple(name for name in vgg_layers.LAYERS if '_conv' in name)

# Departure from the paper, which calibrated on ImageNet images, where nearly every filter fires:
# on a few calibration images some filters fire rarely, and dividing one by its tiny mean would
# multiply its activations elsewhere (on the noise a run starts from, say) by thousands, so that
# it alone dominates its layer's Gram matrix. A filter whose mean is below RARE times its layer's
# median (over the filters that fire) is therefore divided by that median, as a typical filter of
# its layer is: its mean ends up below RARE, and normalizing again leaves it alone.
RARE = 0.1


def activation_means(extractor, images: Sequence[np.ndarray]) -> Dict[str, np.ndarray]:
    """Mean activation of every conv filter over `images` (each H x W x 3, RGB 0..255) and all
    their positions: {layer: float64 array of its channels}."""
    if not len(images):
        raise ConfigError('weight normalization needs at least one calibration image',
                          option='calibration_images')
    sums = {name: 0.0 for name in CONV_LAYERS}
    counts = dict.fromkeys(CONV_LAYERS, 0)
    for image in images:
        features = extractor(np.asarray(image, np.float32)[None], layers=CONV_LAYERS)
        for name in CONV_LAYERS:
            f = features[name]
            sums[name] = sums[name] + tf.reduce_sum(f, axis=(0, 1, 2)).numpy().astype(np.float64)
            counts[name] += int(f.shape[1]) * int(f.shape[2])
    return {name: sums[name] / counts[name] for name in CONV_LAYERS}


def normalize_vgg19(vgg19, extractor, images: Sequence[np.ndarray]) -> Dict[str, np.ndarray]:
    """Rescales the conv filters of `vgg19` (a Keras VGG19 model) in place so that each one's
    mean activation over `images` and their positions is 1, measured with `extractor` (a
    network built from `vgg19` before the call, with the pooling it will run with).

    Returns the per-channel scales: each conv layer's output is now its former output divided
    by its scales. Normalizing a normalized network changes nothing (its scales are all 1).
    """
    means = activation_means(extractor, images)
    scales = {name: channel_scales(m) for name, m in means.items()}
    previous = np.ones(3)  # the image itself is not rescaled
    for name in CONV_LAYERS:
        layer = vgg19.get_layer(name)
        kernel, bias = (w.astype(np.float64) for w in layer.get_weights())
        # kernel is [kh, kw, in, out]: undo the previous layer's scales on the inputs, apply
        # this layer's on the outputs.
        kernel = kernel * previous[:, None] / scales[name]
        layer.set_weights([kernel.astype(np.float32), (bias / scales[name]).astype(np.float32)])
        previous = scales[name]
    rare = sum(int(np.sum(m < s)) for m, s in zip(means.values(), scales.values()))
    logging.info('weight normalization on %d image(s): %d of %d filters fire rarely or never '
                 '(their means stay below %g)', len(images), rare,
                 sum(m.size for m in means.values()), RARE)
    return scales


def channel_scales(means: np.ndarray) -> np.ndarray:
    """What each filter of a layer is divided by: its mean activation, or for a filter that is
    rare (see RARE) or silent the layer's median; 1 for a layer in which no filter fires."""
    firing = means[means > 0]
    if not firing.size:
        return np.ones_like(means)
    median = np.median(firing)
    return np.where(means >= RARE * median, means, median)
