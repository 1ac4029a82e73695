"""The tone curve: how lightness L is made from the SAR's dB feature.

"matched" maps the scene's SAR feature quantiles to the training optical L quantiles stored in
the bundle, so that the image's brightness distribution becomes the typical optical L
distribution of the training set while the SAR's structure (the order of brightness) is kept;
"sar" is ``L = 100 * feature`` (plain backscatter brightness over the 25 dB below the scene's
99th percentile); "balanced" is half the match and half a straight line. The curve is tabulated
once per scene (:func:`tone_lut`) and looked up per pixel inside the compiled colour conversion
(:class:`~sar_colorizer.inference.colour.ColourConverter`).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from sar_colorizer.errors import InputError

if TYPE_CHECKING:
    from sar_colorizer.bundle import Bundle

logger = logging.getLogger(__name__)

__all__ = [
    "BALANCED_LINE_WEIGHT",
    "N_QUANTILES",
    "TONES",
    "TONE_LUT_SIZE",
    "resolve_tone",
    "tone_lut",
]

#: How L is made from the SAR: "matched" = quantile matching of the scene's SAR feature to the
#: training optical L distribution stored in the bundle; "sar" = plain SAR brightness;
#: "balanced" = half "matched", half the straight line through the same 1 % and 99 % points
#: (:func:`tone_lut`).
TONES = ("balanced", "matched", "sar")

#: Weight of the straight line in the "balanced" tone curve. The quantile-matched curve is
#: steep where the scene's histogram is dense and flat where it is sparse, so it scales the
#: SAR's edges by a factor that varies across the brightness range: on the Camargue quick-start
#: sample the edge fidelity of L (bench/visual_quality.py) was 0.76 with "matched", 0.93 with
#: weight 0.5, 0.97 with 0.75 and 0.98 with "sar"; 0.5 keeps half of the optical look.
BALANCED_LINE_WEIGHT = 0.5

#: Number of quantiles (0, 1, ..., 100 %) of the tone curve.
N_QUANTILES = 101

#: Samples of the tone curve table (feature 0..1 -> L) used per pixel.
TONE_LUT_SIZE = 4097


def _tone_curve(
    scene_quantiles: np.ndarray, l_quantiles: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Strictly increasing (feature, L) nodes for ``np.interp``.

    Where several scene quantiles are equal (e.g. many pixels at feature 0), those quantile
    levels share one feature value and get the mean of their L quantiles.
    """
    xp = np.asarray(scene_quantiles, dtype=np.float64)
    fp = np.asarray(l_quantiles, dtype=np.float64)
    if xp.shape != fp.shape or xp.ndim != 1 or xp.size < 2:
        raise InputError(
            f"tone curve needs two quantile lists of equal length; got {xp.shape} and {fp.shape}"
        )
    xp = np.maximum.accumulate(xp)
    unique, inverse = np.unique(xp, return_inverse=True)
    l_mean = np.bincount(inverse, weights=fp) / np.bincount(inverse)
    return unique, l_mean


def tone_lut(
    tone: str = "matched",
    scene_quantiles: Sequence[float] | np.ndarray | None = None,
    l_quantiles: Sequence[float] | np.ndarray | None = None,
) -> np.ndarray:
    """The tone curve, feature -> L, sampled at :data:`TONE_LUT_SIZE` evenly spaced features.

    L between the samples is interpolated linearly (in the colour conversion); the curve itself
    is piecewise linear between the 101 quantile pairs, so the sampled form differs from it only
    next to its knots, by a tenth of an L unit at most for steep curves (invisible in 8-bit
    output), and it is the same table for every tile of a scene.

    Args:
        tone: "balanced", "matched" or "sar" (module docstring; "balanced" is
            ``(1 - w) matched + w line`` with ``w =`` :data:`BALANCED_LINE_WEIGHT` and
            ``line`` the straight line through (scene 1 %, L 1 %) and (scene 99 %, L 99 %)).
        scene_quantiles: ``(101,)`` feature quantiles of the scene ("matched", "balanced").
        l_quantiles: ``(101,)`` optical L quantiles from the bundle ("matched", "balanced").

    Returns:
        ``(TONE_LUT_SIZE,)`` float32 L values in [0, 100].

    Raises:
        InputError: Unknown tone, or "matched" without quantiles.
    """
    features = np.linspace(0.0, 1.0, TONE_LUT_SIZE)
    if tone == "sar":
        lut = 100.0 * features
    elif tone in ("matched", "balanced"):
        if l_quantiles is None or scene_quantiles is None:
            raise InputError(f"tone {tone!r} needs the bundle's L quantiles; use --tone sar")
        xp, fp = _tone_curve(np.asarray(scene_quantiles), np.asarray(l_quantiles))
        lut = np.interp(features, xp, fp)
        if tone == "balanced":
            lut = _balance(lut, features, np.asarray(scene_quantiles), np.asarray(l_quantiles))
    else:
        raise InputError(f"unknown tone {tone!r}; choose one of {', '.join(TONES)}")
    return np.clip(lut, 0.0, 100.0).astype(np.float32)


def _balance(
    lut: np.ndarray, features: np.ndarray, scene_quantiles: np.ndarray, l_quantiles: np.ndarray
) -> np.ndarray:
    """Blend a quantile-matched tone table with the straight line through its 1 % and 99 %
    points (:data:`BALANCED_LINE_WEIGHT`)."""
    low, high = float(scene_quantiles[1]), float(scene_quantiles[-2])
    l_low, l_high = float(l_quantiles[1]), float(l_quantiles[-2])
    slope = (l_high - l_low) / max(high - low, 1e-6)
    line = l_low + (features - low) * slope
    weight = BALANCED_LINE_WEIGHT
    return np.asarray((1.0 - weight) * lut + weight * line)


def resolve_tone(bundle: Bundle, tone: str) -> tuple[str, np.ndarray | None]:
    """The tone actually used and the bundle's L quantiles (fallback to "sar" if absent).

    Raises:
        InputError: An unknown tone.
    """
    if tone not in TONES:
        raise InputError(f"unknown tone {tone!r}; choose one of {', '.join(TONES)}")
    if tone == "sar":
        return tone, None
    quantiles = (bundle.tone or {}).get("l_quantiles")
    if quantiles is None or len(quantiles) != N_QUANTILES:
        logger.warning("the model bundle has no tone curve (l_quantiles); using --tone sar")
        return "sar", None
    return tone, np.asarray(quantiles, dtype=np.float64)
