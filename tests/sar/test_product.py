"""Sentinel-1 GRD products: manifest, LUTs, calibration and geocoding against known backscatter.

Products are made by ``tests/s1_products.py`` from the real metadata in
../shared/data/s1-grd-safe (skipped without it), cut down 16 times (1632 x 1045 px of 160 m,
the real footprint), with measurement values made from a known sigma0 image through the
inverse calibration; the LUTs are interpolated there with scipy, independently of the package.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest
import rasterio
from rasterio.warp import transform as transform_points
from s1_products import NAME, calibration_lut, make_product, noise_lut

from sar_colorizer.errors import ProductError
from sar_colorizer.io.s1product import ProductOptions, calibrate_product, utm_crs
from sar_colorizer.sar.product import calibrate_dn, is_product_path, open_product

FACTOR = 16


def _smooth(shape: tuple[int, int], pol: str) -> np.ndarray:
    rows, cols = np.mgrid[: shape[0], : shape[1]]
    sigma0 = 0.05 * (1.5 + np.sin(rows / 20.0) * np.cos(cols / 30.0))
    return sigma0 * (1.0 if pol == "VV" else 0.2)


def _gcp_patches(product_gcps: np.ndarray):
    """sigma0 that is constant (a value of its own) within 6 px of every geolocation grid
    point, so a geocoded pixel near a grid point can be checked exactly."""

    def backscatter(shape: tuple[int, int], pol: str) -> np.ndarray:
        sigma0 = _smooth(shape, pol)
        for k, (line, pixel) in enumerate(product_gcps[:, :2]):
            r, c = int(round(line)), int(round(pixel))
            sigma0[max(r - 6, 0) : r + 7, max(c - 6, 0) : c + 7] = _patch_value(k, pol)
        return sigma0

    return backscatter


def _patch_value(k: int, pol: str) -> float:
    return (0.01 + 0.002 * (k % 97)) * (1.0 if pol == "VV" else 0.3)


def _grid(folder: Path) -> np.ndarray:
    """The cut-down product's geolocation grid (line, pixel, lat, lon), read before the
    measurement exists (a product without pixels made first)."""
    probe = make_product(folder, _smooth, FACTOR, polarisations=("VV",))
    return probe.gcps()


@pytest.fixture(scope="module")
def patched(tmp_path_factory):
    """A float32-DN VV+VH product with patches around the grid points, and its geocoded
    sigma0 (linear)."""
    grid = _grid(tmp_path_factory.mktemp("probe"))
    product = make_product(tmp_path_factory.mktemp("patched"), _gcp_patches(grid), FACTOR,
                           dn_dtype="float32")
    out = product.safe.parent / "sigma0.tif"
    calibrate_product(product.safe, out, db=False, progress=False)
    return product, grid, out


def test_manifest_is_read(tmp_path):
    product = make_product(tmp_path, _smooth, FACTOR)
    opened = open_product(product.safe)
    assert (opened.mission, opened.mode, opened.product_type) == ("S1B", "IW", "GRD")
    assert opened.polarisations == ("VV", "VH")
    assert opened.name == NAME and len(opened.footprint) == 4
    annotation = opened.annotation("VV")
    assert (annotation.height, annotation.width) == product.shape
    assert annotation.range_spacing == pytest.approx(10.0 * FACTOR)
    assert annotation.gcps.shape == (210, 5)
    assert is_product_path(product.safe) and is_product_path(product.safe / "manifest.safe")
    assert open_product(product.safe / "manifest.safe").images == opened.images


@pytest.mark.parametrize("dn_dtype", ["float32", "uint16"])
def test_radar_geometry_calibration_returns_the_backscatter(tmp_path, dn_dtype):
    """sigma0 = (DN**2 - noise) / A**2 with bilinear LUTs, against scipy's interpolation."""
    product = make_product(tmp_path, _smooth, FACTOR, polarisations=("VV",), dn_dtype=dn_dtype)
    opened = open_product(product.safe)
    h, w = product.shape
    with rasterio.open(opened.measurement_path("VV")) as src:
        dn = src.read(1)
    # one window off the origin, across calibration vectors and noise blocks
    rows, cols = slice(200, 700), slice(300, 1400)
    window = (rows.start, cols.start, rows.stop - rows.start, cols.stop - cols.start)
    got = calibrate_dn(
        dn[rows, cols],
        opened.calibration("VV").window(*window),
        opened.noise("VV").window(*window),
    )
    a_sigma = calibration_lut(product.calibration, (h, w), rows=rows, cols=cols)
    noise = noise_lut(product.noise, (h, w), rows=rows, cols=cols)
    assert got.dtype == np.float32
    if dn_dtype == "float32":  # exact DN: the known backscatter itself
        np.testing.assert_allclose(got, product.backscatter["VV"][rows, cols], rtol=2e-5)
    else:  # rounded DN: the same formula evaluated independently, to float32 precision
        expected = np.maximum(dn[rows, cols].astype(float) ** 2 - noise, 0) / a_sigma**2
        np.testing.assert_allclose(got, expected, rtol=1e-6)
        # and within the DN rounding of the known backscatter
        np.testing.assert_allclose(got, product.backscatter["VV"][rows, cols], rtol=0.05)


