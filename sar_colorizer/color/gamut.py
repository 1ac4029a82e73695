"""Gamut-aware chroma limit in LCh: keep lightness and hue, reduce chroma to what sRGB can show.

The network predicts a and b without knowing the lightness that the SAR will give the pixel.
Near black (water, radar shadow) and near white, sRGB can only show small chroma; a fixed a*b*
there lies outside the gamut, and clipping each RGB channel to [0, 1] then turns it into a
saturated colour of another hue (a slightly greenish-blue a*b* on a dark pond becomes bright
teal or red). Here each pixel's chroma ``C = hypot(a, b)`` is instead capped at the largest
chroma sRGB can show at its lightness L and hue ``h = atan2(b, a)``: the colour moves in a
straight line toward the grey of the same L, which is inside the gamut, so its hue is kept and
dark or bright pixels fade to grey (toward black and white) rather than flip.

The cap comes from a table of the gamut boundary (:func:`max_chroma_table`), found by
bisection on the exact LAB -> linear RGB conversion of :mod:`sar_colorizer.color.lab`, indexed
by L (steps of 0.25) and the "diamond angle" of (a, b) (a rational, monotonic stand-in for the
hue angle: 0, 1, 2, 3 at +a, +b, -a, -b; 180 steps per quadrant, under half a degree), so that
a pixel costs one table read, one division and a square root inside the XLA-compiled colour
conversion, and no arctangent. Each cell holds the smallest boundary chroma of its corners, so
the cap never lies outside the gamut; it is 0.4 CIELAB units inside it on average (about 2
next to the sharp cusps of the gamut).

A cap taken at each pixel's own L follows the speckle that is left in L: on a dark pond, where
the cap grows with L from 0 at black, the chroma shown would rise and fall from pixel to pixel
and the pond would look sprinkled with colour. So the cap is taken over a smooth envelope of the
pixel's neighbourhood (:func:`lightness_envelope`): the smallest of the caps at the pixel's L and
at a smooth lower and upper bound of the L around it. The bounds come from a min (max) filter
followed by a mean filter of the same radius, which never rises above (falls below) the pixel
itself, so the colour stays inside the gamut, and the boundary chroma, which rises from black to
a cusp and falls to white along each hue, is smallest at one of the two bounds.
"""

from __future__ import annotations

import threading
from functools import lru_cache
from typing import TYPE_CHECKING, Any

import cv2
import numpy as np

from sar_colorizer.color.constants import (
    D65_WHITE,
    LAB_F_KNEE,
    LAB_OFFSET,
    LAB_SLOPE,
    RGB_FROM_XYZ,
)

if TYPE_CHECKING:
    from tensorflow import Tensor

__all__ = [
    "ANGLE_STEPS",
    "L_STEPS",
    "diamond_angle",
    "envelope_reach",
    "ENVELOPE_RADIUS",
    "lab_to_linear_rgb",
    "lightness_envelope",
    "limit_chroma",
    "limit_chroma_numpy",
    "max_chroma_table",
    "prepare_max_chroma_table",
]

#: Table cells: lightness 0-100 in steps of 1 / L_PER_UNIT, diamond angle 0-4 in steps of
#: 1 / ANGLE_PER_UNIT.
L_PER_UNIT = 4
ANGLE_PER_UNIT = 180
L_STEPS = 100 * L_PER_UNIT + 1
ANGLE_STEPS = 4 * ANGLE_PER_UNIT

_WHITE = np.array(D65_WHITE)

#: Radius in output pixels of the min / max and mean filters of :func:`lightness_envelope`. On
#: the Camargue quick-start sample (20 m, shipped model) the written image's colour speckle was
#: 1.39 / 1.29 / 1.03 / 0.81 / 0.68 for radius 0 (each pixel's own L) / 1 / 2 / 3 / 4, its mean
#: chroma 14.6 / 14.0 / 13.3 / 12.5 / 11.8: 3 is the smallest radius that takes the speckle
#: under 1 (``python bench/visual_quality.py --envelope`` prints all the samples).
ENVELOPE_RADIUS = 3


def lab_to_linear_rgb(lab: np.ndarray) -> np.ndarray:
    """``(..., 3)`` CIE LAB -> linear sRGB (not clipped), float64; in gamut iff in [0, 1]."""
    lab = np.asarray(lab, dtype=np.float64)
    fy = (lab[..., 0] + 16.0) / 116.0
    f = np.stack([fy + lab[..., 1] / 500.0, fy, fy - lab[..., 2] / 200.0], axis=-1)
    xyz = np.where(f > LAB_F_KNEE, f**3, (f - LAB_OFFSET) / LAB_SLOPE) * _WHITE
    return xyz @ RGB_FROM_XYZ.T


