"""``sarcolor predict`` and the Python API on Sentinel-1 products (made from the real metadata
in ../shared/data/s1-grd-safe; skipped without it) and on RTC GeoTIFFs."""

from __future__ import annotations

import numpy as np
import pytest
import rasterio
from click.testing import CliRunner
from s1_products import NAME, make_product

from sar_colorizer.cli import cli
from sar_colorizer.errors import ProductError

# The cut-down products have 320 m pixels; the network would see them resampled to its 10 m.
FAST = ["--tile-size", "64", "--overlap", "16", "--pixel-size", "10"]


def _sigma0(shape, pol):
    rows, cols = np.mgrid[: shape[0], : shape[1]]
    rng = np.random.default_rng(1)
    texture = rng.gamma(4.0, 0.25, size=shape)
    return 0.03 * texture * (1.5 + np.sin(rows / 25.0) * np.cos(cols / 40.0)) * (
        4.0 if pol == "VV" else 1.0)


@pytest.fixture(scope="module")
def product(tmp_path_factory):
    return make_product(tmp_path_factory.mktemp("product"), _sigma0, factor=32)


def _invoke(*args):
    return CliRunner().invoke(cli, ["-q", "predict", *map(str, args)])


def test_predict_on_a_product_is_georeferenced_and_tagged(tiny_bundle, product, tmp_path):
    out = tmp_path / "colour.tif"
    result = _invoke("--model", tiny_bundle, product.safe, out, *FAST)  # the model's VH
    assert result.exit_code == 0, result.output
    calibrated = tmp_path / "sigma0.tif"
    assert CliRunner().invoke(cli, ["-q", "calibrate", str(product.safe), str(calibrated),
                                    "--linear"]).exit_code == 0
    with rasterio.open(out) as src, rasterio.open(calibrated) as ref:
        assert src.crs == ref.crs == "EPSG:32633" and src.transform == ref.transform
        assert src.count == 4  # RGB + alpha
        alpha = src.read(4) > 0
        tags = src.tags()
        assert (alpha == np.isfinite(ref.read(2))).all()  # colour exactly where VH has data
    assert tags["SARCOLOR_INPUT"] == str(product.safe)
    assert tags["SARCOLOR_INPUT_PRODUCT"] == f"Sentinel-1 GRD {NAME}"
    assert tags["SARCOLOR_INPUT_CALIBRATION"].startswith("sigma0")
    assert tags["SARCOLOR_INPUT_NOISE_REMOVAL"].startswith("thermal noise removed")
    assert tags["SARCOLOR_INPUT_SCALE"] == "linear (from the product)"
    assert tags["SARCOLOR_INPUT_BANDS"] == "VH"
    assert tags["SARCOLOR_INPUT_POLARISATIONS"] == "VH"  # only what the model reads
    assert float(tags["SARCOLOR_INPUT_REFERENCE"]) > 0
    assert "no terrain correction" in tags["SARCOLOR_INPUT_GEOCODING"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["colour.tif", "sigma0.tif"]


def test_predict_on_a_zip_equals_the_safe(tiny_bundle, product, tmp_path):
    archive = product.zip(tmp_path / f"{NAME}.zip")
    outs = []
    for source, name in ((product.safe, "a.tif"), (archive, "b.tif")):
        outs.append(tmp_path / name)
        result = _invoke("--model", tiny_bundle, source, outs[-1], "--bands", "VH", *FAST)
        assert result.exit_code == 0, result.output
    with rasterio.open(outs[0]) as a, rasterio.open(outs[1]) as b:
        np.testing.assert_array_equal(a.read(), b.read())


def test_truncated_zip_fails_before_the_model_and_writes_nothing(tiny_bundle, product, tmp_path):
    archive = product.zip(tmp_path / f"{NAME}.zip")
    archive.write_bytes(archive.read_bytes()[:5000])
    out = tmp_path / "colour.tif"
    result = _invoke("--model", tiny_bundle, archive, out, *FAST)
    assert result.exit_code == ProductError.exit_code
    assert "truncated or damaged" in result.output and not out.exists()


def test_api_colorize_file_takes_a_product(tiny_bundle, product, tmp_path):
    import sar_colorizer as sc
    from sar_colorizer.io.s1product import ProductOptions

    out = tmp_path / "api.tif"
    summary = sc.colorize_file(product.safe, out, model=tiny_bundle, bands="VH", tile_size=64,
                               overlap=16, pixel_size=10, product_options=ProductOptions(calibration="gamma0"))
    assert summary.input_scale == "linear"
    with rasterio.open(out) as src:
        assert src.tags()["SARCOLOR_INPUT_CALIBRATION"].startswith("gamma0")


def test_rtc_geotiff_is_read_in_its_scale(tiny_bundle, make_geotiff, tmp_path):
    amplitude = np.sqrt(_sigma0((64, 80), "VH")).astype(np.float32)
    name = "S1A_IW_20180128T161201_DVP_RTC30_G_gauned_FD6A_VH.tif"
    source = make_geotiff(tmp_path / name, amplitude)
    out = tmp_path / "rtc.tif"
    result = _invoke("--model", tiny_bundle, source, out, *FAST)
    assert result.exit_code == 0, result.output
    with rasterio.open(out) as src:
        tags = src.tags()
    assert tags["SARCOLOR_INPUT_SCALE"] == "amplitude (from the file's metadata and name)"
    assert "HyP3 RTC gamma0" in tags["SARCOLOR_INPUT_PRODUCT"]


def test_plain_raster_records_the_detected_scale(tiny_bundle, make_geotiff, tmp_path):
    db = (10 * np.log10(_sigma0((64, 80), "VH"))).astype(np.float32)
    out = tmp_path / "plain.tif"
    result = _invoke("--model", tiny_bundle, make_geotiff(tmp_path / "scene_VH.tif", db), out,
                     *FAST)
    assert result.exit_code == 0, result.output
    with rasterio.open(out) as src:
        tags = src.tags()
    assert tags["SARCOLOR_INPUT_SCALE"] == "db (detected from the values)"
    assert tags["SARCOLOR_INPUT_BANDS"] == "VH" and "SARCOLOR_INPUT_PRODUCT" not in tags
