"""Reading the assets of STAC items onto tile grids: the SAR and optical bands of a scene pair.

A tile of a scene pair (:func:`read_tile`) is read straight from the items' assets through GDAL
(``/vsicurl/`` for remote Cloud-Optimised GeoTIFFs, with :data:`GDAL_HTTP_SETTINGS`: only the
blocks of each tile are fetched) onto a tile of the optical item's grid (:func:`tile_grids`).
SAR is resampled bilinearly in linear power, then turned into dB; optical digital numbers become
reflectance x 10000 (:func:`reflectance_transform`), masked by the scene classification
(:data:`SCL_MASKED`). The search, the matching of scenes and the writing of the pairs folder are
:mod:`sar_colorizer.data.stac`.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urlparse

import numpy as np

from sar_colorizer.errors import InputError

if TYPE_CHECKING:
    import pystac
    from affine import Affine
    from rasterio.crs import CRS

    from sar_colorizer.data.stac import ScenePair

#: Asset keys tried, in order, for each band (Planetary Computer: ``vv``, ``B04``, ``SCL``;
#: Earth Search: ``red``, ``scl``).
SAR_ASSETS: dict[str, tuple[str, ...]] = {"VV": ("vv", "VV"), "VH": ("vh", "VH")}
OPTICAL_ASSETS: dict[str, tuple[str, ...]] = {
    "B04": ("B04", "red", "b04"),
    "B03": ("B03", "green", "b03"),
    "B02": ("B02", "blue", "b02"),
}
SCL_ASSETS = ("SCL", "scl")

#: Sentinel-2 Level-2A scene classification classes masked in the optical tiles: the optical
#: image does not show the colour of the land there (the SAR sees through clouds).
SCL_MASKED: dict[int, str] = {
    0: "no data",
    1: "saturated or defective",
    3: "cloud shadow",
    8: "cloud, medium probability",
    9: "cloud, high probability",
    10: "thin cirrus",
    11: "snow or ice",
}

#: Sentinel-2 stores reflectance x this.
REFLECTANCE_SCALE = 10000.0
#: Level-2A offset (in reflectance) from processing baseline 04.00 on.
BASELINE_04_OFFSET = -0.1

#: GDAL settings for reading Cloud-Optimised GeoTIFFs over HTTP; a variable already set in the
#: environment wins. They avoid listing remote folders, merge and multiplex range requests,
#: retry transient errors and cache blocks.
GDAL_HTTP_SETTINGS: dict[str, str] = {
    "GDAL_DISABLE_READDIR_ON_OPEN": "EMPTY_DIR",
    "GDAL_HTTP_MERGE_CONSECUTIVE_RANGES": "YES",
    "GDAL_HTTP_MULTIPLEX": "YES",
    "GDAL_HTTP_VERSION": "2",
    "GDAL_HTTP_MAX_RETRY": "3",
    "GDAL_HTTP_RETRY_DELAY": "2",
    "GDAL_HTTP_TIMEOUT": "60",
    "CPL_VSIL_CURL_ALLOWED_EXTENSIONS": ".tif,.tiff,.TIF,.TIFF",
    "VSI_CACHE": "TRUE",
    "VSI_CACHE_SIZE": "67108864",
    "GDAL_CACHEMAX": "256",
}


def one_line(error: BaseException) -> str:
    """The first line of an error's message (its class name where it has none)."""
    text = str(error).strip() or type(error).__name__
    return text.splitlines()[0]



def asset_key(item: pystac.Item, candidates: Sequence[str], band: str) -> str:
    """The first of ``candidates`` that the item has as an asset.

    Raises:
        InputError: None of them (the message names the item, the band and its assets).
    """
    for key in candidates:
        if key in item.assets:
            return key
    raise InputError(
        f"item {item.id} has no {band} asset (looked for {', '.join(candidates)}; it has "
        f"{', '.join(sorted(item.assets)) or 'none'}); is it the right collection?"
    )


def asset_href(item: pystac.Item, key: str) -> str:
    """The asset's absolute href, as GDAL opens it (``s3://`` -> ``/vsis3/``; http through
    rasterio's ``/vsicurl/``)."""
    href = item.assets[key].get_absolute_href() or item.assets[key].href
    if href.startswith("s3://"):
        return "/vsis3/" + href[len("s3://"):]
    if href.startswith("file://"):
        return urlparse(href).path
    return href


