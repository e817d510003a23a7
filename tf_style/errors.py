"""User-facing errors.

Everything a user can get wrong (a bad path, a bad setting, missing weights) raises a subclass of
`TfStyleError` whose message is one line that says what to do. Messages name library options
(`image_size`); `option` says which one, so that a binary can name its flag (`--image_size`)
instead. Anything else escaping is a bug in tf_style.
"""

from typing import Optional


class TfStyleError(Exception):
    """Base class of the errors caused by the input, not by a bug."""

    def __init__(self, message: str, option: Optional[str] = None):
        super().__init__(message)
        self.option = option


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
