"""Clips in and out: a video file (whatever PyAV's FFmpeg reads and writes: .mp4, .webm, .gif,
...) or a directory of frames (image files, in the order of their names).

Frames are H x W x 3 uint8 RGB arrays. Reading is a generator, so memory does not grow with the
clip; `probe` checks a clip and says what it holds before any frame is stylized. Writing is atomic:
a video is encoded to a temporary file in the output's directory and renamed at the end (an error
or interrupt leaves nothing); frames in a directory are each written with images.save_image. A
video output gets the input's frame rate and audio (copied as it is where the container takes its
codec, else re-encoded with the container's default audio codec; GIF holds none).

No TensorFlow here.
"""

import contextlib
import dataclasses
import fractions
import os
from typing import Iterable, Iterator, Optional, Sequence, Tuple

import numpy as np
from absl import logging
from PIL import Image

from .. import images, temporary
from ..errors import ImageError, VideoError

# Paths with these extensions are video files; any other output path is a directory of frames.
VIDEO_EXTENSIONS = ('.mp4', '.m4v', '.mov', '.mkv', '.webm', '.gif', '.avi')
# The frame rate of a video made from a directory of frames, unless the caller gives one.
DEFAULT_FPS = fractions.Fraction(25)
# (codec, pixel format, encoder options) by output extension. x264 at CRF 18 is visually
# lossless; 4:2:0 chroma is what players and browsers play.
_ENCODERS = {
    '.mp4': ('libx264', 'yuv420p', {'crf': '18', 'preset': 'medium'}),
    '.m4v': ('libx264', 'yuv420p', {'crf': '18', 'preset': 'medium'}),
    '.mov': ('libx264', 'yuv420p', {'crf': '18', 'preset': 'medium'}),
    '.mkv': ('libx264', 'yuv420p', {'crf': '18', 'preset': 'medium'}),
    '.webm': ('libvpx-vp9', 'yuv420p', {'crf': '24', 'b': '0'}),
    '.avi': ('mpeg4', 'yuv420p', {'qscale': '2'}),
    '.gif': ('gif', 'pal8', {}),
}
# Pixel formats that need an even width and height.
_SUBSAMPLED = ('yuv420p',)


@dataclasses.dataclass(frozen=True)
class ClipInfo:
    path: str
    frames: int
    height: int
    width: int
    # None for a directory of frames.
    fps: Optional[fractions.Fraction]
    has_audio: bool
    # A directory's image file names, in reading order; None for a video file.
    names: Optional[Tuple[str, ...]] = None

    @property
    def is_directory(self) -> bool:
        return self.names is not None


def _av():
    try:
        import av
    except ImportError:
        raise VideoError('video files need PyAV: pip install "tf_style[video]" (av)') from None
    return av


def is_video_path(path: str) -> bool:
    """Whether `path` names a video file (by its extension) rather than a directory of frames."""
    return os.path.splitext(path)[1].lower() in VIDEO_EXTENSIONS


def _reason(error: Exception) -> str:
    text = str(error).strip().splitlines()
    return text[0] if text else type(error).__name__


# Reading.

def probe(path: str) -> ClipInfo:
    """Checks clip `path` and says what it holds; VideoError when no frames can be read from it,
    or when the frames of a directory differ in size."""
    if not os.path.exists(path):
        raise VideoError(f'cannot read clip {path!r}: no such file or directory')
    return _probe_directory(path) if os.path.isdir(path) else _probe_video(path)


@contextlib.contextmanager
def _video_stream(path: str):
    """(container, its first video stream), with FFmpeg's errors as one-line VideoErrors."""
    av = _av()
    try:
        with av.open(path) as container:
            if not container.streams.video:
                raise VideoError(f'cannot read clip {path!r}: it has no video stream')
            yield container, container.streams.video[0]
    except VideoError:
        raise
    except (av.FFmpegError, OSError, ValueError) as e:
        raise VideoError(f'cannot read clip {path!r}: {_reason(e)}') from None


def _probe_video(path: str) -> ClipInfo:
    with _video_stream(path) as (container, stream):
        # The header's count is missing or approximate in some containers: count the packets.
        frames = sum(1 for packet in container.demux(stream) if packet.size)
        fps = stream.average_rate or stream.guessed_rate or stream.base_rate
        info = ClipInfo(path=path, frames=frames, height=stream.codec_context.height,
                        width=stream.codec_context.width,
                        fps=fractions.Fraction(fps) if fps else DEFAULT_FPS,
                        has_audio=bool(container.streams.audio))
    if not info.frames or not info.width:
        raise VideoError(f'cannot read clip {path!r}: it has no video frames')
    return info


