"""SAR radiometry: linear power, decibels and amplitude; input-scale detection; normalisation of
backscatter to the relative intensity the network sees, and its dB feature.

Sentinel-1 GRD products come in three radiometric scales:

* **linear power** (intensity, sigma0 / gamma0 as a ratio): non-negative, typically 0.001-1 for
  natural targets, heavy-tailed (bright urban corners reach 10-100). Speckle is multiplicative
  and gamma distributed in this scale, so every filter and every statistic works here.
* **decibels** (dB): ``10 * log10(linear)``; distributed products and most ML data sets
  (BigEarthNet) store sigma0 in dB, typically -25 dB (water, VH) to +5 dB (urban, VV).
* **amplitude**: ``sqrt(linear)`` (GRD digital numbers are amplitudes before calibration).

A fourth kind of input is the **display** image: 8/16-bit integers such as the s1s2-la-texas
PNGs, which hold linear intensity stretched so that its 99th percentile is 255. Taken as linear
intensity and renormalised by its own 99th percentile it gives back the training convention.

The canonical model input is the *relative intensity*
``relative = clip(linear / reference, 0, 1)`` where ``reference`` is the 99th percentile of the
valid linear pixels (:class:`Normalization`), which reproduces the training PNGs for any input.
:func:`raw_to_relative` is that chain (raw values -> linear power -> relative intensity), used
alike by ``sarcolor preprocess`` for training chips and by inference. The network itself takes
the logarithm: :func:`relative_to_feature` (numpy) and its in-graph twin
:func:`sar_colorizer.sar.radiometry_tf.relative_to_feature_tf` map relative intensity to the dB
feature in [0, 1].
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from sar_colorizer.errors import InputError
from sar_colorizer.settings import check_known_keys

logger = logging.getLogger(__name__)

INPUT_SCALES: tuple[str, ...] = ("linear", "db", "amplitude", "display")
"""Radiometric scales an input raster may be in; functions taking a scale also accept "auto"."""

NORMALIZATION_METHODS: tuple[str, ...] = ("percentile", "db_range")
"""``percentile``: per-image stretch at a percentile; ``db_range``: fixed absolute dB window."""

FEATURE_DB_MIN = -25.0
"""Relative intensities at or below this many dB (below the reference) map to feature 0."""

INTENSITY_FLOOR = 1e-10
"""Smallest linear intensity taken before a logarithm (-100 dB): zero and the slightly negative
values that thermal-noise removal leaves become -100 dB instead of -inf or NaN."""

# dB data spans roughly -40..+10, linear power noise (after thermal noise removal) dips only a
# little below zero: a valid value below this can only be in dB.
_DB_NEGATIVE_LIMIT = -1.0
# Linear power above this median is unusual (it suggests amplitude or digital numbers).
_LINEAR_MEDIAN_WARN = 10.0
# Most-likely-dB when the median lies below zero; "around -15" covers VV and VH land and water.
_DB_MEDIAN_MAX = 0.0
# Sentinel-1 GRD digital numbers (uint16 amplitudes, sqrt(sigma0) * A_sigma with A_sigma of a
# few hundred) sit around 50-500 with a 99th percentile of a few thousand, beyond 8 bits but
# far below the top of 16 bits, where a display stretch of 16 bits would put it.
_DN_MIN_MAX = 255
_DN_MAX_P99 = 16384


def _as_float(values: npt.ArrayLike) -> np.ndarray:
    """Float array view of ``values``: float32/float64 kept, anything else as float32."""
    array = np.asarray(values)
    if array.dtype.kind == "f":
        return array
    return array.astype(np.float32)


def linear_to_db(linear: npt.ArrayLike, floor: float = INTENSITY_FLOOR) -> np.ndarray:
    """Convert linear power (intensity) to decibels, ``10 * log10(max(linear, floor))``.

    Args:
        linear: Linear power values; NaN stays NaN.
        floor: Smallest linear value taken (zero and negative noise map to ``10*log10(floor)``,
            -100 dB by default, instead of -inf).

    Returns:
        Backscatter in dB, floating point (float32 unless the input was float64).
    """
    array = _as_float(linear)
    with np.errstate(invalid="ignore"):
        return (10.0 * np.log10(np.maximum(array, array.dtype.type(floor)))).astype(
            array.dtype, copy=False
        )


def db_to_linear(db: npt.ArrayLike) -> np.ndarray:
    """Convert decibels to linear power, ``10 ** (db / 10)``; NaN stays NaN."""
    array = _as_float(db)
    # exp(db * ln(10) / 10): the same to a float32 ulp and ~2.5x faster than np.power.
    linear = np.multiply(array, array.dtype.type(math.log(10.0) / 10.0))
    return np.exp(linear, out=linear)


def amplitude_to_linear(amplitude: npt.ArrayLike) -> np.ndarray:
    """Convert amplitude to linear power (intensity), ``amplitude ** 2``; NaN stays NaN."""
    array = _as_float(amplitude)
    return np.square(array)


def linear_to_amplitude(linear: npt.ArrayLike) -> np.ndarray:
    """Convert linear power to amplitude, ``sqrt(max(linear, 0))``; NaN stays NaN."""
    array = _as_float(linear)
    with np.errstate(invalid="ignore"):
        return np.sqrt(np.maximum(array, array.dtype.type(0.0)))


def _check_scale(scale: str, allow_auto: bool = True) -> str:
    name = str(scale).strip().lower()
    valid = (*INPUT_SCALES, "auto") if allow_auto else INPUT_SCALES
    if name not in valid:
        raise InputError(f"unknown input scale {scale!r}; choose one of: {', '.join(valid)}")
    return name


def _broadcast_valid(values: np.ndarray, valid: npt.ArrayLike | None) -> np.ndarray | None:
    """Return ``valid`` broadcast to ``values``' shape ((H,W) mask against (C,H,W) values)."""
    if valid is None:
        return None
    mask = np.asarray(valid, dtype=bool)
    if mask.shape != values.shape and (mask.ndim != 2 or mask.shape != values.shape[-2:]):
        raise InputError(
            f"valid mask of shape {mask.shape} does not match values of shape {values.shape}; "
            "pass an (H, W) mask for (H, W) or (C, H, W) values"
        )
    return np.broadcast_to(mask, values.shape)


