"""Export the feature extractor as a SavedModel, and use an exported one in place of VGG19.

The SavedModel's `serving_default` signature takes `images` (float32 [N, H, W, 3], RGB 0..255,
any N, H, W) and returns a dict: each exported layer's feature maps under its Keras name
(`block1_conv1`, ...) and its Gram matrices G = F^T F ([N, C, C], unnormalised as in the paper)
under `<layer>_gram`. Loading needs only TensorFlow, in any of its loaders: `tf.saved_model.load`,
the session-based one (`saved_model_cli`, TensorFlow Serving), `keras.layers.TFSMLayer`, and
`tf.lite.TFLiteConverter.from_saved_model`, whose conversion `export_extractor` checks before it
keeps the export. The network is `plain_vgg.PlainVGG19`: each weight stored once.
"""

import os
import shutil
import warnings

import numpy as np
import tensorflow as tf

from . import temporary, vgg_layers
from .errors import ConfigError, TfStyleError
from .plain_vgg import PlainVGG19

DEFAULT_LAYERS = vgg_layers.STYLE_LAYERS + vgg_layers.CONTENT_LAYERS
_IMAGES = tf.TensorSpec([None, None, None, 3], tf.float32, name='images')
# The largest relative difference (max |TFLite - TF| / max |TF|, per output) an export accepts.
TFLITE_TOLERANCE = 1e-4


class _ExtractorModule(tf.Module):
    def __init__(self, vgg: PlainVGG19, layers):
        super().__init__(name='tf_style_extractor')
        self.vgg = vgg
        self._layers = tuple(layers)

    @tf.function(input_signature=[_IMAGES])
    def features(self, images):
        """Feature maps only (what stylize needs: no Gram matrices), with FrozenConv2D's input
        gradient (PlainVGG19's rotated kernels, rearranged in each call rather than stored)."""
        return self.vgg(images, self._layers, rotated=self.vgg.rotated_kernels())

    @tf.function(input_signature=[_IMAGES])
    def serve(self, images):
        # Plain ops only (TensorFlow's own gradients): what every loader and TFLite accept.
        features = self.vgg(images, self._layers)
        outputs = dict(features)
        for name, value in features.items():
            shape = tf.shape(value)
            flat = tf.reshape(value, [shape[0], -1, shape[3]])
            outputs[name + '_gram'] = tf.matmul(flat, flat, transpose_a=True)
        return outputs


def export_extractor(output_dir: str, extractor, layers=DEFAULT_LAYERS,
                     overwrite: bool = False, check_tflite: bool = True) -> str:
    """Writes `extractor` (a VGG19Features) at `layers` as a SavedModel in `output_dir`.

    It holds the convolutions up to the deepest of `layers`, each kernel and bias once, in
    float32. With `check_tflite` the export is first converted with the TFLite converter and
    refused (TfStyleError) unless the TFLite model keeps every weight and its outputs on a small
    image match TensorFlow's (see `check_tflite_conversion`). The directory is written next to
    its final place and renamed, so a failed or refused export leaves nothing. An existing
    non-empty directory is replaced only with `overwrite`.
    """
    layers = tuple(dict.fromkeys(vgg_layers.canonical(name) for name in layers))
    module = _ExtractorModule(PlainVGG19.of(extractor, layers), layers)
    kernel_bytes = sum(int(np.prod(k.shape)) * 4 for k in module.vgg.kernels)
    check = (lambda path: check_tflite_conversion(path, module.serve, kernel_bytes, layers)
             ) if check_tflite else None
    return save_module(module, output_dir, {'serving_default': module.serve}, overwrite,
                       check=check)


def save_module(module: tf.Module, output_dir: str, signatures, overwrite: bool = False,
                check=None) -> str:
    """tf.saved_model.save into a temporary directory beside `output_dir`, `check(tmp)` (which
    raises to refuse it), then a rename; an existing non-empty directory is replaced only with
    `overwrite`."""
    output_dir = os.path.abspath(output_dir)
    if os.path.exists(output_dir) and (not os.path.isdir(output_dir) or os.listdir(output_dir)):
        if not overwrite:
            raise TfStyleError(f'{output_dir!r} exists and is not empty: choose another '
                               'directory, or replace it', option='output_dir',
                               see=('overwrite',))
    parent = os.path.dirname(output_dir)
    if not os.path.isdir(parent) or not os.access(parent, os.W_OK):
        raise TfStyleError(f'cannot write {output_dir!r}: {parent!r} is not a writable directory')
    tmp = temporary.mkdtemp(prefix='.' + os.path.basename(output_dir) + '.', dir=parent)
    try:
        # mkdtemp makes the directory private (0700); give it the mode os.mkdir would.
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o777 & ~umask)
        tf.saved_model.save(module, tmp, signatures=signatures)
        if check is not None:
            check(tmp)
        if os.path.exists(output_dir):
            shutil.rmtree(output_dir) if os.path.isdir(output_dir) else os.unlink(output_dir)
        os.replace(tmp, output_dir)
    finally:
        if os.path.exists(tmp):
            shutil.rmtree(tmp)
        temporary.release(tmp)
    return output_dir


