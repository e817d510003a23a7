"""The feature extractor: VGG19 with average pooling, Caffe preprocessing inside, frozen.

`VGG19Features` maps RGB images (0..255, [N, H, W, 3]) to a dict of layer activations. It is
Keras' `applications.VGG19(include_top=False)` rebuilt layer by layer with every MaxPooling2D
replaced by an AveragePooling2D of the same size and stride (the paper, section 2: "replacing the
max-pooling operation by average pooling improves the gradient flow and one obtains slightly more
appealing results"), and cut after the deepest layer a call asks for. Its convolutions are
`FrozenConv2D`: the same function, with a faster input gradient.
"""

import threading
from typing import Optional

import tensorflow as tf
import keras

from . import hardware, vgg_layers
from .frozen_conv import FrozenConv2D
from .normalize import normalize_vgg19
from .weights import load_vgg19

# ImageNet channel means in BGR order, as Keras' and Caffe's VGG preprocessing subtract them.
CAFFE_MEAN_BGR = (103.939, 116.779, 123.68)
POOLINGS = ('avg', 'max')
# A batch stylizes several images at once in threads that share one network (cli/batch.py): its
# variants and models are built once, by whichever thread asks first.
_BUILDING = threading.RLock()


class VGG19Features:
    """Maps RGB images in 0..255 to VGG19 activations, by layer name.

    The weights are frozen: they are not trainable variables, and the optimizer never sees them.
    `precision` 'mixed' computes the layers in bfloat16 (the losses cast features back to
    float32).
    """

    def __init__(self, vgg19, pooling: str = 'avg', precision: str = 'float32',
                 normalized: bool = False, matmul_convs: Optional[bool] = None):
        self.pooling = pooling
        self.precision = precision
        # Whether `vgg19`'s weights were normalized (normalize.py).
        self.normalized = normalized
        # Whether the float32 convolutions with 512 input channels run as shifted matmuls;
        # None: where hardware.matmul_convs_are_faster says so.
        self.matmul_convs = matmul_convs
        self._as_matmuls = as_matmuls = precision == 'float32' and (
            hardware.matmul_convs_are_faster(hardware.capabilities()) if matmul_convs is None
            else matmul_convs)
        self._vgg19 = vgg19
        self._variants = {precision: self}
        # Mixed: the convolutions keep their weights in bfloat16 too, not Keras' float32
        # (mixed_bfloat16): the same values as casting them in every call, without the casts.
        policy = 'mixed_bfloat16' if precision == 'mixed' else None
        conv_policy = 'bfloat16' if precision == 'mixed' else None
        inputs = keras.Input(shape=(None, None, 3), name='bgr_minus_mean')
        x = inputs
        self._tensors, self._stages = {}, []
        for layer in vgg19.layers[1:]:
            if isinstance(layer, keras.layers.MaxPooling2D) and pooling == 'avg':
                layer = keras.layers.AveragePooling2D(
                    pool_size=layer.pool_size, strides=layer.strides, padding=layer.padding,
                    name=layer.name)
            if isinstance(layer, keras.layers.Conv2D):
                # Mixed: the first convolution, which reads the image, computes in float32
                # and casts its sum to bfloat16. bfloat16 keeps 8 significant bits: the image in
                # it (-124..152 after the mean) would move in steps of 0.5 to 1 level, coarser
                # than L-BFGS's late steps, and the loss would answer them with that rounding's
                # noise. As much memory as bfloat16 throughout: the float32 sum is transient.
                reads_image = precision == 'mixed' and layer.name == vgg_layers.FIRST_CONV
                layer = FrozenConv2D.of(layer, None if reads_image else conv_policy,
                                        output_dtype=conv_policy if reads_image else None,
                                        as_matmuls=as_matmuls and layer.kernel.shape[2] >= 512)
            elif policy:
                layer = type(layer).from_config({**layer.get_config(), 'dtype': policy})
            x = layer(x)
            layer.trainable = False
            self._tensors[layer.name] = x
            self._stages.append((layer.name, layer))
        self._input = inputs
        self._models = {}
        self.layers = tuple(self._tensors)

    def with_precision(self, precision: str) -> 'VGG19Features':
        """The same network computing in `precision` ('float32' or 'mixed'); built once."""
        with _BUILDING:
            if precision not in self._variants:
                variant = VGG19Features(self._vgg19, self.pooling, precision, self.normalized,
                                        self.matmul_convs)
                variant._variants = self._variants
                self._variants[precision] = variant
            return self._variants[precision]

    def with_plain_convs(self) -> 'VGG19Features':
        """The same network with every convolution a conv2d (no shifted matmuls)."""
        if not self._as_matmuls:
            return self
        return VGG19Features(self._vgg19, self.pooling, self.precision, self.normalized,
                             matmul_convs=False)

    def model(self, layers):
        """A Keras model from the input to `layers` (canonical names); shares the weights."""
        layers = tuple(layers)
        with _BUILDING:
            if layers not in self._models:
                self._models[layers] = keras.Model(
                    self._input, {name: self._tensors[name] for name in layers},
                    name='vgg19_' + self.pooling)
            return self._models[layers]

    def stages(self, layers):
        """[(name, Keras layer)] in order, from the first to the deepest of `layers`: the model
        one layer at a time, for callers that reshape what passes between layers (tiling.py
        trims each tile's halo as it is used up). Their input is `preprocess(images)`."""
        deepest = max(vgg_layers.depth(vgg_layers.canonical(name)) for name in layers)
        return self._stages[:deepest + 1]

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


def build_extractor(weights: str = 'imagenet', pooling: str = 'avg', seed: int = 0,
                    calibration_images=None) -> VGG19Features:
    """The paper's feature extractor with the given weights ('imagenet', 'random' or a file).

    With `calibration_images` (a list of H x W x 3 arrays, RGB 0..255) the weights are first
    normalized on them as in the paper (see normalize.py).
    """
    if pooling not in POOLINGS:
        raise ValueError(f'pooling must be avg or max, got {pooling!r}')
    vgg19 = load_vgg19(weights, seed=seed)
    if calibration_images is not None:
        normalize_vgg19(vgg19, VGG19Features(vgg19, pooling=pooling), calibration_images)
    return VGG19Features(vgg19, pooling=pooling, normalized=calibration_images is not None)
