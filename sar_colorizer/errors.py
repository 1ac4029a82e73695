"""Exceptions that carry a one-line, user-facing message (what is wrong and how to fix it)."""


class SarColorError(Exception):
    """Base class: the command line prints ``str(error)`` as one line and exits non-zero."""


class InputError(SarColorError, ValueError):
    """The user's input (file, option, data) cannot be used as given."""


class RasterError(InputError):
    """A raster cannot be opened, read or written."""


class OutputExistsError(SarColorError, FileExistsError):
    """An output exists and overwriting was not requested."""


class ModelMismatchError(InputError):
    """The input does not match what the model was trained on (bands, polarisations)."""


class MissingExtraError(SarColorError, ImportError):
    """An optional dependency group (``pip install "sarcolor[...]"``) is not installed."""
