"""The binaries as a user runs them: subprocesses, exit codes, one-line errors, files."""

import hashlib
import json
import os
import shutil

import numpy as np
import pytest
from PIL import Image

from conftest import EXAMPLES, run_bin, start_and_signal

TINY = ['--image_size=32', '--iterations=3', '--weights=random', '--seed=1', '--print_every=1']


@pytest.fixture()
def inputs(tmp_path):
    """Copies of two examples, so a test can check they are left untouched."""
    paths = {}
    for name in ('tubingen', 'starry_night'):
        paths[name] = str(tmp_path / f'{name}.jpg')
        shutil.copy(os.path.join(EXAMPLES, f'{name}.jpg'), paths[name])
    return paths


def digest(path):
    return hashlib.sha256(open(path, 'rb').read()).hexdigest()


def last_line(text):
    return text.strip().splitlines()[-1]


@pytest.mark.slow
def test_tiny_run_writes_the_image_and_its_settings(inputs, tmp_path):
    out = tmp_path / 'out.png'
    r = run_bin('stylize', '--content', inputs['tubingen'], '--style', inputs['starry_night'],
                '--output', out, *TINY)
    assert r.returncode == 0, r.stderr
    assert 'iter 3/3' in r.stdout and f'wrote {out}' in r.stdout
    assert 'RANDOM VGG19 WEIGHTS' in r.stderr
    with Image.open(out) as im:
        assert im.size == (32, 24)
        settings = json.loads(im.text['tf_style.settings'])
    assert settings['seed'] == 1 and settings['iterations'] == 3
    assert sorted(os.listdir(tmp_path)) == ['out.png', 'starry_night.jpg', 'tubingen.jpg']


def bad_cases(tmp_path, inputs):
    text = tmp_path / 'text.jpg'
    text.write_text('not an image')
    return {
        'missing content': (['--content', tmp_path / 'nope.jpg', '--style', inputs['starry_night']],
                            'no such file'),
        'style not an image': (['--content', inputs['tubingen'], '--style', text], 'not an image'),
        'unknown layer': (['--style_layers=conv1_1,conv9_1'], "unknown VGG19 layer 'conv9_1'"),
        'negative weight': (['--style_weight=-1'], 'style_weight must be'),
        'output is an input': (['--output', inputs['tubingen']], 'is the input'),
        'unwritable output': (['--output', tmp_path / 'no' / 'dir' / 'out.png'], 'does not exist'),
        'unknown format': (['--output', tmp_path / 'out.tiffy'], 'unknown image format'),
        'missing weights file': (['--weights', tmp_path / 'none.h5'], 'no such file'),
        'bad layer weights': (['--style_layer_weights=1,2'], '2 values for 5 layers'),
        'unknown init': (['--init=contnet'], 'not one of noise, content, style'),
        'blend weights per style': (['--style_blend_weights=1,2'], '2 values for 1 style'),
        'mask of another picture': (['--content_masks', inputs['starry_night']],
                                    "needs its image's aspect ratio"),
        'masks and labels': (['--content_masks', inputs['tubingen'], '--labels',
                              inputs['tubingen']], 'not both'),
        'calibration without normalization': ([f'--calibration_dir={tmp_path}'],
                                              '--calibration_dir is for --normalize_weights'),
        'empty calibration dir': (['--normalize_weights',
                                   f'--calibration_dir={tmp_path / "no"}'], 'not a directory'),
    }


@pytest.mark.parametrize('case', [
    'missing content', 'style not an image', 'unknown layer', 'negative weight',
    'output is an input', 'unwritable output', 'unknown format', 'missing weights file',
    'bad layer weights', 'unknown init', 'blend weights per style', 'mask of another picture',
    'masks and labels', 'calibration without normalization', 'empty calibration dir'])
def test_bad_input_is_one_line_and_touches_nothing(case, inputs, tmp_path):
    args, message = bad_cases(tmp_path, inputs)[case]
    base = {'--content': inputs['tubingen'], '--style': inputs['starry_night'],
            '--output': tmp_path / 'out.png'}
    argv = [str(a) for a in args]
    for flag, value in base.items():
        if flag not in argv:
            argv += [flag, value]
    before = {p: digest(p) for p in inputs.values()}
    listing = sorted(os.listdir(tmp_path))
    r = run_bin('stylize', *argv, '--iterations=1', '--image_size=32')
    assert r.returncode == 2
    assert 'Traceback' not in r.stderr
    assert last_line(r.stderr).startswith('stylize: error: ')
    assert message in last_line(r.stderr)
    assert sorted(os.listdir(tmp_path)) == listing
    assert {p: digest(p) for p in inputs.values()} == before


