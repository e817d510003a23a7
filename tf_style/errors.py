"""User-facing errors.

Everything a user can get wrong (a bad path, a bad setting, missing weights) raises a subclass of
`TfStyleError` whose message is one line that says what to do. Messages name library options
(`image_size`); `option` says which one the error is about, and `see` which others are a way out
that the message leaves to the caller to spell (`overwrite`), so that a command can name its
flags beside the message (`--image_size: ... (see --check_memory)`) without rewriting it.
Anything else escaping is a bug in tf_style.
"""

from typing import Iterable, Optional


class TfStyleError(Exception):
    """Base class of the errors caused by the input, not by a bug."""

    def __init__(self, message: str, option: Optional[str] = None, see: Iterable[str] = ()):
        super().__init__(message)
        self.option = option
        self.see = tuple(see)


class ImageError(TfStyleError):
    """An image could not be read or written."""


class ConfigError(TfStyleError):
    """A setting is out of range or inconsistent with another."""


class WeightsError(TfStyleError):
    """VGG19 weights could not be found or loaded."""


class OutputError(TfStyleError):
    """A path a run would write cannot be written, or would replace an input."""


class CheckpointError(TfStyleError):
    """A checkpoint directory cannot be written, or holds a checkpoint that cannot be trusted."""


class VideoError(TfStyleError):
    """A clip could not be read or written, or its frames cannot be stylized together."""
