import os
import subprocess

import numpy as np
import pytest
import tensorflow as tf

from conftest import EXAMPLES
from tf_style.tools import benchmark, child_processes, in_process
from tf_style.config import StyleTransferConfig


def test_iteration_flops_by_hand():
    config = StyleTransferConfig(content_layers=['conv1_1'], style_layers=['conv1_1'])
    conv = 2 * 9 * 3 * 64 * 4 * 4           # one 3x3 conv, 3 -> 64 channels, 16 positions
    gram = 2 * 2 * 16 * 64 * 64             # F^T F and its gradient
    assert benchmark.iteration_flops(4, 4, config) == 2 * conv + gram


def test_iteration_flops_grow_with_pixels():
    config = StyleTransferConfig()
    small, large = (benchmark.iteration_flops(s, s, config) for s in (256, 512))
    assert large == pytest.approx(4 * small, rel=0.01)
    # VGG19 to conv5_1, forward and input gradient, at 512 px: about 0.4 TFLOP.
    assert 3.5e11 < large < 4.5e11


def test_time_to_reach():
    points = [(1.0, 10.0), (2.0, 5.0), (3.0, 4.0)]
    assert benchmark.time_to_reach(points, 5.0) == 2.0
    assert benchmark.time_to_reach(points, 1.0) is None


@pytest.mark.slow
def test_measurements_return_positive_seconds(random_extractor):
    from conftest import example
    content, style = example('tubingen', 32), example('starry_night', 32)
    for measure in (benchmark.seconds_per_evaluation, benchmark.seconds_per_iteration):
        assert measure(content, style, random_extractor, 32, 'float32', 1) > 0
    points, result = benchmark.loss_trajectory(content, style, random_extractor, image_size=64,
                                               iterations=3, scales=2, seed=0)
    # Final-scale iterations only, then the final loss; time only moves forward.
    assert len(points) == 4 and points[-1][1] == result.losses['total']
    assert all(a[0] <= b[0] for a, b in zip(points, points[1:]))


def test_a_mixed_trajectory_holds_float32_losses(random_extractor):
    from conftest import example
    content, style = example('tubingen', 32), example('starry_night', 32)
    points, result = benchmark.loss_trajectory(content, style, random_extractor, image_size=32,
                                               iterations=2, seed=0, init='content',
                                               precision='mixed')
    # The last iteration's image is the result's, whose final loss is evaluated in float32;
    # its bfloat16 loss would differ by far more than this.
    assert len(points) == 3
    assert points[-2][1] == pytest.approx(points[-1][1], rel=1e-5)


def test_peak_memory_is_each_childs_own(tmp_path):
    big, small = tmp_path / 'big.py', tmp_path / 'small.py'
    big.write_text("b = b'x' * (400 * 2 ** 20)\n")
    small.write_text('import sys\nassert sys.argv[1:] == ["--flag"]\n')
    # This process (TensorFlow imported) is larger than the small child: the child's own peak,
    # not one inherited across fork and exec.
    assert benchmark.peak_memory_gib([str(big)]) > 0.39
    assert benchmark.peak_memory_gib([str(small), '--flag']) < 0.1
    with pytest.raises(subprocess.CalledProcessError):
        benchmark.peak_memory_gib([str(tmp_path / 'missing.py')])


def test_last_rate_reads_the_last_progress_line():
    out = ('iter 1/2  24x32  total 1.5e+05  0.25 it/s  ETA 4s\n'
           'iter 2/2  24x32  total 1.2e+05  0.50 it/s  ETA 0s\n'
           'wrote o.png (32x24) in 6s, seed 0, loss 1.2e+05\n')
    assert benchmark.last_rate(out) == 0.5
    assert benchmark.last_rate(out + 'iter 3/3  2048x1536  total 1e+06  38.5 s/it  ETA 0s\n'
                               ) == pytest.approx(1 / 38.5)
    with pytest.raises(ValueError):
        benchmark.last_rate('wrote o.png\n')