def detect_input_scale(values: npt.ArrayLike, valid: npt.ArrayLike | None = None) -> str:
    """Guess the radiometric scale of a SAR raster from its dtype and value range.

    Rules, applied to the valid, finite pixels only:

    * integer dtypes (uint8/uint16 and other integers) -> ``"display"``: stretched images such
      as the s1s2-la-texas PNGs (calibrated backscatter is never stored as integers); 16-bit
      values that look like GRD digital numbers (:func:`looks_like_digital_numbers`) are
      taken so too, with a warning that names ``--input-scale amplitude``;
    * float with a negative median (dB sigma0 sits around -15 dB), or with any value below -1
      (linear power can only dip slightly below zero through thermal-noise removal) -> ``"db"``;
    * any other float (non-negative, [0, 1]-ish) -> ``"linear"``.

    Amplitude is never detected: it looks like linear power, so pass ``"amplitude"`` explicitly.

    Args:
        values: Raster values, (H, W) or (C, H, W).
        valid: Optional (H, W) mask, True where the pixel holds data; nodata pixels are ignored.

    Returns:
        One of :data:`INPUT_SCALES`.

    Raises:
        InputError: For boolean or complex data, or when no valid pixel is left to look at.
    """
    array = np.asarray(values)
    kind = array.dtype.kind
    if kind in "iu":
        if looks_like_digital_numbers(array, valid):
            logger.warning(
                "%s values look like Sentinel-1 GRD digital numbers (uncalibrated amplitudes, "
                "99th percentile %.0f) but are taken as a display image; pass --input-scale "
                "amplitude (input_scale='amplitude') if they are, give the product itself "
                "(.SAFE or .zip) for calibrated backscatter, or --input-scale display to "
                "confirm the choice",
                array.dtype, _percentile_99(array, valid),
            )
        return "display"
    if kind != "f":
        raise InputError(
            f"cannot interpret {array.dtype} values as SAR backscatter; "
            "pass real-valued linear power, dB, amplitude or an integer display image"
        )
    mask = np.isfinite(array)
    broadcast = _broadcast_valid(array, valid)
    if broadcast is not None:
        mask &= broadcast
    data = array[mask]
    if data.size == 0:
        raise InputError(
            "no valid pixels to detect the input scale from; pass the input scale explicitly"
        )
    median = float(np.median(data))
    if median < _DB_MEDIAN_MAX or float(data.min()) < _DB_NEGATIVE_LIMIT:
        scale = "db"
    else:
        scale = "linear"
        if median > _LINEAR_MEDIAN_WARN:
            logger.warning(
                "float input with median %.3g read as linear power; if these are amplitudes "
                "or digital numbers, pass the input scale explicitly",
                median,
            )
    logger.debug("detected input scale %r (median %.4g)", scale, median)
    return scale


