"""Exports stylization itself as a SavedModel: the whole optimisation runs in its graph.

  tf-style export-stylizer --output_dir=stylizer --weights=vgg19_hed.weights.h5
  tf-style export-stylizer --output_dir=starry --style=examples/starry_night.jpg

Signature serving_default: content float32 [H, W, 3] (and style [h, w, 3] unless --style fixed
one at export) -> image uint8 [H, W, 3], loss; with_settings also takes iterations,
content_weight and style_weight. Serving it needs TensorFlow alone (tf.saved_model.load,
saved_model_cli, TensorFlow Serving).
"""

from absl import flags

from .. import images
from .. import outputs
from . import app, stopping
from .options import config_from_flags, define_config_flags

CONFIG_FLAGS = ('weights', 'pooling', 'iterations', 'content_weight', 'style_weight',
                'tv_weight', 'content_layers', 'style_layers', 'content_layer_weights',
                'style_layer_weights', 'optimizer', 'learning_rate', 'lbfgs_history')


def define_flags(fv):
    flags.DEFINE_string('output_dir', None, 'Directory to write the SavedModel to.',
                        required=True, flag_values=fv)
    flags.DEFINE_string('style', None, 'A fixed style image: its targets are computed once and '
                        'stored, and the signature takes only the content.', flag_values=fv)
    flags.DEFINE_float('style_scale', 1.0, "A style given when served: its long side relative "
                       "to the content's.", flag_values=fv)
    flags.DEFINE_integer('style_size', None, 'With --style: its long side in pixels (default: '
                         'as given).', flag_values=fv)
    define_config_flags(fv, CONFIG_FLAGS, help_notes={
        'iterations': ' The served default (the with_settings signature takes others).'})
    flags.DEFINE_boolean('overwrite', False, 'Replace an existing non-empty --output_dir.',
                         flag_values=fv)


def main(FLAGS):
    config = config_from_flags(FLAGS)
    style = images.load_image(FLAGS.style) if FLAGS.style else None
    outputs.check_directory_output(FLAGS.output_dir, FLAGS.overwrite)
    # No iterations here (they run when served): a signal quits at once, the SavedModel being
    # written to a temporary directory that goes with it.
    stopping.current().quit_note = f'stopped: {FLAGS.output_dir} not written'
    app.load_tensorflow()
    from ..export_stylizer import export_stylizer
    from ..network import build_extractor
    path = export_stylizer(
        FLAGS.output_dir, build_extractor(config.weights, config.pooling), style,
        style_scale=FLAGS.style_scale, style_size=FLAGS.style_size, overwrite=FLAGS.overwrite,
        **{name: getattr(config, name) for name in CONFIG_FLAGS[2:]})
    fixed = f', style {FLAGS.style} fixed' if FLAGS.style else ''
    app.say(f'wrote SavedModel {path} ({config.optimizer}, {config.iterations} iterations'
            f'{fixed})')
