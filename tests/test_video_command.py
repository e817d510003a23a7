"""tf-style stylize-video as a user runs it: a clip of frames, interrupted and resumed."""

import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from PIL import Image

from conftest import EXAMPLES, ROOT, run_bin

pytest.importorskip('cv2')
pytest.importorskip('av')

STYLE = os.path.join(EXAMPLES, 'starry_night.jpg')
FAST = ('--weights=random', '--image_size=48', '--first_frame_iterations=4', '--iterations=3',
        '--seed=0', '--print_every=1', '--checkpoint_every=1')


def pan(folder, frames=3):
    """A window panning across the example photo, 3 px a frame."""
    folder.mkdir()
    photo = np.asarray(Image.open(os.path.join(EXAMPLES, 'tubingen.jpg')).convert('RGB')
                       .resize((160, 120)))
    for t in range(frames):
        Image.fromarray(photo[20:56, 10 + 3 * t:58 + 3 * t]).save(folder / f'f{t:02d}.png')


def pixels(folder):
    return [np.asarray(Image.open(folder / name), np.int16) for name in sorted(os.listdir(folder))]


@pytest.mark.slow
@pytest.mark.parametrize('passes, interrupt_at, saved', [
    (1, 'frame 2/3  iter 1/', {'frames': ['000000.png']}),
    # Multi-pass, in the second (backward) pass: frame 3 is done, frame 2 is interrupted.
    (2, 'frame 2/3  pass 2/2  iter 1/', {'frames': ['000000.png', '000001.png', '000002.png'],
                                         'frames_pass2': ['000002.png']}),
])
def test_an_interrupted_clip_resumes_to_the_same_frames(tmp_path, passes, interrupt_at, saved):
    pan(tmp_path / 'clip')
    fast = (*FAST, f'--passes={passes}')
    whole = run_bin('stylize_video', f'--content={tmp_path / "clip"}', f'--style={STYLE}',
                    f'--output={tmp_path / "whole"}', *fast)
    assert whole.returncode == 0, whole.stderr
    assert [line for line in whole.stderr.splitlines() if 'RANDOM VGG19' not in line] == []
    assert sorted(os.listdir(tmp_path / 'whole')) == ['f00.png', 'f01.png', 'f02.png']
    assert 'frame 3/3' in whole.stdout
    command = [sys.executable, os.path.join(ROOT, 'bin', 'stylize_video'),
               f'--content={tmp_path / "clip"}', f'--style={STYLE}',
               f'--output={tmp_path / "resumed"}', f'--checkpoint_dir={tmp_path / "run"}', *fast]
    child = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    for line in child.stdout:  # interrupt in the second frame's run
        if line.startswith(interrupt_at):
            child.send_signal(signal.SIGINT)
            break
    child.communicate(timeout=600)
    assert child.returncode == 128 + signal.SIGINT
    assert not os.path.exists(tmp_path / 'resumed')
    for folder, names in saved.items():
        assert sorted(os.listdir(tmp_path / 'run' / folder)) == names
    resumed = run_bin('stylize_video', *command[2:], '--resume')
    assert resumed.returncode == 0, resumed.stderr
    assert ('2 stylized in this run' if passes == 1 else '2 frame runs in this run'
            ) in resumed.stdout
    for a, b in zip(pixels(tmp_path / 'whole'), pixels(tmp_path / 'resumed')):
        np.testing.assert_allclose(a, b, atol=1)


def test_bad_clips_are_one_line_before_any_work(tmp_path):
    pan(tmp_path / 'clip', frames=2)
    pan(tmp_path / 'mixed', frames=2)
    (tmp_path / 'empty').mkdir()
    Image.new('RGB', (20, 20)).save(tmp_path / 'mixed' / 'f99.png')  # another size
    (tmp_path / 'broken.mp4').write_bytes(b'not a video')
    for content, output, message in (
            (tmp_path / 'empty', tmp_path / 'o.mp4', 'no image files'),
            (tmp_path / 'broken.mp4', tmp_path / 'o.mp4', 'broken.mp4'),
            (tmp_path / 'clip', tmp_path / 'clip', 'would replace input'),
            (tmp_path / 'mixed', tmp_path / 'o.mp4', 'size')):
        r = run_bin('stylize_video', f'--content={content}', f'--style={STYLE}',
                    f'--output={output}', *FAST)
        assert r.returncode == 2, (content, r.stderr)
        lines = r.stderr.splitlines()
        assert len(lines) == 1 and lines[0].startswith('stylize_video: error:'), r.stderr
        assert message in lines[0], lines[0]
    assert not os.path.exists(tmp_path / 'o.mp4')