def _percentile_99(array: np.ndarray, valid: npt.ArrayLike | None) -> float:
    mask = array != 0
    broadcast = _broadcast_valid(array, valid)
    if broadcast is not None:
        mask &= broadcast
    data = array[mask]
    return float(np.percentile(data, 99)) if data.size else 0.0


def looks_like_digital_numbers(values: npt.ArrayLike, valid: npt.ArrayLike | None = None) -> bool:
    """Whether integer values look like Sentinel-1 GRD digital numbers rather than a display
    image: 16-bit, using more than 8 bits (a value above 255) yet with a 99th percentile far
    below the top of the 16-bit range (a display stretch puts it near 65535). Zeros (the
    border-noise fill) and invalid pixels are left out.

    Args:
        values: Raster values, (H, W) or (C, H, W).
        valid: Optional (H, W) mask, True where the pixel holds data.
    """
    array = np.asarray(values)
    if array.dtype.kind not in "iu" or array.dtype.itemsize < 2 or array.size == 0:
        return False
    broadcast = _broadcast_valid(array, valid)
    top = array[broadcast].max(initial=0) if broadcast is not None else array.max()
    if not top > _DN_MIN_MAX:
        return False
    return 0.0 < _percentile_99(array, valid) < _DN_MAX_P99


def to_linear_power(
    values: npt.ArrayLike, scale: str = "auto", valid: npt.ArrayLike | None = None
) -> np.ndarray:
    """Convert a raster in any supported scale to linear power, NaN at nodata.

    Args:
        values: Raster values, (H, W) or (C, H, W), in the given scale.
        scale: One of :data:`INPUT_SCALES` or ``"auto"`` (:func:`detect_input_scale`).
            ``"display"`` takes the value itself as (stretched) linear intensity, as in the
            training PNGs; its absolute level is removed later by :class:`Normalization`.
        valid: Optional (H, W) mask, True where the pixel holds data.

    Returns:
        float32 linear power, same shape as ``values``, NaN where not valid or not finite.

    Raises:
        InputError: For an unknown scale name or a mask of the wrong shape.
    """
    name = _check_scale(scale)
    array = np.asarray(values)
    broadcast = _broadcast_valid(array, valid)
    if name == "auto":
        has_valid = True
        if array.dtype.kind == "f":
            finite = np.isfinite(array)
            has_valid = bool((finite & broadcast).any() if broadcast is not None else finite.any())
        elif broadcast is not None:
            has_valid = bool(broadcast.any())
        # An all-nodata raster (or tile) has no scale to detect and converts to all NaN.
        name = detect_input_scale(array, valid) if has_valid else "linear"
    if name == "linear" or name == "display":
        linear = np.array(array, dtype=np.float32)  # a copy: NaN is written into it below
    elif name == "db":
        linear = db_to_linear(np.asarray(array, dtype=np.float32))
    else:
        linear = amplitude_to_linear(np.asarray(array, dtype=np.float32))
    valid_now = np.isfinite(linear)
    if broadcast is not None:
        valid_now &= broadcast
    if not valid_now.all():
        linear[~valid_now] = np.nan
    return linear


