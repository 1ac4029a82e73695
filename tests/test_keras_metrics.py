"""``MaskedABRMSE``: the AB RMSE of the training log is the AB RMSE that ``eval`` reports."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from sar_colorizer.color.lab import AB_SCALE
from sar_colorizer.keras_metrics import MaskedABRMSE
from sar_colorizer.metrics import ab_rmse


def _batch(rng: np.random.Generator, n: int = 3, size: int = 16) -> tuple[np.ndarray, np.ndarray]:
    """``y_true`` (normalised A, B and the valid weight, a nodata corner per image) and a
    prediction of normalised A, B followed by two log-variance channels."""
    ab_true = rng.uniform(-0.6, 0.6, (n, size, size, 2))
    valid = np.ones((n, size, size, 1))
    valid[:, : size // 3, : size // 2] = 0.0
    y_true = np.concatenate([ab_true, valid], axis=-1).astype(np.float32)
    ab_pred = ab_true + rng.normal(0.0, 0.1, ab_true.shape)
    log_var = rng.normal(0.0, 3.0, ab_true.shape)  # nonsense: must not count
    return y_true, np.concatenate([ab_pred, log_var], axis=-1).astype(np.float32)


def _reference(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """numpy's AB RMSE in CIELAB units over valid pixels (sar_colorizer.metrics.ab_rmse)."""
    valid = y_true[..., 2] > 0
    flat = (y_true.shape[0] * y_true.shape[1], y_true.shape[2])
    return ab_rmse(
        (y_pred[..., :2] * AB_SCALE).reshape(*flat, 2),
        (y_true[..., :2] * AB_SCALE).reshape(*flat, 2),
        valid.reshape(flat),
    )


def test_equals_the_evaluation_ab_rmse_over_valid_pixels():
    y_true, y_pred = _batch(np.random.default_rng(0))
    metric = MaskedABRMSE()
    metric.update_state(y_true, y_pred)
    expected = _reference(y_true, y_pred)
    assert float(metric.result()) == pytest.approx(expected, rel=1e-5)
    assert 5.0 < expected < 20.0  # 0.1 normalised noise is 11 CIELAB units


def test_nodata_pixels_and_extra_channels_do_not_count():
    y_true, y_pred = _batch(np.random.default_rng(1))
    changed = y_pred.copy()
    changed[y_true[..., 2] == 0, :2] += 0.9  # far off, but on nodata
    changed[..., 2:] = 50.0
    first, second = MaskedABRMSE(), MaskedABRMSE()
    first.update_state(y_true, y_pred)
    second.update_state(y_true, changed)
    assert float(second.result()) == pytest.approx(float(first.result()), rel=1e-6)
    # An AB-only prediction gives the same number.
    ab_only = MaskedABRMSE()
    ab_only.update_state(y_true, y_pred[..., :2])
    assert float(ab_only.result()) == pytest.approx(float(first.result()), rel=1e-6)


def test_batches_accumulate_by_pixel_and_reset():
    """Over an epoch the metric is the RMSE of all valid pixels, not a mean of batch RMSEs."""
    rng = np.random.default_rng(2)
    y1, p1 = _batch(rng, n=1)
    y2, p2 = _batch(rng, n=4)
    p2[..., :2] += 0.2  # a worse second batch, with more pixels
    metric = MaskedABRMSE()
    metric.update_state(y1, p1)
    metric.update_state(y2, p2)
    together = _reference(np.concatenate([y1, y2]), np.concatenate([p1, p2]))
    assert float(metric.result()) == pytest.approx(together, rel=1e-5)
    batch_mean = (_reference(y1, p1) + _reference(y2, p2)) / 2
    assert abs(together - batch_mean) > 1.0  # the two conventions do differ here
    metric.reset_state()
    assert float(metric.result()) == 0.0  # no pixel seen: 0, not NaN
    all_nodata = y1.copy()
    all_nodata[..., 2] = 0.0
    metric.update_state(all_nodata, p1)
    assert float(metric.result()) == 0.0


def test_registered_and_serializable():
    metric = MaskedABRMSE(name="val_ab")
    restored = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(metric))
    assert isinstance(restored, MaskedABRMSE) and restored.name == "val_ab"
    assert keras.saving.get_registered_name(MaskedABRMSE) == "sar_colorizer>MaskedABRMSE"
