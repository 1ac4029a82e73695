"""Co-registered SAR / optical pairs: what a pair is, its checks, and reading it onto one grid.

A :class:`Pair` names one SAR raster and the optical raster co-registered with it; the folders
and manifests that list pairs are read by :func:`sar_colorizer.data.layouts.find_pairs`.

:func:`read_pair` reads one pair as arrays on the SAR grid. When both rasters are georeferenced and
their grids differ, the optical image is reprojected onto the SAR grid (bilinear); only the overlap
is valid. Plain images without georeference must have the same size.
"""

from __future__ import annotations

import dataclasses
import logging
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from sar_colorizer.errors import InputError

if TYPE_CHECKING:
    from affine import Affine
    from rasterio.crs import CRS

    from sar_colorizer.io.dataset import RasterInfo

logger = logging.getLogger(__name__)

#: Manifest column flagging a pair whose optical reference is covered by cloud or seasonal snow.
FLAG_COLUMN = "cloud_or_snow"
#: What ``preprocess`` and ``eval`` do with pairs flagged in :data:`FLAG_COLUMN`: use them like
#: the rest, or leave them out.
FLAGGED_CHOICES = ("include", "exclude")


@dataclass(frozen=True)
class Pair:
    """One SAR image and the optical image co-registered with it.

    Attributes:
        name: Unique, file-name-like identifier of the pair (the SAR file's stem, sensor token
            removed for SEN1-2 names); used to split by source image and recorded in every chip.
        sar: Path of the SAR raster.
        optical: Path of the optical (RGB) raster.
        split: ``"train"``, ``"val"``, ``"test"`` as given by a manifest, or None.
        cloud_or_snow: The manifest flags the optical image as covered by cloud or seasonal
            snow: the SAR sees the ground through clouds, so such a reference does not show
            the surface colour (BigEarthNet recommends leaving these patches out). False
            where the manifest has no such column, or for folder layouts.
    """

    name: str
    sar: Path
    optical: Path
    split: str | None = None
    cloud_or_snow: bool = False


def is_flagged(pair: object) -> bool:
    """Whether a pair's optical image is flagged :data:`FLAG_COLUMN` (pairs made by hand
    without the attribute are not)."""
    return bool(getattr(pair, FLAG_COLUMN, False))


@dataclass
class PairArrays:
    """A pair read onto the SAR grid.

    Attributes:
        name: The pair's name.
        sar: Raw SAR values, (C, H, W) float32, in the file's own scale (see ``input_scale``);
            NaN or anything at invalid pixels.
        valid: (H, W) bool, True where both the SAR and the (reprojected) optical are valid.
        sar_valid: (H, W) bool, True where the SAR alone is valid (the whole image, on which the
            per-image normalisation reference is computed, as at inference).
        optical_rgb: (H, W, 3) float32 sRGB in [0, 1]; 0 where not valid.
        profile: The SAR raster's rasterio profile (the grid everything is on).
        band_names: One name per SAR channel (e.g. ``("VH",)``).
        input_scale: Scale of ``sar``: ``"linear"``, ``"db"``, ``"amplitude"`` or ``"display"``
            (resolved when ``"auto"`` was asked for).
        reprojected: Whether the optical image was resampled onto the SAR grid.
    """

    name: str
    sar: np.ndarray
    valid: np.ndarray
    optical_rgb: np.ndarray
    profile: dict[str, Any]
    sar_valid: np.ndarray | None = None
    band_names: tuple[str, ...] = ()
    input_scale: str = "display"
    reprojected: bool = False




# --------------------------------------------------------------------------------------------
# Reading pairs
# --------------------------------------------------------------------------------------------


def is_georeferenced(info: RasterInfo) -> bool:
    """A raster is georeferenced when it has a CRS (plain PNGs get an identity transform, no CRS)."""
    return info.crs is not None


def check_pair(pair: Pair) -> tuple[int, int]:
    """Check, from the headers only, that a pair can be brought onto one grid.

    Cheap (no pixels are read), so every pair can be checked before any output is written.

    Returns:
        ``(height, width)`` of the SAR grid, on which the pair will be read.

    Raises:
        InputError: Different sizes without georeference on both sides, or georeferenced rasters
            that do not overlap or whose CRS cannot be transformed.
    """
    from sar_colorizer.data.bandfiles import stack_info

    sar_info = stack_info(pair.sar, "sar")
    opt_info = stack_info(pair.optical, "optical")
    _check_grids(pair, sar_info, opt_info)
    if opt_info.count < 3:
        raise InputError(
            f"{pair.optical}: the optical image has {opt_info.count} band(s); give an RGB image "
            "(3 bands: red, green, blue)"
        )
    return sar_info.height, sar_info.width


