"""Warnings for inputs that do not look like SAR in the scale they are read as."""

from __future__ import annotations

import numpy as np
import pytest

from sar_colorizer.sar.plausibility import optical_name, sar_warnings


@pytest.mark.parametrize(
    ("name", "found"),
    [
        ("T31TFJ_20200101T103421_B04_10m", "B04"),
        ("S2A_MSIL2A_20170613T101031_87_48_B8A", "S2A"),
        ("S1A_IW_GRDH_1SDV_20170613T165043_33UUP_87_48_VH", None),
        ("S1A__IW___D_20170309T054356_VV_grd_mli_geo_norm_db", None),
        ("scene_VH", None),
    ],
)
def test_sentinel2_names_are_recognised(name, found):
    assert optical_name(f"/data/{name}.tif") == found


def test_sentinel2_band_description_warns():
    values = np.random.default_rng(0).uniform(200, 3000, (1, 20, 20)).astype(np.uint16)
    problems = sar_warnings("x.tif", ["B4"], values, np.ones((20, 20), bool), "display")
    assert len(problems) == 1 and "Sentinel-2" in problems[0]


def test_negative_db_read_as_amplitude_warns_and_real_amplitude_does_not():
    rng = np.random.default_rng(0)
    db = rng.normal(-15, 3, (1, 30, 30)).astype(np.float32)
    valid = np.ones((30, 30), bool)
    problems = sar_warnings("s1_VH.tif", ["VH"], db, valid, "amplitude")
    assert len(problems) == 1 and "--input-scale db" in problems[0]
    amplitude = np.sqrt(rng.gamma(4.0, 0.25, (1, 30, 30))).astype(np.float32)
    assert sar_warnings("s1_VH.tif", ["VH"], amplitude, valid, "amplitude") == []
    assert sar_warnings("s1_VH.tif", ["VH"], db, valid, "db") == []


def test_nodata_is_ignored():
    values = np.full((1, 10, 10), -9999.0, np.float32)
    values[0, :5] = 0.5
    valid = values[0] > -1
    assert sar_warnings("s1_VH.tif", [None], values, valid, "linear") == []
