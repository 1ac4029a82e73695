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
- **Same steps**: each chunk is one window of the scene's
  :class:`~sar_colorizer.inference.core.SceneColourer`, the object ``predict`` colours with
  (:meth:`~sar_colorizer.inference.core.SceneColourer.colour_window`): the preprocessing and
  display filter that L is made from, tiles resampled to the model's training pixel size (the
  pixel size comes from the CRS and transform, as for ``predict``), the network with the
  guided colour upsampling and a confidence head's muting, and the colour conversion with its
  chroma limit; a change to ``predict``'s recipe reaches this path too.
- **Same valid mask**: nodata, NaN and, for an array read from a file (``encoding["source"]``,
  as rioxarray records it), the file's alpha band and internal masks
  (:mod:`sar_colorizer.io.masks`); alpha bands are never fed to the model.
- **Margin** (the ``dask.array.map_overlap`` depth, :func:`chunk_margin`): a tile touching the
  chunk reaches at most one tile beyond it (the guided upsampling works inside each tile, so it
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
from typing import TYPE_CHECKING, Any, TypeAlias

import numpy as np

from sar_colorizer.errors import InputError, MissingExtraError, install_command
from sar_colorizer.inference.options import ColourOptions
from sar_colorizer.io.masks import SourceMasks, values_valid

if TYPE_CHECKING:
    import dask.array
    import xarray as xr

    from sar_colorizer.bundle import Bundle, ModelLike
    from sar_colorizer.inference.core import SceneColourer
    from sar_colorizer.inference.options import Recipe
    from sar_colorizer.inference.scene import SceneStatistics
    from sar_colorizer.io.dataset import RasterInfo

    #: The raster an array was read from, the file band of each band position, its first pixel.
    FileBands: TypeAlias = tuple[RasterInfo, list[int], tuple[int, int]]

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


def _positions(
    names: list[str | None], bands: str | int | Sequence[str | int] | None
) -> list[int]:
    """0-based positions of ``bands`` (names or 1-based positions) among bands ``names``."""
    if isinstance(bands, str):
        bands = [token.strip() for token in bands.split(",") if token.strip()]
    elif isinstance(bands, int):
        bands = [bands]
    if bands is None:
        return list(range(len(names)))
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
    return positions


def _with_band_dim(sar: xr.DataArray) -> tuple[xr.DataArray, Hashable]:
    band_dim = _band_dim(sar)
    if band_dim is None:
        return sar.expand_dims("band"), "band"
    return sar, band_dim


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
    sar, band_dim = _with_band_dim(sar)
    names = _band_names(sar, band_dim)
    positions = _positions(names, bands)
    selected = sar.isel({band_dim: positions}).transpose(band_dim, sar.rio.y_dim, sar.rio.x_dim)
    return selected, [names[p] for p in positions]


def _nodata(sar: xr.DataArray) -> float | None:
    nodata = sar.rio.nodata
    if nodata is None:
        nodata = sar.rio.encoded_nodata
    return None if nodata is None else float(nodata)


@dataclass(frozen=True)
class ValidMask:
    """How a window of the selected bands is told valid: the array's nodata, NaN, and the
    masks of the file it was read from (picklable, for dask tasks)."""

    nodata: float | None = None
    source: SourceMasks | None = None

    def __call__(self, values: np.ndarray, row: int = 0, col: int = 0) -> np.ndarray:
        """``(h, w)`` valid mask of ``(C, h, w)`` values at array row ``row``, column ``col``."""
        valid = values_valid(values, self.nodata)
        if self.source is not None:
            masks = self.source.read(row, col, *values.shape[1:])
            if masks is not None:
                valid &= masks
        return valid


def _file_bands(sar: xr.DataArray) -> FileBands | None:
    """The raster ``sar`` was read from (``encoding["source"]``), the file's band number of
    each position of its band dimension, and the file pixel of its first pixel; None when it
    was not read from a raster or no longer matches it (other bands, names or grid)."""
    from sar_colorizer.errors import RasterError
    from sar_colorizer.io.dataset import read_info

    source = sar.encoding.get("source")
    if not source:
        return None
    try:
        info = read_info(source)
    except RasterError:
        return None
    band_dim = _band_dim(sar)
    coords = sar[band_dim].values if band_dim is not None else [sar.coords.get("band", 1)]
    numbers = [v.item() if hasattr(v, "item") else v for v in np.atleast_1d(coords)]
    if not all(isinstance(n, int) and 1 <= n <= info.count for n in numbers):
        return None
    names = _band_names(sar, band_dim) if band_dim is not None else [None]
    if any(name and name != info.descriptions[n - 1] for name, n in zip(names, numbers, strict=True)):
        return None
    grid, file_grid = sar.rio.transform(), info.transform
    col, row = ~file_grid * (grid.c, grid.f)
    height, width = sar.rio.height, sar.rio.width
    if (grid.a, grid.b, grid.d, grid.e) != (file_grid.a, file_grid.b, file_grid.d, file_grid.e) \
            or abs(col - round(col)) > 1e-6 or abs(row - round(row)) > 1e-6 \
            or not (0 <= round(row) <= info.height - height and 0 <= round(col) <= info.width - width):
        return None
    return info, numbers, (int(round(row)), int(round(col)))


def source_masks(found: FileBands | None, positions: list[int]) -> SourceMasks | None:
    """The dataset masks (alpha band, internal mask) of the raster an array was read from
    (``found``: :func:`_file_bands`), for the bands at ``positions`` of its band dimension;
    None when it was not read from a raster."""
    if found is None:
        return None
    info, numbers, (row, col) = found
    return SourceMasks(str(info.path), tuple(numbers[p] for p in positions), row, col)


def _data_positions(found: FileBands | None) -> list[int] | None:
    """Positions of the bands that are not the file's alpha bands; None when not read from a
    raster (``found``: :func:`_file_bands`)."""
    if found is None:
        return None
    info, numbers, _ = found
    return [p for p, n in enumerate(numbers) if n in set(info.data_bands)] or None


def _scene_statistics(
    values: np.ndarray | dask.array.Array, valid_of: ValidMask, recipe: Recipe
) -> SceneStatistics:
    """Statistics of a (C, H, W) numpy or dask array from predict's decimated sample."""
    from sar_colorizer.inference.scene import stats_shape

    height, width = values.shape[1:]
    out_h, out_w = stats_shape(height, width)
    rows, cols = decimation_indices(height, out_h), decimation_indices(width, out_w)
    if (out_h, out_w) != (height, width):
        values = values[:, rows, :]
        values = values[:, :, cols]
    sample = np.asarray(values)
    valid = values_valid(sample, valid_of.nodata)
    if valid_of.source is not None:  # the file's masks read decimated, as predict reads them
        masks = valid_of.source.read(0, 0, height, width, out_shape=(out_h, out_w))
        if masks is not None:
            valid &= masks
    if not valid.any():
        raise InputError("the SAR DataArray has no valid pixels (everything is nodata)")
    return recipe.statistics(sample, valid)


def colorize_dataarray(
    sar: xr.DataArray,
    model: ModelLike = "default",
    options: ColourOptions | None = None,
    *,
    stats: SceneStatistics | None = None,
    **settings: Any,
) -> xr.DataArray:
    """Colorize a SAR ``DataArray``; lazily, chunk by chunk, when it is dask-backed.

    Args:
        sar: ``(band, y, x)`` or ``(y, x)`` DataArray with rioxarray's CRS, transform and
            nodata (e.g. ``rioxarray.open_rasterio(path)``, with ``chunks=`` for a lazy one).
        model: A loaded bundle or a bundle path (``"default"``: the shipped model).
        options: How it is coloured (:class:`~sar_colorizer.inference.options.ColourOptions`,
            ``predict``'s defaults); ``bands`` are names such as ``"VH"`` or 1-based positions.
            The pixel size comes from the CRS and transform unless the options give one (as
            ``predict``), else the model's training pixel size.
        stats: :class:`~sar_colorizer.inference.SceneStatistics` to use instead of the scene's
            own (e.g. those of a larger scene this one is cut from).
        settings: Options by name, over ``options`` (``tone="matched"``, ``bands="VH"``, ...).

    Returns:
        ``(band, y, x)`` uint8 DataArray with bands R, G, B, A (alpha 0 exactly at invalid
        pixels), the input's ``y``/``x`` coordinates, CRS and transform, and the reference
        used in its attributes (``SARCOLOR_INPUT_REFERENCE``, ``..._DB``, ``..._SOURCE``:
        written as tags by ``rio.to_raster``); dask-backed when the input is.

    Raises:
        MissingExtraError: xarray/rioxarray (the ``xarray`` extra) or dask (the ``dask``
            extra, for a dask-backed input) is not installed.
        InputError: Bad dimensions, bands or options, no valid pixel, ``shrink=True`` for a
            model without a confidence head.
        ModelMismatchError: The bands do not match the model's.
    """
    xr = _require("xarray", "xarray")
    _require("rioxarray", "xarray")
    from sar_colorizer.bundle import cached_bundle
    from sar_colorizer.inference.core import SceneColourer
    from sar_colorizer.io.pixel_size import pixel_size_metres
    from sar_colorizer.io.sar_input import reference_tags

    options = ColourOptions.of(options, **settings)
    bundle = cached_bundle(model)
    found = _file_bands(sar)  # opens the source raster once
    selected, names, positions = _selection(sar, options.bands, found)
    names = options.names_of(names, "the DataArray")
    use, present = bundle.input_layout(len(names), names)
    if list(use) != list(range(len(names))):  # a model of optional bands takes some of them
        selected = selected.isel({selected.dims[0]: list(use)})
        positions = [positions[i] for i in use]
    # bad options fail here, before any work
    recipe = options.resolve(bundle).for_input(present)
    valid_of = ValidMask(_nodata(sar), source_masks(found, positions))
    data = selected.data
    height, width = data.shape[1:]
    if stats is None:
        stats = _scene_statistics(data, valid_of, recipe)
    colourer = SceneColourer.for_scene(recipe,
        stats, height, width, pixel_size_metres(sar.rio.crs, sar.rio.transform(), width, height)
    )
    if isinstance(data, np.ndarray):
        rgba: np.ndarray | dask.array.Array = _eager_rgba(bundle, colourer, data, valid_of)
    else:
        _require("dask.array", "dask")
        rgba = _lazy_rgba(data, getattr(bundle, "path", None) or bundle, colourer, valid_of)
    out = _as_dataarray(xr, sar, selected, rgba)
    out.attrs.update(reference_tags(stats.references, stats.reference_source))
    return out


def _selection(
    sar: xr.DataArray, bands: str | int | Sequence[str | int] | None, found: FileBands | None
) -> tuple[xr.DataArray, list[str | None], list[int]]:
    """:func:`select_bands` (without the file's alpha bands when no bands are named) and the
    positions of the selected bands."""
    if bands is None:
        bands = [p + 1 for p in _data_positions(found) or []] or None
    selected, names = select_bands(sar, bands)
    with_dim, band_dim = _with_band_dim(sar)
    return selected, names, _positions(_band_names(with_dim, band_dim), bands)


def _eager_rgba(
    bundle: Bundle, colourer: SceneColourer, data: np.ndarray, valid_of: ValidMask
) -> np.ndarray:
    """RGBA of an array in memory: the whole scene as one window."""
    from sar_colorizer.inference.runner import ModelRunner

    values = np.asarray(data)
    valid = valid_of(values)
    height, width = valid.shape
    rgb, valid = colourer.colour_window(
        ModelRunner.for_bundle(bundle), values, valid, (0, 0), (0, height, 0, width)
    )
    alpha = np.where(valid, np.uint8(255), np.uint8(0))
    return np.concatenate([rgb.transpose(2, 0, 1), alpha[None]], axis=0)


def _as_dataarray(
    xr: ModuleType, sar: xr.DataArray, selected: xr.DataArray, rgba: Any
) -> xr.DataArray:
    """The RGBA DataArray with the input's ``y``/``x`` coordinates, CRS and transform."""
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


def chunk_margin(colourer: SceneColourer) -> int:
    """Pixels of input an output chunk needs on each side (``dask.array.overlap`` depth).

    A tile of the scene's grid that touches the chunk reaches at most ``grid.tile_size`` px
    beyond it; the guided colour upsampling works inside each tile (its guide is the tile's
    own window of L), so it reaches no further; nor does the L envelope of the chroma limit
    (:func:`~sar_colorizer.color.gamut.lightness_envelope`, twice its radius). Both the
    network's speckle filter and the display filter that L is made from need their halo around
    that.
    """
    return max(int(colourer.grid.tile_size), colourer.margin) + colourer.recipe.halo


def _lazy_rgba(
    data: dask.array.Array, model_ref: ModelLike, colourer: SceneColourer, valid_of: ValidMask
) -> dask.array.Array:
    """RGBA of a dask array, one task per chunk: ``dask.array.map_overlap`` hands each task
    its chunk with the margin (:func:`chunk_margin`) of the neighbouring chunks, none beyond
    the scene's edges."""
    import dask.array as da

    height, width = data.shape[1:]
    depth = chunk_margin(colourer)
    # One chunk holds every band; chunks at least as deep as the margin (dask's overlap
    # takes the margin from the neighbouring chunk only).
    depths = (min(depth, height), min(depth, width))
    chunks = [
        da.overlap.ensure_minimum_chunksize(axis_depth, axis_chunks)
        for axis_depth, axis_chunks in zip(depths, data.chunks[1:], strict=True)
    ]
    data = data.rechunk(((data.shape[0],), *chunks))
    task = _BlockTask(model_ref, colourer, valid_of, (int(depths[0]), int(depths[1])))
    return da.map_overlap(
        task,
        data,
        depth={0: 0, 1: depths[0], 2: depths[1]},
        boundary="none",
        trim=False,
        chunks=((len(RGBA_BANDS),), data.chunks[1], data.chunks[2]),
        dtype=np.uint8,
        name="sarcolor-colorize",
    )


@dataclass(frozen=True)
class _BlockTask:
    """Colours one output chunk from its input chunk plus margin (picklable for workers)."""

    model_ref: ModelLike
    colourer: SceneColourer
    valid_of: ValidMask
    depths: tuple[int, int]

    def __call__(
        self, block: np.ndarray, block_info: dict[int | None, dict[str, Any]] | None = None
    ) -> np.ndarray:
        from sar_colorizer.bundle import cached_bundle
        from sar_colorizer.inference.runner import ModelRunner

        if block_info is None:
            raise ValueError("map_overlap passes block_info")
        _, (r0, r1), (c0, c1) = block_info[None]["array-location"]  # the output chunk
        origin = (max(0, r0 - self.depths[0]), max(0, c0 - self.depths[1]))
        values = np.asarray(block)
        rgb, valid = self.colourer.colour_window(
            ModelRunner.for_bundle(cached_bundle(self.model_ref)),
            values,
            self.valid_of(values, *origin),
            origin,
            (r0, r1, c0, c1),
        )
        alpha = np.where(valid, np.uint8(255), np.uint8(0))
        return np.concatenate([rgb.transpose(2, 0, 1), alpha[None]], axis=0)


__all__ = [
    "ValidMask",
    "chunk_margin",
    "colorize_dataarray",
    "decimation_indices",
    "select_bands",
    "source_masks",
]
