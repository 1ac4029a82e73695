"""Sentinel-1 GRD products to georeferenced backscatter, streamed in bounded memory.

Two passes, each window by window (memory stays at a few hundred MB for a 26000 x 17000 px,
dual-polarisation product):

1. **Radar geometry.** The measurement digital numbers are read in strips; every tile that
   holds data is calibrated (sigma0, beta0 or gamma0 from the calibration LUTs, bilinear over
   lines and pixels), freed of thermal noise (range x azimuth noise LUTs) and written as
   float32 linear power to a temporary tiled GeoTIFF that carries the geolocation grid as GCPs.
   Tiles of border-noise zeros are never written (a sparse file), so a product that is mostly
   empty costs little.
2. **Geocoding.** Output tiles in the UTM zone of the product's footprint, at the product's
   pixel spacing, are resampled (bilinear, OpenCV ``remap``) from the radar positions that
   GDAL's thin plate spline transformer through the geolocation grid gives (exact at the grid
   points; see :func:`_source_coordinates`). Only output tiles that the valid radar tiles
   reach are computed. Not GDAL's warper itself: its default for GCPs, a global polynomial
   through the grid, misses it by up to 138 px in range on a 250 km IW swath, and with the
   thin plate spline it takes about 2 s per megapixel; a warped VRT given an explicit output
   grid ignores the GCPs altogether (rasterio 1.4, GDAL 3.10).

What this is not: no terrain correction (the geolocation grid places pixels on the ellipsoid
at the grid points' heights, so relief is displaced by foreshortening and layover, up to
hundreds of metres in mountains), no radiometric terrain flattening (gamma0 here is
ellipsoid-based: ``sigma0 / cos(incidence)`` through the LUT), no orbit refinement, no speckle
filtering. For terrain-corrected input use an analysis-ready product (OPERA RTC-S1, ASF HyP3
RTC), which sarcolor reads as it is.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import shutil
import tempfile
import time
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import rasterio
from affine import Affine
from rasterio.control import GroundControlPoint
from rasterio.crs import CRS
from rasterio.errors import NotGeoreferencedWarning, RasterioError
from rasterio.transform import GCPTransformer
from rasterio.warp import transform as transform_points
from rasterio.windows import Window

from sar_colorizer.errors import OutputError, ProductError
from sar_colorizer.io.atomic import atomic_file, temporary_path
from sar_colorizer.sar.product import (
    CALIBRATIONS,
    Annotation,
    Sentinel1Product,
    calibrate_dn,
    open_product,
)
from sar_colorizer.sar.radiometry import linear_to_db
from sar_colorizer.version import __version__

logger = logging.getLogger(__name__)

__all__ = [
    "ProductOptions",
    "backscatter_raster",
    "calibrate_product",
    "geocoding_grid",
    "product_gcps",
    "utm_crs",
]

WGS84 = CRS.from_epsg(4326)
TILE = 1024
"""Side of the windows both passes work in (and of the output blocks' multiples)."""
_BLOCK = 512
_GDAL_CACHE_MB = 256
_RESAMPLINGS = ("bilinear", "nearest", "cubic")
GEOCODING = ("ellipsoid geocoding from the annotation's geolocation grid (thin plate spline "
             "through its GCPs); no terrain correction")


@dataclass(frozen=True)
class ProductOptions:
    """How a product becomes backscatter.

    Attributes:
        calibration: ``"sigma0"`` (default), ``"beta0"`` or ``"gamma0"`` (ellipsoid-based).
        noise_removal: Subtract the thermal noise LUTs (range and azimuth vectors).
        polarisations: Polarisations to read, in band order; None for all in the product.
        resampling: Geocoding resampling: ``"bilinear"`` (default), ``"nearest"``, ``"cubic"``.
    """

    calibration: str = "sigma0"
    noise_removal: bool = True
    polarisations: tuple[str, ...] | None = None
    resampling: str = "bilinear"

    def __post_init__(self) -> None:
        if self.calibration not in CALIBRATIONS:
            raise ProductError(
                f"unknown calibration {self.calibration!r}; choose one of: {', '.join(CALIBRATIONS)}"
            )
        if self.resampling not in _RESAMPLINGS:
            raise ProductError(
                f"unknown resampling {self.resampling!r}; choose one of: {', '.join(_RESAMPLINGS)}"
            )

    def chosen(self, product: Sentinel1Product) -> tuple[str, ...]:
        """The polarisations to read from ``product``, checked against what it holds."""
        wanted = self.polarisations or product.polarisations
        wanted = tuple(pol.strip().upper() for pol in wanted)
        missing = [pol for pol in wanted if pol not in product.images]
        if missing:
            raise ProductError(
                f"{product.path}: holds {', '.join(product.polarisations)}, not "
                f"{', '.join(missing)}; choose among those"
            )
        return wanted


def product_gcps(annotation: Annotation) -> list[GroundControlPoint]:
    """The geolocation grid as GDAL GCPs (pixel/line of the sample centre: index + 0.5)."""
    return [
        GroundControlPoint(row=line + 0.5, col=pixel + 0.5, x=lon, y=lat, z=height)
        for line, pixel, lat, lon, height in annotation.gcps
    ]


def utm_crs(lon_lat: Sequence[tuple[float, float]] | np.ndarray) -> CRS:
    """The WGS 84 / UTM zone of the centre of some (longitude, latitude) points."""
    points = np.asarray(lon_lat, dtype=np.float64)
    lon, lat = float(points[:, 0].mean()), float(points[:, 1].mean())
    zone = min(60, int(math.floor((lon + 180.0) / 6.0)) + 1)
    return CRS.from_epsg((32600 if lat >= 0 else 32700) + zone)


@dataclass(frozen=True)
class Geocoding:
    """The output grid: CRS, transform and size."""

    crs: CRS
    transform: Affine
    width: int
    height: int


def geocoding_grid(product: Sentinel1Product, annotation: Annotation) -> Geocoding:
    """A north-up grid in the footprint's UTM zone at the product's pixel spacing, covering
    the image (origin snapped to whole multiples of the spacing)."""
    crs = utm_crs(product.footprint or annotation.gcps[:, [3, 2]])
    spacing = float(min(annotation.range_spacing, annotation.azimuth_spacing))
    if not spacing > 0:
        raise ProductError(f"{product.path}: the annotation gives no pixel spacing")
    # The image outline through the thin plate spline (GDAL's suggested output uses a global
    # polynomial through the grid, which cuts off kilometres of swath).
    h, w = annotation.height, annotation.width
    steps = np.linspace(0.0, 1.0, 65)
    rows = np.concatenate([np.zeros_like(steps), np.full_like(steps, h), steps * h, steps * h])
    cols = np.concatenate([steps * w, steps * w, np.zeros_like(steps), np.full_like(steps, w)])
    with GCPTransformer(product_gcps(annotation), tps=True) as transformer:
        lon, lat = transformer.xy(rows, cols, offset="ul")
    xs, ys = transform_points(WGS84, crs, np.asarray(lon), np.asarray(lat))
    left = math.floor(min(xs) / spacing) * spacing
    top = math.ceil(max(ys) / spacing) * spacing
    width = int(math.ceil((max(xs) - left) / spacing))
    height = int(math.ceil((top - min(ys)) / spacing))
    return Geocoding(crs, Affine(spacing, 0.0, left, 0.0, -spacing, top), width, height)


def _strips(height: int) -> Iterator[tuple[int, int]]:
    for row in range(0, height, TILE):
        yield row, min(TILE, height - row)


def _progress(total: int, desc: str, progress: bool) -> Any:
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, unit="tile", disable=None if progress else True)


