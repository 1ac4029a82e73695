"""Output formats: the GDAL driver of an output and its creation options.

Creation options start from the source profile's (those that mean the same for the target
driver), then the driver's defaults, then the caller's options over them.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

import numpy as np

from sar_colorizer.errors import RasterError
from sar_colorizer.version import __version__

__all__ = ["OUTPUT_DRIVERS", "WRITER_TAG", "driver_for_path", "output_creation_options", "fits_dtype"]

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
    # SPARSE_OK: blocks that are all nodata (all 0 in an RGBA image) are not written at all,
    # so the empty corners of a scene cost nothing and read back as nodata.
    "GTiff": {"compress": "deflate", "bigtiff": "if_safer", "sparse_ok": True},
    "COG": {"compress": "deflate", "bigtiff": "if_safer"},
    # The writer's tag (WRITER_TAG) in the file itself, not in an .aux.xml of its own.
    "PNG": {"worldfile": "yes", "write_metadata_as_text": "yes"},
    "JPEG": {"worldfile": "yes", "quality": 90, "comment": f"{WRITER_TAG}={__version__}"},
}
_LOSSY_COMPRESSION = frozenset({"jpeg", "webp", "jxl"})
_PREDICTED_COMPRESSION = frozenset({"deflate", "lzw", "zstd", "lzma"})
DRIVER_DTYPES = {"PNG": ("uint8", "uint16"), "JPEG": ("uint8",)}
DRIVER_COUNTS = {"PNG": (1, 2, 3, 4), "JPEG": (1, 3)}
# PNG, JPEG and COG are written by GDAL's CreateCopy only; window-by-window output first goes to
# a temporary tiled GeoTIFF with these options.
STAGING_OPTIONS = {
    "tiled": True, "blockxsize": 256, "blockysize": 256, "compress": "deflate", "zlevel": 1,
    "interleave": "pixel", "bigtiff": "if_safer", "sparse_ok": True,
}
_TILE_SIZE = 256


def driver_for_path(path: str | os.PathLike[str], driver: str | None = None, cog: bool = False) -> str:
    """GDAL driver for an output: ``driver`` if given, ``"COG"`` if ``cog``, else from the
    extension (``.tif``/``.tiff`` GTiff, ``.png`` PNG, ``.jpg``/``.jpeg`` JPEG).

    Raises:
        RasterError: unknown extension or unsupported driver.
    """
    suffix = Path(path).suffix.lower()
    if driver is None:
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
    named = _DRIVER_BY_SUFFIX.get(suffix)
    if named is not None and _OPTION_FAMILY[named] != _OPTION_FAMILY[driver]:
        # a GeoTIFF named .png opens as a PNG nowhere (viewers go by the extension)
        wanted = [s for s, d in _DRIVER_BY_SUFFIX.items() if d == driver] or [".tif"]
        raise RasterError(
            f"{path}: a {driver} file cannot be named {suffix}; name it {wanted[0]} or choose "
            "the format that suits the name (--format, --cog)"
        )
    if cog:
        if driver not in ("GTiff", "COG"):
            raise RasterError(f"{path}: a Cloud-Optimised GeoTIFF needs a .tif name, not {driver}")
        driver = "COG"
    return driver



def fits_dtype(value: float, dtype: str) -> bool:
    """Whether ``value`` can be stored in bands of ``dtype``."""
    if np.issubdtype(np.dtype(dtype), np.floating):
        return bool(math.isnan(value) or abs(value) <= np.finfo(dtype).max)
    info = np.iinfo(dtype)
    return bool(float(value).is_integer() and info.min <= value <= info.max)


def is_georeferenced(profile: dict[str, Any]) -> bool:
    """Whether a profile places the raster on the Earth: a CRS, or a transform that is not
    GDAL's identity (what a plain PNG or JPEG without world file reads with)."""
    from affine import Affine

    transform = profile.get("transform")
    return profile.get("crs") is not None or (
        transform is not None and not Affine(*tuple(transform)[:6]).almost_equals(Affine.identity())
    )


def output_creation_options(
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
    if not is_georeferenced(profile):
        # A world file of an image without georeference would place it at 0, 0 with 1-unit
        # pixels (GDAL's identity transform): write none.
        options.pop("worldfile", None)
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

