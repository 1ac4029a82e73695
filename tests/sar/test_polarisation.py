"""Polarisations read from band descriptions and file names."""

from __future__ import annotations

from pathlib import Path

import pytest
from affine import Affine

from sar_colorizer.io.bands import sar_band_names
from sar_colorizer.io.raster import RasterInfo
from sar_colorizer.sar.polarisation import polarisation, polarisations_in


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("VH", "VH"),
        ("Sigma0_VH_db", "VH"),
        ("vv", "VV"),
        ("S1A_IW_GRDH_1SDV_20170613T165043_33UUP_61_39_VV", "VV"),  # "1SDV" is no polarisation
        ("s1a-iw-grd-hv-20200101t054437-001", "HV"),
        ("Gamma0VV", "VV"),  # a digit may touch the name
        ("VV_VH", None),  # two polarisations: ambiguous
        ("VH and VH again", "VH"),
        ("HHV", None),  # inside a longer word
        ("band1", None),
        (None, None),
        ("", None),
    ],
)
def test_polarisation_of_a_name(name, expected) -> None:
    assert polarisation(name) == expected


def test_polarisations_in_order_without_repeats() -> None:
    assert polarisations_in("VH_VV_VH") == ("VH", "VV")
    assert polarisations_in("scene") == ()


def _info(path: str, descriptions: tuple[str | None, ...]) -> RasterInfo:
    return RasterInfo(
        path=Path(path),
        width=4,
        height=4,
        count=len(descriptions),
        dtype="float32",
        crs=None,
        transform=Affine.identity(),
        nodata=None,
        profile={},
        descriptions=descriptions,
        colorinterp=("gray",) * len(descriptions),
    )


def test_band_names_from_descriptions_file_name_or_number() -> None:
    assert sar_band_names(_info("s.tif", ("VV", " VH ")), [2, 1]) == ("VH", "VV")
    assert sar_band_names(_info("S1A_X_VH.tif", (None,)), [1]) == ("VH",)
    assert sar_band_names(_info("S1A_VV_VH.tif", (None,)), [1]) == ("band1",)
    # The file name names the band only when the file holds one band.
    assert sar_band_names(_info("x_VH.tif", (None, None)), [1, 2]) == ("band1", "band2")
