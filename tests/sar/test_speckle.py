"""Speckle filters (numpy / OpenCV): definitions checked against a per-pixel reference, and
the properties a speckle filter must have."""

from __future__ import annotations

import itertools
import subprocess
import sys

import numpy as np
import pytest

from sar_colorizer.errors import InputError
from sar_colorizer.sar import speckle
from sar_colorizer.sar.speckle import (
    REFINED_LEE_WINDOWS,
    SPECKLE_FILTERS,
    SpeckleFilter,
    apply_speckle_filter,
    frost_rings,
    refined_lee_subwindows,
    refined_lee_window_masks,
)

SMOOTHING = [name for name in SPECKLE_FILTERS if name != "none"]


def gamma_speckle(rng: np.random.Generator, shape, looks: float) -> np.ndarray:
    """Unit-mean gamma speckle of an L-look intensity image."""
    return rng.gamma(looks, 1.0 / looks, size=shape).astype(np.float32)


# --- a slow, literal per-pixel reference of every filter -------------------------------------


def _lee(centre: float, values: np.ndarray, looks: float) -> float:
    mean, variance = values.mean(), values.var()
    noise = 1.0 / looks
    signal = max(variance - mean * mean * noise, 0.0) / (1.0 + noise)
    gain = signal / variance if variance > 0 else 0.0
    return mean + gain * (centre - mean)


def reference_filter(image: np.ndarray, spec: SpeckleFilter) -> np.ndarray:
    """Each filter written out pixel by pixel from its textbook definition, in float64."""
    window, looks = spec.window, spec.looks
    radius = window // 2
    height, width = image.shape
    padded = np.full((height + 2 * radius, width + 2 * radius), np.nan)
    padded[radius : radius + height, radius : radius + width] = image
    di, dj = np.mgrid[-radius : radius + 1, -radius : radius + 1]
    out = np.full(image.shape, np.nan)
    for y, x in itertools.product(range(height), range(width)):
        centre = float(image[y, x])
        if not np.isfinite(centre):
            continue
        block = padded[y : y + window, x : x + window]
        ok = np.isfinite(block)
        values = block[ok]
        if spec.name == "none":
            out[y, x] = centre
        elif spec.name == "boxcar":
            out[y, x] = values.mean()
        elif spec.name == "median":
            out[y, x] = np.median(values)
        elif spec.name == "lee":
            out[y, x] = _lee(centre, values, looks)
        elif spec.name == "gamma_map":
            mean, variance = values.mean(), values.var()
            noise = 1.0 / looks
            ci2 = variance / mean**2 if mean > 0 else 0.0
            if ci2 <= noise:
                out[y, x] = mean
            elif ci2 >= 2 * noise:
                out[y, x] = centre
            else:
                alpha = (1 + noise) / (ci2 - noise)
                b = alpha - looks - 1
                d = mean**2 * b**2 + 4 * alpha * looks * mean * centre
                out[y, x] = (b * mean + np.sqrt(d)) / (2 * alpha)
        elif spec.name == "frost":
            mean, variance = values.mean(), values.var()
            ci = np.sqrt(variance) / mean
            alpha = 2.0 / window * ci * np.sqrt(looks)
            weights = np.exp(-alpha * np.hypot(di, dj))[ok]
            out[y, x] = np.sum(weights * values) / np.sum(weights)
        elif spec.name == "refined_lee":
            size, step = refined_lee_subwindows(window)
            means = np.zeros((3, 3))
            for a, b in itertools.product(range(3), range(3)):
                top = radius + (a - 1) * step - size // 2
                left = radius + (b - 1) * step - size // 2
                sub = block[top : top + size, left : left + size]
                means[a, b] = np.nanmean(sub) if np.isfinite(sub).any() else 0.0
            m = means
            # Edge direction: vertical, horizontal, main diagonal, anti-diagonal.
            gradients = [
                abs(m[:, 2].sum() - m[:, 0].sum()),
                abs(m[0].sum() - m[2].sum()),
                abs(m[0, 1] + m[0, 2] + m[1, 2] - m[1, 0] - m[2, 0] - m[2, 1]),
                abs(m[0, 0] + m[0, 1] + m[1, 0] - m[1, 2] - m[2, 1] - m[2, 2]),
            ]
            direction = int(np.argmax(gradients))
            # The side whose outer sub-window is closer to the centre's mean.
            outer = [((1, 0), (1, 2)), ((0, 1), (2, 1)), ((0, 2), (2, 0)), ((0, 0), (2, 2))]
            first, second = outer[direction]
            closer_first = abs(m[first] - m[1, 1]) < abs(m[second] - m[1, 1])
            halves = [
                (dj <= 0, dj >= 0),  # left, right
                (di <= 0, di >= 0),  # upper, lower
                (dj >= di, dj <= di),  # upper right, lower left
                (di + dj <= 0, di + dj >= 0),  # upper left, lower right
            ]
            chosen = halves[direction][0 if closer_first else 1]
            out[y, x] = _lee(centre, block[chosen & ok], looks)
    return out