def _probe_directory(path: str) -> ClipInfo:
    names = tuple(sorted(n for n in os.listdir(path)
                         if n.lower().endswith(images.IMAGE_EXTENSIONS)
                         and os.path.isfile(os.path.join(path, n))))
    if not names:
        raise VideoError(f'cannot read clip {path!r}: the directory holds no image files '
                         f'({", ".join(images.IMAGE_EXTENSIONS)})')
    stems = [os.path.splitext(n)[0] for n in names]
    if len(set(stems)) != len(stems):
        twin = next(s for s in stems if stems.count(s) > 1)
        raise VideoError(f'clip {path!r} has two frames named {twin!r} (different extensions): '
                         'their outputs would have the same name')
    sizes = {}
    for name in names:
        sizes.setdefault(_image_size(os.path.join(path, name)), name)
    if len(sizes) > 1:
        (a, first), (b, other) = list(sizes.items())[:2]
        raise VideoError(f'clip {path!r}: frames differ in size ({first} is {a[1]}x{a[0]}, '
                         f'{other} is {b[1]}x{b[0]}); every frame must be the same size')
    (height, width), = sizes
    return ClipInfo(path=path, frames=len(names), height=height, width=width, fps=None,
                    has_audio=False, names=names)


def _image_size(path: str) -> Tuple[int, int]:
    """(height, width) of an image file as load_image will return it, from its header."""
    try:
        with Image.open(path) as image:
            width, height = image.size
            # EXIF orientations 5-8 are transposed: load_image swaps the sides.
            if image.getexif().get(0x0112, 1) in (5, 6, 7, 8):
                width, height = height, width
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as e:
        raise VideoError(f'cannot read frame {path!r}: {_reason(e)}') from None
    return height, width


def read_frames(path: str) -> Iterator[np.ndarray]:
    """The frames of clip `path`, one H x W x 3 uint8 array at a time."""
    if os.path.isdir(path):
        yield from _read_directory(probe(path))
    else:
        yield from _read_video(path)


def _read_directory(info: ClipInfo) -> Iterator[np.ndarray]:
    for name in info.names:
        try:
            frame = images.load_image(os.path.join(info.path, name))
        except ImageError as e:
            raise VideoError(str(e)) from None
        if frame.shape[:2] != (info.height, info.width):
            raise VideoError(f'clip {info.path!r}: frame {name} is {frame.shape[1]}x'
                             f'{frame.shape[0]}, not {info.width}x{info.height} like the first')
        yield frame


def _read_video(path: str) -> Iterator[np.ndarray]:
    with _video_stream(path) as (container, stream):
        stream.thread_type = 'AUTO'
        size = None
        for frame in container.decode(stream):
            array = frame.to_ndarray(format='rgb24')
            size = size or array.shape
            if array.shape != size:
                raise VideoError(f'clip {path!r} changes frame size mid-stream '
                                 f'({size[1]}x{size[0]} to {array.shape[1]}x{array.shape[0]})')
            yield array


# Writing.

def check_output(output: str, inputs: Sequence[str] = (), names: Sequence[str] = ()) -> None:
    """Fails now, before any work, if clip `output` could not be written or would replace one of
    `inputs` (files or directories): the output itself, or, for a directory output, one of the
    frame `names` (`frame_names(source)`) written into it."""
    real = os.path.realpath(output)
    targets = {real}
    if not is_video_path(output):
        targets.update(os.path.join(real, name) for name in names)
    for source in inputs:
        if source and os.path.exists(source) and os.path.realpath(source) in targets:
            raise VideoError(f'output {output!r} would replace input {source!r}: choose another '
                             'output')
    if is_video_path(output):
        if os.path.isdir(output):
            raise VideoError(f'cannot write video {output!r}: it is a directory')
        directory = os.path.dirname(real)
    else:
        if os.path.exists(output) and not os.path.isdir(output):
            raise VideoError(f'cannot write frames to {output!r}: it is a file, not a directory '
                             f'(a video output needs one of {", ".join(VIDEO_EXTENSIONS)})')
        directory = real if os.path.isdir(real) else os.path.dirname(real)
    if not os.path.isdir(directory):
        raise VideoError(f'cannot write {output!r}: directory {directory!r} does not exist')
    if not os.access(directory, os.W_OK):
        raise VideoError(f'cannot write {output!r}: directory {directory!r} is not writable')


