"""stylize over several content images in one process."""

import os

import numpy as np
import pytest
from PIL import Image

from conftest import EXAMPLES, run_bin

STYLE = os.path.join(EXAMPLES, 'starry_night.jpg')
FAST = ('--weights=random', '--image_size=32', '--iterations=1', '--seed=0')


@pytest.mark.slow
def test_a_batch_skips_the_bad_image_and_reruns_skip_the_done(tmp_path):
    photos, out = tmp_path / 'photos', tmp_path / 'out'
    photos.mkdir(), out.mkdir()
    rng = np.random.default_rng(0)
    for name in ('a', 'b'):
        Image.fromarray(rng.integers(0, 255, (40, 48, 3), np.uint8)).save(photos / f'{name}.png')
    (photos / 'c.jpg').write_bytes(b'not a jpeg')
    before = {p.name: p.read_bytes() for p in photos.iterdir()}
    r = run_bin('stylize', f'--content={photos}', f'--style={STYLE}', f'--output_dir={out}',
                *FAST)
    assert r.returncode == 1, r.stderr
    assert sorted(os.listdir(out)) == ['a.png', 'b.png']
    errors = [l for l in r.stderr.splitlines() if 'RANDOM VGG19 WEIGHTS' not in l]
    assert len(errors) == 1 and errors[0].startswith('stylize: ') and 'c.jpg' in errors[0]
    assert 'wrote 2 of 3' in r.stdout and 'failed:' in r.stdout
    assert {p.name: p.read_bytes() for p in photos.iterdir()} == before
    mtimes = {p.name: p.stat().st_mtime_ns for p in out.iterdir()}
    r = run_bin('stylize', f'--content={photos}/[ab].png', f'--style={STYLE}',
                f'--output_dir={out}', *FAST)
    assert r.returncode == 0, r.stderr
    assert 'skipping 2' in r.stdout
    assert {p.name: p.stat().st_mtime_ns for p in out.iterdir()} == mtimes


def test_a_batch_is_refused_without_an_output_dir_or_with_single_run_flags(tmp_path):
    content = os.path.join(EXAMPLES, 'tubingen.jpg')
    r = run_bin('stylize', f'--content={content}', f'--content={content}', f'--style={STYLE}',
                *FAST)
    assert r.returncode == 2 and 'need --output_dir' in r.stderr
    r = run_bin('stylize', f'--content={content}', f'--content={STYLE}', f'--style={STYLE}',
                f'--output_dir={tmp_path}', f'--checkpoint_dir={tmp_path}', *FAST)
    assert r.returncode == 2 and '--checkpoint_dir is for one content image' in r.stderr
    assert os.listdir(tmp_path) == []
