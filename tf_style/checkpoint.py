"""Checkpoints of a run: the image, the optimizer's state, where the run stands, and what it is.

A checkpoint is a directory `<checkpoint_dir>/ckpt` holding a tf.train.Checkpoint of the image and
optimizer variables plus `state.json` (scale, iterations done, and a fingerprint of the inputs and
settings). It is written beside its final place and swapped in by renames, so a crash or a second
Ctrl-C while saving leaves the previous checkpoint whole.
"""

import hashlib
import json
import os
import shutil

import numpy as np
import tensorflow as tf

from .errors import TfStyleError

_CURRENT, _NEW, _OLD = 'ckpt', '.ckpt-new', '.ckpt-old'


def fingerprint(arrays, settings: dict) -> str:
    """A hash of the input arrays (images, masks) and of every setting that changes the result."""
    h = hashlib.sha256()
    for image in arrays:
        array = np.ascontiguousarray(image, dtype=np.float32)
        h.update(repr(array.shape).encode())
        h.update(array.tobytes())
    h.update(json.dumps(settings, sort_keys=True, default=str).encode())
    return h.hexdigest()


class Checkpointer:
    """Saves every `every` iterations (and on request) into `directory`; restores on resume."""

    def __init__(self, directory: str, every: int = 100, resume: bool = False):
        if every < 0:
            raise TfStyleError(f'checkpoint_every must be >= 0, got {every}')
        self.directory = directory
        self.every = every
        self.resume = resume
        self.fingerprint = None
        os.makedirs(directory, exist_ok=True)
        if not os.access(directory, os.W_OK):
            raise TfStyleError(f'checkpoint directory {directory!r} is not writable')

    def _path(self, name):
        return os.path.join(self.directory, name)

    def _readable(self):
        """The directory of the newest complete checkpoint, or None."""
        for name in (_CURRENT, _OLD):  # _OLD: a crash between the two renames of a save
            if os.path.isfile(os.path.join(self._path(name), 'state.json')):
                return self._path(name)
        return None

    def load_state(self):
        """On resume: {'scale', 'done', ...} of the saved run, or None when there is none.

        Refuses a checkpoint of other inputs or settings.
        """
        if not self.resume:
            return None
        path = self._readable()
        if path is None:
            raise TfStyleError(f'nothing to resume: no checkpoint in {self.directory!r}')
        with open(os.path.join(path, 'state.json')) as f:
            state = json.load(f)
        if state.get('fingerprint') != self.fingerprint:
            raise TfStyleError(
                f'the checkpoint in {self.directory!r} is of other inputs or settings: resume '
                'with the same images and flags, or use another --checkpoint_dir')
        return state

    def restore(self, variables: dict):
        path = self._readable()
        tf.train.Checkpoint(**variables).read(os.path.join(path, 'vars')).assert_consumed()

    def save(self, variables: dict, state: dict):
        new, current, old = self._path(_NEW), self._path(_CURRENT), self._path(_OLD)
        shutil.rmtree(new, ignore_errors=True)
        os.makedirs(new)
        try:
            tf.train.Checkpoint(**variables).write(os.path.join(new, 'vars'))
            with open(os.path.join(new, 'state.json'), 'w') as f:
                json.dump(dict(state, fingerprint=self.fingerprint), f)
                f.flush()
                os.fsync(f.fileno())
        except (OSError, tf.errors.OpError) as e:
            shutil.rmtree(new, ignore_errors=True)
            raise TfStyleError(f'cannot write a checkpoint in {self.directory!r}: '
                               f'{getattr(e, "strerror", None) or e}') from None
        if os.path.exists(current):
            shutil.rmtree(old, ignore_errors=True)
            os.replace(current, old)
        os.replace(new, current)
        shutil.rmtree(old, ignore_errors=True)
        return current
