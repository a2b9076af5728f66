"""The exception types that reach users.

Every error a user can cause (a bad path, an unreadable image, a model folder that
does not match its config) is raised as a :class:`LumachromeError` subclass whose
message is one line naming *what* went wrong and *where*. The CLI prints that line
and exits non-zero; anything else is a bug and keeps its traceback.
"""


class LumachromeError(Exception):
    """Base class: a problem caused by input, reported to users as one line."""


class LumachromeWarning(UserWarning):
    """An input problem that was worked around (e.g. NaN pixels masked): ``warnings.warn(message,
    LumachromeWarning)``; the CLI prints each as one line, ``lumachrome: warning: <message>``."""


class ImageError(LumachromeError):
    """An image file could not be read or written (missing, truncated, too large, ...)."""


class ModelError(LumachromeError):
    """A model folder or checkpoint is missing, malformed or does not match its config."""


class ConfigError(LumachromeError):
    """A training/evaluation configuration is invalid."""


class UsageError(ConfigError):
    """A command-line option with a value it cannot take (the CLI exits with 2, as other usage errors)."""


class OptionError(UsageError):
    """A usage error of one command-line option (``option``, e.g. ``"-o"``): the CLI reports it as
    typer/click report a bad option value."""

    def __init__(self, message: str, *, option: str) -> None:
        super().__init__(message)
        self.option = option


class DataError(LumachromeError):
    """A dataset folder has no usable images, or a data pack is malformed."""
