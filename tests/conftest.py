"""Shared fixtures: tiny synthetic georeferenced rasters, made by code with fixed seeds.

No binary fixtures: every test raster is written here from an array the test chooses, with a
real CRS (UTM zone 31N by default, as the Camargue samples) and a real 10 m transform.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import rasterio
from affine import Affine
from rasterio.errors import NotGeoreferencedWarning

DEFAULT_CRS = "EPSG:32631"
DEFAULT_TRANSFORM = Affine(10.0, 0.0, 600000.0, 0.0, -10.0, 4800000.0)
"""``from_origin(600000, 4800000, 10, 10)``: upper-left corner at 600 000 m E, 4 800 000 m N,
10 m pixels, north up."""

_DRIVER_BY_SUFFIX = {".tif": "GTiff", ".tiff": "GTiff", ".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG"}

MakeGeotiff = Callable[..., Path]


@pytest.fixture
def rng() -> np.random.Generator:
    """Random generator with a fixed seed."""
    return np.random.default_rng(0)


@pytest.fixture
def make_geotiff(tmp_path: Path) -> MakeGeotiff:
    """Factory writing a small raster with rasterio directly (independent of the code tested).

    ``make(path, array, dtype=None, nodata=None, crs="EPSG:32631",
    transform=from_origin(600000, 4800000, 10, 10), descriptions=None, **profile) -> Path``

    ``path`` is relative to ``tmp_path`` unless absolute; missing folders are made. ``array`` is
    ``(bands, H, W)`` or ``(H, W)``; ``dtype`` defaults to the array's. The driver follows the
    extension (``.tif`` GTiff, ``.png`` PNG, ``.jpg`` JPEG) unless ``driver=`` is given; extra
    keyword arguments go into the profile (``tiled=True, blockxsize=16``, ``photometric="RGB"``).
    ``crs=None`` writes a raster without georeference.
    """

    def make(
        path: str | Path,
        array: np.ndarray,
        dtype: str | np.dtype | None = None,
        nodata: float | None = None,
        crs: str | None = DEFAULT_CRS,
        transform: Affine = DEFAULT_TRANSFORM,
        descriptions: Sequence[str | None] | None = None,
        **profile: Any,
    ) -> Path:
        path = Path(path)
        if not path.is_absolute():
            path = tmp_path / path
        path.parent.mkdir(parents=True, exist_ok=True)
        array = np.asarray(array)
        if array.ndim == 2:
            array = array[np.newaxis]
        dtype = np.dtype(dtype or array.dtype).name
        options: dict[str, Any] = {
            "driver": _DRIVER_BY_SUFFIX.get(path.suffix.lower(), "GTiff"),
            "width": array.shape[2],
            "height": array.shape[1],
            "count": array.shape[0],
            "dtype": dtype,
            "nodata": nodata,
        }
        if crs is not None:
            options.update(crs=crs, transform=transform)
        options.update(profile)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", NotGeoreferencedWarning)
            with rasterio.open(path, "w", **options) as dst:
                dst.write(array.astype(dtype))
                for index, description in enumerate(descriptions or (), start=1):
                    if description is not None:
                        dst.set_band_description(index, description)
        return path

    return make


@pytest.fixture
def shared_data() -> Path:
    """``<repo>/../shared/data`` with the real pairs and samples; skips when absent (a user's
    checkout has none)."""
    path = (Path(__file__).resolve().parents[1] / ".." / "shared" / "data").resolve()
    if not path.is_dir():
        pytest.skip(f"real data folder {path} is absent (it lives beside the project checkout)")
    return path
