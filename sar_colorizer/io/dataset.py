"""What a raster is, read without its pixels: size, georeference, nodata, profile, band names.

:func:`read_info` opens any raster GDAL reads (GeoTIFF, Cloud-Optimised GeoTIFF, PNG, JPEG, ...,
also GDAL virtual paths such as ``/vsicurl/``) and returns a :class:`RasterInfo`;
:func:`open_dataset` is the one way the readers open a raster, with one-line errors.
"""

from __future__ import annotations

import contextlib
import os
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import rasterio
from affine import Affine
from rasterio.crs import CRS
from rasterio.errors import NotGeoreferencedWarning, RasterioError
from rasterio.io import DatasetReader

from sar_colorizer.errors import RasterError

__all__ = ["RasterInfo", "input_path", "is_virtual_path", "open_dataset", "read_info"]


@dataclass
class RasterInfo:
    """What a raster holds, read without reading its pixels.

    Attributes:
        path: the file.
        width, height: size in pixels.
        count: number of bands (alpha bands included).
        dtype: numpy data type name of the bands (e.g. ``"uint8"``, ``"float32"``).
        crs: coordinate reference system, None when the file is not georeferenced.
        transform: affine pixel-to-map transform (identity when not georeferenced).
        nodata: the nodata value of the first band, or None.
        profile: rasterio profile (driver, dtype, nodata, size, CRS, transform, creation
            options); start output profiles from a copy of it.
        descriptions: band descriptions (names such as ``"VV"``), None where unset.
        colorinterp: colour interpretation of each band (``"gray"``, ``"red"``, ``"alpha"``, ...).
    """

    path: Path
    width: int
    height: int
    count: int
    dtype: str
    crs: CRS | None
    transform: Affine
    nodata: float | None
    profile: dict[str, Any]
    descriptions: tuple[str | None, ...]
    colorinterp: tuple[str, ...] = ()

    @property
    def shape(self) -> tuple[int, int]:
        """``(height, width)``."""
        return self.height, self.width

    @property
    def driver(self) -> str:
        """GDAL driver short name (``"GTiff"``, ``"PNG"``, ...)."""
        return str(self.profile.get("driver", ""))

    @property
    def data_bands(self) -> list[int]:
        """1-based numbers of the bands that are not alpha bands."""
        bands = [i for i, interp in enumerate(self.colorinterp, start=1) if interp != "alpha"]
        return bands or list(range(1, self.count + 1))


def is_virtual_path(path: str | os.PathLike[str]) -> bool:
    """True for a GDAL virtual path (``/vsis3/...``, ``/vsicurl/https://...``) or a URL
    (``scheme://...``): a name GDAL resolves, not a local file."""
    text = os.fspath(path)
    return text.startswith("/vsi") or "://" in text


def input_path(path: str | os.PathLike[str]) -> Path | str:
    """A raster input as a ``Path``, or unchanged as a string when it is a GDAL virtual path or
    URL (:func:`is_virtual_path`): ``Path`` would turn the ``//`` of ``https://`` into ``/``."""
    if isinstance(path, str) and is_virtual_path(path):
        return path
    return Path(path)


@contextlib.contextmanager
def open_dataset(path: str | os.PathLike[str]) -> Iterator[DatasetReader]:
    """Open a raster for reading; missing or unreadable files raise a one-line RasterError."""
    if not is_virtual_path(path) and not Path(path).exists():
        raise RasterError(f"{path}: no such file")
    try:
        with warnings.catch_warnings():
            # Plain PNG/JPEG images (the training pairs) carry no georeference; that is fine.
            warnings.simplefilter("ignore", NotGeoreferencedWarning)
            dataset = rasterio.open(path)
    except RasterioError as error:
        reason = str(error).strip().splitlines()[0] if str(error).strip() else ""
        detail = "" if (not reason or "not recognized" in reason) else f" ({reason})"
        raise RasterError(f"{path}: not a raster that GDAL can read{detail}") from None
    with dataset:
        yield dataset


def read_info(path: str | os.PathLike[str]) -> RasterInfo:
    """Read a raster's size, georeference, nodata, profile and band descriptions.

    Args:
        path: any raster GDAL reads (also ``/vsicurl/`` and other GDAL virtual paths).

    Returns:
        The :class:`RasterInfo`.

    Raises:
        RasterError: ``"<path>: no such file"`` or ``"<path>: not a raster that GDAL can read"``.
    """
    with open_dataset(path) as src:
        return info_from_dataset(src, path)


def info_from_dataset(src: DatasetReader, path: str | os.PathLike[str]) -> RasterInfo:
    """The :class:`RasterInfo` of an open dataset."""
    return RasterInfo(
        path=Path(path),
        width=src.width,
        height=src.height,
        count=src.count,
        dtype=str(src.dtypes[0]),
        crs=src.crs,
        transform=src.transform,
        nodata=src.nodata,
        profile=dict(src.profile),
        descriptions=tuple(src.descriptions),
        colorinterp=tuple(interp.name for interp in src.colorinterp),
    )

