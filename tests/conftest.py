"""Shared fixtures: tiny synthetic georeferenced rasters, pairs folders and model bundles,
made by code with fixed seeds, and the committed Sentinel-1 samples.

No binary fixtures: every test raster is written here from an array the test chooses, with a
real CRS (UTM zone 31N by default, as the Camargue samples) and a real 10 m transform. The
tiny bundles are untrained U-Nets with seeded random weights; their colours mean nothing, but
everything around the network (tiling, georeference, nodata, reports) is the real code.
"""

from __future__ import annotations

import csv
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import rasterio
from affine import Affine
from rasterio.errors import NotGeoreferencedWarning

REPO = Path(__file__).resolve().parents[1]
#: The small, licensed Sentinel-1 / Sentinel-2 samples committed with the project
#: (``data/README.md``): three Camargue VV dB scenes and six BigEarthNet patches.
SAMPLES = REPO / "data" / "samples"

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


@pytest.fixture(scope="session")
def samples_dir() -> Path:
    """``data/samples``: the Sentinel-1/2 samples committed with the project (every checkout has
    them, so tests on them never skip)."""
    assert (SAMPLES / "spatialist-s1-vv-db").is_dir(), f"{SAMPLES} is incomplete"
    return SAMPLES


# ----------------------------------------------------------------------------- pairs folders


@dataclass
class PairsFolder:
    """A folder of SAR/optical pairs written by :func:`write_pairs`.

    Attributes:
        root: The folder (``sar/`` and ``opt/`` inside, and ``pairs.csv`` when splits were given).
        images: ``{name: (sar (H, W) uint8, rgb (H, W, 3) uint8)}`` as written.
    """

    root: Path
    images: dict[str, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)


WritePairs = Callable[..., PairsFolder]


def _pair_arrays(
    rng: np.random.Generator,
    shape: tuple[int, int],
    texture: str,
    colour: tuple[int, int, int] | None,
) -> tuple[np.ndarray, np.ndarray]:
    if texture == "noise":  # SAR and optical independent: statistics, not learning
        return (rng.integers(5, 256, shape, dtype=np.uint8),
                rng.integers(0, 256, (*shape, 3), dtype=np.uint8))
    if texture != "field":
        raise ValueError(f"texture must be 'field' or 'noise', not {texture!r}")
    import cv2

    # A smooth random field decides both images: SAR brightness (with gamma speckle of 4
    # looks) and the optical colour, so that colour is learnable from the SAR.
    smooth = cv2.GaussianBlur(rng.random(shape).astype(np.float32), (0, 0), 4)
    smooth = (smooth - smooth.min()) / max(float(smooth.max() - smooth.min()), 1e-6)
    sar = np.clip(40 + 200 * smooth * rng.gamma(4.0, 0.25, shape), 1, 255).astype(np.uint8)
    if colour is None:  # bright backscatter blue-grey, dark green
        rgb = np.stack([60 + 120 * smooth, 140 - 30 * smooth, 50 + 150 * smooth], axis=-1)
    else:  # one dominant colour per folder, its brightness following the field
        rgb = np.stack([c * (0.6 + 0.4 * smooth) for c in colour], axis=-1)
    return sar, np.clip(rgb, 1, 255).astype(np.uint8)


