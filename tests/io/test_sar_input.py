"""Recognising analysis-ready RTC GeoTIFFs and Sentinel-1 products as SAR inputs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import rasterio

from sar_colorizer.io.sar_input import SarInput, open_sar_input, recognise_rtc

OPERA = "OPERA_L2_RTC-S1_T069-147170-IW1_20231012T123456Z_20231013T000000Z_S1A_30_v1.0_VV.tif"
HYP3 = "S1A_IW_20180128T161201_DVP_RTC30_G_{code}uned_FD6A_VH.tif"


@pytest.mark.parametrize(
    ("name", "tags", "scale", "words"),
    [
        (OPERA, {}, "linear", "OPERA RTC-S1 gamma0"),
        ("burst.tif", {"PRODUCT_TYPE": "RTC-S1",
                       "PROCESSING_INFORMATION_OUTPUT_BACKSCATTER_EXPRESSION_CONVENTION":
                       "linear backscatter intensity"}, "linear", "OPERA RTC-S1"),
        ("burst.tif", {"PROCESSING_INFORMATION_OUTPUT_BACKSCATTER_EXPRESSION_CONVENTION":
                       "backscatter amplitude"}, "amplitude", "RTC GeoTIFF"),
        ("burst.tif", {"OUTPUT_BACKSCATTER_EXPRESSION_CONVENTION": "dB",
                       "OUTPUT_BACKSCATTER_NORMALIZATION_CONVENTION": "sigma0"}, "db", "sigma0"),
        (HYP3.format(code="gp"), {}, "linear", "HyP3 RTC gamma0"),
        (HYP3.format(code="ga"), {}, "amplitude", "HyP3 RTC gamma0"),
        (HYP3.format(code="gd"), {}, "db", "HyP3 RTC gamma0"),
        (HYP3.format(code="sp"), {}, "linear", "HyP3 RTC sigma0"),
    ],
)
def test_rtc_products_are_recognised(name, tags, scale, words):
    recognised = recognise_rtc(name, tags)
    assert recognised is not None and recognised[0] == scale and words in recognised[1]


@pytest.mark.parametrize("name", ["scene_VH.tif", "S1A_IW_GRDH_1SDV_20200101T000000_VV.tif",
                                  "s1a-iw-grd-vv-20211223t051122-001.tiff"])
def test_other_rasters_are_not_rtc(name):
    assert recognise_rtc(name, {"AREA_OR_POINT": "Area"}) is None


def test_open_reads_tags_and_keeps_the_given_scale_over_auto(make_geotiff, tmp_path, caplog):
    amplitude = np.full((8, 8), 0.3, dtype=np.float32)
    path = make_geotiff(tmp_path / "burst.tif", amplitude)
    with rasterio.open(path, "r+") as dst:
        dst.update_tags(PROCESSING_INFORMATION_OUTPUT_BACKSCATTER_EXPRESSION_CONVENTION="amplitude")
    with open_sar_input(path) as sar:
        assert sar.path == path and sar.scale == "amplitude"
        assert sar.input_scale("auto") == "amplitude"
        assert sar.tags["SARCOLOR_INPUT_SCALE"] == "amplitude"
        with caplog.at_level("WARNING"):
            assert sar.input_scale("db") == "db"  # the user's word wins, with a warning
        assert "--input-scale db was given" in caplog.text
    with open_sar_input(make_geotiff(tmp_path / "plain.tif", amplitude)) as plain:
        assert plain.scale is None and plain.input_scale("auto") == "auto"


def test_product_becomes_a_temporary_linear_raster(tmp_path):
    from s1_products import make_product

    product = make_product(tmp_path, lambda shape, pol: np.full(shape, 0.05), factor=32,
                           polarisations=("VV",), dn_dtype="float32")
    from sar_colorizer.io.s1product import ProductOptions

    with open_sar_input(product.safe, ProductOptions(polarisations=("VV",)),
                        progress=False) as sar:
        assert isinstance(sar, SarInput) and sar.scale == "linear" and sar.source == product.safe
        assert sar.tags["SARCOLOR_INPUT_POLARISATIONS"] == "VV"
        with rasterio.open(sar.path) as src:
            assert src.crs == "EPSG:32633" and src.descriptions == ("VV",)
            np.testing.assert_allclose(src.read(1)[np.isfinite(src.read(1))], 0.05, rtol=1e-5)
        temporary = Path(sar.path)
    assert not temporary.exists() and not temporary.parent.exists()