def check_pairs(pairs: Sequence[Pair]) -> None:
    """:func:`check_pair` on every pair, from the headers: all problems in one error, before
    any work (a run that scores or cuts the others first would fail after minutes).

    Raises:
        InputError: ``"2 of 24 pairs cannot be used (nothing was done): 001: ...; 007: ...;
            fix or remove them"``.
    """
    problems = []
    for pair in pairs:
        try:
            check_pair(pair)
        except InputError as error:
            problems.append(str(error) if pair.name in str(error) else f"{pair.name}: {error}")
    if problems:
        raise InputError(f"{len(problems)} of {len(pairs)} pair(s) cannot be used (nothing was "
                         f"done): {'; '.join(problems)}; fix or remove them")


def _check_grids(pair: Pair, sar_info: RasterInfo, opt_info: RasterInfo) -> bool:
    """Return whether the optical image must be reprojected; raise when it cannot be used."""
    same_size = (sar_info.width, sar_info.height) == (opt_info.width, opt_info.height)
    if is_georeferenced(sar_info) and is_georeferenced(opt_info):
        same_grid = (
            same_size
            and sar_info.crs == opt_info.crs
            and sar_info.transform.almost_equals(opt_info.transform)
        )
        if same_grid:
            return False
        _check_overlap(pair, sar_info, opt_info)
        return True
    if same_size:
        if is_georeferenced(sar_info) != is_georeferenced(opt_info):
            logger.warning(
                "%s: only one image of the pair is georeferenced; same size, so used pixel for pixel",
                pair.name,
            )
        return False
    missing = [
        label
        for label, info in (("SAR", sar_info), ("optical", opt_info))
        if not is_georeferenced(info)
    ]
    raise InputError(
        f"pair {pair.name}: SAR {pair.sar.name} is {sar_info.width}x{sar_info.height} px but optical "
        f"{pair.optical.name} is {opt_info.width}x{opt_info.height} px and the {' and '.join(missing)} "
        "image has no georeference; give co-registered images of one size or georeferenced GeoTIFFs"
    )


def _check_overlap(pair: Pair, sar_info: RasterInfo, opt_info: RasterInfo) -> None:
    from rasterio.errors import CRSError
    from rasterio.transform import array_bounds
    from rasterio.warp import transform_bounds

    sar_bounds = array_bounds(sar_info.height, sar_info.width, sar_info.transform)
    opt_bounds = array_bounds(opt_info.height, opt_info.width, opt_info.transform)
    try:
        opt_in_sar = transform_bounds(opt_info.crs, sar_info.crs, *opt_bounds, densify_pts=21)
    except (CRSError, ValueError, RuntimeError) as error:
        raise InputError(
            f"pair {pair.name}: cannot reproject optical CRS {opt_info.crs} onto SAR CRS "
            f"{sar_info.crs} ({error}); give rasters in compatible CRSs"
        ) from error
    # array_bounds returns (west, south, east, north)
    overlap_x = min(sar_bounds[2], opt_in_sar[2]) - max(sar_bounds[0], opt_in_sar[0])
    overlap_y = min(sar_bounds[3], opt_in_sar[3]) - max(sar_bounds[1], opt_in_sar[1])
    if not (np.isfinite(overlap_x) and np.isfinite(overlap_y)) or overlap_x <= 0 or overlap_y <= 0:
        raise InputError(
            f"pair {pair.name}: SAR {pair.sar.name} ({sar_info.crs}) and optical {pair.optical.name} "
            f"({opt_info.crs}) do not overlap; check that they show the same place"
        )


def optical_band_indexes(info: RasterInfo) -> list[int]:
    """Red, green, blue of an optical raster: bands described B04, B03, B02 (also B4, red, ...)
    where the file names them, else bands 1, 2, 3."""
    names = {"B04": ("b04", "b4", "red"), "B03": ("b03", "b3", "green"), "B02": ("b02", "b2", "blue")}
    descriptions = [(d or "").strip().lower() for d in (info.descriptions or ())]
    indexes = []
    for spellings in names.values():
        found = [i for i, d in enumerate(descriptions, start=1) if d in spellings]
        if len(found) != 1:
            return [1, 2, 3]
        indexes.append(found[0])
    return indexes


