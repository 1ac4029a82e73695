"""Band selection: ``"VV,VH"``, ``"1,2"`` or a band number turned into 1-based band numbers;
the names of the selected SAR bands."""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from sar_colorizer.errors import RasterError
from sar_colorizer.io.dataset import RasterInfo
from sar_colorizer.sar.polarisation import POLARISATIONS, polarisation

__all__ = ["resolve_bands", "sar_band_names"]


def _tokens(text: str) -> list[str]:
    return [token for token in re.split(r"[^0-9a-z]+", text.lower()) if token]


def _band_by_name(info: RasterInfo, name: str) -> int:
    wanted = name.strip().lower()
    descriptions = [(d or "").strip().lower() for d in info.descriptions]
    matches = [i for i, d in enumerate(descriptions, start=1) if d == wanted]
    if not matches:  # "Sigma0_VV", "VV (dB)"
        matches = [i for i, d in enumerate(descriptions, start=1) if wanted in _tokens(d)]
    if not matches and info.count == 1:
        # One polarisation per file, named by its file name: BigEarthNet "..._VV.tif",
        # Sentinel-1 SAFE "s1a-iw-grd-vh-...tiff". A name with two polarisations is ambiguous.
        tokens = _tokens(info.path.stem)
        if tokens and tokens[-1] == wanted:
            matches = [1]
        elif wanted in tokens and (
            wanted.upper() not in POLARISATIONS or polarisation(info.path.stem) == wanted.upper()
        ):
            matches = [1]
    if len(matches) == 1:
        return matches[0]
    listing = ", ".join(
        f"{i} {d!r}" if d else f"{i} (no description)"
        for i, d in enumerate(info.descriptions, start=1)
    )
    if matches:
        raise RasterError(
            f"{info.path}: band name {name!r} matches bands {matches}; select bands by number"
        )
    raise RasterError(
        f"{info.path}: no band named {name!r} (bands: {listing}); select bands by number, "
        f"e.g. '1', or name single-polarisation files like scene_VH.tif"
    )


def resolve_bands(info: RasterInfo, bands: str | int | Sequence[str | int] | None) -> list[int]:
    """Turn a band selection into 1-based band numbers.

    A band is chosen by number (``1``, ``"2"``) or by name. Names (case-insensitive) are
    matched against the band descriptions, exactly or as a word of them (``"VV"`` finds
    ``"Sigma0_VV"``); a single-band file is also matched by its file name, so ``"VH"`` selects
    the band of ``S1A_..._VH.tif`` or of a SAFE measurement ``s1a-iw-grd-vh-....tiff``.

    Args:
        info: the raster, from :func:`read_info`.
        bands: None for every band except alpha bands; a comma-separated string (``"VV,VH"``,
            ``"1,2"``); one band number; or a sequence of numbers and names.

    Returns:
        1-based band numbers in the order asked for.

    Raises:
        RasterError: a number out of range, or a name that matches no band or several.
    """
    if bands is None:
        return info.data_bands
    if isinstance(bands, str):
        selection: list[str | int] = [part.strip() for part in bands.split(",") if part.strip()]
    elif isinstance(bands, int | np.integer):
        selection = [int(bands)]
    else:
        selection = list(bands)
    if not selection:
        raise RasterError(f"{info.path}: empty band selection {bands!r}; give e.g. '1' or 'VH'")
    numbers = []
    for band in selection:
        if isinstance(band, bool):
            raise RasterError(f"{info.path}: {band!r} is not a band number or name")
        if isinstance(band, int | np.integer) or (isinstance(band, str) and band.isdigit()):
            number = int(band)
            if not 1 <= number <= info.count:
                raise RasterError(
                    f"{info.path}: has bands 1 to {info.count}, not {number} (bands count from 1)"
                )
            numbers.append(number)
        elif isinstance(band, str):
            numbers.append(_band_by_name(info, band))
        else:
            raise RasterError(f"{info.path}: {band!r} is not a band number or name")
    return numbers


def sar_band_names(info: RasterInfo, band_indexes: Sequence[int]) -> tuple[str, ...]:
    """Names of the selected SAR bands: their descriptions, else (one band) the polarisation in
    the file name (``..._VH.tif`` -> ``"VH"``), else ``band<i>``.

    Args:
        info: The raster (or per-band set of files) the bands come from.
        band_indexes: 1-based band numbers, in model order.

    Returns:
        One name per band.
    """
    names = []
    for index in band_indexes:
        description = info.descriptions[index - 1] if info.descriptions else None
        names.append(str(description).strip() if description else "")
    if len(band_indexes) == 1 and not names[0]:
        names[0] = polarisation(Path(info.path).stem) or ""
    return tuple(name or f"band{index}" for name, index in zip(names, band_indexes, strict=True))