def _finite_values(linear: npt.ArrayLike, valid: npt.ArrayLike | None) -> np.ndarray:
    array = np.asarray(linear, dtype=np.float32)
    mask = np.isfinite(array)
    broadcast = _broadcast_valid(array, valid)
    if broadcast is not None:
        mask &= broadcast
    return array[mask]


@dataclass(frozen=True)
class Normalization:
    """How linear power becomes the relative intensity in [0, 1] that the network sees.

    ``relative = clip(linear / reference, 0, 1)``, where the reference is

    * ``method="percentile"`` (default): the ``percentile``-th percentile of the image's valid
      linear pixels, per image, which reproduces the s1s2-la-texas training PNGs (stretched at
      their 99th percentile) for any calibrated input;
    * ``method="db_range"``: the fixed absolute level ``10 ** (db_max / 10)``, the same for
      every image, for calibrated inputs when per-image stretching is not wanted; values below
      ``db_min`` are set to 0.

    Stored in the model bundle (``to_dict``/``from_dict``) so inference uses the convention the
    model was trained with.

    Attributes:
        method: One of :data:`NORMALIZATION_METHODS`.
        percentile: Percentile (0, 100] of valid pixels used as the reference.
        db_min: Lower end of the absolute dB window (``db_range`` only).
        db_max: Upper end of the absolute dB window (``db_range`` only).
    """

    method: str = "percentile"
    percentile: float = 99.0
    db_min: float = -25.0
    db_max: float = 5.0

    def __post_init__(self) -> None:
        method = str(self.method).strip().lower()
        if method not in NORMALIZATION_METHODS:
            raise InputError(
                f"unknown normalization method {self.method!r}; "
                f"choose one of: {', '.join(NORMALIZATION_METHODS)}"
            )
        object.__setattr__(self, "method", method)
        for name in ("percentile", "db_min", "db_max"):
            value = getattr(self, name)
            if (
                isinstance(value, bool)
                or not isinstance(value, int | float)
                or not np.isfinite(value)
            ):
                raise InputError(f"normalization {name} must be a finite number, got {value!r}")
            object.__setattr__(self, name, float(value))
        if not 0.0 < self.percentile <= 100.0:
            raise InputError(
                f"normalization percentile must lie in (0, 100], got {self.percentile}"
            )
        if self.db_min >= self.db_max:
            raise InputError(
                f"normalization db_min ({self.db_min}) must be below db_max ({self.db_max})"
            )

    def reference(self, linear: npt.ArrayLike, valid: npt.ArrayLike | None = None) -> float:
        """The linear power that maps to relative intensity 1.

        Args:
            linear: Linear power, (H, W) or (C, H, W), NaN at nodata (a (C, H, W) stack gives
                one reference over all its bands; call per band for per-band references).
            valid: Optional (H, W) mask; pixels outside it never enter the statistic.

        Returns:
            The reference (> 0).

        Raises:
            InputError: With ``percentile`` when no valid pixel exists or the percentile is not
                positive (e.g. a mostly zero image whose zero fill was not marked as nodata).
        """
        if self.method == "db_range":
            return float(10.0 ** (self.db_max / 10.0))
        data = _finite_values(linear, valid)
        if data.size == 0:
            raise InputError(
                "no valid pixels to normalise; check the nodata value and the input scale"
            )
        reference = float(np.percentile(data, self.percentile))
        if not reference > 0.0:
            raise InputError(
                f"the {self.percentile:g}th percentile of the valid pixels is {reference:g}, "
                "not positive; give the raster a nodata value for its fill (e.g. "
                "gdal_edit.py -a_nodata 0 FILE) or check --input-scale"
            )
        return reference

    def apply(self, linear: npt.ArrayLike, reference: float | None = None) -> np.ndarray:
        """Map linear power to relative intensity ``clip(linear / reference, 0, 1)``.

        Args:
            linear: Linear power, any shape; NaN (nodata) stays NaN.
            reference: From :meth:`reference` (e.g. computed once for a whole scene and reused
                for its tiles); computed from ``linear`` itself when ``None``.

        Returns:
            float32 relative intensity in [0, 1], NaN where ``linear`` is NaN.
        """
        array = np.asarray(linear, dtype=np.float32)
        if reference is None:
            reference = self.reference(array)
        if not reference > 0.0:
            raise InputError(f"normalization reference must be positive, got {reference!r}")
        relative = np.divide(array, np.float32(reference))
        np.clip(relative, 0.0, 1.0, out=relative)
        if self.method == "db_range":
            floor = np.float32(10.0 ** (self.db_min / 10.0))
            relative = np.where(array < floor, np.float32(0.0), relative)
        return relative.astype(np.float32, copy=False)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict of the constructor arguments (stored in ``bundle.json``)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Normalization:
        """Rebuild from :meth:`to_dict` output; missing keys take their defaults.

        Raises:
            InputError: For unknown keys or invalid values.
        """
        check_known_keys(cls, data, "normalization settings")
        return cls(**data)


