"""The ONNX graph of a bundle's network: what ``predict`` runs on ONNX Runtime, written here.

:func:`write_inference_graph` converts the network as inference runs it (batch normalisation
folded, cut before a final bilinear upsampling that the runner does) with tf2onnx;
:func:`~sar_colorizer.bundle.save_bundle` calls it for every bundle it saves,
:mod:`sar_colorizer.onnx_network` opens the result, and :mod:`sar_colorizer.export` exports
networks with the same names and conversion. Kept apart from the export of whole bundles so
that saving a bundle does not import the module built on bundles.
"""

from __future__ import annotations

import logging
import os
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sar_colorizer.errors import MissingExtraError, install_command

if TYPE_CHECKING:
    import keras
    import onnx

logger = logging.getLogger(__name__)

__all__ = ["INPUT_NAME", "OUTPUT_NAME", "rename_output", "require_onnx", "write_inference_graph"]

#: Names of the exported graph's input and output.
INPUT_NAME = "sar_relative_intensity"
OUTPUT_NAME = "ab_normalized"


def require_onnx() -> None:
    """Import TensorFlow quietly, then check that onnx and tf2onnx are installed.

    Raises:
        MissingExtraError: onnx or tf2onnx is missing (the message names the extra).
    """
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

    require_onnx()
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
    rename_output(proto.graph, OUTPUT_NAME)
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


def rename_output(graph: onnx.GraphProto, new_name: str) -> None:
    """Give the single graph output a meaningful name (tf2onnx calls it ``Identity:0``)."""
    if len(graph.output) != 1:
        return
    old_name = graph.output[0].name
    for node in graph.node:
        node.output[:] = [new_name if name == old_name else name for name in node.output]
        node.input[:] = [new_name if name == old_name else name for name in node.input]
    graph.output[0].name = new_name