@pytest.mark.slow
def test_the_tiles_section_measures_each_size_and_the_overhead(monkeypatch, capsys):
    from absl import flags
    from tf_style.cli import app
    from tf_style.cli import benchmark as command
    fv = flags.FlagValues()
    command.define_flags(fv)
    fv(['benchmark', '--tile_image_sizes=48,64'])
    monkeypatch.setattr(app, 'say', lambda message, **kwargs: print(message, **kwargs))
    command.tiles(fv, 'random')
    lines = capsys.readouterr().out.splitlines()
    rows = [line.split() for line in lines if line.split()[:1] in (['48'], ['64'])]
    # Both fit untiled; the larger one is also run tiled, for the overhead, in tiles of half its
    # long side (1024 px tiles would cover it whole).
    assert [row[:3] for row in rows] == [['48', 'auto', 'untiled'], ['64', 'auto', 'untiled'],
                                         ['64', '32', '32']], lines
    assert rows[-1][-1].endswith('x') and float(rows[-1][3]) > 0


def test_the_machine_and_the_content_shape():
    assert benchmark.machine().tensorflow == tf.__version__
    assert benchmark.content_shape(np.zeros((300, 400, 3)), 200) == (150, 200)


def test_tile_runs_add_the_overhead_run_after_the_largest_untiled_size():
    # The next size up plans 700 px tiles, more than half of 1024: tiles of 512.
    assert child_processes.tile_runs({2048: 700, 1024: 0, 512: 0}) == [
        (512, 'auto'), (1024, 'auto'), (1024, '512'), (2048, 'auto')]
    assert child_processes.tile_runs({4096: 1536, 2048: 0}) == [
        (2048, 'auto'), (2048, '1024'), (4096, 'auto')]
    # Nothing fits untiled: no overhead to measure.
    assert child_processes.tile_runs({4096: 1536, 8192: None}) == [(4096, 'auto'),
                                                                    (8192, 'auto')]


def test_the_quality_baselines_run_in_any_precisions():
    names = [name for name, _ in in_process.quality_runs(6, ['mixed'])]
    assert names[:2] == ['tutorial Adam, 6 steps', 'L-BFGS, 6 iterations']
    assert all('mixed' in name for name in names[2:]) and len(names) == 5
    assert dict(in_process.quality_runs(6, ['float32']))['L-BFGS, 3 scales'] == dict(
        scales=3, iterations=2)


def test_a_section_asked_to_stop_measures_nothing(tmp_path):
    """Asked before any measurement (nothing here could run: no extractor, no images)."""
    stop = lambda: True
    tubingen, style = (os.path.join(EXAMPLES, f'{n}.jpg') for n in ('tubingen', 'starry_night'))
    assert in_process.speed(None, None, None, [32], ['float32'], 1, stop) == []
    assert in_process.quality(None, None, None, 32, 2, ['float32'], stop) is None
    assert child_processes.memory('c', 's', 'random', [32], ['float32'], stop) == []
    assert child_processes.tiles(tubingen, style, 'random', [48], stop) == []
    assert child_processes.reference([('c:s', 'c', 's')], None, 'random', [32], 2, 3.0,
                                     stop) == []
    assert child_processes.pipelines([tubingen], style, 'random', 2, 32, 1, 2, stop,
                                     on_ways=pytest.fail) is None


def test_the_speed_table_keeps_its_columns(monkeypatch, capsys):
    from absl import flags
    from tf_style.cli import app
    from tf_style.cli import benchmark as command
    fv = flags.FlagValues()
    command.define_flags(fv)
    fv(['benchmark', '--precisions=mixed,float32'])
    rows = [in_process.SpeedRow(32, 24, 'mixed', 0.05, 0.04, 1.2, 100.0),
            in_process.SpeedRow(32, 24, 'float32', 0.1, 0.08, 1.2, 50.0, vs_float32=1.0)]
    monkeypatch.setattr(in_process, 'speed', lambda *args: rows)
    monkeypatch.setattr(app, 'say', lambda message, **kwargs: print(message, **kwargs))
    command.speed(fv, None, None, None)
    lines = capsys.readouterr().out.splitlines()
    assert lines[1].split() == ['size', 'precision', 's/iter', 's/eval', 'GFLOP/eval', 'GFLOP/s',
                                'conv', 'GFLOP/s', 'of', 'conv', 'iter', 'vs', 'float32']
    assert lines[3].split() == ['32x24', 'mixed', '0.050', '0.040', '1', '30', '100', '30%', '-']
    assert lines[4].split()[-3:] == ['50', '30%', '1.00x']
