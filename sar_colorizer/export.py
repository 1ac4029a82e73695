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
from typing import TYPE_CHECKING, Any

from sar_colorizer.bundle import METADATA_FILE, Bundle, load_bundle
from sar_colorizer.errors import (  # noqa: F401  (MissingExtraError: re-exported)
    InputError,
    MissingExtraError,
    OutputExistsError,
    install_command,
)
from sar_colorizer.io.atomic import atomic_file, atomic_folder

if TYPE_CHECKING:
    import keras
    import onnx
    import tensorflow as tf

logger = logging.getLogger(__name__)

EXPORT_FORMATS = ("onnx", "savedmodel")

#: Names of the exported graph's input and output.
INPUT_NAME = "sar_relative_intensity"
OUTPUT_NAME = "ab_normalized"

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
        _require_onnx()
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


def _require_onnx() -> None:
    from sar_colorizer._tf import import_tensorflow

    # TensorFlow first, quietly: tf2onnx imports it too, and would let its C++ start-up logs
    # (CUDA probing) through.
    import_tensorflow()
    if not logger.isEnabledFor(logging.DEBUG):  # tf2onnx's own progress lines, unless -v
        logging.getLogger("tf2onnx").setLevel(logging.WARNING)
    try:
        import onnx  # noqa: F401
        import tf2onnx  # noqa: F401
    except ImportError as error:
        raise MissingExtraError(
            f"ONNX export needs the onnx extra ({error.name} is missing): "
            f"{install_command('onnx')}"
        ) from error


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
    _rename_output(proto.graph, OUTPUT_NAME)
    entry = proto.metadata_props.add()
    entry.key = ONNX_METADATA_KEY
    entry.value = metadata_text
    onnx.checker.check_model(proto)
    onnx.save(proto, str(path))


def write_inference_graph(
    model: keras.Model, path: str | os.PathLike[str], keras_digest: str, opset: int | None = None
) -> Path:
    """Write the ONNX graph that predict runs on ONNX Runtime (:mod:`sar_colorizer.onnx_network`).

    The graph is the network as inference runs it (:func:`~sar_colorizer.nets.unet.
    inference_network`: batch normalisation folded, cut before a final bilinear upsampling,
    which the runner does); its metadata records ``keras_digest`` (the SHA-256 of the
    model.keras it belongs to) and whether the runner upsamples. Scalar constants of
    element-wise operations are given the rank of the tensors they meet: ONNX Runtime
    broadcasts a rank-0 constant over a 4-d tensor ten times slower than a (1, 1, 1, 1) one.

    Raises:
        MissingExtraError: tf2onnx or onnx is not installed.
    """
    from sar_colorizer.nets.unet import inference_network
    from sar_colorizer.onnx_network import DIGEST_KEY, UPSAMPLE_KEY

    _require_onnx()
    import onnx
    import tf2onnx

    from sar_colorizer._tf import import_tensorflow

    tf = import_tensorflow()
    network, upsample = inference_network(model)
    channels = int(network.inputs[0].shape[-1])
    signature = (tf.TensorSpec((None, None, None, channels), tf.float32, name=INPUT_NAME),)

    def network_call(batch: Any) -> Any:
        return network(batch, training=False)

    function = tf.function(network_call, input_signature=signature, autograph=False)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=FutureWarning)
        proto, _ = tf2onnx.convert.from_function(function, input_signature=signature, opset=opset)
    _rename_output(proto.graph, OUTPUT_NAME)
    _broadcast_scalars(proto)
    for key, value in ((DIGEST_KEY, keras_digest), (UPSAMPLE_KEY, "1" if upsample else "0")):
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, value
    onnx.checker.check_model(proto)
    onnx.save(proto, str(path))
    return Path(path)


#: Element-wise ONNX operations whose inputs broadcast.
_ELEMENTWISE = frozenset(
    {"Add", "Sub", "Mul", "Div", "Min", "Max", "Pow", "Where", "Equal", "Less", "Greater"}
)


def _broadcast_scalars(proto: onnx.ModelProto) -> None:
    """Give the constants of element-wise operations the rank of the tensors they meet, and
    drop constants nothing uses any more."""
    import numpy as np
    from onnx import numpy_helper, shape_inference

    graph = proto.graph
    inferred = shape_inference.infer_shapes(proto).graph
    ranks = {
        info.name: len(info.type.tensor_type.shape.dim)
        for info in (*inferred.value_info, *inferred.input, *inferred.output)
        if info.type.tensor_type.HasField("shape")
    }
    constants = {tensor.name: tensor for tensor in graph.initializer}
    for node in graph.node:
        if node.op_type not in _ELEMENTWISE:
            continue
        others = [ranks.get(name) for name in node.input if name not in constants]
        if not others or None in others:
            continue
        rank = max(r for r in others if r is not None)
        for index, name in enumerate(node.input):
            if name not in constants:
                continue
            array = numpy_helper.to_array(constants[name])
            if array.ndim >= rank:
                continue
            reshaped = f"{name}__rank{rank}"
            if reshaped not in constants:
                value = np.reshape(array, (1,) * (rank - array.ndim) + array.shape)
                constants[reshaped] = numpy_helper.from_array(value, reshaped)
                graph.initializer.append(constants[reshaped])
            node.input[index] = reshaped
    used = {name for node in graph.node for name in node.input}
    used.update(output.name for output in graph.output)
    kept = [tensor for tensor in graph.initializer if tensor.name in used]
    del graph.initializer[:]
    graph.initializer.extend(kept)


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


def _rename_output(graph: onnx.GraphProto, new_name: str) -> None:
    """Give the single graph output a meaningful name (tf2onnx calls it ``Identity:0``)."""
    if len(graph.output) != 1:
        return
    old_name = graph.output[0].name
    for node in graph.node:
        node.output[:] = [new_name if name == old_name else name for name in node.output]
        node.input[:] = [new_name if name == old_name else name for name in node.input]
    graph.output[0].name = new_name