def holey_image(rng: np.random.Generator, shape=(13, 15), looks: float = 3.0) -> np.ndarray:
    """Speckled blocks and a bright point, with a NaN hole and a NaN pixel at the border."""
    scene = np.ones(shape, dtype=np.float32)
    scene[:, shape[1] // 2 :] = 6.0
    scene[2 : shape[0] // 2, 2:5] = 0.2
    image = scene * gamma_speckle(rng, shape, looks)
    image[shape[0] // 2, 3] = 40.0
    image[5:7, 8:10] = np.nan
    image[0, -1] = np.nan
    return image


@pytest.mark.parametrize("name", SPECKLE_FILTERS)
@pytest.mark.parametrize("window", [3, 5, 7])
def test_filters_match_their_definition(name: str, window: int) -> None:
    image = holey_image(np.random.default_rng(window))
    spec = SpeckleFilter(name, window, looks=3.0)
    expected = reference_filter(image.astype(np.float64), spec)
    result = apply_speckle_filter(image, spec)
    assert result.dtype == np.float32 and result.shape == image.shape
    np.testing.assert_array_equal(np.isnan(result), np.isnan(image))
    np.testing.assert_allclose(result, expected, rtol=2e-4, atol=1e-6)


def test_refined_lee_matches_definition_with_larger_windows() -> None:
    image = holey_image(np.random.default_rng(9), shape=(16, 16))
    for window in (9, 11):
        spec = SpeckleFilter("refined_lee", window, looks=3.0)
        np.testing.assert_allclose(
            apply_speckle_filter(image, spec),
            reference_filter(image.astype(np.float64), spec),
            rtol=2e-4,
            atol=1e-6,
        )


def test_refined_lee_matches_definition_with_sparse_nodata() -> None:
    """Few pixels near nodata or the edge: their window counts take a separate path."""
    rng = np.random.default_rng(10)
    image = gamma_speckle(rng, (30, 150), 3.0) * np.where(np.arange(150) < 70, 1.0, 4.0)
    image[12, 40] = np.nan
    image[20:22, 100:103] = np.nan
    for window in (3, 5):
        spec = SpeckleFilter("refined_lee", window, looks=3.0)
        np.testing.assert_allclose(
            apply_speckle_filter(image, spec),
            reference_filter(image.astype(np.float64), spec),
            rtol=2e-4,
            atol=1e-6,
        )


# --- properties ------------------------------------------------------------------------------


@pytest.mark.parametrize("name", SPECKLE_FILTERS)
def test_constant_image_is_unchanged(name: str) -> None:
    image = np.full((40, 37), 0.0372, dtype=np.float32)
    image[10:13, 20:24] = np.nan  # nodata and image borders must not bias the result
    for window in (3, 7):
        result = apply_speckle_filter(image, SpeckleFilter(name, window, looks=2.0))
        np.testing.assert_array_equal(np.isnan(result), np.isnan(image))
        np.testing.assert_allclose(result[np.isfinite(image)], 0.0372, rtol=1e-5)


@pytest.mark.parametrize("name", SMOOTHING)
def test_filters_lower_speckle_variance(name: str) -> None:
    """4-look gamma speckle on a flat area: the filters cut the variance, keep the level."""
    looks = 4.0
    image = 0.05 * gamma_speckle(np.random.default_rng(1), (64, 64), looks)
    result = apply_speckle_filter(image, SpeckleFilter(name, 5, looks))
    inner = result[4:-4, 4:-4]
    input_cv2 = np.var(image) / np.mean(image) ** 2
    output_cv2 = np.var(inner) / np.mean(inner) ** 2
    assert input_cv2 == pytest.approx(1 / looks, rel=0.1)
    assert output_cv2 < 0.35 * input_cv2
    # Median of a 4-look gamma distribution is ~8 % below its mean; the others are unbiased.
    assert np.mean(inner) == pytest.approx(np.mean(image), rel=0.1 if name == "median" else 0.03)


def test_none_filter_only_marks_nodata() -> None:
    image = holey_image(np.random.default_rng(2))
    result = apply_speckle_filter(image, SpeckleFilter("none"))
    np.testing.assert_array_equal(result, image)
    result = apply_speckle_filter(image, SpeckleFilter("none"), valid=np.zeros(image.shape, bool))
    assert np.isnan(result).all()


def test_refined_lee_preserves_edges_better_than_boxcar() -> None:
    """A 1 -> 10 step edge under 4-look speckle: error in the 6 columns about the edge."""
    looks = 4.0
    truth = np.where(np.arange(64) < 32, 1.0, 10.0)[np.newaxis].repeat(64, axis=0)
    image = (truth * gamma_speckle(np.random.default_rng(0), truth.shape, looks)).astype(np.float32)
    near_edge = (slice(8, -8), slice(29, 35))
    errors = {}
    for name in ("boxcar", "lee", "refined_lee"):
        result = apply_speckle_filter(image, SpeckleFilter(name, 7, looks))
        errors[name] = np.sqrt(np.mean((result[near_edge] - truth[near_edge]) ** 2))
    assert errors["refined_lee"] < 0.6 * errors["boxcar"]
    assert errors["refined_lee"] < errors["lee"]
    # Sharpness: the mean jump across the edge stays close to the true 9.
    result = apply_speckle_filter(image, SpeckleFilter("refined_lee", 7, looks))
    boxcar = apply_speckle_filter(image, SpeckleFilter("boxcar", 7, looks))
    jump = np.mean(result[8:-8, 32] - result[8:-8, 31])
    assert jump > 2 * np.mean(boxcar[8:-8, 32] - boxcar[8:-8, 31])


@pytest.mark.parametrize("name", SMOOTHING)
def test_nodata_does_not_bleed(name: str) -> None:
    rng = np.random.default_rng(3)
    image = gamma_speckle(rng, (24, 24), 2.0)
    image[8:12, 8:12] = np.nan
    spec = SpeckleFilter(name, 5, 2.0)
    result = apply_speckle_filter(image, spec)
    np.testing.assert_array_equal(np.isnan(result), np.isnan(image))
    # Whatever lies under the nodata (here through a mask instead of NaN) has no influence.
    for hidden in (0.0, 1e6):
        filled = np.where(np.isnan(image), np.float32(hidden), image)
        masked = apply_speckle_filter(filled, spec, valid=np.isfinite(image))
        np.testing.assert_array_equal(masked, result)


def test_strips_join_without_seams(monkeypatch: pytest.MonkeyPatch) -> None:
    """Whole-raster results do not depend on the processing strip height."""
    rng = np.random.default_rng(4)
    image = gamma_speckle(rng, (70, 50), 2.0) * np.where(np.arange(50) < 20, 1.0, 5.0)
    image[30:33, 10:14] = np.nan
    specs = [SpeckleFilter(name, 7, 2.0) for name in SMOOTHING]
    whole = [apply_speckle_filter(image, spec) for spec in specs]
    monkeypatch.setattr(speckle, "_STRIP_PIXELS", 300)  # strips of 8 rows
    for spec, expected in zip(specs, whole, strict=True):
        np.testing.assert_allclose(apply_speckle_filter(image, spec), expected, rtol=1e-5)


def test_bands_are_filtered_independently() -> None:
    rng = np.random.default_rng(5)
    bands = np.stack([holey_image(rng), 10 * holey_image(rng)])
    spec = SpeckleFilter("refined_lee", 5, 3.0)
    result = apply_speckle_filter(bands, spec)
    assert result.shape == bands.shape
    for band, filtered in zip(bands, result, strict=True):
        np.testing.assert_array_equal(filtered, apply_speckle_filter(band, spec))


def test_integer_input_and_shape_errors() -> None:
    image = np.full((9, 9), 7, dtype=np.uint8)
    np.testing.assert_allclose(apply_speckle_filter(image, SpeckleFilter("lee", 3)), 7.0)
    with pytest.raises(InputError):
        apply_speckle_filter(np.ones(9, np.float32), SpeckleFilter())
    with pytest.raises(InputError):
        apply_speckle_filter(np.ones((9, 9), np.float32), SpeckleFilter(), valid=np.ones((3, 3)))
    with pytest.raises(InputError):
        apply_speckle_filter(np.ones((9, 9), np.float32), "boxcar")  # type: ignore[arg-type]


# --- SpeckleFilter ---------------------------------------------------------------------------


def test_unknown_filter_lists_valid_names() -> None:
    with pytest.raises(InputError) as error:
        SpeckleFilter("sigma_lee")
    assert isinstance(error.value, ValueError)
    for name in SPECKLE_FILTERS:
        assert name in str(error.value)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"window": 4},
        {"window": 1},
        {"window": 5.0},
        {"window": True},
        {"looks": 0},
        {"looks": -1.0},
        {"looks": float("nan")},
        {"looks": "4"},
    ],
)
def test_speckle_filter_validation(kwargs) -> None:
    with pytest.raises(InputError):
        SpeckleFilter(**kwargs)


