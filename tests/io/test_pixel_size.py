"""Pixel size from the georeference and the resampling factor."""

import math

import pytest
from affine import Affine
from rasterio.crs import CRS

from sar_colorizer.errors import InputError
from sar_colorizer.io.pixel_size import pixel_size_metres, resample_factor


def test_projected_metres():
    transform = Affine(20.0, 0, 600000, 0, -20.0, 4800000)
    assert pixel_size_metres(CRS.from_epsg(32631), transform, 100, 100) == pytest.approx(20.0)


def test_projected_feet_are_converted():
    transform = Affine(10.0, 0, 0, 0, -10.0, 0)
    size = pixel_size_metres(CRS.from_epsg(2263), transform, 10, 10)  # NY Long Island, US ft
    assert size == pytest.approx(10 * 0.3048006, rel=1e-5)


def test_geographic_degrees_at_the_scene_latitude():
    step = 0.0001  # degrees
    at_equator = pixel_size_metres(CRS.from_epsg(4326), Affine(step, 0, 10, 0, -step, 0.5), 10, 10)
    at_60 = pixel_size_metres(CRS.from_epsg(4326), Affine(step, 0, 10, 0, -step, 60.0), 10, 10)
    assert at_equator == pytest.approx(11.1, rel=0.01)
    assert at_60 == pytest.approx(11.1 * math.sqrt(0.5), rel=0.02)  # x shrinks by cos(60)


def test_no_crs_is_unknown():
    assert pixel_size_metres(None, Affine.identity(), 10, 10) is None


def test_resample_factor():
    assert resample_factor(None, 10.0) == 1.0
    assert resample_factor(10.3, 10.0) == 1.0  # within tolerance
    assert resample_factor(20.0, 10.0) == 2.0
    assert resample_factor(5.0, 10.0) == 0.5
    with pytest.raises(InputError, match="pixel-size"):
        resample_factor(-1.0, 10.0)
