"""The colour conversion of predict in numpy and OpenCV: display intensity + normalised AB ->
LAB and sRGB uint8, per pixel, without TensorFlow.

The same chain as the definitions it follows (:func:`~sar_colorizer.sar.radiometry.
relative_to_feature`, the tone table of :mod:`sar_colorizer.inference.tone`,
:func:`~sar_colorizer.color.gamut.limit_chroma_numpy`, :func:`~sar_colorizer.color.lab.
lab_to_rgb`), computed in float32 over blocks of :data:`BLOCK` pixels that stay in the CPU's
cache, with in-place operations, and the LAB -> sRGB step done by OpenCV's vectorised
:func:`cv2.cvtColor` (the same D65 sRGB formulas; within 0.001 of scikit-image's in [0, 1]).
"""

from __future__ import annotations

import math

import cv2
import numpy as np

from sar_colorizer.color.constants import AB_SCALE
from sar_colorizer.color.gamut import ANGLE_PER_UNIT, ANGLE_STEPS, L_PER_UNIT, L_STEPS
from sar_colorizer.sar.radiometry import FEATURE_DB_MIN, INTENSITY_FLOOR

__all__ = ["BLOCK", "LANES", "convert_pixels", "lab_to_srgb"]

#: Pixels per block: the float32 temporaries of a block (a few dozen) fit in a core's L2 cache.
BLOCK = 1 << 14
#: OpenCV's colour conversion is padded to a multiple of this many pixels (a multiple of any
#: SIMD width it uses), so that it runs its vector code on every pixel.
LANES = 64

_DB_PER_NEPER = 10.0 / math.log(10.0)


def convert_pixels(
    relative: np.ndarray,
    ab_norm: np.ndarray,
    valid: np.ndarray,
    lut: np.ndarray,
    bounds: tuple[np.ndarray, ...] = (),
    table: np.ndarray | None = None,
    with_lab: bool = True,
) -> tuple[np.ndarray | None, np.ndarray]:
    """``(N,)`` relative intensity, ``(N, 2)`` normalised AB, ``(N,)`` mask, the tone table and
    the L envelope's ``(N,)`` feature bounds -> ``(lab (N, 3) float32 or None, rgb (N, 3)
    uint8)``. Only valid pixels are converted.

    ``table``: the gamut's :func:`~sar_colorizer.color.gamut.max_chroma_table` to cap chroma
    with (at each pixel's L and at the L of each bound); None: channels clipped instead. LAB is
    the predicted colour (before the cap); RGB the colour shown; both 0 outside ``valid``.
    """
    n = relative.shape[0]
    rgb = np.zeros((n, 3), dtype=np.uint8)
    lab = np.zeros((n, 3), dtype=np.float32) if with_lab else None
    valid = np.asarray(valid, dtype=bool)
    count = int(np.count_nonzero(valid))
    if count == 0:
        return lab, rgb
    if count < 0.9 * n:
        # Only the valid pixels are converted (nodata stays 0): gathering them costs a few
        # passes over the mask, against dozens of operations per converted pixel.
        where = np.flatnonzero(valid)
        lab_valid, rgb_valid = _convert_all(
            relative[where], ab_norm[where], lut, tuple(b[where] for b in bounds), table,
            with_lab,
        )
        rgb[where] = rgb_valid
        if lab is not None and lab_valid is not None:
            lab[where] = lab_valid
        return lab, rgb
    lab_all, rgb = _convert_all(relative, ab_norm, lut, bounds, table, with_lab)
    invalid = ~valid
    rgb[invalid] = 0
    if lab_all is not None:
        lab_all[invalid] = 0.0
    return lab_all, rgb


def _convert_all(
    relative: np.ndarray,
    ab_norm: np.ndarray,
    lut: np.ndarray,
    bounds: tuple[np.ndarray, ...],
    table: np.ndarray | None,
    with_lab: bool,
) -> tuple[np.ndarray | None, np.ndarray]:
    """:func:`convert_pixels` of every pixel given, block by block."""
    n = relative.shape[0]
    rgb = np.empty((n, 3), dtype=np.uint8)
    lab = np.empty((n, 3), dtype=np.float32) if with_lab else None
    lut = np.ascontiguousarray(lut, dtype=np.float32)
    steps = np.float32(lut.shape[0] - 1)
    flat_table = None if table is None else np.ascontiguousarray(table, np.float32).reshape(-1)
    for start in range(0, n, BLOCK):
        stop = min(n, start + BLOCK)
        block = slice(start, stop)
        lightness = _lightness(relative[block], lut, steps)
        ab = ab_norm[block] * np.float32(AB_SCALE)
        if lab is not None:
            lab[block, 0] = lightness
            lab[block, 1:] = ab
        if flat_table is not None:
            rows = [_table_row(lightness)]
            for bound in bounds:
                index = bound[block] * steps
                index += np.float32(0.5)
                rows.append(_table_row(lut[index.astype(np.int32)]))
            ab = _limit_chroma(ab, rows, flat_table)
        shown = np.empty((stop - start, 3), dtype=np.float32)
        shown[:, 0] = lightness
        shown[:, 1:] = ab
        if flat_table is None:
            # As scikit-image (and lab.lab_to_rgb): Z below 0 is taken as 0, i.e. b* at most
            # 200 * fy (in gamut after the chroma cap).
            limit = lightness + np.float32(16.0)
            limit *= np.float32(200.0 / 116.0)
            np.minimum(shown[:, 2], limit, out=shown[:, 2])
        colour = lab_to_srgb(shown)
        colour *= np.float32(255.0)
        colour += np.float32(0.5)
        np.clip(colour, 0.0, 255.0, out=colour)
        rgb[block] = colour  # truncation after +0.5: round half up
    return lab, rgb


