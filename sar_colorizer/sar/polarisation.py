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
from collections.abc import Sequence

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


def input_layout(
    model_pols: Sequence[str], input_names: Sequence[str | None]
) -> tuple[tuple[int, ...], tuple[bool, ...]]:
    """Which bands of an input feed a model whose polarisations are each optional.

    Args:
        model_pols: The model's polarisations in its channel order (e.g. ``("VH", "VV")``).
        input_names: One name per band of the input (descriptions, a file-name polarisation;
            None or "" where unknown).

    Returns:
        ``(positions, present)``: the positions in ``input_names`` of the bands to use, in the
        model's order, and for each model polarisation whether the input has it. A single band
        that names no polarisation is taken as the model's first polarisation (the caller
        warns). Bands of other polarisations are left out.

    Raises:
        ModelMismatchError: The input has none of the model's polarisations, several bands
            without a polarisation name, or one polarisation twice.

    >>> input_layout(("VH", "VV"), ["VV", "VH"])
    ((1, 0), (True, True))
    >>> input_layout(("VH", "VV"), ["Sigma0_VV_db"]), input_layout(("VH", "VV"), [None])
    (((0,), (False, True)), ((0,), (True, False)))
    """
    from sar_colorizer.errors import ModelMismatchError

    wanted = ", ".join(model_pols)
    found = [polarisation(name) for name in input_names]
    if len(found) == 1 and found[0] is None and not polarisations_in(input_names[0]):
        return (0,), tuple(index == 0 for index in range(len(model_pols)))
    if None in found:
        unnamed = ", ".join(str(name or index + 1) for index, (name, pol)
                            in enumerate(zip(input_names, found, strict=True)) if pol is None)
        raise ModelMismatchError(
            f"input band(s) {unnamed} name no polarisation; the model takes {wanted}: "
            "choose bands with --bands (names or 1-based numbers)"
        )
    twice = sorted({pol for pol in found if found.count(pol) > 1 and pol is not None})
    if twice:
        raise ModelMismatchError(
            f"the input has {', '.join(twice)} more than once; choose one with --bands"
        )
    positions = tuple(found.index(pol) for pol in model_pols if pol in found)
    if not positions:
        raise ModelMismatchError(
            f"the input's bands ({', '.join(p or '?' for p in found)}) hold none of the "
            f"model's polarisations {wanted}: give a raster with {' or '.join(model_pols)}"
        )
    return positions, tuple(pol in found for pol in model_pols)
