"""``sarcolor predict --confidence`` and ``--mute-unsure``: a georeferenced confidence raster,
streamed, and colour that mutes where the model is unsure."""

from pathlib import Path

import numpy as np
import pytest
import rasterio
from click.testing import CliRunner

from sar_colorizer.bundle import load_bundle
from sar_colorizer.cli import cli
from sar_colorizer.inference import colorize_array
from sar_colorizer.io.raster import read_raster

FAST = ["--tile-size", "64", "--overlap", "16"]


@pytest.fixture
def scene(make_geotiff) -> Path:
    """150 x 170 float32 dB (three strips of 64-px tiles) with NaN nodata in a corner and on
    the right edge."""
    rng = np.random.default_rng(0)
    linear = 0.04 * rng.gamma(4.0, 0.25, size=(150, 170))
    linear[40:90, 50:120] *= 10
    db = (10 * np.log10(linear)).astype(np.float32)
    db[:30, :25] = np.nan
    db[:, -7:] = np.nan
    return make_geotiff("scene_VH.tif", db, nodata=float("nan"))


def _invoke(*args):
    return CliRunner().invoke(cli, ["-q", "predict", *map(str, args)])


def test_confidence_raster_is_georeferenced_streamed_and_nodata_aware(head_bundle, scene, tmp_path):
    out, confidence = tmp_path / "colour.tif", tmp_path / "confidence.tif"
    result = _invoke("--model", head_bundle, scene, out, "--confidence", confidence, *FAST)
    assert result.exit_code == 0, result.output
    with rasterio.open(scene) as src, rasterio.open(confidence) as conf:
        assert conf.crs == src.crs and conf.transform == src.transform
        assert (conf.width, conf.height, conf.count) == (src.width, src.height, 1)
        assert conf.dtypes[0] == "float32" and np.isnan(conf.nodata)
        assert conf.descriptions[0] == "ab_sigma_cielab"
        sigma = conf.read(1)
        nodata = np.isnan(src.read(1))
    np.testing.assert_array_equal(np.isnan(sigma), nodata)
    assert (sigma[~nodata] > 0).all() and sigma[~nodata].std() > 0
    # The streamed raster is what the in-memory path computes for the same image.
    values, valid = read_raster(scene)
    expected = colorize_array(load_bundle(head_bundle), values, valid, tile_size=64, overlap=16)
    np.testing.assert_allclose(sigma[valid], expected["sigma"][valid], rtol=1e-4, atol=1e-4)
    assert not list(tmp_path.glob("*.partial*")) and not list(tmp_path.glob(".*"))


def test_confidence_needs_a_model_with_a_head(tiny_bundle, scene, tmp_path):
    out, confidence = tmp_path / "colour.tif", tmp_path / "confidence.tif"
    result = _invoke("--model", tiny_bundle, scene, out, "--confidence", confidence, *FAST)
    assert result.exit_code != 0
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and "no confidence head" in lines[0], result.output
    assert not out.exists() and not confidence.exists()
    result = _invoke("--model", tiny_bundle, scene, out, "--mute-unsure", *FAST)
    assert result.exit_code != 0 and "no confidence head" in result.output
    assert not out.exists()


def test_mute_unsure_is_on_by_default_and_can_be_turned_off(head_bundle, scene, tmp_path):
    runs = {}
    for name, flags in {"default": [], "on": ["--mute-unsure"], "off": ["--no-mute-unsure"]}.items():
        out = tmp_path / f"{name}.tif"
        ab = tmp_path / f"{name}_ab.tif"
        result = _invoke("--model", head_bundle, scene, out, "--ab-output", ab, *flags, *FAST)
        assert result.exit_code == 0, result.output
        with rasterio.open(ab) as src:
            runs[name] = src.read()
    np.testing.assert_array_equal(runs["default"], runs["on"])
    valid = ~np.isnan(runs["off"][0])
    chroma_on = np.hypot(*runs["on"][:, valid])
    chroma_off = np.hypot(*runs["off"][:, valid])
    assert (chroma_on <= chroma_off + 1e-3).all() and chroma_on.mean() < chroma_off.mean()


def test_batch_mode_writes_one_confidence_raster_per_input(head_bundle, scene, tmp_path):
    result = _invoke("--model", head_bundle, scene, "--output-dir", tmp_path / "out",
                     "--confidence", tmp_path / "conf", *FAST)
    assert result.exit_code == 0, result.output
    assert (tmp_path / "conf" / "scene_VH_confidence.tif").is_file()


def test_dask_chunks_of_a_head_model_equal_predict(head_bundle, scene, tmp_path):
    """The xarray/dask path mutes colour as predict does (chunks cutting through tiles)."""
    rioxarray = pytest.importorskip("rioxarray")
    pytest.importorskip("dask")
    import sar_colorizer as sc

    out = tmp_path / "colour.tif"
    result = _invoke("--model", head_bundle, scene, out, "--format", "gtiff")
    assert result.exit_code == 0, result.output
    with rasterio.open(out) as src:
        predicted = src.read()
    sar = rioxarray.open_rasterio(scene, chunks={"y": 100, "x": 90})
    colour = sc.colorize_dataarray(sar, model=str(head_bundle)).compute(scheduler="threads")
    np.testing.assert_array_equal(colour.values, predicted)
