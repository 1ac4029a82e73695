"""Export a model bundle's network to ONNX or a TensorFlow SavedModel, for serving elsewhere.

The exported graph is the network only: relative SAR intensity (B, H, W, C) float32 in [0, 1]
(after speckle filtering and normalisation, as in :mod:`sar_colorizer.inference`) in,
normalised AB (B, H, W, 2) in [-1, 1] out (multiply by 110 for CIELAB a*, b*); a model with a
confidence head outputs (B, H, W, 4), AB then the log-variance of normalised a*, b*, as the
bundle.json's ``outputs.channels`` says (:mod:`sar_colorizer.confidence`). Batch, height
and width are dynamic; height and width must be multiples of the bundle's ``tile_multiple``.
The bundle.json travels with the export (inside the SavedModel folder, and as the ONNX model's
``sarcolor_bundle`` metadata property) so the pre- and post-processing can be reproduced.

ONNX needs the optional extra: ``pip install ".[onnx]"`` in the clone (tf2onnx, onnx, onnxruntime).
"""

from __future__ import annotations

import json
import logging
import os
import warnings
from pathlib import Path
from typing import TYPE_CHECKING

from sar_colorizer.bundle import METADATA_FILE, Bundle, load_bundle
from sar_colorizer.errors import (  # noqa: F401  (MissingExtraError: re-exported)
    InputError,
    MissingExtraError,
    OutputExistsError,
    install_command,
)
from sar_colorizer.io.atomic import atomic_file, atomic_folder
from sar_colorizer.onnx_graph import (
    INPUT_NAME,
    OUTPUT_NAME,
    rename_output,
    require_onnx,
    write_inference_graph,
)

if TYPE_CHECKING:
    import keras
    import tensorflow as tf

logger = logging.getLogger(__name__)

EXPORT_FORMATS = ("onnx", "savedmodel")

#: Metadata key of the ONNX model that holds the bundle.json text.
ONNX_METADATA_KEY = "sarcolor_bundle"


def infer_format(output: str | os.PathLike[str]) -> str:
    """``"onnx"`` for a ``.onnx`` output path, ``"savedmodel"`` otherwise."""
    return "onnx" if Path(output).suffix.lower() == ".onnx" else "savedmodel"


def export_model(
    model: str | os.PathLike[str] | Bundle,
    output: str | os.PathLike[str],
    export_format: str | None = None,
    *,
    overwrite: bool = False,
    opset: int | None = None,
) -> Path:
    """Export a bundle's network with dynamic batch, height and width.

    The output appears atomically (written beside it under a temporary name, then renamed).

    Args:
        model: Bundle directory, ``"default"``, or a loaded :class:`~sar_colorizer.bundle.Bundle`.
        output: ``.onnx`` file, or SavedModel directory.
        export_format: ``"onnx"`` or ``"savedmodel"``; ``None`` infers it from ``output``.
        overwrite: Replace an existing output.
        opset: ONNX opset (default: tf2onnx's).

    Returns:
        The output path.

    Raises:
        InputError: Unknown format, or the bundle cannot be loaded.
        OutputExistsError: ``output`` exists and ``overwrite`` is False.
        MissingExtraError: ONNX was asked for and the ``onnx`` extra is not installed.
    """
    export_format = (export_format or infer_format(output)).lower()
    if export_format not in EXPORT_FORMATS:
        raise InputError(
            f"unknown export format {export_format!r}; choose one of {', '.join(EXPORT_FORMATS)}"
        )
    target = Path(output)
    if (target.exists() or target.is_symlink()) and not overwrite:
        raise OutputExistsError(f"{target} exists; pass --overwrite to replace it")
    if export_format == "onnx":
        require_onnx()
    bundle = model if isinstance(model, Bundle) else load_bundle(model)
    metadata_text = json.dumps(bundle.metadata, indent=2)

    from sar_colorizer._tf import import_tensorflow

    tf = import_tensorflow()
    channels = int(bundle.model.inputs[0].shape[-1])
    signature = [tf.TensorSpec((None, None, None, channels), tf.float32, name=INPUT_NAME)]

    if export_format == "onnx":
        with atomic_file(target, overwrite=overwrite) as staged:
            _export_onnx(bundle.model, staged, signature, opset, metadata_text)
    else:
        with atomic_folder(target, overwrite=overwrite) as staged:
            staged.rmdir()  # Keras creates the SavedModel folder itself
            bundle.model.export(
                str(staged), format="tf_saved_model", input_signature=signature, verbose=False
            )
            (staged / METADATA_FILE).write_text(metadata_text + "\n", encoding="utf-8")
    logger.info("exported %s to %s (%s)", bundle.path or "model", target, export_format)
    return target


def _export_onnx(
    model: keras.Model,
    path: Path,
    signature: list[tf.TensorSpec],
    opset: int | None,
    metadata_text: str,
) -> None:
    import onnx

    with warnings.catch_warnings():
        # Keras' tf2onnx numpy-2 patch touches np.object; harmless.
        warnings.filterwarnings("ignore", category=FutureWarning)
        model.export(
            str(path), format="onnx", input_signature=signature, opset_version=opset, verbose=False
        )
    proto = onnx.load(str(path))
    rename_output(proto.graph, OUTPUT_NAME)
    entry = proto.metadata_props.add()
    entry.key = ONNX_METADATA_KEY
    entry.value = metadata_text
    onnx.checker.check_model(proto)
    onnx.save(proto, str(path))


def add_inference_graph(bundle_path: str | os.PathLike[str]) -> Path:
    """Write (or replace) the ONNX inference graph of a saved bundle (one saved before bundles
    carried one, such as a model.keras copied in by hand).

    Returns:
        The graph's path.

    Raises:
        InputError: Not a bundle, or its model does not load.
        MissingExtraError: tf2onnx or onnx is not installed.
    """
    from sar_colorizer.bundle import MODEL_FILE
    from sar_colorizer.onnx_network import ONNX_FILE, file_digest

    bundle = load_bundle(bundle_path, runtime="tensorflow")
    assert bundle.path is not None
    target = bundle.path / ONNX_FILE
    with atomic_file(target, overwrite=True) as staged:
        write_inference_graph(bundle.model, staged, file_digest(bundle.path / MODEL_FILE))
    logger.info("wrote %s", target)
    return target
