"""The C libraries under rasterio (GDAL, libtiff), reached with ctypes for the little that
rasterio does not expose: a driver's declared creation options
(:mod:`sar_colorizer.io.creation_options`) and libtiff's own error printing.

libtiff prints some errors straight to the process's stderr ("_tiffWriteProc: No space left on
device.", once per block on a full disk) besides handing them to GDAL, which reports the
failure anyway (rasterio raises; :func:`sar_colorizer.io.atomic.write_error` names a full
disk). :func:`quiet_libtiff` turns that printing off, so a failed write is one line.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import glob
import os


def _bundled(name: str) -> list[str]:
    import rasterio

    package = os.path.dirname(rasterio.__file__)
    return (sorted(glob.glob(os.path.join(package + ".libs", f"lib{name}*.so*")))
            + sorted(glob.glob(os.path.join(package, ".dylibs", f"lib{name}*.dylib"))))


@functools.cache
def gdal_library() -> ctypes.CDLL | None:
    """The GDAL library that rasterio uses (its wheel's copy, else the system's)."""
    candidates = _bundled("gdal")
    system = ctypes.util.find_library("gdal")
    if system:
        candidates.append(system)
    for candidate in candidates:
        try:
            library = ctypes.CDLL(candidate)
            library.GDALGetDriverByName.restype = ctypes.c_void_p
            library.GDALGetDriverByName.argtypes = [ctypes.c_char_p]
            library.GDALGetMetadataItem.restype = ctypes.c_char_p
            library.GDALGetMetadataItem.argtypes = [ctypes.c_void_p, ctypes.c_char_p,
                                                   ctypes.c_char_p]
            library.GDALAllRegister.restype = None
            return library
        except (OSError, AttributeError):
            continue
    return None


@functools.cache
def quiet_libtiff() -> bool:
    """Stop libtiff printing errors to stderr itself (GDAL still receives them); True where
    done. Once per process."""
    candidates = _bundled("tiff")
    system = ctypes.util.find_library("tiff")
    if system:
        candidates.append(system)
    for candidate in candidates:
        try:
            library = ctypes.CDLL(candidate)
            library.TIFFSetErrorHandler.restype = ctypes.c_void_p
            library.TIFFSetErrorHandler.argtypes = [ctypes.c_void_p]
        except (OSError, AttributeError):
            continue
        library.TIFFSetErrorHandler(None)
        return True
    return False
