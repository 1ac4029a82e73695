"""The tiling driver: cut model input into overlapping tiles, run them, blend them into rows.

The grid and the raised-cosine blending are :mod:`sar_colorizer.io.tiling`'s; this module
decides the grid for a scene (:func:`tiling_plan`), runs one row of tiles through the model in
fixed-shape batches (:func:`run_tile_row`) and turns rows of tiles into finished scene rows
(:class:`TileStitcher`), for a whole image in memory and for the strips that
:func:`~sar_colorizer.inference.raster.colorize_raster` streams alike.

Inputs whose pixel size (from the georeference or given) differs from the bundle's training
pixel size are cut into tiles of ``tile_size / factor`` input pixels that are resampled to
``tile_size`` for the network; the colour comes back at the tile's input size.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np

from sar_colorizer.io.tiling import (
    StripBlender,
    TileGrid,
    TileSink,
    default_overlap,
    fit_tile_size,
    reflect_indices,
    reflect_pad_window,
    round_tile_size,
)

if TYPE_CHECKING:
    from sar_colorizer.bundle import Bundle
    from sar_colorizer.inference.runner import ModelRunner

__all__ = [
    "TileStitcher",
    "run_tile_row",
    "strip_span",
    "tile_settings",
    "tiles_with_data",
    "tiling_plan",
]


def tile_settings(
    bundle: Bundle, tile_size: int | None = None, overlap: int | None = None
) -> tuple[int, int]:
    """``(tile_size, overlap)`` that inference uses for ``bundle`` when given None for either:
    the tile size the network was trained on (:attr:`~sar_colorizer.bundle.Bundle.tile_size`),
    and :func:`~sar_colorizer.io.tiling.default_overlap` of that tile (after rounding it to the
    model's multiple)."""
    tile_size = int(bundle.tile_size) if tile_size is None else int(tile_size)
    if overlap is None:
        overlap = default_overlap(round_tile_size(tile_size, bundle.tile_multiple))
    return tile_size, overlap


def tiling_plan(
    multiple: int,
    height: int,
    width: int,
    tile_size: int,
    overlap: int,
    factor: float,
) -> tuple[int, TileGrid]:
    """``(network tile side, grid on the input)`` for a model of tile ``multiple`` and a scene
    whose pixels are ``factor`` training pixels wide (:func:`~sar_colorizer.io.pixel_size.resample_factor`).

    The network runs on tiles of ``tile_size`` (rounded to the model's multiple, shrunk for
    small scenes) of training-size pixels; on the input grid a tile is ``tile_size / factor``
    pixels with ``overlap / factor`` overlap, and is resampled to the network's tile.
    """
    if factor == 1.0:
        tile = fit_tile_size(tile_size, multiple, height, width, overlap)
        return tile, TileGrid.for_shape(height, width, tile, overlap)
    net_height, net_width = math.ceil(height * factor), math.ceil(width * factor)
    net_tile = fit_tile_size(tile_size, multiple, net_height, net_width, overlap)
    tile = max(2, round(net_tile / factor))
    grid_overlap = min(round(overlap / factor), tile // 2)
    return net_tile, TileGrid.for_shape(height, width, tile, grid_overlap)


def strip_span(grid: TileGrid, row: int) -> tuple[int, int]:
    """Scene rows ``[start, stop)`` that the tiles of row ``row`` read, the rows they reach
    beyond the scene's edges reflected back into it (the strip of input the row needs)."""
    r0, r1 = grid.strip_rows(row)
    rows = reflect_indices(np.arange(r0, r1), grid.height)
    return int(rows.min()), int(rows.max()) + 1


def _resample_tile(tile: np.ndarray, side: int) -> np.ndarray:
    """``(h, w, C)`` model input -> ``(side, side, C)``: bilinear when growing, block averages
    when shrinking."""
    import cv2

    method = cv2.INTER_LINEAR if side >= tile.shape[0] else cv2.INTER_AREA
    return cv2.resize(tile, (side, side), interpolation=method).reshape(side, side, -1)


def tiles_with_data(
    grid: TileGrid,
    valid: np.ndarray,
    row: int,
    cols: range,
    data_row0: int = 0,
    data_col0: int = 0,
) -> list[int]:
    """The tiles of row ``row`` among ``cols`` that hold at least one valid pixel (their
    windows reflected at the scene's edges, as the tiles are cut); ``valid`` holds scene rows
    from ``data_row0`` and columns from ``data_col0`` on, as the model input does."""
    size = grid.tile_size
    r0 = grid.row_origins[row]
    rows = reflect_indices(np.arange(r0, r0 + size), grid.height) - data_row0
    columns = valid[rows].any(axis=0)  # per column: a valid pixel in the row's rows
    if columns.all():
        return list(cols)
    kept = []
    for col in cols:
        c0 = grid.col_origins[col]
        reach = reflect_indices(np.arange(c0, c0 + size), grid.width) - data_col0
        if columns[reach].any():
            kept.append(col)
    return kept


def run_tile_row(
    runner: ModelRunner,
    relative: np.ndarray,
    blender: TileSink,
    batch_size: int,
    row: int,
    data_row0: int = 0,
    guide: np.ndarray | None = None,
    net_tile: int | None = None,
    transform: Callable[[np.ndarray], np.ndarray] | None = None,
    data_col0: int = 0,
    cols: range | None = None,
    valid: np.ndarray | None = None,
) -> None:
    """Run the tiles of one row through the model, batch by batch, into the blender.

    Tiles without a valid pixel (with ``valid``) never reach the network: the tiles with data
    are packed into full batches, and the blender skips the others (nodata, whose colour is
    never shown).

    Args:
        runner: The model.
        relative: ``(rows, W, C)`` model input holding (at least) the scene rows the row of
            tiles covers, reflection included.
        blender: The blender (its grid and weights).
        batch_size: Tiles per call (:func:`~sar_colorizer.inference.runner.tiles_per_call`);
            the last batch of the row is padded to this size so that a compiled network sees
            one shape only (a tile's output does not depend on the others in its batch), or
            runs as it is where the runner takes any batch size (ONNX Runtime).
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
        cols: Run only these (consecutive) tiles of the row (the chunked path of
            :mod:`sar_colorizer.xarray_api`); None: every tile.
        valid: ``(rows, W)`` valid mask, rows and columns as ``relative``; None: every tile
            runs.
    """
    grid = blender.grid
    size = grid.tile_size
    net_tile = size if net_tile is None else net_tile
    r0 = grid.row_origins[row]
    wanted = range(grid.n_cols) if cols is None else cols
    with_data = (
        list(wanted) if valid is None
        else tiles_with_data(grid, valid, row, wanted, data_row0, data_col0)
    )
    added = wanted.start  # the next column the blender expects
    if not with_data:
        _skip(blender, row, added, wanted.stop)
        return
    tiles = np.empty((batch_size, net_tile, net_tile, relative.shape[2]), dtype=np.float32)
    guides = None if guide is None else np.empty((batch_size, size, size), dtype=np.float32)
    for start in range(0, len(with_data), batch_size):
        batch = with_data[start : start + batch_size]
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
        weights_y, weights_x = grid.axis_weights(row, batch)
        shape = len(batch) if runner.any_batch else batch_size
        if len(batch) < shape:  # pad the batch: one traced shape for every call
            tiles[len(batch) :] = tiles[len(batch) - 1]
            if guides is not None:
                guides[len(batch) :] = guides[len(batch) - 1]
            pad = shape - len(batch)
            weights_y = np.concatenate([weights_y, np.repeat(weights_y[-1:], pad, axis=0)])
            weights_x = np.concatenate([weights_x, np.repeat(weights_x[-1:], pad, axis=0)])
        outputs = runner(
            tiles[:shape], (weights_y, weights_x),
            guide=None if guides is None else guides[:shape], size=(size, size),
            transform=transform,
        )
        # In column order, skipping the tiles without data between them.
        k = 0
        while k < len(batch):
            run = 1
            while k + run < len(batch) and batch[k + run] == batch[k] + run:
                run += 1
            _skip(blender, row, added, batch[k])
            blender.add_tiles(row, batch[k], outputs[k : k + run], weighted=True)
            added = batch[k] + run
            k += run
    _skip(blender, row, added, wanted.stop)


def _skip(blender: TileSink, row: int, start: int, stop: int) -> None:
    """Tiles ``[start, stop)`` of ``row`` contribute nothing (they hold no valid pixel): the
    blender skips them (adding zeros would change no sum)."""
    if stop > start:
        blender.skip_tiles(row, start, stop)


class TileStitcher:
    """Runs rows of tiles through the model and blends them into finished scene rows.

    Rows must come in order 0, 1, 2, ...; each gives the scene rows that no later row of tiles
    touches (:meth:`~sar_colorizer.io.tiling.TileGrid.finished_rows`), blended.

    Args:
        runner: The model.
        grid: The scene's grid on the input pixels.
        channels: Channels of the (transformed) model output.
        batch_size: Tiles per model call.
        net_tile: Tile side the network sees (None: the grid's).
        transform: Applied to the network's output before upsampling (see the runner).
    """

    def __init__(
        self,
        runner: ModelRunner,
        grid: TileGrid,
        channels: int,
        batch_size: int,
        net_tile: int | None = None,
        transform: Callable[[np.ndarray], np.ndarray] | None = None,
    ) -> None:
        self.runner = runner
        self.grid = grid
        self.channels = channels
        self.batch_size = batch_size
        self.net_tile = net_tile
        self.transform = transform
        self.blender = StripBlender(grid, channels)

    def row(
        self,
        row: int,
        model_input: np.ndarray,
        data_row0: int = 0,
        guide: np.ndarray | None = None,
        valid: np.ndarray | None = None,
    ) -> tuple[int, int, np.ndarray]:
        """Run row ``row`` of tiles; ``model_input`` (and ``guide``, ``valid``) hold scene
        rows from ``data_row0`` on, at least :func:`strip_span` of the row. With ``valid``,
        tiles without a valid pixel are not run (:func:`run_tile_row`).

        Returns:
            ``(start, stop, block)``: the scene rows now final and their blended output
            ``(stop - start, width, channels)``.
        """
        run_tile_row(
            self.runner,
            model_input,
            self.blender,
            self.batch_size,
            row,
            data_row0,
            guide,
            self.net_tile,
            self.transform,
            valid=valid,
        )
        return self.blender.finish_row(row)

    def image(
        self,
        model_input: np.ndarray,
        guide: np.ndarray | None = None,
        valid: np.ndarray | None = None,
    ) -> np.ndarray:
        """Every row of tiles over a whole ``(H, W, C)`` image: ``(H, W, channels)`` float32
        (0 in tiles without a valid pixel, with ``valid``)."""
        grid = self.grid
        out = np.empty((grid.height, grid.width, self.channels), dtype=np.float32)
        for row in range(grid.n_rows):
            start, stop, block = self.row(row, model_input, 0, guide, valid)
            out[start:stop] = block
        return out
