"""Keras metrics reported during training (registered serializable)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, TypeAlias

from sar_colorizer._tf import import_keras
from sar_colorizer.color.lab import AB_SCALE

if TYPE_CHECKING:
    import numpy as np
    import tensorflow as tf

    #: What Keras passes to a metric: backend tensors, or arrays when called directly.
    Tensor: TypeAlias = tf.Tensor | np.ndarray

keras = import_keras()


@keras.saving.register_keras_serializable(package="sar_colorizer")
class MaskedABRMSE(keras.metrics.Metric):
    """RMSE of A and B in CIELAB units over valid pixels.

    ``y_true`` is (B, H, W, 3): normalised A, B and the valid weight (0 or 1); ``y_pred`` is the
    normalised A, B, possibly followed by other channels (a confidence head's log-variance),
    which do not count. Nodata pixels (weight 0) do not count.
    """

    def __init__(self, name: str = "ab_rmse", **kwargs: Any) -> None:
        super().__init__(name=name, **kwargs)
        self.sum_sq = self.add_variable(shape=(), initializer="zeros", name="sum_sq")
        self.count = self.add_variable(shape=(), initializer="zeros", name="count")

    def update_state(self, y_true: Tensor, y_pred: Tensor, sample_weight: Tensor | None = None
                     ) -> None:
        ops = keras.ops
        valid = ops.cast(y_true[..., 2:3], "float32")
        ab_pred = ops.cast(y_pred[..., :2], "float32")  # AB only, whatever else is predicted
        diff = (ops.cast(y_true[..., :2], "float32") - ab_pred) * AB_SCALE
        self.sum_sq.assign_add(ops.sum(ops.square(diff) * valid))
        self.count.assign_add(2.0 * ops.sum(valid))

    def result(self) -> Tensor:
        return keras.ops.sqrt(self.sum_sq / keras.ops.maximum(self.count, 1.0))

    def reset_state(self) -> None:
        self.sum_sq.assign(0.0)
        self.count.assign(0.0)


@keras.saving.register_keras_serializable(package="sar_colorizer")
class MaskedGaussianNLL(keras.metrics.Metric):
    """Gaussian negative log-likelihood of the true a*, b* in CIELAB units, per value.

    Measures how well the confidence head is calibrated: ``y_pred`` is (B, H, W, 4), normalised
    AB mean then the log-variance of normalised a*, b*. The NLL is that of CIELAB values
    (``log(AB_SCALE)`` added to the normalised NLL), averaged over valid pixels and both
    channels; lower is better. A model whose predicted variance equals its squared error
    everywhere reaches ``0.5 log(2 pi e) + mean log(sigma)``. With a 2-channel ``y_pred`` it
    stays at 0.
    """

    def __init__(self, name: str = "nll", **kwargs: Any) -> None:
        super().__init__(name=name, **kwargs)
        self.total = self.add_variable(shape=(), initializer="zeros", name="total")
        self.count = self.add_variable(shape=(), initializer="zeros", name="count")

    def update_state(self, y_true: Tensor, y_pred: Tensor, sample_weight: Tensor | None = None
                     ) -> None:
        if y_pred.shape[-1] is not None and y_pred.shape[-1] < 4:
            return
        import math

        from sar_colorizer.losses import gaussian_nll

        ops = keras.ops
        y_true = ops.cast(y_true, "float32")
        y_pred = ops.cast(y_pred, "float32")
        valid = y_true[..., 2]
        nll = gaussian_nll(y_true[..., 0:2], y_pred[..., 0:2], y_pred[..., 2:4]) + math.log(AB_SCALE)
        self.total.assign_add(ops.sum(nll * valid))
        self.count.assign_add(ops.sum(valid))

    def result(self) -> Tensor:
        return self.total / keras.ops.maximum(self.count, 1.0)

    def reset_state(self) -> None:
        self.total.assign(0.0)
        self.count.assign(0.0)


@keras.saving.register_keras_serializable(package="sar_colorizer")
class ColourLoss(keras.metrics.Metric):
    """The colour part of the training loss (:class:`~sar_colorizer.losses.WeightedChromaLoss`
    on the AB channels), averaged over batches as Keras averages ``loss``.

    Training with the confidence head selects the best epoch on this (``val_colour_loss``), so
    that the NLL term does not change which AB mean is kept.

    Args:
        ab_weights: Rarity weights, as :class:`~sar_colorizer.losses.WeightedChromaLoss`.
        chroma_weight: As :class:`~sar_colorizer.losses.WeightedChromaLoss`.
        name: Metric name.
    """

    def __init__(
        self, ab_weights: np.ndarray | list[list[float]] | None = None,
        chroma_weight: float = 0.5, name: str = "colour_loss", **kwargs: Any,
    ) -> None:
        super().__init__(name=name, **kwargs)
        from sar_colorizer.losses import WeightedChromaLoss

        self._loss = WeightedChromaLoss(ab_weights=ab_weights, chroma_weight=chroma_weight)
        self.total = self.add_variable(shape=(), initializer="zeros", name="total")
        self.count = self.add_variable(shape=(), initializer="zeros", name="count")

    def update_state(self, y_true: Tensor, y_pred: Tensor, sample_weight: Tensor | None = None
                     ) -> None:
        # Weighted by batch size, as Keras weighs the batches of ``loss``.
        batch = keras.ops.cast(keras.ops.shape(y_true)[0], "float32")
        self.total.assign_add(keras.ops.cast(self._loss(y_true, y_pred), "float32") * batch)
        self.count.assign_add(batch)

    def result(self) -> Tensor:
        return self.total / keras.ops.maximum(self.count, 1.0)

    def reset_state(self) -> None:
        self.total.assign(0.0)
        self.count.assign(0.0)

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        loss = self._loss.get_config()
        config.update({"ab_weights": loss["ab_weights"], "chroma_weight": loss["chroma_weight"]})
        return config
