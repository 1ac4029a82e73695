"""Colorize SAR images with a trained model bundle: in memory, or streamed over whole scenes.

The data flow, identical for both paths (:func:`colorize_array` for images in memory, used by
evaluation; :func:`colorize_raster` for scene-sized rasters on disk)::

    raw values (C, H, W)  --to_linear_power(scale)-->  linear power (NaN at nodata)
      --Normalization.apply(scene reference)-->        relative intensity in [0, 1]
      --apply_speckle_filter(bundle's filter)-->        filtered relative intensity (0 at nodata)
      --model (tiles resampled to the training pixel size, batched)--> low-resolution AB
      --guided upsampling by the display feature-->    normalised AB in [-1, 1], x AB_SCALE
    relative --apply_display_filter (sar.display)--> display relative intensity
      --relative_to_feature--> dB feature in [0, 1] --tone curve--> L in [0, 100]
    L + AB --chroma limit (color.gamut)--> --lab_to_rgb--> sRGB uint8, alpha 0 on nodata

L is made from a display filter of the SAR (:mod:`sar_colorizer.sar.display`), separate from
the speckle filter the network was trained with, which keeps feeding the network unchanged
("network" uses that filter for L too). The network's low-resolution AB is upsampled guided by
the display feature (:mod:`sar_colorizer.color.upsampling`). Inputs whose pixel size (from the
georeference or given) differs from the bundle's training pixel size are cut into tiles of
``tile_size / factor`` input pixels that are resampled to ``tile_size`` for the network; the
colour comes back at the tile's input size (:func:`_tiling_plan`).

The tone curve maps the scene's SAR feature quantiles to the training optical L quantiles
stored in the bundle ("matched"), is ``L = 100 * feature`` ("sar"), or half the match and half
a straight line ("balanced"); it is tabulated once per scene (:func:`tone_lut`). The per-pixel
end of the chain (feature, tone table, AB scaling, chroma limit,
:func:`~sar_colorizer.color.lab.lab_to_rgb`, 8-bit rounding, nodata) runs as two XLA-compiled
TensorFlow functions, which fuse their ~60 element-wise steps into two passes over the pixels.

The speckle filter runs on the *normalised* (clipped) intensity, as in training: the training
chips store the clipped relative intensity and the data pipeline filters it in-graph. The
filters in :mod:`sar_colorizer.sar.speckle` are scale-equivariant, so this only differs from
filtering linear power where intensities exceed the reference (the brightest 1 %).

Scene statistics (the normalisation reference, i.e. the 99th percentile of linear power per
band, and the 101 quantiles of the SAR feature used by the "matched" tone curve) describe the
whole image. For a raster on disk they come from one decimated read of the whole raster
(:data:`STATS_MAX_SIDE` pixels on the long side, GDAL nearest-neighbour overview/decimation),
filtered with the same speckle filter; for rasters no larger than that this is the full image,
so both paths then give the same colours. Percentiles of a decimated image estimate those of
the full one without bias; only the feature quantiles of a filtered decimated image are
slightly wider (the filter averages pixels that lie further apart).

Streaming (:func:`colorize_raster`) works one row of tiles at a time: it reads a strip of
``tile_size`` rows plus a halo (half the speckle window or the display filter's halo, the
larger, so that filtering at strip borders matches whole-image filtering), cuts
reflect-padded tiles from it, runs them through the model in fixed-shape batches, blends the
tile outputs with raised-cosine weights (:mod:`sar_colorizer.io.tiling`) and writes the rows
that are final through :class:`~sar_colorizer.io.raster.RasterWriter`. Peak memory is a few
strips of ``tile_size x width`` pixels whatever the scene's height. The next strip is read and
preprocessed in a background thread while the model runs.

TensorFlow is imported only inside the functions that run the model.
"""

from __future__ import annotations

import logging
import math
import os
import threading
import time
import weakref
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import numpy as np

from sar_colorizer.errors import InputError
from sar_colorizer.io.tiling import (
    StripBlender,
    TileGrid,
    default_overlap,
    fit_tile_size,
    reflect_indices,
    reflect_pad_window,
    round_tile_size,
)
from sar_colorizer.sar.plausibility import sar_warnings
from sar_colorizer.signals import raise_if_interrupted

logger = logging.getLogger(__name__)

