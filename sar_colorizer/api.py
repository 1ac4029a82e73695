"""The public Python API: load a model, colorize an array or a raster, evaluate, xarray.

Every function takes a model as a loaded :class:`~sar_colorizer.bundle.Bundle` or as a bundle
path (``"default"``: the shipped model); a path is loaded once and cached, so a notebook can
call these functions in a loop. TensorFlow is imported on first use, not on import.

Example:
    >>> import sar_colorizer as sc
    >>> rgba = sc.colorize(sar_db_array)                      # (H, W) or (C, H, W) -> (H, W, 4)
    >>> sc.colorize_file("scene_VH.tif", "scene_colour.tif")  # streamed, any size
    >>> coloured = sc.colorize_dataarray(rioxarray.open_rasterio("scene_VH.tif", chunks=2048))
"""

from __future__ import annotations

import os
import threading
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, TypeAlias

import numpy as np

from sar_colorizer.errors import InputError

if TYPE_CHECKING:
    import xarray as xr

    from sar_colorizer.bundle import Bundle
    from sar_colorizer.data.pairs import Pair
    from sar_colorizer.inference import PredictSummary

#: A model as the API takes it: a loaded :class:`~sar_colorizer.bundle.Bundle`, a bundle
#: folder written by ``sarcolor train``, or ``"default"`` (the shipped model).
ModelLike: TypeAlias = "str | os.PathLike[str] | Bundle"

_CACHE: dict[str, Bundle] = {}
_CACHE_LOCK = threading.Lock()


def load_model(model: ModelLike = "default") -> Bundle:
    """A loaded :class:`~sar_colorizer.bundle.Bundle`.

    Args:
        model: ``"default"`` (the shipped model), a bundle folder written by ``sarcolor
            train``, or an already loaded bundle (returned as is).

    Returns:
        The bundle; paths are loaded once per process and cached.

    Raises:
        InputError: The path is not a bundle.
    """
    if not isinstance(model, str | os.PathLike):
        return model
    key = os.fspath(model)
    with _CACHE_LOCK:
        if key not in _CACHE:
            from sar_colorizer.bundle import load_bundle

            _CACHE[key] = load_bundle(key)
        return _CACHE[key]


def valid_mask(values: np.ndarray, nodata: float | None = None) -> np.ndarray:
    """``(H, W)`` True where every band of ``(C, H, W)`` values is finite and not ``nodata``."""
    values = np.asarray(values)
    if values.ndim == 2:
        values = values[None]
    valid = np.ones(values.shape[1:], dtype=bool)
    if np.issubdtype(values.dtype, np.floating):
        valid &= np.isfinite(values).all(axis=0)
    if nodata is not None and not (isinstance(nodata, float) and np.isnan(nodata)):
        valid &= (values != nodata).all(axis=0)
    return valid


def colorize(
    values: np.ndarray,
    model: ModelLike = "default",
    *,
    valid: np.ndarray | None = None,
    nodata: float | None = None,
    input_scale: str = "auto",
    tone: str = "balanced",
    tile_size: int | None = None,
    overlap: int | None = None,
    batch_size: int | None = None,
    shrink: bool | None = None,
    display_filter: str = "median_guided",
    colour_upsampling: str = "guided",
    chroma_limit: bool = True,
    pixel_size: float | None = None,
) -> np.ndarray:
    """Colorize a SAR image held in a numpy array.

    The same preprocessing, tiling and blending as ``sarcolor predict`` (tiles of the size the
    model was trained on); for an image no larger than
    :data:`~sar_colorizer.inference.STATS_MAX_SIDE` px the colours equal ``predict``'s.

    Args:
        values: ``(H, W)`` or ``(C, H, W)`` raw SAR values (bands in the model's order): linear
            power, dB, amplitude (pass ``input_scale="amplitude"``) or 8/16-bit display values.
        model: See :func:`load_model`.
        valid: ``(H, W)`` True where the data are valid; None: finite and not ``nodata``.
        nodata: Value marking missing pixels (when ``valid`` is None).
        input_scale: "auto" or one of "linear", "db", "amplitude", "display".
        tone: "balanced", "matched" or "sar" (see ``sarcolor predict --help``).
        tile_size: Tile side; None: the size the model was trained on.
        overlap: Tile overlap; None: predict's default (an eighth of the tile).
        batch_size, shrink, display_filter, colour_upsampling, chroma_limit: As for
            ``sarcolor predict`` (:func:`~sar_colorizer.inference.colorize_array`).
        pixel_size: Ground pixel size in metres (an array has no georeference); None: the
            model's training pixel size.

    Returns:
        ``(H, W, 4)`` uint8 RGBA; alpha is 0 exactly at invalid pixels.

    Raises:
        InputError: Bad shapes, no valid pixel, unknown scale or tone.
        ModelMismatchError: The number of bands differs from the model's.
    """
    from sar_colorizer.inference import colorize_array

    bundle = load_model(model)
    array = np.asarray(values)
    if array.ndim == 2:
        array = array[None]
    if array.ndim != 3:
        raise InputError(f"SAR values must be (H, W) or (bands, H, W); got shape {array.shape}")
    mask = valid_mask(array, nodata) if valid is None else np.asarray(valid, dtype=bool)
    result = colorize_array(
        bundle,
        array,
        mask,
        input_scale=input_scale,
        tone=tone,
        tile_size="model" if tile_size is None else tile_size,
        overlap=overlap,
        batch_size=batch_size,
        shrink=shrink,
        display_filter=display_filter,
        colour_upsampling=colour_upsampling,
        chroma_limit=chroma_limit,
        pixel_size=pixel_size,
    )
    alpha = np.where(result["valid"], np.uint8(255), np.uint8(0))
    return np.dstack([result["rgb"], alpha])