def _open_measurement(product: Sentinel1Product, pol: str, annotation: Annotation) -> Any:
    path = product.measurement_path(pol)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", NotGeoreferencedWarning)
            src = rasterio.open(path)
    except RasterioError as error:
        raise ProductError(
            f"{product.path}: cannot read the {pol} measurement ({str(error).splitlines()[0]}); "
            "the download may be damaged: download it again"
        ) from None
    if (src.width, src.height) != (annotation.width, annotation.height):
        src.close()
        raise ProductError(
            f"{product.path}: the {pol} measurement is {src.width} x {src.height} px but its "
            f"annotation says {annotation.width} x {annotation.height}; download it again"
        )
    return src


def _write_radar(
    product: Sentinel1Product,
    pols: tuple[str, ...],
    options: ProductOptions,
    annotation: Annotation,
    path: Path,
    progress: bool,
) -> list[Window]:
    """Pass 1: calibrated, noise-free linear backscatter in radar geometry; returns, per tile
    that holds data, the window of its data."""
    luts = [product.calibration(pol, options.calibration) for pol in pols]
    noises = [product.noise(pol) if options.noise_removal else None for pol in pols]
    profile = {
        "driver": "GTiff", "width": annotation.width, "height": annotation.height,
        "count": len(pols), "dtype": "float32", "nodata": float("nan"), "tiled": True,
        "blockxsize": _BLOCK, "blockysize": _BLOCK, "sparse_ok": True, "bigtiff": "if_safer",
    }  # uncompressed: read back once, and compressing float noise costs more than the disk
    valid_tiles: list[Window] = []
    with contextlib.ExitStack() as stack:
        sources = [stack.enter_context(_open_measurement(product, pol, annotation)) for pol in pols]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", NotGeoreferencedWarning)
            dst = stack.enter_context(rasterio.open(path, "w", **profile))
        dst.gcps = (product_gcps(annotation), WGS84)
        columns = range(0, annotation.width, TILE)
        bar = stack.enter_context(_progress(
            len(columns) * len(range(0, annotation.height, TILE)),
            f"calibrate {','.join(pols)}", progress,
        ))
        for row, height in _strips(annotation.height):
            strip = Window(0, row, annotation.width, height)
            dns = []
            for pol, src in zip(pols, sources, strict=True):
                try:
                    dns.append(src.read(1, window=strip))
                except RasterioError as error:
                    raise ProductError(
                        f"{product.path}: cannot read the {pol} measurement at line {row} "
                        f"({str(error).splitlines()[0]}); download the product again"
                    ) from None
            for col in columns:
                width = min(TILE, annotation.width - col)
                tiles = [dn[:, col : col + width] for dn in dns]
                bar.update(1)
                if not any(np.any(tile != 0) for tile in tiles):
                    continue  # border noise (DN 0) only
                out = np.empty((len(pols), height, width), dtype=np.float32)
                for k, (tile, lut, noise, src) in enumerate(
                    zip(tiles, luts, noises, sources, strict=True)
                ):
                    out[k] = calibrate_dn(
                        tile,
                        lut.window(row, col, height, width),
                        None if noise is None else noise.window(row, col, height, width),
                        src.nodata,
                    )
                if np.isnan(out).all():
                    continue
                dst.write(out, window=Window(col, row, width, height))
                valid = np.isfinite(out).any(axis=0)
                rows_valid = np.flatnonzero(np.any(valid, axis=1))
                cols_valid = np.flatnonzero(np.any(valid, axis=0))
                valid_tiles.append(Window(  # the data's extent within the tile
                    col + int(cols_valid[0]), row + int(rows_valid[0]),
                    int(cols_valid[-1] - cols_valid[0]) + 1,
                    int(rows_valid[-1] - rows_valid[0]) + 1,
                ))
    return valid_tiles