@pytest.mark.slow
def test_offline_imagenet_names_the_way_out(inputs, tmp_path):
    # No cached weights, and a proxy that refuses: the real download path, failing fast.
    env = {'KERAS_HOME': str(tmp_path / 'keras'), 'https_proxy': 'http://127.0.0.1:9',
           'HTTPS_PROXY': 'http://127.0.0.1:9'}
    r = run_bin('stylize', '--content', inputs['tubingen'], '--style', inputs['starry_night'],
                '--output', tmp_path / 'out.png', '--image_size=32', env=env)
    assert r.returncode == 2 and 'Traceback' not in r.stderr
    line = last_line(r.stderr)
    assert line.startswith('stylize: error: --weights: could not get the ImageNet VGG19 weights')
    assert 'weights=FILE' in line and 'vgg19_weights_tf_dim_ordering_tf_kernels_notop.h5' in line
    assert not (tmp_path / 'out.png').exists()


@pytest.mark.slow
def test_export_then_stylize_with_the_saved_model(inputs, tmp_path):
    model_dir = tmp_path / 'vgg'
    r = run_bin('export_extractor', '--output_dir', model_dir, '--weights=random',
                '--layers=conv1_1,conv2_1,conv3_1,conv4_1,conv4_2,conv5_1')
    assert r.returncode == 0, r.stderr
    assert (model_dir / 'saved_model.pb').exists()
    again = run_bin('export_extractor', '--output_dir', model_dir, '--weights=random')
    assert again.returncode == 2 and '--overwrite' in last_line(again.stderr)
    out = tmp_path / 'out.jpg'
    r = run_bin('stylize', '--content', inputs['tubingen'], '--style', inputs['starry_night'],
                '--output', out, '--extractor', model_dir, '--image_size=32', '--iterations=2')
    assert r.returncode == 0, r.stderr
    assert Image.open(out).format == 'JPEG'


@pytest.mark.slow
def test_convert_weights_then_stylize_offline(inputs, tmp_path):
    weights = tmp_path / 'vgg19_hed.weights.h5'
    r = run_bin('convert_weights', '--output', weights)
    assert r.returncode == 0, r.stderr
    again = run_bin('convert_weights', '--output', weights)
    assert again.returncode == 2 and '--overwrite' in last_line(again.stderr)
    out = tmp_path / 'out.webp'
    r = run_bin('stylize', '--content', inputs['tubingen'], '--style', inputs['starry_night'],
                '--output', out, f'--weights={weights}', '--image_size=48', '--iterations=2',
                '--init=content')
    assert r.returncode == 0, r.stderr
    assert 'RANDOM' not in r.stderr
    assert Image.open(out).size == (48, 36)


@pytest.mark.slow
def test_convert_weights_normalizes_on_a_directory(inputs, tmp_path):
    from tf_style import images, network, normalize, weights as vgg_weights
    weights = tmp_path / 'normalized.weights.h5'
    r = run_bin('convert_weights', '--source=random', '--normalize', '--image_size=48',
                f'--calibration_dir={tmp_path}', '--output', weights)
    assert r.returncode == 0, r.stderr
    assert 'normalized on 2 images' in r.stdout
    calibration = [images.resize_long_side(x, 48) for x in images.load_directory(str(tmp_path))]
    means = normalize.activation_means(network.VGG19Features(vgg_weights.load_vgg19(str(weights))),
                                       calibration)
    for name, m in means.items():
        assert np.median(m[m > 0]) == pytest.approx(1.0, rel=1e-3), name


def stylize_args(inputs, out, *extra):
    return ['--content', inputs['tubingen'], '--style', inputs['starry_night'], '--output', out,
            '--image_size=48', '--weights=random', '--seed=4', *extra]


@pytest.mark.slow
def test_sigint_keeps_the_image_and_resume_matches_an_uninterrupted_run(inputs, tmp_path):
    import signal
    import subprocess
    import sys
    from conftest import ROOT
    whole, again = tmp_path / 'whole.png', tmp_path / 'again.png'
    for out in (whole, again):
        r = run_bin('stylize', *stylize_args(inputs, out, '--iterations=20'))
        assert r.returncode == 0, r.stderr
    # Reproducible: same inputs, settings and seed give the same bytes.
    assert whole.read_bytes() == again.read_bytes()

    out, ckpt = tmp_path / 'out.png', tmp_path / 'ckpt'
    args = stylize_args(inputs, out, '--iterations=20', f'--checkpoint_dir={ckpt}',
                        '--checkpoint_every=1000', '--print_every=1')
    proc = subprocess.Popen([sys.executable, os.path.join(ROOT, 'bin', 'stylize'),
                             *map(str, args)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, cwd=ROOT, env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL='2'))
    for line in proc.stdout:
        if line.startswith('iter 5/'):
            proc.send_signal(signal.SIGINT)
            break
    _, stderr = proc.communicate(timeout=300)
    assert proc.returncode == 130, stderr
    assert 'Traceback' not in stderr and '--resume' in last_line(stderr)
    assert out.exists() and (ckpt / 'ckpt' / 'state.json').exists()
    assert not out.read_bytes() == whole.read_bytes()  # stopped early

    r = run_bin('stylize', *args, '--resume')
    assert r.returncode == 0, r.stderr
    a = np.asarray(Image.open(out), dtype=int)
    b = np.asarray(Image.open(whole), dtype=int)
    assert np.abs(a - b).max() <= 1


