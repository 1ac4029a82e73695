"""The numbers that define the colour conventions, without Keras.

CIE LAB here is scikit-image's (:func:`skimage.color.rgb2lab`): sRGB primaries, D65 white point
(2 degree observer) and its rounded CIE epsilon / slope constants 0.008856 / 7.787 (rather than
the exact 216/24389 and 24389/3132), so colours can be checked against scikit-image.

The network predicts a* and b* divided by :data:`AB_SCALE`; ``stats.json`` counts the training
colours in bins of :data:`AB_BIN_WIDTH` CIELAB units over ``[-AB_SCALE, AB_SCALE]``
(:data:`AB_HISTOGRAM_EDGES`), from which the rarity-weighted loss takes its weights.

:mod:`sar_colorizer.color.lab` (in ``keras.ops``) and the numpy code (gamut table, preprocessing,
inference) import these, so they are defined once and importing them costs no TensorFlow.
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "AB_BIN_WIDTH",
    "AB_HISTOGRAM_EDGES",
    "AB_SCALE",
    "D65_WHITE",
    "LAB_EPSILON",
    "LAB_F_KNEE",
    "LAB_OFFSET",
    "LAB_SLOPE",
    "L_MAX",
    "RGB_FROM_XYZ",
    "XYZ_FROM_RGB",
]

L_MAX = 100.0
"""Lightness of reference white; L lies in [0, L_MAX] for every sRGB colour."""

AB_SCALE = 110.0
"""Divisor that maps a and b to [-1, 1]. Over the sRGB gamut a spans [-86.2, 98.3] and b spans
[-107.9, 94.5] (tests/color/test_lab.py checks a dense RGB grid), so ``AB / AB_SCALE`` stays inside
[-1, 1] with a little headroom and the network's tanh output can reach every sRGB colour."""

AB_BIN_WIDTH = 5.0
"""Width of the AB histogram bins in CIELAB units (44 x 44 bins over [-110, 110])."""


def _read_only(array: np.ndarray) -> np.ndarray:
    array.setflags(write=False)
    return array


AB_HISTOGRAM_EDGES = _read_only(np.arange(-AB_SCALE, AB_SCALE + AB_BIN_WIDTH / 2, AB_BIN_WIDTH))
"""Edges of the AB histogram bins in CIELAB units, as written to ``stats.json`` (45 edges)."""

D65_WHITE = (0.95047, 1.0, 1.08883)
"""CIE XYZ of the D65 white point, 2 degree observer (scikit-image's values)."""

XYZ_FROM_RGB = _read_only(
    np.array(
        [
            [0.412453, 0.357580, 0.180423],
            [0.212671, 0.715160, 0.072169],
            [0.019334, 0.119193, 0.950227],
        ],
        dtype=np.float64,
    )
)
"""Linear sRGB -> CIE XYZ, as ``skimage.color.colorconv.xyz_from_rgb``."""

RGB_FROM_XYZ = _read_only(np.linalg.inv(XYZ_FROM_RGB))
"""CIE XYZ -> linear sRGB, inverted in float64 as scikit-image does (exact inverses)."""

LAB_EPSILON = 0.008856
"""CIE L* function ``f(t)``: cube root above this, the straight line below (scikit-image's)."""

LAB_SLOPE = 7.787
"""Slope of the straight part of ``f(t)`` (scikit-image's rounded value)."""

LAB_OFFSET = 16.0 / 116.0
"""Offset of the straight part of ``f(t)``."""

LAB_F_KNEE = 0.2068966
"""``f(LAB_EPSILON)``: the threshold of the inverse function."""
