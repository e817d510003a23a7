import subprocess

import pytest

from tf_style.tools import benchmark
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
    monkeypatch.setattr(command, 'FLAGS', fv)
    monkeypatch.setattr(app, 'say', lambda message, **kwargs: print(message, **kwargs))
    command.tiles('random')
    lines = capsys.readouterr().out.splitlines()
    rows = [line.split() for line in lines if line.split()[:1] in (['48'], ['64'])]
    # Both fit untiled; the larger one is also run tiled, for the overhead, in tiles of half its
    # long side (1024 px tiles would cover it whole).
    assert [row[:3] for row in rows] == [['48', 'auto', 'untiled'], ['64', 'auto', 'untiled'],
                                         ['64', '32', '32']], lines
    assert rows[-1][-1].endswith('x') and float(rows[-1][3]) > 0
