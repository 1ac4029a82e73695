"""The notebook API: numpy and xarray entry points equal ``predict`` on the same scene."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import rasterio

import sar_colorizer as sc
from sar_colorizer.errors import InputError

xr = pytest.importorskip("xarray", reason="needs the xarray extra: pip install '.[xarray]'")
rioxarray = pytest.importorskip("rioxarray", reason="needs the xarray extra")

REPO = Path(__file__).resolve().parents[1]


def _scene_db(height: int, width: int, seed: int = 0) -> np.ndarray:
    """Smooth dB backscatter with speckle and a nodata corner (-9999)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width]
    db = -18 + 6 * np.sin(yy / 40.0) * np.cos(xx / 55.0) + rng.normal(0, 2, (height, width))
    db = db.astype(np.float32)
    db[:30, :50] = -9999.0
    return db


@pytest.fixture(scope="module")
def scene(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, np.ndarray]:
    """A 700 x 610 georeferenced dB scene (several tile rows/columns) and predict's output."""
    from affine import Affine

    folder = tmp_path_factory.mktemp("scene")
    path = folder / "scene_VH.tif"
    db = _scene_db(700, 610)
    profile = dict(
        driver="GTiff", width=610, height=700, count=1, dtype="float32", nodata=-9999.0,
        crs="EPSG:32631", transform=Affine(10, 0, 600000, 0, -10, 4800000),
    )
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(db[None])
    out = folder / "predicted.tif"
    sc.colorize_file(path, out)
    with rasterio.open(out) as src:
        predicted = src.read()
    return path, predicted


def test_public_api_is_lazy_and_complete():
    code = (
        "import sys, sar_colorizer as sc; "
        "assert 'tensorflow' not in sys.modules and 'sar_colorizer.api' not in sys.modules; "
        "names = [n for n in sc.__all__ if n != '__version__']; "
        "assert all(callable(getattr(sc, n)) for n in names), names; "
        "assert 'tensorflow' not in sys.modules; print(','.join(sorted(names)))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, check=True
    )
    assert result.stdout.strip() == "colorize,colorize_dataarray,colorize_file,evaluate,load_model"


def test_dask_chunks_equal_predict_pixel_for_pixel(scene):
    """Chunks that cut through tiles (300 x 200 vs 256-px tiles, 32-px overlap) still give
    predict's exact bytes: every chunk runs the whole scene's tiles that touch it."""
    path, predicted = scene
    sar = rioxarray.open_rasterio(path, chunks={"y": 300, "x": 200})
    colour = sc.colorize_dataarray(sar)
    assert colour.chunks is not None  # lazy until computed
    values = colour.compute(scheduler="threads").values
    assert values.dtype == np.uint8 and values.shape == predicted.shape == (4, 700, 610)
    np.testing.assert_array_equal(values, predicted)
    # Nodata: alpha 0 exactly there.
    assert (values[3] == 0).sum() == 30 * 50 and (values[3, :30, :50] == 0).all()


def test_in_memory_dataarray_and_numpy_equal_predict(scene):
    path, predicted = scene
    sar = rioxarray.open_rasterio(path)
    np.testing.assert_array_equal(sc.colorize_dataarray(sar).values, predicted)
    rgba = sc.colorize(sar.values, nodata=sar.rio.nodata)
    np.testing.assert_array_equal(rgba.transpose(2, 0, 1), predicted)


def test_output_keeps_coordinates_crs_transform_and_writes_a_geotiff(scene, tmp_path):
    path, predicted = scene
    sar = rioxarray.open_rasterio(path, chunks={"y": 512, "x": 512})
    colour = sc.colorize_dataarray(sar)
    assert list(colour.band.values) == ["R", "G", "B", "A"]
    np.testing.assert_array_equal(colour.x.values, sar.x.values)
    np.testing.assert_array_equal(colour.y.values, sar.y.values)
    assert colour.rio.crs == sar.rio.crs
    assert colour.rio.transform() == sar.rio.transform()
    out = tmp_path / "colour.tif"
    colour.rio.to_raster(out)
    with rasterio.open(out) as src, rasterio.open(path) as source:
        assert src.crs == source.crs and src.transform == source.transform
        np.testing.assert_array_equal(src.read(), predicted)


def test_bands_are_picked_by_polarisation_name(scene):
    path, predicted = scene
    vh = rioxarray.open_rasterio(path)
    rng = np.random.default_rng(1)
    vv = vh.copy(data=np.where(vh.values == -9999, -9999, vh.values + rng.normal(0, 3, vh.shape)))
    dual = xr.concat([vv, vh], dim="band").assign_coords(band=[1, 2])
    dual.attrs["long_name"] = ("VV", "VH")
    dual = dual.rio.write_nodata(-9999.0)
    np.testing.assert_array_equal(sc.colorize_dataarray(dual, bands="VH").values, predicted)
    with pytest.raises(InputError, match="'HH' matches 0"):
        sc.colorize_dataarray(dual, bands="HH")


