"""Colorize a SAR raster of any size on disk: plan -> stream -> finish.

:func:`~sar_colorizer.inference.plan.plan_raster` checks everything and computes the scene
statistics, :func:`~sar_colorizer.inference.stream.stream_raster` colours the scene strip by
strip into the outputs, and :func:`colorize_raster` then writes the quicklook and reports what
it did (:class:`PredictSummary`).
"""

from __future__ import annotations

import dataclasses
import logging
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from sar_colorizer.inference.colour import DISPLAY_FILTER
from sar_colorizer.inference.outputs import RasterOutputs
from sar_colorizer.inference.plan import plan_raster
from sar_colorizer.inference.quicklook import write_png
from sar_colorizer.inference.runner import ModelRunner
from sar_colorizer.inference.stream import stream_raster

if TYPE_CHECKING:
    from sar_colorizer.bundle import Bundle
    from sar_colorizer.inference.plan import RasterPlan
    from sar_colorizer.io.s1product import ProductOptions

logger = logging.getLogger(__name__)

__all__ = ["PredictSummary", "colorize_raster"]


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


def colorize_raster(
    bundle: Bundle,
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
    product_options: ProductOptions | None = None,
) -> PredictSummary:
    """Colorize a SAR raster of any size, streaming it tile row by tile row.

    The scene is never loaded whole: statistics come from one decimated read
    (:data:`~sar_colorizer.inference.scene.STATS_MAX_SIDE` px on the long side), then strips of
    ``tile_size`` rows (plus a speckle-filter halo) are read, preprocessed, cut into
    reflect-padded overlapping tiles, run through the model in batches of ``batch_size`` and
    blended; finished rows are converted to colour and written. The output keeps the source's
    CRS and transform (GeoTIFF tags, or an .aux.xml / world file beside a PNG or JPEG), has an
    alpha band that is 0 exactly on nodata (PNG, GeoTIFF, COG; JPEG has no alpha: nodata is
    black) and is written atomically.

    Args:
        bundle: A loaded :class:`~sar_colorizer.bundle.Bundle`.
        in_path: SAR raster readable by GDAL, or a Sentinel-1 GRD product (``.SAFE`` folder,
            ``manifest.safe``, ``.zip``), calibrated and geocoded first
            (:func:`sar_colorizer.io.sar_input.open_sar_input`).
        out_path: Colorized output; driver from the extension (.png, .jpg/.jpeg, .tif/.tiff)
            unless ``driver`` is given.
        bands: Band(s) fed to the model: names ("VH", "VV,VH", matched against band
            descriptions or the file name) or 1-based numbers ("1"); None takes all bands.
        input_scale: "auto" (detected, logged) or "linear", "db", "amplitude", "display".
        tone: "balanced", "matched" (L quantile-matched to the training optical L) or "sar"
            (:mod:`~sar_colorizer.inference.tone`).
        tile_size: Tile side, rounded to the model's ``tile_multiple``; None takes the size the
            network was trained on (:attr:`~sar_colorizer.bundle.Bundle.tile_size`).
        overlap: Overlap of neighbouring tiles in pixels (at most half a tile); None:
            :func:`~sar_colorizer.io.tiling.default_overlap` (an eighth of the tile).
        batch_size: Most tiles per model call; None: about a megapixel per call
            (:func:`~sar_colorizer.inference.runner.tiles_per_call`).
        driver: GDAL driver ("PNG", "JPEG", "GTiff", "COG") to override the extension.
        ab_path: Also write the predicted AB (CIELAB units) as a float32 2-band GeoTIFF, NaN
            on nodata.
        quicklook_path: Also write a side-by-side PNG (SAR | colorised), at most 2048 px wide.
        overwrite: Replace existing outputs.
        progress: Show progress on stderr (a bar on a terminal, a line now and then elsewhere).
        creation_options: GDAL creation options for the output driver.
        confidence_path: Also write the predicted standard deviation of a*, b* in CIELAB units
            (:func:`sar_colorizer.confidence.predicted_sigma`; small = sure) as a float32
            1-band GeoTIFF on the output grid, NaN (nodata) where the input is nodata. Needs a
            model with a confidence head.
        shrink: Move a*, b* toward neutral where the model is unsure
            (:mod:`sar_colorizer.confidence`); None: on when the model has a confidence head.
        display_filter, colour_upsampling, chroma_limit: As for
            :func:`~sar_colorizer.inference.array.colorize_array`.
        pixel_size: Ground pixel size of the input in metres; None takes it from the
            georeference (:func:`~sar_colorizer.io.pixel_size.pixel_size_metres`), or the
            model's training pixel size where the raster has none. The network sees tiles
            resampled to the training pixel size; the output keeps the input's grid.
        product_options: Calibration and noise removal of a Sentinel-1 product
            (:class:`~sar_colorizer.io.s1product.ProductOptions`); None: sigma0, noise removed.

    Returns:
        A :class:`PredictSummary`.

    Raises:
        RasterError: The input is missing or not a raster.
        OutputExistsError: An output exists and ``overwrite`` is False.
        ModelMismatchError: The chosen bands do not match the model's.
        InputError: Bad options (tile size, overlap, scale, tone), an all-nodata input, or
            ``confidence_path`` / ``shrink=True`` for a model without a confidence head.
    """
    from sar_colorizer.io.dataset import input_path
    from sar_colorizer.io.sar_input import open_sar_input
    from sar_colorizer.sar.polarisation import POLARISATIONS, sar_band_names
    from sar_colorizer.sar.product import is_product_path

    started = time.perf_counter()
    if chroma_limit:
        from sar_colorizer.color.gamut import prepare_max_chroma_table

        prepare_max_chroma_table()  # ready by the time the first rows are coloured
    outputs = RasterOutputs(
        colour=Path(out_path),
        driver=driver,
        ab=None if ab_path is None else Path(ab_path),
        quicklook=None if quicklook_path is None else Path(quicklook_path),
        confidence=None if confidence_path is None else Path(confidence_path),
        overwrite=overwrite,
        creation_options=creation_options,
    )
    if bands is None and is_product_path(in_path) and all(
        band.upper() in POLARISATIONS for band in bundle.bands
    ):  # a product holds every polarisation: read (and calibrate) the model's
        bands = ",".join(bundle.bands)
    # A product becomes a temporary backscatter raster; an RTC GeoTIFF brings its own scale.
    with open_sar_input(in_path, product_options, bands=bands, progress=progress,
                        workdir=outputs.colour.parent) as sar:
        plan = plan_raster(
            bundle, input_path(sar.path), outputs, bands=bands,
            input_scale=sar.input_scale(input_scale), tone=tone,
            tile_size=tile_size, overlap=overlap, batch_size=batch_size, shrink=shrink,
            display_filter=display_filter, colour_upsampling=colour_upsampling,
            pixel_size=pixel_size,
        )
        outputs = dataclasses.replace(outputs, tags=sar.output_tags(
            plan.stats.input_scale, input_scale, sar_band_names(plan.info, plan.band_indexes),
            plan.stats.references))
        stages = dict.fromkeys(
            ("statistics", "read + preprocess", "model + blend", "colour + write",
             "read + preprocess, cpu", "colour + write, cpu"),
            0.0,
        )
        stages["statistics"] = time.perf_counter() - started
        quicklook = stream_raster(
            plan, ModelRunner.for_bundle(bundle), outputs, stages,
            chroma_limit=chroma_limit, progress=progress, started=started,
        )
    if quicklook is not None and outputs.quicklook is not None:
        write_png(outputs.quicklook, quicklook.image(), overwrite)
    return _summary(plan, outputs, time.perf_counter() - started, stages)


def _summary(
    plan: RasterPlan, outputs: RasterOutputs, seconds: float, stages: dict[str, float]
) -> PredictSummary:
    """The :class:`PredictSummary` of a finished call, logged."""
    info = plan.info
    summary = PredictSummary(
        input=plan.in_path,
        output=outputs.colour,
        width=info.width,
        height=info.height,
        bands=plan.band_indexes,
        input_scale=plan.stats.input_scale,
        tone=plan.tone,
        tile_size=plan.grid.tile_size,
        overlap=plan.overlap,
        tiles=len(plan.grid),
        references=plan.stats.references,
        valid_fraction=plan.stats.valid_fraction,
        seconds=seconds,
        ab_output=outputs.ab,
        quicklook=outputs.quicklook,
        stage_seconds=stages,
    )
    logger.debug(
        "%s: seconds per stage (threads overlap): %s",
        plan.in_path,
        ", ".join(f"{name} {value:.2f}" for name, value in stages.items()),
    )
    logger.info(
        "wrote %s (%d x %d px, %d tiles) in %.1f s, %.2f Mpx/s",
        outputs.colour,
        info.width,
        info.height,
        len(plan.grid),
        seconds,
        summary.megapixels_per_second,
    )
    return summary