def test_other_calibrations_use_their_luts(tmp_path):
    product = make_product(tmp_path, _smooth, FACTOR, polarisations=("VV",), dn_dtype="float32")
    opened = open_product(product.safe)
    shape = product.shape
    window = (100, 100, 50, 60)
    rows, cols = slice(100, 150), slice(100, 160)
    for name, xml_name in (("beta0", "betaNought"), ("gamma0", "gamma")):
        np.testing.assert_allclose(
            opened.calibration("VV", name).window(*window),
            calibration_lut(product.calibration, shape, xml_name, rows, cols), rtol=1e-9,
        )


def test_border_zeros_are_nodata(tmp_path):
    def with_border(shape, pol):
        sigma0 = _smooth(shape, pol)
        sigma0[:, :40] = 0.0  # DN 0: border noise removed by the IPF
        return sigma0

    product = make_product(tmp_path, with_border, FACTOR, polarisations=("VV",))
    opened = open_product(product.safe)
    with rasterio.open(opened.measurement_path("VV")) as src:
        dn = src.read(1)[:64, :64]
    got = calibrate_dn(dn, opened.calibration("VV").window(0, 0, 64, 64),
                       opened.noise("VV").window(0, 0, 64, 64))
    assert np.isnan(got[:, :40]).all() and np.isfinite(got[:, 40:]).all()


def test_geocoded_backscatter_lies_where_the_geolocation_grid_says(patched):
    product, grid, out = patched
    with rasterio.open(out) as src:
        assert src.crs == utm_crs(open_product(product.safe).footprint) == "EPSG:32633"
        assert src.res == (10.0 * FACTOR, 10.0 * FACTOR)
        assert src.descriptions == ("VV", "VH") and src.dtypes == ("float32", "float32")
        assert src.tags()["SARCOLOR_INPUT_CALIBRATION"].startswith("sigma0")
        values = src.read()
        xs, ys = transform_points("EPSG:4326", src.crs, grid[:, 3], grid[:, 2])
        cols, rows = ~src.transform * (np.asarray(xs), np.asarray(ys))
    rows, cols = np.floor(rows).astype(int), np.floor(cols).astype(int)
    inside = ((grid[:, 0] >= 6) & (grid[:, 0] <= product.shape[0] - 7)
              & (grid[:, 1] >= 6) & (grid[:, 1] <= product.shape[1] - 7))
    assert inside.sum() > 100
    for band, pol in enumerate(("VV", "VH")):
        expected = [_patch_value(k, pol) for k in np.flatnonzero(inside)]
        np.testing.assert_allclose(values[band, rows[inside], cols[inside]], expected, rtol=2e-5)


def test_geocoded_footprint_matches_the_manifest(patched):
    product, _, out = patched
    footprint = np.array(open_product(product.safe).footprint)  # lon, lat
    with rasterio.open(out) as src:
        valid = np.isfinite(src.read(1))
        xs, ys = transform_points("EPSG:4326", src.crs, footprint[:, 0], footprint[:, 1])
        rows, cols = np.nonzero(valid)
        x_min, y_max = src.transform * (cols.min(), rows.min())
        x_max, y_min = src.transform * (cols.max() + 1, rows.max() + 1)
        spacing = src.res[0]
    tolerance = 2 * spacing  # corners are sample centres; the image edge lies half a pixel out
    assert min(xs) == pytest.approx(x_min, abs=tolerance)
    assert max(xs) == pytest.approx(x_max, abs=tolerance)
    assert min(ys) == pytest.approx(y_min, abs=tolerance)
    assert max(ys) == pytest.approx(y_max, abs=tolerance)
    # the swath is a rotated quadrilateral: its corners hold data, the grid's corners do not
    assert not valid[0, 0] and not valid[-1, -1]


def test_zip_reads_as_the_safe_folder(patched, tmp_path):
    product, _, out = patched
    archive = product.zip(tmp_path / f"{NAME}.zip")
    from_zip = tmp_path / "zip.tif"
    calibrate_product(archive, from_zip, db=False, progress=False)
    with rasterio.open(out) as a, rasterio.open(from_zip) as b:
        assert a.transform == b.transform and a.crs == b.crs
        np.testing.assert_array_equal(a.read(), b.read())


