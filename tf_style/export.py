"""Export the feature extractor as a SavedModel, and use an exported one in place of VGG19.

The SavedModel's `serving_default` signature takes `images` (float32 [N, H, W, 3], RGB 0..255,
any N, H, W) and returns a dict: each exported layer's feature maps under its Keras name
(`block1_conv1`, ...) and its Gram matrices G = F^T F ([N, C, C], unnormalised as in the paper)
under `<layer>_gram`. Loading needs only TensorFlow: `tf.saved_model.load(DIR)`.
"""

import os
import shutil
import tempfile

import tensorflow as tf

from . import vgg_layers
from .errors import ConfigError, TfStyleError
from .losses import gram_matrix
from .network import preprocess

DEFAULT_LAYERS = vgg_layers.STYLE_LAYERS + vgg_layers.CONTENT_LAYERS
_IMAGES = tf.TensorSpec([None, None, None, 3], tf.float32, name='images')


class _ExtractorModule(tf.Module):
    def __init__(self, extractor, layers):
        super().__init__(name='tf_style_extractor')
        # An attribute, so that tf.saved_model tracks (and saves) the network's variables.
        # conv2d throughout: the shifted matmuls are this CPU's choice, not the loader's.
        self._model = extractor.with_plain_convs().model(layers)

    @tf.function(input_signature=[_IMAGES])
    def features(self, images):
        """Feature maps only (what stylize needs; no Gram matrices to compute)."""
        return self._model(preprocess(images))

    @tf.function(input_signature=[_IMAGES])
    def serve(self, images):
        features = self._model(preprocess(images))
        outputs = dict(features)
        for name, value in features.items():
            outputs[name + '_gram'] = gram_matrix(value)
        return outputs


def export_extractor(output_dir: str, extractor, layers=DEFAULT_LAYERS,
                     overwrite: bool = False) -> str:
    """Writes `extractor` (a VGG19Features) at `layers` as a SavedModel in `output_dir`.

    The directory is written next to its final place and renamed, so a failed export leaves no
    half-written model. An existing non-empty directory is replaced only with `overwrite`.
    """
    layers = tuple(dict.fromkeys(vgg_layers.canonical(name) for name in layers))
    output_dir = os.path.abspath(output_dir)
    if os.path.exists(output_dir) and (not os.path.isdir(output_dir) or os.listdir(output_dir)):
        if not overwrite:
            raise TfStyleError(f'{output_dir!r} exists and is not empty: choose another '
                               'directory or pass --overwrite')
    parent = os.path.dirname(output_dir)
    if not os.path.isdir(parent) or not os.access(parent, os.W_OK):
        raise TfStyleError(f'cannot write {output_dir!r}: {parent!r} is not a writable directory')
    module = _ExtractorModule(extractor, layers)
    tmp = tempfile.mkdtemp(prefix='.' + os.path.basename(output_dir) + '.', dir=parent)
    try:
        tf.saved_model.save(module, tmp, signatures={'serving_default': module.serve})
        if os.path.exists(output_dir):
            shutil.rmtree(output_dir) if os.path.isdir(output_dir) else os.unlink(output_dir)
        os.replace(tmp, output_dir)
    finally:
        if os.path.exists(tmp):
            shutil.rmtree(tmp)
    return output_dir


class SavedModelFeatures:
    """An exported extractor with the `VGG19Features` call interface, for `stylize`."""

    def __init__(self, path: str):
        if not os.path.isfile(os.path.join(path, 'saved_model.pb')):
            raise TfStyleError(f'{path!r} is not a SavedModel directory (no saved_model.pb): '
                               'write one with bin/export_extractor')
        self._loaded = tf.saved_model.load(path)
        signature = self._loaded.signatures['serving_default']
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
                              f'(it has {", ".join(self.layers)}): export it with --layers')
        images = tf.convert_to_tensor(images, tf.float32)
        outputs = self._features(images) if self._features is not None else \
            self._signature(images=images)
        return {name: outputs[name] for name in layers}


def load_extractor(path: str) -> SavedModelFeatures:
    return SavedModelFeatures(path)
