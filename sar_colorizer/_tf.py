"""Lazy, quiet TensorFlow import.

TensorFlow takes seconds to import and prints C++ logs on start; the package imports it only
inside the functions that need it, through :func:`import_tensorflow`.
"""

from __future__ import annotations

import logging
import os
from typing import Any

_VERBOSE_TF = False


def set_tensorflow_verbose(verbose: bool) -> None:
    """Let TensorFlow's own logs through (``-vv`` on the command line) or keep them silent."""
    global _VERBOSE_TF
    _VERBOSE_TF = verbose


def import_tensorflow() -> Any:
    """Import and return the ``tensorflow`` module with its start-up logs silenced."""
    if not _VERBOSE_TF:
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
        os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    import tensorflow as tf

    if not _VERBOSE_TF:
        tf.get_logger().setLevel(logging.ERROR)
        logging.getLogger("absl").setLevel(logging.ERROR)
    return tf


def import_keras() -> Any:
    """Import and return ``keras`` (3.x) on the TensorFlow backend."""
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    import_tensorflow()
    import keras

    return keras
