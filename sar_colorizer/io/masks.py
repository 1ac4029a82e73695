"""The valid mask of what a raster read returns: True where a pixel holds data.

A pixel is invalid when, in any selected band, it equals the band's nodata value, is NaN or
infinite, or is masked by the dataset's mask or alpha band (PNG transparency, GeoTIFF internal
masks, JPEG masks); with ``zero_is_nodata`` also where every selected band is 0 (the fill
around a Sentinel-1 GRD swath, often declared as no nodata).
"""

from __future__ import annotations

import math

import numpy as np
from rasterio.enums import MaskFlags
from rasterio.io import DatasetReader
from rasterio.windows import Window

__all__ = ["valid_mask"]


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
    masks_read: set[str] = set()
    for k, index in enumerate(indexes):
        flags = src.mask_flag_enums[index - 1]
        if MaskFlags.nodata in flags:
            # Computed here rather than with read_masks, which would read the pixels again.
            nodata = src.nodatavals[index - 1]
            if nodata is not None and not math.isnan(nodata):
                valid &= values[k] != np.asarray(nodata).astype(values.dtype)
        elif MaskFlags.all_valid not in flags:
            # Alpha band, GeoTIFF internal / .msk mask, JPEG mask: shared by all bands when
            # per_dataset, so read once.
            key = "dataset" if MaskFlags.per_dataset in flags else str(index)
            if key not in masks_read:
                masks_read.add(key)
                mask = src.read_masks(index, window=window, out_shape=values.shape[1:])
                valid &= mask > 0
    if np.issubdtype(values.dtype, np.floating) or np.issubdtype(values.dtype, np.complexfloating):
        valid &= np.isfinite(values).all(axis=0)
    if zero_is_nodata:
        valid &= (values != 0).any(axis=0)
    return valid

