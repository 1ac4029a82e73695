"""Raster input and output with rasterio: band selection, windows, nodata masks, safe writes.

Reading:
    :func:`read_info` opens any raster GDAL reads (GeoTIFF, Cloud-Optimised GeoTIFF, PNG, JPEG,
    ...) and returns its size, georeference (CRS, affine transform), nodata value, profile and
    band descriptions; :func:`resolve_bands` turns a selection such as ``"VV,VH"`` or ``"1,2"``
    into band numbers; :func:`read_raster` reads those bands, all of the raster or a
    ``rasterio.windows.Window`` of it (scene-sized files are read window by window), optionally
    decimated to an ``out_shape`` (for scene statistics), together with the boolean ``valid``
    mask (True = data).

Writing:
    :func:`write_raster` writes an array in one go, :class:`RasterWriter` window by window for
    scene-sized outputs. Both start from a source profile (``profile = src.profile;
    profile.update(...)``), write GeoTIFF, Cloud-Optimised GeoTIFF (GDAL ``COG`` driver), PNG or
    JPEG, mark invalid pixels, and are atomic: the data go to a temporary file in the output's
    folder that is renamed over the destination only once it is complete, so a crash or an error
    never leaves a partial output behind. An existing output is replaced only with
    ``overwrite=True``.

How invalid pixels are written (``valid`` False):
    * Display RGB (3 bands of uint8 or uint16) to GeoTIFF, COG or PNG: a 4th, alpha band
      (0 = transparent, 255 or 65535 = opaque; GeoTIFF with photometric RGB). RGB is 0 there.
    * JPEG, which has no alpha: a GDAL internal mask (a compressed bit mask appended to the
      JPEG file, read back by GDAL as the dataset mask). Values are 0 there.
    * Anything else (grey, float LAB/AB, SAR): a nodata value, the profile's own when the
      output data type can hold it, else NaN for float outputs and 0 for integer ones.
    :func:`read_raster` turns each of these back into the same ``valid`` mask.

Georeference of PNG and JPEG:
    PNG and JPEG cannot hold a CRS. GDAL writes it, with the transform, to an ``.aux.xml``
    sidecar (GDAL PAM) and the transform also to a world file, renamed to the format's usual
    name (``scene.pgw``, ``scene.jgw``); both move together with the image. GDAL, QGIS and
    rasterio read them back; keep them next to the image.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import re
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

import numpy as np
import rasterio
import rasterio.shutil
from affine import Affine
from rasterio.crs import CRS
from rasterio.enums import ColorInterp, Interleaving, MaskFlags, Resampling
from rasterio.errors import NotGeoreferencedWarning, RasterioError
from rasterio.io import DatasetReader
from rasterio.windows import Window

from sar_colorizer import __version__
from sar_colorizer.errors import InputError, OutputError, RasterError
from sar_colorizer.io.atomic import (
    check_target,
    make_folder,
    owner_pid,
    publish,
    remove_owned,
    remove_stale,
    temporary_path,
)
from sar_colorizer.sar.polarisation import POLARISATIONS, polarisation
from sar_colorizer.signals import run_interruptibly

logger = logging.getLogger(__name__)

__all__ = [
    "OUTPUT_DRIVERS",
    "RasterInfo",
    "RasterWriter",
    "atomic_path",
    "check_output_path",
    "driver_for_path",
    "read_info",
    "read_raster",
    "resolve_bands",
    "world_file_path",
    "write_raster",
]

OUTPUT_DRIVERS = ("GTiff", "COG", "PNG", "JPEG")
"""GDAL drivers the writers support."""

_DRIVER_BY_SUFFIX = {".tif": "GTiff", ".tiff": "GTiff", ".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG"}

# Keys of a rasterio profile that describe the dataset; every other key is a creation option.
_DATASET_KEYS = frozenset({"driver", "dtype", "nodata", "width", "height", "count", "crs", "transform"})

# Creation options carried over from a source profile, per target driver. Others are dropped:
# a GeoTIFF's tiling means nothing to PNG, and a JPEG source's compression should not make a
# GeoTIFF output lossy. Options the caller passes explicitly go through unfiltered.
_CARRIED_OPTIONS = {
    "GTiff": frozenset(
        {
            "tiled", "blockxsize", "blockysize", "compress", "predictor", "zlevel", "zstd_level",
            "jpeg_quality", "max_z_error", "interleave", "bigtiff", "sparse_ok", "num_threads",
        }
    ),
    "COG": frozenset(
        {"compress", "level", "predictor", "quality", "max_z_error", "bigtiff", "num_threads"}
    ),
    "PNG": frozenset({"zlevel"}),
    "JPEG": frozenset({"quality"}),
}
# Drivers whose creation options mean the same (a GeoTIFF source's options suit a COG output).
_OPTION_FAMILY = {"GTiff": "tiff", "COG": "tiff", "PNG": "png", "JPEG": "jpeg"}
# GeoTIFF spellings of options the COG driver names differently.
_COG_OPTION_NAMES = {"zlevel": "level", "zstd_level": "level", "jpeg_quality": "quality"}
#: Dataset tag the writers set (to the package version): marks a raster that sarcolor wrote,
#: which ``predict --overwrite`` may replace (see :func:`written_by_sarcolor`).
WRITER_TAG = "SARCOLOR_VERSION"

_DRIVER_DEFAULTS: dict[str, dict[str, Any]] = {
    "GTiff": {"compress": "deflate", "bigtiff": "if_safer"},
    "COG": {"compress": "deflate", "bigtiff": "if_safer"},
    # The writer's tag (WRITER_TAG) in the file itself, not in an .aux.xml of its own.
    "PNG": {"worldfile": "yes", "write_metadata_as_text": "yes"},
    "JPEG": {"worldfile": "yes", "quality": 90, "comment": f"{WRITER_TAG}={__version__}"},
}
_LOSSY_COMPRESSION = frozenset({"jpeg", "webp", "jxl"})
_PREDICTED_COMPRESSION = frozenset({"deflate", "lzw", "zstd", "lzma"})
_DRIVER_DTYPES = {"PNG": ("uint8", "uint16"), "JPEG": ("uint8",)}
_DRIVER_COUNTS = {"PNG": (1, 2, 3, 4), "JPEG": (1, 3)}
# PNG, JPEG and COG are written by GDAL's CreateCopy only; window-by-window output first goes to
# a temporary tiled GeoTIFF with these options.
_STAGING_OPTIONS = {
    "tiled": True, "blockxsize": 256, "blockysize": 256, "compress": "deflate", "zlevel": 1,
    "interleave": "pixel", "bigtiff": "if_safer",
}
_TILE_SIZE = 256

# Files GDAL may write beside a raster, named by adding these to its full name (world files,
# named after the stem, are handled apart).
_SIDECAR_SUFFIXES = (".aux.xml", ".msk", ".ovr")


@dataclass
class RasterInfo:
    """What a raster holds, read without reading its pixels.

    Attributes:
        path: the file.
        width, height: size in pixels.
        count: number of bands (alpha bands included).
        dtype: numpy data type name of the bands (e.g. ``"uint8"``, ``"float32"``).
        crs: coordinate reference system, None when the file is not georeferenced.
        transform: affine pixel-to-map transform (identity when not georeferenced).
        nodata: the nodata value of the first band, or None.
        profile: rasterio profile (driver, dtype, nodata, size, CRS, transform, creation
            options); start output profiles from a copy of it.
        descriptions: band descriptions (names such as ``"VV"``), None where unset.
        colorinterp: colour interpretation of each band (``"gray"``, ``"red"``, ``"alpha"``, ...).
    """

    path: Path
    width: int
    height: int
    count: int
    dtype: str
    crs: CRS | None
    transform: Affine
    nodata: float | None
    profile: dict[str, Any]
    descriptions: tuple[str | None, ...]
    colorinterp: tuple[str, ...] = ()

    @property
    def shape(self) -> tuple[int, int]:
        """``(height, width)``."""
        return self.height, self.width

    @property
    def driver(self) -> str:
        """GDAL driver short name (``"GTiff"``, ``"PNG"``, ...)."""
        return str(self.profile.get("driver", ""))

    @property
    def data_bands(self) -> list[int]:
        """1-based numbers of the bands that are not alpha bands."""
        bands = [i for i, interp in enumerate(self.colorinterp, start=1) if interp != "alpha"]
        return bands or list(range(1, self.count + 1))


def is_virtual_path(path: str | os.PathLike[str]) -> bool:
    """True for a GDAL virtual path (``/vsis3/...``, ``/vsicurl/https://...``) or a URL
    (``scheme://...``): a name GDAL resolves, not a local file."""
    text = os.fspath(path)
    return text.startswith("/vsi") or "://" in text


_is_remote = is_virtual_path


def input_path(path: str | os.PathLike[str]) -> Path | str:
    """A raster input as a ``Path``, or unchanged as a string when it is a GDAL virtual path or
    URL (:func:`is_virtual_path`): ``Path`` would turn the ``//`` of ``https://`` into ``/``."""
    if isinstance(path, str) and is_virtual_path(path):
        return path
    return Path(path)


@contextlib.contextmanager
def _open_dataset(path: str | os.PathLike[str]) -> Iterator[DatasetReader]:
    """Open a raster for reading; missing or unreadable files raise a one-line RasterError."""
    if not _is_remote(path) and not Path(path).exists():
        raise RasterError(f"{path}: no such file")
    try:
        with warnings.catch_warnings():
            # Plain PNG/JPEG images (the training pairs) carry no georeference; that is fine.
            warnings.simplefilter("ignore", NotGeoreferencedWarning)
            dataset = rasterio.open(path)
    except RasterioError as error:
        reason = str(error).strip().splitlines()[0] if str(error).strip() else ""
        detail = "" if (not reason or "not recognized" in reason) else f" ({reason})"
        raise RasterError(f"{path}: not a raster that GDAL can read{detail}") from None
    with dataset:
        yield dataset


def read_info(path: str | os.PathLike[str]) -> RasterInfo:
    """Read a raster's size, georeference, nodata, profile and band descriptions.

    Args:
        path: any raster GDAL reads (also ``/vsicurl/`` and other GDAL virtual paths).

    Returns:
        The :class:`RasterInfo`.

    Raises:
        RasterError: ``"<path>: no such file"`` or ``"<path>: not a raster that GDAL can read"``.
    """
    with _open_dataset(path) as src:
        return _info_from_dataset(src, path)


def _info_from_dataset(src: DatasetReader, path: str | os.PathLike[str]) -> RasterInfo:
    return RasterInfo(
        path=Path(path),
        width=src.width,
        height=src.height,
        count=src.count,
        dtype=str(src.dtypes[0]),
        crs=src.crs,
        transform=src.transform,
        nodata=src.nodata,
        profile=dict(src.profile),
        descriptions=tuple(src.descriptions),
        colorinterp=tuple(interp.name for interp in src.colorinterp),
    )


def _tokens(text: str) -> list[str]:
    return [token for token in re.split(r"[^0-9a-z]+", text.lower()) if token]


def _band_by_name(info: RasterInfo, name: str) -> int:
    wanted = name.strip().lower()
    descriptions = [(d or "").strip().lower() for d in info.descriptions]
    matches = [i for i, d in enumerate(descriptions, start=1) if d == wanted]
    if not matches:  # "Sigma0_VV", "VV (dB)"
        matches = [i for i, d in enumerate(descriptions, start=1) if wanted in _tokens(d)]
    if not matches and info.count == 1:
        # One polarisation per file, named by its file name: BigEarthNet "..._VV.tif",
        # Sentinel-1 SAFE "s1a-iw-grd-vh-...tiff". A name with two polarisations is ambiguous.
        tokens = _tokens(info.path.stem)
        if tokens and tokens[-1] == wanted:
            matches = [1]
        elif wanted in tokens and (
            wanted.upper() not in POLARISATIONS or polarisation(info.path.stem) == wanted.upper()
        ):
            matches = [1]
    if len(matches) == 1:
        return matches[0]
    listing = ", ".join(
        f"{i} {d!r}" if d else f"{i} (no description)"
        for i, d in enumerate(info.descriptions, start=1)
    )
    if matches:
        raise RasterError(
            f"{info.path}: band name {name!r} matches bands {matches}; select bands by number"
        )
    raise RasterError(
        f"{info.path}: no band named {name!r} (bands: {listing}); select bands by number, "
        f"e.g. '1', or name single-polarisation files like scene_VH.tif"
    )


def resolve_bands(info: RasterInfo, bands: str | int | Sequence[str | int] | None) -> list[int]:
    """Turn a band selection into 1-based band numbers.

    A band is chosen by number (``1``, ``"2"``) or by name. Names (case-insensitive) are
    matched against the band descriptions, exactly or as a word of them (``"VV"`` finds
    ``"Sigma0_VV"``); a single-band file is also matched by its file name, so ``"VH"`` selects
    the band of ``S1A_..._VH.tif`` or of a SAFE measurement ``s1a-iw-grd-vh-....tiff``.

    Args:
        info: the raster, from :func:`read_info`.
        bands: None for every band except alpha bands; a comma-separated string (``"VV,VH"``,
            ``"1,2"``); one band number; or a sequence of numbers and names.

    Returns:
        1-based band numbers in the order asked for.

    Raises:
        RasterError: a number out of range, or a name that matches no band or several.
    """
    if bands is None:
        return info.data_bands
    if isinstance(bands, str):
        selection: list[str | int] = [part.strip() for part in bands.split(",") if part.strip()]
    elif isinstance(bands, int | np.integer):
        selection = [int(bands)]
    else:
        selection = list(bands)
    if not selection:
        raise RasterError(f"{info.path}: empty band selection {bands!r}; give e.g. '1' or 'VH'")
    numbers = []
    for band in selection:
        if isinstance(band, bool):
            raise RasterError(f"{info.path}: {band!r} is not a band number or name")
        if isinstance(band, int | np.integer) or (isinstance(band, str) and band.isdigit()):
            number = int(band)
            if not 1 <= number <= info.count:
                raise RasterError(
                    f"{info.path}: has bands 1 to {info.count}, not {number} (bands count from 1)"
                )
            numbers.append(number)
        elif isinstance(band, str):
            numbers.append(_band_by_name(info, band))
        else:
            raise RasterError(f"{info.path}: {band!r} is not a band number or name")
    return numbers


def _as_window(window: Window | Sequence[Sequence[int]] | None) -> Window | None:
    if window is None or isinstance(window, Window):
        return window
    return Window.from_slices(*window)


def _check_window(window: Window, width: int, height: int, where: object) -> Window:
    col, row = int(window.col_off), int(window.row_off)
    w, h = int(window.width), int(window.height)
    if (col, row, w, h) != (window.col_off, window.row_off, window.width, window.height):
        raise RasterError(f"{where}: window {window} must have whole-pixel offsets and sizes")
    if w <= 0 or h <= 0 or col < 0 or row < 0 or col + w > width or row + h > height:
        raise RasterError(
            f"{where}: window (col {col}, row {row}, {w} x {h}) lies outside the "
            f"{width} x {height} raster"
        )
    return Window(col, row, w, h)


def read_raster(
    path: str | os.PathLike[str],
    bands: str | int | Sequence[str | int] | None = None,
    window: Window | Sequence[Sequence[int]] | None = None,
    out_shape: tuple[int, ...] | None = None,
    zero_is_nodata: bool = False,
) -> tuple[np.ndarray, np.ndarray]:
    """Read bands of a raster, whole or a window, at full or reduced resolution, with its mask.

    The returned values keep the file's data type: SAR may be linear power, amplitude or dB
    (float) or display-stretched (uint8/uint16); :mod:`sar_colorizer.sar.radiometry` converts.

    A pixel is invalid (``valid`` False) when, in any selected band, it equals the band's
    nodata value, is NaN or infinite, or is masked by the dataset's mask or alpha band (PNG
    transparency, GeoTIFF internal masks, JPEG masks); with ``zero_is_nodata`` also where every
    selected band is 0, the fill value around the swath of Sentinel-1 GRD products, which often
    declare no nodata.

    Args:
        path: raster file.
        bands: band selection, see :func:`resolve_bands`; None reads every non-alpha band.
        window: ``rasterio.windows.Window`` (or ``((row_start, row_stop), (col_start,
            col_stop))``) inside the raster; None reads it all.
        out_shape: ``(height, width)`` to read the window (or raster) decimated to, with
            nearest-neighbour resampling (values are not mixed: statistics stay those of the
            data, and dB or nodata values are not averaged). GDAL reads from overviews where
            the file has them.
        zero_is_nodata: treat all-zero pixels as nodata.

    Returns:
        ``(values, valid)``: values ``(bands, height, width)`` in the file's data type and the
        boolean ``valid`` mask ``(height, width)``.

    Raises:
        RasterError: missing or unreadable file, bad band selection, window outside the raster.
    """
    with _open_dataset(path) as src:
        info = _info_from_dataset(src, path)
        indexes = resolve_bands(info, bands)
        window = _as_window(window)
        if window is not None:
            window = _check_window(window, info.width, info.height, path)
        shape = None
        if out_shape is not None:
            height, width = (int(n) for n in tuple(out_shape)[-2:])
            if height <= 0 or width <= 0:
                raise RasterError(f"{path}: out_shape {tuple(out_shape)} must be positive")
            shape = (len(indexes), height, width)
        try:
            values = src.read(
                indexes, window=window, out_shape=shape, resampling=Resampling.nearest
            )
            valid = _valid_mask(src, indexes, values, window, zero_is_nodata)
        except RasterioError as error:
            raise RasterError(f"{path}: cannot read pixels ({error})") from None
    return values, valid


def _valid_mask(
    src: DatasetReader,
    indexes: list[int],
    values: np.ndarray,
    window: Window | None,
    zero_is_nodata: bool,
) -> np.ndarray:
    valid = np.ones(values.shape[1:], dtype=bool)
    masks_read: set[str] = set()
    for k, index in enumerate(indexes):
        flags = src.mask_flag_enums[index - 1]
        if MaskFlags.nodata in flags:
            # Computed here rather than with read_masks, which would read the pixels again.
            nodata = src.nodatavals[index - 1]
            if nodata is not None and not math.isnan(nodata):
                valid &= values[k] != np.asarray(nodata).astype(values.dtype)
        elif MaskFlags.all_valid not in flags:
            # Alpha band, GeoTIFF internal / .msk mask, JPEG mask: shared by all bands when
            # per_dataset, so read once.
            key = "dataset" if MaskFlags.per_dataset in flags else str(index)
            if key not in masks_read:
                masks_read.add(key)
                mask = src.read_masks(index, window=window, out_shape=values.shape[1:])
                valid &= mask > 0
    if np.issubdtype(values.dtype, np.floating) or np.issubdtype(values.dtype, np.complexfloating):
        valid &= np.isfinite(values).all(axis=0)
    if zero_is_nodata:
        valid &= (values != 0).any(axis=0)
    return valid


def driver_for_path(path: str | os.PathLike[str], driver: str | None = None, cog: bool = False) -> str:
    """GDAL driver for an output: ``driver`` if given, ``"COG"`` if ``cog``, else from the
    extension (``.tif``/``.tiff`` GTiff, ``.png`` PNG, ``.jpg``/``.jpeg`` JPEG).

    Raises:
        RasterError: unknown extension or unsupported driver.
    """
    if driver is None:
        suffix = Path(path).suffix.lower()
        if suffix not in _DRIVER_BY_SUFFIX:
            raise RasterError(
                f"{path}: cannot tell the output format from {suffix or 'no extension'!r}; "
                "use .tif, .png or .jpg"
            )
        driver = _DRIVER_BY_SUFFIX[suffix]
    names = {name.lower(): name for name in OUTPUT_DRIVERS}
    if driver.lower() not in names:
        raise RasterError(f"{path}: cannot write driver {driver!r}; use one of {OUTPUT_DRIVERS}")
    driver = names[driver.lower()]
    if cog:
        if driver not in ("GTiff", "COG"):
            raise RasterError(f"{path}: a Cloud-Optimised GeoTIFF needs a .tif name, not {driver}")
        driver = "COG"
    return driver


def check_output_path(path: str | os.PathLike[str], overwrite: bool) -> None:
    """Refuse an existing output unless ``overwrite``, and an output folder that is a file.

    Raises:
        OutputExistsError: ``"<path> exists; pass --overwrite to replace it"``.
        RasterError: the path is a folder, or a parent is a file.
        OutputError: the folder it would be created in is not writable.
    """
    path = Path(path)
    if path.is_dir():
        raise RasterError(f"{path} is a folder; give an output file name such as {path / 'out.tif'}")
    check_target(path, overwrite)
    for parent in (path.parent, *path.parent.parents):
        if parent.exists():
            if not parent.is_dir():
                raise RasterError(f"{path}: {parent} is a file, not a folder; choose another path")
            if not os.access(parent, os.W_OK | os.X_OK):
                raise OutputError(
                    f"{path}: cannot write in {parent} (read-only or no permission); choose "
                    "another folder"
                )
            break


def written_by_sarcolor(path: str | os.PathLike[str]) -> bool | None:
    """Whether ``path`` is a raster that this package wrote (it carries :data:`WRITER_TAG`).

    Returns:
        True for a raster sarcolor wrote, False for any other raster, None for a file that is
        no raster GDAL reads (a damaged or unrelated file).
    """
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", NotGeoreferencedWarning)
            with rasterio.open(path) as dataset:
                tags = dataset.tags()
    except (RasterioError, OSError):
        return None
    return WRITER_TAG in tags or tags.get("COMMENT", "").startswith(WRITER_TAG)


def _named_sidecars(path: Path) -> list[Path]:
    """``<name>.aux.xml`` (GDAL PAM), ``<name>.msk`` (mask), ``<name>.ovr`` (overviews)."""
    return [path.with_name(path.name + suffix) for suffix in _SIDECAR_SUFFIXES]


def world_file_path(path: str | os.PathLike[str]) -> Path:
    """The world file of an image, by the usual naming: ``scene.png`` -> ``scene.pgw``,
    ``scene.jpg`` -> ``scene.jgw``, ``scene.tif`` -> ``scene.tfw``.

    GDAL writes world files as ``<stem>.wld``, a name that images of other formats with the
    same stem would share; the writers rename it to this format-specific name, which GDAL,
    QGIS and ArcGIS look for first.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if len(suffix) < 3:
        return path.with_suffix(".wld")
    return path.with_suffix(f".{suffix[1]}{suffix[-1]}w")


def _world_file_candidates(path: Path) -> list[Path]:
    candidates = [path.with_suffix(".wld"), world_file_path(path), path.with_suffix(path.suffix + "w")]
    return list(dict.fromkeys(candidates))


def _remove_with_sidecars(path: Path) -> None:
    if owner_pid(path) is not None:  # a temporary: everything GDAL wrote beside it goes too
        remove_owned(path)
    for candidate in [path, *_named_sidecars(path), *_world_file_candidates(path)]:
        with contextlib.suppress(OSError):  # absent; or a cleanup on a failing disk
            candidate.unlink()


def _move_into_place(temporary: Path, path: Path, overwrite: bool = True) -> None:
    """Rename ``temporary`` and its sidecars to ``path``; stale sidecars of ``path`` go.

    Sidecars left beside ``path`` by an earlier file of that name would describe the new one
    wrongly (an old CRS in ``.aux.xml``), so those the new file does not replace are deleted.
    Without ``overwrite`` the image is published first, exclusively (another run that wrote
    ``path`` meanwhile keeps its output and its sidecars); with it the image goes last, so
    that once it is there so are its sidecars.
    """
    if not overwrite:
        publish(temporary, path, overwrite=False)
    for old, new in zip(_named_sidecars(temporary), _named_sidecars(path), strict=True):
        if old.exists():
            os.replace(old, new)
        elif new.exists():
            logger.info("removing %s, left from an earlier %s", new, path.name)
            new.unlink()
    world_files = [p for p in _world_file_candidates(temporary) if p.exists()]
    target = world_file_path(path)
    if world_files:
        os.replace(world_files[0], target)
        for extra in world_files[1:]:
            extra.unlink()
    elif target.exists():
        logger.info("removing %s, left from an earlier %s", target, path.name)
        target.unlink()
    if overwrite:
        publish(temporary, path, overwrite=True)


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str], overwrite: bool = False) -> Iterator[Path]:
    """Write an output under a temporary name next to it; rename it into place on success.

    The temporary file is in the destination folder (so the final ``os.replace`` is atomic),
    hidden, and keeps the extension. Sidecars GDAL writes beside it (``.aux.xml``, world file,
    ``.msk``, ``.ovr``) are renamed with it. If the block raises, the temporary file and its
    sidecars are deleted and the destination is untouched. Missing parent folders are created.

    Args:
        path: the final output.
        overwrite: replace an existing output.

    Yields:
        The temporary path to write to.

    Raises:
        OutputExistsError: the output exists and ``overwrite`` is False.
        RasterError: the block wrote nothing.
    """
    path = Path(path)
    check_output_path(path, overwrite)
    make_folder(path.parent)
    remove_stale(path.parent)
    temporary = temporary_path(path)
    try:
        yield temporary
        if not temporary.exists():
            raise RasterError(f"{path}: nothing was written")
        _move_into_place(temporary, path, overwrite)
    except BaseException:
        _remove_with_sidecars(temporary)
        raise


def _fits_dtype(value: float, dtype: str) -> bool:
    if np.issubdtype(np.dtype(dtype), np.floating):
        return bool(math.isnan(value) or abs(value) <= np.finfo(dtype).max)
    info = np.iinfo(dtype)
    return bool(float(value).is_integer() and info.min <= value <= info.max)


def _creation_options(
    profile: dict[str, Any], driver: str, dtype: str, extra: dict[str, Any] | None
) -> dict[str, Any]:
    """Creation options for ``driver``: those of the source ``profile`` that carry over, the
    driver's defaults, then the caller's ``extra`` options over them."""
    source_driver = str(profile.get("driver", driver))
    carried: dict[str, Any] = {}
    if _OPTION_FAMILY.get(source_driver) == _OPTION_FAMILY[driver]:
        carried = {k.lower(): v for k, v in profile.items() if k.lower() not in _DATASET_KEYS}
        if driver == "COG":
            carried = {_COG_OPTION_NAMES.get(k, k): v for k, v in carried.items()}
        carried = {k: v for k, v in carried.items() if k in _CARRIED_OPTIONS[driver]}
        if str(carried.get("predictor")) == "3" and not np.issubdtype(np.dtype(dtype), np.floating):
            del carried["predictor"]  # the floating-point predictor of a float source
        if str(carried.get("compress", "")).lower() in _LOSSY_COMPRESSION:
            del carried["compress"]  # a lossy source does not make a lossy output
    options = dict(_DRIVER_DEFAULTS[driver])
    options.update(carried)
    if driver in ("GTiff", "COG") and np.issubdtype(np.dtype(dtype), np.integer):
        # Images: horizontal differencing makes them compress ~15% smaller, and with it
        # DEFLATE level 1 is as small as level 6 at ~60% of the CPU time (measured on a
        # colorised scene); the caller's options still win.
        if str(options.get("compress", "")).lower() in _PREDICTED_COMPRESSION:
            options.setdefault("predictor", 2)
        if str(options.get("compress", "")).lower() == "deflate":
            options.setdefault("zlevel" if driver == "GTiff" else "level", 1)
    if driver == "GTiff":
        blocks = (options.get("blockxsize"), options.get("blockysize"))
        if not options.get("tiled") or not all(isinstance(b, int) and b % 16 == 0 for b in blocks):
            # Tiled, so that windows are written efficiently (a striped or PNG source is not).
            options.update(tiled=True, blockxsize=_TILE_SIZE, blockysize=_TILE_SIZE)
    if extra:
        options.update({k.lower(): v for k, v in extra.items()})
    return options


def _check_complete(written: Path, path: Path, sparse_ok: bool = False) -> None:
    """Check that GDAL wrote every block of ``written`` (the temporary file of ``path``).

    A block GDAL could not flush (no space left on the device) is often only logged, not
    raised, and the file is left with blocks missing; a GeoTIFF's block offsets and sizes
    tell, without reading the data. With ``sparse_ok`` (GDAL's SPARSE_OK) empty blocks are
    allowed.

    Raises:
        OutputError: the file does not open, or blocks are missing or lie past its end.
    """
    fix = "is the disk full? Free some space or write elsewhere"
    try:
        size = written.stat().st_size
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", NotGeoreferencedWarning)
            with rasterio.open(written) as dataset:
                if dataset.driver != "GTiff":
                    return
                # Pixel interleaving stores all bands in the blocks of band 1.
                separate = dataset.interleaving == Interleaving.band
                missing = total = 0
                for band in dataset.indexes if separate else (1,):
                    for (row, col), _ in dataset.block_windows(band):
                        total += 1
                        offset = int(dataset.get_tag_item(
                            f"BLOCK_OFFSET_{col}_{row}", "TIFF", bidx=band) or 0)
                        length = int(dataset.get_tag_item(
                            f"BLOCK_SIZE_{col}_{row}", "TIFF", bidx=band) or 0)
                        if offset + length > size or (not length and not sparse_ok):
                            missing += 1
    except (RasterioError, OSError, ValueError) as error:
        raise OutputError(f"{path}: cannot write ({error}); {fix}") from None
    if missing:
        raise OutputError(f"{path}: cannot write ({missing} of {total} blocks are missing); {fix}")


class RasterWriter:
    """Write a raster window by window, atomically; for scene-sized outputs.

    Memory stays bounded by one window. GeoTIFF outputs are written directly under a temporary
    name; PNG, JPEG and COG, which GDAL writes in one go only (CreateCopy), are written window
    by window to a temporary tiled GeoTIFF that :meth:`close` converts with
    ``rasterio.shutil.copy`` (which streams). Either way the result is renamed over ``path``
    only when complete; on an error inside the ``with`` block every temporary file is deleted.

    Example::

        profile = read_info(sar_path).profile
        profile.update(count=3, dtype="uint8")
        with RasterWriter("out.png", profile, overwrite=True) as writer:
            for window in windows:
                writer.write(rgb_chw, window, valid=valid)

    Args:
        path: output file; the driver follows from its extension unless ``driver`` is given.
        profile: source profile updated for the output (``count``, ``dtype``; ``width``,
            ``height``, ``crs``, ``transform`` define the grid; ``nodata`` is used where it
            fits). Its creation options carry over between GeoTIFF and COG (compression,
            predictor, tiling when the blocks are multiples of 16) and are otherwise dropped:
            a GeoTIFF's tiling means nothing to a PNG.
        driver: ``"GTiff"``, ``"COG"``, ``"PNG"`` or ``"JPEG"``; None to infer it.
        cog: write a Cloud-Optimised GeoTIFF (same as ``driver="COG"``).
        overwrite: replace an existing output.
        creation_options: GDAL creation options for the output (``{"COMPRESS": "LZW"}``), over
            those of the profile.
        masked: mark invalid pixels (alpha band, JPEG mask or nodata; see the module
            docstring). When False, ``valid`` must not be passed to :meth:`write`.
        descriptions: band descriptions for the data bands (e.g. ``("red", "green", "blue")``).

    Raises:
        OutputExistsError: the output exists and ``overwrite`` is False.
        RasterError: a data type or band count the driver cannot hold, bad profile.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        profile: dict[str, Any],
        *,
        driver: str | None = None,
        cog: bool = False,
        overwrite: bool = False,
        creation_options: dict[str, Any] | None = None,
        masked: bool = True,
        descriptions: Sequence[str | None] | None = None,
    ) -> None:
        self.path = Path(path)
        self.driver = driver_for_path(self.path, driver, cog)
        self.masked = masked
        try:
            self.width, self.height = int(profile["width"]), int(profile["height"])
            self.count = int(profile.get("count", 1))
            self.dtype = np.dtype(profile["dtype"]).name
        except (KeyError, TypeError) as error:
            raise RasterError(
                f"{self.path}: the profile needs width, height and dtype ({error})"
            ) from None
        self._check_driver_can_hold()
        if descriptions is not None and len(descriptions) != self.count:
            raise RasterError(
                f"{self.path}: {len(descriptions)} band descriptions for {self.count} bands"
            )
        # Display RGB (8/16-bit) gets an alpha band; JPEG, which has none, a mask; anything else
        # (grey, float LAB, SAR) a nodata value.
        self.rgb = self.count == 3 and self.dtype in ("uint8", "uint16")
        self.dataset_mask = masked and self.driver == "JPEG"
        self.alpha = masked and self.rgb and not self.dataset_mask
        self.nodata = self._output_nodata(profile.get("nodata"))
        self._nodata_collisions = 0
        self.creation_options = _creation_options(
            profile, self.driver, self.dtype, creation_options
        )
        # The file GDAL writes window by window: the output itself for GeoTIFF, else a staging
        # GeoTIFF converted at close. Photometric follows the output (never the source's).
        staging_options = dict(
            self.creation_options if self.driver == "GTiff" else _STAGING_OPTIONS
        )
        if self.rgb:
            staging_options.setdefault("photometric", "rgb")
        staging_options.update(
            width=self.width,
            height=self.height,
            count=self.count + int(self.alpha),
            dtype=self.dtype,
            crs=profile.get("crs"),
            transform=profile.get("transform"),
            nodata=self.nodata,
        )

        check_output_path(self.path, overwrite)
        self.overwrite = overwrite
        make_folder(self.path.parent)
        remove_stale(self.path.parent)
        self._output_temporary = temporary_path(self.path)
        self._staging = (
            self._output_temporary
            if self.driver == "GTiff"
            else temporary_path(self.path.with_suffix(".tif"), "staging")
        )
        self._closed = False
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", NotGeoreferencedWarning)
                self._dataset = rasterio.open(
                    self._staging, "w", driver="GTiff", **staging_options
                )
            if self.alpha:
                self._dataset.colorinterp = [
                    ColorInterp.red, ColorInterp.green, ColorInterp.blue, ColorInterp.alpha
                ]
            for index, description in enumerate(descriptions or (), start=1):
                if description is not None:
                    self._dataset.set_band_description(index, description)
            if self.driver != "JPEG":  # JPEG: in its comment (see _DRIVER_DEFAULTS)
                self._dataset.update_tags(**{WRITER_TAG: __version__})
        except RasterioError as error:
            self._discard()
            raise OutputError(f"{self.path}: cannot create the output ({error})") from None
        except BaseException:
            self._discard()
            raise
        logger.debug(
            "writing %s (%s, %d x %d, %d bands %s) via %s",
            self.path, self.driver, self.width, self.height, self.count, self.dtype, self._staging,
        )

    def _check_driver_can_hold(self) -> None:
        dtypes = _DRIVER_DTYPES.get(self.driver)
        if dtypes and self.dtype not in dtypes:
            raise RasterError(
                f"{self.path}: {self.driver} holds {' or '.join(dtypes)} bands, not {self.dtype}; "
                "write a GeoTIFF (.tif) or convert the values first"
            )
        counts = _DRIVER_COUNTS.get(self.driver)
        if counts and self.count not in counts:
            raise RasterError(
                f"{self.path}: {self.driver} holds {counts} bands, not {self.count}; "
                "write a GeoTIFF (.tif)"
            )

    def _output_nodata(self, nodata: float | None) -> float | None:
        if not self.masked:
            if nodata is not None and not _fits_dtype(float(nodata), self.dtype):
                logger.warning("nodata %s does not fit %s; not set on %s", nodata, self.dtype, self.path)
                return None
            return nodata
        if self.alpha or self.dataset_mask:
            return None
        if nodata is not None and _fits_dtype(float(nodata), self.dtype):
            return float(nodata)
        default = math.nan if np.issubdtype(np.dtype(self.dtype), np.floating) else 0.0
        if nodata is not None:
            logger.warning(
                "nodata %s does not fit %s; %s uses %s instead", nodata, self.dtype, self.path, default
            )
        return default

    def write(
        self,
        array: np.ndarray,
        window: Window | Sequence[Sequence[int]] | None = None,
        valid: np.ndarray | None = None,
    ) -> None:
        """Write one window of the output.

        Args:
            array: ``(bands, h, w)`` (or ``(h, w)`` for one band) values for the window, in the
                output's data type or one that converts to it without changing kind (float
                values are not silently cast to integers: round and clip them first).
            window: where the array goes; None for the whole raster.
            valid: boolean ``(h, w)``, True where the pixels hold data; None means all valid.

        Raises:
            RasterError: shapes or window do not fit the output, or the writer is closed.
            InputError: ``valid`` given to a writer created with ``masked=False``.
        """
        if self._closed:
            raise RasterError(f"{self.path}: the writer is closed")
        array = np.asarray(array)
        if array.ndim == 2:
            array = array[np.newaxis]
        target = _check_window(
            _as_window(window) or Window(0, 0, self.width, self.height),
            self.width, self.height, self.path,
        )
        if array.shape != (self.count, target.height, target.width):
            raise RasterError(
                f"{self.path}: array of shape {array.shape} does not fit a "
                f"{target.height} x {target.width} window of {self.count} bands"
            )
        array = self._converted(array)
        if valid is not None:
            if not self.masked:
                raise InputError(f"{self.path}: pass masked=True to the writer to write a valid mask")
            valid = np.asarray(valid, dtype=bool)
            if valid.shape != array.shape[1:]:
                raise RasterError(
                    f"{self.path}: valid mask of shape {valid.shape} does not fit the window "
                    f"{array.shape[1:]}"
                )
        try:
            self._write(array, target, valid)
        except RasterioError as error:
            raise OutputError(f"{self.path}: cannot write ({error})") from None

    def _converted(self, array: np.ndarray) -> np.ndarray:
        target = np.dtype(self.dtype)
        if array.dtype == target:
            return array
        both_integer = np.issubdtype(array.dtype, np.integer) and np.issubdtype(target, np.integer)
        if array.dtype == bool or not (np.can_cast(array.dtype, target, "same_kind") or both_integer):
            raise RasterError(
                f"{self.path}: cannot write {array.dtype} values to {self.dtype} bands; "
                "convert them first"
            )
        return array.astype(target)

    def _write(self, array: np.ndarray, window: Window, valid: np.ndarray | None) -> None:
        dataset = self._dataset
        bands = list(range(1, self.count + 1))
        nodata = self.nodata if self.masked and not (self.alpha or self.dataset_mask) else None
        if valid is not None and not valid.all():
            fill = 0 if nodata is None else nodata
            array = np.where(valid, array, np.asarray(fill).astype(array.dtype))
        if nodata is not None and not math.isnan(nodata):
            # Valid pixels that happen to equal the nodata value will read back as nodata.
            hits = (array == nodata).any(axis=0)
            if valid is not None:
                hits &= valid
            self._nodata_collisions += int(hits.sum())
        dataset.write(array, indexes=bands, window=window)
        if self.alpha:
            alpha = np.full(array.shape[1:], np.iinfo(self.dtype).max, dtype=self.dtype)
            if valid is not None:
                alpha[~valid] = 0
            dataset.write(alpha, indexes=self.count + 1, window=window)
        elif self.dataset_mask:
            mask = np.full(array.shape[1:], 255, dtype=np.uint8)
            if valid is not None:
                mask[~valid] = 0
            with rasterio.Env(GDAL_TIFF_INTERNAL_MASK=True):
                dataset.write_mask(mask, window=window)

    def close(self) -> Path:
        """Finish the output: convert if needed and rename it into place.

        Returns:
            The output path.
        """
        if self._closed:
            return self.path
        self._closed = True
        try:
            self._dataset.close()
            sparse_ok = str(self.creation_options.get("sparse_ok", "")).upper() in ("TRUE", "YES")
            _check_complete(self._staging, self.path, sparse_ok)
            if self._staging != self._output_temporary:
                # GDAL converts the whole scene in one C call (seconds): run it where a
                # signal does not have to wait for it.
                run_interruptibly(self._convert)
                _check_complete(self._output_temporary, self.path, sparse_ok)
                _remove_with_sidecars(self._staging)
            _move_into_place(self._output_temporary, self.path, self.overwrite)
        except RasterioError as error:
            self._discard()
            raise OutputError(f"{self.path}: cannot write ({error})") from None
        except BaseException:
            self._discard()
            raise
        if self._nodata_collisions:
            logger.warning(
                "%s: %d valid pixels equal the nodata value %s and will read back as nodata",
                self.path, self._nodata_collisions, self.nodata,
            )
        logger.info("wrote %s", self.path)
        return self.path

    def _convert(self) -> None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", NotGeoreferencedWarning)
            rasterio.shutil.copy(
                self._staging, self._output_temporary, driver=self.driver,
                **self.creation_options,
            )

    def abort(self) -> None:
        """Drop the output: close and delete every temporary file; ``path`` is left untouched."""
        self._closed = True
        self._discard()

    def _discard(self) -> None:
        dataset = getattr(self, "_dataset", None)
        if dataset is not None and not dataset.closed:
            with contextlib.suppress(Exception):
                dataset.close()
        for temporary in {self._staging, self._output_temporary}:
            _remove_with_sidecars(temporary)

    def __enter__(self) -> RasterWriter:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()


def write_raster(
    path: str | os.PathLike[str],
    array: np.ndarray,
    profile: dict[str, Any],
    *,
    valid: np.ndarray | None = None,
    overwrite: bool = False,
    driver: str | None = None,
    cog: bool = False,
    creation_options: dict[str, Any] | None = None,
    descriptions: Sequence[str | None] | None = None,
) -> Path:
    """Write an array as a raster in one go, atomically, starting from a source profile.

    Args:
        path: output file; ``.tif``/``.tiff`` GeoTIFF, ``.png`` PNG, ``.jpg``/``.jpeg`` JPEG.
        array: ``(bands, height, width)`` or ``(height, width)``; its shape and data type
            define the output's band count, size and data type.
        profile: the source's profile (``read_info(src).profile``) for CRS, transform, nodata
            and creation options. If it has ``width``/``height`` they must equal the array's
            (update ``transform`` together with them when the grid changes).
        valid: boolean ``(height, width)`` mask, True where there is data; invalid pixels are
            marked by an alpha band, a JPEG mask or nodata (see the module docstring).
        overwrite: replace an existing output.
        driver: GDAL driver instead of the one the extension implies.
        cog: write a Cloud-Optimised GeoTIFF.
        creation_options: GDAL creation options, over those of the profile.
        descriptions: band descriptions.

    Returns:
        The output path.

    Raises:
        OutputExistsError: the output exists and ``overwrite`` is False.
        RasterError: shapes that do not fit, a data type the format cannot hold.
    """
    array = np.asarray(array)
    if array.ndim == 2:
        array = array[np.newaxis]
    if array.ndim != 3:
        raise RasterError(f"{path}: expected a (bands, height, width) array, got shape {array.shape}")
    count, height, width = array.shape
    size = (profile.get("height"), profile.get("width"))
    if size != (None, None) and size != (height, width):
        raise RasterError(
            f"{path}: array is {height} x {width} but the profile describes {size[0]} x {size[1]}; "
            "update the profile's width, height and transform"
        )
    output_profile = dict(profile)
    output_profile.update(count=count, height=height, width=width, dtype=array.dtype.name)
    with RasterWriter(
        path,
        output_profile,
        driver=driver,
        cog=cog,
        overwrite=overwrite,
        creation_options=creation_options,
        masked=valid is not None,
        descriptions=descriptions,
    ) as writer:
        writer.write(array, valid=valid)
    return writer.path