@pytest.fixture(scope="session")
def write_pairs() -> WritePairs:
    """Factory writing a pairs folder in the ``sar/`` + ``opt/`` layout that ``preprocess`` and
    ``eval`` read.

    ``write(root, n=4, size=64, *, names=None, splits=None, cloud_or_snow=None,
    texture="field", colour=None, seed=0, georeferenced=False) -> PairsFolder``

    ``size`` is a side or ``(height, width)``; ``names`` default to ``000``, ``001``, ...
    ``texture="field"``: the SAR's brightness decides the optical colour (bright blue-grey, dark
    green; or ``colour`` scaled by it); ``"noise"``: independent uniform noise in both.
    ``splits`` (one per image, or ``{name: split}``) also writes a ``pairs.csv`` manifest;
    ``cloud_or_snow`` (cells as written, one per image or ``{name: cell}``) writes it with that
    column (and an empty ``split`` where no splits are given).
    Pairs are 8-bit PNGs without georeference, or 10 m GeoTIFFs in UTM 31N with
    ``georeferenced=True``.
    """

    def write(
        root: str | Path,
        n: int = 4,
        size: int | tuple[int, int] = 64,
        *,
        names: Sequence[str] | None = None,
        splits: Sequence[str] | Mapping[str, str] | None = None,
        cloud_or_snow: Sequence[str | int] | Mapping[str, str | int] | None = None,
        texture: str = "field",
        colour: tuple[int, int, int] | None = None,
        seed: int = 0,
        georeferenced: bool = False,
    ) -> PairsFolder:
        root = Path(root)
        names = list(names) if names is not None else [f"{i:03d}" for i in range(n)]
        shape = (size, size) if isinstance(size, int) else (int(size[0]), int(size[1]))
        rng = np.random.default_rng(seed)
        (root / "sar").mkdir(parents=True)
        (root / "opt").mkdir(parents=True)
        folder = PairsFolder(root)
        suffix = ".tif" if georeferenced else ".png"
        for name in names:
            sar, rgb = _pair_arrays(rng, shape, texture, colour)
            _write_image(root / "sar" / f"{name}{suffix}", sar[np.newaxis], georeferenced)
            _write_image(root / "opt" / f"{name}{suffix}", np.moveaxis(rgb, -1, 0), georeferenced)
            folder.images[name] = (sar, rgb)
        if splits is not None or cloud_or_snow is not None:
            split_of = _by_name(names, splits if splits is not None else [""] * len(names))
            header = ["sar", "optical", "split"]
            flag_of: dict[str, str | int] = {}
            if cloud_or_snow is not None:
                header.append("cloud_or_snow")
                flag_of = _by_name(names, cloud_or_snow)
            with open(root / "pairs.csv", "w", newline="") as handle:
                writer = csv.writer(handle, lineterminator="\n")
                writer.writerow(header)
                for name in names:
                    row = [f"sar/{name}{suffix}", f"opt/{name}{suffix}", split_of[name]]
                    writer.writerow(row + ([flag_of[name]] if flag_of else []))
        return folder

    return write


def _by_name(names: Sequence[str], cells: Sequence[Any] | Mapping[str, Any]) -> dict[str, Any]:
    """One manifest cell per pair name, from a mapping or a sequence in ``names`` order."""
    return dict(cells) if isinstance(cells, Mapping) else dict(zip(names, cells, strict=True))


def _write_image(path: Path, bands: np.ndarray, georeferenced: bool) -> None:
    """``(bands, H, W)`` uint8 as a plain PNG (OpenCV: no GDAL side files) or a GeoTIFF."""
    if not georeferenced:
        import cv2

        image = bands[0] if bands.shape[0] == 1 else np.moveaxis(bands, 0, -1)[..., ::-1]
        if not cv2.imwrite(str(path), np.ascontiguousarray(image)):
            raise OSError(f"could not write {path}")
        return
    options: dict[str, Any] = {
        "driver": "GTiff", "count": bands.shape[0], "height": bands.shape[1],
        "width": bands.shape[2], "dtype": "uint8", "crs": DEFAULT_CRS,
        "transform": DEFAULT_TRANSFORM,
    }
    with rasterio.open(path, "w", **options) as dst:
        dst.write(bands)


# ----------------------------------------------------------------------------- model bundles

