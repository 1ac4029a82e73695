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
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sar_colorizer.inference.options import ColourOptions
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
    options: ColourOptions | None = None,
    *,
    driver: str | None = None,
    ab_path: str | os.PathLike[str] | None = None,
    quicklook_path: str | os.PathLike[str] | None = None,
    confidence_path: str | os.PathLike[str] | None = None,
    overwrite: bool = False,
    progress: bool = True,
    creation_options: dict[str, str] | None = None,
    product_options: ProductOptions | None = None,
    **settings: Any,
) -> PredictSummary:
    """Colorize a SAR raster of any size, streaming it tile row by tile row.

    The scene is never loaded whole: statistics come from one decimated read
    (:data:`~sar_colorizer.inference.scene.STATS_MAX_SIDE` px on the long side), then strips of
    ``tile_size`` rows (plus a speckle-filter halo) are read, preprocessed, cut into
    reflect-padded overlapping tiles, run through the model in batches and blended; finished
    rows are converted to colour and written. The output keeps the source's CRS and transform
    (GeoTIFF tags, or an .aux.xml / world file beside a PNG or JPEG), has an alpha band that is
    0 exactly on nodata (PNG, GeoTIFF, COG; JPEG has no alpha: nodata is black) and is written
    atomically.

    Args:
        bundle: A loaded :class:`~sar_colorizer.bundle.Bundle`.
        in_path: SAR raster readable by GDAL, or a Sentinel-1 GRD product (``.SAFE`` folder,
            ``manifest.safe``, ``.zip``), calibrated and geocoded first
            (:func:`sar_colorizer.io.sar_input.open_sar_input`).
        out_path: Colorized output; driver from the extension (.png, .jpg/.jpeg, .tif/.tiff)
            unless ``driver`` is given.
        options: How the scene is coloured
            (:class:`~sar_colorizer.inference.options.ColourOptions`, ``predict``'s defaults).
            The pixel size comes from the georeference unless the options give one (or the
            model's training pixel size where the raster has none); the network sees tiles
            resampled to the training pixel size, the output keeps the input's grid.
        driver: GDAL driver ("PNG", "JPEG", "GTiff", "COG") to override the extension.
        ab_path: Also write the predicted AB (CIELAB units) as a float32 2-band GeoTIFF, NaN
            on nodata.
        quicklook_path: Also write a side-by-side PNG (SAR | colorised), at most 2048 px wide.
        confidence_path: Also write the predicted standard deviation of a*, b* in CIELAB units
            (:func:`sar_colorizer.confidence.predicted_sigma`; small = sure) as a float32
            1-band GeoTIFF on the output grid, NaN (nodata) where the input is nodata. Needs a
            model with a confidence head.
        overwrite: Replace existing outputs.
        progress: Show progress on stderr (a bar on a terminal, a line now and then elsewhere).
        creation_options: GDAL creation options for the output driver.
        product_options: Calibration and noise removal of a Sentinel-1 product
            (:class:`~sar_colorizer.io.s1product.ProductOptions`); None: sigma0, noise removed.
        settings: Options by name, over ``options`` (``tone="matched"``, ``bands="VH"``,
            ``batch_size`` for ``tiles_per_call``, ...).

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
    from sar_colorizer.sar.polarisation import POLARISATIONS
    from sar_colorizer.sar.product import is_product_path

    started = time.perf_counter()
    options = ColourOptions.of(options, **settings)
    if options.chroma_limit:
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
    if options.bands is None and is_product_path(in_path) and all(
        band.upper() in POLARISATIONS for band in bundle.bands
    ):  # a product holds every polarisation: read (and calibrate) the model's
        options = ColourOptions.of(options, bands=",".join(_product_bands(bundle, in_path)))
    # A product becomes a temporary backscatter raster; an RTC GeoTIFF brings its own scale.
    with open_sar_input(in_path, product_options, bands=options.bands, progress=progress,
                        workdir=outputs.colour.parent) as sar:
        requested = options.input_scale
        options = ColourOptions.of(options, input_scale=sar.input_scale(requested))
        plan = plan_raster(bundle, input_path(sar.path), outputs, options)  # strings: GDAL's
        outputs = dataclasses.replace(outputs, tags=sar.output_tags(
            plan.stats.input_scale, requested, plan.band_names,
            plan.stats.references, plan.stats.reference_source))
        stages = dict.fromkeys(
            ("statistics", "read + preprocess", "model + blend", "colour + write",
             "read + preprocess, cpu", "colour + write, cpu"),
            0.0,
        )
        stages["statistics"] = time.perf_counter() - started
        quicklook = stream_raster(
            plan, ModelRunner.for_bundle(bundle), outputs, stages,
            progress=progress, started=started,
        )
    if quicklook is not None and outputs.quicklook is not None:
        write_png(outputs.quicklook, quicklook.image(), overwrite)
    return _summary(plan, outputs, time.perf_counter() - started, stages)


def _product_bands(bundle: Bundle, in_path: str | os.PathLike[str]) -> list[str]:
    """The polarisations to calibrate of a Sentinel-1 product: the model's, and for a model of
    optional bands those of them the product has.

    Raises:
        ModelMismatchError: The product lacks a polarisation the model needs (any of them, for
            a model of optional bands), as an HH/HV product (EW or IW 1SDH) does for a VH model;
            raised before anything is calibrated or written.
    """
    from sar_colorizer.errors import ModelMismatchError
    from sar_colorizer.sar.product import open_product

    held = open_product(in_path).polarisations
    present = [band for band in bundle.bands if band.upper() in held]
    if present and (bundle.optional_bands or len(present) == len(bundle.bands)):
        return present
    needed = (" or " if bundle.optional_bands else " and ").join(bundle.bands)
    raise ModelMismatchError(
        f"{in_path}: the product holds {', '.join(held)}, the model reads {needed}: colorize a "
        f"product that holds {needed} (a VV/VH product, 1SDV), or pass --model a model "
        f"trained on {' or '.join(held)}"
    )


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
        tone=plan.recipe.tone,
        tile_size=plan.colourer.grid.tile_size,
        overlap=plan.recipe.overlap,
        tiles=len(plan.colourer.grid),
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
        len(plan.colourer.grid),
        seconds,
        summary.megapixels_per_second,
    )
    return summary