def _grid_and_tiles(
    product: Sentinel1Product, annotation: Annotation, radar_tiles: list[Window]
) -> tuple[Geocoding, list[Window]]:
    """The output grid cut to where the valid radar tiles land (a product with data in one
    corner gives an output of that corner, not of its whole footprint), and its TILE x TILE
    windows that they reach."""
    grid = geocoding_grid(product, annotation)
    boxes = _radar_tile_boxes(annotation, grid, radar_tiles)
    if boxes.size == 0:
        return grid, []
    col0 = int(max(0, math.floor(boxes[:, 0].min())))
    row0 = int(max(0, math.floor(boxes[:, 1].min())))
    col1 = int(min(grid.width, math.ceil(boxes[:, 2].max()) + 1))
    row1 = int(min(grid.height, math.ceil(boxes[:, 3].max()) + 1))
    cut = Geocoding(grid.crs, grid.transform * Affine.translation(col0, row0), col1 - col0,
                    row1 - row0)
    boxes = boxes - np.array([col0, row0, col0, row0])
    tiles = []
    for row in range(0, cut.height, TILE):
        for col in range(0, cut.width, TILE):
            window = Window(col, row, min(TILE, cut.width - col), min(TILE, cut.height - row))
            reached = ((boxes[:, 0] < col + window.width) & (boxes[:, 2] >= col)
                       & (boxes[:, 1] < row + window.height) & (boxes[:, 3] >= row))
            if reached.any():
                tiles.append(window)
    return cut, tiles


