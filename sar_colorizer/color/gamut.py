"""Gamut-aware chroma limit in LCh: keep lightness and hue, reduce chroma to what sRGB can show.

The network predicts a and b without knowing the lightness that the SAR will give the pixel.
Near black (water, radar shadow) and near white, sRGB can only show small chroma; a fixed a*b*
there lies outside the gamut, and clipping each RGB channel to [0, 1] then turns it into a
saturated colour of another hue (a slightly greenish-blue a*b* on a dark pond becomes bright
teal or red). Here each pixel's chroma ``C = hypot(a, b)`` is instead capped at the largest
chroma sRGB can show at its lightness L and hue ``h = atan2(b, a)``: the colour moves in a
straight line toward the grey of the same L, which is inside the gamut, so its hue is kept and
dark or bright pixels fade to grey (toward black and white) rather than flip.

The cap comes from a table of the gamut boundary (:func:`max_chroma_table`, L in steps of 0.5,
hue in steps of 1 degree, found by bisection on the exact LAB -> linear RGB conversion of
:mod:`sar_colorizer.color.lab`) read with bilinear interpolation: a few operations per pixel
inside the XLA-compiled colour conversion. Where interpolation overshoots the boundary slightly
(next to the hue cusps of the gamut), the final channel clip moves the colour by a fraction of
a CIELAB unit.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import numpy as np

__all__ = ["HUE_STEPS", "L_STEPS", "limit_chroma", "limit_chroma_numpy", "max_chroma_table"]

#: Table samples: lightness 0, 0.5, ..., 100 and hue 0, 1, ..., 360 degrees.
L_STEPS = 201
HUE_STEPS = 361

# Constants of sar_colorizer.color.lab (scikit-image's), repeated here in float64 so that the
# table is built without Keras; tests/color/test_gamut.py checks them against that module.
_WHITE = np.array([0.95047, 1.0, 1.08883])
_RGB_FROM_XYZ = np.linalg.inv(
    np.array(
        [
            [0.412453, 0.357580, 0.180423],
            [0.212671, 0.715160, 0.072169],
            [0.019334, 0.119193, 0.950227],
        ]
    )
)
_LAB_F_KNEE = 0.2068966
_LAB_SLOPE = 7.787
_LAB_OFFSET = 16.0 / 116.0


def lab_to_linear_rgb(lab: np.ndarray) -> np.ndarray:
    """``(..., 3)`` CIE LAB -> linear sRGB (not clipped), float64; in gamut iff in [0, 1]."""
    lab = np.asarray(lab, dtype=np.float64)
    fy = (lab[..., 0] + 16.0) / 116.0
    f = np.stack([fy + lab[..., 1] / 500.0, fy, fy - lab[..., 2] / 200.0], axis=-1)
    xyz = np.where(f > _LAB_F_KNEE, f**3, (f - _LAB_OFFSET) / _LAB_SLOPE) * _WHITE
    return xyz @ _RGB_FROM_XYZ.T


@lru_cache(maxsize=1)
def max_chroma_table() -> np.ndarray:
    """``(L_STEPS, HUE_STEPS)`` float32: the largest chroma sRGB shows at each (L, hue).

    Bisection (40 steps) on ``C`` of ``LAB = (L, C cos h, C sin h)`` for the boundary of the
    linear RGB cube; 0 at L = 0 and L = 100. Built once per process (a few tens of ms).
    """
    lightness = np.linspace(0.0, 100.0, L_STEPS)[:, None]
    hue = np.deg2rad(np.linspace(0.0, 360.0, HUE_STEPS))[None, :]
    low = np.zeros((L_STEPS, HUE_STEPS))
    high = np.full((L_STEPS, HUE_STEPS), 200.0)
    cos, sin = np.cos(hue), np.sin(hue)
    for _ in range(40):
        middle = 0.5 * (low + high)
        lab = np.stack(np.broadcast_arrays(lightness, middle * cos, middle * sin), axis=-1)
        rgb = lab_to_linear_rgb(lab)
        inside = np.all((rgb >= 0.0) & (rgb <= 1.0), axis=-1)
        low = np.where(inside, middle, low)
        high = np.where(inside, high, middle)
    table = low.astype(np.float32)
    table.setflags(write=False)
    return table


def _table_position(lightness: Any, hue_degrees: Any) -> tuple[Any, Any]:
    return lightness * ((L_STEPS - 1) / 100.0), hue_degrees * ((HUE_STEPS - 1) / 360.0)


def limit_chroma_numpy(lab: np.ndarray) -> np.ndarray:
    """numpy twin of :func:`limit_chroma`: ``(..., 3)`` LAB with chroma capped, float32."""
    lab = np.asarray(lab, dtype=np.float32)
    table = max_chroma_table()
    lightness = np.clip(lab[..., 0], 0.0, 100.0)
    a, b = lab[..., 1], lab[..., 2]
    chroma = np.hypot(a, b)
    hue = np.mod(np.rad2deg(np.arctan2(b, a)), 360.0)
    y, x = _table_position(lightness, hue)
    y0 = np.minimum(y.astype(np.int32), L_STEPS - 2)
    x0 = np.minimum(x.astype(np.int32), HUE_STEPS - 2)
    fy, fx = y - y0, x - x0
    cap = (
        table[y0, x0] * (1 - fy) * (1 - fx)
        + table[y0, x0 + 1] * (1 - fy) * fx
        + table[y0 + 1, x0] * fy * (1 - fx)
        + table[y0 + 1, x0 + 1] * fy * fx
    )
    scale = np.minimum(1.0, cap / np.maximum(chroma, 1e-6))
    out = lab.copy()
    out[..., 1] = a * scale
    out[..., 2] = b * scale
    return out


def limit_chroma(lightness: Any, ab: Any, table: Any) -> Any:
    """In-graph chroma cap for the colour conversion (TensorFlow ops).

    Args:
        lightness: ``(N,)`` float32 L in [0, 100].
        ab: ``(N, 2)`` float32 a, b in CIELAB units.
        table: :func:`max_chroma_table` as a ``(L_STEPS, HUE_STEPS)`` float32 tensor.

    Returns:
        ``(N, 2)`` a, b with the same hue and chroma at most the gamut's at (L, hue).
    """
    from sar_colorizer._tf import import_tensorflow

    tf = import_tensorflow()
    a, b = ab[:, 0], ab[:, 1]
    chroma = tf.sqrt(a * a + b * b)
    hue = tf.math.floormod(tf.math.atan2(b, a) * (180.0 / np.pi), 360.0)
    y, x = _table_position(tf.clip_by_value(lightness, 0.0, 100.0), hue)
    y0 = tf.minimum(tf.cast(y, tf.int32), L_STEPS - 2)
    x0 = tf.minimum(tf.cast(x, tf.int32), HUE_STEPS - 2)
    fy = y - tf.cast(y0, tf.float32)
    fx = x - tf.cast(x0, tf.float32)
    flat = tf.reshape(table, [-1])
    base = y0 * HUE_STEPS + x0

    def at(offset: int) -> Any:
        return tf.gather(flat, base + offset)

    cap = (at(0) * (1.0 - fx) + at(1) * fx) * (1.0 - fy) + (
        at(HUE_STEPS) * (1.0 - fx) + at(HUE_STEPS + 1) * fx
    ) * fy
    scale = tf.minimum(1.0, cap / tf.maximum(chroma, 1e-6))
    return ab * scale[:, None]