def colorize_file(
    in_path: str | os.PathLike[str],
    out_path: str | os.PathLike[str],
    model: ModelLike = "default",
    **options: Any,
) -> PredictSummary:
    """Colorize a raster that GDAL reads (local path, ``/vsis3/``, ``/vsicurl/``), or a
    Sentinel-1 GRD product (``.SAFE`` folder, ``manifest.safe``, ``.zip``: calibrated, noise
    removed and geocoded first), into a file.

    The scene is streamed tile row by tile row (any size); ``options`` are those of
    :func:`sar_colorizer.inference.colorize_raster` (``bands``, ``input_scale``, ``tone``,
    ``tile_size``, ``overlap``, ``batch_size``, ``driver``, ``ab_path``, ``quicklook_path``,
    ``overwrite``, ``progress``, ``creation_options``, ``confidence_path``, ``shrink``,
    ``display_filter``, ``colour_upsampling``, ``chroma_limit``, ``pixel_size``,
    ``product_options``: a :class:`sar_colorizer.io.s1product.ProductOptions`).

    Returns:
        The :class:`~sar_colorizer.inference.PredictSummary`.
    """
    from sar_colorizer.inference import colorize_raster

    options.setdefault("progress", False)
    return colorize_raster(load_model(model), in_path, out_path, **options)


def evaluate(
    pairs: str | os.PathLike[str] | Sequence[Pair],
    report_dir: str | os.PathLike[str],
    model: ModelLike = "default",
    **options: Any,
) -> dict[str, Any]:
    """Score a model and the baselines on SAR/optical pairs; write ``report.json``/``.md``/``.html``.

    Args:
        pairs: A pairs folder or CSV manifest (as ``sarcolor eval`` takes), or
            :class:`~sar_colorizer.data.pairs.Pair` objects.
        report_dir: Folder for the report (created).
        model: See :func:`load_model`.
        options: Those of :func:`sar_colorizer.evaluation.evaluate` (``split``, ``limit``,
            ``grid_count``, ``bands``, ``input_scale``, ``tone``, ``tile_size``,
            ``overwrite``, ``html``, ``flagged``).

    Returns:
        The report (the content of ``report.json``).
    """
    from pathlib import Path

    from sar_colorizer.evaluation import evaluate as run_evaluation

    if isinstance(pairs, str | os.PathLike):
        from sar_colorizer.data.pairs import find_pairs

        pairs = find_pairs(Path(pairs))
    options.setdefault("progress", False)
    return run_evaluation(load_model(model), list(pairs), report_dir=report_dir, **options)


def colorize_dataarray(
    sar: xr.DataArray, model: ModelLike = "default", **options: Any
) -> xr.DataArray:
    """Colorize an xarray ``DataArray`` of SAR; see :func:`sar_colorizer.xarray_api.colorize_dataarray`."""
    from sar_colorizer.xarray_api import colorize_dataarray as run

    return run(sar, model, **options)
