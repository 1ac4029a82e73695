"""The brightness users see: an edge-preserving despeckling of the SAR, apart from the network's.

The network is trained on SAR filtered with the bundle's speckle filter (a 5 x 5 boxcar for the
shipped model) and must keep seeing exactly that. The lightness L of the output image is a
separate matter: a 5 x 5 boxcar averages 50 m at 10 m pixels and 100 m at 20 m, so pond banks
and field edges come out visibly blurrier than in the SAR. L is therefore made from the
relative intensity filtered by a *display filter* (:data:`DISPLAY_FILTERS`):

* ``median_guided`` (default): a 3 x 3 median, then a self-guided filter (He et al. 2013) of
  radius 2 on the SAR dB feature. The median removes isolated bright and dark speckle samples,
  which a guided filter alone would keep as "edges"; the guided filter then smooths where the
  local variance of the feature is small compared with ``eps`` and keeps the step where it is
  large. ``docs/experiments/display_filter_table.py`` measured it against boxcar, refined Lee, Gamma-MAP,
  bilateral and non-local means filters: the best balance of edge fidelity (0.86-0.98) and
  smoothness in homogeneous areas (ENL about that of the 5 x 5 boxcar) at 30-40 Mpx/s.
* ``bilateral``: OpenCV's bilateral filter on the dB feature (7 px, sigma 0.12 feature units =
  3 dB, spatial sigma 2 px): as sharp, noisier in homogeneous areas.
* ``network``: the bundle's speckle filter, i.e. L as before this filter existed.

The filters work on the dB feature of :func:`~sar_colorizer.sar.radiometry.relative_to_feature`
(what L is made from) and return relative intensity, so the tone curve and the colour
conversion downstream are unchanged. Nodata never enters a statistic (normalised box sums) and
stays NaN. Every filter is local: :func:`display_halo` rows on each side make a strip's result
equal to the whole image's, which the streaming path in :mod:`sar_colorizer.inference` relies on.
"""

from __future__ import annotations

import numpy as np

from sar_colorizer.errors import InputError
from sar_colorizer.sar.radiometry import FEATURE_DB_MIN, relative_to_feature

__all__ = ["DEFAULT_DISPLAY_FILTER", "DISPLAY_FILTERS", "apply_display_filter", "display_halo"]

DISPLAY_FILTERS: tuple[str, ...] = ("median_guided", "bilateral", "network")
"""Names accepted by :func:`apply_display_filter` and ``sarcolor predict --display-filter``."""

DEFAULT_DISPLAY_FILTER = "median_guided"

#: Guided filter radius (px) and regularisation (squared feature units: 0.002 is a standard
#: deviation of 0.045 x 25 dB = 1.1 dB; finer variation is smoothed, coarser kept).
GUIDED_RADIUS = 2
GUIDED_EPS = 0.002

#: Bilateral filter: diameter (px), range sigma (feature units), spatial sigma (px).
BILATERAL = (7, 0.12, 2.0)


def check_display_filter(name: str) -> str:
    """The canonical name of a display filter (``-`` accepted for ``_``).

    Raises:
        InputError: An unknown name (the message lists the valid ones).
    """
    canonical = str(name).strip().lower().replace("-", "_")
    if canonical not in DISPLAY_FILTERS:
        raise InputError(
            f"unknown display filter {name!r}; choose one of: {', '.join(DISPLAY_FILTERS)}"
        )
    return canonical


def display_halo(name: str) -> int:
    """Rows a strip needs on each side so that the display filter matches the whole image."""
    name = check_display_filter(name)
    if name == "median_guided":
        return 2 + 2 * GUIDED_RADIUS + 1  # nodata fill, median, two box passes, a spare row
    if name == "bilateral":
        return 1 + BILATERAL[0] // 2 + 1
    return 0


