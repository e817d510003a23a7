"""VGG19 as plain TensorFlow ops over one tf.Variable per weight: what SavedModels hold.

An exported model must load in every TensorFlow loader: the TF2 loader, the session-based one
(`saved_model_cli run`, TensorFlow Serving), Keras' TFSMLayer and the TFLite converter. A Keras
model kept inside a tf.Module gives the session-based loader two handles per weight (the
checkpoint restores one, the functions read the other) and the TFLite converter nothing it keeps,
and `FrozenConv2D` stores a rotated copy of every kernel. So a SavedModel holds each conv's
kernel and bias once, as plain variables, and computes the network with tf.nn ops: conv2d,
bias_add, relu, and the extractor's pooling (2x2, stride 2, valid, as Keras' VGG19), after the
same Caffe preprocessing (`network.preprocess`).
"""

from typing import Dict, Optional, Sequence

import keras
import numpy as np
import tensorflow as tf

from . import vgg_layers
from .frozen_conv import rotate_kernel
from .network import preprocess


class PlainVGG19(tf.Module):
    """VGG19's convolutions up to a layer, as variables, and the function that computes it."""

    def __init__(self, weights: Dict[str, Sequence[np.ndarray]], pooling: str = 'avg',
                 deepest: Optional[str] = None):
        """`weights`: {conv name: (kernel, bias)} for every conv up to `deepest` (default: the
        deepest conv in `weights`), the last layer computed."""
        super().__init__(name='vgg19')
        if pooling not in ('avg', 'max'):
            raise ValueError(f'pooling must be avg or max, got {pooling!r}')
        self.pooling = pooling
        deepest = deepest or max(weights, key=vgg_layers.depth)
        self.names = tuple(n for n in vgg_layers.LAYERS[:vgg_layers.depth(deepest) + 1])
        convs = [n for n in self.names if '_conv' in n]
        missing = [n for n in convs if n not in weights]
        if missing:
            raise ValueError(f'no weights for {", ".join(missing)}')
        # Lists of variables: tf.Module tracks them, and each is saved once.
        self.kernels = [tf.Variable(np.asarray(weights[n][0], np.float32), trainable=False,
                                    name=n + '/kernel') for n in convs]
        self.biases = [tf.Variable(np.asarray(weights[n][1], np.float32), trainable=False,
                                   name=n + '/bias') for n in convs]
        self._index = {n: i for i, n in enumerate(convs)}

    @classmethod
    def of(cls, extractor, layers) -> 'PlainVGG19':
        """The convolutions of `extractor` (a `network.VGG19Features`) up to the deepest of
        `layers`, in float32."""
        if hasattr(extractor, 'with_precision'):
            extractor = extractor.with_precision('float32')
        deepest = vgg_layers.canonical(max(layers, key=vgg_layers.depth))
        model = extractor.model((deepest,))
        # A conv layer's weights are [kernel, bias, rotated kernel]: the last is not kept.
        weights = {layer.name: layer.get_weights()[:2] for layer in model.layers
                   if isinstance(layer, keras.layers.Conv2D)}
        return cls(weights, pooling=extractor.pooling, deepest=deepest)

    @property
    def deepest(self) -> str:
        return self.names[-1]

    @property
    def nbytes(self) -> int:
        """Bytes of the weights held."""
        return sum(int(np.prod(v.shape)) * v.dtype.size for v in self.kernels + self.biases)

    def rotated_kernels(self):
        """Each kernel rotated by 180 degrees with its channels swapped (`rotate_kernel`),
        computed in the graph: pass them to `__call__` for the faster input gradient that
        `FrozenConv2D` computes, without storing a second copy of the weights."""
        return [rotate_kernel(k) for k in self.kernels]

    def __call__(self, images, layers, rotated: Optional[Sequence[tf.Tensor]] = None):
        """{layer: features} of `images` (float32 [N, H, W, 3], RGB 0..255).

        With `rotated` (from `rotated_kernels`), each convolution's input gradient is the
        convolution of the output gradient with the rotated kernel (see `FrozenConv2D`); without,
        TensorFlow's own gradient.
        """
        layers = tuple(layers)
        x = preprocess(images)
        outputs = {}
        for name in self.names[:max(map(self.names.index, layers)) + 1]:
            if '_conv' in name:
                i = self._index[name]
                x = tf.nn.relu(tf.nn.bias_add(
                    _conv(x, self.kernels[i], None if rotated is None else rotated[i]),
                    self.biases[i]))
            elif self.pooling == 'avg':
                x = tf.nn.avg_pool2d(x, 2, 2, 'VALID')
            else:
                x = tf.nn.max_pool2d(x, 2, 2, 'VALID')
            if name in layers:
                outputs[name] = x
        return outputs


def _conv(x, kernel, rotated=None):
    # Read outside the custom gradient, which would otherwise want gradients for the variable.
    kernel = tf.convert_to_tensor(kernel)
    if rotated is None:
        return tf.nn.conv2d(x, kernel, 1, 'SAME')

    @tf.custom_gradient
    def convolve(x):
        return (tf.nn.conv2d(x, kernel, 1, 'SAME'),
                lambda dy: tf.nn.conv2d(dy, rotated, 1, 'SAME'))
    return convolve(x)
