"""Reproduces the paper's figures on the shipped examples: one PNG per figure in --output_dir.

  tf-style reproduce-figures --weights=vgg19_hed.weights.h5 --output_dir=figures

Figures (see tf_style/tools/figures.py): content reconstructions from white noise (conv1_2 ...
conv5_2), style reconstructions (conv1_1 ... conv5_1), the alpha/beta grid (ratios 1e-5 ... 1e-2
by style layer subsets) and the Fig. 2 panel (tubingen with shipwreck, starry_night, the_scream).
Beside each FIGURE.png, FIGURE.sh holds one stylize command per cell that computes the same cell
image (written to FIGURE/); the cells run here in one process, with those settings.
"""

import os
import time

from absl import flags

from .. import images, outputs
from ..config import StyleTransferConfig
from ..errors import TfStyleError
from ..tools import figures, sheets
from . import _examples, app, stopping


def define_flags(fv):
    flags.DEFINE_string('output_dir', 'figures', 'Where the figures, their commands and cells '
                        'go.', flag_values=fv)
    flags.DEFINE_list('figures', list(figures.FIGURES), 'Which figures: ' + ', '.join(
        f'{f} ({figures.FILE_NAMES[f]}.png)' for f in figures.FIGURES) + '.', flag_values=fv)
    flags.DEFINE_string('weights', 'imagenet', "VGG19 weights: 'imagenet' or a weights file.",
                        flag_values=fv)
    flags.DEFINE_boolean('normalize_weights', False, "The paper's normalized network "
                         "(normalized on each cell's content and style images, as stylize "
                         'does).', flag_values=fv)
    flags.DEFINE_integer('image_size', 128, 'Long side of every cell.', flag_values=fv)
    flags.DEFINE_integer('iterations', 100, 'L-BFGS iterations per cell, from white noise.',
                         flag_values=fv)
    flags.DEFINE_integer('seed', 0, 'Seed of the white-noise start (the same in every cell).',
                         flag_values=fv)
    flags.DEFINE_boolean('overwrite', False, 'Replace existing figures in --output_dir.',
                         flag_values=fv)
    _examples.define_flag(fv)


def main(FLAGS):
    unknown = [f for f in FLAGS.figures if f not in figures.FIGURES]
    if unknown or not FLAGS.figures:
        raise TfStyleError(f'--figures: unknown {", ".join(unknown) or "(none given)"}; choose '
                           f'from {", ".join(figures.FIGURES)}')
    try:
        os.makedirs(FLAGS.output_dir, exist_ok=True)
    except OSError as e:
        raise TfStyleError(f'cannot create --output_dir {FLAGS.output_dir!r}: {e.strerror}')
    names = {f: os.path.join(FLAGS.output_dir, figures.FILE_NAMES[f]) for f in FLAGS.figures}
    for name in names.values():
        outputs.plan_outputs(name + '.png', overwrite=FLAGS.overwrite)
        if os.path.exists(name + '.sh') and not FLAGS.overwrite:
            raise TfStyleError(f'{name + ".sh"!r} exists: pass --overwrite to replace it')
    settings = dict(image_size=FLAGS.image_size, iterations=FLAGS.iterations, init='noise',
                    seed=FLAGS.seed, weights=FLAGS.weights)
    if FLAGS.normalize_weights:
        settings['normalize_weights'] = True
    StyleTransferConfig(**settings)  # bad settings fail here, before any work
    loaded = {}

    def example(name):
        if name not in loaded:
            loaded[name] = _examples.load(FLAGS, name)
        return loaded[name]

    app.load_tensorflow()
    from ..inputs import calibration_set, scaled_inputs
    from ..network import build_extractor
    from ..transfer import stylize
    extractors = {}

    def extractor_for(cell, config):
        """One network for every cell, or with normalization one per content/style pair."""
        key = (cell.content, cell.style) if FLAGS.normalize_weights else None
        if key not in extractors:
            calibration = None
            if FLAGS.normalize_weights:
                inputs = scaled_inputs(config, example(cell.content), [example(cell.style)])[-1]
                calibration = calibration_set(config, inputs)
            extractors[key] = build_extractor(FLAGS.weights, calibration_images=calibration)
        return extractors[key]

    stop = stopping.current()
    stop.begin('stopping after this iteration; the unfinished cell is not written')
    start = time.perf_counter()
    for figure in FLAGS.figures:
        os.makedirs(names[figure], exist_ok=True)
        tiles = [(caption, example(name)) for caption, name in figures.inputs(figure)]
        commands = [f'# {figures.FILE_NAMES[figure]}.png: one stylize command per cell, from '
                    'the repository root.']
        stopped = f'stopped: kept the figures and cells written; {names[figure]}.png not written'
        for cell in figures.cells(figure):
            stop.check(stopped)
            config = StyleTransferConfig(**settings, **cell.options)
            result = stylize(example(cell.content), example(cell.style), config=config,
                             extractor=extractor_for(cell, config), should_stop=stop)
            if not result.completed:
                stop.check(stopped)  # the cell stopped: not written
            output = os.path.join(names[figure], figures.slug(cell.caption) + '.png')
            images.save_image(output, result.image)
            commands.append(figures.command_line(
                cell, figures.example_path(cell.content), figures.example_path(cell.style),
                output, settings) + ' --overwrite')
            image = (sheets.with_inset(result.image, example(cell.style))
                     if figure == 'panel' else result.image)
            tiles.append((cell.caption, image))
            app.say(f'{figures.FILE_NAMES[figure]}: {cell.caption}: '
                    f'{app.format_seconds(result.seconds)}, loss {result.losses["total"]:.4g}')
        sheet = sheets.contact_sheet(tiles, columns=figures.columns(figure),
                                     tile_size=FLAGS.image_size)
        images.save_image(names[figure] + '.png', sheet)
        images.write_text(names[figure] + '.sh', '\n'.join(commands) + '\n')
        app.say(f'wrote {names[figure]}.png and {names[figure]}.sh '
                f'({app.format_seconds(time.perf_counter() - start)} so far)')
