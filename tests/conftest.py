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
    """Starts bin/stylize, sends `signals` 20 ms apart once it prints a line starting with `at`;
    returns (exit status, stderr)."""
    import time
    proc = subprocess.Popen([sys.executable, os.path.join(ROOT, 'bin', 'stylize'),
                             *map(str, args)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, cwd=ROOT, env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL='2'))
    for line in proc.stdout:
        if line.startswith(at):
            for sig in signals:
                proc.send_signal(sig)
                time.sleep(0.02)
            break
    _, stderr = proc.communicate(timeout=300)
    return proc.returncode, stderr


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
    if kernels == 'other':
        from tf_style import hardware
        kernels = 'eigen' if hardware.expected_capabilities().onednn else 'onednn'
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