def test_speckle_filter_dict_round_trip() -> None:
    spec = SpeckleFilter("Refined-Lee", np.int64(9), 4)
    assert spec.name == "refined_lee" and spec.window == 9 and spec.looks == 4.0
    data = spec.to_dict()
    assert data == {"name": "refined_lee", "window": 9, "looks": 4.0}
    assert SpeckleFilter.from_dict(data) == spec
    assert SpeckleFilter.from_dict({}) == SpeckleFilter()
    with pytest.raises(InputError, match="unknown speckle filter settings"):
        SpeckleFilter.from_dict({"name": "lee", "damping": 2})


def test_window_geometry() -> None:
    assert refined_lee_subwindows(7) == (3, 2)
    assert [refined_lee_subwindows(w) for w in (3, 5, 9, 11)] == [(1, 1), (3, 1), (3, 3), (5, 3)]
    for window in (3, 5, 7, 9, 11):
        size, step = refined_lee_subwindows(window)
        assert step + size // 2 == window // 2  # outer sub-windows touch the window's edge
        masks = refined_lee_window_masks(window)
        assert masks.shape == (len(REFINED_LEE_WINDOWS), window, window)
        radius = window // 2
        # Every edge-aligned window is a half of the square, centre line included.
        assert set(masks.sum(axis=(1, 2)).tolist()) == {window * (radius + 1)}
        assert masks[:, radius, radius].all()
        distances, rings = frost_rings(window)
        assert distances[0] == 0 and np.all(np.diff(distances) > 0)
        np.testing.assert_array_equal(rings.sum(axis=0), 1)


def test_spec_is_callable_and_modules_do_not_import_tensorflow() -> None:
    image = holey_image(np.random.default_rng(6))
    spec = SpeckleFilter("gamma_map", 5, 3.0)
    np.testing.assert_array_equal(spec(image), apply_speckle_filter(image, spec))
    code = (
        "import sys, sar_colorizer.sar.speckle, sar_colorizer.sar.radiometry; "
        "sys.exit('tensorflow' in sys.modules or 'keras' in sys.modules)"
    )
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0
