"""Exports the VGG19 feature extractor as a SavedModel.

  tf-style export-extractor --output_dir=vgg19_features

Signature serving_default: images float32 [N, H, W, 3], RGB 0..255 -> {layer: features,
layer_gram: Gram matrices}. Load it with tf.saved_model.load(DIR); no tf_style needed.
"""

from absl import flags

from .. import vgg_layers
from ..config import POOLINGS
from .. import outputs
from . import app

DEFAULT_LAYERS = vgg_layers.STYLE_LAYERS + vgg_layers.CONTENT_LAYERS


def define_flags(fv):
    flags.DEFINE_string('output_dir', None, 'Directory to write the SavedModel to.',
                        required=True, flag_values=fv)
    flags.DEFINE_string('weights', 'imagenet', "'imagenet', a weights file, or 'random'.",
                        flag_values=fv)
    flags.DEFINE_enum('pooling', 'avg', POOLINGS, 'Pooling in VGG19: avg (the paper) or max.',
                      flag_values=fv)
    flags.DEFINE_list('layers', list(DEFAULT_LAYERS), 'Layers to export.', flag_values=fv)
    flags.DEFINE_boolean('overwrite', False, 'Replace an existing non-empty --output_dir.',
                         flag_values=fv)


def main(FLAGS):
    layers = [vgg_layers.canonical(name) for name in FLAGS.layers]
    outputs.check_directory_output(FLAGS.output_dir, FLAGS.overwrite)
    app.load_tensorflow()
    from ..export import export_extractor
    from ..network import build_extractor
    path = export_extractor(FLAGS.output_dir, build_extractor(FLAGS.weights, FLAGS.pooling),
                            layers=layers, overwrite=FLAGS.overwrite)
    app.say(f'wrote SavedModel {path} (layers: {", ".join(layers)})')
