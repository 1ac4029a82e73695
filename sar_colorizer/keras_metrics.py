"""Keras metrics reported during training (registered serializable)."""

from __future__ import annotations

from typing import Any

from sar_colorizer._tf import import_keras
from sar_colorizer.color.lab import AB_SCALE

keras = import_keras()


@keras.saving.register_keras_serializable(package="sar_colorizer")
class MaskedABRMSE(keras.metrics.Metric):
    """RMSE of A and B in CIELAB units over valid pixels.

    ``y_true`` is (B, H, W, 3): normalised A, B and the valid weight (0 or 1); ``y_pred`` is the
    normalised A, B. Nodata pixels (weight 0) do not count.
    """

    def __init__(self, name: str = "ab_rmse", **kwargs: Any) -> None:
        super().__init__(name=name, **kwargs)
        self.sum_sq = self.add_variable(shape=(), initializer="zeros", name="sum_sq")
        self.count = self.add_variable(shape=(), initializer="zeros", name="count")

    def update_state(self, y_true: Any, y_pred: Any, sample_weight: Any = None) -> None:
        ops = keras.ops
        valid = ops.cast(y_true[..., 2:3], "float32")
        diff = (ops.cast(y_true[..., :2], "float32") - ops.cast(y_pred, "float32")) * AB_SCALE
        self.sum_sq.assign_add(ops.sum(ops.square(diff) * valid))
        self.count.assign_add(2.0 * ops.sum(valid))

    def result(self) -> Any:
        return keras.ops.sqrt(self.sum_sq / keras.ops.maximum(self.count, 1.0))

    def reset_state(self) -> None:
        self.sum_sq.assign(0.0)
        self.count.assign(0.0)
