"""Writing rasters, atomically: :func:`write_raster` in one go, :class:`RasterWriter` window by
window, :func:`atomic_path` for files another library writes (figures, reports).

Both writers start from a source profile (``profile = src.profile; profile.update(...)``),
write GeoTIFF, Cloud-Optimised GeoTIFF (GDAL ``COG`` driver), PNG or JPEG, mark invalid pixels,
and are atomic: the data go to a temporary file in the output's folder that is renamed over the
destination only once it is complete, so a crash or an error never leaves a partial output
behind. An existing output is replaced only with ``overwrite=True``.

How invalid pixels are written (``valid`` False):
    * Display RGB (3 bands of uint8 or uint16) to GeoTIFF, COG or PNG: a 4th, alpha band
      (0 = transparent, 255 or 65535 = opaque; GeoTIFF with photometric RGB). RGB is 0 there.
    * JPEG, which has no alpha: a GDAL internal mask (a compressed bit mask appended to the
      JPEG file, read back by GDAL as the dataset mask). Values are 0 there.
    * Anything else (grey, float LAB/AB, SAR): a nodata value, the profile's own when the
      output data type can hold it, else NaN for float outputs and 0 for integer ones.
    :func:`~sar_colorizer.io.raster.read_raster` turns each of these back into the same
    ``valid`` mask.

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
import warnings
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any

import numpy as np
import rasterio
import rasterio.shutil
from rasterio.enums import ColorInterp, Interleaving
from rasterio.errors import NotGeoreferencedWarning, RasterioError
from rasterio.windows import Window

from sar_colorizer.errors import InputError, OutputError, RasterError
from sar_colorizer.io.atomic import (
    make_folder,
    publish_with_sidecars,
    remove_stale,
    remove_with_sidecars,
    temporary_path,
    write_error,
)
from sar_colorizer.io.formats import (
    DRIVER_COUNTS,
    DRIVER_DTYPES,
    STAGING_OPTIONS,
    WRITER_TAG,
    driver_for_path,
    fits_dtype,
    output_creation_options,
)
from sar_colorizer.io.gdal_library import quiet_libtiff
from sar_colorizer.io.output_policy import check_output_path
from sar_colorizer.io.windows import as_window, check_window
from sar_colorizer.signals import run_interruptibly
from sar_colorizer.version import __version__

logger = logging.getLogger(__name__)

__all__ = ["RasterWriter", "atomic_path", "write_raster"]


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
        publish_with_sidecars(temporary, path, overwrite)
    except BaseException:
        remove_with_sidecars(temporary)
        raise


def _sparse(options: Mapping[str, Any]) -> bool:
    """Whether creation ``options`` let GDAL leave empty blocks out (SPARSE_OK)."""
    return str(options.get("sparse_ok", "")).upper() in ("TRUE", "YES", "1", "ON")


def check_complete(written: Path, path: Path, sparse_ok: bool = False) -> None:
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
        raise _with_fix(write_error(path, error), fix) from None
    if missing:
        raise _with_fix(write_error(path, f"{missing} of {total} blocks are missing"), fix)


def _with_fix(error: OutputError, fix: str) -> OutputError:
    """``error``, or with ``fix`` appended where it does not already name a full disk."""
    return error if "the disk is full" in str(error) else OutputError(f"{error}; {fix}")


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
        tags: dataset metadata to write (``{"SARCOLOR_INPUT_SCALE": "db"}``; not in JPEG).

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
        tags: Mapping[str, str] | None = None,
    ) -> None:
        self.path = Path(path)
        self.driver = driver_for_path(self.path, driver, cog)
        self.masked = masked
        quiet_libtiff()  # a failed write is one error, not a libtiff line per block on stderr
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
        self.creation_options = output_creation_options(
            profile, self.driver, self.dtype, creation_options
        )
        self._staging_options = self._staging_creation(profile)
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
        self._open_staging(self._staging_options, descriptions, tags)
        logger.debug(
            "writing %s (%s, %d x %d, %d bands %s) via %s",
            self.path, self.driver, self.width, self.height, self.count, self.dtype, self._staging,
        )

    def _staging_creation(self, profile: dict[str, Any]) -> dict[str, Any]:
        """Creation options of the file GDAL writes window by window: the output itself for
        GeoTIFF, else a staging GeoTIFF converted at close. Photometric follows the output
        (never the source's)."""
        staging_options = dict(
            self.creation_options if self.driver == "GTiff" else STAGING_OPTIONS
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
        return staging_options

    def _open_staging(
        self,
        staging_options: dict[str, Any],
        descriptions: Sequence[str | None] | None,
        tags: Mapping[str, str] | None,
    ) -> None:
        """Create the staging file with its colour interpretation, band descriptions and the
        writer's tag; on failure nothing is left behind."""
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
            if self.driver != "JPEG":  # JPEG: in its comment (see formats._DRIVER_DEFAULTS)
                self._dataset.update_tags(**{**(tags or {}), WRITER_TAG: __version__})
        except RasterioError as error:
            self._discard()
            raise write_error(self.path, error) from None
        except BaseException:
            self._discard()
            raise

    def _check_driver_can_hold(self) -> None:
        dtypes = DRIVER_DTYPES.get(self.driver)
        if dtypes and self.dtype not in dtypes:
            raise RasterError(
                f"{self.path}: {self.driver} holds {' or '.join(dtypes)} bands, not {self.dtype}; "
                "write a GeoTIFF (.tif) or convert the values first"
            )
        counts = DRIVER_COUNTS.get(self.driver)
        if counts and self.count not in counts:
            raise RasterError(
                f"{self.path}: {self.driver} holds {counts} bands, not {self.count}; "
                "write a GeoTIFF (.tif)"
            )

    def _output_nodata(self, nodata: float | None) -> float | None:
        if not self.masked:
            if nodata is not None and not fits_dtype(float(nodata), self.dtype):
                logger.warning("nodata %s does not fit %s; not set on %s", nodata, self.dtype, self.path)
                return None
            return nodata
        if self.alpha or self.dataset_mask:
            return None
        if nodata is not None and fits_dtype(float(nodata), self.dtype):
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
        target = check_window(
            as_window(window) or Window(0, 0, self.width, self.height),
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
            raise write_error(self.path, error) from None

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
        if self.alpha:
            # The colour bands (0 where not valid) and the alpha band in one array and one
            # call: GDAL fills each block once (a third of the CPU time of writing them apart).
            count = self.count
            rgba = np.empty((count + 1, *array.shape[1:]), dtype=array.dtype)
            rgba[:count] = array
            top = np.iinfo(self.dtype).max
            if valid is None:
                rgba[count].fill(top)
            else:
                if not valid.all():
                    np.multiply(rgba[:count], valid, out=rgba[:count])
                np.multiply(valid, rgba.dtype.type(top), out=rgba[count])
            dataset.write(rgba, window=window)
            return
        bands = list(range(1, self.count + 1))
        nodata = self.nodata if self.masked and not self.dataset_mask else None
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
        if self.dataset_mask:
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
            check_complete(self._staging, self.path, _sparse(self._staging_options))
            if self._staging != self._output_temporary:
                # GDAL converts the whole scene in one C call (seconds): run it where a
                # signal does not have to wait for it.
                run_interruptibly(self._convert)
                check_complete(
                    self._output_temporary, self.path, _sparse(self.creation_options)
                )
                remove_with_sidecars(self._staging)
            publish_with_sidecars(self._output_temporary, self.path, self.overwrite)
        except RasterioError as error:
            self._discard()
            raise write_error(self.path, error) from None
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
            remove_with_sidecars(temporary)

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
