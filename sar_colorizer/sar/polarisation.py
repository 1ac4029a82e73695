"""Polarisations in band names and file names, and the names given to SAR bands.

Sentinel-1 measures backscatter in two of four polarisations (transmit, receive): VV and VH in
the usual IW mode over land, HH and HV near the poles. Which one a band holds is written in its
band description (``"VV"``, ``"Sigma0_VH_db"``) or, for one band per file, in the file name
(BigEarthNet ``..._VH.tif``, SAFE ``s1a-iw-grd-vh-....tiff``). Band selection
(:func:`sar_colorizer.io.bands.resolve_bands`), the names recorded for training
(``stats.json``, the model bundle) and the check of an input against a model
(:meth:`sar_colorizer.bundle.Bundle.check_input`) all read polarisations with the functions here.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sar_colorizer.io.dataset import RasterInfo

POLARISATIONS: tuple[str, ...] = ("VV", "VH", "HH", "HV")
"""Polarisation names, transmit then receive (V vertical, H horizontal)."""

# Not inside a longer word ("HHV", "VVH" are not names), but digits and separators may touch it
# ("Sigma0_VV", "s1a-iw-grd-vh-...", "VV2").
_POLARISATION = re.compile(r"(?<![A-Z])(VV|VH|HH|HV)(?![A-Z])")


def polarisations_in(name: str | None) -> tuple[str, ...]:
    """The polarisations a name mentions, upper case, in order of first mention.

    >>> polarisations_in("S1A_IW_GRDH_VV_VH"), polarisations_in("sigma0_vh_db")
    (('VV', 'VH'), ('VH',))
    """
    found: dict[str, None] = {}
    for match in _POLARISATION.findall(str(name or "").upper()):
        found.setdefault(match)
    return tuple(found)


def polarisation(name: str | None) -> str | None:
    """The one polarisation a band or file name refers to; None when it names none or several.

    >>> polarisation("Sigma0_VH_db"), polarisation("scene_vv.tif"), polarisation("VV+VH")
    ('VH', 'VV', None)
    """
    found = polarisations_in(name)
    return found[0] if len(found) == 1 else None


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