def reflectance_transform(item: pystac.Item, key: str) -> tuple[float, float]:
    """``(scale, offset)`` turning the asset's digital numbers into reflectance.

    From the asset's ``raster:bands`` where given; else 1/10000 and the Level-2A offset of
    processing baseline 04.00 and later (``s2:processing_baseline``), unless the provider says
    it is applied already (``earthsearch:boa_offset_applied``).
    """
    bands = item.assets[key].extra_fields.get("raster:bands") or []
    if bands and isinstance(bands[0], dict) and "scale" in bands[0]:
        return float(bands[0]["scale"]), float(bands[0].get("offset", 0.0))
    scale = 1.0 / REFLECTANCE_SCALE
    properties = item.properties
    if properties.get("earthsearch:boa_offset_applied"):
        return scale, 0.0
    baseline = properties.get("s2:processing_baseline")
    try:
        offset = BASELINE_04_OFFSET if baseline is not None and float(baseline) >= 4.0 else 0.0
    except ValueError:
        offset = 0.0
    return scale, offset


# --------------------------------------------------------------------------------------------
# Reading tiles
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Grid:
    """A pixel grid: CRS, transform and shape."""

    crs: CRS
    transform: Affine
    height: int
    width: int


def gdal_settings() -> dict[str, str | int]:
    """:data:`GDAL_HTTP_SETTINGS` less those the environment sets itself, for
    ``rasterio.Env`` (which wants numbers as int)."""
    return {k: int(v) if v.isdigit() else v for k, v in GDAL_HTTP_SETTINGS.items()
            if k not in os.environ}


class AssetReader:
    """Opens assets once per scene and reads tiles from them; errors name the item and asset."""

    def __init__(self) -> None:
        self._open: dict[str, Any] = {}

    def dataset(self, item: pystac.Item, key: str) -> Any:
        import rasterio

        href = asset_href(item, key)
        if href not in self._open:
            try:
                self._open[href] = rasterio.open(href)
            except rasterio.errors.RasterioError as error:
                raise InputError(_asset_error(item, key, href, error)) from None
        return self._open[href]

    def read(self, item: pystac.Item, key: str, grid: Grid, resampling: str) -> np.ndarray:
        """Band 1 of the asset on ``grid`` (float32, NaN where the asset has no data)."""
        import rasterio
        from rasterio.enums import Resampling
        from rasterio.vrt import WarpedVRT
        from rasterio.windows import from_bounds

        src = self.dataset(item, key)
        href = asset_href(item, key)
        try:
            if src.crs == grid.crs and _same_pixels(src.transform, grid.transform):
                window = from_bounds(*_bounds(grid), transform=src.transform)
                window = window.round_offsets().round_lengths()
                values = src.read(1, window=window, boundless=True, masked=True,
                                  out_shape=(grid.height, grid.width))
                return np.ma.filled(values.astype(np.float32), np.nan)
            with WarpedVRT(src, crs=grid.crs, transform=grid.transform, width=grid.width,
                           height=grid.height, resampling=Resampling[resampling],
                           src_nodata=src.nodata, nodata=np.nan, dtype="float32") as vrt:
                return vrt.read(1)
        except rasterio.errors.RasterioError as error:
            raise InputError(_asset_error(item, key, href, error)) from None

    def close(self) -> None:
        for src in self._open.values():
            src.close()
        self._open.clear()


def _asset_error(item: pystac.Item, key: str, href: str, error: BaseException) -> str:
    return (f"item {item.id}: asset {key} ({href}) cannot be read ({one_line(error)}); check "
            "the connection, or whether the URL needs signing (--sign)")


def _same_pixels(a: Affine, b: Affine) -> bool:
    """Same pixel size and orientation, and origins a whole number of pixels apart."""
    if not all(math.isclose(x, y, rel_tol=0, abs_tol=1e-9) for x, y in
               ((a.a, b.a), (a.b, b.b), (a.d, b.d), (a.e, b.e))):
        return False
    col = (b.c - a.c) / a.a
    row = (b.f - a.f) / a.e
    return abs(col - round(col)) < 1e-6 and abs(row - round(row)) < 1e-6


def _bounds(grid: Grid) -> tuple[float, float, float, float]:
    from rasterio.transform import array_bounds

    south_north = array_bounds(grid.height, grid.width, grid.transform)
    return south_north[0], south_north[1], south_north[2], south_north[3]


