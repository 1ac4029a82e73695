"""Polarisations in band names and file names.

Sentinel-1 measures backscatter in two of four polarisations (transmit, receive): VV and VH in
the usual IW mode over land, HH and HV near the poles. Which one a band holds is written in its
band description (``"VV"``, ``"Sigma0_VH_db"``) or, for one band per file, in the file name
(BigEarthNet ``..._VH.tif``, SAFE ``s1a-iw-grd-vh-....tiff``). Band selection
(:func:`sar_colorizer.io.bands.resolve_bands`), the names recorded for training
(``stats.json``, the model bundle; :func:`sar_colorizer.io.bands.sar_band_names`) and the check
of an input against a model (:meth:`sar_colorizer.bundle.Bundle.check_input`) all read
polarisations with the functions here.
"""

from __future__ import annotations

import re

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
