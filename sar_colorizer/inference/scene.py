"""Scene statistics and preprocessing: raw SAR values -> the network's input and L's source.

::

    raw values (C, H, W)  --to_linear_power(scale)-->  linear power (NaN at nodata)
      --Normalization.apply(scene reference)-->        relative intensity in [0, 1]
      --apply_speckle_filter(bundle's filter)-->        filtered relative intensity: network input
    relative (first band) --apply_display_filter (sar.display)--> display relative intensity,
      which L is made from (the "network" display filter uses the network's input band)

The speckle filter runs on the *normalised* (clipped) intensity, as in training: the training
chips store the clipped relative intensity and the data pipeline filters it in-graph. The
filters in :mod:`sar_colorizer.sar.speckle` are scale-equivariant, so this only differs from
filtering linear power where intensities exceed the reference (the brightest 1 %).

Scene statistics (the normalisation reference, i.e. the 99th percentile of linear power per
band, and the 101 quantiles of the SAR feature used by the "matched" tone curve) describe the
whole image. For a raster on disk they come from one decimated read of the whole raster
(:data:`STATS_MAX_SIDE` pixels on the long side, GDAL nearest-neighbour overview/decimation,
:func:`stats_shape`), filtered with the same speckle filter; for rasters no larger than that this
is the full image, so the in-memory and streaming paths then give the same colours. Percentiles
of a decimated image estimate those of the full one without bias; only the feature quantiles of
a filtered decimated image are slightly wider (the filter averages pixels that lie further
apart).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from sar_colorizer.errors import InputError
from sar_colorizer.inference.reference import OWN_REFERENCE
from sar_colorizer.inference.tone import N_QUANTILES

if TYPE_CHECKING:
    from sar_colorizer.bundle import Bundle
    from sar_colorizer.inference.reference import SceneReference
    from sar_colorizer.sar.radiometry import Normalization
    from sar_colorizer.sar.speckle import SpeckleFilter

__all__ = [
    "STATS_MAX_SIDE",
    "InputSpec",
    "SceneStatistics",
    "check_values",
    "db_feature",
    "prepare_sar",
    "relative_and_display",
    "resolve_scale",
    "scene_statistics",
    "stats_shape",
    "to_model_input",
]

#: Long side (pixels) of the decimated read that scene statistics come from.
STATS_MAX_SIDE = 2048

_QUANTILE_LEVELS = np.linspace(0.0, 1.0, N_QUANTILES)


@dataclass(frozen=True)
class InputSpec:
    """What a model expects of its input, from the bundle: normalisation and speckle filter.

    Attributes:
        normalization: How linear power becomes relative intensity.
        speckle_filter: The filter the network's input was trained with.
        present: For a model of optional bands (:attr:`~sar_colorizer.bundle.Bundle.
            optional_bands`), which of its bands the input has (the input's bands are those,
            in the model's order; :meth:`~sar_colorizer.bundle.Bundle.input_layout`); None:
            the input's bands are the model's input.
    """

    normalization: Normalization
    speckle_filter: SpeckleFilter
    present: tuple[bool, ...] | None = None

    @classmethod
    def from_bundle(cls, bundle: Bundle) -> InputSpec:
        """What a :class:`~sar_colorizer.bundle.Bundle`'s metadata says its model expects."""
        return cls(normalization=bundle.normalization, speckle_filter=bundle.speckle_filter)

    def channels(self, n_bands: int) -> int:
        """Network input channels for ``n_bands`` input bands."""
        return n_bands if self.present is None else 2 * len(self.present)

    @property
    def halo(self) -> int:
        """Extra rows a strip needs on each side so that filtering it matches the whole image."""
        if self.speckle_filter.name == "none":
            return 0
        return int(self.speckle_filter.window) // 2 + 1


def _as_input_spec(source: InputSpec | Bundle) -> InputSpec:
    if isinstance(source, InputSpec):
        return source
    return InputSpec.from_bundle(source)


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
        reference_source: Where ``references`` (and the quantiles) came from, as written in
            an output's ``SARCOLOR_INPUT_REFERENCE_SOURCE`` tag.
    """

    input_scale: str
    references: tuple[float, ...]
    feature_quantiles: np.ndarray
    valid_fraction: float = 1.0
    reference_source: str = OWN_REFERENCE


def stats_shape(height: int, width: int) -> tuple[int, int]:
    """Size of the decimated statistics read: at most :data:`STATS_MAX_SIDE` on the long side."""
    factor = max(1.0, max(height, width) / STATS_MAX_SIDE)
    return max(1, round(height / factor)), max(1, round(width / factor))


def resolve_scale(values: np.ndarray, valid: np.ndarray, input_scale: str) -> str:
    """The radiometric scale of ``values``: ``input_scale``, or the detected one for "auto".

    Raises:
        InputError: An unknown scale name.
    """
    from sar_colorizer.sar.radiometry import INPUT_SCALES, detect_input_scale

    if input_scale == "auto":
        return str(detect_input_scale(values, valid))
    if input_scale not in INPUT_SCALES:
        raise InputError(
            f"unknown input scale {input_scale!r}; choose one of auto, {', '.join(INPUT_SCALES)}"
        )
    return input_scale


def relative_and_display(
    values: np.ndarray,
    valid: np.ndarray,
    scale: str,
    references: Sequence[float],
    input_spec: InputSpec,
    display_filter: str,
) -> tuple[np.ndarray, np.ndarray]:
    """Raw (C, H, W) values -> (speckle-filtered relative intensity (C, H, W) for the network,
    relative intensity (H, W) of the first band filtered with ``display_filter`` for L), both
    NaN at nodata (:func:`~sar_colorizer.sar.radiometry.raw_to_relative`, then
    :mod:`sar_colorizer.sar.display`; "network": the network's input band)."""
    from sar_colorizer.sar.radiometry import raw_to_relative

    relative, _ = raw_to_relative(values, input_spec.normalization, scale, valid, references)
    return _filtered(relative, valid, input_spec, display_filter)


def _filtered(
    relative: np.ndarray, valid: np.ndarray, input_spec: InputSpec, display_filter: str
) -> tuple[np.ndarray, np.ndarray]:
    """Relative intensity -> (speckle-filtered for the network, display-filtered for L)."""
    from sar_colorizer.sar.speckle import apply_speckle_filter

    display = None
    if display_filter != "network":
        from sar_colorizer.sar.display import apply_display_filter

        display = apply_display_filter(relative[0], valid, display_filter)
    if input_spec.speckle_filter.name != "none":
        relative = np.asarray(
            apply_speckle_filter(relative, input_spec.speckle_filter), dtype=np.float32
        )
    # (Already NaN there through to_linear_power's mask; boolean indexing would cost 5x more.)
    np.copyto(relative, np.float32(np.nan), where=~valid)
    return relative, relative[0] if display is None else display


def check_values(values: np.ndarray, valid: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``values`` as ``(C, H, W)`` (a 2-D image gets one band) and ``valid`` as a bool mask.

    Raises:
        InputError: The shapes are not an image and its mask.
    """
    values = np.asarray(values)
    if values.ndim == 2:
        values = values[None]
    if values.ndim != 3:
        raise InputError(f"SAR values must be (bands, height, width); got shape {values.shape}")
    valid = np.asarray(valid, dtype=bool)
    if valid.shape != values.shape[1:]:
        raise InputError(f"valid mask {valid.shape} does not match the image {values.shape[1:]}")
    return values, valid


def to_model_input(
    relative: np.ndarray, present: Sequence[bool] | None = None
) -> np.ndarray:
    """(C, H, W) with NaN nodata -> (H, W, C) contiguous float32 with 0 at nodata.

    With ``present`` (a model of optional bands; the C bands are its present ones, in its
    order): ``(H, W, 2 n)`` for its ``n`` bands, one SAR channel per band (0 where absent),
    then one presence channel per band (1 present, 0 absent).
    """
    if present is None:
        return np.ascontiguousarray(np.nan_to_num(relative, nan=0.0).transpose(1, 2, 0))
    slots = [index for index, here in enumerate(present) if here]
    if len(slots) != relative.shape[0]:
        raise InputError(f"{relative.shape[0]} band(s) given for {len(slots)} present band(s)")
    n = len(present)
    out = np.zeros((*relative.shape[1:], 2 * n), np.float32)
    for band, slot in enumerate(slots):
        out[..., slot] = np.nan_to_num(relative[band], nan=0.0)
        out[..., n + slot] = 1.0
    return out


def db_feature(relative: np.ndarray) -> np.ndarray:
    """float32 SAR dB feature in [0, 1]
    (:func:`~sar_colorizer.sar.radiometry.relative_to_feature`) of relative intensity."""
    from sar_colorizer.sar.radiometry import relative_to_feature

    return np.asarray(relative_to_feature(relative), dtype=np.float32)


def scene_statistics(
    values: np.ndarray,
    valid: np.ndarray,
    input_spec: InputSpec | Bundle,
    input_scale: str = "auto",
    display_filter: str = "network",
    reference: SceneReference | None = None,
) -> SceneStatistics:
    """Normalisation references and SAR feature quantiles of a whole image.

    Args:
        values: ``(C, H, W)`` raw SAR values (the whole image, or a decimated read of it).
        valid: ``(H, W)`` True where the data are valid.
        input_spec: A :class:`InputSpec` or a bundle.
        input_scale: "auto" (detected with
            :func:`~sar_colorizer.sar.radiometry.detect_input_scale`) or a scale name.
        display_filter: The filter L is made with (:mod:`sar_colorizer.sar.display`); the
            feature quantiles describe its output. "network": the bundle's speckle filter.
        reference: A fixed reference (:class:`~sar_colorizer.inference.reference.
            SceneReference`, with its values) used instead of the image's own; its feature
            quantiles, where it has them, replace the image's too.

    Returns:
        The :class:`SceneStatistics`.

    Raises:
        InputError: No valid pixel, no positive intensity, an unknown scale, or a fixed
            reference for a display image (or with neither one value nor one per band).
    """
    from sar_colorizer.sar.radiometry import raw_to_relative, relative_to_feature

    values, valid = check_values(values, valid)
    input_spec = _as_input_spec(input_spec)
    if not valid.any():
        raise InputError("the image has no valid pixels (all nodata)")
    scale = resolve_scale(values, valid, input_scale)
    if reference is not None:
        from sar_colorizer.inference.reference import check_calibrated

        check_calibrated(scale)
        if not reference.resolved:
            raise InputError(f"the reference of {reference.given} is not computed yet; "
                             "resolve the options against the bundle first")
        fixed: tuple[float, ...] | None = reference.for_bands(values.shape[0])
    else:
        fixed = None
    # The references come from the valid pixels (Normalization.reference raises, naming the
    # fix, where a band has none or none positive).
    relative, references = raw_to_relative(
        values, input_spec.normalization, scale, valid, fixed
    )
    if reference is not None and reference.feature_quantiles is not None:
        quantiles = np.asarray(reference.feature_quantiles, dtype=np.float64)
    else:
        _, display = _filtered(relative, valid, input_spec, display_filter)
        feature = np.asarray(relative_to_feature(display[valid]), dtype=np.float64)
        feature = feature[np.isfinite(feature)]
        quantiles = np.quantile(feature, _QUANTILE_LEVELS) if feature.size else _QUANTILE_LEVELS
    return SceneStatistics(
        input_scale=scale,
        references=tuple(references),
        feature_quantiles=np.asarray(quantiles, dtype=np.float64),
        valid_fraction=float(valid.mean()),
        reference_source=OWN_REFERENCE if reference is None else reference.describe(),
    )


def prepare_sar(
    values: np.ndarray,
    valid: np.ndarray,
    input_spec: InputSpec | Bundle,
    input_scale: str = "auto",
    reference: float | Sequence[float] | None = None,
) -> np.ndarray:
    """Raw SAR values -> the model's input: speckle-filtered relative intensity.

    Args:
        values: ``(C, H, W)`` raw values in ``input_scale`` (bands in model order).
        valid: ``(H, W)`` True where the data are valid.
        input_spec: The bundle (its normalisation and speckle filter are used) or a
            :class:`InputSpec`.
        input_scale: "auto" or one of :data:`sar_colorizer.sar.radiometry.INPUT_SCALES`.
        reference: Linear power that maps to relative intensity 1, one for all bands or one
            per band; None computes it from this image (the 99th percentile of valid pixels).
            Pass the scene's reference when ``values`` is only a part of a scene.

    Returns:
        ``(H, W, C)`` float32 in [0, 1], 0 at invalid pixels.

    Raises:
        InputError: Shapes do not match, no valid pixel, or an unknown scale.
    """
    values, valid = check_values(values, valid)
    input_spec = _as_input_spec(input_spec)
    if reference is None:
        stats = scene_statistics(values, valid, input_spec, input_scale)
        scale, references = stats.input_scale, stats.references
    else:
        scale = resolve_scale(values, valid, input_scale)
        references = (
            tuple(float(r) for r in reference)
            if isinstance(reference, Sequence | np.ndarray)
            else (float(reference),) * values.shape[0]
        )
        if len(references) != values.shape[0]:
            raise InputError(f"{len(references)} references given for {values.shape[0]} bands")
    relative, _ = relative_and_display(values, valid, scale, references, input_spec, "network")
    return to_model_input(relative)
