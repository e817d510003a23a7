"""User-facing errors.

Everything a user can get wrong (a bad path, a bad flag value, missing weights) raises a subclass
of `TfStyleError` whose message is one line that says what to do. The binaries print that line
and exit non-zero; anything else escaping is a bug in tf_style.
"""


class TfStyleError(Exception):
    """Base class of the errors caused by the input, not by a bug."""


class ImageError(TfStyleError):
    """An image could not be read or written."""


class ConfigError(TfStyleError):
    """A setting is out of range or inconsistent with another."""


class WeightsError(TfStyleError):
    """VGG19 weights could not be found or loaded."""


class VideoError(TfStyleError):
    """A clip could not be read or written, or its frames cannot be stylized together."""
