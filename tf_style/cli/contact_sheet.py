"""Draws README's contact sheet of the artistic controls on the shipped examples.

  tf-style contact-sheet --weights=vgg19_hed.weights.h5 --output=docs/controls.png

One panel per control, all on examples/tubingen.jpg: each style alone, starry_night and
the_scream blended, each colour-preservation mode, and the two styles in the two halves of a
label image. Every panel is one library call with the flags' settings plus the panel's own.
"""

import numpy as np
from absl import flags

from .. import images, outputs
from ..tools import sheets
from . import _examples, app, stopping


def define_flags(fv):
    flags.DEFINE_string('output', 'controls.png', 'Contact sheet image.', flag_values=fv)
    flags.DEFINE_string('weights', 'imagenet', "VGG19 weights: 'imagenet' or a weights file.",
                        flag_values=fv)
    flags.DEFINE_integer('image_size', 192, 'Long side of each stylization.', flag_values=fv)
    flags.DEFINE_integer('iterations', 150, 'L-BFGS iterations per stylization.', flag_values=fv)
    flags.DEFINE_integer('seed', 0, 'Random seed.', flag_values=fv)
    flags.DEFINE_boolean('overwrite', False, 'Replace an existing --output.', flag_values=fv)
    _examples.define_flag(fv)


def main(FLAGS):
    outputs.plan_outputs(FLAGS.output, overwrite=FLAGS.overwrite)
    content, starry, scream = (_examples.load(FLAGS, name) for name in
                               ('tubingen', 'starry_night', 'the_scream'))
    left = np.zeros(content.shape[:2], np.float32)
    left[:, :content.shape[1] // 2] = 1
    panels = [
        ('starry_night', dict(style=starry)),
        ('the_scream', dict(style=scream)),
        ('blend 1:1', dict(style=[starry, scream])),
        ('starry, luminance', dict(style=starry, preserve_colors='luminance')),
        ('starry, histogram', dict(style=starry, preserve_colors='histogram')),
        ('masks: starry | scream', dict(style=[starry, scream], content_masks=[left, 1 - left])),
    ]
    app.load_tensorflow()
    from ..network import build_extractor
    from ..transfer import stylize
    extractor = build_extractor(FLAGS.weights)
    tiles = [('tubingen', content), ('starry_night', starry), ('the_scream', scream)]
    stop = stopping.current()
    stop.begin('stopping after this iteration; the sheet is not written')
    for caption, options in panels:
        stop.check(f'stopped: {FLAGS.output} not written')
        result = stylize(content, extractor=extractor, image_size=FLAGS.image_size,
                         iterations=FLAGS.iterations, init='content', seed=FLAGS.seed,
                         should_stop=stop, **options)
        if not result.completed:
            stop.check(f'stopped: {FLAGS.output} not written')
        app.say(f'{caption}: {app.format_seconds(result.seconds)}, loss '
                f'{result.losses["total"]:.4g}')
        tiles.append((caption, result.image))
    images.save_image(FLAGS.output, sheets.contact_sheet(tiles, columns=3,
                                                         tile_size=FLAGS.image_size))
    app.say(f'wrote {FLAGS.output}')
