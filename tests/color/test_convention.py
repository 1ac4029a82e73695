"""The optical colour convention on real Sentinel-2 reflectance (the committed BigEarthNet
samples): haze removal, Level-1C / Level-2A agreement, nodata and degenerate images.

Tolerances are in CIELAB a*b* units. A difference of about 2.3 is just noticeable (Sharma and
Trussell 1997); the colour error of the shipped model against its reference is 4-8 units. So:
where the convention's maths removes a distortion exactly (additive haze per channel and one
common gain), the recovered colour must be within 1 unit (8-bit rounding only); where it removes
it only to first order (a haze that also dims blue more than red, then an 8-bit display
stretch), within 3 units (about one just-noticeable difference; 1.4-2.7 measured on the six
samples, against 4-62 for the images as stored), well below the shipped model's own error.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import rasterio
from skimage.color import rgb2lab

from sar_colorizer.color.convention import (
    OPTICAL_CONVENTIONS,
    check_convention,
    offset_from_tags,
    to_convention,
)
from sar_colorizer.errors import InputError

SAMPLES = Path(__file__).resolve().parents[2] / "data" / "samples" / "bigearthnet-s1-s2" / "S2"
#: Blue path radiance of a clear-to-hazy atmosphere, in reflectance (red, green, blue): the
#: top-of-atmosphere minus surface reflectance over dark targets in Level-1C vs Level-2A pairs is
#: of this order (Rayleigh scattering grows as wavelength^-4).
PATH_RADIANCE = np.array([0.03, 0.05, 0.09])


def _sample(index: int = 0) -> np.ndarray:
    """A real Level-2A patch as stored: (3, 120, 120) uint16 reflectance x 10000, R, G, B."""
    folders = sorted(path for path in SAMPLES.iterdir() if path.is_dir())
    folder = folders[index]
    bands = []
    for band in ("B04", "B03", "B02"):
        with rasterio.open(folder / f"{folder.name}_{band}.tif") as src:
            bands.append(src.read(1))
    return np.stack(bands)


def _ab(rgb_chw: np.ndarray) -> np.ndarray:
    return rgb2lab(np.moveaxis(rgb_chw, 0, -1).astype(np.float64))[..., 1:]


def _mean_ab_error(a: np.ndarray, b: np.ndarray, valid: np.ndarray | None = None) -> float:
    difference = np.linalg.norm(_ab(a) - _ab(b), axis=-1)
    return float(difference[valid].mean() if valid is not None else difference.mean())


def _l1c_like(surface: np.ndarray, transmittance=(1.0, 1.0, 1.0), gain: float = 0.9) -> np.ndarray:
    """Top-of-atmosphere reflectance x 10000 (uint16) from surface reflectance x 10000:
    ``gain * transmittance_c * rho + path_c``."""
    rho = surface.astype(np.float64) / 10000
    toa = gain * np.asarray(transmittance)[:, None, None] * rho + PATH_RADIANCE[:, None, None]
    return np.clip(np.round(toa * 10000), 1, 65535).astype(np.uint16)


def _display_png(values: np.ndarray) -> np.ndarray:
    """An 8-bit display rendering stretched per image (as the s1s2-la-texas fragments)."""
    top = np.percentile(values, 99.5)
    return np.clip(np.round(values / top * 255), 0, 255).astype(np.uint8)


@pytest.mark.parametrize("index", range(6))
def test_additive_haze_and_gain_are_removed(index: int) -> None:
    surface = _sample(index)
    valid = np.ones(surface.shape[1:], bool)
    truth = to_convention(surface, valid, "uint16", "dos")
    hazy = _l1c_like(surface)
    recovered = to_convention(hazy, valid, "uint16", "dos")
    assert _mean_ab_error(recovered, truth) < 1.0
    # The same haze as stored: a large colour error, so the test can tell.
    stored = to_convention(hazy, valid, "uint16", "as-is")
    assert _mean_ab_error(stored, to_convention(surface, valid, "uint16", "as-is")) > 4.0


@pytest.mark.parametrize("index", range(6))
def test_level1c_display_and_level2a_renderings_converge(index: int) -> None:
    """A Level-1C-like 8-bit display image (haze, dimmer blue, per-image stretch) and the
    Level-2A reflectance of the same land: far apart as stored, close in ``dos``."""
    surface = _sample(index)
    valid = np.ones(surface.shape[1:], bool)
    l1c_png = _display_png(_l1c_like(surface, transmittance=(0.95, 0.92, 0.87)).astype(np.float64))
    before = _mean_ab_error(
        to_convention(l1c_png, valid, "uint8", "as-is"),
        to_convention(surface, valid, "uint16", "as-is"),
    )
    after = _mean_ab_error(
        to_convention(l1c_png, valid, "uint8", "dos"),
        to_convention(surface, valid, "uint16", "dos"),
    )
    assert after < 3.0
    assert after < before


def test_level2a_offset_cancels_in_dos_and_is_applied_in_as_is() -> None:
    surface = _sample(1)
    valid = np.ones(surface.shape[1:], bool)
    baseline_04 = surface + np.uint16(1000)  # BOA_ADD_OFFSET -1000 from baseline 04.00
    expected = to_convention(surface, valid, "uint16", "dos")
    np.testing.assert_allclose(to_convention(baseline_04, valid, "uint16", "dos"), expected,
                               atol=1e-5)
    as_is = to_convention(surface, valid, "uint16", "as-is")
    np.testing.assert_allclose(
        to_convention(baseline_04, valid, "uint16", "as-is", offset=-1000), as_is, atol=1e-5
    )
    assert np.abs(to_convention(baseline_04, valid, "uint16", "as-is") - as_is).max() > 0.05
    assert offset_from_tags({"BOA_ADD_OFFSET": "-1000"}) == -1000.0
    assert offset_from_tags({"AREA_OR_POINT": "Area"}) is None
    with pytest.raises(InputError, match="not a number"):
        offset_from_tags({"BOA_ADD_OFFSET": "n/a"})


def test_nodata_never_enters_the_statistics() -> None:
    surface = _sample(2)
    valid = np.ones(surface.shape[1:], bool)
    expected = to_convention(surface, valid, "uint16", "dos")
    # A third of the image is fill: bright in one band, black in others. Results elsewhere
    # must not change.
    filled = surface.copy()
    holes = np.zeros_like(valid)
    holes[:, :40] = True
    filled[0][holes] = 65535
    filled[1:, holes] = 0
    out = to_convention(filled, ~holes, "uint16", "dos")
    assert not out[:, holes].any()
    # the statistics of the valid part alone
    part = to_convention(surface[:, :, 40:], valid[:, 40:], "uint16", "dos")
    np.testing.assert_allclose(out[:, :, 40:], part, atol=1e-6)
    assert np.abs(out[:, :, 40:] - expected[:, :, 40:]).max() > 0  # they differ from the whole
    # NaN in float reflectance is nodata too
    floats = surface.astype(np.float32) / 10000
    floats[:, :5, :5] = np.nan
    out = to_convention(floats, valid, "float32", "dos")
    assert np.isfinite(out).all() and not out[:, :5, :5].any()


@pytest.mark.parametrize("convention", OPTICAL_CONVENTIONS)
@pytest.mark.parametrize("case", ["all_nodata", "all_dark", "constant"])
def test_degenerate_images_give_black_not_nan(convention: str, case: str) -> None:
    shape = (3, 16, 16)
    values = np.zeros(shape, np.uint16)
    valid = np.ones(shape[1:], bool)
    if case == "all_nodata":
        values = _sample(0)[:, :16, :16]
        valid[:] = False
    elif case == "constant":
        values[:] = 700
    out = to_convention(values, valid, "uint16", convention)
    assert out.shape == shape and out.dtype == np.float32 and np.isfinite(out).all()
    assert out.min() >= 0 and out.max() <= 1
    if case != "constant" or convention == "dos":
        assert not out.any()


def test_display_images_in_as_is_are_kept_as_stored() -> None:
    png = np.random.default_rng(0).integers(1, 256, (3, 8, 8)).astype(np.uint8)
    valid = np.ones((8, 8), bool)
    np.testing.assert_allclose(to_convention(png, valid, "uint8", "as-is"), png / 255.0, atol=1e-6)
    dos = to_convention(png, valid, "uint8", "dos")
    assert dos.max() == pytest.approx(1.0) and 0.0 <= dos.min() < 0.02


def test_bad_arguments_are_refused() -> None:
    with pytest.raises(InputError, match="dos, as-is"):
        check_convention("natural")
    with pytest.raises(InputError, match="3 bands"):
        to_convention(np.zeros((1, 4, 4)), np.ones((4, 4), bool), "uint16")
    with pytest.raises(InputError, match="dos, as-is"):
        to_convention(_sample(0), np.ones((120, 120), bool), "uint16", "natural")


def test_bundles_record_their_convention_and_old_ones_are_as_is() -> None:
    from sar_colorizer.bundle import Bundle

    assert Bundle(model=None, metadata={}).optical_convention == "as-is"
    assert Bundle(model=None, metadata={"optical_convention": "dos"}).optical_convention == "dos"
