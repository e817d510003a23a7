"""bin/benchmark --sections=pipelines: its content set, and the table on tiny runs."""

import os

import numpy as np
import pytest

from conftest import EXAMPLES
from tf_style import images
from tf_style.tools import pipelines


def test_the_content_set_has_no_two_images_alike(tmp_path):
    sources = [os.path.join(EXAMPLES, n + '.jpg') for n in ('tubingen', 'the_scream')]
    paths = pipelines.content_set(sources, str(tmp_path), 6, 40)
    loaded = [images.load_image(p) for p in paths]
    assert len(paths) == 6 and all(max(a.shape[:2]) == 40 for a in loaded)
    for i in range(6):
        for j in range(i):
            assert (loaded[i].shape != loaded[j].shape
                    or np.abs(loaded[i] - loaded[j]).mean() > 1), (i, j)


@pytest.mark.slow
def test_the_pipelines_section_prints_its_tables(monkeypatch, capsys):
    from absl import flags
    from tf_style.cli import app, benchmark
    fv = flags.FlagValues()
    benchmark.define_flags(fv)
    fv(['benchmark', '--pipeline_images=2', '--pipeline_size=48', '--pipeline_iterations=2'])
    monkeypatch.setattr(app, 'say', lambda message, **kwargs: print(message, **kwargs))
    benchmark.pipelines(fv, 'random')
    out = capsys.readouterr().out

    def row(name):
        return next(line.split() for line in out.splitlines() if name in line)
    # Every way wrote both images, and the first way is the baseline of the ratios.
    for way in ('separate stylize processes', 'one batch stylize process',
                'Beam DirectRunner, 2 workers'):
        assert row(way)[-3] == '2' and row(way)[-1].endswith('x'), out
    assert row('separate stylize processes')[-1] == '1.00x'
    served = row('exported / stylize')
    # The same start, settings and optimiser: the losses agree closely even in 2 iterations.
    assert abs(float(served[-1]) - 1) < 0.02, out
