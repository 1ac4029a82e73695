"""``sarcolor predict`` through click's CliRunner: outputs reopened and checked, error cases."""

from pathlib import Path

import numpy as np
import pytest
import rasterio
from click.testing import CliRunner

from sar_colorizer.cli import cli

FAST = ["--tile-size", "64", "--overlap", "16"]


def _db(shape, seed=0):
    rng = np.random.default_rng(seed)
    linear = 0.05 * rng.gamma(4.0, 0.25, size=shape)
    linear[: shape[0] // 2, : shape[1] // 2] *= 8  # a bright quadrant
    return (10 * np.log10(linear)).astype(np.float32)


@pytest.fixture
def sar_db(make_geotiff) -> Path:
    """float32 dB with NaN nodata (left columns and a corner)."""
    db = _db((70, 90))
    db[:, :4] = np.nan
    db[-10:, -12:] = np.nan
    return make_geotiff("in/scene_VH.tif", db, nodata=float("nan"))


def _invoke(*args):
    return CliRunner().invoke(cli, ["-q", "predict", *map(str, args)])


def _reopen(path):
    with rasterio.open(path) as src:
        return src.read(), src.profile, src.tags(ns="IMAGE_STRUCTURE")


def _source(path):
    with rasterio.open(path) as src:
        values = src.read()
        return values, src.crs, src.transform, src.nodata


def _one_error_line(result) -> str:
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1, result.output
    return lines[0]


def test_png_output_keeps_georeference_and_marks_nodata(tiny_bundle, sar_db, tmp_path):
    out = tmp_path / "colour.png"
    result = _invoke("--model", tiny_bundle, sar_db, out, *FAST)
    assert result.exit_code == 0, result.output
    data, profile, _ = _reopen(out)
    values, crs, transform, _ = _source(sar_db)
    assert profile["driver"] == "PNG" and data.dtype == np.uint8 and data.shape == (4, 70, 90)
    assert profile["crs"] == crs and profile["transform"] == transform
    nodata = np.isnan(values[0])
    np.testing.assert_array_equal(data[3] == 0, nodata)
    assert np.all(data[:3, nodata] == 0) and data[:3, ~nodata].std() > 0
    assert (tmp_path / "colour.png.aux.xml").exists()


@pytest.mark.parametrize(
    ("dtype", "nodata", "options", "driver"),
    [
        ("uint8", 0, ["--format", "gtiff"], "GTiff"),
        ("uint16", 0, ["--cog"], "GTiff"),
        ("float32", None, ["--co", "COMPRESS=LZW", "--tone", "sar"], "GTiff"),
    ],
)
def test_geotiff_outputs_from_several_input_types(
    tiny_bundle, make_geotiff, tmp_path, dtype, nodata, options, driver
):
    rng = np.random.default_rng(1)
    if dtype == "float32":
        values = (0.05 * rng.gamma(4.0, 0.25, (1, 50, 60))).astype(np.float32)  # linear power
    else:
        top = 255 if dtype == "uint8" else 4000
        values = rng.integers(1, top, (1, 50, 60)).astype(dtype)
        values[0, :, -5:] = 0
    source = make_geotiff(f"in_{dtype}.tif", values, nodata=nodata)
    out = tmp_path / "out.tif"
    result = _invoke("--model", tiny_bundle, source, out, *FAST, *options)
    assert result.exit_code == 0, result.output
    data, profile, structure = _reopen(out)
    _, crs, transform, _ = _source(source)
    assert profile["driver"] == driver and data.shape == (4, 50, 60) and data.dtype == np.uint8
    assert profile["crs"] == crs and profile["transform"] == transform
    expected_nodata = values[0] == 0 if nodata == 0 else np.zeros((50, 60), bool)
    np.testing.assert_array_equal(data[3] == 0, expected_nodata)
    if "--cog" in options:
        assert structure.get("LAYOUT") == "COG"
    if "COMPRESS=LZW" in options:
        assert profile["compress"] == "lzw"


def test_jpeg_output_with_ab_and_quicklook(tiny_bundle, sar_db, tmp_path):
    out, ab, quicklook = tmp_path / "c.jpg", tmp_path / "ab.tif", tmp_path / "ql.png"
    result = _invoke(
        "--model", tiny_bundle, sar_db, out, *FAST, "--ab-output", ab, "--quicklook", quicklook
    )
    assert result.exit_code == 0, result.output
    data, profile, _ = _reopen(out)
    assert profile["driver"] == "JPEG" and data.shape == (3, 70, 90)
    ab_data, ab_profile, _ = _reopen(ab)
    assert ab_profile["dtype"] == "float32" and ab_data.shape == (2, 70, 90)
    assert ab_profile["crs"] == profile["crs"]
    with rasterio.open(ab) as src:  # GIS tools show these as the band names
        assert src.descriptions == ("a_cielab", "b_cielab")
    assert quicklook.exists() and quicklook.stat().st_size > 0


def test_an_input_without_georeference_gets_no_world_file(tiny_bundle, make_geotiff, tmp_path):
    """A world file would place the image at 0, 0 with 1-unit pixels: none is written."""
    scene = make_geotiff("in/plain_VH.tif", _db((70, 90)), crs=None)
    out = tmp_path / "out"
    for name in ("c.png", "c.jpg"):
        result = _invoke("--model", tiny_bundle, scene, out / name, *FAST, "--pixel-size", "10")
        assert result.exit_code == 0, result.output
    names = sorted(p.name for p in out.iterdir())
    assert not [n for n in names if n.endswith((".pgw", ".jgw", ".wld"))], names
    with rasterio.open(out / "c.png") as src:
        assert src.crs is None


def test_missing_input_is_one_line(tiny_bundle, tmp_path):
    result = _invoke("--model", tiny_bundle, tmp_path / "nope.tif", tmp_path / "out.png")
    assert result.exit_code != 0
    assert "nope.tif: no such file" in _one_error_line(result)
    assert not (tmp_path / "out.png").exists()


def test_a_format_that_contradicts_the_output_name_is_refused_before_any_work(
    tiny_bundle, sar_db, tmp_path
):
    """``--cog`` (or ``--format gtiff``) with a ``.png`` name wrote a GeoTIFF called c.png,
    which viewers open as a PNG and fail on."""
    out = tmp_path / "out"
    for options in (["--cog"], ["--format", "gtiff"], ["--format", "jpeg"]):
        result = _invoke("--model", tiny_bundle, sar_db, out / "c.png", *FAST, *options)
        assert result.exit_code == 3, (options, result.output)  # InputError
        line = _one_error_line(result)
        assert "cannot be named .png" in line and "name it ." in line, line
    assert not out.exists() or list(out.iterdir()) == []
    result = _invoke("--model", tiny_bundle, sar_db, out / "c.tif", *FAST, "--cog")
    assert result.exit_code == 0, result.output
    assert _reopen(out / "c.tif")[2].get("LAYOUT") == "COG"


def test_batch_of_patterns_that_match_nothing_is_one_line(tiny_bundle, tmp_path):
    out = tmp_path / "out"
    result = _invoke("--model", tiny_bundle, str(tmp_path / "none*.tif"), "--output-dir", out)
    assert result.exit_code == 3, result.output  # InputError, as for one missing input
    line = _one_error_line(result)
    assert "none*.tif: no file matches (nothing was done); check the path" in line, line
    assert not out.exists()


def test_not_a_raster_is_one_line(tiny_bundle, tmp_path):
    bogus = tmp_path / "notes.tif"
    bogus.write_text("not an image")
    result = _invoke("--model", tiny_bundle, bogus, tmp_path / "out.png")
    assert result.exit_code != 0
    assert "not a raster" in _one_error_line(result)


def test_existing_output_is_kept_without_overwrite(tiny_bundle, sar_db, tmp_path):
    out = tmp_path / "out.png"
    out.write_bytes(b"precious")
    result = _invoke("--model", tiny_bundle, sar_db, out, *FAST)
    assert result.exit_code != 0
    assert "exists; pass --overwrite" in _one_error_line(result)
    assert out.read_bytes() == b"precious"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in", "out.png"]  # nothing partial
    result = _invoke("--model", tiny_bundle, sar_db, out, *FAST, "--overwrite")
    assert result.exit_code == 0, result.output
    assert _reopen(out)[0].shape == (4, 70, 90)


def test_band_mismatch_names_what_the_model_expects(tiny_bundle, make_geotiff, tmp_path):
    dual = make_geotiff(
        "dual.tif", np.stack([_db((40, 40), 1), _db((40, 40), 2)]), descriptions=["VV", "VH"]
    )
    result = _invoke("--model", tiny_bundle, dual, tmp_path / "out.png", *FAST)
    assert result.exit_code != 0
    assert "model expects 1 band (VH)" in _one_error_line(result)
    assert "--bands VH" in result.output
    result = _invoke("--model", tiny_bundle, dual, tmp_path / "out.png", *FAST, "--bands", "VH")
    assert result.exit_code == 0, result.output


def test_usage_errors(tiny_bundle, sar_db, tmp_path):
    result = _invoke("--model", tiny_bundle, sar_db)
    assert result.exit_code == 2 and "--output-dir" in result.output
    result = _invoke("--model", tiny_bundle, sar_db, sar_db, tmp_path / "x.png")
    assert result.exit_code == 2
    result = _invoke("--model", tiny_bundle, sar_db, tmp_path / "x.tif", "--cog", "--format", "png")
    assert result.exit_code == 2


def test_batch_mode_keeps_going_and_summarises(tiny_bundle, make_geotiff, tmp_path):
    for index in range(3):
        make_geotiff(f"batch/s{index}_VH.tif", _db((40, 50), index))
    (tmp_path / "batch" / "broken.tif").write_text("garbage")
    out_dir = tmp_path / "colour"
    pattern = str(tmp_path / "batch" / "*.tif")  # quoted glob, expanded by the command
    result = _invoke("--model", tiny_bundle, pattern, "--output-dir", out_dir, *FAST)
    assert result.exit_code == 1
    assert result.output.strip().splitlines()[-1] == "3 done, 0 skipped, 1 failed"
    assert "broken.tif" in result.output
    assert sorted(p.name for p in out_dir.glob("*.png")) == ["s0_VH.png", "s1_VH.png", "s2_VH.png"]
    # Again with --skip-existing and a GeoTIFF suffix for a new file.
    (out_dir / "s1_VH.png").unlink()
    result = _invoke(
        "--model", tiny_bundle, pattern, "--output-dir", out_dir, *FAST, "--skip-existing"
    )
    assert result.output.strip().splitlines()[-1] == "1 done, 2 skipped, 1 failed"
    result = _invoke(
        "--model",
        tiny_bundle,
        tmp_path / "batch" / "s0_VH.tif",
        "--output-dir",
        out_dir,
        "--suffix",
        "_colour.tif",
        *FAST,
    )
    assert result.exit_code == 0, result.output
    assert _reopen(out_dir / "s0_VH_colour.tif")[1]["driver"] == "GTiff"


def test_batch_mode_reports_patterns_that_match_nothing(tiny_bundle, make_geotiff, tmp_path):
    good = make_geotiff("a_VH.tif", _db((30, 30)))
    result = _invoke(
        "--model",
        tiny_bundle,
        good,
        str(tmp_path / "missing*.tif"),
        "--output-dir",
        tmp_path / "out",
        *FAST,
    )
    assert result.exit_code == 1
    assert result.output.strip().splitlines()[-1] == "1 done, 0 skipped, 1 failed"


def test_predict_reads_a_gdal_virtual_path(tiny_bundle, sar_db, tmp_path):
    """A /vsizip/ path to an absolute zip file has a '//' that must survive (as in
    /vsicurl/https://): the colours equal those of the unzipped file, single and batch mode."""
    import zipfile

    archive = tmp_path / "scenes.zip"
    with zipfile.ZipFile(archive, "w") as bundle:
        bundle.write(sar_db, "scene_VH.tif")
    virtual = f"/vsizip/{archive}/scene_VH.tif"
    assert virtual.startswith("/vsizip//")
    local = _invoke("--model", tiny_bundle, sar_db, tmp_path / "local.tif", *FAST)
    assert local.exit_code == 0, local.output
    result = _invoke("--model", tiny_bundle, virtual, tmp_path / "zipped.tif", *FAST)
    assert result.exit_code == 0, result.output
    np.testing.assert_array_equal(_reopen(tmp_path / "zipped.tif")[0],
                                  _reopen(tmp_path / "local.tif")[0])
    batch = _invoke("--model", tiny_bundle, virtual, "--output-dir", tmp_path / "out",
                    "--format", "gtiff", *FAST)
    assert batch.exit_code == 0, batch.output
    np.testing.assert_array_equal(_reopen(tmp_path / "out" / "scene_VH.tif")[0],
                                  _reopen(tmp_path / "local.tif")[0])


def test_tiles_per_call_and_its_deprecated_spelling(tiny_bundle, sar_db, tmp_path):
    """--tiles-per-call sets the tiles per model call; the old --batch-size of predict still
    works, hidden, with a one-line warning, and means the same."""
    new = _invoke("--model", tiny_bundle, sar_db, tmp_path / "new.tif", *FAST,
                  "--tiles-per-call", "2")
    assert new.exit_code == 0, new.output
    assert "deprecated" not in new.output
    old = CliRunner().invoke(cli, ["-q", "predict", "--model", str(tiny_bundle), str(sar_db),
                                   str(tmp_path / "old.tif"), *FAST, "--batch-size", "2"])
    assert old.exit_code == 0, old.output
    warnings = [line for line in old.stderr.splitlines() if "deprecated" in line]
    assert warnings == ["Warning: --batch-size is deprecated in predict; use --tiles-per-call "
                        "(the same number)."]
    np.testing.assert_array_equal(_reopen(tmp_path / "old.tif")[0], _reopen(tmp_path / "new.tif")[0])
    both = _invoke("--model", tiny_bundle, sar_db, tmp_path / "both.tif", "--tiles-per-call", "2",
                   "--batch-size", "3")
    assert both.exit_code == 2 and "--tiles-per-call" in both.output
    shown = CliRunner().invoke(cli, ["predict", "--help"])
    assert "--tiles-per-call" in shown.output and "--batch-size" not in shown.output
