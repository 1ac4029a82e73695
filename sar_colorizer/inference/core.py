"""The colour recipe, written once: an object that colours one window of a scene.

A :class:`SceneColourer` is a :class:`~sar_colorizer.inference.options.Recipe` (the options
resolved against the bundle) with what the scene decides: its statistics, its tile grid and its
tone table. Every way of colouring is a scheduler that chooses windows and destinations and
calls its stages, each of which lives in one place:

1. statistics and reference: :meth:`~sar_colorizer.inference.options.Recipe.statistics`
   (:mod:`~sar_colorizer.inference.scene`), before the colourer exists;
2. network input: :meth:`SceneColourer.prepare` turns raw values of a window (with the filters'
   halo around it) into the network's input and the source of L (:class:`Prepared`);
3. tiling and blending: the scene's grid (:mod:`~sar_colorizer.inference.tiles`,
   :mod:`sar_colorizer.io.tiling`), by rows of tiles (:meth:`SceneColourer.stitcher`, for
   streams and whole images) or restricted to a window (:meth:`SceneColourer.infer_window`,
   for dask chunks);
4. the network: one :class:`~sar_colorizer.inference.runner.ModelRunner` that the scheduler
   passes in;
5. finishing: :meth:`SceneColourer.finish` turns L's source and a*, b* into LAB and sRGB
   (:class:`~sar_colorizer.inference.colour.ColourConverter`).

The schedulers: :func:`~sar_colorizer.inference.array.colorize_array` (an image in memory),
:func:`~sar_colorizer.inference.stream.stream_raster` (a raster on disk, strip by strip, with
reader and writer threads), :mod:`sar_colorizer.xarray_api` (dask chunks) and
:mod:`sar_colorizer.batch` (many rasters on any ``concurrent.futures.Executor``).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from sar_colorizer.inference.scene import db_feature, relative_and_display, to_model_input
from sar_colorizer.inference.tiles import TileStitcher, run_tile_row
from sar_colorizer.io.tiling import TileGrid, WindowBlender

if TYPE_CHECKING:
    from sar_colorizer.inference.options import Recipe
    from sar_colorizer.inference.runner import ModelRunner
    from sar_colorizer.inference.scene import SceneStatistics

logger = logging.getLogger(__name__)

__all__ = ["Prepared", "Region", "SceneColourer"]

#: ``(top, bottom, left, right)``: rows and columns ``[top, bottom) x [left, right)``.
Region = tuple[int, int, int, int]


@dataclass(frozen=True)
class Prepared:
    """The network's input and L's source for a window of the scene.

    Attributes:
        row0, col0: Scene row and column of the arrays' first pixel.
        model_input: ``(h, w, C)`` float32 network input, 0 at nodata.
        valid: ``(h, w)`` bool.
        display: ``(h, w)`` float32 relative intensity that L is made from, 0 at nodata.
        guide: ``(h, w)`` float32 dB feature of ``display`` (guided upsampling), or None.
        bounds: The L envelope of the chroma limit around each pixel
            (:meth:`~sar_colorizer.inference.colour.ColourConverter.bounds`, computed with
            context around the window), ``(h, w)`` arrays, or ``()``.
    """

    row0: int
    col0: int
    model_input: np.ndarray
    valid: np.ndarray
    display: np.ndarray
    guide: np.ndarray | None = None
    bounds: tuple[np.ndarray, ...] = ()

    def paste(self, part: Prepared) -> None:
        """Write ``part`` (prepared columns of the same rows) into these arrays, at its
        columns."""
        cols = slice(part.col0 - self.col0, part.col0 - self.col0 + part.valid.shape[1])
        pairs = [(self.model_input, part.model_input), (self.display, part.display),
                 (self.guide, part.guide), *zip(self.bounds, part.bounds, strict=True)]
        for whole, piece in pairs:
            if whole is not None and piece is not None:
                whole[:, cols] = piece

    def colour_source(
        self, rows: slice, cols: slice = slice(None)
    ) -> tuple[np.ndarray, np.ndarray, tuple[np.ndarray, ...]]:
        """``(display, valid, bounds)`` of array rows ``rows`` and columns ``cols``: what
        :meth:`SceneColourer.finish` needs besides a*, b*."""
        window = (rows, cols)
        return (
            np.ascontiguousarray(self.display[window]),
            np.ascontiguousarray(self.valid[window]),
            tuple(b[window] for b in self.bounds),
        )


@dataclass(frozen=True)
class SceneColourer:
    """Colours windows of one scene (picklable: a scheduler's tasks carry it to workers).

    Attributes:
        recipe: The options resolved against the bundle.
        stats: The scene's statistics.
        grid: The scene's tiles on the input pixels.
        net_tile: Tile side the network sees.
        per_call: Tiles per model call (fixed for the scene, so one compiled shape).
        lut: The scene's tone table.
        factor: Network pixels per input pixel (1.0: no resampling).
    """

    recipe: Recipe
    stats: SceneStatistics
    grid: TileGrid
    net_tile: int
    per_call: int
    lut: np.ndarray
    factor: float = 1.0

    @classmethod
    def for_scene(
        cls,
        recipe: Recipe,
        stats: SceneStatistics,
        height: int,
        width: int,
        pixel_size: float | None = None,
    ) -> SceneColourer:
        """The colourer of a ``height`` x ``width`` scene with these statistics.

        Args:
            recipe: The options resolved against the bundle.
            stats: The scene's statistics (:meth:`~sar_colorizer.inference.options.Recipe.
                statistics`).
            height, width: The scene's size in input pixels.
            pixel_size: The scene's ground pixel size (from its georeference) where the
                options give none; None: the training pixel size.
        """
        from sar_colorizer.inference.runner import tiles_per_call
        from sar_colorizer.inference.tiles import tiling_plan
        from sar_colorizer.inference.tone import tone_lut
        from sar_colorizer.io.pixel_size import resample_factor

        _log_tiling(recipe)
        if recipe.options.pixel_size is not None:
            pixel_size = recipe.options.pixel_size
        factor = resample_factor(pixel_size, recipe.model_pixel_size)
        net_tile, grid = tiling_plan(
            recipe.tile_multiple, height, width, recipe.tile_size, recipe.overlap, factor
        )
        return cls(
            recipe=recipe,
            stats=stats,
            grid=grid,
            net_tile=net_tile,
            per_call=tiles_per_call(grid.n_cols, net_tile, recipe.options.tiles_per_call),
            lut=tone_lut(recipe.tone, stats.feature_quantiles, recipe.l_quantiles),
            factor=factor,
        )

    @property
    def margin(self) -> int:
        """Pixels of context the chroma limit's L envelope needs around a window."""
        return int(self.recipe.converter.margin)

    # -- 2. network input ------------------------------------------------------------------

    def prepare(
        self,
        values: np.ndarray,
        valid: np.ndarray,
        *,
        origin: tuple[int, int] = (0, 0),
        keep: Region | None = None,
        context: Region | None = None,
    ) -> Prepared:
        """Raw values of a block of the scene -> :class:`Prepared` for its ``keep`` region.

        The filters run over the whole block (pass their halo around what is kept); the L
        envelope of the chroma limit over ``context`` (pass :attr:`margin` pixels around what
        is kept, or the scene's edge).

        Args:
            values: ``(C, h, w)`` raw SAR values, bands in the model's order.
            valid: ``(h, w)`` True where the data are valid.
            origin: Scene ``(row, col)`` of ``values[:, 0, 0]``.
            keep: Region of the block to keep; None: all of it.
            context: Region of the block the L envelope is computed over (it must hold
                ``keep``); None: all of it.
        """
        recipe, stats = self.recipe, self.stats
        height, width = valid.shape
        keep = keep or (0, height, 0, width)
        context = context or (0, height, 0, width)
        relative, display = relative_and_display(
            values, valid, stats.input_scale, stats.references, recipe.input_spec,
            recipe.display_filter,
        )
        around = (slice(context[0], context[1]), slice(context[2], context[3]))
        display = np.nan_to_num(display[around], nan=0.0)
        margin = self.margin
        # The dB feature of display, once: the guide of the colour upsampling and the source
        # of the L envelope.
        feature = db_feature(display) if recipe.guided or margin else None
        inner = (
            slice(keep[0] - context[0], keep[1] - context[0]),
            slice(keep[2] - context[2], keep[3] - context[2]),
        )
        bounds: tuple[np.ndarray, ...] = ()
        if margin:
            envelope = recipe.converter.bounds(display, valid[around], feature)
            bounds = tuple(np.ascontiguousarray(b[inner]) for b in envelope)
        kept = (slice(keep[0], keep[1]), slice(keep[2], keep[3]))
        guide = None
        if recipe.guided and feature is not None:
            guide = np.ascontiguousarray(feature[inner])
        return Prepared(
            row0=origin[0] + keep[0],
            col0=origin[1] + keep[2],
            model_input=to_model_input(relative[(slice(None), *kept)],
                                       recipe.input_spec.present),
            valid=valid[kept],
            display=np.ascontiguousarray(display[inner]),
            guide=guide,
            bounds=bounds,
        )

    def nodata_prepared(self, row0: int, valid: np.ndarray, bands: int) -> Prepared:
        """What :meth:`prepare` gives pixels far from any data (beyond the filters' and the L
        envelope's reach), for scene rows from ``row0`` and full width: network input (from
        ``bands`` input bands) 0 but for presence flags, display 0, guide and L envelope the
        dB feature of 0. ``valid``: their mask (a scheduler pastes the prepared columns with
        data over them: :meth:`Prepared.paste`)."""
        rows, width = valid.shape
        present = self.recipe.input_spec.present
        empty = db_feature(np.zeros((1, 1), np.float32))[0, 0]

        def constant() -> np.ndarray:
            # Zeros come from the OS as pages it maps on first write: the nodata of a strip
            # costs nothing to fill (and the dB feature of 0 is 0).
            if empty == 0 and not np.signbit(empty):
                return np.zeros((rows, width), np.float32)
            return np.full((rows, width), empty, np.float32)

        guide = constant() if self.recipe.guided else None
        bounds: tuple[np.ndarray, ...] = ()
        if self.margin:
            bounds = (constant(), constant())
        return Prepared(
            row0=row0,
            col0=0,
            model_input=np.zeros((rows, width, bands), np.float32) if present is None
            else to_model_input(np.zeros((bands, rows, width), np.float32), present),
            valid=valid,
            display=np.zeros((rows, width), np.float32),
            guide=guide,
            bounds=bounds,
        )

    # -- 3 and 4. tiles, blending, the network --------------------------------------------

    def stitcher(self, runner: ModelRunner) -> TileStitcher:
        """Runs the scene's rows of tiles through ``runner`` and blends them into finished
        scene rows, in order (streams and whole images)."""
        plan = self.recipe.output_plan
        return TileStitcher(
            runner, self.grid, plan.n_channels, self.per_call, self.net_tile, plan.transform
        )

    def infer_window(self, runner: ModelRunner, prepared: Prepared, core: Region) -> np.ndarray:
        """The blended network output of scene region ``core``: ``(h, w, channels)``.

        Runs every tile of the scene's grid that touches ``core`` (in the batches they have
        when whole rows run, so the same compiled shape) and blends them in the order rows of
        tiles do, so each pixel gets the sums :meth:`stitcher` gives it. ``prepared`` must
        hold every pixel those tiles reach (reflected at the scene's edges).
        """
        grid, plan = self.grid, self.recipe.output_plan
        r0, r1, c0, c1 = core
        size = grid.tile_size
        rows = [r for r, o in enumerate(grid.row_origins) if o < r1 and o + size > r0]
        cols = [c for c, o in enumerate(grid.col_origins) if o < c1 and o + size > c0]
        blender = WindowBlender(grid, plan.n_channels, core)
        for row in rows:
            run_tile_row(
                runner,
                prepared.model_input,
                blender,
                self.per_call,
                row,
                prepared.row0,
                prepared.guide,
                self.net_tile,
                plan.transform,
                data_col0=prepared.col0,
                cols=range(cols[0], cols[-1] + 1),
                valid=prepared.valid,
            )
        return blender.values

    def split(self, blended: np.ndarray) -> dict[str, np.ndarray]:
        """Blended network output -> ``{"ab": normalised a*, b*, "sigma": ..., "ab_mean":
        ...}`` (:meth:`~sar_colorizer.confidence.OutputPlan.split`)."""
        return self.recipe.output_plan.split(blended)

    def colour_window(
        self,
        runner: ModelRunner,
        values: np.ndarray,
        valid: np.ndarray,
        origin: tuple[int, int],
        core: Region,
    ) -> tuple[np.ndarray, np.ndarray]:
        """sRGB ``(h, w, 3)`` uint8 and the valid mask of scene region ``core``, from raw
        ``values`` (and ``valid``) of a block around it whose first pixel is scene ``origin``:
        prepare -> infer -> finish.

        The block must hold every pixel the tiles touching ``core`` reach (reflected at the
        scene's edges), the filters' halo around them and the L envelope's :attr:`margin`
        (:func:`~sar_colorizer.xarray_api.chunk_margin`).
        """
        prepared = self.prepare(values, valid, origin=origin)
        blended = self.infer_window(runner, prepared, core)
        r0, r1, c0, c1 = core
        display, core_valid, bounds = prepared.colour_source(
            slice(r0 - prepared.row0, r1 - prepared.row0),
            slice(c0 - prepared.col0, c1 - prepared.col0),
        )
        _, rgb = self.finish(display, self.split(blended)["ab"], core_valid, bounds)
        return rgb, core_valid

    # -- 5. finishing ----------------------------------------------------------------------

    def finish(
        self,
        display: np.ndarray,
        ab_norm: np.ndarray,
        valid: np.ndarray,
        bounds: tuple[np.ndarray, ...] | None,
        with_lab: bool = False,
    ) -> tuple[np.ndarray | None, np.ndarray]:
        """L's source and normalised a*, b* of a window -> ``(LAB or None, sRGB uint8)``
        (:class:`~sar_colorizer.inference.colour.ColourConverter`; 0 where not valid)."""
        return self.recipe.converter(
            display, ab_norm, valid, self.lut, with_lab=with_lab, bounds=bounds
        )

    def shown_ab(self, lab: np.ndarray, bounds: tuple[np.ndarray, ...]) -> np.ndarray:
        """The a*, b* :meth:`finish` shows for ``lab`` (its L and predicted a*, b*): chroma
        capped to the sRGB gamut at L and at the L envelope ``bounds`` (the numpy twin of the
        compiled step, :func:`~sar_colorizer.color.gamut.limit_chroma_numpy`); unchanged
        without the chroma limit, where RGB clipping does the rest."""
        from sar_colorizer.color.gamut import limit_chroma_numpy
        from sar_colorizer.inference.tone import TONE_LUT_SIZE

        if not self.recipe.options.chroma_limit:
            return np.ascontiguousarray(lab[..., 1:], dtype=np.float32)
        steps = TONE_LUT_SIZE - 1
        lut = np.asarray(self.lut, dtype=np.float32)
        nearest = [lut[(np.asarray(b, np.float32) * steps + 0.5).astype(np.int32)] for b in bounds]
        return np.ascontiguousarray(limit_chroma_numpy(lab, *nearest)[..., 1:])


def _log_tiling(recipe: Recipe) -> None:
    """Say when the tiles differ from the network's training tiles (colours may drift) or are
    rounded to the model's multiple."""
    from sar_colorizer.io.tiling import round_tile_size

    requested = recipe.options.tile_size
    if requested is not None and requested != recipe.model_tile_size:
        logger.warning(
            "tile size %d differs from the %d px the model was trained on; colours may drift",
            requested, recipe.model_tile_size,
        )
    rounded = round_tile_size(recipe.tile_size, recipe.tile_multiple)
    if rounded != recipe.tile_size:
        logger.info("tile size %d rounded to %d (multiple of %d)", recipe.tile_size, rounded,
                    recipe.tile_multiple)
