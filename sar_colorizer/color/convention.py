"""The optical colour convention: what RGB the model learns and ``eval`` scores against.

Optical images reach sarcolor in many forms: 8-bit display PNGs (the s1s2-la-texas fragments,
Sentinel-2 Level-1C top-of-atmosphere reflectance stretched per fragment), Level-1C or Level-2A
reflectance (uint16, reflectance x 10000), multi-band GeoTIFFs or one file per band. The same
land looks different in each: top-of-atmosphere images carry the blue path radiance of the haze,
and every product has its own display stretch. A model trained on one form learns its haze and
stretch, not the colour of the land.

:func:`to_convention` turns any of them into one rendering:

``dos`` (the default)
    1. reflectance: ``(DN + offset) / 10000`` (``offset`` is the Level-2A ``BOA_ADD_OFFSET``,
       -1000 for processing baseline 04.00 and later, 0 before; 0 for Level-1C before 04.00,
       ``RADIO_ADD_OFFSET`` -1000 after); 8-bit display images: ``value / 255``;
    2. dark-object subtraction per channel: each channel minus its 1st percentile over the valid
       pixels (the haze's additive path radiance, Chavez 1988), clipped at 0;
    3. one joint display stretch: all three channels divided by the same value, the 99th
       percentile of the valid, haze-free values of all channels together, clipped to [0, 1].

    Step 2 removes what differs between top-of-atmosphere and surface reflectance to first order
    (an additive offset per channel); step 3 removes any common gain, including the unknown
    per-fragment stretch of display images. Because of step 2, a constant added to every band
    (the Level-2A offset) cancels: ``dos`` renders a baseline-04.00 product the same whether or
    not the offset is given. The joint stretch keeps the ratios between channels, that is, the
    hue of the land. Measured on the shared data, mean a*, b* of LA (Level-1C) and BigEarthNet
    (Level-2A) go from (-0.7, -9.0) and (-15.8, 14.9) as stored to (7.1, 13.7) and (-6.1, 9.1):
    warm soil and green vegetation instead of haze (``python docs/experiments/colour_convention.py``).

``as-is``
    The rendering of earlier versions, for reproducing earlier results: 8-bit images as stored
    (``value / 255``); other types divided by the joint 99th percentile of the valid values,
    with no haze removal.

The rendered values are used as sRGB. Nodata pixels (``valid`` False, or not finite) never
enter the statistics and come out as 0. Images with no valid pixel, or with nothing brighter
than their dark object (all dark), come out black, never NaN.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from sar_colorizer.errors import InputError

#: Names of the optical conventions; the first is the default for new data and models.
OPTICAL_CONVENTIONS = ("dos", "as-is")
DEFAULT_CONVENTION = "dos"
#: The convention of bundles and chip folders that record none (written before it existed).
LEGACY_CONVENTION = "as-is"
#: Sentinel-2 reflectance is stored as reflectance x this (``QUANTIFICATION_VALUE``).
REFLECTANCE_SCALE = 10000.0
#: Percentile of each channel taken as its dark object (the haze's path radiance).
DARK_PERCENTILE = 1.0
#: Percentile of all haze-free channels together that maps to 1 (the display stretch).
STRETCH_PERCENTILE = 99.0
#: Metadata keys that carry the Level-1C / Level-2A offset in Sentinel-2 products.
OFFSET_TAGS = ("BOA_ADD_OFFSET", "RADIO_ADD_OFFSET")


def check_convention(name: str) -> str:
    """Return ``name`` if it is a known convention; raise :class:`InputError` otherwise."""
    if name not in OPTICAL_CONVENTIONS:
        raise InputError(
            f"unknown optical convention {name!r}; choose one of {', '.join(OPTICAL_CONVENTIONS)}"
        )
    return name


def to_reflectance(
    values: np.ndarray, dtype: npt.DTypeLike, offset: float = 0.0
) -> tuple[np.ndarray, str]:
    """Bring stored optical values to a common linear scale.

    Args:
        values: (3, H, W) values as stored.
        dtype: the file's data type: ``uint8`` is a display image (``value / 255``); integer
            types are reflectance x 10000; float types are reflectance already.
        offset: added to integer reflectance DNs before scaling (``BOA_ADD_OFFSET``,
            -1000 for Level-2A from processing baseline 04.00 on).

    Returns:
        ``(values as float32, kind)`` with kind ``"display"`` or ``"reflectance"``.
    """
    values = np.asarray(values, dtype=np.float32)
    native = np.dtype(dtype)
    if native == np.uint8:
        return values / np.float32(255.0), "display"
    if np.issubdtype(native, np.integer):
        return (values + np.float32(offset)) / np.float32(REFLECTANCE_SCALE), "reflectance"
    return values, "reflectance"


def to_convention(
    values: np.ndarray,
    valid: np.ndarray,
    dtype: npt.DTypeLike,
    convention: str = DEFAULT_CONVENTION,
    *,
    offset: float = 0.0,
) -> np.ndarray:
    """Render an optical image (any processing level) in one colour convention.

    Args:
        values: (3, H, W) red, green, blue as stored (uint8 display, uint16 reflectance x 10000,
            or float reflectance).
        valid: (H, W) bool; False pixels never enter the statistics and are 0 in the output.
        dtype: the file's data type (``values`` may have been read as another type).
        convention: ``"dos"`` or ``"as-is"`` (see the module documentation).
        offset: the Level-1C / Level-2A additive offset for integer reflectance (``-1000`` for
            processing baseline 04.00 and later); it cancels in ``dos``.

    Returns:
        (3, H, W) float32 sRGB in [0, 1], 0 at invalid pixels.

    Raises:
        InputError: An unknown convention or a wrong shape.
    """
    check_convention(convention)
    values = np.asarray(values)
    valid = np.asarray(valid, dtype=bool)
    if values.ndim != 3 or values.shape[0] != 3 or values.shape[1:] != valid.shape:
        raise InputError(
            f"optical image of shape {values.shape} with a mask of shape {valid.shape}; "
            "give 3 bands (red, green, blue) on the mask's grid"
        )
    linear, kind = to_reflectance(values, dtype, offset)
    valid = valid & np.all(np.isfinite(linear), axis=0)
    if convention == "as-is":
        rgb = _as_is(linear, valid, kind)
    else:
        rgb = _dark_object_stretch(linear, valid)
    rgb = np.clip(np.nan_to_num(rgb, nan=0.0, posinf=0.0, neginf=0.0), 0.0, 1.0)
    return np.where(valid[None], rgb, 0.0).astype(np.float32)


def _as_is(linear: np.ndarray, valid: np.ndarray, kind: str) -> np.ndarray:
    if kind == "display":
        return linear
    sample = linear[:, valid]
    scale = float(np.percentile(sample, STRETCH_PERCENTILE)) if sample.size else 1.0
    return linear / np.float32(scale if scale > 0 else 1.0)


def _dark_object_stretch(linear: np.ndarray, valid: np.ndarray) -> np.ndarray:
    if not valid.any():
        return np.zeros_like(linear)
    dark = np.array(
        [np.percentile(channel[valid], DARK_PERCENTILE) for channel in linear], dtype=np.float32
    )
    haze_free = np.maximum(linear - dark[:, None, None], 0.0)
    top = float(np.percentile(haze_free[:, valid], STRETCH_PERCENTILE))
    if not top > 0:
        # All dark (or constant): nothing above the dark object to show.
        return np.zeros_like(linear)
    return haze_free / np.float32(top)


def offset_from_tags(tags: dict[str, str]) -> float | None:
    """The additive reflectance offset recorded in a raster's metadata, if any.

    Looks for ``BOA_ADD_OFFSET`` (Level-2A) or ``RADIO_ADD_OFFSET`` (Level-1C), as Sentinel-2
    products from processing baseline 04.00 on record them (one value for all bands here).
    """
    for key in OFFSET_TAGS:
        for name, value in tags.items():
            if name.upper().endswith(key):
                try:
                    return float(value)
                except ValueError:
                    raise InputError(
                        f"optical metadata {name}={value!r} is not a number; fix the tag or pass "
                        "--optical-offset"
                    ) from None
    return None