def _radar_tile_boxes(
    annotation: Annotation, grid: Geocoding, radar_tiles: list[Window]
) -> np.ndarray:
    """Per valid radar tile (2 px margin), the box ``(col0, row0, col1, row1)`` of output
    pixels its outline reaches, through the thin plate spline; ``(n, 4)``."""
    if not radar_tiles:
        return np.empty((0, 4))
    rows, cols = [], []
    for tile in radar_tiles:
        r0, c0 = tile.row_off - 2, tile.col_off - 2
        r1, c1 = tile.row_off + tile.height + 2, tile.col_off + tile.width + 2
        for t in np.linspace(0.0, 1.0, 5):
            rows += [r0, r1, r0 + t * (r1 - r0), r0 + t * (r1 - r0)]
            cols += [c0 + t * (c1 - c0), c0 + t * (c1 - c0), c0, c1]
    with GCPTransformer(product_gcps(annotation), tps=True) as transformer:
        lon, lat = transformer.xy(rows, cols, offset="ul")
    x, y = transform_points(WGS84, grid.crs, np.atleast_1d(lon), np.atleast_1d(lat))
    col_f, row_f = ~grid.transform * (np.asarray(x), np.asarray(y))
    col_f, row_f = np.asarray(col_f).reshape(-1, 20), np.asarray(row_f).reshape(-1, 20)
    return np.stack([col_f.min(axis=1), row_f.min(axis=1), col_f.max(axis=1),
                     row_f.max(axis=1)], axis=1)


def product_tags(
    product: Sentinel1Product, pols: Sequence[str], options: ProductOptions, scale: str
) -> dict[str, str]:
    """What the backscatter is, as dataset tags (``SARCOLOR_INPUT_*``)."""
    if not options.noise_removal:
        noise = "none"
    else:
        noise = "thermal noise removed (range and azimuth noise vectors)" if any(
            product.noise(pol).azimuth_blocks for pol in pols
        ) else "thermal noise removed (range noise vectors)"
    return {
        "SARCOLOR_INPUT_PRODUCT": f"Sentinel-1 {product.product_type} {product.name}",
        "SARCOLOR_INPUT_CALIBRATION": f"{options.calibration} from the product's calibration LUTs",
        "SARCOLOR_INPUT_NOISE_REMOVAL": noise,
        "SARCOLOR_INPUT_SCALE": scale,
        "SARCOLOR_INPUT_POLARISATIONS": ",".join(pols),
        "SARCOLOR_INPUT_GEOCODING": GEOCODING,
    }


def _geocode(
    product: Sentinel1Product,
    pols: tuple[str, ...],
    options: ProductOptions,
    annotation: Annotation,
    radar_path: Path,
    radar_tiles: list[Window],
    target: Path,
    db: bool,
    progress: bool,
    compress: bool,
) -> int:
    """Pass 2: warp the radar-geometry file to the UTM grid and write ``target``; returns the
    number of output tiles computed."""
    grid, tiles = _grid_and_tiles(product, annotation, radar_tiles)
    profile = {
        "driver": "GTiff", "width": grid.width, "height": grid.height, "count": len(pols),
        "dtype": "float32", "nodata": float("nan"), "crs": grid.crs, "transform": grid.transform,
        "tiled": True, "blockxsize": _BLOCK, "blockysize": _BLOCK, "sparse_ok": True,
        "bigtiff": "if_safer",
    }
    if compress:
        profile.update(compress="deflate", predictor=3)
    gcps = product_gcps(annotation)
    with contextlib.ExitStack() as stack:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", NotGeoreferencedWarning)
            src = stack.enter_context(rasterio.open(radar_path))
        tps = stack.enter_context(GCPTransformer(gcps, tps=True))
        dst = stack.enter_context(rasterio.open(target, "w", **profile))
        for band, pol in enumerate(pols, start=1):
            dst.set_band_description(band, pol)
        dst.update_tags(**product_tags(product, pols, options, "db" if db else "linear"),
                        SARCOLOR_VERSION=__version__)
        bar = stack.enter_context(_progress(len(tiles), "geocode", progress))
        for window in tiles:
            lines, pixels = _source_coordinates(tps, grid, window)
            values = _warp_window(src, lines, pixels, options.resampling)
            bar.update(1)
            if np.isnan(values).all():
                continue
            dst.write(linear_to_db(values) if db else values, window=window)
    return len(tiles)