def render_optical(
    path: Path,
    values: np.ndarray,
    valid: np.ndarray,
    dtype: str,
    convention: str,
    offset: float | None = None,
) -> np.ndarray:
    """The optical image (3, H, W) in a colour convention (see :mod:`sar_colorizer.color.convention`)."""
    from sar_colorizer.color.convention import offset_from_tags, to_convention

    if offset is None:
        offset = offset_from_tags(_raster_tags(path)) or 0.0
    return to_convention(values, valid, dtype, convention, offset=offset)


def _raster_tags(path: Path) -> dict[str, str]:
    """Dataset-level metadata of a raster (empty when it cannot be read)."""
    import rasterio

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", category=_not_georeferenced_warning())
            with rasterio.open(path) as src:
                return dict(src.tags())
    except rasterio.errors.RasterioError:
        return {}


def read_pair(
    pair: Pair,
    bands: str | int | Sequence[str | int] | None = None,
    input_scale: str = "auto",
    band_names: Sequence[str] | None = None,
    optical_convention: str = "as-is",
    optical_offset: float | None = None,
) -> PairArrays:
    """Read a pair onto the SAR grid.

    The SAR may be a Sentinel-1 GRD product (``.SAFE``, ``manifest.safe``, ``.zip``): it is
    calibrated to sigma0, freed of thermal noise and geocoded first
    (:func:`sar_colorizer.io.sar_input.open_sar_input`; the whole geocoded product is then read,
    which for a full-size product takes a few GB), and analysis-ready RTC GeoTIFFs are read in
    the scale their metadata or name gives.

    Args:
        pair: The pair.
        bands: SAR bands to read (``"VV,VH"`` by description or file-name suffix, ``"1,2"``, or a
            sequence); None reads all bands.
        input_scale: Scale of the SAR values: ``"auto"`` (detected by
            :func:`sar_colorizer.sar.radiometry.detect_input_scale`), ``"linear"``, ``"db"``,
            ``"amplitude"`` or ``"display"``. The values are returned unchanged; the resolved scale
            is recorded in the result.
        band_names: Names to give the selected bands (overrides descriptions); one per band.
        optical_convention: How the optical image is rendered as RGB: ``"dos"`` (haze removed,
            one display stretch) or ``"as-is"`` (earlier versions' rendering); see
            :func:`sar_colorizer.color.convention.to_convention`.
        optical_offset: Offset added to integer reflectance before dividing by 10000 (-1000 for
            Sentinel-2 Level-2A from processing baseline 04.00 on); None takes it from the file's
            ``BOA_ADD_OFFSET`` / ``RADIO_ADD_OFFSET`` metadata, else 0.

    Returns:
        :class:`PairArrays` with the optical image in sRGB [0, 1] on the SAR grid. When both rasters
        are georeferenced on different grids, the optical image is reprojected
        (``rasterio.warp.reproject``, bilinear) and only the overlap is valid.

    Raises:
        InputError: Different sizes without georeference, no overlap, an optical image with fewer
            than 3 bands, a wrong number of band names, or no valid pixels.
        RasterError: A file cannot be read.
    """
    from sar_colorizer.io.sar_input import open_sar_input

    if isinstance(pair.sar, Path) and pair.sar.exists():
        with open_sar_input(pair.sar, progress=False) as sar:
            return _read_pair(
                dataclasses.replace(pair, sar=Path(sar.path)), bands, sar.input_scale(input_scale),
                band_names, optical_convention, optical_offset,
            )
    return _read_pair(pair, bands, input_scale, band_names, optical_convention, optical_offset)


