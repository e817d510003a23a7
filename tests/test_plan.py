"""plan.py: what a run will do, worked out before any work and without TensorFlow."""

import dataclasses
import subprocess
import sys

import numpy as np
import pytest

from conftest import ROOT, example
from tf_style import memory, plan
from tf_style.config import StyleTransferConfig
from tf_style.errors import ConfigError, OutputError

GiB = 2 ** 30
PLENTY = memory.Memory(1e6 * GiB)


def test_planning_imports_no_tensorflow():
    code = ('import sys; from tf_style import plan; from tf_style.config import '
            'StyleTransferConfig; p = plan.plan(StyleTransferConfig(image_size=64), (48, 64), '
            '[(30, 40)]); assert "tensorflow" not in sys.modules, "imported"; print(p.size)')
    r = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, cwd=ROOT)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == '(48, 64)'


def test_each_scale_s_sizes_and_iterations():
    config = StyleTransferConfig(image_size=512, scales=3, iterations=10, style_scale=0.5)
    run = plan.plan(config, (300, 400), [(600, 900)], PLENTY)
    assert [s.size for s in run.scales] == [(96, 128), (192, 256), (384, 512)]
    assert [s.iterations for s in run.scales] == [40, 20, 10] and run.iterations == 70
    # The style's long side is style_scale times the content's, at every scale.
    assert [s.styles for s in run.scales] == [((43, 64),), ((85, 128),), ((171, 256),)]
    assert all(s.tile == 0 and s.fits for s in run.scales)
    assert not run.upscaled and run.size == (384, 512)


def test_the_sizes_are_those_the_run_uses():
    from tf_style.inputs import RunInputs
    config = StyleTransferConfig(image_size=96, scales=2, style_scale=1.5)
    inputs = RunInputs.of(example('tubingen'), example('starry_night'))
    run = plan.for_inputs(config, inputs, PLENTY)
    scaled = inputs.scaled(config)
    assert [s.size for s in run.scales] == [x.content.shape[:2] for x in scaled]
    assert [s.styles for s in run.scales] == [tuple(y.shape[:2] for y in x.styles)
                                              for x in scaled]


def test_tiles_where_memory_is_short():
    config = StyleTransferConfig(image_size=4096)
    untiled = memory.estimate_bytes(3072, 4096, config)
    run = plan.plan(config, (3072, 4096), [(3072, 4096)], memory.Memory(untiled / 2))
    final = run.scales[-1]
    assert final.tile > 0 and final.fits
    assert run.memory_bytes == pytest.approx(
        memory.tiled_estimate_bytes(3072, 4096, final.tile, config))
    nothing = plan.plan(config, (3072, 4096), [(3072, 4096)], memory.Memory(GiB / 2))
    assert not nothing.scales[-1].fits and nothing.scales[-1].tile == memory.SMALLEST_TILE


def test_an_image_too_small_for_the_layers_is_refused_before_any_work():
    with pytest.raises(ConfigError, match='needs a short side of at least 16 px') as e:
        plan.plan(StyleTransferConfig(image_size=64, scales=3), (48, 64), [(48, 64)], PLENTY)
    assert e.value.option == 'image_size'


def test_what_it_writes_is_checked(tmp_path):
    config = StyleTransferConfig(image_size=64, iterations=6)
    run = plan.plan(config, (48, 64), [(48, 64)], PLENTY)
    assert run.checkpoint_bytes > 24 * 48 * 64 * 3 * 4  # L-BFGS: 2 x 10 pairs and more
    out = tmp_path / 'out.png'
    checked = plan.check_outputs(run, str(out), save_pattern='{stem}_{iteration}{ext}',
                                 save_every=3, checkpoint_dir=str(tmp_path / 'ckpt'))
    assert checked.writes.snapshot_path(3) == str(tmp_path / 'out_3.png')
    assert {w.what for w in checked.writes.writes} == {'output', 'save_pattern',
                                                       'checkpoint_dir'}
    out.write_bytes(b'x')
    with pytest.raises(OutputError) as e:
        plan.check_outputs(run, str(out))
    assert e.value.option == 'output' and 'overwrite' in e.value.see
    assert out.read_bytes() == b'x'


@pytest.mark.slow
def test_stylize_follows_the_plan_it_is_given(random_extractor):
    from tf_style.transfer import stylize
    content, style = example('tubingen', 64), example('starry_night', 64)
    config = StyleTransferConfig(image_size=64, iterations=1, weights='random',
                                 precision='float32', init='content')
    run = plan.plan(config, content.shape[:2], [style.shape[:2]], PLENTY)
    assert run.scales[-1].tile == 0
    # The plan says tiles of 32 px (as on a machine with little memory): the run follows it.
    run = dataclasses.replace(run, scales=(dataclasses.replace(run.scales[-1], tile=32),))
    stages = []
    result = stylize(content, style, config=config, extractor=random_extractor, plan=run,
                     on_stage=stages.append)
    assert stages and {s.tiles for s in stages} != {1}
    whole = stylize(content, style, config=config, extractor=random_extractor)
    np.testing.assert_allclose(result.losses['total'], whole.losses['total'], rtol=1e-4)


def test_jobs_fit_the_memory():
    assert plan.plan_jobs(0, images=8, cores=2, gpu=False, available=20 * GiB,
                          per_image=GiB) == 2
    config = StyleTransferConfig(image_size=64)
    assert plan.jobs(config, 0, images=1) == 1
    assert plan.jobs(config, 3, images=8, check_memory=False) == 3


def test_the_long_side_rule():
    assert plan.sized((300, 400), 512) == (384, 512)
    assert plan.sized((1, 1000), 10) == (1, 10)  # never a zero side
