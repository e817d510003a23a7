"""Ctrl-C and SIGTERM through every long command, as a user sends them: the command stops after
its current iteration or image, keeps what it wrote, and exits 128 + the signal."""

import os
import signal
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from conftest import EXAMPLES, ROOT, signal_bin

CONTENT = os.path.join(EXAMPLES, 'tubingen.jpg')
STYLE = os.path.join(EXAMPLES, 'starry_night.jpg')
TINY = ('--weights=random', '--image_size=32', '--seed=0')


def last_line(text):
    return text.strip().splitlines()[-1]


def photos(folder, count, size=(24, 32)):
    """`count` small random PNGs in `folder`."""
    folder.mkdir()
    rng = np.random.default_rng(0)
    for k in range(count):
        Image.fromarray(rng.integers(0, 255, (*size, 3), np.uint8)).save(folder / f'p{k}.png')
    return folder


def temporaries(folder):
    """What an interrupted write would leave: hidden temporary files and folders."""
    return [name for _, dirs, files in os.walk(folder) for name in dirs + files
            if name.startswith('.')]


def test_importing_the_commands_blocks_and_handles_no_signal():
    """The stopper is the command's, started by app.run: importing a command (reproduce-figures
    imports stylize for a helper) leaves the signals as Python has them (default_int_handler,
    or SIG_IGN when started in the background of a shell without job control)."""
    code = ('import signal\n'
            'before = [signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)]\n'
            'from tf_style.cli import COMMANDS, command_module\n'
            'for name in COMMANDS:\n'
            '    command_module(name)\n'
            'after = [signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)]\n'
            'print(sorted(signal.pthread_sigmask(signal.SIG_BLOCK, [])),\n'
            '      after[0] is before[0], after[1] is before[1])\n')
    done = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True,
                          cwd=ROOT, timeout=300)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ['[]', 'True', 'True']


@pytest.mark.slow
def test_stylize_keeps_its_snapshots_and_writes_the_latest_image(tmp_path):
    out = tmp_path / 'out.png'
    done = signal_bin('stylize', ['--content', CONTENT, '--style', STYLE, '--output', out, *TINY,
                                  '--iterations=1000', '--print_every=1', '--save_every=2'],
                      [signal.SIGINT], at='iter 3/')
    assert done.returncode == 130 and 'Traceback' not in done.stderr, done.stderr
    assert 'wrote the latest image' in last_line(done.stderr)
    assert (tmp_path / 'out_0002.png').exists() and Image.open(out).size == (32, 24)
    assert temporaries(tmp_path) == []


@pytest.mark.slow
def test_a_batch_keeps_the_images_written(tmp_path):
    out = tmp_path / 'out'
    out.mkdir()
    done = signal_bin('stylize', [f'--content={photos(tmp_path / "in", 2)}', '--style', STYLE,
                                  f'--output_dir={out}', '--jobs=1', *TINY, '--iterations=60'],
                      [signal.SIGINT], at='wrote ')
    assert done.returncode == 130 and 'Traceback' not in done.stderr, done.stderr
    assert 'run the same command again' in last_line(done.stderr)
    assert os.listdir(out) == ['p0.png']


@pytest.mark.slow
def test_stylize_video_keeps_the_frames_done(tmp_path):
    pytest.importorskip('cv2')
    pytest.importorskip('av')
    run = tmp_path / 'run'
    done = signal_bin('stylize_video', [f'--content={photos(tmp_path / "clip", 3)}',
                                        f'--style={STYLE}', f'--output={tmp_path / "out"}',
                                        f'--checkpoint_dir={run}', *TINY, '--print_every=1',
                                        '--first_frame_iterations=2', '--iterations=1000'],
                      [signal.SIGINT], at='frame 2/3  iter 1/')
    assert done.returncode == 130 and 'Traceback' not in done.stderr, done.stderr
    assert '--resume' in last_line(done.stderr)
    assert os.listdir(run / 'frames') == ['000000.png']
    assert not (tmp_path / 'out').exists()


@pytest.mark.slow
def test_stylize_beam_keeps_the_images_written(tmp_path):
    pytest.importorskip('apache_beam')
    out = tmp_path / 'out'
    out.mkdir()

    def written():
        return any(name.endswith('.png') and not name.startswith('.')
                   for name in os.listdir(out))

    done = signal_bin('stylize_beam', [f'--input_pattern={photos(tmp_path / "in", 3)}/*.png',
                                       f'--output_dir={out}', f'--style={STYLE}', *TINY,
                                       '--iterations=100'],
                      [signal.SIGINT], at=written)
    assert done.returncode == 130 and 'Traceback' not in done.stderr, done.stderr
    assert 'run the same command again' in last_line(done.stderr)
    kept = [name for name in os.listdir(out) if name.endswith('.png')]
    assert 1 <= len(kept) < 3 and temporaries(out) == []
    for name in kept:
        assert Image.open(out / name).size == (32, 24)


@pytest.mark.slow
def test_reproduce_figures_keeps_the_cells_written(tmp_path):
    out = tmp_path / 'figures'
    done = signal_bin('reproduce_figures', ['--figures=content', f'--output_dir={out}',
                                            '--weights=random', '--image_size=32',
                                            '--iterations=40'],
                      [signal.SIGINT], at='content_reconstructions: ')
    assert done.returncode == 130 and 'Traceback' not in done.stderr, done.stderr
    assert 'content_reconstructions.png not written' in last_line(done.stderr)
    cells = os.listdir(out / 'content_reconstructions')
    assert 1 <= len(cells) < 5 and all(name.endswith('.png') for name in cells)
    assert sorted(os.listdir(out)) == ['content_reconstructions']


@pytest.mark.slow
@pytest.mark.parametrize('sig', [signal.SIGINT, signal.SIGTERM])
def test_contact_sheet_writes_no_sheet(tmp_path, sig):
    out = tmp_path / 'sheet.png'
    done = signal_bin('contact_sheet', ['--weights=random', '--image_size=32',
                                        '--iterations=200', f'--output={out}'],
                      [sig], at='starry_night: ')
    assert done.returncode == 128 + sig and 'Traceback' not in done.stderr, done.stderr
    assert f'{out} not written' in last_line(done.stderr)
    assert os.listdir(tmp_path) == []


@pytest.mark.slow
def test_benchmark_keeps_the_tables_printed(tmp_path):
    done = signal_bin('benchmark', ['--sections=speed,speed', '--sizes=32',
                                    '--precisions=float32', '--steps=2', '--weights=random'],
                      [signal.SIGINT], at='s/iter: ')
    assert done.returncode == 130 and 'Traceback' not in done.stderr, done.stderr
    assert 'tables above are kept' in last_line(done.stderr)
    assert done.stdout.count('s/iter: ') == 1 and '32x24' in done.stdout


@pytest.mark.slow
def test_export_stylizer_leaves_no_partial_saved_model(tmp_path):
    out = tmp_path / 'stylizer'
    done = signal_bin('export_stylizer', [f'--output_dir={out}', '--weights=random'],
                      [signal.SIGINT], at=lambda: temporaries(tmp_path))
    assert done.returncode == 130 and 'Traceback' not in done.stderr, done.stderr
    assert f'{out} not written' in last_line(done.stderr)
    assert os.listdir(tmp_path) == []