def _box(array: np.ndarray, radius: int) -> np.ndarray:
    import cv2  # imported where used: the option checks above need no OpenCV

    """Sums over (2 radius + 1)^2 windows, zero outside the array."""
    size = 2 * radius + 1
    return cv2.boxFilter(
        array, -1, (size, size), normalize=False, borderType=cv2.BORDER_CONSTANT
    )


def _guided_self(feature: np.ndarray, valid: np.ndarray, radius: int, eps: float) -> np.ndarray:
    """Self-guided filter of ``feature`` over the valid pixels (normalised box means)."""
    all_valid = bool(valid.all())
    weight = valid.astype(np.float32)
    inverse_count = _box(weight, radius)
    np.maximum(inverse_count, np.float32(0.5), out=inverse_count)
    np.reciprocal(inverse_count, out=inverse_count)
    masked = feature if all_valid else feature * weight
    mean = _box(masked, radius)
    mean *= inverse_count
    variance = _box(masked * feature, radius)
    variance *= inverse_count
    variance -= mean * mean
    np.maximum(variance, np.float32(0.0), out=variance)
    gain = np.add(variance, np.float32(eps))
    np.divide(variance, gain, out=gain)
    offset = np.subtract(np.float32(1.0), gain)
    offset *= mean
    if not all_valid:
        gain *= weight
        offset *= weight
    out = _box(gain, radius)
    out *= feature
    out += _box(offset, radius)
    out *= inverse_count
    return out


def _fill_nodata(feature: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """Nodata pixels next to valid ones take their neighbours' mean, so that the 3 x 3 median
    of a valid pixel never sees a nodata value as data."""
    if valid.all():
        return feature
    weight = valid.astype(np.float32)
    total = _box(feature * weight, 1)
    count = _box(weight, 1)
    filled = np.where(count > 0, total / np.maximum(count, np.float32(1.0)), np.float32(0.0))
    return np.where(valid, feature, filled).astype(np.float32)


def apply_display_filter(
    relative: np.ndarray, valid: np.ndarray, name: str = DEFAULT_DISPLAY_FILTER
) -> np.ndarray:
    """Edge-preserving despeckling of one band of relative intensity, for the displayed L.

    Args:
        relative: ``(H, W)`` unfiltered relative intensity in [0, 1] (NaN or anything at
            nodata).
        valid: ``(H, W)`` True where the data are valid.
        name: One of :data:`DISPLAY_FILTERS` except ``network`` (the caller applies the
            bundle's speckle filter for that).

    Returns:
        ``(H, W)`` float32 filtered relative intensity, NaN at nodata.

    Raises:
        InputError: An unknown filter name or mismatched shapes.
    """
    import cv2

    name = check_display_filter(name)
    if name == "network":
        raise InputError("the 'network' display filter is the bundle's speckle filter")
    valid = np.asarray(valid, dtype=bool)
    if relative.shape != valid.shape:
        raise InputError(f"valid mask {valid.shape} does not match the image {relative.shape}")
    feature = relative_to_feature(np.where(valid, relative, np.float32(0.0)))
    if name == "median_guided":
        smooth = cv2.medianBlur(_fill_nodata(feature, valid), 3)
        filtered = _guided_self(smooth, valid, GUIDED_RADIUS, GUIDED_EPS)
    else:
        diameter, sigma_range, sigma_space = BILATERAL
        filtered = cv2.bilateralFilter(
            _fill_nodata(feature, valid), diameter, sigma_range, sigma_space
        )
    # relative = 10 ** (dB / 10) with dB = FEATURE_DB_MIN * (1 - feature); cv2.exp is several
    # times faster than np.power on float32.
    np.clip(filtered, 0.0, 1.0, out=filtered)
    scale = np.float32(-FEATURE_DB_MIN * np.log(10.0) / 10.0)
    filtered *= scale
    filtered += np.float32(FEATURE_DB_MIN * np.log(10.0) / 10.0)
    out = cv2.exp(filtered)
    out[~valid] = np.nan
    return out
