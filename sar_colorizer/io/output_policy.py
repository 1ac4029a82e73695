"""The checks on an output path before anything is written: may it be written, or replaced?

An output that exists is replaced only with ``overwrite``; a folder where a file is expected, a
file where a folder is expected, or a folder that cannot be written is refused up front.
:func:`written_by_sarcolor` tells a raster that this package wrote (it carries
:data:`~sar_colorizer.io.formats.WRITER_TAG`) from one it did not.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import rasterio
from rasterio.errors import NotGeoreferencedWarning, RasterioError

from sar_colorizer.errors import OutputError, RasterError
from sar_colorizer.io.atomic import check_target
from sar_colorizer.io.formats import WRITER_TAG

__all__ = ["check_output_path", "written_by_sarcolor"]


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

