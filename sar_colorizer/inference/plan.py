"""Everything a streamed colorisation decides before it reads the first strip.

:func:`plan_raster` checks the outputs and options, reads the raster's header, matches its
bands to the model, chooses the tiling (resampled to the training pixel size where the input's
pixels differ) and computes the scene statistics from one decimated read of the whole raster
(:func:`~sar_colorizer.inference.scene.stats_shape`).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from sar_colorizer.errors import InputError
from sar_colorizer.inference.colour import display_options
from sar_colorizer.inference.runner import tiles_per_call
from sar_colorizer.inference.scene import (
    InputSpec,
    SceneStatistics,
    scene_statistics,
    stats_shape,
)
from sar_colorizer.inference.tiles import tile_settings, tiling_plan
from sar_colorizer.inference.tone import resolve_tone, tone_lut
from sar_colorizer.io.tiling import TileGrid, round_tile_size

if TYPE_CHECKING:
    from sar_colorizer.bundle import Bundle
    from sar_colorizer.confidence import OutputPlan
    from sar_colorizer.inference.outputs import RasterOutputs
    from sar_colorizer.io.dataset import RasterInfo

logger = logging.getLogger(__name__)

__all__ = ["RasterPlan", "plan_raster"]


@dataclass(frozen=True)
class RasterPlan:
    """What :func:`~sar_colorizer.inference.raster.colorize_raster` streams with.

    Attributes:
        in_path: The input (a string for a GDAL virtual path or URL).
        info: Its header.
        band_indexes: 1-based bands fed to the model, in the model's order.
        input_spec: The bundle's normalisation and speckle filter.
        stats: Scene statistics (from the decimated read).
        tone: Tone used for L (after falling back to "sar" for bundles without a curve).
        lut: The scene's tone table.
        output_plan: What is kept of the network's output (confidence channels, shrink).
        grid: Tiles on the input's pixels.
        net_tile: Tile side the network sees.
        overlap: Requested tile overlap in training pixels.
        per_call: Tiles per model call.
        halo: Rows a strip reads beyond its tiles, for the speckle and display filters.
        display_filter: Filter of the SAR that L is made from.
        guided: Upsample the network's AB guided by the displayed SAR (else bilinearly).
    """

    in_path: Path | str
    info: RasterInfo
    band_indexes: tuple[int, ...]
    input_spec: InputSpec
    stats: SceneStatistics
    tone: str
    lut: np.ndarray
    output_plan: OutputPlan
    grid: TileGrid
    net_tile: int
    overlap: int
    per_call: int
    halo: int
    display_filter: str
    guided: bool


def plan_raster(
    bundle: Bundle,
    in_path: Path | str,
    outputs: RasterOutputs,
    *,
    bands: str | Sequence[str | int] | None,
    input_scale: str,
    tone: str,
    tile_size: int | None,
    overlap: int | None,
    batch_size: int | None,
    shrink: bool | None,
    display_filter: str,
    colour_upsampling: str,
    pixel_size: float | None,
) -> RasterPlan:
    """Check the options and outputs and plan the streaming (arguments as for
    :func:`~sar_colorizer.inference.raster.colorize_raster`).

    Raises:
        As :func:`~sar_colorizer.inference.raster.colorize_raster`, before any output is made.
    """
    from sar_colorizer.confidence import OutputPlan
    from sar_colorizer.io.bands import resolve_bands
    from sar_colorizer.io.dataset import read_info
    from sar_colorizer.io.pixel_size import pixel_size_metres, resample_factor
    from sar_colorizer.sar.display import display_halo
    from sar_colorizer.sar.polarisation import sar_band_names

    if outputs.confidence is not None and not bundle.has_confidence:
        raise InputError(
            f"model {bundle.path or ''} has no confidence head: --confidence needs a model "
            "trained with one (sarcolor train adds it by default)"
        )
    output_plan = OutputPlan.for_bundle(bundle, shrink, sigma=outputs.confidence is not None)
    outputs.check(in_path)
    display_filter, colour_upsampling = display_options(display_filter, colour_upsampling)
    info = read_info(in_path)
    band_indexes = list(resolve_bands(info, bands))  # None: every band but alpha
    bundle.check_input(len(band_indexes), sar_band_names(info, band_indexes))
    input_spec = InputSpec.from_bundle(bundle)
    tone, l_quantiles = resolve_tone(bundle, tone)
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
    net_tile, grid = tiling_plan(bundle, info.height, info.width, tile_size, overlap, factor)
    per_call = tiles_per_call(grid.n_cols, net_tile, batch_size)
    stats = _read_statistics(
        in_path, info, band_indexes, input_spec, input_scale, display_filter
    )
    return RasterPlan(
        in_path=in_path,
        info=info,
        band_indexes=tuple(band_indexes),
        input_spec=input_spec,
        stats=stats,
        tone=tone,
        lut=tone_lut(tone, stats.feature_quantiles, l_quantiles),
        output_plan=output_plan,
        grid=grid,
        net_tile=net_tile,
        overlap=overlap,
        per_call=per_call,
        halo=max(input_spec.halo, display_halo(display_filter)),
        display_filter=display_filter,
        guided=colour_upsampling == "guided",
    )


def _read_statistics(
    in_path: Path | str,
    info: RasterInfo,
    band_indexes: list[int],
    input_spec: InputSpec,
    input_scale: str,
    display_filter: str,
) -> SceneStatistics:
    """Scene statistics from one decimated read of the whole raster; warns about implausible
    SAR values and logs what it found."""
    from sar_colorizer.io.raster import read_raster
    from sar_colorizer.sar.plausibility import sar_warnings

    shape = stats_shape(info.height, info.width)
    small, small_valid = read_raster(
        in_path, bands=band_indexes, out_shape=(len(band_indexes),) + shape
    )
    if not small_valid.any():
        raise InputError(f"{in_path}: no valid pixels (everything is nodata)")
    stats = scene_statistics(small, small_valid, input_spec, input_scale, display_filter)
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
    return stats