def test_noise_removal_can_be_switched_off(tmp_path):
    product = make_product(tmp_path, _smooth, FACTOR, polarisations=("VV",), dn_dtype="float32",
                           with_noise=False)
    out = tmp_path / "raw.tif"
    options = ProductOptions(noise_removal=False, polarisations=("VV",))
    calibrate_product(product.safe, out, options, db=True, progress=False)
    with rasterio.open(out) as src:
        assert src.tags()["SARCOLOR_INPUT_NOISE_REMOVAL"] == "none"
        db = src.read(1)
    finite = db[np.isfinite(db)]
    linear = 10 ** (finite / 10)
    assert 0.05 * 0.5 * 0.95 < linear.min() and linear.max() < 0.05 * 2.5 * 1.05


def test_missing_polarisation_is_refused(tmp_path):
    product = make_product(tmp_path, _smooth, FACTOR, polarisations=("VV",))
    with pytest.raises(ProductError, match="VH .*missing"):
        calibrate_product(product.safe, tmp_path / "out.tif", progress=False)
    assert not (tmp_path / "out.tif").exists()
    calibrate_product(product.safe, tmp_path / "out.tif", ProductOptions(polarisations=("VV",)),
                      progress=False)
    with rasterio.open(tmp_path / "out.tif") as src:
        assert src.count == 1 and src.descriptions == ("VV",)


def test_manifest_xml_is_parsed_namespace_agnostic(tmp_path):
    product = make_product(tmp_path, _smooth, FACTOR, polarisations=("VV",))
    root = ET.parse(product.safe / "manifest.safe").getroot()
    assert root.tag.endswith("XFDU")
    opened = open_product(product.safe)
    assert set(opened.images) == {"VV", "VH"}  # both listed; VH's files are absent here


def test_product_as_the_sar_of_a_pair(patched, make_geotiff, tmp_path):
    """eval and preprocess read pairs with read_pair: a product is calibrated and geocoded,
    the optical image reprojected onto it."""
    from sar_colorizer.data.pairs import Pair, read_pair

    product, _, out = patched
    with rasterio.open(out) as src:
        crs, transform = src.crs, src.transform
        expected = src.read()
    optical = make_geotiff(tmp_path / "opt.tif", np.full((3, 300, 400), 120, dtype=np.uint8),
                           crs=str(crs), transform=transform * rasterio.Affine.translation(600, 500))
    arrays = read_pair(Pair("p", product.safe, optical), bands="VH")
    assert arrays.input_scale == "linear" and arrays.band_names == ("VH",)
    assert arrays.sar.shape == expected[1:].shape
    np.testing.assert_array_equal(arrays.sar[0], expected[1])
    assert arrays.valid[500:800, 600:1000].mean() > 0.9 and not arrays.valid[:500].any()


def test_output_is_cut_to_where_the_data_are(patched, tmp_path):
    """A product that is border zeros except for a block gives an output around the block,
    on the same pixel lattice and with the same values as the whole product's."""
    product, grid, full = patched
    patches = _gcp_patches(grid)

    def block_only(shape, pol):
        sigma0 = patches(shape, pol)
        keep = np.zeros(shape, dtype=bool)
        keep[300:500, 400:800] = True
        return np.where(keep, sigma0, 0.0)

    block = make_product(tmp_path, block_only, FACTOR, dn_dtype="float32")
    out = tmp_path / "block.tif"
    calibrate_product(block.safe, out, db=False, progress=False)
    with rasterio.open(full) as whole, rasterio.open(out) as cut:
        assert cut.width * cut.height < whole.width * whole.height / 2
        col, row = ~whole.transform * (cut.transform.c, cut.transform.f)
        assert (col, row) == (round(col), round(row))  # the same lattice
        window = rasterio.windows.Window(int(col), int(row), cut.width, cut.height)
        expected = whole.read(window=window)
        values = cut.read()
    valid = np.isfinite(values)
    assert 0.5 * 200 * 400 < valid[0].sum() < 2.5 * 200 * 400  # 160 m pixels, at an angle
    # the thin plate spline is sampled every 16 px from each tile's corner, and the tiles
    # start elsewhere on a cut grid: positions differ by ~1/100 px, values of the smooth field
    # by far less than a pixel's step (a little more at the patches' sharp edges)
    relative = np.abs(values[valid] / expected[valid] - 1)
    assert np.median(relative) < 1e-4 and (relative > 2e-3).mean() < 0.01


def test_utm_zone_from_the_footprint():
    assert utm_crs([(13.6, 41.8)]) == "EPSG:32633"  # Rome
    assert utm_crs([(-70.6, -33.4), (-70.4, -33.6)]) == "EPSG:32719"  # Santiago: south
    assert utm_crs([(179.9, 10.0)]) == "EPSG:32660"
