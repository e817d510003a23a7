"""Clips in and out (tf_style/video/io.py), on tiny clips each test writes itself with PyAV."""

import fractions
import os

import numpy as np
import pytest

av = pytest.importorskip('av')

from tf_style import images  # noqa: E402
from tf_style.errors import VideoError  # noqa: E402
from tf_style.video import io  # noqa: E402

N, W, H, FPS = 8, 64, 48, 10
RATE, TONE = 16000, 440.0


def frames(n=N, w=W, h=H, seed=0):
    """Smooth, different frames: a gradient whose red channel moves, plus a little noise."""
    rng = np.random.default_rng(seed)
    x = np.linspace(0, 255, w)[None, :]
    y = np.linspace(0, 255, h)[:, None]
    for i in range(n):
        red = (x + 20 * i) % 256 + 0 * y
        green = y + 0 * x
        blue = np.full((h, w), 30.0 * i % 256)
        image = np.stack([red, green, blue], -1) + rng.normal(0, 1, (h, w, 3))
        yield np.clip(image, 0, 255).astype(np.uint8)


def make_clip(path, n=N, audio=True):
    """An mp4 (x264 + AAC) or webm (VP9 + Opus) of `n` frames at FPS, with a sine tone."""
    with av.open(str(path), 'w') as container:
        video = container.add_stream('libx264' if str(path).endswith('.mp4') else 'libvpx-vp9',
                                     rate=FPS)
        video.width, video.height, video.pix_fmt = W, H, 'yuv420p'
        if audio:
            sound = container.add_stream('aac' if str(path).endswith('.mp4') else 'libopus',
                                         rate=RATE if str(path).endswith('.mp4') else 48000)
            sound.layout = 'mono'
        for i, image in enumerate(frames(n)):
            frame = av.VideoFrame.from_ndarray(image, format='rgb24')
            frame.pts = i
            for packet in video.encode(frame):
                container.mux(packet)
        if audio:
            rate = sound.codec_context.sample_rate
            t = np.arange(int(rate * n / FPS)) / rate
            samples = (0.3 * np.sin(2 * np.pi * TONE * t)).astype(np.float32)
            for start in range(0, len(samples), 1024):
                chunk = av.AudioFrame.from_ndarray(samples[None, start:start + 1024],
                                                   format='flt', layout='mono')
                chunk.sample_rate, chunk.pts = rate, start
                for packet in sound.encode(chunk):
                    container.mux(packet)
            for packet in sound.encode(None):
                container.mux(packet)
        for packet in video.encode(None):
            container.mux(packet)
    return str(path)


def make_directory(path, n=4, sizes=None):
    os.makedirs(path)
    for i, image in enumerate(frames(n)):
        if sizes:
            image = image[:sizes[i][0], :sizes[i][1]]
        images.save_image(os.path.join(path, f'f{i:02d}.{"png" if i % 2 else "jpg"}'), image)
    return str(path)


def audio_of(path):
    """(codec name, mono samples as float, sample rate) of a clip's first audio stream."""
    with av.open(path) as container:
        stream = container.streams.audio[0]
        chunks = [f.to_ndarray().reshape(f.to_ndarray().shape[0], -1).astype(np.float64).mean(0)
                  if f.format.is_planar else f.to_ndarray().astype(np.float64).ravel()
                  for f in container.decode(stream)]
        return stream.codec_context.name, np.concatenate(chunks), stream.codec_context.sample_rate


def dominant_frequency(samples, rate):
    spectrum = np.abs(np.fft.rfft(samples * np.hanning(len(samples))))
    return np.fft.rfftfreq(len(samples), 1 / rate)[np.argmax(spectrum)]


def test_probe_and_read_a_video(tmp_path):
    path = make_clip(tmp_path / 'in.mp4')
    info = io.probe(path)
    assert (info.frames, info.height, info.width, info.fps, info.has_audio) == (
        N, H, W, FPS, True)
    read = io.read_frames(path)
    assert not isinstance(read, (list, tuple))  # a generator: frames come one at a time
    got = list(read)
    assert len(got) == N and got[0].shape == (H, W, 3) and got[0].dtype == np.uint8
    # Lossy, but the frames are these frames in this order.
    mine = [frame.astype(int) for frame in got]
    for i, theirs in enumerate(frames()):
        assert np.abs(mine[i] - theirs).mean() < 6 < np.abs(mine[i - 1] - theirs).mean()


def test_probe_and_read_a_directory_in_name_order(tmp_path):
    path = make_directory(tmp_path / 'clip')
    info = io.probe(path)
    assert info.is_directory and info.frames == 4 and (info.height, info.width) == (H, W)
    assert info.names == ('f00.jpg', 'f01.png', 'f02.jpg', 'f03.png') and not info.has_audio
    got = list(io.read_frames(path))
    np.testing.assert_array_equal(got[1], list(frames(4))[1])  # PNG: exact
    assert io.frame_names(info) == ('f00.png', 'f01.png', 'f02.png', 'f03.png')


@pytest.mark.parametrize('ext', ['.mp4', '.webm', '.gif', '.mkv'])
def test_write_video_round_trip_keeps_frames_and_frame_rate(tmp_path, ext):
    source = io.probe(make_clip(tmp_path / 'in.mp4', audio=False))
    out = str(tmp_path / ('out' + ext))
    assert io.write_clip(out, frames(), source) == N
    info = io.probe(out)
    assert (info.frames, info.height, info.width, info.fps) == (N, H, W, FPS)
    for mine, theirs in zip(io.read_frames(out), frames()):
        assert np.abs(mine.astype(int) - theirs).mean() < 6
    assert sorted(os.listdir(tmp_path)) == sorted(['in.mp4', 'out' + ext])  # no temporary left