def tile_grids(grid: Grid, bbox: Sequence[float], size: int) -> list[tuple[int, int, Grid]]:
    """Square tiles of ``size`` px covering the part of ``grid`` inside ``bbox`` (degrees).

    The last row and column of tiles are shifted back to end at the edge of that part (they
    overlap their neighbours), so every tile is ``size`` px where the part is that large; a part
    smaller than ``size`` is one tile of its own size.

    Returns:
        ``(row, col, tile grid)`` for each tile, row-major.
    """
    from rasterio.warp import transform_bounds
    from rasterio.windows import Window, from_bounds, transform

    west, south, east, north = transform_bounds("EPSG:4326", grid.crs, *bbox, densify_pts=21)
    window = from_bounds(west, south, east, north, transform=grid.transform)
    full = Window(0, 0, grid.width, grid.height)
    try:
        window = window.intersection(full)
    except Exception:  # rasterio.errors.WindowError: no intersection
        return []
    col0, row0 = max(0, math.floor(window.col_off)), max(0, math.floor(window.row_off))
    col1 = min(grid.width, math.ceil(window.col_off + window.width))
    row1 = min(grid.height, math.ceil(window.row_off + window.height))
    if col1 - col0 < 1 or row1 - row0 < 1:
        return []

    def starts(first: int, stop: int) -> list[int]:
        length = stop - first
        if length <= size:
            return [first]
        offsets = list(range(first, stop - size + 1, size))
        if offsets[-1] + size < stop:
            offsets.append(stop - size)
        return offsets

    tiles = []
    for r, row in enumerate(starts(row0, row1)):
        for c, col in enumerate(starts(col0, col1)):
            tile = Window(col, row, min(size, col1 - col), min(size, row1 - row))
            tiles.append((r, c, Grid(grid.crs, transform(tile, grid.transform),
                                     int(tile.height), int(tile.width))))
    return tiles


@dataclass
class PairTile:
    """One pair tile read onto the optical grid."""

    sar_db: np.ndarray  # (2, H, W) float32 VV, VH in dB; NaN = nodata
    reflectance: np.ndarray  # (3, H, W) uint16 B04, B03, B02 x 10000; 0 = nodata / masked
    valid_fraction: float  # share of pixels valid in both
    masked_fraction: float  # share of pixels the scene classification masked


def read_tile(reader: AssetReader, pair: ScenePair, grid: Grid) -> PairTile:
    """Read one tile of a scene pair onto ``grid`` (a tile of the optical item's grid)."""
    sar_db = []
    for band, candidates in SAR_ASSETS.items():
        key = asset_key(pair.sar, candidates, band)
        power = reader.read(pair.sar, key, grid, "bilinear")
        with np.errstate(divide="ignore", invalid="ignore"):
            db = np.where(np.isfinite(power) & (power > 0), 10.0 * np.log10(power), np.nan)
        sar_db.append(db.astype(np.float32))
    sar = np.stack(sar_db)

    bands = []
    for band, candidates in OPTICAL_ASSETS.items():
        key = asset_key(pair.optical, candidates, band)
        scale, offset = reflectance_transform(pair.optical, key)
        digital = reader.read(pair.optical, key, grid, "bilinear")
        product_valid = np.isfinite(digital) & (digital > 0)  # L2A: 0 is no data
        bands.append((np.where(product_valid, digital * scale + offset, np.nan), product_valid))
    optical_valid = np.logical_and.reduce([valid for _, valid in bands])
    masked = np.zeros(optical_valid.shape, dtype=bool)
    scl_key = next((k for k in SCL_ASSETS if k in pair.optical.assets), None)
    if scl_key is not None:
        scl = reader.read(pair.optical, scl_key, grid, "nearest")
        masked = ~np.isfinite(scl) | np.isin(np.nan_to_num(scl, nan=0).astype(np.int64),
                                             list(SCL_MASKED))
    optical_valid &= ~masked
    reflectance = np.zeros((3, *optical_valid.shape), dtype=np.uint16)
    for index, (values, _) in enumerate(bands):
        scaled = np.clip(np.round(np.nan_to_num(values) * REFLECTANCE_SCALE), 1, 65535)
        reflectance[index] = np.where(optical_valid, scaled, 0).astype(np.uint16)
    valid = optical_valid & np.all(np.isfinite(sar), axis=0)
    return PairTile(sar, reflectance, float(valid.mean()), float(masked.mean()))
