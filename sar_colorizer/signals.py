"""Turn SIGINT, SIGTERM and SIGHUP into :class:`~sar_colorizer.errors.Interrupted`.

Python's default is a ``KeyboardInterrupt`` for Ctrl-C only; SIGTERM (sent by ``timeout``,
``kill`` and job schedulers) and SIGHUP (a closed terminal) end the process at once, with no
``finally`` block run, so temporary outputs stay behind. Inside :func:`interrupts_raise`
all three raise :class:`Interrupted` in the main thread: the writers' cleanup runs and the
command line exits with 128 + the signal number.

A signal arrives in Python between two bytecodes, so a long call into C (GDAL converting a
whole scene to COG) would delay it by seconds: :func:`run_interruptibly` runs such a call in a
worker thread and waits for it in short slices, so that the signal is seen at once.

The handler can run inside a finaliser or a weakref callback (TensorFlow's, during garbage
collection), where Python cannot raise: it prints "Exception ignored in ..." with a traceback
and drops the exception. Inside :func:`interrupts_raise` such a dropped :class:`Interrupted`
is silenced (:func:`_quiet_unraisable`); the next :func:`raise_if_interrupted` raises it.

While TensorFlow is imported (:func:`deferred`, a few seconds once per run) a signal waits
until the import is complete. A second signal while the first one's cleanup runs is ignored, so that the cleanup finishes;
long loops also call :func:`raise_if_interrupted`, in case library code swallowed the first.
"""

from __future__ import annotations

import contextlib
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from types import FrameType
from typing import Any, TypeVar

from sar_colorizer.errors import Interrupted

T = TypeVar("T")

#: The signals that stop a run cleanly.
HANDLED = tuple(
    getattr(signal, name) for name in ("SIGINT", "SIGTERM", "SIGHUP") if hasattr(signal, name)
)

_received: list[int] = []
_deferring = [0]
_active = [False]


def _handler(signum: int, frame: FrameType | None) -> None:
    if _received:
        return  # already stopping: let the cleanup finish
    _received.append(signum)
    if not _deferring[0]:
        raise Interrupted(signum)


def _quiet_unraisable(previous: Callable[[Any], object]) -> Callable[[Any], object]:
    """An ``sys.unraisablehook`` that drops :class:`Interrupted` (it is recorded, and raised
    again by :func:`raise_if_interrupted`) and hands anything else to ``previous``."""

    def hook(unraisable: Any) -> object:
        if isinstance(unraisable.exc_value, Interrupted):
            return None
        return previous(unraisable)

    return hook


def received() -> int | None:
    """The signal received during the last :func:`interrupts_raise` block, if any."""
    return _received[0] if _received else None


@contextlib.contextmanager
def deferred() -> Iterator[None]:
    """Within the block a signal is only recorded, and raised when the block ends.

    For imports of large packages (TensorFlow): an exception raised inside Python's import
    machinery leaves half-initialised modules behind, which then fail with unrelated errors.
    """
    _deferring[0] += 1
    try:
        yield
    finally:
        _deferring[0] -= 1
    if not _deferring[0]:
        raise_if_interrupted()


@contextlib.contextmanager
def interrupts_raise() -> Iterator[None]:
    """Within the block, SIGINT, SIGTERM and SIGHUP raise :class:`Interrupted`.

    Does nothing outside the main thread (Python delivers signals there only).
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {signum: signal.getsignal(signum) for signum in HANDLED}
    previous_hook = sys.unraisablehook
    _received.clear()
    for signum in HANDLED:
        signal.signal(signum, _handler)
    sys.unraisablehook = _quiet_unraisable(previous_hook)
    _active[0] = True
    try:
        yield
    finally:
        _active[0] = False
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        sys.unraisablehook = previous_hook


def raise_if_interrupted() -> None:
    """Raise :class:`Interrupted` if a signal came during :func:`interrupts_raise`.

    The handler raises at once; this is the safety net for an exception that some library
    code caught and dropped (a bare ``except BaseException``, a finaliser). Long loops call
    it once per step (a row of tiles, a source image, a training batch).
    """
    if _active[0] and _received:
        raise Interrupted(_received[0])


def run_interruptibly(function: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Run ``function(*args, **kwargs)`` so that a signal interrupts the wait at once.

    Inside :func:`interrupts_raise` the call runs in a daemon thread, and the calling (main)
    thread waits in 0.1-s slices, in which signal handlers run; elsewhere it runs directly. On an interruption the call is abandoned (it ends with the
    process); the caller's cleanup deletes what it was writing.
    """
    if threading.current_thread() is not threading.main_thread() or not _active[0]:
        return function(*args, **kwargs)
    outcome: dict[str, Any] = {}

    def target() -> None:
        try:
            outcome["value"] = function(*args, **kwargs)
        except BaseException as error:  # handed to the caller's thread
            outcome["error"] = error

    worker = threading.Thread(target=target, name="sarcolor-worker", daemon=True)
    worker.start()
    while worker.is_alive():
        worker.join(0.1)
    raise_if_interrupted()
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"]
