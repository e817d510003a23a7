"""A clip stylized with its finished frames kept on disk, so that a run that stops can be
continued (tf-style stylize-video's work, without its reporting).

`FrameStore` keeps each finished frame as a PNG (written atomically): in a checkpoint directory,
where a later run finds them (and each frame's run checkpoint), or in a temporary folder beside
the output. `stylize_clip` stylizes the frames the store does not have yet.
"""

import dataclasses
import os
import shutil
from typing import Callable, Optional, Sequence

import numpy as np

from .. import images, temporary
from ..config import StyleTransferConfig


class FrameStore:
    """The finished frames of a clip (PNG files, each written atomically): in
    <checkpoint_dir>/frames (multi-pass: frames_pass2, ... for the later passes) when resuming
    is possible, else in a temporary folder beside the output, removed by `close`. Without
    `resume`, the frames a checkpoint_dir holds from an earlier run are removed."""

    def __init__(self, checkpoint_dir: Optional[str], output: str, resume: bool = False):
        self.temporary = checkpoint_dir is None
        if self.temporary:
            parent = os.path.dirname(os.path.abspath(output.rstrip('/')))
            self.root = temporary.mkdtemp(prefix='.tf_style_frames.', dir=parent)
        else:
            self.root = checkpoint_dir
            if not resume:
                for name in os.listdir(self.root) if os.path.isdir(self.root) else ():
                    if name.startswith('frames'):
                        shutil.rmtree(os.path.join(self.root, name))

    def _dir(self, pass_number):
        return os.path.join(self.root, 'frames' if pass_number == 1 else
                            f'frames_pass{pass_number}')

    def _path(self, index, pass_number=1):
        return os.path.join(self._dir(pass_number), f'{index:06d}.png')

    def _done(self, pass_number=1) -> list:
        """The indices of the frames done: in the first pass the first ones, in order (a gap
        ends them); in a later pass every one."""
        if pass_number == 1:
            count = 0
            while os.path.exists(self._path(count)):
                count += 1
            return list(range(count))
        folder = self._dir(pass_number)
        names = sorted(os.listdir(folder)) if os.path.isdir(folder) else []
        return [int(name[:-4]) for name in names if name.endswith('.png') and name[:-4].isdigit()]

    def finished(self) -> list:
        """The first frames of the first pass done, in order (a gap ends them)."""
        return [images.load_image(self._path(index)) for index in self._done()]

    def finished_in(self, pass_number: int) -> dict:
        """The frames of a later pass done, by index."""
        return {index: images.load_image(self._path(index, pass_number))
                for index in self._done(pass_number)}

    def complete(self, frames: int, passes: int = 1) -> bool:
        """Whether the last of `passes` has all the clip's `frames` (nothing left to run)."""
        return len(self._done(passes)) == frames

    def checkpoint(self, index: int, pass_number: int = 1) -> str:
        """The directory of a frame's run checkpoint."""
        prefix = '' if pass_number == 1 else f'pass{pass_number}_'
        return os.path.join(self.root, f'{prefix}frame_{index:06d}')

    def add(self, index: int, image: np.ndarray, pass_number: int = 1):
        os.makedirs(self._dir(pass_number), exist_ok=True)
        images.save_image(self._path(index, pass_number), image)
        previous = self.checkpoint(index, pass_number)
        if os.path.isdir(previous):
            shutil.rmtree(previous)  # the frame is done: its run's checkpoint is not needed

    def read(self, count: int, pass_number: int = 1):
        """The `count` frames of a pass, in clip order (the last pass's are the clip)."""
        for index in range(count):
            yield images.load_image(self._path(index, pass_number))

    def close(self):
        if self.temporary:
            shutil.rmtree(self.root, ignore_errors=True)
            temporary.release(self.root)


def stylize_clip(store: FrameStore, content: str, styles: Sequence[np.ndarray],
                 config: StyleTransferConfig, *, frames: int, passes: int = 1,
                 long_term=False, first_frame_iterations: int, iterations: int,
                 flow: str = 'dis', checkpoint_every: int = 0,
                 callback: Optional[Callable] = None, report_every: int = 0,
                 should_stop: Optional[Callable[[], bool]] = None,
                 init_image: Optional[np.ndarray] = None) -> int:
    """Stylizes the frames of clip `content` (`frames` of them) that `store` does not hold yet,
    adding each to it when done; returns how many frame runs this took (0 when the store is
    complete). `config` gives every frame's stylize options and temporal_weight (its iterations
    are not used: `first_frame_iterations` and `iterations` are); the rest are
    `stylize_video_results`'. A store in a checkpoint directory also keeps each frame's run
    checkpoint, every `checkpoint_every` iterations, from which the next call resumes it.

    Raises FrameStopped when a frame's run stops early (`should_stop`): the frames before it
    are in the store.
    """
    from ..checkpoint import Checkpointer
    from . import io
    from .stylize_video import stylize_video_results
    if store.complete(frames, passes):  # before reading every finished frame
        return 0
    finished = store.finished()
    later_finished = [store.finished_in(p) for p in range(2, passes + 1)]

    def checkpointer_for(index, pass_number):
        if store.temporary:
            return None
        directory = store.checkpoint(index, pass_number)
        return Checkpointer(directory, checkpoint_every,
                            resume=os.path.isdir(os.path.join(directory, 'ckpt')))

    options = {k: v for k, v in dataclasses.asdict(config).items()
               if k not in ('iterations', 'temporal_weight')}
    results = stylize_video_results(
        io.read_frames(content), styles, **options,
        temporal_weight=config.temporal_weight, long_term=long_term, passes=passes,
        first_frame_iterations=first_frame_iterations, iterations=iterations,
        flow=flow, callback=callback, report_every=report_every,
        frame_count=frames, finished=finished, later_finished=later_finished,
        checkpointer_for=checkpointer_for, should_stop=should_stop, init_image=init_image)
    count = 0
    for frame in results:
        store.add(frame.index, frame.image, frame.pass_number)
        count += 1
    return count