def lab_to_srgb(lab: np.ndarray) -> np.ndarray:
    """``(N, 3)`` float32 CIELAB -> ``(N, 3)`` float32 sRGB (D65; about [0, 1], not clipped)
    by OpenCV.

    The pixels go to OpenCV as one image row, which it converts with vector instructions (a
    column of 1-px rows would run its scalar code, 5x slower, for the same values to 1e-5),
    padded to a multiple of :data:`LANES` pixels so that none falls in the scalar remainder:
    a pixel's colour is the same bits whichever pixels are converted with it.
    """
    count = lab.shape[0]
    row = np.zeros((1, -(-count // LANES) * LANES, 3), dtype=np.float32)
    row[0, :count] = lab
    converted: np.ndarray = np.asarray(cv2.cvtColor(row, cv2.COLOR_Lab2RGB), np.float32)
    return converted[0, :count]


def _lightness(relative: np.ndarray, lut: np.ndarray, steps: np.float32) -> np.ndarray:
    """L of the tone table at the dB feature of ``relative``, linearly interpolated."""
    feature = np.maximum(relative, np.float32(INTENSITY_FLOOR))
    np.log(feature, out=feature)
    feature *= np.float32(_DB_PER_NEPER / -FEATURE_DB_MIN)
    feature += np.float32(1.0)  # (db - db_min) / -db_min
    np.clip(feature, 0.0, 1.0, out=feature)
    feature *= steps
    index = feature.astype(np.int32)
    np.minimum(index, lut.shape[0] - 2, out=index)
    feature -= index  # the fraction
    low = lut[index]
    high = lut[index + 1]
    high -= low
    high *= feature
    high += low
    return high


def _table_row(lightness: np.ndarray) -> np.ndarray:
    """Row offsets into the flat gamut table of lightnesses."""
    row = np.clip(lightness, 0.0, 100.0) * np.float32(L_PER_UNIT)
    index = row.astype(np.int32)
    np.minimum(index, L_STEPS - 1, out=index)
    index *= ANGLE_STEPS
    return index


def _limit_chroma(ab: np.ndarray, rows: list[np.ndarray], table: np.ndarray) -> np.ndarray:
    """a*, b* with the chroma capped at the smallest of the table's caps at ``rows``, hue kept
    (:func:`~sar_colorizer.color.gamut.limit_chroma_numpy`)."""
    a, b = np.ascontiguousarray(ab[:, 0]), np.ascontiguousarray(ab[:, 1])
    abs_a, abs_b = np.abs(a), np.abs(b)
    # The diamond angle (color.gamut.diamond_angle): quadrant 0, 1, 2, 3 at +a, +b, -a, -b,
    # plus |b| / (|a| + |b|) in quadrants 0 and 2, |a| / (|a| + |b|) in 1 and 3.
    negative_a, negative_b = a < 0, b < 0
    odd = negative_a ^ negative_b
    total = abs_a + abs_b
    total += np.float32(1e-12)
    angle = np.where(odd, abs_a, abs_b)
    angle /= total
    angle += odd
    angle += np.where(negative_b, np.float32(2.0), np.float32(0.0))
    angle *= np.float32(ANGLE_PER_UNIT)
    column = angle.astype(np.int32)
    np.minimum(column, ANGLE_STEPS - 1, out=column)
    cap = None
    for row in rows:
        row += column
        found = table[row]
        cap = found if cap is None else np.minimum(cap, found, out=cap)
    assert cap is not None
    np.multiply(a, a, out=abs_a)
    np.multiply(b, b, out=abs_b)
    abs_a += abs_b
    chroma = np.sqrt(abs_a, out=abs_a)
    np.maximum(chroma, np.float32(1e-6), out=chroma)
    np.divide(cap, chroma, out=cap)
    np.minimum(cap, np.float32(1.0), out=cap)
    ab *= cap[:, None]
    return ab