def frame_names(source: ClipInfo) -> Tuple[str, ...]:
    """The file names of the frames written to a directory: the input's names as PNG, or
    frame_00001.png ... for a video input."""
    if source.is_directory:
        return tuple(os.path.splitext(n)[0] + '.png' for n in source.names)
    digits = max(5, len(str(source.frames)))
    return tuple(f'frame_{i:0{digits}d}.png' for i in range(1, source.frames + 1))


def write_clip(output: str, frames: Iterable[np.ndarray], source: Optional[ClipInfo] = None,
               fps=None) -> int:
    """Writes `frames` (consumed one at a time) to clip `output`; returns how many were written.

    `source` (the input's ClipInfo) gives a directory output its file names and a video output
    its frame rate and audio; `fps` overrides the frame rate (else DEFAULT_FPS without a video
    source).
    """
    if is_video_path(output):
        rate = fps or (source.fps if source is not None and source.fps else DEFAULT_FPS)
        audio = source.path if source is not None and source.has_audio else None
        with VideoWriter(output, rate, audio_from=audio) as writer:
            for frame in frames:
                writer.write(frame)
        return writer.count
    return _write_directory(output, frames, source)


def _write_directory(output: str, frames: Iterable[np.ndarray], source) -> int:
    names = frame_names(source) if source is not None else None
    os.makedirs(output, exist_ok=True)
    count = 0
    for count, frame in enumerate(frames, 1):
        name = names[count - 1] if names and count <= len(names) else f'frame_{count:05d}.png'
        images.save_image(os.path.join(output, name), frame)
    return count


class VideoWriter:
    """Encodes frames to a temporary file beside `path`; `close()` renames it to `path`, leaving
    the clip whole. Leaving the `with` block by an exception deletes the temporary file."""

    def __init__(self, path: str, fps, audio_from: Optional[str] = None):
        av = _av()
        self.path = path
        self.fps = fractions.Fraction(fps).limit_denominator(1001 * 1000)
        self.audio_from = audio_from
        self.count = 0
        ext = os.path.splitext(path)[1].lower()
        self.codec, self.pix_fmt, self.options = _ENCODERS[ext]
        directory = os.path.dirname(os.path.abspath(path))
        try:
            fd, self.tmp = temporary.mkstemp(prefix='.' + os.path.basename(path) + '.',
                                             suffix='.tmp' + ext, dir=directory)
            os.close(fd)
            self.container = av.open(self.tmp, 'w')
        except (OSError, av.FFmpegError) as e:
            self._discard()
            raise VideoError(f'cannot write {path!r}: {_reason(e)}') from None
        self.stream = None
        self.audio = None

    def __enter__(self):
        return self

    def __exit__(self, kind, value, traceback):
        if kind is None:
            self.close()
        else:
            self._discard()

    def write(self, frame: np.ndarray) -> None:
        frame = images.to_uint8(frame)
        if self.stream is None:
            self._open_streams(*frame.shape[:2])
        if frame.shape[:2] != self.size:
            raise VideoError(f'write {self.path!r}: frame {self.count + 1} is '
                             f'{frame.shape[1]}x{frame.shape[0]}, not {self.size[1]}x'
                             f'{self.size[0]} like the first')
        av = _av()
        if self.pix_fmt in _SUBSAMPLED:
            # 4:2:0 chroma needs even sides: repeat the last row / column where they are odd.
            frame = np.pad(frame, ((0, frame.shape[0] % 2), (0, frame.shape[1] % 2), (0, 0)),
                           mode='edge')
        if self.pix_fmt == 'pal8':
            picture = av.VideoFrame.from_ndarray(_palette_image(frame), format='pal8')
        else:
            picture = av.VideoFrame.from_ndarray(np.ascontiguousarray(frame), format='rgb24')
        picture.pts = self.count
        picture.time_base = 1 / self.fps
        self._mux(self.stream.encode(picture))
        self.count += 1
        self._mux_audio_until(self.count / self.fps)

    def close(self) -> None:
        if self.stream is None:
            self._discard()
            raise VideoError(f'cannot write {self.path!r}: no frames to write')
        try:
            self._mux(self.stream.encode(None))
            self._mux_audio_until(None)
            self.container.close()
            self._close_audio()
            os.chmod(self.tmp, images.file_mode(self.path))
            os.replace(self.tmp, self.path)
            temporary.release(self.tmp)
        except (OSError, _av().FFmpegError) as e:
            self._discard()
            raise VideoError(f'cannot write {self.path!r}: {_reason(e)}') from None

    # The streams, once the first frame gives the size.

    def _open_streams(self, height: int, width: int) -> None:
        self.size = (height, width)
        stream = self.container.add_stream(self.codec, rate=self.fps)
        pad = self.pix_fmt in _SUBSAMPLED
        stream.height, stream.width = height + pad * (height % 2), width + pad * (width % 2)
        stream.pix_fmt = self.pix_fmt
        stream.options = dict(self.options)
        self.stream = stream
        if self.audio_from:
            self.audio = _AudioCopy(self.audio_from, self.container, self.path)
            self._pending = None

    def _mux(self, packets) -> None:
        for packet in packets:
            self.container.mux(packet)

    def _mux_audio_until(self, seconds) -> None:
        """Interleaves the audio with the video: muxes the audio packets up to `seconds` (all that
        are left with None), so the muxer never holds more than a frame's worth."""
        if self.audio is None:
            return
        while True:
            if self._pending is None:
                self._pending = next(self.audio.packets, False)
            if self._pending is False:
                return
            time = self._pending.pts * self._pending.time_base if (
                self._pending.pts is not None and self._pending.time_base) else None
            if seconds is not None and time is not None and time > seconds:
                return
            self.container.mux(self._pending)
            self._pending = None

    def _close_audio(self) -> None:
        if self.audio is not None:
            self.audio.close()
            self.audio = None

    def _discard(self) -> None:
        for close in (getattr(self, '_close_audio', None),
                      getattr(getattr(self, 'container', None), 'close', None)):
            try:
                if close:
                    close()
            except Exception:  # noqa: BLE001 - already failing; removing the file is what counts
                pass
        if getattr(self, 'tmp', None):
            if os.path.exists(self.tmp):
                os.unlink(self.tmp)
            temporary.release(self.tmp)