def check_tflite_conversion(path: str, serve, weight_bytes: int, layers) -> None:
    """Converts the SavedModel at `path` with the TFLite converter and raises TfStyleError unless
    the TFLite model holds at least `weight_bytes` (the kernels': the converter stores equal
    constants, such as zero biases, once) and its `serving_default` outputs equal
    `serve`'s (the TF2 function saved there) on one small random image, to TFLITE_TOLERANCE.

    The converter keeps the input's unknown dimensions (shape signature [-1, -1, -1, 3]) and the
    interpreter's signature runner resizes its input to each call's images, so the TFLite model
    takes any size, as the SavedModel does. Checked at the smallest size that leaves the deepest
    layer 1 x 2 positions, to keep the check quick.
    """
    try:
        flatbuffer = tf.lite.TFLiteConverter.from_saved_model(path).convert()
    except Exception as e:  # the converter raises many kinds
        reason = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise TfStyleError(f'the TFLite converter failed on the export ({reason[:200]}); '
                           'export with check_tflite=False to keep it anyway') from None
    if len(flatbuffer) < weight_bytes:
        raise TfStyleError(
            f'the TFLite converter kept {len(flatbuffer) / 2 ** 20:.1f} MiB of the export\'s '
            f'{weight_bytes / 2 ** 20:.1f} MiB of weights; export with check_tflite=False to '
            'keep the SavedModel anyway')
    side = 2 ** max(map(vgg_layers.halvings, layers))
    images = np.random.default_rng(0).uniform(0, 255, (1, side, 2 * side, 3)).astype(np.float32)
    with warnings.catch_warnings():
        # TensorFlow 2.21 warns that tf.lite.Interpreter moves to the ai_edge_litert package.
        warnings.simplefilter('ignore', UserWarning)
        interpreter = tf.lite.Interpreter(model_content=flatbuffer)
    runner = interpreter.get_signature_runner('serving_default')
    got = runner(images=images)
    expected = {k: v.numpy() for k, v in serve(tf.constant(images)).items()}
    for name in sorted(expected):
        error = _relative_error(got.get(name), expected[name])
        if not error <= TFLITE_TOLERANCE:
            raise TfStyleError(
                f'the TFLite conversion of the export computes {name} with a relative error of '
                f'{error:.2g} (at most {TFLITE_TOLERANCE:g} accepted); export with '
                'check_tflite=False to keep the SavedModel anyway')


def _relative_error(got, expected) -> float:
    if got is None or np.shape(got) != np.shape(expected):
        return float('inf')
    scale = float(np.max(np.abs(expected))) if np.size(expected) else 0.0
    difference = float(np.max(np.abs(got - expected))) if np.size(expected) else 0.0
    if not np.all(np.isfinite(got)):
        return float('inf')
    return difference / scale if scale > 0 else (0.0 if difference == 0 else float('inf'))


class SavedModelFeatures:
    """An exported extractor with the `VGG19Features` call interface, for `stylize`."""

    def __init__(self, path: str):
        from .preflight import check_saved_model
        check_saved_model(path)
        try:
            self._loaded = tf.saved_model.load(path)
            signature = self._loaded.signatures['serving_default']
        except (OSError, ValueError, KeyError, tf.errors.OpError) as e:
            reason = (str(e).strip().splitlines() or [type(e).__name__])[0]
            raise TfStyleError(f'cannot load the SavedModel {path!r}: {reason[:300]}',
                               option='extractor') from None
        self.layers = tuple(name for name in signature.structured_outputs
                            if not name.endswith('_gram'))
        # Prefer the features-only function; a SavedModel from elsewhere may have just the signature.
        self._features = getattr(self._loaded, 'features', None)
        self._signature = signature

    def __call__(self, images, layers=DEFAULT_LAYERS):
        layers = tuple(vgg_layers.canonical(name) for name in layers)
        missing = [name for name in layers if name not in self.layers]
        if missing:
            raise ConfigError(f'the exported extractor has no layer {", ".join(missing)} '
                              f'(it has {", ".join(self.layers)}): export it with more layers')
        images = tf.convert_to_tensor(images, tf.float32)
        outputs = self._features(images) if self._features is not None else \
            self._signature(images=images)
        return {name: outputs[name] for name in layers}


def load_extractor(path: str) -> SavedModelFeatures:
    return SavedModelFeatures(path)
