"""The network: batches of model-input tiles -> upsampled, weighted output tiles.

:class:`ModelRunner` wraps a forward function (a bundle's ONNX graph on ONNX Runtime, or the
Keras model through a ``tf.function`` traced once per batch shape; :meth:`ModelRunner.for_bundle`)
with what inference does around it: the
output transform of a confidence head, the upsampling of a network that predicts AB at reduced
resolution (guided by the displayed SAR, or bilinear) and the per-tile blending weights.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np

from sar_colorizer.errors import InputError

if TYPE_CHECKING:
    from keras import Model as KerasModel
    from tensorflow import Tensor

    from sar_colorizer.bundle import Bundle

__all__ = ["BATCH_PIXELS", "ModelRunner", "tiles_per_call"]

#: Default pixels per model call (tiles x tile side squared). On a CPU each call of the network
#: costs a fixed overhead of tens of operations on small feature maps; around a megapixel per
#: call (16 tiles of 256 px) amortises it (``python bench/predict_bench.py --batch-size N``).
BATCH_PIXELS = 1 << 20

_RUNNERS: weakref.WeakKeyDictionary[KerasModel, ModelRunner] = weakref.WeakKeyDictionary()


def tiles_per_call(n_cols: int, tile: int, batch_size: int | None = None) -> int:
    """Tiles per model call for rows of ``n_cols`` tiles of ``tile`` px.

    At most ``batch_size`` tiles (None: as many as fit in :data:`BATCH_PIXELS`, at least one),
    spread evenly over the row so that padding the last call of a row wastes little: 55
    tiles with at most 16 per call give 4 calls of 14.

    Raises:
        InputError: ``batch_size`` below 1.
    """
    if batch_size is None:
        batch_size = max(1, BATCH_PIXELS // (tile * tile))
    if batch_size < 1:
        raise InputError(f"--batch-size must be >= 1, got {batch_size}")
    calls = -(-n_cols // batch_size)
    return -(-n_cols // calls)


class ModelRunner:
    """Calls a network on batches of tiles and brings its output to the tiles' size.

    Args:
        forward: ``(B, H, W, C)`` float32 -> a new ``(B, h, w, K)`` float32 array, the network's
            output at the input's size or a reduced one (upsampled by :meth:`__call__`).
        upsample: True when ``forward`` stops before a bilinear upsampling that the network
            ends with (:meth:`for_model`).
        keep: Objects ``forward`` needs alive (a folded copy of the network).
        any_batch: ``forward`` takes any batch size at no extra cost and gives each tile the
            same output whatever the others in its batch (ONNX Runtime); False: the tiling
            pads batches to one size (a traced function compiles once per shape).
    """

    def __init__(
        self,
        forward: Callable[[np.ndarray], np.ndarray],
        *,
        upsample: bool = False,
        keep: object = None,
        any_batch: bool = False,
    ) -> None:
        self._forward = forward
        self.upsample = upsample
        self._keep = keep
        self.any_batch = any_batch

    @classmethod
    def from_keras(cls, model: KerasModel) -> ModelRunner:
        """A runner calling ``model`` through a ``tf.function`` traced once per batch shape.

        A :class:`~sar_colorizer.nets.unet.ColorizationUNet` runs with its batch normalisations
        folded into the convolutions (:func:`~sar_colorizer.nets.unet.fold_batch_norm`).

        A network that ends in a bilinear :class:`~sar_colorizer.nets.layers.ResizeLike` (AB
        predicted at reduced resolution) runs up to that layer in TensorFlow; the upsampling is
        done with OpenCV, which computes the same half-pixel bilinear interpolation several times
        faster on a CPU (TensorFlow's resize was ~30% of the network's time on 256-px tiles).
        """
        from sar_colorizer._tf import import_tensorflow
        from sar_colorizer.nets.unet import inference_network

        tf = import_tensorflow()
        network, upsample = inference_network(model)
        # The runner owns its copies; the caller's model is only weakly referenced, so that
        # the per-model cache (_RUNNERS) does not keep models alive.
        model_ref: Callable[[], KerasModel] = weakref.ref(network)

        def network_call(batch: Tensor) -> Tensor:
            return model_ref()(batch, training=False)

        # Keras models need no AutoGraph conversion; skipping it makes tracing fast.
        traced = tf.function(network_call, reduce_retracing=True, autograph=False)

        def forward(batch: np.ndarray) -> np.ndarray:
            return traced(tf.constant(batch, dtype=tf.float32)).numpy()

        return cls(forward, upsample=upsample, keep=network if network is not model else None)

    @classmethod
    def for_bundle(cls, bundle: Bundle) -> ModelRunner:
        """The runner of a bundle: its ONNX graph on ONNX Runtime where the bundle has one
        (:mod:`sar_colorizer.onnx_network`; no TensorFlow), else :meth:`for_model` of its Keras
        model. One runner per bundle network or model."""
        network = bundle.network
        if network is None:
            return cls.for_model(bundle.model)
        if network.runner is None:
            network.runner = cls(network, upsample=network.upsample, any_batch=True)
        return network.runner

    @classmethod
    def for_model(cls, model: KerasModel) -> ModelRunner:
        """:meth:`from_keras`, one runner per model, so that repeated calls (evaluation) do
        not retrace."""
        if model not in _RUNNERS:
            _RUNNERS[model] = cls.from_keras(model)
        return _RUNNERS[model]

    def __call__(
        self,
        batch: np.ndarray,
        weights: tuple[np.ndarray, np.ndarray] | None = None,
        guide: np.ndarray | None = None,
        size: tuple[int, int] | None = None,
        transform: Callable[[np.ndarray], np.ndarray] | None = None,
    ) -> np.ndarray:
        """Model output for ``batch`` (B, H, W, C), times ``wy[:, :, None] * wx[:, None, :]``
        per tile when separable ``weights = (wy (B, h), wx (B, w))`` are given.

        ``transform`` maps the network's output at its own (possibly reduced) resolution before
        upsampling (:class:`sar_colorizer.confidence.OutputPlan`). The output has the size of
        ``guide`` (B, h, w), upsampled along its edges
        (:func:`~sar_colorizer.color.upsampling.guided_upsample`), when a guide is given; else
        ``size`` (h, w) (default: the batch's), upsampled bilinearly.
        """
        outputs = self._forward(batch)
        if transform is not None:
            outputs = transform(outputs)
        height, width = size if size is not None else batch.shape[1:3]
        if guide is not None:
            from sar_colorizer.color.upsampling import guided_upsample

            outputs = guided_upsample(outputs, guide)
        elif outputs.shape[1:3] != (height, width):
            from sar_colorizer.color.upsampling import resize_bilinear

            outputs = resize_bilinear(outputs, height, width)
        if weights is not None:
            weights_y, weights_x = weights
            outputs *= weights_y[:, :, None, None]
            outputs *= weights_x[:, None, :, None]
        return outputs