def _read_pair(
    pair: Pair,
    bands: str | int | Sequence[str | int] | None,
    input_scale: str,
    band_names: Sequence[str] | None,
    optical_convention: str,
    optical_offset: float | None,
) -> PairArrays:
    from sar_colorizer.data.bandfiles import read_stack, stack_info
    from sar_colorizer.io.bands import resolve_bands, sar_band_names
    from sar_colorizer.sar.radiometry import detect_input_scale

    sar_info = stack_info(pair.sar, "sar")
    opt_info = stack_info(pair.optical, "optical")
    reproject_needed = _check_grids(pair, sar_info, opt_info)

    band_indexes = resolve_bands(sar_info, bands)
    names = sar_band_names(sar_info, band_indexes)
    if band_names is not None:
        if len(band_names) != len(band_indexes):
            raise InputError(
                f"{len(band_names)} band name(s) ({', '.join(band_names)}) given for "
                f"{len(band_indexes)} SAR band(s) of {pair.sar.name}; give one name per band"
            )
        names = tuple(band_names)

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", category=_not_georeferenced_warning())
        sar_values, sar_valid = read_stack(pair.sar, "sar", bands=band_indexes)
        if opt_info.count < 3:
            raise InputError(
                f"{pair.optical}: the optical image has {opt_info.count} band(s); give an RGB image "
                "(3 bands: red, green, blue)"
            )
        opt_values, opt_valid = read_stack(
            pair.optical, "optical", bands=optical_band_indexes(opt_info), zero_is_nodata=True
        )

    sar_valid = np.asarray(sar_valid, dtype=bool)
    scale = input_scale
    if scale == "auto":
        # Detection looks at the file's own dtype (integer files are display images).
        scale = detect_input_scale(_native(np.asarray(sar_values), sar_info.dtype), sar_valid)
    sar_values = np.asarray(sar_values, dtype=np.float32)
    rgb = render_optical(
        pair.optical,
        np.asarray(opt_values),
        np.asarray(opt_valid, dtype=bool),
        opt_info.dtype,
        optical_convention,
        optical_offset,
    )
    opt_valid = np.asarray(opt_valid, dtype=bool)
    if reproject_needed:
        rgb, opt_valid = reproject_to_grid(
            rgb,
            opt_valid,
            opt_info.transform,
            opt_info.crs,
            sar_info.transform,
            sar_info.crs,
            (sar_info.height, sar_info.width),
        )
        if not opt_valid.any():
            raise InputError(
                f"pair {pair.name}: the optical image {pair.optical.name} does not overlap the SAR "
                f"image {pair.sar.name} once reprojected; check that they show the same place"
            )
        logger.debug("%s: optical reprojected onto the SAR grid", pair.name)

    valid = sar_valid & opt_valid
    rgb_hwc = np.moveaxis(rgb, 0, -1) * valid[..., None]
    return PairArrays(
        name=pair.name,
        sar=sar_values,
        valid=valid,
        optical_rgb=rgb_hwc.astype(np.float32),
        profile=dict(sar_info.profile),
        sar_valid=sar_valid,
        band_names=names,
        input_scale=scale,
        reprojected=reproject_needed,
    )


def _native(values: np.ndarray, dtype: str) -> np.ndarray:
    """The values in the file's own dtype (a reader may have returned them as float)."""
    native = np.dtype(dtype)
    if values.dtype == native or not np.issubdtype(native, np.integer):
        return values
    return np.nan_to_num(values).astype(native)


def _not_georeferenced_warning() -> type[Warning]:
    from rasterio.errors import NotGeoreferencedWarning

    return NotGeoreferencedWarning


def reproject_to_grid(
    rgb: np.ndarray,
    valid: np.ndarray,
    src_transform: Affine,
    src_crs: CRS,
    dst_transform: Affine,
    dst_crs: CRS,
    dst_shape: tuple[int, int],
) -> tuple[np.ndarray, np.ndarray]:
    """Resample an image (C, h, w) onto another grid, bilinear, NaN-aware.

    Invalid source pixels are set to NaN and passed as nodata, so they never blend into valid
    ones; destination pixels outside the source (or whose neighbourhood is nodata) stay invalid.

    Returns:
        ``(image (C, H, W) float32 with 0 where invalid, valid (H, W) bool)``.
    """
    from rasterio.enums import Resampling
    from rasterio.warp import reproject

    source = np.where(valid[None], rgb, np.nan).astype(np.float32)
    destination = np.full((rgb.shape[0], *dst_shape), np.nan, dtype=np.float32)
    reproject(
        source=source,
        destination=destination,
        src_transform=src_transform,
        src_crs=src_crs,
        dst_transform=dst_transform,
        dst_crs=dst_crs,
        src_nodata=np.nan,
        dst_nodata=np.nan,
        resampling=Resampling.bilinear,
    )
    dst_valid = np.all(np.isfinite(destination), axis=0)
    return np.where(dst_valid[None], destination, 0.0).astype(np.float32), dst_valid
