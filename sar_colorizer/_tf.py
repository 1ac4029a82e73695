"""Lazy, quiet TensorFlow import.

TensorFlow takes seconds to import and prints C++ logs on start; the package imports it only
inside the functions that need it, through :func:`import_tensorflow`.
"""

from __future__ import annotations

import contextlib
import importlib
import logging
import os
import sys
import tempfile
from collections.abc import Iterator
from typing import Any

_VERBOSE_TF = False


def set_tensorflow_verbose(verbose: bool) -> None:
    """Let TensorFlow's own logs through (``-vv`` on the command line) or keep them silent."""
    global _VERBOSE_TF
    _VERBOSE_TF = verbose


def import_tensorflow() -> Any:
    """Import and return the ``tensorflow`` module with its start-up logs silenced."""
    if "tensorflow" in sys.modules:
        return sys.modules["tensorflow"]
    from sar_colorizer.signals import run_interruptibly

    # Seconds of C++ start-up: in a worker thread, so that a signal does not wait for it (and
    # is not raised inside Python's import machinery, which would break TensorFlow).
    return run_interruptibly(_import_tensorflow)


def _import_tensorflow() -> Any:
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    # TensorFlow turns its oneDNN CPU kernels on by itself only on some Intel CPUs; elsewhere
    # (e.g. AMD EPYC) the shipped network runs about half as fast without them
    # (bench/predict_bench.py prints the setting). Set TF_ENABLE_ONEDNN_OPTS=0 to opt out.
    os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")
    if _VERBOSE_TF:
        import tensorflow as tf
    else:
        # 3: also TensorFlow's C++ "E0000" lines, which are notices for a user (no CUDA
        # driver, no DT_HALF kernels on this CPU); real failures still raise in Python.
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
        # TensorFlow's C++ start-up messages (CUDA probing, CPU features) are written before
        # absl logging honours TF_CPP_MIN_LOG_LEVEL; hold them back unless the import fails.
        with _stderr_captured() as captured:
            try:
                import tensorflow as tf

                tf.config.list_physical_devices()  # device probing logs happen here
            except Exception:  # not on an interruption: that is no failed import
                captured.release()
                raise

    if not _VERBOSE_TF:
        tf.get_logger().setLevel(logging.ERROR)
        logging.getLogger("absl").setLevel(logging.ERROR)
    return tf


def import_keras() -> Any:
    """Import and return ``keras`` (3.x) on the TensorFlow backend."""
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    import_tensorflow()
    from sar_colorizer.signals import run_interruptibly

    return run_interruptibly(importlib.import_module, "keras")


class _Captured:
    def __init__(self, handle: Any) -> None:
        self.handle = handle
        self.released = False

    def release(self) -> None:
        self.released = True


_SAVED_STDERR: list[int] = []


def restore_stderr() -> None:
    """Give stderr back now if TensorFlow's import holds it (an interruption during the
    import, whose message must be seen)."""
    while _SAVED_STDERR:
        sys.stderr.flush()
        os.dup2(_SAVED_STDERR.pop(), 2)


@contextlib.contextmanager
def _stderr_captured() -> Iterator[_Captured]:
    """Redirect the process-level stderr (file descriptor 2) to a temporary file."""
    try:
        saved = os.dup(2)
    except OSError:  # no usable stderr: nothing to hide
        yield _Captured(None)
        return
    with tempfile.TemporaryFile() as handle:
        captured = _Captured(handle)
        sys.stderr.flush()
        os.dup2(handle.fileno(), 2)
        _SAVED_STDERR.append(saved)
        try:
            yield captured
        finally:
            sys.stderr.flush()
            if saved in _SAVED_STDERR:
                _SAVED_STDERR.remove(saved)
                os.dup2(saved, 2)
            os.close(saved)
            if captured.released:
                handle.seek(0)
                sys.stderr.write(handle.read().decode(errors="replace"))
