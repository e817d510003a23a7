"""README's examples of TensorFlow pipelines, run as a user would: in a fresh process, in a folder
holding the SavedModels they name (exported here with random weights and few iterations)."""

import os
import re
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from conftest import EXAMPLES, ROOT, run_bin


def pipeline_examples():
    with open(os.path.join(ROOT, 'README.md')) as f:
        text = f.read()
    section = text.split('## In TensorFlow pipelines', 1)[1].split('\n## ', 1)[0]
    return re.findall(r'```(python|sh)\n(.*?)```', section, re.S)


def test_the_section_has_its_examples():
    kinds = [kind for kind, _ in pipeline_examples()]
    assert kinds == ['python', 'sh', 'python']


@pytest.mark.slow
def test_every_pipeline_example_runs(tmp_path):
    pytest.importorskip('apache_beam')
    r = run_bin('export_extractor', f'--output_dir={tmp_path / "vgg19_features"}',
                '--weights=random')
    assert r.returncode == 0, r.stderr
    r = run_bin('export_stylizer', f'--output_dir={tmp_path / "starry_stylizer"}',
                '--weights=random', '--iterations=2', '--style_size=32',
                f'--style={os.path.join(EXAMPLES, "starry_night.jpg")}',
                '--style_layers=conv1_1,conv2_1', '--content_layers=conv2_2')
    assert r.returncode == 0, r.stderr
    (tmp_path / 'photos').mkdir()
    photo = np.random.default_rng(0).integers(0, 255, (24, 32, 3), np.uint8)
    Image.fromarray(photo).save(tmp_path / 'photos' / 'a.jpg')
    np.save(tmp_path / 'photo.npy', photo.astype(np.float32))
    bin_dir = os.path.dirname(sys.executable)
    env = dict(os.environ, PATH=bin_dir + os.pathsep + os.environ.get('PATH', ''))
    for kind, code in pipeline_examples():
        command = [sys.executable, '-c', code] if kind == 'python' else ['sh', '-c', code]
        r = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, env=env,
                           timeout=600)
        assert r.returncode == 0, (code, r.stderr[-2000:])
    assert os.listdir(tmp_path / 'stylized')
