"""Colorize a SAR image held in memory (evaluation, notebooks, small images): the whole image
is one window of :class:`~sar_colorizer.inference.core.SceneColourer`."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, cast

import numpy as np

from sar_colorizer.errors import InputError
from sar_colorizer.inference.colour import AB_SCALE
from sar_colorizer.inference.core import Prepared, SceneColourer
from sar_colorizer.inference.options import ColourOptions
from sar_colorizer.inference.runner import ModelRunner
from sar_colorizer.inference.scene import SceneStatistics, check_values, db_feature
from sar_colorizer.io.tiling import reflect_pad_window

if TYPE_CHECKING:
    from sar_colorizer.bundle import Bundle

__all__ = ["colorize_array"]


def _pad_to_multiple(image: np.ndarray, multiple: int) -> np.ndarray:
    height, width = image.shape[:2]
    pad_h, pad_w = (-height) % multiple, (-width) % multiple
    if not (pad_h or pad_w):
        return image
    return reflect_pad_window(image, 0, 0, 0, height + pad_h, width + pad_w, height, width)


def _predict_ab_whole(
    runner: ModelRunner,
    relative: np.ndarray,
    multiple: int,
    guide: np.ndarray | None = None,
    transform: Callable[[np.ndarray], np.ndarray] | None = None,
) -> np.ndarray:
    """Normalised AB for a whole image in one forward pass (padded to the model's multiple)."""
    height, width = relative.shape[:2]
    padded = _pad_to_multiple(relative, multiple)
    padded_guide = None if guide is None else _pad_to_multiple(guide, multiple)[None]
    return runner(padded[None], guide=padded_guide, transform=transform)[0, :height, :width]


def _tiled(tile_size: int | str | None) -> bool:
    """Whether ``colorize_array``'s ``tile_size`` asks for tiles (else one whole-image pass)."""
    if isinstance(tile_size, str) and tile_size != "model":
        raise InputError(
            f"tile_size must be 'model', a number of pixels or None, not {tile_size!r}"
        )
    return tile_size is not None


def colorize_array(
    bundle: Bundle,
    values: np.ndarray,
    valid: np.ndarray,
    options: ColourOptions | None = None,
    *,
    stats: SceneStatistics | None = None,
    tile_size: int | str | None = "model",
    band_names: Sequence[str | None] | None = None,
    **settings: Any,
) -> dict[str, np.ndarray]:
    """Colorize a SAR image held in memory (evaluation, notebooks, small images).

    The whole image is one window of the scene's
    :class:`~sar_colorizer.inference.core.SceneColourer`: the preprocessing, tiling and
    blending, tone curve and colour conversion of
    :func:`~sar_colorizer.inference.raster.colorize_raster`, which gives the same result for
    rasters no larger than :data:`~sar_colorizer.inference.scene.STATS_MAX_SIDE`.

    Args:
        bundle: A loaded :class:`~sar_colorizer.bundle.Bundle`.
        values: ``(C, H, W)`` raw SAR values, bands in the model's order (for a model of
            optional bands, :attr:`~sar_colorizer.bundle.Bundle.optional_bands`, any of its
            bands, named by ``band_names``).
        valid: ``(H, W)`` True where the data are valid.
        options: The :class:`~sar_colorizer.inference.options.ColourOptions` (their defaults
            are ``predict``'s); ``bands`` does not apply.
        stats: Scene statistics to use instead of this image's own (e.g. when ``values`` is a
            crop of a larger scene).
        tile_size: ``"model"``: tiles of the options' size (by default the size the network was
            trained on), as ``predict``; an int: tiles of that size (rounded to the model's
            multiple); None: the whole image through the model at once (padded to the
            multiple), which on images larger than the training tiles gives other colours.
        settings: Options by name, over ``options`` (e.g. ``tone="matched"``, ``overlap=16``,
            ``batch_size`` for ``tiles_per_call``).
        band_names: The polarisation of each band of ``values`` (``["VV", "VH"]``), for a
            model of optional bands: those it takes are used, in its order
            (:meth:`~sar_colorizer.bundle.Bundle.input_layout`). None: the model's bands in
            its order (one unnamed band: its first, with a warning); the options'
            ``band_names`` where given.

    Returns:
        ``{"rgb": uint8 (H, W, 3) (0 at nodata), "lab": float32 (H, W, 3), "ab": float32
        (H, W, 2) in CIELAB units (predicted: before the chroma limit, which only shapes "rgb",
        as channel clipping did before it), "ab_shown": float32 (H, W, 2) the a*, b* "rgb"
        shows (after the chroma limit), "feature": float32 (H, W) SAR dB feature in [0, 1]
        of the model's input, "relative": float32 (H, W, C) model input, "display": float32
        (H, W) relative intensity that L is made from (0 at nodata), "valid": bool (H, W)}``,
        and for a model with a confidence head ``"sigma"``: float32 (H, W) predicted standard
        deviation of a*, b* in CIELAB units (NaN at nodata), and ``"ab_mean"``: float32
        (H, W, 2) the network's a*, b* before the shrink.

    Raises:
        InputError: Bad shapes, no valid pixels, unknown scale or tone.
        ModelMismatchError: The number of bands differs from the model's.
    """
    if _tiled(tile_size) and tile_size != "model":
        settings["tile_size"] = tile_size
    options = ColourOptions.of(options, **settings)
    values, valid = check_values(values, valid)
    if band_names is None and options.band_names is not None:
        band_names = options.names_of([None] * values.shape[0], "values")
    positions, present = bundle.input_layout(
        values.shape[0], band_names if bundle.optional_bands else None
    )
    if list(positions) != list(range(values.shape[0])):
        values = values[list(positions)]
    recipe = options.resolve(bundle, sigma=True, mean=True).for_input(present)
    if stats is None:
        stats = recipe.statistics(values, valid)
    height, width = valid.shape
    colourer = SceneColourer.for_scene(recipe, stats, height, width)
    prepared = colourer.prepare(values, valid)
    if _tiled(tile_size):
        outputs = colourer.stitcher(ModelRunner.for_bundle(bundle)).image(
            prepared.model_input, prepared.guide, prepared.valid
        )
    else:
        if colourer.factor != 1.0:
            raise InputError("a pixel size other than the model's needs tiled inference")
        outputs = _predict_ab_whole(
            ModelRunner.for_bundle(bundle), prepared.model_input, bundle.tile_multiple,
            prepared.guide, recipe.output_plan.transform,
        )
    return _results(colourer, prepared, outputs)


def _results(
    colourer: SceneColourer, prepared: Prepared, outputs: np.ndarray
) -> dict[str, np.ndarray]:
    """The arrays :func:`colorize_array` returns, from the blended network output."""
    parts = colourer.split(outputs)
    valid = prepared.valid
    converted, rgb = colourer.finish(
        prepared.display, parts["ab"], valid, prepared.bounds, with_lab=True
    )
    lab = cast(np.ndarray, converted)  # with_lab=True: never None
    present = colourer.recipe.input_spec.present
    first = 0 if present is None else list(present).index(True)  # the first band it has
    feature = db_feature(prepared.model_input[..., first])
    feature[~valid] = 0.0
    result = {
        "rgb": rgb,
        "lab": lab,
        "ab": np.ascontiguousarray(lab[..., 1:]),
        "ab_shown": colourer.shown_ab(lab, prepared.bounds),
        "feature": feature,
        "relative": prepared.model_input,
        "display": prepared.display,
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