_STEP = 16


def _interpolation_matrix(size: int, step: int) -> np.ndarray:
    """``(size, n)`` weights that interpolate linearly, at pixels 0..size-1, values given at
    pixels 0, step, 2*step, ... (n of them, the last at or beyond size - 1)."""
    n = (size - 1) // step + 2
    position = np.arange(size, dtype=np.float64) / step
    lower = np.minimum(position.astype(int), n - 2)
    weight = position - lower
    matrix = np.zeros((size, n))
    matrix[np.arange(size), lower] = 1.0 - weight
    matrix[np.arange(size), lower + 1] = weight
    return matrix


def _source_coordinates(
    tps: GCPTransformer, grid: Geocoding, window: Window
) -> tuple[np.ndarray, np.ndarray]:
    """Radar (line, pixel) of every output pixel centre of a window, GDAL pixel convention.

    GDAL's thin plate spline through the geolocation grid is exact at the grid points but costs
    a few microseconds a point (GDAL's own warper, which evaluates it for most pixels, takes
    ~2 s per megapixel with it). It is evaluated here every 16 output pixels and interpolated
    bilinearly in between, where the spline is smooth to far below a pixel.
    """
    rows_matrix = _interpolation_matrix(window.height, _STEP)
    cols_matrix = _interpolation_matrix(window.width, _STEP)
    coarse_rows = window.row_off + 0.5 + _STEP * np.arange(rows_matrix.shape[1])
    coarse_cols = window.col_off + 0.5 + _STEP * np.arange(cols_matrix.shape[1])
    cc, rr = np.meshgrid(coarse_cols, coarse_rows)
    xs, ys = grid.transform * (cc.ravel(), rr.ravel())
    lon, lat = transform_points(grid.crs, WGS84, np.asarray(xs), np.asarray(ys))
    line, pixel = tps.rowcol(lon, lat, op=lambda value: value)
    shape = rr.shape
    lines = rows_matrix @ np.asarray(line, dtype=np.float64).reshape(shape) @ cols_matrix.T
    pixels = rows_matrix @ np.asarray(pixel, dtype=np.float64).reshape(shape) @ cols_matrix.T
    return lines, pixels


_CV2_INTERPOLATION = {"nearest": 0, "bilinear": 1, "cubic": 2}  # cv2.INTER_*


def _warp_window(src: Any, lines: np.ndarray, pixels: np.ndarray, resampling: str) -> np.ndarray:
    """Resample the radar-geometry bands at (line, pixel) positions (OpenCV remap); NaN
    outside the image and where the neighbourhood holds no data."""
    import cv2

    out = np.full((src.count, *lines.shape), np.nan, dtype=np.float32)
    inside = (lines > -1) & (lines < src.height + 1) & (pixels > -1) & (pixels < src.width + 1)
    if not inside.any():
        return out
    row0 = int(max(0, math.floor(lines[inside].min()) - 2))
    col0 = int(max(0, math.floor(pixels[inside].min()) - 2))
    row1 = int(min(src.height, math.ceil(lines[inside].max()) + 3))
    col1 = int(min(src.width, math.ceil(pixels[inside].max()) + 3))
    source = src.read(window=Window(col0, row0, col1 - col0, row1 - row0))
    if np.isnan(source).all():
        return out
    # pixel centres: GDAL's pixel i spans [i, i + 1), OpenCV's is centred on i
    map_x = (pixels - 0.5 - col0).astype(np.float32)
    map_y = (lines - 0.5 - row0).astype(np.float32)
    for band in range(src.count):
        out[band] = cv2.remap(
            source[band], map_x, map_y, _CV2_INTERPOLATION[resampling],
            borderMode=cv2.BORDER_CONSTANT, borderValue=float("nan"),
        )
    return out