def test_write_video_of_odd_size(tmp_path):
    out = str(tmp_path / 'odd.mp4')
    io.write_clip(out, (f[:47, :63] for f in frames()), fps=fractions.Fraction(30000, 1001))
    info = io.probe(out)
    # 4:2:0 chroma needs even sides: the last row and column are repeated.
    assert (info.height, info.width, info.frames) == (48, 64, N)
    assert abs(float(info.fps) - 29.97) < 0.01


@pytest.mark.parametrize('ext, codec', [('.mp4', 'aac'), ('.mkv', 'aac'), ('.webm', 'opus')])
def test_audio_is_carried_over(tmp_path, ext, codec):
    path = make_clip(tmp_path / 'in.mp4')
    out = str(tmp_path / ('out' + ext))
    io.write_clip(out, io.read_frames(path), io.probe(path))
    assert io.probe(out).has_audio
    name, samples, rate = audio_of(out)
    assert name == codec  # mp4 / mkv: the AAC stream copied; webm: re-encoded as Opus
    assert abs(len(samples) / rate - N / FPS) < 0.1
    assert abs(dominant_frequency(samples, rate) - TONE) < 5


def test_gif_output_drops_the_audio(tmp_path):
    path = make_clip(tmp_path / 'in.mp4')
    out = str(tmp_path / 'out.gif')
    io.write_clip(out, io.read_frames(path), io.probe(path))
    assert not io.probe(out).has_audio and io.probe(out).frames == N


def test_write_frames_to_a_directory_with_the_inputs_names(tmp_path):
    source = io.probe(make_directory(tmp_path / 'clip'))
    out = str(tmp_path / 'out')
    assert io.write_clip(out, io.read_frames(source.path), source) == 4
    assert sorted(os.listdir(out)) == ['f00.png', 'f01.png', 'f02.png', 'f03.png']
    np.testing.assert_array_equal(images.load_image(os.path.join(out, 'f01.png')),
                                  list(frames(4))[1])


def test_an_interrupted_write_leaves_nothing(tmp_path):
    out = str(tmp_path / 'out.mp4')

    def failing():
        yield from list(frames())[:3]
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        io.write_clip(out, failing())
    assert os.listdir(tmp_path) == []
    with pytest.raises(VideoError, match='no frames'):
        io.write_clip(out, iter(()))
    assert os.listdir(tmp_path) == []


def test_an_existing_output_is_replaced_only_at_the_end(tmp_path):
    out = tmp_path / 'out.mp4'
    io.write_clip(str(out), frames(3))
    before = out.read_bytes()

    def failing():
        yield next(frames())
        raise RuntimeError('boom')

    with pytest.raises(RuntimeError):
        io.write_clip(str(out), failing())
    assert out.read_bytes() == before and os.listdir(tmp_path) == ['out.mp4']


def test_unreadable_video_and_zero_frames(tmp_path):
    junk = tmp_path / 'junk.mp4'
    junk.write_bytes(b'not a video at all' * 10)
    with pytest.raises(VideoError, match="cannot read clip .*junk.mp4"):
        io.probe(str(junk))
    with pytest.raises(VideoError, match='cannot read clip'):
        list(io.read_frames(str(junk)))
    with pytest.raises(VideoError, match='no such file'):
        io.probe(str(tmp_path / 'missing.mp4'))
    empty = tmp_path / 'empty'
    empty.mkdir()
    with pytest.raises(VideoError, match='holds no image files'):
        io.probe(str(empty))
    silent = tmp_path / 'silent.mp4'
    with av.open(str(silent), 'w') as container:  # an audio-only file: no video frames
        sound = container.add_stream('aac', rate=RATE)
        sound.layout = 'mono'
        chunk = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.float32), format='flt',
                                           layout='mono')
        chunk.sample_rate, chunk.pts = RATE, 0
        for packet in [*sound.encode(chunk), *sound.encode(None)]:
            container.mux(packet)
    with pytest.raises(VideoError, match='no video'):
        io.probe(str(silent))


def test_mismatched_frame_sizes_in_a_directory(tmp_path):
    path = make_directory(tmp_path / 'clip', 3, sizes=[(H, W), (H, W), (H - 2, W)])
    with pytest.raises(VideoError, match=r'frames differ in size \(f00.jpg is 64x48, f02.jpg is '
                                         r'64x46\)'):
        io.probe(path)


def test_output_that_is_an_input_is_refused(tmp_path):
    clip = make_clip(tmp_path / 'in.mp4', n=2, audio=False)
    directory = make_directory(tmp_path / 'frames', 2)
    style = str(tmp_path / 'frames' / 'f01.png')
    for output, inputs, names in [(clip, [clip], ()), (directory, [directory], ()),
                                  (str(tmp_path / 'frames' / '..' / 'in.mp4'), [clip], ()),
                                  # a frame written into a directory would replace the style
                                  (directory, [clip, style], ('f00.png', 'f01.png'))]:
        with pytest.raises(VideoError, match='would replace input'):
            io.check_output(output, inputs, names)
    io.check_output(str(tmp_path / 'out.mp4'), [clip, directory])
    io.check_output(directory, [clip, style], ('frame_00001.png',))
    io.check_output(str(tmp_path / 'out'), [clip, directory])
    with pytest.raises(VideoError, match='does not exist'):
        io.check_output(str(tmp_path / 'no' / 'out.mp4'))
    notes = tmp_path / 'notes.txt'
    notes.write_text('x')
    with pytest.raises(VideoError, match='is a file, not a directory'):
        io.check_output(str(notes))
