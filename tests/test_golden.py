"""Fixed-seed stylize commands whose pixels must not change when the code is reshaped.

The PNGs in tests/golden/ were written by 0.8.2 (before the 0.9.0 reshape), and again when
L-BFGS's initial inverse Hessian changed (lbfgs.GAMMA_SCALE; the Adam one, g2, moved by at most
one level between the machines), on the machine that tests/golden/machine.json names. On a
machine with the same TensorFlow and CPU features the pixels must be identical; elsewhere
floating-point differences in the kernels are allowed to move a few pixel values, so the images
must only be close.
"""

import json
import os

import numpy as np
import pytest
from PIL import Image

from conftest import EXAMPLES, ROOT, run_bin

pytestmark = pytest.mark.kernels

GOLDEN = os.path.join(ROOT, 'tests', 'golden')
COMMON = ('--weights=random', '--image_size=48', '--seed=1', '--precision=float32',
          '--print_every=0', '--quiet')
COMMANDS = {
    'g1': ('--style=starry_night', '--iterations=5'),
    'g2': ('--style=the_scream', '--iterations=6', '--optimizer=adam', '--init=content'),
    'g3': ('--style=starry_night', '--style=shipwreck', '--style_blend_weights=3,1',
           '--preserve_colors=luminance', '--scales=2', '--iterations=3', '--image_size=64'),
    'g4': ('--style=shipwreck', '--init=content_in_style_colors', '--tv_weight=0.01',
           '--keep_best', '--style_layers=conv1_1,conv3_1', '--style_scale=0.5',
           '--iterations=4'),
}


def _same_machine():
    import tensorflow as tf
    from tf_style import hardware
    with open(os.path.join(GOLDEN, 'machine.json')) as f:
        recorded = json.load(f)['machine']
    caps = hardware.expected_capabilities()
    return recorded == {'tensorflow': tf.__version__, 'onednn': caps.onednn, 'cpu_flags': sorted(
        caps.cpu_flags & {'avx2', 'avx512f', 'avx512_bf16', 'amx_bf16', 'avx512_vnni'})}


def _pixels(path):
    return np.asarray(Image.open(path).convert('RGB'), np.int16)


@pytest.mark.slow
@pytest.mark.parametrize('name', sorted(COMMANDS))
def test_golden_pixels(name, tmp_path):
    args = [a if not a.startswith('--style=') else
            f'--style={os.path.join(EXAMPLES, a[len("--style="):] + ".jpg")}'
            for a in COMMANDS[name]]
    out = tmp_path / f'{name}.png'
    r = run_bin('stylize', f'--content={os.path.join(EXAMPLES, "tubingen.jpg")}',
                f'--output={out}', *COMMON, *args)
    assert r.returncode == 0, r.stderr
    ours, golden = _pixels(out), _pixels(os.path.join(GOLDEN, f'{name}.png'))
    assert ours.shape == golden.shape
    if _same_machine():
        np.testing.assert_array_equal(ours, golden)
    else:
        assert np.mean(np.abs(ours - golden)) < 2.0
