"""Everything a streamed colorisation decides before it reads the first strip.

:func:`plan_raster` resolves the options against the bundle, checks the outputs, reads the
raster's header, matches its bands to the model and computes the scene statistics from one
decimated read of the whole raster (:func:`~sar_colorizer.inference.scene.stats_shape`), as
:func:`resolve_reference` does for a raster whose reference every scene shares; the result holds the scene's :class:`~sar_colorizer.inference.core.SceneColourer` (tiling
resampled to the training pixel size where the input's pixels differ).
"""

from __future__ import annotations

import dataclasses
import logging
import os
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sar_colorizer.errors import InputError
from sar_colorizer.inference.core import SceneColourer
from sar_colorizer.inference.reference import SceneReference, check_calibrated
from sar_colorizer.inference.scene import stats_shape

if TYPE_CHECKING:
    from collections.abc import Sequence

    from sar_colorizer.bundle import Bundle
    from sar_colorizer.inference.options import ColourOptions, Recipe
    from sar_colorizer.inference.outputs import RasterOutputs
    from sar_colorizer.inference.scene import SceneStatistics
    from sar_colorizer.io.dataset import RasterInfo

logger = logging.getLogger(__name__)

__all__ = ["RasterPlan", "matched_bands", "plan_raster", "read_statistics", "resolve_reference"]


@dataclass(frozen=True)
class RasterPlan:
    """What :func:`~sar_colorizer.inference.raster.colorize_raster` streams with.

    Attributes:
        in_path: The input (a string for a GDAL virtual path or URL).
        info: Its header.
        band_indexes: 1-based bands fed to the model, in the model's order.
        colourer: The scene's colourer (recipe, statistics, tile grid, tone table).
        band_names: The name of each of those bands (the options' ``band_names``, else their
            descriptions or the file name's polarisation, else ``band<i>``).
    """

    in_path: Path | str
    info: RasterInfo
    band_indexes: tuple[int, ...]
    colourer: SceneColourer
    band_names: tuple[str, ...] = ()

    @property
    def stats(self) -> SceneStatistics:
        """The scene's statistics."""
        return self.colourer.stats

    @property
    def recipe(self) -> Recipe:
        """The options resolved against the bundle."""
        return self.colourer.recipe


def plan_raster(
    bundle: Bundle, in_path: Path | str, outputs: RasterOutputs, options: ColourOptions
) -> RasterPlan:
    """Check the options and outputs and plan the streaming (arguments as for
    :func:`~sar_colorizer.inference.raster.colorize_raster`).

    Raises:
        As :func:`~sar_colorizer.inference.raster.colorize_raster`, before any output is made.
    """
    from sar_colorizer.io.bands import resolve_bands, sar_band_names
    from sar_colorizer.io.dataset import read_info
    from sar_colorizer.io.pixel_size import pixel_size_metres

    if outputs.confidence is not None and not bundle.has_confidence:
        raise InputError(
            f"model {bundle.path or ''} has no confidence head: --confidence needs a model "
            "trained with one (sarcolor train adds it by default)"
        )
    recipe = options.resolve(bundle, sigma=outputs.confidence is not None)
    outputs.check(in_path)
    info = read_info(in_path)
    band_indexes = list(resolve_bands(info, options.bands))  # None: every band but alpha
    names = dict(zip(band_indexes, options.names_of(sar_band_names(info, band_indexes), in_path),
                     strict=True))
    band_indexes, recipe = matched_bands(bundle, recipe, band_indexes, list(names.values()))
    pixel_size = pixel_size_metres(info.crs, info.transform, info.width, info.height)
    stats = read_statistics(in_path, info, band_indexes, recipe)
    colourer = SceneColourer.for_scene(recipe, stats, info.height, info.width, pixel_size)
    if colourer.factor != 1.0:
        logger.info(
            "%s: %.4g m pixels; the network sees them resampled to its %.4g m training pixels",
            in_path, options.pixel_size or pixel_size, recipe.model_pixel_size,
        )
    return RasterPlan(in_path, info, tuple(band_indexes), colourer,
                      tuple(names[b] for b in band_indexes))


