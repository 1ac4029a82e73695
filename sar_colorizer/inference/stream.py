"""Streaming a planned scene: read strips, run their tiles, write finished rows.

A scheduler over the scene's :class:`~sar_colorizer.inference.core.SceneColourer`. Work goes
one row of tiles at a time: :class:`StripReader` reads a strip of ``tile_size`` rows plus a halo
(half the speckle window or the display filter's halo, the larger, so that filtering at strip
borders matches whole-image filtering) and prepares it, in a background thread while the model
runs on the previous strip; the colourer's
:class:`~sar_colorizer.inference.tiles.TileStitcher` cuts reflect-padded tiles from it, runs
them through the model in fixed-shape batches and blends them with raised-cosine weights
(:mod:`sar_colorizer.io.tiling`); :class:`BlockWriter` finishes the rows that are final to
colour and writes them, in a second background thread (:data:`READ_AHEAD` strips ahead of the
network, :data:`WRITES_IN_FLIGHT` blocks behind it). Peak memory is a few strips of
``tile_size x width`` pixels whatever the scene's height.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from sar_colorizer.inference.outputs import gdal_cache_bytes
from sar_colorizer.inference.quicklook import Quicklook
from sar_colorizer.inference.scene import db_feature
from sar_colorizer.inference.tiles import strip_span
from sar_colorizer.signals import raise_if_interrupted

if TYPE_CHECKING:
    from rasterio.io import DatasetReader

    from sar_colorizer.inference.core import Prepared, SceneColourer
    from sar_colorizer.inference.outputs import OutputWriters, RasterOutputs
    from sar_colorizer.inference.plan import RasterPlan
    from sar_colorizer.inference.runner import ModelRunner

__all__ = [
    "BlockWriter", "StripReader", "data_runs", "stream_raster", "timed", "valid_columns",
]

#: Rows converted to colour and written per call (bounds the colour step's temporaries).
WRITE_ROWS = 128
#: Strips read and prepared ahead of the network, and finished blocks the writer may hold:
#: two of each let a strip heavy in one stage (data across the whole width) overlap with light
#: ones in the others, where one of each made every stage wait for the slowest of its
#: neighbours (``bench/predict_bench.py``). Each is a strip of ``tile_size x width`` pixels.
READ_AHEAD = 2
WRITES_IN_FLIGHT = 2


@contextmanager
def timed(stages: dict[str, float], name: str, cpu: bool = False) -> Iterator[None]:
    """Add the wall time of the block to ``stages[name]`` and, with ``cpu``, its thread's CPU
    time to ``stages[name + ", cpu"]``."""
    t0, cpu0 = time.perf_counter(), time.thread_time()
    yield
    stages[name] = stages.get(name, 0.0) + time.perf_counter() - t0
    if cpu:
        stages[f"{name}, cpu"] = stages.get(f"{name}, cpu", 0.0) + time.thread_time() - cpu0


@dataclass(frozen=True)
class StripReader:
    """Reads a strip of the scene for each row of tiles and prepares it
    (:meth:`~sar_colorizer.inference.core.SceneColourer.prepare`): the rows the tiles read,
    reflected at the scene's edges, plus the filters' halo and the rows the L envelope needs
    around them."""

    plan: RasterPlan
    stages: dict[str, float]
    #: The input, open (read from this reader's thread only): GDAL's block cache then holds
    #: the blocks that consecutive strips share. None: opened for each strip.
    source: DatasetReader | None = None

    def __call__(self, row: int) -> Prepared:
        from rasterio.windows import Window

        from sar_colorizer.io.raster import read_dataset, read_raster

        plan, colourer = self.plan, self.plan.colourer
        height, width = plan.info.height, plan.info.width
        with timed(self.stages, "read + preprocess", cpu=True):
            first, stop = strip_span(colourer.grid, row)
            margin, halo = colourer.margin, colourer.recipe.halo
            top, bottom = max(0, first - margin), min(height, stop + margin)
            lo, hi = max(0, top - halo), min(height, bottom + halo)
            bands, window = list(plan.band_indexes), Window(0, lo, width, hi - lo)
            if self.source is None:
                values, valid = read_raster(plan.in_path, bands=bands, window=window)
            else:
                values, valid = read_dataset(self.source, plan.in_path, bands, window)
            # Only the columns with data, and what the filters and the L envelope read around
            # them, are prepared (each run of them apart): the rest is nodata, whose prepared
            # values are constants.
            rows = (first - lo, stop - lo)
            context = (top - lo, bottom - lo)
            runs = data_runs(valid, halo + colourer.margin)
            if runs == [(0, width)]:
                return colourer.prepare(
                    values, valid, origin=(lo, 0), keep=(*rows, 0, width),
                    context=(*context, 0, width),
                )
            strip = colourer.nodata_prepared(first, valid[rows[0] : rows[1]], values.shape[0])
            for c0, c1 in runs:
                part = colourer.prepare(
                    values[:, :, c0:c1], valid[:, c0:c1], origin=(lo, c0),
                    keep=(*rows, 0, c1 - c0), context=(*context, 0, c1 - c0),
                )
                strip.paste(part)
            return strip


def data_runs(valid: np.ndarray, reach: int) -> list[tuple[int, int]]:
    """Column ranges ``[c0, c1)`` that hold every column of ``valid`` (h, w) with a valid
    pixel and ``reach`` columns on each side (cut at the edges), one per run of such columns
    whose reaches do not touch: what must be prepared of a strip (empty where nothing is
    valid)."""
    columns = np.flatnonzero(valid.any(axis=0))
    if not columns.size:
        return []
    width = valid.shape[1]
    breaks = np.flatnonzero(np.diff(columns) > 2 * reach + 1)
    starts = np.concatenate([columns[:1], columns[breaks + 1]])
    ends = np.concatenate([columns[breaks], columns[-1:]])
    return [
        (max(0, int(a) - reach), min(width, int(b) + 1 + reach))
        for a, b in zip(starts, ends, strict=True)
    ]


@dataclass(frozen=True)
class BlockWriter:
    """Converts finished scene rows to colour and writes them, :data:`WRITE_ROWS` at a time
    (the colour temporaries stay small), with the quicklook's share.

    Where the colour raster is the only raster written, only the columns between the first
    and the last valid pixel of each slice of rows are converted and written, and a slice
    without one is not written at all: what is left unwritten reads back as nodata (alpha 0,
    RGB 0; GDAL's sparse blocks), as written nodata does.
    """

    writers: OutputWriters
    colourer: SceneColourer
    quicklook: Quicklook | None
    stages: dict[str, float]

    def __call__(self, strip: Prepared, start: int, stop: int, block: np.ndarray) -> None:
        """Write scene rows ``[start, stop)``: ``block`` is their blended network output and
        ``strip`` holds their prepared input."""
        with timed(self.stages, "colour + write", cpu=True):
            parts = self.colourer.split(block)
            ab_norm, sigma = parts["ab"], parts.get("sigma")
            width = block.shape[1]
            spans = self.writers.colour_only
            for top in range(start, stop, WRITE_ROWS):
                bottom = min(stop, top + WRITE_ROWS)
                rows = slice(top - strip.row0, bottom - strip.row0)
                c0, c1 = valid_columns(strip.valid[rows]) if spans else (0, width)
                if c1 <= c0:  # no valid pixel: nothing to write
                    if self.quicklook is not None:
                        display, valid, _ = strip.colour_source(rows)
                        rgb = np.zeros((*valid.shape, 3), np.uint8)
                        self.quicklook.add(top, db_feature(display), rgb, valid)
                    continue
                display, valid, bounds = strip.colour_source(rows, slice(c0, c1))
                done = slice(top - start, bottom - start)
                _, rgb = self.colourer.finish(display, ab_norm[done, c0:c1], valid, bounds)
                self.writers.write_rows(
                    top, rgb, ab_norm[done], None if sigma is None else sigma[done], valid,
                    col0=c0,
                )
                if self.quicklook is not None:
                    display, valid, _ = strip.colour_source(rows)
                    if (c0, c1) != (0, width):
                        whole = np.zeros((*valid.shape, 3), np.uint8)
                        whole[:, c0:c1] = rgb
                        rgb = whole
                    self.quicklook.add(top, db_feature(display), rgb, valid)


def valid_columns(valid: np.ndarray) -> tuple[int, int]:
    """``(first, stop)``: the columns from the first to the last one holding a valid pixel of
    ``valid`` (h, w); ``(0, 0)`` where none does."""
    columns = np.flatnonzero(valid.any(axis=0))
    if not columns.size:
        return 0, 0
    return int(columns[0]), int(columns[-1]) + 1


def stream_raster(
    plan: RasterPlan,
    runner: ModelRunner,
    outputs: RasterOutputs,
    stages: dict[str, float],
    *,
    progress: bool,
    started: float,
) -> Quicklook | None:
    """Colorize the planned scene into ``outputs``, strip by strip; the outputs are complete
    (renamed into place) on return, but for the quicklook, which is returned.

    ``stages`` gets the wall and CPU seconds of each stage; ``started`` (a
    :func:`time.perf_counter` value) is when the whole call began, for the progress bar's rate.
    """
    import rasterio

    from sar_colorizer.io.dataset import open_dataset
    from sar_colorizer.progress import progress_bar

    info, grid = plan.info, plan.colourer.grid
    stitcher = plan.colourer.stitcher(runner)
    quicklook = Quicklook(info.height, info.width) if outputs.quicklook is not None else None
    bar = progress_bar(total=len(grid), unit="tiles", desc=Path(plan.in_path).name,
                       enabled=progress, leave=False)
    with (
        ExitStack() as stack,
        ThreadPoolExecutor(max_workers=1) as reader_pool,
        ThreadPoolExecutor(max_workers=1) as writer_pool,
    ):
        stack.callback(bar.close)
        # GDAL's block cache defaults to 5 % of RAM; a strip of input and output blocks is all
        # this loop reuses, so cap it (rasterio takes bytes here and restores it afterwards).
        cache = gdal_cache_bytes(info, outputs.ab is not None)
        stack.enter_context(rasterio.Env(GDAL_CACHEMAX=cache))
        read_strip = StripReader(plan, stages, stack.enter_context(open_dataset(plan.in_path)))
        write_block = BlockWriter(outputs.open(stack, info.profile), plan.colourer, quicklook,
                                  stages)
        pending: list[Future[Prepared]] = [
            reader_pool.submit(read_strip, row) for row in range(min(READ_AHEAD, grid.n_rows))
        ]
        written: list[Future[None]] = []
        for row in range(grid.n_rows):
            raise_if_interrupted()
            strip = pending.pop(0).result()
            if row + READ_AHEAD < grid.n_rows:
                pending.append(reader_pool.submit(read_strip, row + READ_AHEAD))
            with timed(stages, "model + blend"):
                start, stop, block = stitcher.row(
                    row, strip.model_input, strip.row0, strip.guide, strip.valid
                )
            # A bounded number of blocks in flight: bounded memory, errors surface promptly.
            while len(written) >= WRITES_IN_FLIGHT:
                written.pop(0).result()
            written.append(writer_pool.submit(write_block, strip, start, stop, block))
            bar.update(grid.n_cols)
            elapsed = time.perf_counter() - started
            done_px = min(stop, info.height) * info.width
            bar.set_postfix_str(f"{done_px / max(elapsed, 1e-9) / 1e6:.2f} Mpx/s", refresh=False)
        for future in written:
            future.result()
        with timed(stages, "finish outputs"):
            stack.close()  # finish the outputs (PNG/JPEG/COG conversion) and rename them
    return quicklook
