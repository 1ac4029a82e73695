"""Streaming a planned scene: read strips, run their tiles, write finished rows.

Work goes one row of tiles at a time: :class:`StripReader` reads a strip of ``tile_size`` rows
plus a halo (half the speckle window or the display filter's halo, the larger, so that filtering
at strip borders matches whole-image filtering) and preprocesses it, in a background thread
while the model runs on the previous strip;
:class:`~sar_colorizer.inference.tiles.TileStitcher` cuts reflect-padded tiles from it, runs them
through the model in fixed-shape batches and blends them with raised-cosine weights
(:mod:`sar_colorizer.io.tiling`); :class:`BlockWriter` converts the rows that are final to
colour and writes them, in a second background thread. Peak memory is a few strips of
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

from sar_colorizer.inference.colour import ColourConverter
from sar_colorizer.inference.outputs import gdal_cache_bytes
from sar_colorizer.inference.quicklook import Quicklook
from sar_colorizer.inference.scene import db_feature, relative_and_display, to_model_input
from sar_colorizer.inference.tiles import TileStitcher, strip_span
from sar_colorizer.signals import raise_if_interrupted

if TYPE_CHECKING:
    from sar_colorizer.confidence import OutputPlan
    from sar_colorizer.inference.outputs import OutputWriters, RasterOutputs
    from sar_colorizer.inference.plan import RasterPlan
    from sar_colorizer.inference.runner import ModelRunner

__all__ = ["BlockWriter", "Strip", "StripReader", "stream_raster", "timed"]

#: Rows converted to colour and written per call (bounds the colour step's temporaries).
WRITE_ROWS = 128


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
class Strip:
    """Preprocessed input of one row of tiles: scene rows from ``data_row0`` on, full width.

    Attributes:
        data_row0: Scene row of ``model_input[0]``.
        model_input: ``(rows, W, C)`` float32 network input, 0 at nodata.
        valid: ``(rows, W)`` bool.
        display: ``(rows, W)`` float32 relative intensity that L is made from, 0 at nodata.
        guide: ``(rows, W)`` float32 dB feature of ``display`` (guided upsampling), or None.
        bounds: The L envelope of ``display`` for the chroma limit
            (:meth:`~sar_colorizer.inference.colour.ColourConverter.bounds`, computed with the
            rows around the strip), ``(rows, W)`` arrays, or ``()``.
    """

    data_row0: int
    model_input: np.ndarray
    valid: np.ndarray
    display: np.ndarray
    guide: np.ndarray | None = None
    bounds: tuple[np.ndarray, ...] = ()


@dataclass(frozen=True)
class StripReader:
    """Reads and preprocesses the strip each row of tiles needs (its rows, reflected at the
    scene's edges, plus the filters' halo, which is cut off again after filtering, and the
    rows the L envelope of ``converter`` needs around them)."""

    plan: RasterPlan
    stages: dict[str, float]
    converter: ColourConverter | None = None

    def __call__(self, row: int) -> Strip:
        from rasterio.windows import Window

        from sar_colorizer.io.raster import read_raster

        plan = self.plan
        height, width = plan.info.height, plan.info.width
        with timed(self.stages, "read + preprocess", cpu=True):
            first, stop = strip_span(plan.grid, row)
            margin = 0 if self.converter is None else self.converter.margin
            top, bottom = max(0, first - margin), min(height, stop + margin)
            lo, hi = max(0, top - plan.halo), min(height, bottom + plan.halo)
            values, valid = read_raster(
                plan.in_path, bands=list(plan.band_indexes), window=Window(0, lo, width, hi - lo)
            )
            # Only the columns with data, and what the filters and the L envelope read around
            # them, are preprocessed: the rest is nodata, whose values are constants.
            columns = np.flatnonzero(valid.any(axis=0))
            reach = plan.halo + margin
            c0 = max(0, int(columns[0]) - reach) if columns.size else 0
            c1 = min(width, int(columns[-1]) + 1 + reach) if columns.size else 0
            if c1 > c0:
                part = self._preprocess(
                    values[:, :, c0:c1], valid[:, c0:c1], (lo, first, stop, top, bottom), margin
                )
            if (c0, c1) == (0, width):
                model_input, display, guide, bounds = part
            else:
                model_input, display, guide, bounds = self._nodata(
                    stop - first, width, values.shape[0], margin
                )
                if c1 > c0:
                    for whole, piece in zip(
                        (model_input, display, guide, *bounds), (part[0], part[1], part[2], *part[3]),
                        strict=True,
                    ):
                        if whole is not None:
                            whole[:, c0:c1] = piece
        cut = slice(first - lo, stop - lo)
        return Strip(first, model_input, valid[cut], display, guide, bounds)

    def _preprocess(
        self,
        values: np.ndarray,
        valid: np.ndarray,
        rows: tuple[int, int, int, int, int],
        margin: int,
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray | None, tuple[np.ndarray, ...]]:
        """``(model_input, display, guide, bounds)`` of the strip's rows from raw values of
        rows ``lo`` on (the filters' halo and the envelope's rows around them)."""
        plan = self.plan
        lo, first, stop, top, bottom = rows
        relative, display = relative_and_display(
            values, valid, plan.stats.input_scale, plan.stats.references,
            plan.input_spec, plan.display_filter,
        )
        display = np.nan_to_num(display[top - lo : bottom - lo], nan=0.0)
        kept = slice(first - top, stop - top)
        # The dB feature of display, once: the guide of the colour upsampling and the
        # source of the L envelope.
        feature = db_feature(display) if plan.guided or margin else None
        bounds: tuple[np.ndarray, ...] = ()
        if self.converter is not None and margin:
            context = self.converter.bounds(display, valid[top - lo : bottom - lo], feature)
            bounds = tuple(np.ascontiguousarray(b[kept]) for b in context)
        model_input = to_model_input(relative[:, first - lo : stop - lo])
        guide = None
        if plan.guided and feature is not None:
            guide = np.ascontiguousarray(feature[kept])
        return model_input, np.ascontiguousarray(display[kept]), guide, bounds

    def _nodata(
        self, rows: int, width: int, channels: int, margin: int
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray | None, tuple[np.ndarray, ...]]:
        """What :meth:`_preprocess` gives pixels far from any data: network input and display
        0, guide and L envelope the dB feature of 0."""
        empty = db_feature(np.zeros((1, 1), np.float32))[0, 0]
        guide = np.full((rows, width), empty, np.float32) if self.plan.guided else None
        bounds: tuple[np.ndarray, ...] = ()
        if self.converter is not None and margin:
            bounds = tuple(np.full((rows, width), empty, np.float32) for _ in range(2))
        return (
            np.zeros((rows, width, channels), np.float32),
            np.zeros((rows, width), np.float32),
            guide,
            bounds,
        )


@dataclass(frozen=True)
class BlockWriter:
    """Converts finished scene rows to colour and writes them, :data:`WRITE_ROWS` at a time
    (the colour temporaries stay small), with the quicklook's share."""

    writers: OutputWriters
    converter: ColourConverter
    lut: np.ndarray
    output_plan: OutputPlan
    quicklook: Quicklook | None
    stages: dict[str, float]

    def __call__(self, strip: Strip, start: int, stop: int, block: np.ndarray) -> None:
        """Write scene rows ``[start, stop)``: ``block`` is their blended network output and
        ``strip`` holds their preprocessed input."""
        with timed(self.stages, "colour + write", cpu=True):
            parts = self.output_plan.split(block)
            ab_norm, sigma = parts["ab"], parts.get("sigma")
            for top in range(start, stop, WRITE_ROWS):
                bottom = min(stop, top + WRITE_ROWS)
                local = slice(top - strip.data_row0, bottom - strip.data_row0)
                rows = slice(top - start, bottom - start)
                valid, display = strip.valid[local], strip.display[local]
                bounds = tuple(b[local] for b in strip.bounds)
                _, rgb = self.converter(
                    display, ab_norm[rows], valid, self.lut, with_lab=False, bounds=bounds
                )
                self.writers.write_rows(
                    top, rgb, ab_norm[rows], None if sigma is None else sigma[rows], valid
                )
                if self.quicklook is not None:
                    self.quicklook.add(top, db_feature(display), rgb, valid)


