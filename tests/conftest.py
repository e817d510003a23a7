"""Shared fixtures: one extractor of each kind per session, tiny images, subprocess helpers."""

import os
import subprocess
import sys

import numpy as np
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
EXAMPLES = os.path.join(ROOT, 'examples')

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')
# Tests compare images byte for byte (seeded runs, resumes, golden pixels): on a GPU that needs
# TensorFlow's deterministic kernels, which this variable asks for in this process and in the
# commands the tests start. (Not run here: no TensorFlow has run on a GPU in this project yet.)
if os.path.exists('/dev/nvidia0'):
    os.environ.setdefault('TF_DETERMINISTIC_OPS', '1')


def example(name: str, long_side: int = None) -> np.ndarray:
    """An image from examples/ as float32 0..255, optionally resized."""
    from tf_style import images
    image = images.load_image(os.path.join(EXAMPLES, name + '.jpg'))
    return images.resize_long_side(image, long_side) if long_side else image.astype(np.float32)


def run_bin(name, *args, env=None, timeout=600):
    """Runs bin/NAME in a fresh Python process; returns the CompletedProcess."""
    full_env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL='2', **(env or {}))
    return subprocess.run([sys.executable, os.path.join(ROOT, 'bin', name), *map(str, args)],
                          capture_output=True, text=True, env=full_env, timeout=timeout, cwd=ROOT)


def start_and_signal(args, signals, at='iter 3/'):
    """Starts bin/stylize, sends `signals` as signal_bin does; returns (exit status, stderr)."""
    done = signal_bin('stylize', args, signals, at)
    return done.returncode, done.stderr


def signal_bin(name, args, signals, at, timeout=300):
    """Starts bin/NAME, sends `signals` 20 ms apart once it prints a line starting with `at` on
    stdout, or once `at()` is true when it is a function (asked every 50 ms: for commands that
    print nothing while they work); returns the CompletedProcess, all its stdout in it."""
    import time
    # Unbuffered: the lines read before the signals are all that communicate() does not read.
    proc = subprocess.Popen([sys.executable, os.path.join(ROOT, 'bin', name), *map(str, args)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, bufsize=0, cwd=ROOT,
                            env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL='2'))
    before = _wait_for(proc, at, time.monotonic() + timeout)
    for sig in signals:
        proc.send_signal(sig)  # nothing once it has ended
        time.sleep(0.02)
    stdout, stderr = proc.communicate(timeout=timeout)
    return subprocess.CompletedProcess(proc.args, proc.returncode, before + stdout.decode(),
                                       stderr.decode())


def _wait_for(proc, at, deadline):
    """The stdout `proc` printed up to a line starting with `at`, or '' once `at()` is true
    (or `proc` ended, or the deadline passed)."""
    import time
    if callable(at):
        while not at() and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        return ''
    lines = []
    for line in iter(proc.stdout.readline, b''):
        lines.append(line.decode())
        if lines[-1].startswith(at):
            break
    return ''.join(lines)


KERNELS = {'default': None, 'eigen': '0', 'onednn': '1'}


def pytest_addoption(parser):
    parser.addoption('--kernels', choices=sorted(KERNELS) + ['other'], default='default',
                     help="TensorFlow's CPU kernels for this run (TF_ENABLE_ONEDNN_OPTS, in this "
                     "process and the commands the tests start): eigen (TensorFlow's default "
                     "kernels, the path of AVX2-only CPUs), onednn, default (as the CPU "
                     "decides), or other (the path this CPU does not take by default). "
                     "BUILD.md#tests")


def pytest_configure(config):
    kernels = config.getoption('--kernels')
    if kernels == 'other':  # of the CPU's default: xdist's workers inherit what is set here
        from tf_style import hardware
        kernels = 'eigen' if hardware.expected_capabilities(environ={}).onednn else 'onednn'
    if KERNELS[kernels] is not None:
        os.environ['TF_ENABLE_ONEDNN_OPTS'] = KERNELS[kernels]


def pytest_report_header(config):
    from tf_style import hardware
    caps = hardware.expected_capabilities()
    bfloat16 = 'native' if hardware.bfloat16_is_fast(caps) else 'emulated'
    return (f'kernels: {"oneDNN" if caps.onednn else "Eigen"}, bfloat16 {bfloat16}; CPU: '
            f'{hardware.cpu_name()} ({hardware.vector_units(caps.cpu_flags) or "no AVX2"})')


@pytest.fixture(scope='session')
def random_extractor():
    from tf_style.network import build_extractor
    return build_extractor('random')


@pytest.fixture(scope='session')
def hed_weights(tmp_path_factory):
    """The offline stand-in for ImageNet VGG19, built with bin/convert_weights' library call."""
    from tf_style.convert import write_hed_vgg19_weights
    return write_hed_vgg19_weights(str(tmp_path_factory.mktemp('weights') / 'vgg19_hed.weights.h5'))


@pytest.fixture(scope='session')
def real_extractor(hed_weights):
    from tf_style.network import build_extractor
    return build_extractor(hed_weights)