#: Metadata of the tiny test bundles: VH, percentile normalisation, 5x5 boxcar, a matched tone
#: over a linear L curve, and baselines for ``eval``.
TINY_METADATA: dict[str, Any] = {
    "bands": ["VH"],
    "normalization": {"method": "percentile", "percentile": 99.0},
    "speckle_filter": {"name": "boxcar", "window": 5, "looks": 1.0},
    "tone": {"method": "matched", "l_quantiles": np.linspace(0.0, 100.0, 101).tolist()},
    "baselines": {
        "mean_colour": [8.0, 12.0],
        "linear_regression": {"a": [-5.0, 30.0], "b": [20.0, -10.0]},
    },
}

MakeBundle = Callable[..., Path]


@pytest.fixture(scope="session")
def make_bundle(tmp_path_factory: pytest.TempPathFactory) -> MakeBundle:
    """Factory saving a tiny untrained model bundle (depth 2, 4 base filters, 2x downsampling,
    seeded weights): ``make(path=None, *, bands=("VH",), confidence_head=False,
    batch_norm_statistics=False, **metadata) -> Path``.

    ``metadata`` keys replace those of :data:`TINY_METADATA` (``bands`` follows ``bands``).
    ``batch_norm_statistics=True`` gives the batch normalisation layers trained-looking moving
    variances (0.5-1.5), so that folding them into the convolutions is exercised. Without
    ``path`` the bundle is saved once per session for each set of arguments and shared: treat
    it as read-only (copy it to damage it).
    """
    saved: dict[str, Path] = {}

    def make(
        path: str | Path | None = None,
        *,
        bands: Sequence[str] = ("VH",),
        confidence_head: bool = False,
        batch_norm_statistics: bool = False,
        **metadata: Any,
    ) -> Path:
        key = repr((tuple(bands), confidence_head, batch_norm_statistics, sorted(metadata.items())))
        if path is None and key in saved:
            return saved[key]
        from sar_colorizer._tf import import_keras
        from sar_colorizer.bundle import save_bundle
        from sar_colorizer.nets.unet import ColorizationUNet

        keras = import_keras()
        keras.utils.set_random_seed(0)
        model = ColorizationUNet(input_channels=len(bands), depth=2, base_filters=4,
                                 downsample=2, confidence_head=confidence_head)
        if batch_norm_statistics:
            rng = np.random.default_rng(0)
            for weight in model.weights:
                if "moving_variance" in weight.path:
                    weight.assign(rng.uniform(0.5, 1.5, weight.shape).astype("float32"))
        target = Path(path) if path is not None else (
            tmp_path_factory.mktemp("bundle") / f"tiny_{len(saved)}"
        )
        bundle = save_bundle(target, model, {**TINY_METADATA, "bands": list(bands), **metadata})
        if path is None:
            saved[key] = bundle
        return bundle

    return make


@pytest.fixture(scope="session")
def tiny_bundle(make_bundle: MakeBundle) -> Path:
    """The tiny VH bundle without a confidence head (shared, read-only)."""
    return make_bundle()


@pytest.fixture(scope="session")
def head_bundle(make_bundle: MakeBundle) -> Path:
    """The tiny VH bundle with a confidence head (shared, read-only)."""
    return make_bundle(confidence_head=True)


def _machine_paths(value: Any, where: str = "bundle.json") -> list[str]:
    """Strings in bundle metadata that name a place on the machine that wrote it: absolute
    paths and paths climbing out of their folder (``../shared/...``)."""
    if isinstance(value, dict):
        return [p for k, v in value.items() for p in _machine_paths(v, f"{where}.{k}")]
    if isinstance(value, list):
        return [p for i, v in enumerate(value) for p in _machine_paths(v, f"{where}[{i}]")]
    if isinstance(value, str) and any(
        part.startswith("/") or part.startswith("..") for part in value.split(",")
    ):
        return [f"{where}: {value}"]
    return []


@pytest.fixture(scope="session")
def machine_paths() -> Callable[[Any], list[str]]:
    """``machine_paths(metadata) -> list``: the entries of bundle metadata that are absolute
    paths or climb out of their folder (a bundle must record none)."""
    return _machine_paths