def test_statistics_sample_the_pixels_gdal_decimation_reads(tmp_path):
    """Scenes above STATS_MAX_SIDE: the lazy path's statistics sample = predict's decimated read."""
    from sar_colorizer.io.raster import read_raster
    from sar_colorizer.xarray_api import decimation_indices

    for length, out in ((2500, 2048), (4099, 2048), (3000, 1229)):
        index = np.arange(length, dtype=np.float32)
        path = tmp_path / f"ramp{length}.tif"
        with rasterio.open(
            path, "w", driver="GTiff", width=length, height=2, count=1, dtype="float32"
        ) as dst:
            dst.write(np.stack([index, index])[None])
        values, _ = read_raster(path, out_shape=(2, out))
        np.testing.assert_array_equal(values[0, 0].astype(np.int64), decimation_indices(length, out))


def test_notebook_example_runs(tmp_path):
    result = subprocess.run(
        [sys.executable, str(REPO / "examples" / "notebook_xarray.py"), str(tmp_path)],
        capture_output=True, text=True, cwd=REPO,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert "identical to the in-memory result" in result.stdout
    with rasterio.open(tmp_path / "camargue_colour.tif") as src:
        assert src.count == 4 and src.crs is not None


def test_dask_equals_predict_on_a_scene_wider_than_the_statistics_read(tmp_path):
    """2300 px wide: predict's statistics come from a decimated read (STATS_MAX_SIDE 2048),
    and the lazy path samples the same pixels."""
    from affine import Affine

    from sar_colorizer.inference import STATS_MAX_SIDE

    height, width = 260, 2300
    assert width > STATS_MAX_SIDE
    path = tmp_path / "wide_VH.tif"
    db = _scene_db(height, width, seed=3)
    with rasterio.open(
        path, "w", driver="GTiff", width=width, height=height, count=1, dtype="float32",
        nodata=-9999.0, crs="EPSG:32631", transform=Affine(10, 0, 600000, 0, -10, 4800000),
    ) as dst:
        dst.write(db[None])
    sc.colorize_file(path, tmp_path / "predicted.tif")
    with rasterio.open(tmp_path / "predicted.tif") as src:
        predicted = src.read()
    sar = rioxarray.open_rasterio(path, chunks={"y": 260, "x": 700})
    np.testing.assert_array_equal(sc.colorize_dataarray(sar).compute().values, predicted)


@pytest.mark.slow
def test_dask_chunks_on_a_distributed_cluster_equal_predict(scene, monkeypatch):
    """Chunk tasks on 2 worker processes (one model per worker, loaded from the bundle path)."""
    import os

    distributed = pytest.importorskip("distributed", reason="needs the dask extra")
    from sar_colorizer.cluster import local_cluster

    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]))
    path, predicted = scene
    with local_cluster(2) as cluster, distributed.Client(cluster):
        sar = rioxarray.open_rasterio(path, chunks={"y": 300, "x": 300})
        values = sc.colorize_dataarray(sar).compute().values
    np.testing.assert_array_equal(values, predicted)


def _write_scene(path: Path, db: np.ndarray, pixel: float) -> Path:
    from affine import Affine

    height, width = db.shape
    with rasterio.open(
        path, "w", driver="GTiff", width=width, height=height, count=1, dtype="float32",
        nodata=-9999.0, crs="EPSG:32631",
        transform=Affine(pixel, 0, 600000, 0, -pixel, 4800000),
    ) as dst:
        dst.write(db[None])
    return path


def _predicted(path: Path, out: Path, **options) -> np.ndarray:
    sc.colorize_file(path, out, **options)
    with rasterio.open(out) as src:
        return src.read()


def test_dask_equals_predict_at_20_m_pixels(tmp_path):
    """20 m input: predict resamples 128-px tiles of the input to the network's 256 px of
    10 m; the chunked path runs the same grid (chunks of 150 x 110 cut through its tiles)."""
    from sar_colorizer.inference import tile_settings
    from sar_colorizer.inference.tiles import tiling_plan

    path = _write_scene(tmp_path / "s20_VH.tif", _scene_db(330, 290, seed=5), pixel=20.0)
    predicted = _predicted(path, tmp_path / "predicted.tif")
    bundle = sc.load_model()
    net_tile, grid = tiling_plan(bundle.tile_multiple, 330, 290, *tile_settings(bundle),
                                 factor=2.0)
    assert grid.tile_size * 2 == net_tile and grid.n_rows > 2  # the resampled path runs
    sar = rioxarray.open_rasterio(path, chunks={"y": 150, "x": 110})
    colour = sc.colorize_dataarray(sar).compute(scheduler="threads").values
    np.testing.assert_array_equal(colour, predicted)
    # Without the georeference's pixel size the network sees other tiles: other colours.
    other = sc.colorize_dataarray(sar, pixel_size=10.0).compute(scheduler="threads").values
    assert np.abs(other[:3].astype(int) - predicted[:3]).max() > 10


