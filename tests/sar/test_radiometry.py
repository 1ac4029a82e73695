"""Radiometry: scale conversions, scale detection, normalisation, raw -> relative -> feature."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest

from sar_colorizer.errors import InputError
from sar_colorizer.sar.radiometry import (
    FEATURE_DB_MIN,
    INPUT_SCALES,
    Normalization,
    amplitude_to_linear,
    db_to_linear,
    detect_input_scale,
    linear_to_amplitude,
    linear_to_db,
    looks_like_digital_numbers,
    raw_to_relative,
    relative_to_feature,
    to_linear_power,
)


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(20240611)


def speckled_linear(rng: np.random.Generator, shape=(32, 32), level=0.03, looks=4.4):
    """Linear sigma0 around -15 dB with gamma speckle, as in a Sentinel-1 GRD scene."""
    return (level * rng.gamma(looks, 1.0 / looks, size=shape)).astype(np.float32)


# --- conversions -----------------------------------------------------------------------------


def test_db_known_values() -> None:
    np.testing.assert_allclose(
        linear_to_db([1.0, 0.1, 10.0, 10**-1.5]), [0, -10, 10, -15], atol=1e-5
    )
    np.testing.assert_allclose(db_to_linear([0.0, -10.0, 3.0]), [1.0, 0.1, 10**0.3], rtol=1e-6)


def test_linear_db_round_trip(rng: np.random.Generator) -> None:
    linear = speckled_linear(rng)
    np.testing.assert_allclose(db_to_linear(linear_to_db(linear)), linear, rtol=1e-5)
    db = rng.uniform(-40, 10, size=100).astype(np.float32)
    np.testing.assert_allclose(linear_to_db(db_to_linear(db)), db, atol=1e-4)


def test_amplitude_round_trip(rng: np.random.Generator) -> None:
    linear = speckled_linear(rng)
    amplitude = linear_to_amplitude(linear)
    np.testing.assert_allclose(amplitude**2, linear, rtol=1e-6)
    np.testing.assert_allclose(amplitude_to_linear(amplitude), linear, rtol=1e-6)


def test_conversions_keep_nan_and_floor_zero() -> None:
    values = np.array([np.nan, 0.0, -0.001, 1.0], dtype=np.float32)
    db = linear_to_db(values)
    assert np.isnan(db[0])
    assert db[1] == pytest.approx(-100.0) and db[2] == pytest.approx(-100.0)
    assert db.dtype == np.float32
    assert np.isnan(db_to_linear(np.array([np.nan]))[0])
    assert np.isnan(linear_to_amplitude(values)[0]) and linear_to_amplitude(values)[2] == 0.0


# --- scale detection -------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
def test_detect_integer_display(dtype, rng: np.random.Generator) -> None:
    assert detect_input_scale(rng.integers(0, 255, size=(2, 8, 8)).astype(dtype)) == "display"


def test_detect_db_and_linear(rng: np.random.Generator) -> None:
    linear = speckled_linear(rng)
    assert detect_input_scale(linear) == "linear"
    assert detect_input_scale(linear_to_db(linear)) == "db"
    # Thermal-noise removal leaves a few slightly negative linear values: still linear.
    noisy = linear.copy()
    noisy[:2] = -0.002
    assert detect_input_scale(noisy) == "linear"
    # A bright urban dB chip with a positive median still has values far below zero.
    bright = linear_to_db(linear * 100.0)
    bright[0, 0] = -12.0
    assert np.median(bright) > 0 and detect_input_scale(bright) == "db"


def test_detect_ignores_nan_and_masked_pixels(rng: np.random.Generator) -> None:
    db = linear_to_db(speckled_linear(rng))
    db[:10] = np.nan
    assert detect_input_scale(db) == "db"
    linear = speckled_linear(rng)
    linear[:, :4] = -99.0  # a nodata fill value, masked out below
    valid = np.ones(linear.shape, dtype=bool)
    valid[:, :4] = False
    assert detect_input_scale(linear) == "db"
    assert detect_input_scale(linear, valid) == "linear"
    assert detect_input_scale(np.stack([linear, linear]), valid) == "linear"


def test_detect_errors() -> None:
    with pytest.raises(InputError, match="no valid pixels"):
        detect_input_scale(np.full((4, 4), np.nan, dtype=np.float32))
    with pytest.raises(InputError):
        detect_input_scale(np.ones((4, 4), dtype=bool))
    with pytest.raises(InputError, match="does not match"):
        detect_input_scale(np.ones((4, 4), np.float32), np.ones((3, 4), bool))


def test_detect_real_samples(samples_dir: Path) -> None:
    """The committed BigEarthNet and Camargue Sentinel-1 samples are float dB."""
    import rasterio

    patches = sorted((samples_dir / "bigearthnet-s1-s2" / "S1").glob("*/*_VH.tif"))
    scenes = sorted((samples_dir / "spatialist-s1-vv-db").glob("*.tif"))
    assert len(patches) == 6 and len(scenes) == 3
    for path in (patches[0], scenes[0]):
        with rasterio.open(path) as source:
            values = source.read()
            valid = values[0] != source.nodata if source.nodata is not None else None
        assert detect_input_scale(values, valid) == "db"


def test_detect_real_display_images(shared_data: Path) -> None:
    """s1s2-la-texas display PNGs (beside the checkout only)."""
    import rasterio
    from rasterio.errors import NotGeoreferencedWarning

    pngs = sorted((shared_data / "s1s2-la-texas" / "sar").glob("*.png"))[:1]
    if not pngs:
        pytest.skip("s1s2-la-texas PNGs missing from ../shared/data")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NotGeoreferencedWarning)  # plain PNG, no world file
        with rasterio.open(pngs[0]) as source:
            values = source.read()
    assert detect_input_scale(values) == "display"
    # Display values are taken as linear intensity and restretched at their own 99th
    # percentile (the PNGs' own stretch puts it at 202-255).
    linear = to_linear_power(values, "auto")
    relative = Normalization().apply(linear)
    p99 = np.percentile(values.astype(np.float32), 99.0)
    assert 150 < p99 <= 255
    np.testing.assert_allclose(relative, np.clip(values / p99, 0, 1), rtol=1e-6)


# --- to_linear_power -------------------------------------------------------------------------


def test_to_linear_power_scales(rng: np.random.Generator) -> None:
    linear = speckled_linear(rng)
    np.testing.assert_allclose(to_linear_power(linear_to_db(linear), "db"), linear, rtol=1e-5)
    np.testing.assert_allclose(to_linear_power(linear_to_db(linear), "auto"), linear, rtol=1e-5)
    np.testing.assert_allclose(
        to_linear_power(linear_to_amplitude(linear), "amplitude"), linear, rtol=1e-5
    )
    display = rng.integers(0, 256, size=(8, 8)).astype(np.uint8)
    out = to_linear_power(display, "auto")
    assert out.dtype == np.float32
    np.testing.assert_array_equal(out, display.astype(np.float32))


def test_to_linear_power_nodata_is_nan(rng: np.random.Generator) -> None:
    db = linear_to_db(speckled_linear(rng, shape=(2, 8, 8)))
    db[0, 0, 0] = np.inf
    valid = np.ones((8, 8), dtype=bool)
    valid[3, 3] = False
    out = to_linear_power(db, "DB", valid)
    assert np.isnan(out[:, 3, 3]).all() and np.isnan(out[0, 0, 0])
    assert np.isfinite(out).sum() == out.size - 3


def test_to_linear_power_all_nodata_gives_nan() -> None:
    out = to_linear_power(np.zeros((4, 4), np.float32), "auto", np.zeros((4, 4), bool))
    assert np.isnan(out).all()


def test_unknown_scale_lists_valid_names() -> None:
    with pytest.raises(InputError) as error:
        to_linear_power(np.ones((2, 2), np.float32), "sigma0")
    for name in (*INPUT_SCALES, "auto"):
        assert name in str(error.value)
    assert isinstance(error.value, ValueError)


# --- normalisation ---------------------------------------------------------------------------


def test_percentile_reference_and_apply(rng: np.random.Generator) -> None:
    linear = speckled_linear(rng)
    normalization = Normalization()
    reference = normalization.reference(linear)
    assert reference == pytest.approx(float(np.percentile(linear, 99.0)), rel=1e-6)
    relative = normalization.apply(linear, reference)
    assert relative.dtype == np.float32
    assert relative.min() >= 0.0 and relative.max() == 1.0
    assert np.mean(relative == 1.0) == pytest.approx(0.01, abs=0.005)
    np.testing.assert_allclose(relative, np.clip(linear / reference, 0, 1), rtol=1e-6)


def test_normalisation_is_scale_and_unit_invariant(rng: np.random.Generator) -> None:
    """Calibration gain and dB-vs-linear storage do not change the network input."""
    linear = speckled_linear(rng)
    normalization = Normalization()
    relative = normalization.apply(linear)
    np.testing.assert_allclose(normalization.apply(linear * 37.0), relative, rtol=1e-5)
    from_db = normalization.apply(to_linear_power(linear_to_db(linear), "auto"))
    np.testing.assert_allclose(from_db, relative, rtol=1e-4, atol=1e-6)


def test_masked_pixels_never_enter_the_reference(rng: np.random.Generator) -> None:
    linear = speckled_linear(rng)
    normalization = Normalization(percentile=95.0)
    valid = np.ones(linear.shape, dtype=bool)
    valid[:8] = False
    expected = normalization.reference(linear[8:])
    polluted = linear.copy()
    polluted[:8] = 1e6  # bright garbage under the mask
    assert normalization.reference(polluted, valid) == pytest.approx(expected, rel=1e-6)
    with_nan = linear.copy()
    with_nan[:8] = np.nan
    assert normalization.reference(with_nan) == pytest.approx(expected, rel=1e-6)
    relative = normalization.apply(with_nan)
    assert np.isnan(relative[:8]).all() and np.isfinite(relative[8:]).all()


def test_db_range_normalisation() -> None:
    normalization = Normalization(method="db_range", db_min=-25.0, db_max=5.0)
    linear = db_to_linear(np.array([-30.0, -25.0, -10.0, 5.0, 8.0, np.nan], dtype=np.float32))
    assert normalization.reference(linear) == pytest.approx(10**0.5)
    relative = normalization.apply(linear)
    np.testing.assert_allclose(relative[:5], [0.0, 10**-3, 10**-1.5, 1.0, 1.0], rtol=1e-5)
    assert np.isnan(relative[5])
    # The reference does not depend on the image.
    assert normalization.reference(linear * 100) == normalization.reference(linear)


def test_normalisation_dict_round_trip() -> None:
    normalization = Normalization(method="DB_RANGE", percentile=98.0, db_min=-30, db_max=0)
    assert normalization.method == "db_range"
    data = normalization.to_dict()
    assert data == {"method": "db_range", "percentile": 98.0, "db_min": -30.0, "db_max": 0.0}
    assert Normalization.from_dict(data) == normalization
    assert Normalization.from_dict({}) == Normalization()


@pytest.mark.parametrize(
    "kwargs",
    [
        {"method": "zscore"},
        {"percentile": 0.0},
        {"percentile": 101.0},
        {"db_min": 5.0, "db_max": 5.0},
        {"percentile": float("nan")},
    ],
)
def test_normalisation_validation(kwargs) -> None:
    with pytest.raises(InputError):
        Normalization(**kwargs)


def test_normalisation_errors() -> None:
    with pytest.raises(InputError, match="percentile, db_range"):
        Normalization(method="minmax")
    with pytest.raises(InputError, match="unknown normalization settings"):
        Normalization.from_dict({"method": "percentile", "gamma": 2})
    with pytest.raises(InputError, match="no valid pixels"):
        Normalization().reference(np.full((3, 3), np.nan, np.float32))
    with pytest.raises(InputError, match="not positive"):
        Normalization().reference(np.zeros((10, 10), np.float32))


def test_raw_to_relative_is_the_same_from_every_scale(rng: np.random.Generator) -> None:
    linear = (rng.gamma(2.0, 0.05, (2, 20, 30)) * [[[1.0]], [[0.2]]]).astype(np.float32)
    valid = np.ones((20, 30), dtype=bool)
    valid[:3, :4] = False
    normalization = Normalization()
    relative, references = raw_to_relative(linear, normalization, "linear", valid)
    assert relative.shape == linear.shape and relative.dtype == np.float32
    # Per band: clip(linear / 99th percentile of the band's valid pixels, 0, 1), NaN at nodata.
    for band in range(2):
        reference = np.percentile(linear[band][valid], 99)
        assert references[band] == pytest.approx(reference, rel=1e-6)
        np.testing.assert_allclose(
            relative[band][valid], np.clip(linear[band][valid] / reference, 0, 1), rtol=1e-6
        )
    assert np.isnan(relative[:, ~valid]).all() and np.nanmax(relative) == 1.0
    for values, scale in ((linear_to_db(linear), "db"), (np.sqrt(linear), "amplitude")):
        same, same_references = raw_to_relative(values, normalization, scale, valid)
        np.testing.assert_allclose(same, relative, rtol=1e-5, atol=1e-7)
        assert same_references == pytest.approx(references, rel=1e-5)


def test_raw_to_relative_with_given_references() -> None:
    linear = np.array([[[0.5, 2.0], [1.0, np.nan]]], dtype=np.float32)
    relative, references = raw_to_relative(linear, Normalization(), references=[1.0])
    assert references == (1.0,)
    np.testing.assert_array_equal(relative[0, 0], [0.5, 1.0])
    assert np.isnan(relative[0, 1, 1])
    with pytest.raises(InputError, match="2 references given for 1 bands"):
        raw_to_relative(linear, Normalization(), references=[1.0, 2.0])
    with pytest.raises(InputError, match="bands, height, width"):
        raw_to_relative(linear[0], Normalization())


def test_relative_to_feature() -> None:
    relative = np.array([1.0, 0.1, 10 ** (FEATURE_DB_MIN / 10), 1e-4, 0.0, np.nan], np.float32)
    feature = relative_to_feature(relative)
    np.testing.assert_allclose(feature[:5], [1.0, 0.6, 0.0, 0.0, 0.0], atol=1e-6)
    assert np.isnan(feature[5])
    ramp = relative_to_feature(np.linspace(0, 1, 50, dtype=np.float32))
    assert np.all(np.diff(ramp) >= 0)


def _grd_digital_numbers(rng: np.random.Generator) -> np.ndarray:
    """uint16 DN as in a GRD measurement: sqrt(sigma0) * A_sigma, A_sigma ~ 500, a few bright
    scatterers (sigma0 1-10, towns), zero border."""
    sigma0 = 0.05 * rng.gamma(4.0, 0.25, size=(64, 64))
    sigma0[rng.random(sigma0.shape) < 0.005] = rng.uniform(1, 10)
    dn = np.round(np.sqrt(sigma0) * 500.0).astype(np.uint16)
    dn[:, :8] = 0
    return dn


def test_grd_digital_numbers_warn_naming_the_input_scale(rng, caplog) -> None:
    with caplog.at_level("WARNING"):
        assert detect_input_scale(_grd_digital_numbers(rng)) == "display"
    assert "digital numbers" in caplog.text and "--input-scale amplitude" in caplog.text


def test_display_images_do_not_warn(rng, caplog) -> None:
    stretched = rng.gamma(4.0, 0.25, size=(64, 64))
    display16 = np.clip(stretched / np.percentile(stretched, 99) * 65535, 0, 65535)
    with caplog.at_level("WARNING"):
        assert detect_input_scale(display16.astype(np.uint16)) == "display"
        assert detect_input_scale(rng.integers(1, 256, size=(64, 64)).astype(np.uint16)) == "display"
        assert detect_input_scale(rng.integers(1, 256, size=(64, 64)).astype(np.uint8)) == "display"
    assert caplog.text == ""
    assert not looks_like_digital_numbers(display16.astype(np.uint16))
    assert looks_like_digital_numbers(_grd_digital_numbers(rng))
