"""An Extra Wide (EW) GRDM dual HH/HV product, named as real EW products are, made by
``tests/s1_products.py`` from the real metadata in ../shared/data/s1-grd-safe (skipped without
it): ``sarcolor calibrate`` writes HH and HV at the place the geolocation grid gives, and
``sarcolor predict`` with the shipped VH model ends in one line naming the missing polarisation
and what to do, before anything is written."""

from __future__ import annotations

import numpy as np
import pytest
import rasterio
from click.testing import CliRunner
from rasterio.warp import transform as transform_points
from s1_products import EW_NAME, make_product

from sar_colorizer.cli import cli
from sar_colorizer.errors import ModelMismatchError
from sar_colorizer.sar.product import open_product

FACTOR = 16
PATCH = 6  # half side (px) of the constant patch around each geolocation grid point


def _smooth(shape: tuple[int, int], pol: str) -> np.ndarray:
    rows, cols = np.mgrid[: shape[0], : shape[1]]
    sigma0 = 0.05 * (1.5 + np.sin(rows / 20.0) * np.cos(cols / 30.0))
    return sigma0 * (1.0 if pol == "HH" else 0.1)


def _patch_value(k: int, pol: str) -> float:
    return (0.02 + 0.003 * (k % 89)) * (1.0 if pol == "HH" else 0.15)


@pytest.fixture(scope="module")
def ew(tmp_path_factory):
    """The EW product (float32 DN, patches of their own value around every grid point) and its
    geolocation grid (line, pixel, lat, lon), read from a first product without pixels."""
    grid = make_product(tmp_path_factory.mktemp("probe"), _smooth, FACTOR, polarisations=("HH",),
                        mode="EW").gcps()

    def backscatter(shape: tuple[int, int], pol: str) -> np.ndarray:
        sigma0 = _smooth(shape, pol)
        for k, (line, pixel) in enumerate(grid[:, :2]):
            r, c = int(round(line)), int(round(pixel))
            sigma0[max(r - PATCH, 0) : r + PATCH + 1, max(c - PATCH, 0) : c + PATCH + 1] = (
                _patch_value(k, pol))
        return sigma0

    product = make_product(tmp_path_factory.mktemp("ew"), backscatter, FACTOR,
                           dn_dtype="float32", mode="EW")
    return product, grid


def test_the_product_is_named_as_an_ew_grdm_hh_hv_product(ew):
    product, _ = ew
    assert product.safe.name == f"{EW_NAME}.SAFE"
    assert sorted(p.name[:13] for p in (product.safe / "measurement").iterdir()) == [
        "s1b-ew-grd-hh", "s1b-ew-grd-hv"]
    opened = open_product(product.safe)
    assert (opened.mode, opened.polarisations) == ("EW", ("HH", "HV"))
    for pol in ("hh", "hv"):
        text = product.file("annotation/s1b-ew-grd-{pol}-*.xml", pol).read_text()
        assert f"<polarisation>{pol.upper()}</polarisation>" in text
        assert "<mode>EW</mode>" in text and "<swath>EW</swath>" in text and "IW" not in text
    manifest = (product.safe / "manifest.safe").read_text()
    assert "/grd/standard/ewdp" in manifest and "-iw-" not in manifest


def test_calibrate_writes_hh_and_hv_where_the_geolocation_grid_says(ew, tmp_path):
    product, grid = ew
    out = tmp_path / "sigma0.tif"
    result = CliRunner().invoke(cli, ["-q", "calibrate", str(product.safe), str(out), "--linear"])
    assert result.exit_code == 0, result.output
    with rasterio.open(out) as src:
        assert src.descriptions == ("HH", "HV") and src.dtypes == ("float32", "float32")
        assert src.crs == "EPSG:32633" and src.res == (10.0 * FACTOR, 10.0 * FACTOR)
        tags = src.tags()
        assert tags["SARCOLOR_INPUT_POLARISATIONS"] == "HH,HV"
        assert tags["SARCOLOR_INPUT_PRODUCT"] == f"Sentinel-1 GRD {EW_NAME}"
        values = src.read()
        xs, ys = transform_points("EPSG:4326", src.crs, grid[:, 3], grid[:, 2])
        cols, rows = ~src.transform @ (np.asarray(xs), np.asarray(ys))
    rows, cols = np.floor(rows).astype(int), np.floor(cols).astype(int)
    inside = ((grid[:, 0] >= PATCH) & (grid[:, 0] <= product.shape[0] - PATCH - 1)
              & (grid[:, 1] >= PATCH) & (grid[:, 1] <= product.shape[1] - PATCH - 1))
    assert inside.sum() > 100
    for band, pol in enumerate(("HH", "HV")):
        expected = [_patch_value(k, pol) for k in np.flatnonzero(inside)]
        np.testing.assert_allclose(values[band, rows[inside], cols[inside]], expected, rtol=2e-5)


def test_predict_with_the_vh_model_names_the_missing_polarisation(ew, tmp_path):
    product, _ = ew
    out = tmp_path / "colour.tif"
    result = CliRunner().invoke(cli, ["-q", "predict", str(product.safe), str(out)])
    assert result.exit_code == ModelMismatchError.exit_code, result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1, result.output
    assert "holds HH, HV" in lines[0] and "the model reads VH" in lines[0]
    assert "VV/VH product" in lines[0] and "--model" in lines[0]
    assert list(tmp_path.iterdir()) == []
