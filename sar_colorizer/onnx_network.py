"""The network of a bundle on ONNX Runtime: predict without importing TensorFlow.

:func:`~sar_colorizer.bundle.save_bundle` writes ``model.onnx`` beside ``model.keras``: the
network as inference runs it (batch normalisation folded, cut before the final bilinear
upsampling; :func:`sar_colorizer.nets.unet.inference_network`), converted by tf2onnx
(:func:`sar_colorizer.onnx_graph.write_inference_graph`). Its metadata records the SHA-256 of the
``model.keras`` it was made from, so that a graph left beside another model is never used.

Importing ONNX Runtime takes a tenth of a second where TensorFlow takes seconds, and on the
shipped network it runs as fast as TensorFlow on a CPU (``bench/predict_bench.py``), so
:func:`~sar_colorizer.bundle.load_bundle` runs a bundle with a current graph on it and loads the
Keras model only when something asks for it (training, export, FLOP counts). Its outputs equal
the Keras model's to float32 rounding (``tests/test_onnx_network.py``).

``SARCOLOR_RUNTIME=tensorflow`` in the environment makes ``load_bundle`` use the Keras model
(``onnx`` requires the graph; ``auto``, the default, uses it where it can).

This module does not import TensorFlow.
"""

from __future__ import annotations

import hashlib
import logging
import os
from pathlib import Path
from typing import Any

import numpy as np

from sar_colorizer.errors import InputError

logger = logging.getLogger(__name__)

__all__ = [
    "ONNX_FILE",
    "RUNTIMES",
    "OnnxNetwork",
    "file_digest",
    "open_network",
    "runtime_choice",
]

#: The graph's file name inside a bundle.
ONNX_FILE = "model.onnx"
#: Metadata keys of the graph: the SHA-256 of the model.keras it was made from, and whether the
#: runner must upsample its output bilinearly to the input's size ("1") or not ("0").
DIGEST_KEY = "sarcolor_keras_sha256"
UPSAMPLE_KEY = "sarcolor_upsample"
#: Runtimes :func:`~sar_colorizer.bundle.load_bundle` chooses from (``SARCOLOR_RUNTIME``).
RUNTIMES = ("auto", "onnx", "tensorflow")
RUNTIME_VARIABLE = "SARCOLOR_RUNTIME"


def runtime_choice(runtime: str | None = None) -> str:
    """``runtime``, or ``$SARCOLOR_RUNTIME``, or ``"auto"``, checked.

    Raises:
        InputError: Not one of :data:`RUNTIMES`.
    """
    value = (runtime or os.environ.get(RUNTIME_VARIABLE) or "auto").strip().lower()
    if value not in RUNTIMES:
        raise InputError(
            f"unknown runtime {value!r} (argument or ${RUNTIME_VARIABLE}); choose one of "
            f"{', '.join(RUNTIMES)}"
        )
    return value


def file_digest(path: str | os.PathLike[str]) -> str:
    """SHA-256 (hex) of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


class OnnxNetwork:
    """An ONNX Runtime session of a bundle's inference graph.

    Args:
        session: The ``onnxruntime.InferenceSession``.
        upsample: The graph stops before a bilinear upsampling that the runner does.
        path: The graph file (for messages).
    """

    def __init__(self, session: Any, upsample: bool, path: Path | None = None) -> None:
        self.session = session
        self.upsample = upsample
        self.path = path
        self._input = session.get_inputs()[0].name
        self._output = session.get_outputs()[0].name
        self.runner: Any = None  # the ModelRunner made for it (inference.runner caches it here)

    @property
    def input_channels(self) -> int | None:
        """Channels of the graph's input (None when the graph leaves it dynamic)."""
        size = self.session.get_inputs()[0].shape[-1]
        return size if isinstance(size, int) else None

    @property
    def output_channels(self) -> int | None:
        """Channels of the graph's output (None when the graph leaves it dynamic)."""
        size = self.session.get_outputs()[0].shape[-1]
        return size if isinstance(size, int) else None

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        """``(B, H, W, C)`` float32 -> the network's output, a new float32 array."""
        batch = np.ascontiguousarray(batch, dtype=np.float32)
        return self.session.run([self._output], {self._input: batch})[0]


def _session_options(ort: Any) -> Any:
    options = ort.SessionOptions()
    options.log_severity_level = 3  # ONNX Runtime's own warnings are not a user's business
    threads = os.environ.get("SARCOLOR_ONNX_THREADS")
    if threads:
        options.intra_op_num_threads = int(threads)
    spin = os.environ.get("SARCOLOR_ONNX_SPIN", "0")
    options.add_session_config_entry("session.intra_op.allow_spinning", spin)
    options.add_session_config_entry("session.inter_op.allow_spinning", spin)
    return options


def open_network(folder: Path, keras_path: Path, runtime: str = "auto") -> OnnxNetwork | None:
    """The bundle's ONNX network when ``runtime`` allows it and the bundle has a current one
    (made from ``keras_path``, the bundle's model.keras).

    With ``runtime="auto"`` a missing graph, a missing onnxruntime, or a graph made from another
    model.keras gives None (TensorFlow runs the Keras model), with a log line saying why.

    Raises:
        InputError: ``runtime="onnx"`` and the graph cannot be used (the message says why), or
            the graph file is damaged.
    """
    if runtime == "tensorflow":
        return None
    path = folder / ONNX_FILE
    reason = None
    level = logging.INFO
    if not path.is_file():
        reason = f"{folder} has no {ONNX_FILE} (bundles saved by sarcolor >= 0.2 have one)"
    else:
        try:
            import onnxruntime as ort
        except ImportError:
            reason = "onnxruntime is not installed (pip install onnxruntime)"
    if reason is None:
        try:
            session = ort.InferenceSession(
                str(path), _session_options(ort), providers=["CPUExecutionProvider"]
            )
        except Exception as error:  # onnxruntime raises its own types for a damaged file
            first_line = (str(error).strip().splitlines() or [type(error).__name__])[0]
            raise InputError(
                f"{path}: the ONNX graph does not load ({first_line}); delete it to run the "
                "Keras model, or save the bundle again"
            ) from error
        metadata = session.get_modelmeta().custom_metadata_map
        if metadata.get(DIGEST_KEY) != file_digest(keras_path):
            reason = f"{path} was made from another {keras_path.name}; save the bundle again"
            level = logging.WARNING
        else:
            network = OnnxNetwork(session, metadata.get(UPSAMPLE_KEY) == "1", path)
            logger.debug("running %s on ONNX Runtime", path)
            return network
    if runtime == "onnx":
        raise InputError(f"the ONNX runtime was asked for, but {reason}")
    logger.log(level, "%s: TensorFlow runs the Keras model", reason)
    return None