def raw_to_relative(
    values: npt.ArrayLike,
    normalization: Normalization,
    scale: str = "auto",
    valid: npt.ArrayLike | None = None,
    references: Sequence[float] | None = None,
) -> tuple[np.ndarray, tuple[float, ...]]:
    """Raw SAR values -> relative intensity per band, before any speckle filter.

    ``relative = normalization.apply(to_linear_power(values), reference)`` band by band: the
    one definition of the network's input that training chips and inference share.

    Args:
        values: ``(C, H, W)`` raw values in ``scale``.
        normalization: How linear power becomes relative intensity.
        scale: One of :data:`INPUT_SCALES` or ``"auto"`` (:func:`detect_input_scale`).
        valid: Optional ``(H, W)`` mask, True where the pixel holds data.
        references: Per band, the linear power that maps to relative intensity 1; None computes
            them from these values (:meth:`Normalization.reference` over the valid pixels of
            each band). Pass a scene's references when ``values`` is only a part of it.

    Returns:
        ``(relative, references)``: ``(C, H, W)`` float32 relative intensity in [0, 1], NaN
        where not valid or not finite, and the references used.

    Raises:
        InputError: Values not ``(C, H, W)``, a reference count that is not the band count, an
            unknown scale, or (references computed) a band with no valid, positive pixels.
    """
    linear = to_linear_power(values, scale, valid)  # a new float32 array, NaN at nodata
    if linear.ndim != 3:
        raise InputError(f"SAR values must be (bands, height, width); got shape {linear.shape}")
    if references is None:
        references = [normalization.reference(band) for band in linear]
    used = tuple(float(reference) for reference in references)
    if len(used) != linear.shape[0]:
        raise InputError(f"{len(used)} references given for {linear.shape[0]} bands")
    for band, reference in enumerate(used):
        linear[band] = normalization.apply(linear[band], reference)
    return linear, used


def relative_to_feature(relative: npt.ArrayLike) -> np.ndarray:
    """Log feature of the relative intensity, the form in which backscatter is close to linear
    in land-cover properties: ``clip((10*log10(max(rel, INTENSITY_FLOOR)) - FEATURE_DB_MIN) /
    -FEATURE_DB_MIN, 0, 1)``, i.e. -25 dB below the reference -> 0, the reference -> 1.

    Args:
        relative: Relative intensity in [0, 1]; NaN stays NaN.

    Returns:
        float32 feature in [0, 1].
    """
    array = np.asarray(relative, dtype=np.float32)
    with np.errstate(invalid="ignore"):
        db = 10.0 * np.log10(np.maximum(array, np.float32(INTENSITY_FLOOR)))
    feature = (db - np.float32(FEATURE_DB_MIN)) / np.float32(-FEATURE_DB_MIN)
    return np.clip(feature, 0.0, 1.0).astype(np.float32, copy=False)
