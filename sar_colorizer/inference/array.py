"""Colorize a SAR image held in memory (evaluation, notebooks, small images)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, cast

import numpy as np

from sar_colorizer.errors import InputError
from sar_colorizer.inference.colour import (
    AB_SCALE,
    DISPLAY_FILTER,
    ColourConverter,
    display_options,
)
from sar_colorizer.inference.runner import ModelRunner, tiles_per_call
from sar_colorizer.inference.scene import (
    InputSpec,
    SceneStatistics,
    check_values,
    db_feature,
    relative_and_display,
    scene_statistics,
    to_model_input,
)
from sar_colorizer.inference.tiles import TileStitcher, tile_settings, tiling_plan
from sar_colorizer.inference.tone import resolve_tone, tone_lut
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


def colorize_array(
    bundle: Bundle,
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
    chroma_envelope: int | None = None,
    pixel_size: float | None = None,
) -> dict[str, np.ndarray]:
    """Colorize a SAR image held in memory (evaluation, notebooks, small images).

    Uses exactly the preprocessing, tone curve and colour conversion of
    :func:`~sar_colorizer.inference.raster.colorize_raster`; with ``tile_size`` set it also uses
    the same tiling and blending, and then gives the same result as the streaming path for
    rasters no larger than :data:`~sar_colorizer.inference.scene.STATS_MAX_SIDE`.

    Args:
        bundle: A loaded :class:`~sar_colorizer.bundle.Bundle`.
        values: ``(C, H, W)`` raw SAR values, bands in the model's order.
        valid: ``(H, W)`` True where the data are valid.
        input_scale: "auto" or a scale of :data:`sar_colorizer.sar.radiometry.INPUT_SCALES`.
        tone: One of :data:`~sar_colorizer.inference.tone.TONES`.
        stats: Scene statistics to use instead of this image's own (e.g. when ``values`` is a
            crop of a larger scene).
        tile_size: ``"model"``: blend tiles of the size the network was trained on
            (:attr:`~sar_colorizer.bundle.Bundle.tile_size`), as ``predict`` does; an int: tiles
            of that size (rounded to the model's multiple); None: the whole image through the
            model at once (padded to the multiple), which on images larger than the training
            tiles gives other colours.
        overlap: Tile overlap in pixels (tiled mode); None:
            :func:`~sar_colorizer.io.tiling.default_overlap` of the tile.
        batch_size: Most tiles per model call (tiled mode); None: about a megapixel per call
            (:func:`~sar_colorizer.inference.runner.tiles_per_call`).
        shrink: Move a*, b* toward neutral where the model is unsure
            (:mod:`sar_colorizer.confidence`); None: on when the model has a confidence head.
        display_filter: Filter of the SAR that L is made from
            (:data:`~sar_colorizer.sar.display.DISPLAY_FILTERS`; "network": the bundle's
            speckle filter, which always feeds the network).
        colour_upsampling: "guided" (the network's low-resolution AB follows the edges of L,
            :mod:`sar_colorizer.color.upsampling`) or "bilinear".
        chroma_limit: Cap chroma to the sRGB gamut at each pixel's L and hue
            (:mod:`sar_colorizer.color.gamut`) instead of clipping RGB channels.
        chroma_envelope: Radius in pixels of the L envelope the cap is also taken over
            (:func:`~sar_colorizer.color.gamut.lightness_envelope`; 0: each pixel's own L only);
            None: :data:`~sar_colorizer.color.gamut.ENVELOPE_RADIUS`, as ``predict``.
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

    values, valid = check_values(values, valid)
    bundle.check_input(values.shape[0])
    plan = OutputPlan.for_bundle(bundle, shrink, sigma=True, mean=True)
    display_filter, colour_upsampling = display_options(display_filter, colour_upsampling)
    factor = resample_factor(pixel_size, bundle.pixel_size)
    input_spec = InputSpec.from_bundle(bundle)
    tone, l_quantiles = resolve_tone(bundle, tone)
    if stats is None:
        stats = scene_statistics(values, valid, input_spec, input_scale, display_filter)
    relative, display = relative_and_display(
        values, valid, stats.input_scale, stats.references, input_spec, display_filter
    )
    model_input = to_model_input(relative)
    display = np.nan_to_num(display, nan=0.0)
    guide = db_feature(display) if colour_upsampling == "guided" else None
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
            ModelRunner.for_bundle(bundle), model_input, bundle.tile_multiple, guide,
            plan.transform,
        )
    else:
        height, width = valid.shape
        tile_size, overlap = tile_settings(bundle, tile_size, overlap)
        net_tile, grid = tiling_plan(bundle, height, width, tile_size, overlap, factor)
        stitcher = TileStitcher(
            ModelRunner.for_bundle(bundle),
            grid,
            plan.n_channels,
            tiles_per_call(grid.n_cols, net_tile, batch_size),
            net_tile,
            plan.transform,
        )
        outputs = stitcher.image(model_input, guide, valid)
    parts = plan.split(outputs)
    ab_norm = parts["ab"]
    lut = tone_lut(tone, stats.feature_quantiles, l_quantiles)
    converter = ColourConverter.shared(chroma_limit, chroma_envelope)
    bounds = converter.bounds(display, valid, guide)  # guide: display's dB feature, if made
    converted, rgb = converter(display, ab_norm, valid, lut, bounds=bounds)
    lab = cast(np.ndarray, converted)  # with_lab=True: never None
    ab = np.ascontiguousarray(lab[..., 1:])
    feature = db_feature(model_input[..., 0])
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
