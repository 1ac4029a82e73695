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
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from sar_colorizer.errors import InputError
from sar_colorizer.inference.options import ColourOptions

if TYPE_CHECKING:
    import xarray as xr

    from sar_colorizer.bundle import Bundle, ModelLike
    from sar_colorizer.data.pairs import Pair
    from sar_colorizer.inference import PredictSummary

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
    from sar_colorizer.bundle import cached_bundle

    return cached_bundle(model)


def colorize(
    values: np.ndarray,
    model: ModelLike = "default",
    options: ColourOptions | None = None,
    *,
    valid: np.ndarray | None = None,
    nodata: float | None = None,
    **settings: Any,
) -> np.ndarray:
    """Colorize a SAR image held in a numpy array.

    The same preprocessing, tiling and blending as ``sarcolor predict`` (tiles of the size the
    model was trained on); for an image no larger than
    :data:`~sar_colorizer.inference.STATS_MAX_SIDE` px the colours equal ``predict``'s.

    Args:
        values: ``(H, W)`` or ``(C, H, W)`` raw SAR values (bands in the model's order): linear
            power, dB, amplitude (pass ``input_scale="amplitude"``) or 8/16-bit display values.
        model: See :func:`load_model`.
        options: How it is coloured (:class:`~sar_colorizer.inference.options.ColourOptions`,
            ``predict``'s defaults); an array has no georeference, so ``pixel_size`` None
            means the model's training pixel size.
        valid: ``(H, W)`` True where the data are valid; None: finite and not ``nodata``.
        nodata: Value marking missing pixels (when ``valid`` is None).
        settings: Options by name, over ``options`` (``tone="matched"``, ``tile_size=512``,
            ``batch_size`` for ``tiles_per_call``, ``reference="-5dB"`` or
            ``reference_from="scene.tif"`` for a scene reference shared with other images,
            ...).

    Returns:
        ``(H, W, 4)`` uint8 RGBA; alpha is 0 exactly at invalid pixels.

    Raises:
        InputError: Bad shapes, no valid pixel, unknown scale or tone.
        ModelMismatchError: The number of bands differs from the model's.
    """
    from sar_colorizer.inference import colorize_array
    from sar_colorizer.io.masks import values_valid

    options = ColourOptions.of(options, **settings)
    array = np.asarray(values)
    if array.ndim == 2:
        array = array[None]
    if array.ndim != 3:
        raise InputError(f"SAR values must be (H, W) or (bands, H, W); got shape {array.shape}")
    mask = values_valid(array, nodata) if valid is None else np.asarray(valid, dtype=bool)
    result = colorize_array(load_model(model), array, mask, options)
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
    :func:`sar_colorizer.inference.colorize_raster` (``bands``, ``band_names``, ``input_scale``, ``tone``,
    ``tile_size``, ``overlap``, ``batch_size``, ``driver``, ``ab_path``, ``quicklook_path``,
    ``overwrite``, ``progress``, ``creation_options``, ``confidence_path``, ``shrink``,
    ``display_filter``, ``colour_upsampling``, ``chroma_limit``, ``pixel_size``,
    ``reference`` (``"-5dB"``, ``0.32``) or ``reference_from`` (a raster), ``product_options``:
    a :class:`sar_colorizer.io.s1product.ProductOptions`).

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
        from sar_colorizer.data.layouts import find_pairs

        pairs = find_pairs(Path(pairs))
    options.setdefault("progress", False)
    return run_evaluation(load_model(model), list(pairs), report_dir=report_dir, **options)


def colorize_dataarray(
    sar: xr.DataArray, model: ModelLike = "default", **options: Any
) -> xr.DataArray:
    """Colorize an xarray ``DataArray`` of SAR; see :func:`sar_colorizer.xarray_api.colorize_dataarray`."""
    from sar_colorizer.xarray_api import colorize_dataarray as run

    return run(sar, model, **options)
