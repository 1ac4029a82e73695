"""sRGB <-> CIE LAB (D65, 2 degree observer) in ``keras.ops``.

The network predicts the two chroma channels of CIE LAB (a: green-red, b: blue-yellow) scaled to
[-1, 1]; the lightness L (0-100) comes from the SAR. These functions run on numpy arrays and on
TensorFlow tensors alike, inside ``tf.function`` and ``tf.data`` graphs with dynamic shapes, on any
number of leading dimensions with the three colour channels last, in float32.

The constants (:mod:`sar_colorizer.color.constants`) are exactly those of
:func:`skimage.color.rgb2lab` / :func:`skimage.color.lab2rgb` (scikit-image's sRGB matrix, D65
white point, and its rounded CIE epsilon/kappa constants 0.008856 / 7.787 rather than the exact
216/24389 and 24389/3132), so both agree to float32 precision and colours can be checked against
scikit-image.

This module imports Keras at the top: it is TensorFlow-only code, never imported by
``sar_colorizer/__init__.py`` or at the top of a command module.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np

from sar_colorizer._tf import import_keras
from sar_colorizer.color.constants import (
    AB_SCALE,
    D65_WHITE,
    L_MAX,
    LAB_EPSILON,
    LAB_F_KNEE,
    LAB_OFFSET,
    LAB_SLOPE,
    RGB_FROM_XYZ,
    XYZ_FROM_RGB,
)
from sar_colorizer.errors import InputError

keras = import_keras()
ops = keras.ops

logger = logging.getLogger(__name__)

# AB_SCALE, D65_WHITE and L_MAX belong to sar_colorizer.color.constants; listed here as well
# because they describe this module's inputs and outputs.
__all__ = [
    "AB_SCALE",
    "D65_WHITE",
    "L_MAX",
    "lab_to_rgb",
    "rgb_to_lab",
]

# The transfer function of sRGB (IEC 61966-2-1).
_SRGB_ENCODED_KNEE = 0.04045
_SRGB_LINEAR_KNEE = 0.0031308

_INTEGER_RGB_MAX = {"uint8": 255.0, "uint16": 65535.0}


def _as_float32_colours(values: Any, what: str, scale_integers: bool) -> Any:
    """Convert numpy/list/tensor input to a float32 backend tensor with 3 channels last."""
    if not ops.is_tensor(values):
        values = np.asarray(values)
    dtype = keras.backend.standardize_dtype(values.dtype)
    shape = tuple(values.shape)
    if len(shape) == 0 or (shape[-1] is not None and shape[-1] != 3):
        raise InputError(
            f"{what} must have its 3 colour channels on the last axis; got shape {shape}"
        )
    if dtype == "bool" or (dtype.startswith(("int", "uint")) and dtype not in _INTEGER_RGB_MAX):
        raise InputError(f"{what} must be float (or uint8/uint16 sRGB); got dtype {dtype}")
    tensor = ops.cast(values, "float32")
    if scale_integers and dtype in _INTEGER_RGB_MAX:
        # As skimage's img_as_float: uint8 0..255 and uint16 0..65535 mean 0..1.
        tensor = tensor / _INTEGER_RGB_MAX[dtype]
    return tensor


def _mix(channels: tuple[Any, Any, Any], matrix: np.ndarray) -> tuple[Any, Any, Any]:
    """Apply a 3x3 colour matrix channel by channel (works for any rank and dynamic shapes)."""
    c0, c1, c2 = channels
    rows = tuple(
        float(matrix[i, 0]) * c0 + float(matrix[i, 1]) * c1 + float(matrix[i, 2]) * c2
        for i in range(3)
    )
    return rows[0], rows[1], rows[2]


def _srgb_to_linear(encoded: Any) -> Any:
    # The maximum keeps the power's argument positive in the branch `where` discards, so the
    # gradient stays finite for negative inputs.
    curve = ops.power((ops.maximum(encoded, _SRGB_ENCODED_KNEE) + 0.055) / 1.055, 2.4)
    return ops.where(encoded > _SRGB_ENCODED_KNEE, curve, encoded / 12.92)


def _linear_to_srgb(linear: Any) -> Any:
    # x ** (1 / 2.4) as exp(log(x) / 2.4): the same to float32 rounding, and a third less CPU in
    # predict's XLA-compiled colour conversion (a general power handles sign and special cases).
    power = ops.exp(ops.log(ops.maximum(linear, _SRGB_LINEAR_KNEE)) * (1.0 / 2.4))
    curve = 1.055 * power - 0.055
    return ops.where(linear > _SRGB_LINEAR_KNEE, curve, linear * 12.92)


def _lab_f(t: Any) -> Any:
    cube_root = ops.power(ops.maximum(t, LAB_EPSILON), 1.0 / 3.0)
    return ops.where(t > LAB_EPSILON, cube_root, LAB_SLOPE * t + LAB_OFFSET)


def _lab_f_inverse(t: Any) -> Any:
    return ops.where(t > LAB_F_KNEE, t * t * t, (t - LAB_OFFSET) / LAB_SLOPE)


def rgb_to_lab(rgb: Any) -> Any:
    """Convert sRGB to CIE LAB (D65), as :func:`skimage.color.rgb2lab`.

    Args:
        rgb: sRGB colours, shape ``(..., 3)`` (e.g. ``(H, W, 3)`` or ``(B, H, W, 3)``): float in
            [0, 1] (gamma-encoded display values, as read from an 8-bit RGB image divided by
            255), or uint8/uint16, which are scaled to [0, 1] as scikit-image does. A numpy
            array, a nested list or a backend tensor (also symbolic, inside ``tf.function``).

    Returns:
        Backend float32 tensor of the same shape: L in [0, 100], a and b roughly in
        [-110, 110] (see :data:`AB_SCALE`).

    Raises:
        InputError: if the last axis does not hold 3 channels or the dtype is not a colour type.
    """
    rgb = _as_float32_colours(rgb, "rgb", scale_integers=True)
    linear = tuple(_srgb_to_linear(rgb[..., i]) for i in range(3))
    x, y, z = _mix((linear[0], linear[1], linear[2]), XYZ_FROM_RGB)
    fx = _lab_f(x / D65_WHITE[0])
    fy = _lab_f(y / D65_WHITE[1])
    fz = _lab_f(z / D65_WHITE[2])
    lightness = 116.0 * fy - 16.0
    a = 500.0 * (fx - fy)
    b = 200.0 * (fy - fz)
    return ops.stack([lightness, a, b], axis=-1)


def lab_to_rgb(lab: Any) -> Any:
    """Convert CIE LAB (D65) to sRGB clipped to [0, 1], as :func:`skimage.color.lab2rgb`.

    LAB colours outside the sRGB gamut (e.g. a saturated AB prediction on a very dark or very
    bright L) are clipped per channel, as scikit-image does: negative Z is set to 0 before the
    inverse transfer function and the resulting sRGB to [0, 1].

    Args:
        lab: CIE LAB colours, shape ``(..., 3)``: L in [0, 100], a and b in CIELAB units
            (multiply a normalised network output by :data:`AB_SCALE` first). Numpy array,
            list or backend tensor.

    Returns:
        Backend float32 tensor of the same shape, gamma-encoded sRGB in [0, 1] (multiply by 255
        and round for an 8-bit image).

    Raises:
        InputError: if the last axis does not hold 3 channels.
    """
    lab = _as_float32_colours(lab, "lab", scale_integers=False)
    fy = (lab[..., 0] + 16.0) / 116.0
    fx = lab[..., 1] / 500.0 + fy
    fz = ops.maximum(fy - lab[..., 2] / 200.0, 0.0)
    x = _lab_f_inverse(fx) * D65_WHITE[0]
    y = _lab_f_inverse(fy) * D65_WHITE[1]
    z = _lab_f_inverse(fz) * D65_WHITE[2]
    red, green, blue = _mix((x, y, z), RGB_FROM_XYZ)
    rgb = ops.stack([_linear_to_srgb(red), _linear_to_srgb(green), _linear_to_srgb(blue)], axis=-1)
    return ops.clip(rgb, 0.0, 1.0)
