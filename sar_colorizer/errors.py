"""Exceptions that carry a one-line, user-facing message (what is wrong and how to fix it).

Every class has the exit status the command line ends with (:data:`EXIT_CODES` lists them all,
and the README repeats the table):

==========================  =====  ===========================================================
error                       exit   meaning
==========================  =====  ===========================================================
(unexpected exception)      1      a bug or an unforeseen failure; ``-v`` shows the traceback
(click usage error)         2      the command line itself is wrong (unknown option, ...)
:class:`InputError`         3      an input file, option or its data cannot be used as given
:class:`OutputExistsError`  4      an output exists (or is an input); nothing was replaced
:class:`ModelMismatchError` 5      the input does not match the model (bands, channels)
:class:`MissingExtraError`  6      an optional component is not installed (names the extra)
:class:`OutputError`        7      an output cannot be written (disk full, read-only folder)
:class:`Interrupted`        128+N  stopped by signal N (130 Ctrl-C, 143 SIGTERM, 129 SIGHUP)
==========================  =====  ===========================================================
"""

from __future__ import annotations

import signal


class SarColorError(Exception):
    """Base class: the command line prints ``str(error)`` as one line and exits non-zero."""

    exit_code = 1


class InputError(SarColorError, ValueError):
    """The user's input (file, option, data) cannot be used as given."""

    exit_code = 3


class RasterError(InputError):
    """A raster cannot be opened, read or written."""


class ProductError(InputError):
    """A satellite product (Sentinel-1 ``.SAFE`` folder or ``.zip``) is incomplete, damaged or
    of a kind that cannot be read (SLC); the message names what is missing and what works."""


class OutputExistsError(SarColorError, FileExistsError):
    """An output exists and overwriting was not requested (or is not allowed: an input)."""

    exit_code = 4


class ModelMismatchError(InputError):
    """The input does not match what the model was trained on (bands, polarisations)."""

    exit_code = 5


class MissingExtraError(SarColorError, ImportError):
    """An optional dependency is missing; the message names the extra to install."""

    exit_code = 6


def install_command(extra: str) -> str:
    """The command that installs an optional extra, run in the sarcolor clone.

    sarcolor is not on a package index, so pip cannot find it by its name; the extra is
    installed from the clone's folder (``.``), as the README's set-up does.
    """
    return f'pip install ".[{extra}]" (in the sarcolor folder)'


class OutputError(SarColorError, OSError):
    """An output cannot be written: no space left, a read-only folder, no permission."""

    exit_code = 7


class Interrupted(KeyboardInterrupt):
    """A signal (SIGINT, SIGTERM, SIGHUP) stopped the run; its outputs were cleaned up.

    A ``KeyboardInterrupt`` (not an ``Exception``), so that ``except Exception`` blocks, such
    as the one that keeps a batch going past a broken file, do not swallow it.
    """

    def __init__(self, signum: int) -> None:
        self.signum = int(signum)
        super().__init__(self.signal_name)

    @property
    def signal_name(self) -> str:
        try:
            return signal.Signals(self.signum).name
        except ValueError:
            return f"signal {self.signum}"

    @property
    def exit_code(self) -> int:
        return 128 + self.signum


EXIT_CODES: dict[str, int] = {
    "unexpected error": 1,
    "usage error": 2,
    "InputError": InputError.exit_code,
    "OutputExistsError": OutputExistsError.exit_code,
    "ModelMismatchError": ModelMismatchError.exit_code,
    "MissingExtraError": MissingExtraError.exit_code,
    "OutputError": OutputError.exit_code,
    "Interrupted": 128,
}
"""Exit status by error (``Interrupted`` adds the signal number)."""