def _palette_image(frame: np.ndarray):
    """A frame as 256 colours of its own (median cut, Floyd-Steinberg dithering): the (indices,
    ARGB palette) pair of PyAV's pal8. FFmpeg's scaler would map to a fixed 3-3-2 palette."""
    quantized = Image.fromarray(frame).quantize(256)
    rgb = np.zeros((256, 3), np.uint8)
    used = np.asarray(quantized.getpalette()[:768], np.uint8).reshape(-1, 3)
    rgb[:len(used)] = used
    palette = np.concatenate([np.full((256, 1), 255, np.uint8), rgb], axis=1)
    return np.asarray(quantized, np.uint8), palette


class _AudioCopy:
    """The first audio stream of clip `path` as packets for `output`: copied as they are where the
    output container takes the codec, re-encoded with its default audio codec where not, none
    where it holds no audio (GIF)."""

    def __init__(self, path: str, output, output_path: str):
        av = _av()
        self.input = av.open(path)
        source = self.input.streams.audio[0]
        target = output.default_audio_codec
        if source.codec_context.name in output.supported_codecs:
            self.stream = output.add_stream_from_template(source)
            self.packets = self._copy(source)
        elif target and target != 'none':
            logging.info('audio: %s re-encoded as %s for %s', source.codec_context.name, target,
                         output_path)
            self.stream = output.add_stream(target, rate=source.codec_context.sample_rate)
            self.packets = self._encode(source)
        else:
            logging.warning('audio dropped: %s cannot hold audio', output_path)
            self.packets = iter(())

    def _copy(self, source):
        for packet in self.input.demux(source):
            if packet.dts is None:  # the demuxer's flush packet
                continue
            packet.stream = self.stream
            yield packet

    def _encode(self, source):
        for frame in self.input.decode(source):
            frame.pts = None  # let the encoder count samples
            yield from self.stream.encode(frame)
        yield from self.stream.encode(None)

    def close(self):
        self.input.close()