def test_existing_output_needs_overwrite(inputs, tmp_path):
    out = tmp_path / 'out.png'
    out.write_bytes(b'precious')
    r = run_bin('stylize', *stylize_args(inputs, out, '--iterations=1'))
    assert r.returncode == 2 and last_line(r.stderr).endswith('(see --overwrite)')
    assert out.read_bytes() == b'precious'


def test_memory_estimate_refuses_an_impossible_size(inputs, tmp_path):
    r = run_bin('stylize', *stylize_args(inputs, tmp_path / 'out.png', '--image_size=60000'))
    assert r.returncode == 2 and len(r.stderr.splitlines()) == 1, r.stderr
    line = last_line(r.stderr)
    assert line.startswith('stylize: error: --image_size: image_size=60000 needs about ')
    assert 'GiB of memory' in line and line.endswith(' or less (see --check_memory)')
    assert not (tmp_path / 'out.png').exists()


@pytest.mark.slow
def test_snapshots_best_image_tensorboard_and_a_tiny_input(tmp_path):
    tiny = tmp_path / 'tiny.png'
    Image.new('RGB', (10, 10), (200, 30, 30)).save(tiny)
    out, logdir = tmp_path / 'run.png', tmp_path / 'tb'
    r = run_bin('stylize', '--content', tiny, '--style', os.path.join(EXAMPLES, 'the_scream.jpg'),
                '--output', out, '--image_size=48', '--weights=random', '--iterations=4',
                '--save_every=2', '--keep_best', f'--logdir={logdir}', '--optimizer=adam')
    assert r.returncode == 0, r.stderr
    assert 'upscaling' in r.stderr
    assert sorted(p.name for p in tmp_path.glob('run*.png')) == [
        'run.png', 'run_0002.png', 'run_0004.png']
    assert Image.open(out).size == (48, 48)
    assert list(logdir.glob('events.out.tfevents.*'))


@pytest.mark.slow
def test_artistic_controls_from_the_command_line(inputs, tmp_path):
    """Two styles over a label image, colours kept, started from a file: flags reach the run."""
    labels = np.zeros((768, 1024, 3), np.uint8)
    labels[:, 512:] = 255
    Image.fromarray(labels).save(tmp_path / 'labels.png')
    out = tmp_path / 'out.png'
    r = run_bin('stylize', '--content', inputs['tubingen'], '--style', inputs['starry_night'],
                '--style', os.path.join(EXAMPLES, 'the_scream.jpg'), '--labels',
                tmp_path / 'labels.png', '--preserve_colors=luminance',
                '--init', inputs['starry_night'], '--init_noise_blend=0.1',
                '--style_scale=1,1.5', '--output', out, *TINY)
    assert r.returncode == 0, r.stderr
    with Image.open(out) as im:
        settings = json.loads(im.text['tf_style.settings'])
    assert settings['preserve_colors'] == 'luminance' and settings['init'] == 'image'
    assert settings['style_scale'] == [1.0, 1.5] and settings['init_noise_blend'] == 0.1


@pytest.mark.slow
def test_contact_sheet(tmp_path):
    out = tmp_path / 'sheet.png'
    r = run_bin('contact_sheet', '--weights=random', '--image_size=32', '--iterations=1',
                '--output', out)
    assert r.returncode == 0, r.stderr
    assert 'masks: starry | scream' in r.stdout and f'wrote {out}' in r.stdout
    with Image.open(out) as im:
        assert im.size[0] == 3 * (32 + 4) + 4     # three columns of 32 px tiles
    r = run_bin('contact_sheet', '--weights=random', '--output', out)
    assert r.returncode == 2 and 'exists' in last_line(r.stderr)


@pytest.mark.slow
def test_sigterm_writes_the_latest_image_and_a_second_ctrl_c_quits_at_once(inputs, tmp_path):
    import signal
    out = tmp_path / 'out.png'
    status, stderr = start_and_signal(
        stylize_args(inputs, out, '--iterations=200', '--print_every=1'), [signal.SIGTERM])
    assert status == 143 and 'Traceback' not in stderr, stderr
    assert 'wrote the latest image' in last_line(stderr)
    first = out.read_bytes()
    assert Image.open(out).size == (48, 36)
    # Two Ctrl-Cs in a row, inside one iteration (about 2 s at 384 px): out at once, the
    # previous output intact, no temporary files left.
    status, stderr = start_and_signal(
        stylize_args(inputs, out, '--iterations=200', '--print_every=1', '--overwrite',
                     '--image_size=384'), [signal.SIGINT, signal.SIGINT])
    assert status == 130 and 'Traceback' not in stderr, stderr
    assert out.read_bytes() == first
    assert sorted(os.listdir(tmp_path)) == ['out.png', 'starry_night.jpg', 'tubingen.jpg']
