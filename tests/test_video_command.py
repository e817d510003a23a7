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


def test_the_defaults_start_from_the_content_in_the_styles_colours(tmp_path, monkeypatch):
    """What a newcomer gets without flags: the fastest start (a recognisable picture in few
    iterations) and 300 / 150 iterations; --init=noise when asked for."""
    from absl import flags
    from tf_style.cli import app, stopping, stylize_video
    from tf_style.video import io, resumable
    pan(tmp_path / 'clip', frames=2)
    used = []

    def stylize_clip(store, content, styles, config, **options):
        used.append((config.init, options['first_frame_iterations'], options['iterations']))
        return 0
    monkeypatch.setattr(resumable, 'stylize_clip', stylize_clip)
    monkeypatch.setattr(io, 'write_clip', lambda *args, **kwargs: 0)
    monkeypatch.setattr(app, 'load_tensorflow', lambda: None)
    monkeypatch.setattr(app, 'say', lambda *args, **kwargs: None)
    monkeypatch.setattr(stopping, '_CURRENT', [stopping.Stopper()])
    for extra in ([], ['--init=noise', '--first_frame_iterations=40', '--iterations=20']):
        fv = flags.FlagValues()
        stylize_video.define_flags(fv)
        fv(['stylize_video', f'--content={tmp_path / "clip"}', f'--style={STYLE}',
            f'--output={tmp_path / "out"}', *extra])
        stylize_video.main(fv)
    assert used == [('content_in_style_colors', 300, 150), ('noise', 40, 20)]


def test_the_frame_store_knows_when_the_last_pass_is_complete(tmp_path):
    from tf_style.video.resumable import FrameStore
    frame = np.zeros((4, 6, 3), np.uint8)
    store = FrameStore(str(tmp_path / 'run'), str(tmp_path / 'out.mp4'))
    store.add(0, frame)
    store.add(2, frame)  # a gap: only frame 0 counts as done in the first pass
    assert len(store.finished()) == 1 and not store.complete(2)
    store.add(1, frame)
    assert store.complete(3) and not store.complete(3, passes=2)
    for index in (2, 0, 1):
        store.add(index, frame, pass_number=2)
    assert store.complete(3, passes=2) and sorted(store.finished_in(2)) == [0, 1, 2]
    store.close()  # a checkpoint directory's frames stay
    assert sorted(os.listdir(tmp_path / 'run')) == ['frames', 'frames_pass2']
    temporary = FrameStore(None, str(tmp_path / 'out.mp4'))
    temporary.add(0, frame)
    temporary.close()
    assert sorted(os.listdir(tmp_path)) == ['run']