def _scratch_folder(
    product: Sentinel1Product, tag: str, workdir: str | os.PathLike[str] | None
) -> Path:
    """A new temporary folder in ``workdir`` (default: the system's), named as the package's
    temporaries are (:func:`sar_colorizer.io.atomic.temporary_path`: a later run removes it
    if this process is killed before it can)."""
    if workdir is None:
        return Path(tempfile.mkdtemp(prefix=f".sarcolor-{tag}-"))
    folder = temporary_path(Path(workdir) / product.name, tag)
    folder.mkdir()
    return folder


def _write_product(
    product: Sentinel1Product,
    target: Path,
    options: ProductOptions,
    db: bool,
    progress: bool,
    workdir: str | os.PathLike[str] | None,
    compress: bool = True,
) -> tuple[str, ...]:
    pols = options.chosen(product)
    product.require(pols, options.noise_removal)
    annotation = product.annotation(pols[0])
    scratch = _scratch_folder(product, "radar", workdir)
    try:
        radar_path = scratch / "radar.tif"
        with rasterio.Env(GDAL_CACHEMAX=_GDAL_CACHE_MB):
            started = time.perf_counter()
            radar_tiles = _write_radar(product, pols, options, annotation, radar_path, progress)
            calibrated = time.perf_counter()
            if not radar_tiles:
                raise ProductError(
                    f"{product.path}: every pixel of {','.join(pols)} is 0 (border noise or an "
                    "empty measurement); nothing to calibrate"
                )
            computed = _geocode(product, pols, options, annotation, radar_path, radar_tiles,
                                target, db, progress, compress)
        logger.info(
            "%s: %d radar tiles with data calibrated in %.1f s, %d output tiles geocoded in "
            "%.1f s", product.name, len(radar_tiles), calibrated - started, computed,
            time.perf_counter() - calibrated,
        )
    except RasterioError as error:
        raise OutputError(f"{target}: cannot write ({str(error).splitlines()[0]})") from None
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return pols


def calibrate_product(
    product_path: str | os.PathLike[str],
    output: str | os.PathLike[str],
    options: ProductOptions | None = None,
    *,
    db: bool = True,
    overwrite: bool = False,
    progress: bool = True,
) -> Path:
    """Write a product's calibrated, noise-removed, geocoded backscatter as a GeoTIFF.

    One float32 band per polarisation (described ``"VV"``, ``"VH"``), NaN where there is no
    data, in dB (``db=True``) or linear power; tags ``SARCOLOR_INPUT_*`` say what was done.

    Args:
        product_path: ``.SAFE`` folder, its ``manifest.safe``, or the ``.zip``.
        output: GeoTIFF to write (atomically: nothing is left behind on an error).
        options: Calibration, noise removal, polarisations, resampling.
        db: Write decibels (else linear power).
        overwrite: Replace an existing output.
        progress: Progress bars on stderr.

    Returns:
        The output path.

    Raises:
        ProductError: An incomplete, damaged or unsupported product (the message names what is
            missing and what works instead).
        OutputExistsError: ``output`` exists and ``overwrite`` is False.
    """
    options = options or ProductOptions()
    product = open_product(product_path)
    output = Path(output)
    with atomic_file(output, overwrite) as temporary:
        _write_product(product, temporary, options, db, progress, output.parent)
    return output


@contextlib.contextmanager
def backscatter_raster(
    product_path: str | os.PathLike[str],
    options: ProductOptions | None = None,
    *,
    progress: bool = True,
    workdir: str | os.PathLike[str] | None = None,
) -> Iterator[tuple[Path, dict[str, str]]]:
    """A product as a temporary georeferenced GeoTIFF of linear backscatter, for readers of
    ordinary rasters (predict, eval, preprocess); deleted when the block ends.

    Yields:
        ``(path, tags)``: the float32 linear-power GeoTIFF (bands described by polarisation,
        NaN nodata) and the ``SARCOLOR_INPUT_*`` tags that say what it holds.
    """
    options = options or ProductOptions()
    product = open_product(product_path)
    folder = _scratch_folder(product, "product", workdir)
    try:
        path = folder / f"{product.name}_{options.calibration}.tif"
        pols = _write_product(product, path, options, False, progress, folder, compress=False)
        yield path, product_tags(product, pols, options, "linear")
    finally:
        shutil.rmtree(folder, ignore_errors=True)
