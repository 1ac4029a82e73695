"""Ground pixel size of a raster from its georeference, and the resampling factor for a model.

The network learned Sentinel-1 / Sentinel-2 pixels of 10 m; a 20 m (or 40 m EW, or
degree-gridded) input shows it every field and pond at half the size it knows. Inference
therefore resamples each tile to the bundle's training pixel size
(:attr:`~sar_colorizer.bundle.Bundle.pixel_size`) before the network and brings the colour
back to the input grid.

A projected CRS gives the pixel size in its linear unit (converted to metres); a geographic CRS
in degrees, converted at the scene centre's latitude (WGS84 ellipsoid series). Rectangular
pixels count as the geometric mean of their sides. No CRS: unknown (None).
"""

from __future__ import annotations

import logging
import math
from typing import TYPE_CHECKING

from sar_colorizer.errors import InputError

if TYPE_CHECKING:
    from affine import Affine
    from rasterio.crs import CRS

logger = logging.getLogger(__name__)

__all__ = ["RESAMPLE_TOLERANCE", "pixel_size_metres", "resample_factor"]

#: Pixel sizes within this relative difference of the training one are not resampled.
RESAMPLE_TOLERANCE = 0.05


def _metres_per_degree(latitude: float) -> tuple[float, float]:
    """(east-west, north-south) metres per degree at ``latitude`` on the WGS84 ellipsoid."""
    phi = math.radians(latitude)
    north = 111132.92 - 559.82 * math.cos(2 * phi) + 1.175 * math.cos(4 * phi)
    east = 111412.84 * math.cos(phi) - 93.5 * math.cos(3 * phi)
    return east, north


def pixel_size_metres(crs: CRS | None, transform: Affine, width: int, height: int) -> float | None:
    """Ground pixel size in metres from a raster's CRS and affine transform, None if unknown.

    Args:
        crs: A ``rasterio.crs.CRS`` or None.
        transform: The raster's ``affine.Affine`` pixel-to-CRS transform.
        width, height: Raster size (the scene centre sets the latitude of a geographic CRS).
    """
    if crs is None:
        return None
    size_x = math.hypot(transform.a, transform.d)
    size_y = math.hypot(transform.b, transform.e)
    if not (size_x > 0 and size_y > 0):
        return None
    if crs.is_geographic:
        _, latitude = transform @ (width / 2.0, height / 2.0)
        east, north = _metres_per_degree(max(-89.0, min(89.0, latitude)))
        size_x, size_y = size_x * east, size_y * north
    elif crs.is_projected:
        try:
            _, factor = crs.linear_units_factor
        except Exception:  # a CRS without a linear unit: unknown
            return None
        size_x, size_y = size_x * factor, size_y * factor
    else:
        return None
    return math.sqrt(size_x * size_y)


def resample_factor(pixel_size: float | None, training_pixel_size: float) -> float:
    """How many network pixels one input pixel becomes: ``pixel_size / training_pixel_size``.

    1.0 when the pixel size is unknown (None) or within :data:`RESAMPLE_TOLERANCE` of the
    training one.

    Raises:
        InputError: A pixel size that is not a positive number.
    """
    if pixel_size is None:
        return 1.0
    if not (pixel_size > 0 and math.isfinite(pixel_size)):
        raise InputError(f"--pixel-size must be a positive number of metres, got {pixel_size}")
    factor = float(pixel_size) / float(training_pixel_size)
    if abs(factor - 1.0) <= RESAMPLE_TOLERANCE:
        return 1.0
    return factor