__all__ = [
    "STATS_MAX_SIDE",
    "TONES",
    "PredictSummary",
    "Preprocessing",
    "SceneStatistics",
    "colorize_array",
    "colorize_raster",
    "prepare_sar",
    "sar_to_l",
    "scene_statistics",
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

#: Long side (pixels) of the decimated read that scene statistics come from.
STATS_MAX_SIDE = 2048

#: Number of quantiles (0, 1, ..., 100 %) of the tone curve.
N_QUANTILES = 101

#: Samples of the tone curve table (feature 0..1 -> L) used per pixel.
TONE_LUT_SIZE = 4097

_QUANTILE_LEVELS = np.linspace(0.0, 1.0, N_QUANTILES)

#: Rows converted to colour and written per call (bounds the colour step's temporaries).
_WRITE_ROWS = 128

#: Default pixels per model call (tiles x tile side squared). On a CPU each call of the network
#: costs a fixed overhead of tens of operations on small feature maps; around a megapixel per
#: call (16 tiles of 256 px) amortises it (``python bench/predict_bench.py --batch-size N``).
BATCH_PIXELS = 1 << 20


#: Display filter for L by default (:data:`sar_colorizer.sar.display.DEFAULT_DISPLAY_FILTER`,
#: repeated so that importing this module does not import OpenCV; a test checks both agree).
DISPLAY_FILTER = "median_guided"

#: AB scale of :mod:`sar_colorizer.color.lab` (kept here so that importing this module does not
#: import Keras; a test checks both agree).
AB_SCALE = 110.0


# --------------------------------------------------------------------------------------------
# Preprocessing


@dataclass(frozen=True)
class Preprocessing:
    """What a model expects of its input, from the bundle: normalisation and speckle filter.

    Attributes:
        normalization: :class:`sar_colorizer.sar.radiometry.Normalization`.
        speckle_filter: :class:`sar_colorizer.sar.speckle.SpeckleFilter`.
    """

    normalization: Any
    speckle_filter: Any

    @classmethod
    def from_bundle(cls, bundle: Any) -> Preprocessing:
        """The preprocessing stored in a :class:`~sar_colorizer.bundle.Bundle`'s metadata."""
        return cls(normalization=bundle.normalization, speckle_filter=bundle.speckle_filter)

    @property
    def halo(self) -> int:
        """Extra rows a strip needs on each side so that filtering it matches the whole image."""
        if self.speckle_filter.name == "none":
            return 0
        return int(self.speckle_filter.window) // 2 + 1


def _as_preprocessing(source: Any) -> Preprocessing:
    if isinstance(source, Preprocessing):
        return source
    return Preprocessing.from_bundle(source)


@dataclass(frozen=True)
class SceneStatistics:
    """Whole-image numbers that every tile of a scene is processed with.

    Attributes:
        input_scale: Resolved radiometric scale of the raw values ("linear", "db", ...).
        references: Per band, the linear power mapped to relative intensity 1 (the 99th
            percentile of valid pixels for the "percentile" normalisation).
        feature_quantiles: ``(101,)`` quantiles 0..100 % of the SAR feature
            (:func:`~sar_colorizer.sar.radiometry.relative_to_feature` of the filtered relative
            intensity of the first band) over valid pixels; the "matched" tone curve's input.
        valid_fraction: Fraction of valid pixels in the image the statistics come from.
    """

    input_scale: str
    references: tuple[float, ...]
    feature_quantiles: np.ndarray
    valid_fraction: float = 1.0


def _resolve_scale(values: np.ndarray, valid: np.ndarray, input_scale: str) -> str:
    from sar_colorizer.sar.radiometry import INPUT_SCALES, detect_input_scale

    if input_scale == "auto":
        return str(detect_input_scale(values, valid))
    if input_scale not in INPUT_SCALES:
        raise InputError(
            f"unknown input scale {input_scale!r}; choose one of auto, {', '.join(INPUT_SCALES)}"
        )
    return input_scale


def _relative_filtered(
    values: np.ndarray,
    valid: np.ndarray,
    scale: str,
    references: Sequence[float],
    preprocessing: Preprocessing,
) -> np.ndarray:
    """Raw (C, H, W) values -> speckle-filtered relative intensity (C, H, W), NaN at nodata."""
    return _relative_and_display(values, valid, scale, references, preprocessing, "network")[0]


def _relative_and_display(
    values: np.ndarray,
    valid: np.ndarray,
    scale: str,
    references: Sequence[float],
    preprocessing: Preprocessing,
    display_filter: str,
) -> tuple[np.ndarray, np.ndarray]:
    """Raw (C, H, W) values -> (speckle-filtered relative intensity (C, H, W) for the network,
    relative intensity (H, W) of the first band filtered with ``display_filter`` for L), both
    NaN at nodata (:mod:`sar_colorizer.sar.display`; "network": the network's input band)."""
    from sar_colorizer.sar.radiometry import to_linear_power
    from sar_colorizer.sar.speckle import apply_speckle_filter

    linear = np.asarray(to_linear_power(values, scale, valid), dtype=np.float32)
    relative = np.empty_like(linear)
    for band, reference in enumerate(references):
        relative[band] = preprocessing.normalization.apply(linear[band], float(reference))
    del linear
    display = None
    if display_filter != "network":
        from sar_colorizer.sar.display import apply_display_filter

        display = apply_display_filter(relative[0], valid, display_filter)
    if preprocessing.speckle_filter.name != "none":
        relative = np.asarray(
            apply_speckle_filter(relative, preprocessing.speckle_filter), dtype=np.float32
        )
    # (Already NaN there through to_linear_power's mask; boolean indexing would cost 5x more.)
    np.copyto(relative, np.float32(np.nan), where=~valid)
    return relative, relative[0] if display is None else display


def _check_values(values: np.ndarray, valid: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    values = np.asarray(values)
    if values.ndim == 2:
        values = values[None]
    if values.ndim != 3:
        raise InputError(f"SAR values must be (bands, height, width); got shape {values.shape}")
    valid = np.asarray(valid, dtype=bool)
    if valid.shape != values.shape[1:]:
        raise InputError(f"valid mask {valid.shape} does not match the image {values.shape[1:]}")
    return values, valid


def scene_statistics(
    values: np.ndarray,
    valid: np.ndarray,
    preprocessing: Any,
    input_scale: str = "auto",
    display_filter: str = "network",
) -> SceneStatistics:
    """Normalisation references and SAR feature quantiles of a whole image.

    Args:
        values: ``(C, H, W)`` raw SAR values (the whole image, or a decimated read of it).
        valid: ``(H, W)`` True where the data are valid.
        preprocessing: A :class:`Preprocessing` or a bundle.
        input_scale: "auto" (detected with
            :func:`~sar_colorizer.sar.radiometry.detect_input_scale`) or a scale name.
        display_filter: The filter L is made with (:mod:`sar_colorizer.sar.display`); the
            feature quantiles describe its output. "network": the bundle's speckle filter.

    Returns:
        The :class:`SceneStatistics`.

    Raises:
        InputError: No valid pixel, no positive intensity, or an unknown scale.
    """
    from sar_colorizer.sar.radiometry import relative_to_feature, to_linear_power

    values, valid = _check_values(values, valid)
    preprocessing = _as_preprocessing(preprocessing)
    if not valid.any():
        raise InputError("the image has no valid pixels (all nodata)")
    scale = _resolve_scale(values, valid, input_scale)
    linear = np.asarray(to_linear_power(values, scale, valid), dtype=np.float32)
    references = []
    for band in range(linear.shape[0]):
        reference = float(preprocessing.normalization.reference(linear[band]))
        if not math.isfinite(reference) or reference <= 0:
            raise InputError(
                f"band {band + 1} has no positive intensity to normalise by (reference "
                f"{reference}); check --input-scale and the nodata value"
            )
        references.append(reference)
    _, display = _relative_and_display(
        values, valid, scale, references, preprocessing, display_filter
    )
    feature = np.asarray(relative_to_feature(display[valid]), dtype=np.float64)
    feature = feature[np.isfinite(feature)]
    quantiles = np.quantile(feature, _QUANTILE_LEVELS) if feature.size else _QUANTILE_LEVELS
    return SceneStatistics(
        input_scale=scale,
        references=tuple(references),
        feature_quantiles=np.asarray(quantiles, dtype=np.float64),
        valid_fraction=float(valid.mean()),
    )


def prepare_sar(
    values: np.ndarray,
    valid: np.ndarray,
    preprocessing: Any,
    input_scale: str = "auto",
    reference: float | Sequence[float] | None = None,
) -> np.ndarray:
    """Raw SAR values -> the model's input: speckle-filtered relative intensity.

    Args:
        values: ``(C, H, W)`` raw values in ``input_scale`` (bands in model order).
        valid: ``(H, W)`` True where the data are valid.
        preprocessing: The bundle (its normalisation and speckle filter are used) or a
            :class:`Preprocessing`.
        input_scale: "auto" or one of :data:`sar_colorizer.sar.radiometry.INPUT_SCALES`.
        reference: Linear power that maps to relative intensity 1, one for all bands or one
            per band; None computes it from this image (the 99th percentile of valid pixels).
            Pass the scene's reference when ``values`` is only a part of a scene.

    Returns:
        ``(H, W, C)`` float32 in [0, 1], 0 at invalid pixels.

    Raises:
        InputError: Shapes do not match, no valid pixel, or an unknown scale.
    """
    values, valid = _check_values(values, valid)
    preprocessing = _as_preprocessing(preprocessing)
    if reference is None:
        stats = scene_statistics(values, valid, preprocessing, input_scale)
        scale, references = stats.input_scale, stats.references
    else:
        scale = _resolve_scale(values, valid, input_scale)
        references = (
            tuple(float(r) for r in reference)
            if isinstance(reference, Sequence | np.ndarray)
            else (float(reference),) * values.shape[0]
        )
        if len(references) != values.shape[0]:
            raise InputError(f"{len(references)} references given for {values.shape[0]} bands")
    relative = _relative_filtered(values, valid, scale, references, preprocessing)
    return _to_model_input(relative)


def _to_model_input(relative: np.ndarray) -> np.ndarray:
    """(C, H, W) with NaN nodata -> (H, W, C) contiguous float32 with 0 at nodata."""
    return np.ascontiguousarray(np.nan_to_num(relative, nan=0.0).transpose(1, 2, 0))


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

    L between the samples is interpolated linearly (:func:`sar_to_l`); the curve itself is
    piecewise linear between the 101 quantile pairs, so the sampled form differs from it only
    next to its knots, by a tenth of an L unit at most for steep curves (invisible in 8-bit
    output), and it is the same table for every tile of a scene.

    Args:
        tone: "balanced", "matched" or "sar" (see :func:`sar_to_l`; "balanced" is
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


def _lookup(feature: np.ndarray, lut: np.ndarray) -> np.ndarray:
    """Linear interpolation in a tone table; the numpy twin of the in-graph lookup."""
    position = np.clip(feature, 0.0, 1.0) * np.float32(len(lut) - 1)
    index = np.minimum(position.astype(np.int32), len(lut) - 2)
    fraction = position - index
    return (lut[index] * (1 - fraction) + lut[index + 1] * fraction).astype(np.float32)


def sar_to_l(
    relative: np.ndarray,
    valid: np.ndarray,
    tone: str = "matched",
    scene_quantiles: Sequence[float] | np.ndarray | None = None,
    l_quantiles: Sequence[float] | np.ndarray | None = None,
) -> np.ndarray:
    """Lightness L from speckle-filtered SAR relative intensity.

    Args:
        relative: ``(H, W)`` filtered relative intensity (first band) in [0, 1].
        valid: ``(H, W)`` valid mask; L is 0 elsewhere.
        tone: "matched": the SAR dB feature
            (:func:`~sar_colorizer.sar.radiometry.relative_to_feature`) is mapped through the
            quantile curve ``scene_quantiles -> l_quantiles``, so that the image's brightness
            distribution becomes the typical optical L distribution of the training set while
            the SAR's structure (the order of brightness) is kept. "sar": ``L = 100 * feature``
            (plain backscatter brightness over the 25 dB below the scene's 99th percentile).
            "balanced": half of each kind (:func:`tone_lut`), the default of ``predict``.
        scene_quantiles: ``(101,)`` feature quantiles of the whole scene; None computes them
            from this array.
        l_quantiles: ``(101,)`` optical L quantiles from the bundle (needed for "matched" and
            "balanced").

    Returns:
        ``(H, W)`` float32 L in [0, 100].

    Raises:
        InputError: Unknown tone, or "matched" without ``l_quantiles``.
    """
    feature = _feature(np.nan_to_num(relative, nan=0.0))
    if tone != "sar" and scene_quantiles is None and l_quantiles is not None:
        scene_quantiles = (
            np.quantile(feature[valid], _QUANTILE_LEVELS) if valid.any() else _QUANTILE_LEVELS
        )
    lightness = _lookup(feature, tone_lut(tone, scene_quantiles, l_quantiles))
    lightness[~valid] = 0.0
    return lightness


def _feature(relative: np.ndarray) -> np.ndarray:
    from sar_colorizer.sar.radiometry import relative_to_feature

    return np.asarray(relative_to_feature(relative), dtype=np.float32)


def _bundle_l_quantiles(bundle: Any, tone: str) -> tuple[str, np.ndarray | None]:
    """The tone actually used and the bundle's L quantiles (fallback to "sar" if absent)."""
    if tone not in TONES:
        raise InputError(f"unknown tone {tone!r}; choose one of {', '.join(TONES)}")
    if tone == "sar":
        return tone, None
    quantiles = (bundle.tone or {}).get("l_quantiles")
    if quantiles is None or len(quantiles) != N_QUANTILES:
        logger.warning("the model bundle has no tone curve (l_quantiles); using --tone sar")
        return "sar", None
    return tone, np.asarray(quantiles, dtype=np.float64)


# --------------------------------------------------------------------------------------------
# Running the model and converting colours


#: Pixels per call of the compiled colour conversion (fixed, so it compiles once).
_COLOUR_CHUNK = 1 << 18

_RUNNERS: weakref.WeakKeyDictionary[Any, _ModelRunner] = weakref.WeakKeyDictionary()
_CONVERTER: dict[bool, _ColourConverter] = {}


class _ModelRunner:
    """Calls the Keras model through ``tf.function``s traced once per batch shape.

    A :class:`~sar_colorizer.nets.unet.ColorizationUNet` runs with its batch normalisations
    folded into the convolutions (:func:`~sar_colorizer.nets.unet.fold_batch_norm`).

    A network that ends in a bilinear :class:`~sar_colorizer.nets.layers.ResizeLike` (AB
    predicted at reduced resolution) runs up to that layer in TensorFlow; the upsampling is done
    with OpenCV, which computes the same half-pixel bilinear interpolation several times faster
    on a CPU (TensorFlow's resize was ~30% of the network's time on 256-px tiles).

    ``weights`` multiply the output by per-tile blending weights (separable: ``wy[:, None] *
    wx[None, :]``).
    """

    def __init__(self, model: Any) -> None:
        from sar_colorizer._tf import import_keras, import_tensorflow

        tf = import_tensorflow()
        keras = import_keras()
        self._tf = tf
        from sar_colorizer.nets.layers import ResizeLike
        from sar_colorizer.nets.unet import ColorizationUNet, fold_batch_norm

        # Same numbers without a pass over the feature maps per batch normalisation.
        network = fold_batch_norm(model) if isinstance(model, ColorizationUNet) else model
        last = network.layers[-1]
        self.upsample = isinstance(last, ResizeLike) and last.method == "bilinear"
        if self.upsample:
            network = keras.Model(network.inputs, last.input[0], name=f"{network.name}_low")
        # The runner owns its copies; the caller's model is only weakly referenced, so that
        # the per-model cache (_RUNNERS) does not keep models alive.
        self._network = network if network is not model else None
        model_ref: Callable[[], Any] = weakref.ref(network)

        def forward(batch: Any) -> Any:
            return model_ref()(batch, training=False)

        # Keras models need no AutoGraph conversion; skipping it makes tracing fast.
        self._forward = tf.function(forward, reduce_retracing=True, autograph=False)

    @classmethod
    def for_model(cls, model: Any) -> _ModelRunner:
        """One runner per model, so that repeated calls (evaluation) do not retrace."""
        if model not in _RUNNERS:
            _RUNNERS[model] = cls(model)
        return _RUNNERS[model]

    def __call__(
        self,
        batch: np.ndarray,
        weights: tuple[np.ndarray, np.ndarray] | None = None,
        guide: np.ndarray | None = None,
        size: tuple[int, int] | None = None,
        transform: Callable[[np.ndarray], np.ndarray] | None = None,
    ) -> np.ndarray:
        """Model output for ``batch`` (B, H, W, C), times ``wy[:, :, None] * wx[:, None, :]``
        per tile when separable ``weights = (wy (B, h), wx (B, w))`` are given.

        ``transform`` maps the network's output at its own (possibly reduced) resolution before
        upsampling (:class:`sar_colorizer.confidence.OutputPlan`). The output has the size of
        ``guide`` (B, h, w), upsampled along its edges
        (:func:`~sar_colorizer.color.upsampling.guided_upsample`), when a guide is given; else
        ``size`` (h, w) (default: the batch's), upsampled bilinearly.
        """
        outputs = self._forward(self._tf.constant(batch, dtype=self._tf.float32)).numpy()
        if transform is not None:
            outputs = transform(outputs)
        height, width = size if size is not None else batch.shape[1:3]
        if guide is not None:
            from sar_colorizer.color.upsampling import guided_upsample

            outputs = guided_upsample(outputs, guide)
        elif outputs.shape[1:3] != (height, width):
            from sar_colorizer.color.upsampling import resize_bilinear

            outputs = resize_bilinear(outputs, height, width)
        if weights is not None:
            weights_y, weights_x = weights
            outputs *= weights_y[:, :, None, None]
            outputs *= weights_x[:, None, :, None]
        return outputs


class _ColourConverter:
    """Filtered relative intensity + normalised AB -> LAB and sRGB uint8, per pixel.

    ``feature = relative_to_feature(relative)``, ``L = tone table(feature)`` (linear
    interpolation, as :func:`sar_to_l`), ``AB = ab_norm * AB_SCALE``, with ``chroma_limit``
    its chroma capped to the sRGB gamut at its L and hue
    (:func:`~sar_colorizer.color.gamut.limit_chroma`), then
    :func:`~sar_colorizer.color.lab.lab_to_rgb`; 0 outside ``valid``. Runs as two XLA-compiled
    ``tf.function``s (L and a*b*, then sRGB) on fixed chunks of :data:`_COLOUR_CHUNK` pixels
    (one compilation whatever the image size; XLA fuses the element-wise operations, several
    times faster than running them one by one). Falls back to the uncompiled graph where XLA
    is unavailable.
    """

    def __init__(self, chroma_limit: bool = True) -> None:
        from sar_colorizer._tf import import_tensorflow
        from sar_colorizer.color.gamut import limit_chroma, max_chroma_table
        from sar_colorizer.color.lab import lab_to_rgb
        from sar_colorizer.sar.radiometry import FEATURE_DB_MIN

        tf = import_tensorflow()
        gamut = tf.constant(max_chroma_table().reshape(-1))
        ln10 = float(np.log(10.0))
        steps = float(TONE_LUT_SIZE - 1)

        def lightness_and_chroma(relative: Any, ab_norm: Any, lut: Any) -> tuple[Any, Any]:
            db = 10.0 / ln10 * tf.math.log(tf.maximum(relative, 1e-10))
            feature = tf.clip_by_value((db - FEATURE_DB_MIN) / -FEATURE_DB_MIN, 0.0, 1.0)
            position = feature * steps
            index = tf.minimum(tf.cast(position, tf.int32), TONE_LUT_SIZE - 2)
            fraction = position - tf.cast(index, tf.float32)
            lightness = (
                tf.gather(lut, index) * (1.0 - fraction) + tf.gather(lut, index + 1) * fraction
            )
            ab = ab_norm * AB_SCALE
            if chroma_limit:  # keep hue, reduce chroma to what sRGB shows at this L
                ab = limit_chroma(lightness, ab, gamut)
            return lightness, ab

        def to_rgb(lightness: Any, shown: Any, ab_norm: Any, valid: Any) -> tuple[Any, Any]:
            # lab: the predicted colour (as before any gamut handling, like the clipping this
            # limit replaces); rgb: the colour shown.
            lab = tf.concat([lightness[:, None], ab_norm * AB_SCALE], axis=-1)
            rgb = lab_to_rgb(tf.concat([lightness[:, None], shown], axis=-1))
            rgb = tf.cast(rgb * 255.0 + 0.5, tf.uint8)
            mask = valid[:, None]
            return tf.where(mask, lab, 0.0), tf.where(mask, rgb, tf.zeros_like(rgb))

        def convert(relative: Any, ab_norm: Any, valid: Any, lut: Any) -> tuple[Any, Any]:
            lightness, shown = lightness_and_chroma(relative, ab_norm, lut)
            return to_rgb(lightness, shown, ab_norm, valid)

        signature = [
            tf.TensorSpec([_COLOUR_CHUNK], tf.float32),
            tf.TensorSpec([_COLOUR_CHUNK, 2], tf.float32),
            tf.TensorSpec([_COLOUR_CHUNK], tf.bool),
            tf.TensorSpec([TONE_LUT_SIZE], tf.float32),
        ]
        # Two compiled functions: inside one, XLA would recompute the tone lookup and the
        # chroma cap (table reads) for every colour channel that uses them; materialising L
        # and a*b* between the two keeps the chroma limit's cost small.
        first = tf.function(
            lightness_and_chroma,
            input_signature=[signature[0], signature[1], signature[3]],
            jit_compile=True,
            autograph=False,
        )
        second = tf.function(
            to_rgb,
            input_signature=[signature[0], signature[1], signature[1], signature[2]],
            jit_compile=True,
            autograph=False,
        )

        def compiled(relative: Any, ab_norm: Any, valid: Any, lut: Any) -> tuple[Any, Any]:
            lightness, shown = first(relative, ab_norm, lut)
            return second(lightness, shown, ab_norm, valid)

        self._compiled = compiled
        self._plain = tf.function(convert, input_signature=signature, autograph=False)
        self._convert = self._compiled
        self._lock = threading.Lock()

    @classmethod
    def shared(cls, chroma_limit: bool = True) -> _ColourConverter:
        """The process-wide converter (compiled once per ``chroma_limit``)."""
        if chroma_limit not in _CONVERTER:
            _CONVERTER[chroma_limit] = cls(chroma_limit)
        return _CONVERTER[chroma_limit]

    def _call(self, *arrays: np.ndarray) -> tuple[Any, Any]:
        try:
            return self._convert(*arrays)
        except Exception as error:  # XLA missing or failing on this platform
            if self._convert is self._plain:
                raise
            logger.debug("XLA colour conversion unavailable (%s); using plain TensorFlow", error)
            self._convert = self._plain
            return self._convert(*arrays)

    def __call__(
        self,
        relative: np.ndarray,
        ab_norm: np.ndarray,
        valid: np.ndarray,
        lut: np.ndarray,
        with_lab: bool = True,
    ) -> tuple[np.ndarray | None, np.ndarray]:
        """Convert ``(H, W)`` relative intensity, ``(H, W, 2)`` normalised AB, ``(H, W)`` mask.

        Returns:
            ``(lab float32 (H, W, 3) or None, rgb uint8 (H, W, 3))``: L with the predicted a*b*
            (before the chroma limit, as it was before the channel clipping it replaces), and
            the sRGB shown.
        """
        shape = relative.shape
        n = relative.size
        flat = [
            np.ascontiguousarray(relative, np.float32).reshape(-1),
            np.ascontiguousarray(ab_norm, np.float32).reshape(-1, 2),
            np.ascontiguousarray(valid, bool).reshape(-1),
        ]
        lut = np.ascontiguousarray(lut, np.float32)
        rgb = np.empty((n, 3), dtype=np.uint8)
        lab = np.empty((n, 3), dtype=np.float32) if with_lab else None
        chunk = _COLOUR_CHUNK
        with self._lock:
            for start in range(0, n, chunk):
                stop = min(n, start + chunk)
                pieces = [array[start:stop] for array in flat]
                if stop - start < chunk:
                    pad = chunk - (stop - start)
                    pieces = [
                        np.concatenate([p, np.zeros((pad,) + p.shape[1:], p.dtype)]) for p in pieces
                    ]
                lab_chunk, rgb_chunk = self._call(*pieces, lut)
                rgb[start:stop] = rgb_chunk.numpy()[: stop - start]
                if lab is not None:
                    lab[start:stop] = lab_chunk.numpy()[: stop - start]
        return (
            lab.reshape(shape + (3,)) if lab is not None else None,
            rgb.reshape(shape + (3,)),
        )


def _pad_to_multiple(image: np.ndarray, multiple: int) -> np.ndarray:
    height, width = image.shape[:2]
    pad_h, pad_w = (-height) % multiple, (-width) % multiple
    if not (pad_h or pad_w):
        return image
    return reflect_pad_window(image, 0, 0, 0, height + pad_h, width + pad_w, height, width)


def _predict_ab_whole(
    model: Any,
    relative: np.ndarray,
    multiple: int,
    guide: np.ndarray | None = None,
    transform: Callable[[np.ndarray], np.ndarray] | None = None,
) -> np.ndarray:
    """Normalised AB for a whole image in one forward pass (padded to the model's multiple)."""
    height, width = relative.shape[:2]
    padded = _pad_to_multiple(relative, multiple)
    padded_guide = None if guide is None else _pad_to_multiple(guide, multiple)[None]
    runner = _ModelRunner.for_model(model)
    return runner(padded[None], guide=padded_guide, transform=transform)[0, :height, :width]


def _display_options(display_filter: str, colour_upsampling: str) -> tuple[str, str]:
    """Checked names of the display filter and the colour upsampling."""
    from sar_colorizer.color.upsampling import UPSAMPLINGS
    from sar_colorizer.sar.display import check_display_filter

    if colour_upsampling not in UPSAMPLINGS:
        raise InputError(
            f"unknown colour upsampling {colour_upsampling!r}; choose one of "
            f"{', '.join(UPSAMPLINGS)}"
        )
    return check_display_filter(display_filter), colour_upsampling


def tile_settings(bundle: Any, tile_size: int | None = None, overlap: int | None = None
                  ) -> tuple[int, int]:
    """``(tile_size, overlap)`` that inference uses for ``bundle`` when given None for either:
    the tile size the network was trained on (:attr:`~sar_colorizer.bundle.Bundle.tile_size`),
    and :func:`~sar_colorizer.io.tiling.default_overlap` of that tile (after rounding it to the
    model's multiple)."""
    tile_size = int(bundle.tile_size) if tile_size is None else int(tile_size)
    if overlap is None:
        overlap = default_overlap(round_tile_size(tile_size, bundle.tile_multiple))
    return tile_size, overlap


def tiles_per_call(n_cols: int, tile: int, batch_size: int | None = None) -> int:
    """Tiles per model call for rows of ``n_cols`` tiles of ``tile`` px.

    At most ``batch_size`` tiles (None: as many as fit in :data:`BATCH_PIXELS`, at least one),
    spread evenly over the row so that padding the last call of a row wastes little: 55
    tiles with at most 16 per call give 4 calls of 14.
    """
    if batch_size is None:
        batch_size = max(1, BATCH_PIXELS // (tile * tile))
    if batch_size < 1:
        raise InputError(f"--batch-size must be >= 1, got {batch_size}")
    calls = -(-n_cols // batch_size)
    return -(-n_cols // calls)


def _resample_tile(tile: np.ndarray, side: int) -> np.ndarray:
    """``(h, w, C)`` model input -> ``(side, side, C)``: bilinear when growing, block averages
    when shrinking."""
    import cv2

    method = cv2.INTER_LINEAR if side >= tile.shape[0] else cv2.INTER_AREA
    return cv2.resize(tile, (side, side), interpolation=method).reshape(side, side, -1)


def _tiling_plan(
    bundle: Any,
    height: int,
    width: int,
    tile_size: int,
    overlap: int,
    factor: float,
) -> tuple[int, TileGrid]:
    """``(network tile side, grid on the input)`` for a scene whose pixels are ``factor``
    training pixels wide (:func:`~sar_colorizer.io.pixel_size.resample_factor`).

    The network runs on tiles of ``tile_size`` (rounded to the model's multiple, shrunk for
    small scenes) of training-size pixels; on the input grid a tile is ``tile_size / factor``
    pixels with ``overlap / factor`` overlap, and is resampled to the network's tile.
    """
    multiple = bundle.tile_multiple
    if factor == 1.0:
        tile = fit_tile_size(tile_size, multiple, height, width, overlap)
        return tile, TileGrid.for_shape(height, width, tile, overlap)
    net_height, net_width = math.ceil(height * factor), math.ceil(width * factor)
    net_tile = fit_tile_size(tile_size, multiple, net_height, net_width, overlap)
    tile = max(2, round(net_tile / factor))
    grid_overlap = min(round(overlap / factor), tile // 2)
    return net_tile, TileGrid.for_shape(height, width, tile, grid_overlap)


def _run_tile_row(
    runner: _ModelRunner,
    relative: np.ndarray,
    blender: StripBlender,
    batch_size: int,
    row: int,
    data_row0: int = 0,
    guide: np.ndarray | None = None,
    net_tile: int | None = None,
    transform: Callable[[np.ndarray], np.ndarray] | None = None,
    data_col0: int = 0,
    cols: range | None = None,
) -> None:
    """Run the tiles of one row through the model, batch by batch, into the blender.

    Args:
        runner: The model.
        relative: ``(rows, W, C)`` model input holding (at least) the scene rows the row of
            tiles covers, reflection included.
        blender: The blender (its grid and weights).
        batch_size: Tiles per call (:func:`tiles_per_call`); the last batch of the row is
            padded to this size so that the compiled function sees one shape only.
        row: Index of the row of tiles.
        data_row0: Scene row of ``relative[0]``.
        guide: ``(rows, W)`` guide for the colour upsampling (the displayed SAR feature), rows as
            ``relative``; None: bilinear upsampling.
        net_tile: Tile side the network sees; when it differs from the grid's tile (input pixel
            size other than the training one), each tile is resampled to it and the output
            back to the grid's tile.
        transform: Applied to the network's output before upsampling (see the runner).
        data_col0: Scene column of ``relative[:, 0]`` (and ``guide``'s) when they hold only
            the columns the tiles of ``cols`` reach, reflection included.
        cols: Run only these (consecutive) tiles of the row, in the batches that hold them when
            the whole row runs (the chunked path of :mod:`sar_colorizer.xarray_api`); None:
            every tile.
    """
    grid = blender.grid
    size = grid.tile_size
    net_tile = size if net_tile is None else net_tile
    r0 = grid.row_origins[row]
    tiles = np.empty((batch_size, net_tile, net_tile, relative.shape[2]), dtype=np.float32)
    guides = None if guide is None else np.empty((batch_size, size, size), dtype=np.float32)
    wanted = range(grid.n_cols) if cols is None else cols
    for start in range(0, grid.n_cols, batch_size):
        batch = range(
            max(start, wanted.start), min(grid.n_cols, start + batch_size, wanted.stop)
        )
        if not batch:
            continue
        for k, col in enumerate(batch):
            window = reflect_pad_window(
                relative, data_row0, r0, grid.col_origins[col], size, size, grid.height,
                grid.width, data_col0,
            )
            tiles[k] = window if net_tile == size else _resample_tile(window, net_tile)
            if guides is not None and guide is not None:
                guides[k] = reflect_pad_window(
                    guide, data_row0, r0, grid.col_origins[col], size, size, grid.height,
                    grid.width, data_col0,
                )
        weights_y, weights_x = blender.axis_weights(row, batch)
        if len(batch) < batch_size:  # pad the batch: one traced shape for every call
            tiles[len(batch) :] = tiles[len(batch) - 1]
            if guides is not None:
                guides[len(batch) :] = guides[len(batch) - 1]
            pad = batch_size - len(batch)
            weights_y = np.concatenate([weights_y, np.repeat(weights_y[-1:], pad, axis=0)])
            weights_x = np.concatenate([weights_x, np.repeat(weights_x[-1:], pad, axis=0)])
        outputs = runner(
            tiles, (weights_y, weights_x), guide=guides, size=(size, size), transform=transform
        )
        blender.add_tiles(row, batch.start, outputs[: len(batch)], weighted=True)


def colorize_array(
    bundle: Any,
    values: np.ndarray,
    valid: np.ndarray,
    input_scale: str = "auto",
    tone: str = "balanced",
    *,
    stats: SceneStatistics | None = None,
    tile_size: int | str | None = "model",
    overlap: int | None = None,
    batch_size: int | None = None,
    shrink: bool | None = None,
    display_filter: str = DISPLAY_FILTER,
    colour_upsampling: str = "guided",
    chroma_limit: bool = True,
    pixel_size: float | None = None,
) -> dict[str, np.ndarray]:
    """Colorize a SAR image held in memory (evaluation, notebooks, small images).

    Uses exactly the preprocessing, tone curve and colour conversion of
    :func:`colorize_raster`; with ``tile_size`` set it also uses the same tiling and blending,
    and then gives the same result as the streaming path for rasters no larger than
    :data:`STATS_MAX_SIDE`.

    Args:
        bundle: A loaded :class:`~sar_colorizer.bundle.Bundle`.
        values: ``(C, H, W)`` raw SAR values, bands in the model's order.
        valid: ``(H, W)`` True where the data are valid.
        input_scale: "auto" or a scale of :data:`sar_colorizer.sar.radiometry.INPUT_SCALES`.
        tone: One of :data:`TONES`.
        stats: Scene statistics to use instead of this image's own (e.g. when ``values`` is a
            crop of a larger scene).
        tile_size: ``"model"``: blend tiles of the size the network was trained on
            (:attr:`~sar_colorizer.bundle.Bundle.tile_size`), as ``predict`` does; an int: tiles
            of that size (rounded to the model's multiple); None: the whole image through the
            model at once (padded to the multiple), which on images larger than the training
            tiles gives other colours.
        overlap: Tile overlap in pixels (tiled mode); None: :func:`default_overlap` of the tile.
        batch_size: Most tiles per model call (tiled mode); None: about a megapixel per call
            (:func:`tiles_per_call`).
        shrink: Move a*, b* toward neutral where the model is unsure
            (:mod:`sar_colorizer.confidence`); None: on when the model has a confidence head.
        display_filter: Filter of the SAR that L is made from
            (:data:`~sar_colorizer.sar.display.DISPLAY_FILTERS`; "network": the bundle's
            speckle filter, which always feeds the network).
        colour_upsampling: "guided" (the network's low-resolution AB follows the edges of L,
            :mod:`sar_colorizer.color.upsampling`) or "bilinear".
        chroma_limit: Cap chroma to the sRGB gamut at each pixel's L and hue
            (:mod:`sar_colorizer.color.gamut`) instead of clipping RGB channels.
        pixel_size: Ground pixel size of ``values`` in metres; the network sees tiles resampled
            to the bundle's :attr:`~sar_colorizer.bundle.Bundle.pixel_size` (tiled mode).
            None: the training pixel size.

    Returns:
        ``{"rgb": uint8 (H, W, 3) (0 at nodata), "lab": float32 (H, W, 3), "ab": float32
        (H, W, 2) in CIELAB units (predicted: before the chroma limit, which only shapes "rgb",
        as channel clipping did before it), "feature": float32 (H, W) SAR dB feature in [0, 1]
        of the model's input, "relative": float32 (H, W, C) model input, "display": float32
        (H, W) relative intensity that L is made from (0 at nodata), "valid": bool (H, W)}``,
        and for a model with a confidence head ``"sigma"``: float32 (H, W) predicted standard
        deviation of a*, b* in CIELAB units (NaN at nodata), and ``"ab_mean"``: float32
        (H, W, 2) the network's a*, b* before the shrink.

    Raises:
        InputError: Bad shapes, no valid pixels, unknown scale or tone.
        ModelMismatchError: The number of bands differs from the model's.
    """

    from sar_colorizer.confidence import OutputPlan
    from sar_colorizer.io.pixel_size import resample_factor

    values, valid = _check_values(values, valid)
    bundle.check_input(values.shape[0])
    plan = OutputPlan.for_bundle(bundle, shrink, sigma=True, mean=True)
    display_filter, colour_upsampling = _display_options(display_filter, colour_upsampling)
    factor = resample_factor(pixel_size, bundle.pixel_size)
    preprocessing = Preprocessing.from_bundle(bundle)
    tone, l_quantiles = _bundle_l_quantiles(bundle, tone)
    if stats is None:
        stats = scene_statistics(values, valid, preprocessing, input_scale, display_filter)
    relative, display = _relative_and_display(
        values, valid, stats.input_scale, stats.references, preprocessing, display_filter
    )
    model_input = _to_model_input(relative)
    display = np.nan_to_num(display, nan=0.0)
    guide = _feature(display) if colour_upsampling == "guided" else None
    if isinstance(tile_size, str):
        if tile_size != "model":
            raise InputError(
                f"tile_size must be 'model', a number of pixels or None, not {tile_size!r}"
            )
        tile_size, overlap = tile_settings(bundle, None, overlap)
    if tile_size is None:
        if factor != 1.0:
            raise InputError("a pixel size other than the model's needs tiled inference")
        outputs = _predict_ab_whole(
            bundle.model, model_input, bundle.tile_multiple, guide, plan.transform
        )
    else:
        height, width = valid.shape
        tile_size, overlap = tile_settings(bundle, tile_size, overlap)
        net_tile, grid = _tiling_plan(bundle, height, width, tile_size, overlap, factor)
        runner = _ModelRunner.for_model(bundle.model)
        blender = StripBlender(grid, plan.n_channels)
        outputs = np.empty(valid.shape + (plan.n_channels,), dtype=np.float32)
        per_call = tiles_per_call(grid.n_cols, net_tile, batch_size)
        for row in range(grid.n_rows):
            _run_tile_row(
                runner, model_input, blender, per_call, row, 0, guide, net_tile, plan.transform
            )
            start, stop, block = blender.finish_row(row)
            outputs[start:stop] = block
    parts = plan.split(outputs)
    ab_norm = parts["ab"]
    lut = tone_lut(tone, stats.feature_quantiles, l_quantiles)
    converter = _ColourConverter.shared(chroma_limit)
    converted, rgb = converter(display, ab_norm, valid, lut)
    lab = cast(np.ndarray, converted)  # with_lab=True: never None
    ab = np.ascontiguousarray(lab[..., 1:])
    feature = _feature(model_input[..., 0])
    feature[~valid] = 0.0
    result = {
        "rgb": rgb,
        "lab": lab,
        "ab": ab,
        "feature": feature,
        "relative": model_input,
        "display": display,
        "valid": valid,
    }
    if "sigma" in parts:
        sigma = np.array(parts["sigma"], dtype=np.float32)
        sigma[~valid] = np.nan
        result["sigma"] = sigma
        ab_mean = parts["ab_mean"] * np.float32(AB_SCALE)
        ab_mean[~valid] = 0.0
        result["ab_mean"] = ab_mean
    return result


# --------------------------------------------------------------------------------------------
# Streaming over rasters on disk


@dataclass
class PredictSummary:
    """What :func:`colorize_raster` did.

    Attributes:
        input: Input raster (a string for a GDAL virtual path or URL).
        output: Colorized raster written.
        width, height: Scene size in pixels.
        bands: 1-based band indexes fed to the model.
        input_scale: Radiometric scale used (detected when "auto" was asked for).
        tone: Tone used for L.
        tile_size, overlap: Tiling used (tile size after rounding to the model's multiple
            and shrinking for scenes smaller than a tile).
        tiles: Number of tiles run through the model.
        references: Normalisation references (linear power) per band.
        valid_fraction: Fraction of valid pixels (from the decimated statistics read).
        seconds: Wall time of the whole call.
        ab_output: Written AB raster, if asked for.
        quicklook: Written quicklook PNG, if asked for.
        stage_seconds: Wall time per stage (statistics, read + preprocess, model + blend,
            colour + write, finish outputs; the middle three run in parallel threads) and the
            CPU time of the reading and colour threads (", cpu").
    """

    input: Path | str
    output: Path
    width: int
    height: int
    bands: tuple[int, ...]
    input_scale: str
    tone: str
    tile_size: int
    overlap: int
    tiles: int
    references: tuple[float, ...]
    valid_fraction: float
    seconds: float
    ab_output: Path | None = None
    quicklook: Path | None = None
    stage_seconds: dict[str, float] = field(default_factory=dict)

    @property
    def megapixels_per_second(self) -> float:
        """Scene pixels (not tile pixels) per second, in millions."""
        return self.width * self.height / max(self.seconds, 1e-9) / 1e6


def _band_names(info: Any, band_indexes: Sequence[int], bands: Any) -> list[str | None]:
    """Names to check against the model: user's names, band descriptions or the file name."""
    if isinstance(bands, str):
        tokens = [token.strip() for token in bands.split(",") if token.strip()]
    elif bands is None:
        tokens = []
    else:
        tokens = [str(token) for token in bands]
    if tokens and len(tokens) == len(band_indexes) and not any(t.isdigit() for t in tokens):
        return list(tokens)
    descriptions = tuple(getattr(info, "descriptions", ()) or ())
    names: list[str | None] = []
    for index in band_indexes:
        description = descriptions[index - 1] if index - 1 < len(descriptions) else None
        names.append(description or None)
    if info.count == 1 and names == [None]:
        names = [Path(info.path).stem]  # e.g. ..._VH.tif, as BigEarthNet names its bands
    return names


def _stats_shape(height: int, width: int) -> tuple[int, int]:
    """Size of the decimated statistics read: at most :data:`STATS_MAX_SIDE` on the long side."""
    factor = max(1.0, max(height, width) / STATS_MAX_SIDE)
    return max(1, round(height / factor)), max(1, round(width / factor))


class _Quicklook:
    """Accumulates a block-averaged, side-by-side (SAR | colorised) preview while streaming."""

    def __init__(self, height: int, width: int, max_width: int = 2048) -> None:
        self.factor = max(1, math.ceil(2 * width / max_width))
        self.width = width
        self.q_height = math.ceil(height / self.factor)
        self.q_width = math.ceil(width / self.factor)
        # Channels: grey SAR, R, G, B; summed over valid pixels, plus valid and total counts.
        self._sums = np.zeros((self.q_height, self.q_width, 4), dtype=np.float64)
        self._valid = np.zeros((self.q_height, self.q_width), dtype=np.float64)
        self._total = np.zeros((self.q_height, self.q_width), dtype=np.float64)

    def add(self, start: int, feature: np.ndarray, rgb: np.ndarray, valid: np.ndarray) -> None:
        """Add rows ``start...`` of the scene: feature (h, W), rgb uint8 (h, W, 3), valid (h, W)."""
        if not len(valid):
            return
        f = self.factor
        channels = np.concatenate([feature[..., None] * 255.0, rgb.astype(np.float32)], axis=-1)
        weight = valid.astype(np.float32)
        channels *= weight[..., None]
        pad = self.q_width * f - self.width
        if pad:
            channels = np.pad(channels, [(0, 0), (0, pad), (0, 0)])
            weight = np.pad(weight, [(0, 0), (0, pad)])
            ones = np.pad(np.ones_like(valid, dtype=np.float32), [(0, 0), (0, pad)])
        else:
            ones = np.ones_like(weight)
        rows = start + np.arange(len(valid))
        q_rows = rows // f
        cuts = np.flatnonzero(np.diff(q_rows)) + 1
        starts = np.concatenate([[0], cuts])
        targets = q_rows[starts]

        def reduce(array: np.ndarray) -> np.ndarray:
            array = array.reshape(array.shape[0], self.q_width, f, *array.shape[2:]).sum(axis=2)
            return np.add.reduceat(array, starts, axis=0)

        self._sums[targets] += reduce(channels)
        self._valid[targets] += reduce(weight)
        self._total[targets] += reduce(ones)

    def image(self) -> np.ndarray:
        """RGBA uint8 ``(h, 2 w, 4)``: SAR in grey on the left, colours on the right."""
        mean = self._sums / np.maximum(self._valid, 1.0)[..., None]
        alpha = np.where(self._valid * 2 >= np.maximum(self._total, 1), 255, 0).astype(np.uint8)
        grey = np.clip(mean[..., 0] + 0.5, 0, 255).astype(np.uint8)
        colour = np.clip(mean[..., 1:] + 0.5, 0, 255).astype(np.uint8)
        left = np.dstack([grey, grey, grey, alpha])
        right = np.dstack([colour, alpha])
        return np.concatenate([left, right], axis=1)


def _write_png(path: Path, rgba: np.ndarray, overwrite: bool) -> None:
    from sar_colorizer.io.raster import write_raster

    # Through the raster writer, so that the PNG carries sarcolor's tag (--overwrite may
    # replace it) and is written atomically like every output.
    write_raster(path, rgba.transpose(2, 0, 1), {}, overwrite=overwrite, driver="PNG")


@dataclass
class _Strip:
    """Preprocessed input of one row of tiles."""

    row: int
    data_row0: int  # scene row of model_input[0]
    model_input: np.ndarray  # (rows, W, C) float32, 0 at nodata
    valid: np.ndarray  # (rows, W) bool
    display: np.ndarray | None = None  # (rows, W) float32 relative intensity for L, 0 at nodata
    guide: np.ndarray | None = None  # (rows, W) float32 feature of display (guided upsampling)
    seconds: float = 0.0
    cpu_seconds: float = 0.0


def colorize_raster(
    bundle: Any,
    in_path: str | os.PathLike[str],
    out_path: str | os.PathLike[str],
    *,
    bands: str | Sequence[str | int] | None = None,
    input_scale: str = "auto",
    tone: str = "balanced",
    tile_size: int | None = None,
    overlap: int | None = None,
    batch_size: int | None = None,
    driver: str | None = None,
    ab_path: str | os.PathLike[str] | None = None,
    quicklook_path: str | os.PathLike[str] | None = None,
    overwrite: bool = False,
    progress: bool = True,
    creation_options: dict[str, str] | None = None,
    confidence_path: str | os.PathLike[str] | None = None,
    shrink: bool | None = None,
    display_filter: str = DISPLAY_FILTER,
    colour_upsampling: str = "guided",
    chroma_limit: bool = True,
    pixel_size: float | None = None,
) -> PredictSummary:
    """Colorize a SAR raster of any size, streaming it tile row by tile row.

    The scene is never loaded whole: statistics come from one decimated read
    (:data:`STATS_MAX_SIDE` px on the long side), then strips of ``tile_size`` rows (plus a
    speckle-filter halo) are read, preprocessed, cut into reflect-padded overlapping tiles, run
    through the model in batches of ``batch_size`` and blended; finished rows are converted to
    colour and written. The output keeps the source's CRS and transform (GeoTIFF tags, or an
    .aux.xml / world file beside a PNG or JPEG), has an alpha band that is 0 exactly on nodata
    (PNG, GeoTIFF, COG; JPEG has no alpha: nodata is black) and is written atomically.

    Args:
        bundle: A loaded :class:`~sar_colorizer.bundle.Bundle`.
        in_path: SAR raster readable by GDAL.
        out_path: Colorized output; driver from the extension (.png, .jpg/.jpeg, .tif/.tiff)
            unless ``driver`` is given.
        bands: Band(s) fed to the model: names ("VH", "VV,VH", matched against band
            descriptions or the file name) or 1-based numbers ("1"); None takes all bands.
        input_scale: "auto" (detected, logged) or "linear", "db", "amplitude", "display".
        tone: "matched" (L quantile-matched to the training optical L) or "sar".
        tile_size: Tile side, rounded to the model's ``tile_multiple``; None takes the size the
            network was trained on (:attr:`~sar_colorizer.bundle.Bundle.tile_size`).
        overlap: Overlap of neighbouring tiles in pixels (at most half a tile); None:
            :func:`~sar_colorizer.io.tiling.default_overlap` (an eighth of the tile).
        batch_size: Most tiles per model call; None: about a megapixel per call
            (:func:`tiles_per_call`).
        driver: GDAL driver ("PNG", "JPEG", "GTiff", "COG") to override the extension.
        ab_path: Also write the predicted AB (CIELAB units) as a float32 2-band GeoTIFF, NaN
            on nodata.
        quicklook_path: Also write a side-by-side PNG (SAR | colorised), at most 2048 px wide.
        overwrite: Replace existing outputs.
        progress: Show a progress bar on stderr (tqdm hides it when stderr is not a terminal).
        creation_options: GDAL creation options for the output driver.
        confidence_path: Also write the predicted standard deviation of a*, b* in CIELAB units
            (:func:`sar_colorizer.confidence.predicted_sigma`; small = sure) as a float32
            1-band GeoTIFF on the output grid, NaN (nodata) where the input is nodata. Needs a
            model with a confidence head.
        shrink: Move a*, b* toward neutral where the model is unsure
            (:mod:`sar_colorizer.confidence`); None: on when the model has a confidence head.
        display_filter, colour_upsampling, chroma_limit: As for :func:`colorize_array`.
        pixel_size: Ground pixel size of the input in metres; None takes it from the
            georeference (:func:`~sar_colorizer.io.pixel_size.pixel_size_metres`), or the
            model's training pixel size where the raster has none. The network sees tiles
            resampled to the training pixel size; the output keeps the input's grid.

    Returns:
        A :class:`PredictSummary`.

    Raises:
        RasterError: The input is missing or not a raster.
        OutputExistsError: An output exists and ``overwrite`` is False.
        ModelMismatchError: The chosen bands do not match the model's.
        InputError: Bad options (tile size, overlap, scale, tone), an all-nodata input, or
            ``confidence_path`` / ``shrink=True`` for a model without a confidence head.
    """
    import rasterio
    from rasterio.windows import Window
    from tqdm.auto import tqdm

    from sar_colorizer.io.pixel_size import pixel_size_metres, resample_factor
    from sar_colorizer.io.raster import (
        RasterWriter,
        check_output_path,
        input_path,
        read_info,
        read_raster,
        resolve_bands,
    )
    from sar_colorizer.sar.display import display_halo

    started = time.perf_counter()
    in_path, out_path = input_path(in_path), Path(out_path)  # GDAL virtual paths stay strings
    from sar_colorizer.confidence import OutputPlan

    outputs = [
        Path(p) for p in (out_path, ab_path, quicklook_path, confidence_path) if p is not None
    ]
    if confidence_path is not None and not bundle.has_confidence:
        raise InputError(
            f"model {bundle.path or ''} has no confidence head: --confidence needs a model "
            "trained with one (sarcolor train adds it by default)"
        )
    plan = OutputPlan.for_bundle(bundle, shrink, sigma=confidence_path is not None)
    names: set[Path | str] = {p.resolve() for p in outputs}
    names.add(in_path if isinstance(in_path, str) else in_path.resolve())
    if len(names) != len(outputs) + 1:
        raise InputError(f"{in_path}: input and outputs must all be different files")
    for path in outputs:
        check_output_path(path, overwrite)
    display_filter, colour_upsampling = _display_options(display_filter, colour_upsampling)
    info = read_info(in_path)
    band_indexes = list(resolve_bands(info, bands))  # None: every band but alpha
    bundle.check_input(len(band_indexes), _band_names(info, band_indexes, bands))
    preprocessing = Preprocessing.from_bundle(bundle)
    tone, l_quantiles = _bundle_l_quantiles(bundle, tone)
    if tile_size is not None and tile_size != bundle.tile_size:
        logger.warning(
            "tile size %d differs from the %d px the model was trained on; colours may drift",
            tile_size,
            bundle.tile_size,
        )
    tile_size, overlap = tile_settings(bundle, tile_size, overlap)
    if round_tile_size(tile_size, bundle.tile_multiple) != tile_size:
        logger.info(
            "tile size %d rounded to %d (multiple of %d)",
            tile_size,
            round_tile_size(tile_size, bundle.tile_multiple),
            bundle.tile_multiple,
        )
    if pixel_size is None:
        pixel_size = pixel_size_metres(info.crs, info.transform, info.width, info.height)
    factor = resample_factor(pixel_size, bundle.pixel_size)
    if factor != 1.0:
        logger.info(
            "%s: %.4g m pixels; the network sees them resampled to its %.4g m training pixels",
            in_path,
            pixel_size,
            bundle.pixel_size,
        )
    net_tile, grid = _tiling_plan(bundle, info.height, info.width, tile_size, overlap, factor)
    tile = grid.tile_size
    per_call = tiles_per_call(grid.n_cols, net_tile, batch_size)

    # Scene statistics from one decimated read of the whole raster.
    stats_shape = _stats_shape(info.height, info.width)
    small, small_valid = read_raster(
        in_path, bands=band_indexes, out_shape=(len(band_indexes),) + stats_shape
    )
    if not small_valid.any():
        raise InputError(f"{in_path}: no valid pixels (everything is nodata)")
    stats = scene_statistics(small, small_valid, preprocessing, input_scale, display_filter)
    sar_warnings(in_path, [info.descriptions[b - 1] for b in band_indexes], small, small_valid,
                 stats.input_scale)
    logger.info(
        "%s: %d x %d px, bands %s, input scale %s%s, reference %s (linear power)",
        in_path,
        info.width,
        info.height,
        ",".join(map(str, band_indexes)),
        stats.input_scale,
        " (detected)" if input_scale == "auto" else "",
        ", ".join(f"{r:.4g}" for r in stats.references),
    )
    del small, small_valid

    halo = max(preprocessing.halo, display_halo(display_filter))
    stages = {
        "statistics": time.perf_counter() - started,
        "read + preprocess": 0.0,
        "model + blend": 0.0,
        "colour + write": 0.0,
        "read + preprocess, cpu": 0.0,
        "colour + write, cpu": 0.0,
    }

    def load_strip(row: int) -> _Strip:
        t0, cpu0 = time.perf_counter(), time.thread_time()
        r0, r1 = grid.strip_rows(row)
        needed = _reflected_range(r0, r1, info.height)
        lo, hi = max(0, needed[0] - halo), min(info.height, needed[1] + halo)
        values, valid = read_raster(
            in_path, bands=band_indexes, window=Window(0, lo, info.width, hi - lo)
        )
        relative, display = _relative_and_display(
            values, valid, stats.input_scale, stats.references, preprocessing, display_filter
        )
        cut = slice(needed[0] - lo, needed[1] - lo)
        model_input = _to_model_input(relative[:, cut])
        display = np.nan_to_num(display[cut], nan=0.0)
        guide = _feature(display) if colour_upsampling == "guided" else None
        seconds = time.perf_counter() - t0
        return _Strip(
            row,
            needed[0],
            model_input,
            valid[cut],
            display=display,
            guide=guide,
            seconds=seconds,
            cpu_seconds=time.thread_time() - cpu0,
        )

    runner = _ModelRunner.for_model(bundle.model)
    converter = _ColourConverter.shared(chroma_limit)
    lut = tone_lut(tone, stats.feature_quantiles, l_quantiles)
    blender = StripBlender(grid, plan.n_channels)
    quicklook = _Quicklook(info.height, info.width) if quicklook_path is not None else None
    rgb_profile, ab_profile = _output_profiles(info.profile)

    bar = tqdm(
        total=len(grid),
        unit="tile",
        desc=Path(in_path).name,
        disable=None if progress else True,
        leave=False,
        dynamic_ncols=True,
    )
    with (
        ExitStack() as stack,
        ThreadPoolExecutor(max_workers=1) as reader_pool,
        ThreadPoolExecutor(max_workers=1) as writer_pool,
    ):
        stack.callback(bar.close)
        # GDAL's block cache defaults to 5 % of RAM; a strip of input and output blocks is all
        # this loop reuses, so cap it (rasterio takes bytes here and restores it afterwards).
        stack.enter_context(rasterio.Env(GDAL_CACHEMAX=_gdal_cache_bytes(info, ab_path)))
        writer = stack.enter_context(
            RasterWriter(
                out_path,
                rgb_profile,
                driver=driver,
                overwrite=overwrite,
                creation_options=creation_options,
            )
        )
        ab_writer = None
        if ab_path is not None:
            ab_writer = stack.enter_context(
                RasterWriter(Path(ab_path), ab_profile, driver="GTiff", overwrite=overwrite)
            )
        confidence_writer = None
        if confidence_path is not None:
            confidence_writer = stack.enter_context(
                RasterWriter(Path(confidence_path), dict(ab_profile, count=1), driver="GTiff",
                             overwrite=overwrite, descriptions=("ab_sigma_cielab",))
            )

        def finish_block(strip: _Strip, start: int, stop: int, block: np.ndarray) -> None:
            t0, cpu0 = time.perf_counter(), time.thread_time()
            parts = plan.split(block)
            ab_norm, sigma = parts["ab"], parts.get("sigma")
            # In slices of _WRITE_ROWS rows: the colour temporaries stay small.
            for top in range(start, stop, _WRITE_ROWS):
                bottom = min(stop, top + _WRITE_ROWS)
                local = slice(top - strip.data_row0, bottom - strip.data_row0)
                valid = strip.valid[local]
                display = cast(np.ndarray, strip.display)[local]
                ab_block = ab_norm[top - start : bottom - start]
                _, rgb = converter(display, ab_block, valid, lut, with_lab=False)
                window = Window(0, top, info.width, bottom - top)
                writer.write(rgb.transpose(2, 0, 1), window, valid=valid)
                if ab_writer is not None:
                    ab = ab_block * np.float32(AB_SCALE)
                    ab[~valid] = np.nan
                    ab_writer.write(ab.transpose(2, 0, 1), window, valid=valid)
                if confidence_writer is not None and sigma is not None:
                    sigma_block = sigma[top - start : bottom - start].copy()
                    sigma_block[~valid] = np.nan
                    confidence_writer.write(sigma_block[None], window, valid=valid)
                if quicklook is not None:
                    quicklook.add(top, _feature(display), rgb, valid)
            stages["colour + write"] += time.perf_counter() - t0
            stages["colour + write, cpu"] += time.thread_time() - cpu0

        pending: Future[_Strip] = reader_pool.submit(load_strip, 0)
        written: list[Future[None]] = []
        for row in range(grid.n_rows):
            raise_if_interrupted()
            strip = pending.result()
            stages["read + preprocess"] += strip.seconds
            stages["read + preprocess, cpu"] += strip.cpu_seconds
            if row + 1 < grid.n_rows:
                pending = reader_pool.submit(load_strip, row + 1)
            t0 = time.perf_counter()
            _run_tile_row(
                runner,
                strip.model_input,
                blender,
                per_call,
                row,
                strip.data_row0,
                strip.guide,
                net_tile,
                plan.transform,
            )
            start, stop, block = blender.finish_row(row)
            stages["model + blend"] += time.perf_counter() - t0
            # Keep at most one block in flight: bounded memory, errors surface promptly.
            while written:
                written.pop(0).result()
            written.append(writer_pool.submit(finish_block, strip, start, stop, block))
            bar.update(grid.n_cols)
            elapsed = time.perf_counter() - started
            done_px = min(stop, info.height) * info.width
            bar.set_postfix_str(f"{done_px / max(elapsed, 1e-9) / 1e6:.2f} Mpx/s", refresh=False)
        for future in written:
            future.result()
        t0 = time.perf_counter()
        stack.close()  # finish the outputs (PNG/JPEG/COG conversion) and rename them
        stages["finish outputs"] = time.perf_counter() - t0
    if quicklook is not None and quicklook_path is not None:
        _write_png(Path(quicklook_path), quicklook.image(), overwrite)

    seconds = time.perf_counter() - started
    summary = PredictSummary(
        input=in_path,
        output=out_path,
        width=info.width,
        height=info.height,
        bands=tuple(band_indexes),
        input_scale=stats.input_scale,
        tone=tone,
        tile_size=tile,
        overlap=overlap,
        tiles=len(grid),
        references=stats.references,
        valid_fraction=stats.valid_fraction,
        seconds=seconds,
        ab_output=Path(ab_path) if ab_path is not None else None,
        quicklook=Path(quicklook_path) if quicklook_path is not None else None,
        stage_seconds=stages,
    )
    logger.debug(
        "%s: seconds per stage (threads overlap): %s",
        in_path,
        ", ".join(f"{name} {value:.2f}" for name, value in stages.items()),
    )
    logger.info(
        "wrote %s (%d x %d px, %d tiles) in %.1f s, %.2f Mpx/s",
        out_path,
        info.width,
        info.height,
        len(grid),
        seconds,
        summary.megapixels_per_second,
    )
    return summary


#: Source creation options that do not carry over to outputs of another data type.
_SOURCE_ONLY_OPTIONS = ("predictor", "nbits", "pixeltype", "photometric", "alpha")


def _output_profiles(profile: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Profiles of the RGB output and the AB output, starting from the source's profile."""
    base = {k: v for k, v in profile.items() if k.lower() not in _SOURCE_ONLY_OPTIONS}
    rgb = dict(base, count=3, dtype="uint8", nodata=None)
    ab = dict(base, count=2, dtype="float32", nodata=float("nan"))
    return rgb, ab


def _gdal_cache_bytes(info: Any, ab_path: Any) -> int:
    """GDAL block cache for streaming: two block rows (up to 512 px) of input and outputs.

    Strips are written in slices narrower than a block row, so a block row of the output must
    stay cached until it is complete; the input's block rows are read by two strips each.
    GDAL's default (5 % of RAM) would grow the process by hundreds of MB on large machines.
    """
    profile = info.profile
    block_rows = min(max(int(profile.get("blockysize") or 1), 512), 2048)
    in_bytes = info.count * np.dtype(info.dtype).itemsize
    out_bytes = 4 + (8 if ab_path is not None else 0)  # RGBA uint8, AB 2 x float32
    return max(32 * 2**20, 2 * block_rows * info.width * (in_bytes + out_bytes))


def _reflected_range(start: int, stop: int, length: int) -> tuple[int, int]:
    """Scene rows that rows ``[start, stop)`` map to under reflection about the scene edges."""
    rows = reflect_indices(np.arange(start, stop), length)
    return int(rows.min()), int(rows.max()) + 1
