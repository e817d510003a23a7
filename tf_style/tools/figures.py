"""The paper's figures as lists of stylize runs, each one `bin/stylize` command line.

bin/reproduce_figures runs the cells in one process and draws each figure as a contact sheet;
`command_line` gives, for every cell, the bin/stylize command that computes the same image, which
is written beside the figure. No TensorFlow here: this module only describes the runs.

- 'content': content reconstructions from white noise (Fig. 1, top row): conv1_2 ... conv5_2,
  style weight 0.
- 'style': style reconstructions (Fig. 1, bottom row; texture synthesis): content weight 0,
  style layers conv1_1, then conv1_1 + conv2_1, ... up to all five.
- 'ratios': the alpha/beta grid (Fig. 3): one row per ratio 1e-5 ... 1e-2, one column per style
  layer subset as above.
- 'panel': Fig. 2: the content photo in the style of three paintings, alpha/beta = 1e-3.
"""

import dataclasses
import shlex
from typing import Dict, List, Tuple

FIGURES = ('content', 'style', 'ratios', 'panel')
FILE_NAMES = {'content': 'content_reconstructions', 'style': 'style_reconstructions',
              'ratios': 'alpha_beta_grid', 'panel': 'figure2_panel'}

CONTENT_RECONSTRUCTION_LAYERS = ('conv1_2', 'conv2_2', 'conv3_2', 'conv4_2', 'conv5_2')
STYLE_LAYERS = ('conv1_1', 'conv2_1', 'conv3_1', 'conv4_1', 'conv5_1')
# alpha/beta = 10^-k with alpha = 1: beta = 10^k exactly (1 / 1e-5 is not 1e5 in floating point).
RATIO_EXPONENTS = (5, 4, 3, 2)
# The paper's Fig. 2 uses other paintings too; these are the ones examples/ ships.
PANEL_STYLES = ('shipwreck', 'starry_night', 'the_scream')
CONTENT = 'tubingen'
STYLE = 'starry_night'


@dataclasses.dataclass
class Cell:
    figure: str
    caption: str
    content: str               # an example's name (examples/NAME.jpg)
    style: str
    options: Dict[str, object]  # StyleTransferConfig fields particular to this cell


def style_subsets() -> List[Tuple[str, ...]]:
    """conv1_1; conv1_1, conv2_1; ... ; all five (the paper's Fig. 1 and 3)."""
    return [STYLE_LAYERS[:k] for k in range(1, len(STYLE_LAYERS) + 1)]


def cells(figure: str) -> List[Cell]:
    """The runs of one figure, in reading order (row by row)."""
    if figure == 'content':
        return [Cell(figure, layer, CONTENT, STYLE,
                     dict(content_layers=(layer,), style_weight=0.0))
                for layer in CONTENT_RECONSTRUCTION_LAYERS]
    if figure == 'style':
        return [Cell(figure, _subset_caption(layers), CONTENT, STYLE,
                     dict(style_layers=layers, content_weight=0.0))
                for layers in style_subsets()]
    if figure == 'ratios':
        return [Cell(figure, f'1e-{k}, {_subset_caption(layers)}', CONTENT, STYLE,
                     dict(style_layers=layers, content_weight=1.0, style_weight=float(10 ** k)))
                for k in RATIO_EXPONENTS for layers in style_subsets()]
    if figure == 'panel':
        return [Cell(figure, style, CONTENT, style, dict(content_weight=1.0, style_weight=1e3))
                for style in PANEL_STYLES]
    raise ValueError(f'unknown figure {figure!r}: one of {", ".join(FIGURES)}')


def inputs(figure: str) -> List[Tuple[str, str]]:
    """The input images a figure shows before its cells: [(caption, example name)]."""
    return {'content': [(f'{CONTENT} (content)', CONTENT)], 'style': [(f'{STYLE} (style)', STYLE)],
            'ratios': [], 'panel': [(CONTENT, CONTENT)]}[figure]


def columns(figure: str) -> int:
    """Columns of the figure's sheet: one row of inputs and cells; the grid has a column per
    style layer subset."""
    if figure == 'ratios':
        return len(style_subsets())
    return len(inputs(figure)) + len(cells(figure))


def example_path(name: str) -> str:
    """An example's path as the commands written beside a figure name it."""
    return f'examples/{name}.jpg'


def _subset_caption(layers) -> str:
    return layers[0] if len(layers) == 1 else f'{layers[0]}..{layers[-1]}'


def slug(caption: str) -> str:
    """A file name for a cell's caption: 'conv1_1..conv3_1' -> 'conv1_1-conv3_1'."""
    return ''.join(c if c.isalnum() or c in '_-' else '-' for c in
                   caption.replace('..', '-').replace(', ', '_')).strip('-')


def command_line(cell: Cell, content_path: str, style_path: str, output: str,
                 settings: Dict[str, object]) -> str:
    """The stylize command computing `cell` with the run-wide `settings` (flags by
    StyleTransferConfig field name: image_size, iterations, seed, weights, ...)."""
    flags = {**settings, **cell.options}
    words = ['python', 'bin/stylize', f'--content={content_path}', f'--style={style_path}',
             f'--output={output}']
    for name, value in flags.items():
        if isinstance(value, bool):
            words.append(f'--{name}' if value else f'--no{name}')
        elif isinstance(value, (tuple, list)):
            words.append(f'--{name}={",".join(map(str, value))}')
        else:
            # repr: a float's shortest exact spelling, so the flag parses to the same value.
            words.append(f'--{name}={repr(value) if isinstance(value, float) else value}')
    return ' '.join(shlex.quote(w) for w in words)