def matched_bands(
    bundle: Bundle, recipe: Recipe, band_indexes: list[int], names: Sequence[str | None]
) -> tuple[list[int], Recipe]:
    """The bands (1-based) of an input that feed the model, in its order, and the recipe for
    them (:meth:`~sar_colorizer.bundle.Bundle.input_layout`: a model of optional bands takes
    those of its polarisations the input has).

    Raises:
        ModelMismatchError: The bands do not match the model's.
    """
    positions, present = bundle.input_layout(len(band_indexes), names)
    return [band_indexes[p] for p in positions], recipe.for_input(present)


def read_statistics(
    in_path: Path | str, info: RasterInfo, band_indexes: list[int], recipe: Recipe
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
    stats = recipe.statistics(small, small_valid)
    sar_warnings(in_path, [info.descriptions[b - 1] for b in band_indexes], small, small_valid,
                 stats.input_scale)
    logger.info(
        "%s: %d x %d px, bands %s, input scale %s%s, reference %s (linear power; %s)",
        in_path,
        info.width,
        info.height,
        ",".join(map(str, band_indexes)),
        stats.input_scale,
        " (detected)" if recipe.options.input_scale == "auto" else "",
        ", ".join(f"{r:.4g}" for r in stats.references),
        stats.reference_source,
    )
    return stats


_CACHE: dict[tuple[Any, ...], SceneReference] = {}
_CACHE_LOCK = threading.Lock()


def resolve_reference(
    reference: SceneReference | None, bundle: Bundle, options: ColourOptions
) -> SceneReference | None:
    """``reference`` with its values: a raster's are computed as ``predict`` computes them
    for that raster (its bands matched to the model, one decimated read, ``options``' input
    scale and filters), once per process and raster version.

    Raises:
        RasterError: The raster is missing or unreadable.
        InputError: It is a display image, has no valid pixel, or its bands do not match.
        ModelMismatchError: Its bands do not match the model's.
    """
    if reference is None or reference.resolved:
        return reference
    path = reference.given
    try:
        stat = os.stat(path)
        version: tuple[Any, ...] = (stat.st_mtime_ns, stat.st_size)
    except OSError:
        version = ()
    bands = options.bands if isinstance(options.bands, str | int | None) else tuple(options.bands)
    key = (path, version, repr(bundle.normalization), repr(bundle.speckle_filter), bands,
           options.band_names, options.input_scale, options.display_filter,
           tuple(bundle.bands))
    with _CACHE_LOCK:
        found = _CACHE.get(key)
    if found is None:
        found = _raster_reference(path, bundle, options)
        with _CACHE_LOCK:
            _CACHE[key] = found
    return found


def _raster_reference(path: str, bundle: Bundle, options: ColourOptions) -> SceneReference:
    from sar_colorizer.io.bands import resolve_bands, sar_band_names
    from sar_colorizer.io.dataset import input_path, read_info
    from sar_colorizer.io.sar_input import open_sar_input

    own = dataclasses.replace(options, reference=None)
    names = None if isinstance(options.bands, int) else options.bands  # products: names only
    with tempfile.TemporaryDirectory(prefix="sarcolor-reference-") as workdir, \
            open_sar_input(path, None, bands=names, progress=False,
                           workdir=workdir) as sar:
        own = dataclasses.replace(own, input_scale=sar.input_scale(options.input_scale))
        recipe = own.resolve(bundle)
        raster = input_path(sar.path)
        info = read_info(raster)
        band_indexes = list(resolve_bands(info, own.bands))
        band_indexes, recipe = matched_bands(
            bundle, recipe, band_indexes, own.names_of(sar_band_names(info, band_indexes), path)
        )
        stats = read_statistics(raster, info, band_indexes, recipe)
    check_calibrated(stats.input_scale, f"--reference-from {path}")
    return SceneReference(
        values=tuple(stats.references),
        source="raster",
        given=path,
        feature_quantiles=tuple(float(q) for q in stats.feature_quantiles),
    )