def stream_raster(
    plan: RasterPlan,
    runner: ModelRunner,
    outputs: RasterOutputs,
    stages: dict[str, float],
    *,
    chroma_limit: bool,
    progress: bool,
    started: float,
) -> Quicklook | None:
    """Colorize the planned scene into ``outputs``, strip by strip; the outputs are complete
    (renamed into place) on return, but for the quicklook, which is returned.

    ``stages`` gets the wall and CPU seconds of each stage; ``started`` (a
    :func:`time.perf_counter` value) is when the whole call began, for the progress bar's rate.
    """
    import rasterio

    from sar_colorizer.progress import progress_bar

    info, grid = plan.info, plan.grid
    converter = ColourConverter.shared(chroma_limit)
    read_strip = StripReader(plan, stages, converter)
    stitcher = TileStitcher(
        runner,
        grid,
        plan.output_plan.n_channels,
        plan.per_call,
        plan.net_tile,
        plan.output_plan.transform,
    )
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
        write_block = BlockWriter(
            outputs.open(stack, info.profile),
            converter,
            plan.lut,
            plan.output_plan,
            quicklook,
            stages,
        )
        pending: Future[Strip] = reader_pool.submit(read_strip, 0)
        written: list[Future[None]] = []
        for row in range(grid.n_rows):
            raise_if_interrupted()
            strip = pending.result()
            if row + 1 < grid.n_rows:
                pending = reader_pool.submit(read_strip, row + 1)
            with timed(stages, "model + blend"):
                start, stop, block = stitcher.row(
                    row, strip.model_input, strip.data_row0, strip.guide, strip.valid
                )
            # Keep at most one block in flight: bounded memory, errors surface promptly.
            while written:
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
