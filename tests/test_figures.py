import os
import shlex

import numpy as np
import pytest
from PIL import Image

from conftest import ROOT, run_bin
from tf_style.tools import figures
from tf_style.config import StyleTransferConfig


def test_content_reconstructions_use_one_layer_each_and_no_style():
    cells = figures.cells('content')
    assert [c.options['content_layers'] for c in cells] == [
        ('conv1_2',), ('conv2_2',), ('conv3_2',), ('conv4_2',), ('conv5_2',)]
    for cell in cells:
        config = StyleTransferConfig(**cell.options)
        assert config.style_weight == 0
        # The run reads only its content layer: conv1_2 needs block 1 alone.
        assert config.layers == config.content_layers


def test_style_reconstructions_and_the_grid_grow_the_style_layers():
    subsets = [('conv1_1', 'conv2_1', 'conv3_1', 'conv4_1', 'conv5_1')[:k] for k in range(1, 6)]
    style = figures.cells('style')
    assert [c.options['style_layers'] for c in style] == subsets
    assert all(c.options['content_weight'] == 0 for c in style)
    grid = figures.cells('ratios')
    assert len(grid) == 4 * 5
    ratios = [c.options['content_weight'] / c.options['style_weight'] for c in grid]
    assert sorted(set(ratios)) == pytest.approx([1e-5, 1e-4, 1e-3, 1e-2])
    assert [c.options['style_layers'] for c in grid[:5]] == subsets  # a row: every subset
    assert [c.style for c in figures.cells('panel')] == ['shipwreck', 'starry_night', 'the_scream']
    assert all(os.path.exists(os.path.join(ROOT, 'examples', c.style + '.jpg'))
               for f in figures.FIGURES for c in figures.cells(f))


def test_command_line_spells_every_setting_so_it_parses_back():
    cell = figures.cells('ratios')[0]
    line = figures.command_line(cell, 'examples/a b.jpg', 'examples/s.jpg', 'out/x.png',
                                dict(image_size=64, seed=3, normalize_weights=True))
    words = shlex.split(line)
    assert words[:3] == ['python', 'bin/stylize', '--content=examples/a b.jpg']
    assert '--normalize_weights' in words and '--style_layers=conv1_1' in words
    assert float(next(w for w in words if w.startswith('--style_weight=')).split('=')[1]) == \
        cell.options['style_weight']
    assert figures.slug('1e-5, conv1_1..conv3_1') == '1e-5_conv1_1-conv3_1'


def test_unknown_figure_and_existing_output_are_refused(tmp_path):
    r = run_bin('reproduce_figures', '--figures=content,fig9', '--output_dir', tmp_path)
    assert r.returncode == 2 and 'unknown fig9' in r.stderr.strip().splitlines()[-1]
    (tmp_path / 'figure2_panel.sh').write_text('')
    r = run_bin('reproduce_figures', '--figures=panel', '--output_dir', tmp_path)
    assert r.returncode == 2 and '--overwrite' in r.stderr.strip().splitlines()[-1]


@pytest.mark.slow
def test_reproduce_a_figure_and_its_recorded_command_gives_the_same_cell(tmp_path):
    out = tmp_path / 'figs'
    r = run_bin('reproduce_figures', '--figures=panel', '--weights=random', '--image_size=32',
                '--iterations=2', '--normalize_weights', '--output_dir', out)
    assert r.returncode == 0, r.stderr
    with Image.open(out / 'figure2_panel.png') as sheet:
        assert sheet.size == (4 * (32 + 4) + 4, 32 + 16 + 4 + 4)  # content + three cells
    lines = (out / 'figure2_panel.sh').read_text().splitlines()
    assert lines[0].startswith('#') and len(lines) == 4
    words = shlex.split(lines[2])  # starry_night
    cell = next(w for w in words if w.startswith('--output=')).split('=', 1)[1]
    expected = np.asarray(Image.open(cell))
    again = tmp_path / 'again.png'
    words = [f'--output={again}' if w.startswith('--output=') else w for w in words]
    assert words[:2] == ['python', 'bin/stylize']
    r = run_bin('stylize', *words[2:])
    assert r.returncode == 0, r.stderr
    np.testing.assert_array_equal(np.asarray(Image.open(again)), expected)
