"""Colorize xarray ``DataArray`` s of SAR, in memory or lazily (dask) chunk by chunk.

A ``DataArray`` as ``rioxarray.open_rasterio`` makes it (dims ``band, y, x``, a CRS, a transform
and a nodata value) goes in; a ``DataArray`` of RGBA uint8 with the same ``y``/``x`` coordinates,
CRS and transform comes out (alpha 0 exactly where the input is nodata), ready for
``.rio.to_raster()`` or ``.plot.imshow()``.

A dask-backed input (``rioxarray.open_rasterio(path, chunks=2048)``) stays lazy: each output
chunk is one task that reads its chunk of SAR plus a margin and computes exactly what
``sarcolor predict`` computes there. How the result equals ``predict``'s, pixel for pixel:

- **Scene statistics** (normalisation reference, tone curve quantiles) are whole-scene numbers.
  They come from one nearest-neighbour decimated read of at most
  :data:`~sar_colorizer.inference.STATS_MAX_SIDE` px on the long side, sampled at the pixels
  GDAL picks for ``predict``'s decimated read (:func:`decimation_indices`); for scenes no
  larger than that it is the whole scene. (A GeoTIFF with overviews gives ``predict`` the
  overview's pixels instead; pass ``stats=`` to use other statistics.)
- **Tiles**: the tile grid is the whole scene's (:class:`~sar_colorizer.io.tiling.TileGrid`),
  never the chunks'. An output chunk runs every tile of that grid that touches it, cut from the
  chunk's margin with reflection at the scene's edges, weights them with the grid's blending
  weights and sums them in ``predict``'s order (row of tiles, then column), starting from zero.
  So the chunking does not have to align with the tiles: tiles that straddle a chunk border
  are run once for each chunk they touch (with 2048-px chunks and 256-px tiles, about 12 %
  more model work than ``predict``).
- **Same steps**: each chunk runs ``predict``'s own functions (:func:`colorize_window`): the
  preprocessing and display filter that L is made from, tiles resampled to the model's training
  pixel size (the pixel size comes from the CRS and transform, as for ``predict``), the
  network with the guided colour upsampling and a confidence head's muting, and the colour
  conversion with its chroma limit; a change to ``predict``'s pipeline reaches this path too.
- **Margin** (``dask.array.overlap`` depth, :func:`chunk_margin`): a tile touching the chunk
  reaches at most one tile beyond it (the guided upsampling works inside each tile, so it
  reaches no further), and the speckle filter and the display filter need their halo on top:
  ``depth = tile + max(halos)``. At the scene's edges there is no margin, as there is none for
  ``predict``'s strips; the filters treat the edge the same way in both.
- **Batches** have ``predict``'s fixed size (:func:`~sar_colorizer.inference.tiles_per_call`
  of the whole row of tiles), so the network runs the same compiled shape.

Each worker process loads the model once (a path is passed to the tasks, not the model).
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from types import ModuleType
from typing import TYPE_CHECKING, Any

import numpy as np

from sar_colorizer.errors import InputError, MissingExtraError, install_command

if TYPE_CHECKING:
    import dask.array
    import xarray as xr

    from sar_colorizer.api import ModelLike
    from sar_colorizer.bundle import Bundle
    from sar_colorizer.inference import InputSpec, SceneStatistics
    from sar_colorizer.io.tiling import TileGrid

RGBA_BANDS = ("R", "G", "B", "A")


def _require(module: str, extra: str) -> ModuleType:
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as error:
        raise MissingExtraError(
            f"this needs the {extra} extra ({error.name} is missing): {install_command(extra)}"
        ) from None


def decimation_indices(length: int, out_length: int) -> np.ndarray:
    """Source pixels that GDAL's nearest-neighbour decimated read picks along one axis.

    GDAL samples output pixel ``i`` at source coordinate ``(i + 0.5) * length / out_length``
    (the pixel whose area holds the output pixel's centre).
    """
    ratio = length / out_length
    index = np.floor((np.arange(out_length) + 0.5) * ratio + 1e-10).astype(np.int64)
    return np.minimum(index, length - 1)


def _band_dim(sar: xr.DataArray) -> Hashable | None:
    y_dim, x_dim = sar.rio.y_dim, sar.rio.x_dim
    others = [d for d in sar.dims if d not in (y_dim, x_dim)]
    if len(others) > 1:
        raise InputError(
            f"the SAR DataArray has dims {sar.dims}; expected (band, y, x) or (y, x): select "
            "one time step or other extra dimension first"
        )
    return others[0] if others else None


def _band_names(sar: xr.DataArray, band_dim: Hashable | None) -> list[str | None]:
    if band_dim is None:
        name = sar.attrs.get("long_name") or sar.name
        return [str(name) if isinstance(name, str) else None]
    count = sar.sizes[band_dim]
    names = sar.attrs.get("long_name")
    if isinstance(names, list | tuple) and len(names) == count:
        return [str(n) if n else None for n in names]
    if isinstance(names, str) and count == 1:
        return [names]
    values = [v.item() if hasattr(v, "item") else v for v in sar[band_dim].values]
    return [v if isinstance(v, str) else None for v in values]


def select_bands(
    sar: xr.DataArray, bands: str | int | Sequence[str | int] | None
) -> tuple[xr.DataArray, list[str | None]]:
    """``(C, y, x)`` DataArray of the chosen bands and their names (polarisations).

    Args:
        sar: ``(band, y, x)`` or ``(y, x)`` DataArray.
        bands: None (every band), names matched against the band names (``long_name``
            from the file's band descriptions, or string band coordinates), or 1-based
            positions; a comma-separated string as on the command line.

    Raises:
        InputError: A name or position matches no band.
    """
    band_dim = _band_dim(sar)
    if band_dim is None:
        sar = sar.expand_dims("band")
        band_dim = "band"
    names = _band_names(sar, band_dim)
    if isinstance(bands, str):
        bands = [token.strip() for token in bands.split(",") if token.strip()]
    elif isinstance(bands, int):
        bands = [bands]
    if bands is None:
        positions = list(range(len(names)))
    else:
        positions = []
        for token in bands:
            text = str(token)
            if text.isdigit():
                position = int(text) - 1
                if not 0 <= position < len(names):
                    raise InputError(f"band {text} does not exist; the DataArray has {len(names)}")
            else:
                matches = [i for i, n in enumerate(names) if n and n.upper().endswith(text.upper())]
                if len(matches) != 1:
                    raise InputError(
                        f"band {text!r} matches {len(matches)} of the bands {names}; "
                        "give its 1-based position instead"
                    )
                position = matches[0]
            positions.append(position)
    selected = sar.isel({band_dim: positions}).transpose(band_dim, sar.rio.y_dim, sar.rio.x_dim)
    return selected, [names[p] for p in positions]


def _nodata(sar: xr.DataArray) -> float | None:
    nodata = sar.rio.nodata
    if nodata is None:
        nodata = sar.rio.encoded_nodata
    return None if nodata is None else float(nodata)


def _scene_statistics(
    values: np.ndarray | dask.array.Array,
    nodata: float | None,
    input_spec: InputSpec,
    input_scale: str,
    display_filter: str,
) -> SceneStatistics:
    """Statistics of a (C, H, W) numpy or dask array from predict's decimated sample."""
    from sar_colorizer.api import valid_mask
    from sar_colorizer.inference.scene import scene_statistics, stats_shape

    height, width = values.shape[1:]
    out_h, out_w = stats_shape(height, width)
    if (out_h, out_w) != (height, width):
        values = values[:, decimation_indices(height, out_h), :]
        values = values[:, :, decimation_indices(width, out_w)]
    sample = np.asarray(values)
    valid = valid_mask(sample, nodata)
    if not valid.any():
        raise InputError("the SAR DataArray has no valid pixels (everything is nodata)")
    return scene_statistics(sample, valid, input_spec, input_scale, display_filter)


@dataclass(frozen=True)
class _Settings:
    """What every chunk is coloured with: predict's options, resolved once for the scene."""

    tone: str
    shrink: bool | None
    display_filter: str
    colour_upsampling: str
    chroma_limit: bool


def colorize_dataarray(
    sar: xr.DataArray,
    model: ModelLike = "default",
    *,
    bands: str | int | Sequence[str | int] | None = None,
    input_scale: str = "auto",
    tone: str = "balanced",
    tile_size: int | None = None,
    overlap: int | None = None,
    batch_size: int | None = None,
    stats: SceneStatistics | None = None,
    shrink: bool | None = None,
    display_filter: str = "median_guided",
    colour_upsampling: str = "guided",
    chroma_limit: bool = True,
    pixel_size: float | None = None,
) -> xr.DataArray:
    """Colorize a SAR ``DataArray``; lazily, chunk by chunk, when it is dask-backed.

    Args:
        sar: ``(band, y, x)`` or ``(y, x)`` DataArray with rioxarray's CRS, transform and
            nodata (e.g. ``rioxarray.open_rasterio(path)``, with ``chunks=`` for a lazy one).
        model: A loaded bundle or a bundle path (``"default"``: the shipped model).
        bands: Bands to feed the model (names such as ``"VH"`` or 1-based positions); None:
            all bands.
        input_scale, tone, tile_size, overlap, batch_size, shrink, display_filter,
            colour_upsampling, chroma_limit: As for ``sarcolor predict``
            (:func:`~sar_colorizer.inference.colorize_raster`), with its defaults.
        stats: :class:`~sar_colorizer.inference.SceneStatistics` to use instead of the scene's
            own (e.g. those of a larger scene this one is cut from).
        pixel_size: Ground pixel size in metres; None: from the CRS and transform (as
            ``predict``), or the model's training pixel size where they give none.

    Returns:
        ``(band, y, x)`` uint8 DataArray with bands R, G, B, A (alpha 0 exactly at nodata), the
        input's ``y``/``x`` coordinates, CRS and transform; dask-backed when the input is.

    Raises:
        MissingExtraError: xarray/rioxarray (the ``xarray`` extra) or dask (the ``dask``
            extra, for a dask-backed input) is not installed.
        InputError: Bad dimensions, bands or options, no valid pixel, ``shrink=True`` for a
            model without a confidence head.
        ModelMismatchError: The bands do not match the model's.
    """
    xr = _require("xarray", "xarray")
    _require("rioxarray", "xarray")
    from sar_colorizer.api import load_model, valid_mask
    from sar_colorizer.confidence import OutputPlan
    from sar_colorizer.inference import InputSpec, colorize_array, tile_settings
    from sar_colorizer.inference.colour import display_options
    from sar_colorizer.inference.tone import resolve_tone
    from sar_colorizer.io.pixel_size import pixel_size_metres

    bundle = load_model(model)
    selected, names = select_bands(sar, bands)
    bundle.check_input(len(names), names)
    OutputPlan.for_bundle(bundle, shrink)  # a bad shrink fails here, before any work
    display_filter, colour_upsampling = display_options(display_filter, colour_upsampling)
    resolve_tone(bundle, tone)  # an unknown tone fails here
    input_spec = InputSpec.from_bundle(bundle)
    nodata = _nodata(sar)
    data = selected.data
    lazy = not isinstance(data, np.ndarray)
    height, width = data.shape[1:]
    if pixel_size is None:
        pixel_size = pixel_size_metres(sar.rio.crs, sar.rio.transform(), width, height)
    if stats is None:
        stats = _scene_statistics(data, nodata, input_spec, input_scale, display_filter)
    tile_size, overlap = tile_settings(bundle, tile_size, overlap)
    settings = _Settings(tone, shrink, display_filter, colour_upsampling, bool(chroma_limit))

    if not lazy:
        values = np.asarray(data)
        valid = valid_mask(values, nodata)
        result = colorize_array(
            bundle, values, valid, input_scale, tone,
            stats=stats, tile_size=tile_size, overlap=overlap, batch_size=batch_size,
            shrink=shrink, display_filter=display_filter, colour_upsampling=colour_upsampling,
            chroma_limit=chroma_limit, pixel_size=pixel_size,
        )
        alpha = np.where(valid, np.uint8(255), np.uint8(0))
        rgba: np.ndarray | dask.array.Array = np.concatenate(
            [result["rgb"].transpose(2, 0, 1), alpha[None]], axis=0
        )
    else:
        _require("dask.array", "dask")
        model_ref = getattr(bundle, "path", None) or bundle
        rgba = _lazy_rgba(
            data, model_ref, bundle, stats, nodata, settings, tile_size, overlap, batch_size,
            pixel_size,
        )

    y_dim, x_dim = selected.rio.y_dim, selected.rio.x_dim
    coords: dict[Hashable, Any] = {
        name: coord
        for name, coord in selected.coords.items()
        if selected.dims[0] not in coord.dims
    }
    coords["band"] = list(RGBA_BANDS)
    out = xr.DataArray(
        rgba,
        dims=("band", y_dim, x_dim),
        coords=coords,
        attrs={"long_name": RGBA_BANDS},
        name="colour",
    )
    if sar.rio.crs is not None:
        out = out.rio.write_crs(sar.rio.crs)
    return out.rio.write_transform(sar.rio.transform())


def chunk_margin(bundle: Bundle, grid: TileGrid, display_filter: str) -> int:
    """Pixels of input an output chunk needs on each side (``dask.array.overlap`` depth).

    A tile of the scene's grid that touches the chunk reaches at most ``grid.tile_size`` px
    beyond it; the guided colour upsampling works inside each tile (its guide is the tile's
    own window of L), so it reaches no further; nor does the L envelope of the chroma limit
    (:func:`~sar_colorizer.color.gamut.lightness_envelope`, twice its radius). Both the
    network's speckle filter and the display filter that L is made from need their halo around
    that.
    """
    from sar_colorizer.color.gamut import envelope_reach
    from sar_colorizer.inference import InputSpec
    from sar_colorizer.sar.display import display_halo

    halo = max(InputSpec.from_bundle(bundle).halo, display_halo(display_filter))
    return max(int(grid.tile_size), envelope_reach()) + halo


def _lazy_rgba(
    data: dask.array.Array,
    model_ref: ModelLike,
    bundle: Bundle,
    stats: SceneStatistics,
    nodata: float | None,
    settings: _Settings,
    tile_size: int,
    overlap: int,
    batch_size: int | None,
    pixel_size: float | None,
) -> dask.array.Array:
    import dask.array as da

    from sar_colorizer.inference.runner import tiles_per_call
    from sar_colorizer.inference.tiles import tiling_plan
    from sar_colorizer.io.pixel_size import resample_factor

    height, width = data.shape[1:]
    factor = resample_factor(pixel_size, bundle.pixel_size)
    net_tile, grid = tiling_plan(bundle, height, width, tile_size, overlap, factor)
    depth = chunk_margin(bundle, grid, settings.display_filter)
    # One chunk holds every band; chunks at least as deep as the margin (dask's overlap
    # takes the margin from the neighbouring chunk only).
    depths = (min(depth, height), min(depth, width))
    chunks = [
        da.overlap.ensure_minimum_chunksize(axis_depth, axis_chunks)
        for axis_depth, axis_chunks in zip(depths, data.chunks[1:], strict=True)
    ]
    data = data.rechunk(((data.shape[0],), *chunks))
    expanded = da.overlap.overlap(
        data, depth={0: 0, 1: depths[0], 2: depths[1]}, boundary="none"
    )
    task = _BlockTask(
        model_ref=model_ref,
        stats=stats,
        nodata=nodata,
        settings=settings,
        grid=grid,
        net_tile=net_tile,
        depths=(int(depths[0]), int(depths[1])),
        per_call=tiles_per_call(grid.n_cols, net_tile, batch_size),
        row_starts=tuple(int(s) for s in np.cumsum((0,) + data.chunks[1])),
        col_starts=tuple(int(s) for s in np.cumsum((0,) + data.chunks[2])),
    )
    return da.map_blocks(
        task,
        expanded,
        chunks=((len(RGBA_BANDS),), data.chunks[1], data.chunks[2]),
        dtype=np.uint8,
        name="sarcolor-colorize",
    )


@dataclass(frozen=True)
class _BlockTask:
    """Colours one output chunk from its input chunk plus margin (picklable for workers)."""

    model_ref: ModelLike
    stats: SceneStatistics
    nodata: float | None
    settings: _Settings
    grid: TileGrid
    net_tile: int
    depths: tuple[int, int]
    per_call: int
    row_starts: tuple[int, ...]
    col_starts: tuple[int, ...]

    def __call__(
        self, block: np.ndarray, block_info: dict[int | None, dict[str, Any]] | None = None
    ) -> np.ndarray:
        assert block_info is not None
        _, iy, ix = block_info[0]["chunk-location"]
        r0, r1 = self.row_starts[iy], self.row_starts[iy + 1]
        c0, c1 = self.col_starts[ix], self.col_starts[ix + 1]
        return colorize_window(
            self.model_ref,
            np.asarray(block),
            (max(0, r0 - self.depths[0]), max(0, c0 - self.depths[1])),
            (r0, r1, c0, c1),
            self.grid,
            self.stats,
            self.nodata,
            self.per_call,
            net_tile=self.net_tile,
            tone=self.settings.tone,
            shrink=self.settings.shrink,
            display_filter=self.settings.display_filter,
            colour_upsampling=self.settings.colour_upsampling,
            chroma_limit=self.settings.chroma_limit,
        )


class _CoreBlender:
    """Blends weighted tile outputs into scene rows/columns ``core`` only, in predict's order
    (row of tiles, then column; from zero), so that each pixel gets the same sums as in
    :class:`~sar_colorizer.io.tiling.StripBlender`."""

    def __init__(self, grid: TileGrid, channels: int, core: tuple[int, int, int, int]) -> None:
        from sar_colorizer.io.tiling import StripBlender

        self.grid = grid
        self.core = core
        self.channels = channels
        r0, r1, c0, c1 = core
        self.values = np.zeros((r1 - r0, c1 - c0, channels), dtype=np.float32)
        self._weights = StripBlender(grid, channels)  # only for its axis weights

    def axis_weights(self, row: int, cols: range) -> tuple[np.ndarray, np.ndarray]:
        return self._weights.axis_weights(row, cols)

    def add_tiles(
        self, row: int, col_start: int, outputs: np.ndarray, weighted: bool = False
    ) -> None:
        if not weighted:
            raise ValueError("the core blender takes weighted outputs only")
        grid = self.grid
        size = grid.tile_size
        r0, r1, c0, c1 = self.core
        top = grid.row_origins[row]
        ty0, ty1 = max(top, r0), min(top + size, r1)
        for k, output in enumerate(outputs):
            left = grid.col_origins[col_start + k]
            tx0, tx1 = max(left, c0), min(left + size, c1)
            if ty1 > ty0 and tx1 > tx0:
                self.values[ty0 - r0 : ty1 - r0, tx0 - c0 : tx1 - c0] += output[
                    ty0 - top : ty1 - top, tx0 - left : tx1 - left
                ]


def colorize_window(
    model: ModelLike,
    values: np.ndarray,
    origin: tuple[int, int],
    core: tuple[int, int, int, int],
    grid: TileGrid,
    stats: SceneStatistics,
    nodata: float | None,
    per_call: int,
    *,
    net_tile: int | None = None,
    tone: str = "balanced",
    shrink: bool | None = None,
    display_filter: str = "median_guided",
    colour_upsampling: str = "guided",
    chroma_limit: bool = True,
) -> np.ndarray:
    """RGBA ``(4, h, w)`` of scene rows/columns ``core`` from raw values around them.

    Every step is ``predict``'s own (:mod:`sar_colorizer.inference`): the preprocessing and
    display filter (``relative_and_display``), the tiles' model runs with the guide, output
    transform and resampling to the training pixel size (``run_tile_row``), and the colour
    conversion; only the blending is restricted to ``core``.

    Args:
        model: Bundle or bundle path.
        values: ``(C, H', W')`` raw SAR values of scene pixels from ``origin`` on; they must hold
            every pixel the tiles touching ``core`` reach (reflected at the scene's edges) plus
            the filters' halo (:func:`chunk_margin`).
        origin: Scene ``(row, col)`` of ``values[:, 0, 0]``.
        core: Scene rows and columns ``(r0, r1, c0, c1)`` to colour.
        grid: The whole scene's :class:`~sar_colorizer.io.tiling.TileGrid` (on the input
            pixels; :func:`~sar_colorizer.inference.tiles.tiling_plan`).
        stats: The scene's :class:`~sar_colorizer.inference.SceneStatistics`.
        nodata: Nodata value of ``values`` (NaN and infinities are always invalid).
        per_call: Tiles per model call (predict's, for the same compiled shape).
        net_tile: Tile side the network sees (None: the grid's).
        tone, shrink, display_filter, colour_upsampling, chroma_limit: As for ``predict``.
    """
    from sar_colorizer.api import load_model, valid_mask
    from sar_colorizer.confidence import OutputPlan
    from sar_colorizer.inference.colour import ColourConverter
    from sar_colorizer.inference.runner import ModelRunner
    from sar_colorizer.inference.scene import (
        InputSpec,
        db_feature,
        relative_and_display,
        to_model_input,
    )
    from sar_colorizer.inference.tiles import run_tile_row
    from sar_colorizer.inference.tone import resolve_tone, tone_lut

    bundle = load_model(model)
    input_spec = InputSpec.from_bundle(bundle)
    plan = OutputPlan.for_bundle(bundle, shrink)
    tone, l_quantiles = resolve_tone(bundle, tone)
    valid = valid_mask(values, nodata)
    relative, display = relative_and_display(
        values, valid, stats.input_scale, stats.references, input_spec, display_filter
    )
    model_input = to_model_input(relative)
    del relative
    display = np.nan_to_num(display, nan=0.0)
    guide = db_feature(display) if colour_upsampling == "guided" else None
    y0, x0 = origin
    r0, r1, c0, c1 = core
    size = grid.tile_size
    rows = [r for r, o in enumerate(grid.row_origins) if o < r1 and o + size > r0]
    cols = [c for c, o in enumerate(grid.col_origins) if o < c1 and o + size > c0]
    blender = _CoreBlender(grid, plan.n_channels, core)
    runner = ModelRunner.for_bundle(bundle)
    for row in rows:
        run_tile_row(
            runner,
            model_input,
            blender,  # type: ignore[arg-type]  # a StripBlender restricted to core
            per_call,
            row,
            y0,
            guide,
            net_tile,
            plan.transform,
            data_col0=x0,
            cols=range(cols[0], cols[-1] + 1),
            valid=valid,
        )
    ab_norm = plan.split(blender.values)["ab"]
    local = (slice(r0 - y0, r1 - y0), slice(c0 - x0, c1 - x0))
    core_valid = np.ascontiguousarray(valid[local])
    lut = tone_lut(tone, stats.feature_quantiles, l_quantiles)
    converter = ColourConverter.shared(chroma_limit)
    # The L envelope reaches converter.margin px: less than the window's context around core.
    bounds = tuple(b[local] for b in converter.bounds(display, valid, guide))
    _, rgb = converter(
        np.ascontiguousarray(display[local]), ab_norm, core_valid, lut, with_lab=False,
        bounds=bounds,
    )
    alpha = np.where(core_valid, np.uint8(255), np.uint8(0))
    return np.concatenate([np.asarray(rgb).transpose(2, 0, 1), alpha[None]], axis=0)


__all__ = [
    "chunk_margin",
    "colorize_dataarray",
    "colorize_window",
    "decimation_indices",
    "select_bands",
]
