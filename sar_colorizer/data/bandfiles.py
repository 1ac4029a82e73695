"""Images held as one file per band: Sentinel-2 ``*_B04``/``*_B03``/``*_B02`` and Sentinel-1
``*_VV``/``*_VH``.

An image path may be

* an ordinary raster (every band in one file);
* one file of a per-band set: a file whose name ends in a band token (``..._B04.tif``,
  ``..._B04_10m.jp2``, ``..._VH.tif``); its partners are the files beside it with the same name
  but another band token;
* a folder holding one per-band set (a BigEarthNet patch folder, a Sentinel-2 granule's
  ``IMG_DATA``).

Optical sets are read in the order red, green, blue (B04, B03, B02); SAR sets in the order
VV, VH, HH, HV of the polarisations present, each band named by its polarisation, so ``--bands
VH`` picks the VH file. All files of a set must share one grid.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from sar_colorizer.errors import InputError

if TYPE_CHECKING:
    from sar_colorizer.io.dataset import RasterInfo

#: Band tokens per kind, in reading order, with the spellings accepted in file names.
BAND_TOKENS: dict[str, dict[str, tuple[str, ...]]] = {
    "optical": {"B04": ("B04", "B4"), "B03": ("B03", "B3"), "B02": ("B02", "B2")},
    "sar": {"VV": ("VV",), "VH": ("VH",), "HH": ("HH",), "HV": ("HV",)},
}
_RASTER_SUFFIXES = frozenset({".tif", ".tiff", ".png", ".jpg", ".jpeg", ".jp2", ".img", ".vrt"})
_TOKEN = re.compile(r"^(?P<prefix>.*?)[_-](?P<token>[A-Za-z]+\d*)(?P<res>_\d+m)?$")


def band_token(path: Path, kind: str) -> tuple[str, str] | None:
    """``(prefix, band)`` when the file name ends in a band token of ``kind``, else None.

    >>> band_token(Path("S2A_87_48_B04.tif"), "optical")
    ('S2A_87_48', 'B04')
    >>> band_token(Path("T31TCJ_20200101T105441_B03_10m.jp2"), "optical")
    ('T31TCJ_20200101T105441', 'B03')
    >>> band_token(Path("S1A_87_48_VH.tif"), "sar"), band_token(Path("003.png"), "sar")
    (('S1A_87_48', 'VH'), None)
    """
    match = _TOKEN.match(path.stem)
    if not match:
        return None
    token = match["token"].upper()
    for band, spellings in BAND_TOKENS[kind].items():
        if token in spellings:
            return match["prefix"], band
    return None


def _rasters(folder: Path) -> list[Path]:
    return sorted(
        file
        for file in folder.iterdir()
        if file.is_file() and not file.name.startswith(".") and file.suffix.lower() in _RASTER_SUFFIXES
    )


def band_files(path: str | Path, kind: str) -> list[tuple[str, Path]] | None:
    """The per-band files of an image, ``[(band, file), ...]`` in reading order, or None when
    ``path`` is an ordinary raster.

    Raises:
        InputError: A folder without a complete set, a set with a band missing (optical needs
            B04, B03 and B02), or a band present twice.
    """
    path = Path(path)
    if path.is_dir():
        candidates = [(band_token(file, kind), file) for file in _rasters(path)]
        members = [(token, file) for token, file in candidates if token is not None]
        prefixes = {token[0] for token, _ in members}
        if len(prefixes) > 1:
            # Several sets in one folder: only a folder of one image is an image.
            raise InputError(
                f"{path}: holds band files of {len(prefixes)} images ({', '.join(sorted(prefixes)[:3])}"
                "...); give one image's files or the B04 / VH file of one image"
            )
        where = f"{path}/"
    else:
        token = band_token(path, kind)
        if token is None or not path.is_file():
            return None
        members = [
            (other, file)
            for file in _rasters(path.parent)
            if (other := band_token(file, kind)) is not None and other[0] == token[0]
        ]
        where = f"{path.parent}/{token[0]}_*"
    found: dict[str, Path] = {}
    for (_, band), file in members:
        if band in found:
            raise InputError(
                f"{where}: band {band} twice ({found[band].name}, {file.name}); keep one file per band"
            )
        found[band] = file
    order = list(BAND_TOKENS[kind])
    if kind == "optical":
        missing = [band for band in order if band not in found]
        if missing:
            raise InputError(
                f"{where}: optical band file(s) {', '.join(missing)} missing; one file per band "
                "needs B04 (red), B03 (green) and B02 (blue)"
            )
    if not found:
        raise InputError(
            f"{path}: no {'B04/B03/B02' if kind == 'optical' else 'VV/VH/HH/HV'} band files "
            "in this folder; give a raster or a folder of one file per band"
        )
    return [(band, found[band]) for band in order if band in found]


def stack_info(path: str | Path, kind: str) -> RasterInfo:
    """The :class:`~sar_colorizer.io.dataset.RasterInfo` of an image, one file or a per-band set
    (then ``count`` is the number of files and ``descriptions`` their bands).

    Raises:
        InputError: The files of a set are on different grids.
        RasterError: A file cannot be read.
    """
    from sar_colorizer.io.dataset import read_info

    files = band_files(path, kind)
    if files is None:
        return read_info(path)
    infos = [read_info(file) for _, file in files]
    first = infos[0]
    for (band, file), info in zip(files, infos, strict=True):
        same = (info.width, info.height) == (first.width, first.height) and info.crs == first.crs
        if not same or not info.transform.almost_equals(first.transform):
            raise InputError(
                f"{file}: band {band} is {info.width}x{info.height} px on another grid than "
                f"{files[0][1].name} ({first.width}x{first.height}); resample the bands onto one grid"
            )
    return dataclasses.replace(
        first,
        count=len(files),
        descriptions=tuple(band for band, _ in files),
        colorinterp=("gray",) * len(files),
    )


def read_stack(
    path: str | Path,
    kind: str,
    bands: Sequence[int] | None = None,
    zero_is_nodata: bool = False,
) -> tuple[np.ndarray, np.ndarray]:
    """Read an image (one file or a per-band set) like :func:`~sar_colorizer.io.raster.read_raster`.

    Args:
        path: The image.
        kind: ``"optical"`` or ``"sar"``.
        bands: 1-based band numbers (of :func:`stack_info`'s bands); None: every band.
        zero_is_nodata: Treat pixels that are 0 in every selected band as nodata.

    Returns:
        ``(values (bands, H, W), valid (H, W))``; a pixel is valid where it is in every band.
    """
    from sar_colorizer.io.raster import read_raster

    files = band_files(path, kind)
    if files is None:
        return read_raster(path, bands=list(bands) if bands is not None else None,
                           zero_is_nodata=zero_is_nodata)
    indexes = list(bands) if bands is not None else list(range(1, len(files) + 1))
    values, valid = [], None
    for index in indexes:
        if not 1 <= index <= len(files):
            raise InputError(f"{path}: band {index} does not exist; it has {len(files)} band files")
        band_values, band_valid = read_raster(files[index - 1][1], bands=[1])
        values.append(band_values[0])
        valid = band_valid if valid is None else valid & band_valid
    stacked = np.stack(values)
    assert valid is not None
    if zero_is_nodata:
        valid = valid & (stacked != 0).any(axis=0)
    return stacked, valid
