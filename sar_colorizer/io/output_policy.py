"""The checks on an output path before anything is written: may it be written, or replaced?

One module for every path that writes (a single ``predict``, a batch on any executor, the
xarray and evaluation outputs):

* :func:`check_output_path`: an output that exists is replaced only with ``overwrite``; a
  folder where a file is expected, a file where a folder is expected, or a folder that cannot be
  written is refused up front (another run that creates the output meanwhile is caught when it
  is published: :func:`sar_colorizer.io.atomic.publish`);
* :func:`check_distinct`: the outputs of one run are different files, none of them its input;
* :func:`check_replaceable`: a batch's rule, never one of the run's inputs, and a raster this
  package did not write (:func:`written_by_sarcolor`, by :data:`~sar_colorizer.io.formats.
  WRITER_TAG`) only with ``force`` as well.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Sequence
from pathlib import Path

import rasterio
from rasterio.errors import NotGeoreferencedWarning, RasterioError

from sar_colorizer.errors import InputError, OutputError, OutputExistsError, RasterError
from sar_colorizer.io.atomic import check_target
from sar_colorizer.io.formats import WRITER_TAG

__all__ = ["check_distinct", "check_output_path", "check_replaceable", "written_by_sarcolor"]


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


def check_distinct(in_path: Path | str, outputs: Sequence[Path]) -> None:
    """Refuse outputs that repeat the input or each other.

    Raises:
        InputError: Two of the files are the same.
    """
    names: set[Path | str] = {p.resolve() for p in outputs}
    names.add(in_path if isinstance(in_path, str) else in_path.resolve())
    if len(names) != len(outputs) + 1:
        raise InputError(f"{in_path}: input and outputs must all be different files")


def check_replaceable(
    path: Path, overwrite: bool, force: bool, inputs: Sequence[Path | str]
) -> None:
    """Refuse to write ``path`` if it is an input of the run (always), if it exists without
    ``overwrite``, or if it is a raster that sarcolor did not write (SAR data, say) without
    ``force`` as well.

    Raises:
        OutputExistsError: with the message that says what to do.
    """
    for source in inputs:
        if _same_file(path, source):
            raise OutputExistsError(
                f"{path} is an input of this run; it is never replaced (give another output "
                "name, or use --output-dir DIR for many inputs)"
            )
    if not (path.exists() or path.is_symlink()) or path.is_dir():
        check_output_path(path, overwrite)
        return
    if written_by_sarcolor(path) is not False:  # sarcolor's own output, or no raster at all
        check_output_path(path, overwrite)
        return
    if overwrite and force:
        return
    raise OutputExistsError(
        f"{path} exists and sarcolor did not write it (if a shell pattern expanded to several "
        "inputs, use --output-dir DIR); to replace it anyway pass --overwrite --force"
    )


def _same_file(a: Path, b: Path | str) -> bool:
    if not isinstance(b, Path):  # a GDAL virtual path or URL is never a local output
        return False
    try:
        return a.resolve() == b.resolve() or (a.exists() and b.exists() and a.samefile(b))
    except OSError:
        return False
