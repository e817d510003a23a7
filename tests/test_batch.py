"""stylize over several content images in one process."""

import os

import numpy as np
import pytest
from PIL import Image

from conftest import EXAMPLES, run_bin, start_and_signal

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
    progress = [l for l in r.stdout.splitlines() if ' iter ' in l]  # after the last iteration
    assert sorted(l.split(' iter ')[0] for l in progress) == ['[1/3]', '[2/3]'], r.stdout
    assert all(l.split(' iter ')[1].startswith('1/1  ') and 'total' in l for l in progress)
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


def test_jobs_one_per_core_as_many_as_fit_and_one_on_a_gpu():
    from tf_style.plan import plan_jobs
    from tf_style.errors import TfStyleError
    GiB = 2 ** 30
    assert plan_jobs(0, images=8, cores=2, gpu=False, available=20 * GiB, per_image=GiB) == 2
    assert plan_jobs(0, images=8, cores=16, gpu=False, available=20 * GiB, per_image=GiB) == 8
    assert plan_jobs(0, images=3, cores=16, gpu=False, available=20 * GiB, per_image=GiB) == 3
    assert plan_jobs(0, images=8, cores=16, gpu=False, available=5 * GiB, per_image=2 * GiB) == 2
    assert plan_jobs(0, images=8, cores=16, gpu=False, available=GiB, per_image=2 * GiB) == 1
    assert plan_jobs(0, images=8, cores=16, gpu=True, available=20 * GiB, per_image=GiB) == 1
    assert plan_jobs(3, images=8, cores=2, gpu=True, available=20 * GiB, per_image=GiB) == 3
    unchecked = float('inf')  # --check_memory=false
    assert plan_jobs(0, images=8, cores=4, gpu=False, available=unchecked, per_image=GiB) == 4
    assert plan_jobs(9, images=8, cores=4, gpu=False, available=unchecked, per_image=GiB) == 9
    with pytest.raises(TfStyleError, match=r'jobs=4 needs about 8.0 GiB.*use jobs=2') as e:
        plan_jobs(4, images=8, cores=16, gpu=False, available=5 * GiB, per_image=2 * GiB)
    assert e.value.option == 'jobs'


def test_too_many_jobs_are_refused_before_any_work(tmp_path):
    content = os.path.join(EXAMPLES, 'tubingen.jpg')
    r = run_bin('stylize', f'--content={content}', f'--content={STYLE}', f'--style={STYLE}',
                f'--output_dir={tmp_path / "new" / "out"}', '--weights=random',
                '--image_size=2048', '--jobs=100000')
    assert r.returncode == 2 and r.stderr.startswith(
        'stylize: error: --jobs: jobs=100000 needs about'), r.stderr
    assert r.stderr.endswith(' or less (see --check_memory)\n')
    assert os.listdir(tmp_path) == []  # the --output_dir it had made, removed again


@pytest.mark.slow
def test_a_batch_creates_its_output_dir(tmp_path):
    photos, out = tmp_path / 'photos', tmp_path / 'new' / 'out'
    photos.mkdir()
    Image.new('RGB', (40, 30), (200, 30, 30)).save(photos / 'a.png')
    r = run_bin('stylize', f'--content={photos}', f'--style={STYLE}', f'--output_dir={out}',
                *FAST)
    assert r.returncode == 0 and r.stderr.count('\n') == 1, r.stderr  # RANDOM VGG19 WEIGHTS
    assert os.listdir(out) == ['a.png']
    assert r.stdout.splitlines()[-1].startswith(f'wrote 1 of 1 image(s) to {out} in ')


@pytest.mark.slow
def test_a_stopped_batch_keeps_what_it_wrote_and_a_rerun_goes_on(tmp_path):
    """Two images at a time; Ctrl-C once the first is written: the written stay, the two being
    stylized are not written (a re-run would skip a half-done one), the re-run does the rest."""
    import signal
    photos, out = tmp_path / 'photos', tmp_path / 'out'
    photos.mkdir(), out.mkdir()
    rng = np.random.default_rng(0)
    for k in range(6):
        Image.fromarray(rng.integers(0, 255, (40, 48 + 8 * k, 3), np.uint8)).save(
            photos / f'p{k}.png')
    args = [f'--content={photos}', f'--style={STYLE}', f'--output_dir={out}', '--jobs=2',
            '--weights=random', '--image_size=48', '--seed=0']
    status, stderr = start_and_signal([*args, '--iterations=60'], [signal.SIGINT], at='wrote ')
    assert status == 130, stderr
    assert 'Traceback' not in stderr and 'run the same command again' in stderr
    written = sorted(os.listdir(out))
    assert 1 <= len(written) < 6 and all(name.endswith('.png') for name in written)
    r = run_bin('stylize', *args, '--iterations=2')
    assert r.returncode == 0, r.stderr
    assert f'skipping {len(written)}' in r.stdout and '2 at a time' in r.stdout
    assert sorted(os.listdir(out)) == [f'p{k}.png' for k in range(6)]
