"""Reading rasters with rasterio: bands, whole or a window, at full or reduced resolution, with
the valid mask; and the one place the package's raster functions are imported from.

Reading:
    :func:`~sar_colorizer.io.dataset.read_info` (:mod:`.dataset`) returns a raster's size,
    georeference, nodata, profile and band descriptions; :func:`~sar_colorizer.io.bands.
    resolve_bands` (:mod:`.bands`) turns a selection such as ``"VV,VH"`` or ``"1,2"`` into band
    numbers; :func:`read_raster` reads those bands, all of the raster or a
    ``rasterio.windows.Window`` of it (scene-sized files are read window by window), optionally
    decimated to an ``out_shape`` (for scene statistics), together with the boolean ``valid``
    mask (True = data, :mod:`.masks`).

Writing (:mod:`.writer`, :mod:`.formats`, :mod:`.output_policy`, :mod:`.atomic`):
    :func:`write_raster` writes an array in one go, :class:`RasterWriter` window by window;
    both are atomic and mark invalid pixels (alpha band, JPEG mask or nodata) so that
    :func:`read_raster` returns the same ``valid`` mask.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np
from rasterio.enums import Resampling
from rasterio.errors import RasterioError
from rasterio.io import DatasetReader
from rasterio.windows import Window

from sar_colorizer.errors import RasterError
from sar_colorizer.io.atomic import world_file_path
from sar_colorizer.io.bands import resolve_bands
from sar_colorizer.io.dataset import (
    RasterInfo,
    info_from_dataset,
    input_path,
    is_virtual_path,
    open_dataset,
    read_info,
)
from sar_colorizer.io.formats import OUTPUT_DRIVERS, WRITER_TAG, driver_for_path
from sar_colorizer.io.masks import valid_mask
from sar_colorizer.io.output_policy import check_output_path, written_by_sarcolor
from sar_colorizer.io.windows import as_window, check_window
from sar_colorizer.io.writer import RasterWriter, atomic_path, write_raster

__all__ = [
    "OUTPUT_DRIVERS",
    "WRITER_TAG",
    "RasterInfo",
    "RasterWriter",
    "atomic_path",
    "check_output_path",
    "driver_for_path",
    "input_path",
    "is_virtual_path",
    "read_dataset",
    "read_info",
    "read_raster",
    "resolve_bands",
    "world_file_path",
    "write_raster",
    "written_by_sarcolor",
]


def read_raster(
    path: str | os.PathLike[str],
    bands: str | int | Sequence[str | int] | None = None,
    window: Window | Sequence[Sequence[int]] | None = None,
    out_shape: tuple[int, ...] | None = None,
    zero_is_nodata: bool = False,
) -> tuple[np.ndarray, np.ndarray]:
    """Read bands of a raster, whole or a window, at full or reduced resolution, with its mask.

    The returned values keep the file's data type: SAR may be linear power, amplitude or dB
    (float) or display-stretched (uint8/uint16); :mod:`sar_colorizer.sar.radiometry` converts.

    A pixel is invalid (``valid`` False) when, in any selected band, it equals the band's
    nodata value, is NaN or infinite, or is masked by the dataset's mask or alpha band (PNG
    transparency, GeoTIFF internal masks, JPEG masks); with ``zero_is_nodata`` also where every
    selected band is 0, the fill value around the swath of Sentinel-1 GRD products, which often
    declare no nodata.

    Args:
        path: raster file.
        bands: band selection, see :func:`resolve_bands`; None reads every non-alpha band.
        window: ``rasterio.windows.Window`` (or ``((row_start, row_stop), (col_start,
            col_stop))``) inside the raster; None reads it all.
        out_shape: ``(height, width)`` to read the window (or raster) decimated to, with
            nearest-neighbour resampling (values are not mixed: statistics stay those of the
            data, and dB or nodata values are not averaged). GDAL reads from overviews where
            the file has them.
        zero_is_nodata: treat all-zero pixels as nodata.

    Returns:
        ``(values, valid)``: values ``(bands, height, width)`` in the file's data type and the
        boolean ``valid`` mask ``(height, width)``.

    Raises:
        RasterError: missing or unreadable file, bad band selection, window outside the raster.
    """
    with open_dataset(path) as src:
        return read_dataset(src, path, bands, window, out_shape, zero_is_nodata)


def read_dataset(
    src: DatasetReader,
    path: str | os.PathLike[str],
    bands: str | int | Sequence[str | int] | None = None,
    window: Window | Sequence[Sequence[int]] | None = None,
    out_shape: tuple[int, ...] | None = None,
    zero_is_nodata: bool = False,
) -> tuple[np.ndarray, np.ndarray]:
    """:func:`read_raster` from a dataset that is open already (``path``: its name, for
    messages). Reading many windows of one dataset, GDAL decompresses each block once while
    its block cache holds it; a dataset opened for each window starts with an empty one."""
    info = info_from_dataset(src, path)
    indexes = resolve_bands(info, bands)
    window = as_window(window)
    if window is not None:
        window = check_window(window, info.width, info.height, path)
    shape = None
    if out_shape is not None:
        height, width = (int(n) for n in tuple(out_shape)[-2:])
        if height <= 0 or width <= 0:
            raise RasterError(f"{path}: out_shape {tuple(out_shape)} must be positive")
        shape = (len(indexes), height, width)
    try:
        values = src.read(indexes, window=window, out_shape=shape, resampling=Resampling.nearest)
        valid = valid_mask(src, indexes, values, window, zero_is_nodata)
    except RasterioError as error:
        raise RasterError(f"{path}: cannot read pixels ({error})") from None
    return values, valid