def diamond_angle(a: Any, b: Any, where: Any = np.where) -> Any:
    """Monotonic stand-in for the hue angle in [0, 4): 0 at +a, 1 at +b, 2 at -a, 3 at -b,
    linear in ``b / (|a| + |b|)`` within each quadrant. ``where``: ``np.where`` or
    ``tf.where``."""
    total = abs(a) + abs(b) + 1e-12
    upper = where(a >= 0, b / total, 1.0 - a / total)
    lower = where(a < 0, 2.0 - b / total, 3.0 + a / total)
    return where(b >= 0, upper, lower)


def _direction(angle: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Unit (a, b) direction of a diamond angle (its inverse)."""
    quadrant = np.floor(angle).astype(int) % 4
    t = angle - np.floor(angle)
    # Within quadrant 0: (1 - t, t) up to scale; the others are rotations by 90 degrees.
    x, y = 1.0 - t, t
    a = np.select([quadrant == 0, quadrant == 1, quadrant == 2], [x, -y, -x], y)
    b = np.select([quadrant == 0, quadrant == 1, quadrant == 2], [y, x, -y], -x)
    norm = np.hypot(a, b)
    return a / norm, b / norm


def _boundary(lightness: np.ndarray, cos: np.ndarray, sin: np.ndarray) -> np.ndarray:
    """Largest in-gamut chroma along each (L, direction), by bisection on linear RGB."""
    shape = np.broadcast(lightness, cos).shape
    fy = np.broadcast_to((np.asarray(lightness, dtype=np.float64) + 16.0) / 116.0, shape)

    def inverse_f(f: np.ndarray) -> np.ndarray:
        return np.where(f > LAB_F_KNEE, f * f * f, (f - LAB_OFFSET) / LAB_SLOPE)

    y = inverse_f(fy) * _WHITE[1]
    cos_500, sin_200 = np.broadcast_to(cos, shape) / 500.0, np.broadcast_to(sin, shape) / 200.0
    low = np.zeros(shape)
    high = np.full(shape, 200.0)
    for _ in range(20):  # 200 / 2**20: a 0.0002 chroma step
        middle = 0.5 * (low + high)
        x = inverse_f(fy + middle * cos_500) * _WHITE[0]
        z = inverse_f(fy - middle * sin_200) * _WHITE[2]
        inside = np.ones(shape, dtype=bool)
        for row in RGB_FROM_XYZ:
            channel = row[0] * x + row[1] * y + row[2] * z
            inside &= (channel >= 0.0) & (channel <= 1.0)
        low = np.where(inside, middle, low)
        high = np.where(inside, high, middle)
    return low


def max_chroma_table() -> np.ndarray:
    """``(L_STEPS, ANGLE_STEPS)`` float32: per cell of (L, diamond angle), the smallest
    boundary chroma of its four corners (0 at L = 0 and L = 100). Built once per process
    (a few tenths of a second; :func:`prepare_max_chroma_table` starts it early)."""
    with _TABLE_LOCK:
        return _max_chroma_table()


def prepare_max_chroma_table() -> None:
    """Build :func:`max_chroma_table` in a background thread (predict starts it while it
    reads the scene statistics, so that the colour conversion finds it ready)."""
    threading.Thread(target=max_chroma_table, name="gamut-table", daemon=True).start()


_TABLE_LOCK = threading.Lock()


@lru_cache(maxsize=1)
def _max_chroma_table() -> np.ndarray:
    lightness = np.linspace(0.0, 100.0, L_STEPS)[:, None]
    cos, sin = _direction(np.linspace(0.0, 4.0, ANGLE_STEPS + 1))
    nodes = _boundary(lightness, cos[None, :], sin[None, :])  # (L_STEPS, ANGLE_STEPS + 1)
    below = np.minimum(nodes[:, :-1], nodes[:, 1:])
    cells = np.minimum(below, np.concatenate([below[1:], below[-1:]], axis=0))
    table = cells.astype(np.float32)
    table.setflags(write=False)
    return table


def _cell(lightness: Any, angle: Any) -> tuple[Any, Any]:
    return lightness * float(L_PER_UNIT), angle * float(ANGLE_PER_UNIT)


def limit_chroma_numpy(lab: np.ndarray, *bounds: np.ndarray) -> np.ndarray:
    """numpy twin of :func:`limit_chroma`: ``(..., 3)`` LAB with chroma capped, float32;
    ``bounds``: more ``(...)`` lightnesses whose caps also apply."""
    lab = np.asarray(lab, dtype=np.float32)
    table = max_chroma_table()
    a, b = lab[..., 1], lab[..., 2]
    _, col = _cell(0.0, diamond_angle(a, b))
    col = np.minimum(np.asarray(col).astype(np.int32), ANGLE_STEPS - 1)
    cap = None
    for value in (lab[..., 0], *bounds):
        row, _ = _cell(np.clip(np.asarray(value, dtype=np.float32), 0.0, 100.0), 0.0)
        found = table[np.minimum(row.astype(np.int32), L_STEPS - 1), col]
        cap = found if cap is None else np.minimum(cap, found)
    scale = np.minimum(1.0, cap / np.maximum(np.hypot(a, b), 1e-6))
    out = lab.copy()
    out[..., 1] = a * scale
    out[..., 2] = b * scale
    return out


def limit_chroma(lightness: Tensor, ab: Tensor, table: Tensor, *bounds: Tensor) -> Tensor:
    """In-graph chroma cap for the colour conversion (TensorFlow ops).

    Args:
        lightness: ``(N,)`` float32 L in [0, 100].
        ab: ``(N, 2)`` float32 a, b in CIELAB units.
        table: :func:`max_chroma_table` as a flat ``(L_STEPS * ANGLE_STEPS,)`` float32 tensor.
        bounds: More ``(N,)`` lightnesses (the envelope of :func:`lightness_envelope` through
            the tone curve); the cap is the smallest over ``lightness`` and these.

    Returns:
        ``(N, 2)`` a, b with the same hue and chroma at most the gamut's at (L, hue).
    """
    from sar_colorizer._tf import import_tensorflow

    tf = import_tensorflow()
    a, b = ab[:, 0], ab[:, 1]
    _, col = _cell(0.0, diamond_angle(a, b, tf.where))
    col = tf.minimum(tf.cast(col, tf.int32), ANGLE_STEPS - 1)
    cap = None
    for value in (lightness, *bounds):
        row, _ = _cell(tf.clip_by_value(value, 0.0, 100.0), 0.0)
        row = tf.minimum(tf.cast(row, tf.int32), L_STEPS - 1)
        found = tf.gather(table, row * ANGLE_STEPS + col)
        cap = found if cap is None else tf.minimum(cap, found)
    scale = tf.minimum(1.0, cap / tf.maximum(tf.sqrt(a * a + b * b), 1e-6))
    return ab * scale[:, None]


def envelope_reach(radius: int = ENVELOPE_RADIUS) -> int:
    """Pixels on each side that :func:`lightness_envelope` of ``radius`` reads: its min / max
    window and then its mean window. A window of a larger image with this much context around
    the pixels kept gives them their whole-image envelope."""
    return 2 * max(0, int(radius))


def lightness_envelope(
    feature: np.ndarray, valid: np.ndarray, radius: int = ENVELOPE_RADIUS
) -> tuple[np.ndarray, np.ndarray]:
    """Smooth lower and upper bounds of a brightness feature around each pixel.

    ``low = mean_r(min_r(feature))`` and ``high = mean_r(max_r(feature))`` over square windows of
    radius ``radius``: at every valid pixel ``low <= feature <= high`` (each window of the mean
    holds the pixel in its min / max window), and both vary smoothly where the feature is
    speckled. Invalid pixels never pull the bounds: they count as 1 for the minimum and 0 for
    the maximum.

    Args:
        feature: ``(H, W)`` float32 brightness feature in [0, 1] (any monotonic stand-in for L).
        valid: ``(H, W)`` True where the data are valid.
        radius: Window radius in pixels; 0 returns the feature itself.

    Returns:
        ``(low, high)``, float32 ``(H, W)`` each; rows and columns beyond the array are
        reflected, as :func:`cv2.copyMakeBorder` with ``BORDER_REFLECT`` does.
    """
    feature = np.ascontiguousarray(feature, dtype=np.float32)
    if radius <= 0:
        return feature.copy(), feature.copy()
    valid = np.asarray(valid, dtype=bool)
    side = 2 * radius + 1
    kernel = np.ones((side, side), np.uint8)
    mean = np.full(side, 1.0 / side, np.float32)
    border = cv2.BORDER_REFLECT
    everywhere = bool(valid.all())
    low = feature if everywhere else np.where(valid, feature, np.float32(1.0))
    high = feature if everywhere else np.where(valid, feature, np.float32(0.0))
    low = cv2.erode(low, kernel, borderType=border)
    high = cv2.dilate(high, kernel, borderType=border)
    # A separable mean: the same result as a box filter, to float rounding, in 2/3 of the time.
    low = cv2.sepFilter2D(low, -1, mean, mean, borderType=border)
    high = cv2.sepFilter2D(high, -1, mean, mean, borderType=border)
    # Float rounding of the mean must not cross the pixel itself.
    np.minimum(low, feature, out=low)
    np.maximum(high, feature, out=high)
    return low, high
