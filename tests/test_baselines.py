"""Tests for sar_colorizer.baselines with synthetic data whose true line is known."""

from __future__ import annotations

import json

import numpy as np
import pytest

from sar_colorizer.baselines import (
    BASELINE_NAMES,
    BaselineAccumulator,
    Baselines,
)
from sar_colorizer.errors import InputError


def _regression(s, a, b, valid=None):
    """The linear regression of a and b on s, from the running sums as training fits it."""
    accumulator = BaselineAccumulator()
    accumulator.update(s, np.stack([a, b], axis=-1), valid)
    return accumulator.linear_regression()


def _baselines(s, ab):
    accumulator = BaselineAccumulator()
    accumulator.update(s, ab)
    return accumulator.result()


def _synthetic(seed: int = 0, shape=(32, 32), noise: float = 0.5):
    rng = np.random.default_rng(seed)
    s = rng.uniform(0, 1, shape)
    a = -4.0 + 12.0 * s + rng.normal(0, noise, shape)
    b = 7.0 - 9.0 * s + rng.normal(0, noise, shape)
    return s, a, b


def test_fit_linear_regression_recovers_known_line():
    s, a, b = _synthetic()
    fit = _regression(s, a, b)
    assert fit["a"] == pytest.approx([-4.0, 12.0], abs=0.15)
    assert fit["b"] == pytest.approx([7.0, -9.0], abs=0.15)
    # Exact data: exact fit, and the same answer as numpy's least squares.
    exact = _regression(s, 2.0 + 3.0 * s, -1.0 - 0.5 * s)
    assert exact["a"] == pytest.approx([2.0, 3.0])
    assert exact["b"] == pytest.approx([-1.0, -0.5])
    slope, intercept = np.polyfit(s.ravel(), a.ravel(), 1)
    assert fit["a"] == pytest.approx([intercept, slope])


def test_fit_ignores_invalid_and_nan_pixels():
    s, a, b = _synthetic(noise=0.0)
    valid = np.ones_like(s, dtype=bool)
    valid[:5] = False
    a_bad = a.copy()
    a_bad[:5] = 1000.0  # garbage under the mask
    s_nan = s.copy()
    s_nan[5, 0] = np.nan
    fit = _regression(s_nan, a_bad, b, valid)
    assert fit["a"] == pytest.approx([-4.0, 12.0])


def test_constant_feature_gives_mean_and_zero_slope():
    fit = _regression(np.full(10, 0.3), np.arange(10.0), np.ones(10))
    assert fit["a"] == pytest.approx([4.5, 0.0])
    assert fit["b"] == pytest.approx([1.0, 0.0])


def test_no_pixels_raises():
    with pytest.raises(InputError):
        _regression(np.ones(3), np.ones(3), np.ones(3), np.zeros(3, bool))


def test_accumulator_over_images_equals_fit_on_all_pixels():
    images = [_synthetic(seed) for seed in range(3)]
    accumulator = BaselineAccumulator()
    for s, a, b in images:
        accumulator.update(s, np.stack([a, b], axis=-1))
    whole = _baselines(
        np.concatenate([s for s, _, _ in images]),
        np.concatenate([np.stack([a, b], -1) for _, a, b in images]),
    )
    result = accumulator.result()
    assert result.mean_colour == pytest.approx(whole.mean_colour)
    assert result.linear_a == pytest.approx(whole.linear_a)
    assert result.linear_b == pytest.approx(whole.linear_b)
    all_a = np.concatenate([a.ravel() for _, a, _ in images])
    all_b = np.concatenate([b.ravel() for _, _, b in images])
    assert accumulator.mean_colour() == pytest.approx([all_a.mean(), all_b.mean()])


def test_dict_round_trip_is_bundle_json_shape():
    baselines = Baselines(mean_colour=(1.5, -2.0), linear_a=(0.1, 0.2), linear_b=(-0.3, 0.4))
    data = json.loads(json.dumps(baselines.to_dict()))
    assert data == {
        "mean_colour": [1.5, -2.0],
        "linear_regression": {"a": [0.1, 0.2], "b": [-0.3, 0.4]},
    }
    assert Baselines.from_dict(data) == baselines
    with pytest.raises(InputError):
        Baselines.from_dict({"mean_colour": [1.0, 2.0]})
    with pytest.raises(InputError):
        Baselines.from_dict({"mean_colour": [1.0], "linear_regression": {"a": [0, 1], "b": [0, 1]}})


def test_predict_ab_each_baseline():
    baselines = Baselines(mean_colour=(3.0, -4.0), linear_a=(1.0, 2.0), linear_b=(-1.0, 10.0))
    feature = np.array([[0.0, 0.5], [1.0, 0.25]])
    none = baselines.predict_ab("no_colour", feature)
    assert none.shape == (2, 2, 2) and not none.any()
    mean = baselines.predict_ab("mean_colour", feature)
    assert np.array_equal(mean[..., 0], np.full((2, 2), 3.0))
    assert np.array_equal(mean[..., 1], np.full((2, 2), -4.0))
    linear = baselines.predict_ab("linear_regression", feature)
    assert linear.dtype == np.float32
    np.testing.assert_allclose(linear[..., 0], 1.0 + 2.0 * feature)
    np.testing.assert_allclose(linear[..., 1], -1.0 + 10.0 * feature)
    assert set(BASELINE_NAMES) == {"no_colour", "mean_colour", "linear_regression"}
    with pytest.raises(InputError, match="no_colour, mean_colour, linear_regression"):
        baselines.predict_ab("pix2pix", feature)


def test_fitted_regression_beats_mean_colour_on_its_data():
    s, a, b = _synthetic(seed=11)
    ab = np.stack([a, b], axis=-1)
    baselines = _baselines(s, ab)

    def rmse(name):
        return np.sqrt(np.mean((baselines.predict_ab(name, s) - ab) ** 2))

    assert rmse("linear_regression") < rmse("mean_colour") < rmse("no_colour")
