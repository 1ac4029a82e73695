"""The valid mask: True where a pixel holds data. One definition for every path.

A pixel is invalid when, in any selected band, it equals the band's nodata value, is NaN or
infinite, or is masked by the dataset's mask or alpha band (PNG transparency, GeoTIFF internal
masks, ``.msk`` files, JPEG masks); with ``zero_is_nodata`` also where every selected band is 0
(the fill around a Sentinel-1 GRD swath, often declared as no nodata).

:func:`valid_mask` is what :func:`~sar_colorizer.io.raster.read_raster` returns with the
values; :func:`values_valid` is the part that the values alone tell (arrays in memory);
:class:`SourceMasks` adds the dataset masks of the file an array was read from (the xarray
path), window by window.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

import numpy as np
from rasterio.enums import MaskFlags
from rasterio.io import DatasetReader
from rasterio.windows import Window

__all__ = ["SourceMasks", "dataset_masks", "valid_mask", "values_valid"]


def values_valid(
    values: np.ndarray, nodata: float | None = None, zero_is_nodata: bool = False
) -> np.ndarray:
    """``(H, W)`` True where every band of ``(C, H, W)`` (or ``(H, W)``) values is finite and
    not ``nodata`` (and, with ``zero_is_nodata``, not every band 0)."""
    values = np.asarray(values)
    if values.ndim == 2:
        values = values[None]
    valid = not_nodata(values, nodata)
    if np.issubdtype(values.dtype, np.floating) or np.issubdtype(values.dtype, np.complexfloating):
        valid &= np.isfinite(values).all(axis=0)
    if zero_is_nodata:
        valid &= (values != 0).any(axis=0)
    return valid


def not_nodata(values: np.ndarray, nodata: float | None) -> np.ndarray:
    """``(H, W)`` True where no band of ``(C, H, W)`` values equals ``nodata`` (all True for
    None or NaN nodata: NaN is caught as not finite)."""
    valid = np.ones(values.shape[1:], dtype=bool)
    if nodata is not None and not math.isnan(nodata):
        fill = np.asarray(nodata).astype(values.dtype)
        # An integer nodata value the data type cannot hold matches no pixel.
        if fill == nodata or not np.issubdtype(values.dtype, np.integer):
            valid &= (values != fill).all(axis=0)
    return valid


def dataset_masks(
    src: DatasetReader, indexes: list[int], window: Window | None, shape: tuple[int, int]
) -> np.ndarray | None:
    """The masks of bands ``indexes`` that are not nodata values (alpha band, GeoTIFF internal
    or ``.msk`` mask, JPEG mask) over ``window``, read at ``shape``: ``(H, W)`` True where none
    masks the pixel; None where the bands have no such mask."""
    valid: np.ndarray | None = None
    masks_read: set[str] = set()
    for index in indexes:
        flags = src.mask_flag_enums[index - 1]
        if MaskFlags.nodata in flags or MaskFlags.all_valid in flags:
            continue
        # Shared by all bands when per_dataset, so read once.
        key = "dataset" if MaskFlags.per_dataset in flags else str(index)
        if key not in masks_read:
            masks_read.add(key)
            mask = src.read_masks(index, window=window, out_shape=shape) > 0
            valid = mask if valid is None else valid & mask
    return valid


def valid_mask(
    src: DatasetReader,
    indexes: list[int],
    values: np.ndarray,
    window: Window | None,
    zero_is_nodata: bool,
) -> np.ndarray:
    """The boolean ``(height, width)`` valid mask of ``values`` read from bands ``indexes``
    of ``src`` (in ``window``, possibly decimated to the shape of ``values``)."""
    valid = np.ones(values.shape[1:], dtype=bool)
    for k, index in enumerate(indexes):
        # Nodata is compared here rather than read with read_masks, which would read the
        # pixels again.
        if MaskFlags.nodata in src.mask_flag_enums[index - 1]:
            valid &= not_nodata(values[k : k + 1], src.nodatavals[index - 1])
    masks = dataset_masks(src, indexes, window, values.shape[1:])
    if masks is not None:
        valid &= masks
    return valid & values_valid(values, None, zero_is_nodata)


@dataclass(frozen=True)
class SourceMasks:
    """The dataset masks of the raster an array was read from (picklable, for dask tasks).

    Attributes:
        path: The raster.
        indexes: Its 1-based bands the array holds, in the array's order.
        row_off, col_off: The array's first pixel in the raster.
    """

    path: str
    indexes: tuple[int, ...]
    row_off: int = 0
    col_off: int = 0

    def read(
        self, row: int, col: int, height: int, width: int,
        out_shape: tuple[int, int] | None = None,
    ) -> np.ndarray | None:
        """:func:`dataset_masks` of array rows ``[row, row + height)`` and columns
        ``[col, col + width)``, decimated to ``out_shape`` if given (as predict reads its
        statistics sample); None where the bands have no such mask."""
        import rasterio
        from rasterio.errors import NotGeoreferencedWarning

        window = Window(self.col_off + col, self.row_off + row, width, height)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", NotGeoreferencedWarning)
            with rasterio.open(self.path) as src:
                return dataset_masks(src, list(self.indexes), window, out_shape or (height, width))