def test_dask_equals_predict_with_other_display_options(scene, tmp_path):
    """Every predict option reaches the chunks: the bilateral display filter (another halo),
    bilinear colour upsampling, RGB clipping instead of the chroma limit, the matched tone."""
    path, default = scene
    options = dict(
        display_filter="bilateral", colour_upsampling="bilinear", chroma_limit=False,
        tone="matched",
    )
    predicted = _predicted(path, tmp_path / "options.tif", **options)
    assert np.abs(predicted[:3].astype(int) - default[:3]).max() > 10  # the options matter
    sar = rioxarray.open_rasterio(path, chunks={"y": 250, "x": 230})
    colour = sc.colorize_dataarray(sar, **options).compute(scheduler="threads").values
    np.testing.assert_array_equal(colour, predicted)


@pytest.mark.parametrize("shrink", [None, False])
def test_dask_equals_predict_for_a_confidence_head(tmp_path, shrink, head_bundle):
    """A head model's colour is muted at the network's resolution (shrink None: on) or not
    (False) exactly as predict does it, chunk by chunk."""
    bundle = head_bundle
    path = _write_scene(tmp_path / "head_VH.tif", _scene_db(150, 170, seed=7), pixel=10.0)
    options = dict(tile_size=64, overlap=16, shrink=shrink)
    predicted = _predicted(path, tmp_path / "predicted.tif", model=str(bundle), **options)
    sar = rioxarray.open_rasterio(path, chunks={"y": 70, "x": 60})
    colour = sc.colorize_dataarray(sar, str(bundle), **options)
    np.testing.assert_array_equal(colour.compute(scheduler="threads").values, predicted)


def _masked_scene(path: Path, how: str) -> Path:
    """A 150 x 130 scene whose hidden block is masked by an alpha band (uint16 amplitude, as
    Sentinel-1 GRD) or by a GeoTIFF internal mask (float dB), never by a nodata value."""
    from affine import Affine
    from rasterio.enums import ColorInterp

    rng = np.random.default_rng(11)
    yy, xx = np.mgrid[0:150, 0:130]
    db = -16 + 5 * np.sin(yy / 20.0) * np.cos(xx / 27.0) + rng.normal(0, 2, yy.shape)
    shown = np.full((150, 130), 255, np.uint8)
    shown[40:80, 60:100] = 0
    shown[:10, :] = 0
    profile = dict(driver="GTiff", width=130, height=150, crs="EPSG:32631",
                   transform=Affine(10, 0, 600000, 0, -10, 4800000))
    if how == "alpha":
        amplitude = np.clip(10 ** (db / 20) * 4000, 1, 65535).astype(np.uint16)
        alpha = shown.astype(np.uint16) * 257
        with rasterio.open(path, "w", count=2, dtype="uint16", **profile) as dst:
            dst.colorinterp = [ColorInterp.gray, ColorInterp.alpha]  # before the pixels: GDAL
            dst.write(np.stack([amplitude, alpha]))
    else:
        with rasterio.Env(GDAL_TIFF_INTERNAL_MASK=True), rasterio.open(
            path, "w", count=1, dtype="float32", **profile
        ) as dst:
            dst.write(db.astype(np.float32)[None])
            dst.write_mask(shown)
    return path


@pytest.mark.parametrize("how", ["alpha", "internal"])
def test_dataarray_valid_mask_honours_alpha_bands_and_internal_masks(tmp_path, how):
    """The xarray path tells valid pixels as predict does: a file's alpha band (never fed to
    the model) and its internal mask make pixels transparent, in memory and chunk by chunk."""
    from sar_colorizer.io.raster import read_raster

    path = _masked_scene(tmp_path / f"{how}_VH.tif", how)
    _, valid = read_raster(path)
    assert not valid[40:80, 60:100].any() and valid.mean() > 0.7
    options = dict(tile_size=64, overlap=16, input_scale="amplitude" if how == "alpha" else "db")
    predicted = _predicted(path, tmp_path / "predicted.tif", **options)
    np.testing.assert_array_equal(predicted[3] > 0, valid)
    eager = sc.colorize_dataarray(rioxarray.open_rasterio(path), **options).values
    np.testing.assert_array_equal(eager, predicted)
    lazy = sc.colorize_dataarray(rioxarray.open_rasterio(path, chunks={"y": 70, "x": 60}), **options)
    np.testing.assert_array_equal(lazy.compute(scheduler="threads").values, predicted)
