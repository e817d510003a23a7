"""VGG's convolution, frozen, with an input gradient that is faster to compute on CPUs.

A performance layer under the paper's network: it computes exactly what Keras' Conv2D computes.
"""

from typing import Optional

import tensorflow as tf
import keras


class FrozenConv2D(keras.layers.Conv2D):
    """A 3x3, stride 1, 'same' convolution (and its activation), frozen, whose gradient with
    respect to its input is a forward convolution.

    On CPUs, TensorFlow's Conv2DBackpropInput kernel runs VGG's shapes at a third to a half of the
    forward kernel's speed, and an evaluation of the loss is a forward pass plus the input
    gradient. For stride 1 and an odd kernel with 'same' padding, the input gradient is exactly
    the forward convolution of the output gradient with the kernel rotated by 180 degrees and its
    input and output channels swapped; that kernel is stored beside the kernel, since
    rearranging it in every evaluation is a measurable cost. No weight gradients: the weights
    never change.

    With `as_matmuls`, both convolutions are computed as sums of shifted matrix products (see
    `shifted_matmuls`) when the layer runs in a graph. With `output_dtype`, the sum (and bias)
    is cast to it before the activation. Build it with `of(conv)`.
    """

    def __init__(self, *args, as_matmuls: bool = False, output_dtype: Optional[str] = None,
                 **kwargs):
        super().__init__(*args, **kwargs)
        self.as_matmuls = as_matmuls
        self.output_dtype = output_dtype
        self.rotated_kernel_initializer = 'zeros'

    def get_config(self):
        return {**super().get_config(), 'as_matmuls': self.as_matmuls,
                'output_dtype': self.output_dtype}

    @classmethod
    def of(cls, conv: keras.layers.Conv2D, dtype=None, as_matmuls: bool = False,
           output_dtype: Optional[str] = None) -> 'FrozenConv2D':
        """A frozen copy of `conv` (built), computing in `dtype` (a policy; default: conv's),
        its output in `output_dtype` (default: the computing dtype)."""
        # Its variables start as conv's values (cast to `dtype`), not initialised and then
        # assigned: for VGG19's 20 million weights per copy, that second pass is a visible part
        # of start-up.
        layer = cls.from_config({**conv.get_config(), 'dtype': dtype or conv.dtype_policy,
                                 'as_matmuls': as_matmuls, 'output_dtype': output_dtype})
        kernel = tf.convert_to_tensor(conv.kernel)
        initial = {'kernel_initializer': _values(kernel),
                   'rotated_kernel_initializer': _values(rotate_kernel(kernel))}
        if conv.use_bias:
            initial['bias_initializer'] = _values(tf.convert_to_tensor(conv.bias))
        configured = {name: getattr(layer, name) for name in initial}
        _set(layer, initial)
        layer.build(conv.input.shape)
        _set(layer, configured)  # get_config stays serialisable: no tensors in it
        layer.trainable = False
        return layer

    def build(self, input_shape):
        if self.strides != (1, 1) or self.padding != 'same' or self.dilation_rate != (1, 1) \
                or self.groups != 1 or any(k % 2 == 0 for k in self.kernel_size) \
                or (self.as_matmuls and tuple(self.kernel_size) != (3, 3)):
            raise ValueError(f'{self.name}: FrozenConv2D needs stride 1, same padding and an odd '
                             'kernel (3x3 as matmuls)')
        super().build(input_shape)
        self.rotated_kernel = self.add_weight(
            name='rotated_kernel', shape=self.kernel.shape[:2] + self.kernel.shape[2:][::-1],
            initializer=self.rotated_kernel_initializer, trainable=False)

    def call(self, inputs):
        kernel = tf.cast(self.kernel, inputs.dtype)
        rotated = tf.cast(self.rotated_kernel, inputs.dtype)

        # Not eagerly: a run's first evaluation (LBFGS.prime) is eager, under a GradientTape,
        # where the taps raised the peak memory by half (docs/notes/benchmark-record.md).
        same = (shifted_matmuls if self.as_matmuls and not tf.executing_eagerly()
                else lambda x, k: tf.nn.conv2d(x, k, 1, 'SAME'))

        bias = tf.cast(self.bias, inputs.dtype) if self.use_bias else None

        # The bias and the cast inside: a GradientTape (eager) keeps no float32 sum for them.
        @tf.custom_gradient
        def convolve(x):
            outputs = same(x, kernel)
            if bias is not None:
                outputs = tf.nn.bias_add(outputs, bias)
            if self.output_dtype:
                outputs = tf.cast(outputs, self.output_dtype)
            return outputs, lambda dy: same(tf.cast(dy, x.dtype), rotated)

        return self.activation(convolve(inputs))


def _set(layer, attributes: dict):
    for name, value in attributes.items():
        setattr(layer, name, value)


def _values(tensor):
    """An initializer that returns `tensor` (cast to the variable's dtype)."""
    return lambda shape, dtype=None: tf.cast(tensor, dtype or tensor.dtype)


def shifted_matmuls(x, kernel):
    """The 3x3 'same' convolution of x [N, H, W, C] with `kernel`, as the sum of 9 matrix
    products of shifted copies of x with the kernel's taps.

    Where TensorFlow runs oneDNN on a CPU, float32 convolutions with 512 input channels (VGG's
    blocks 4 and 5) run at about half the speed of the larger layers, and as shifted products
    markedly faster. The taps are summed one after another, so that only one shifted copy is
    alive at a time.
    """
    shape = tf.shape(x)
    height, width = shape[1], shape[2]
    padded = tf.pad(x, [[0, 0], [1, 1], [1, 1], [0, 0]])
    total = None
    for i in range(3):
        for j in range(3):
            with tf.control_dependencies([] if total is None else [total]):
                tap = tf.reshape(padded[:, i:i + height, j:j + width], [-1, kernel.shape[2]])
            product = tf.matmul(tap, kernel[i, j])
            total = product if total is None else total + product
    return tf.reshape(total, tf.concat([shape[:3], [kernel.shape[3]]], 0))


def rotate_kernel(kernel):
    """[kh, kw, in, out] -> [kh, kw, out, in], rotated by 180 degrees in space: the kernel whose
    convolution with an output gradient is the input gradient (stride 1, 'same' padding)."""
    return tf.transpose(tf.reverse(kernel, [0, 1]), [0, 1, 3, 2])
