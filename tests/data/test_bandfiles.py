"""Images as analysts hold them: one file per band (BigEarthNet, a Sentinel-2 granule's
IMG_DATA), multi-band reflectance GeoTIFFs, dual-polarisation SAR."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import rasterio
from click.testing import CliRunner

from sar_colorizer.data.bandfiles import band_files, band_token, read_stack, stack_info
from sar_colorizer.data.layouts import find_pairs
from sar_colorizer.data.pairs import Pair, read_pair
from sar_colorizer.errors import InputError

SAMPLES = Path(__file__).resolve().parents[2] / "data" / "samples" / "bigearthnet-s1-s2"


def _reflectance(rng: np.random.Generator, shape=(3, 24, 24)) -> np.ndarray:
    return rng.integers(200, 3000, shape).astype(np.uint16)


def test_band_tokens() -> None:
    assert band_token(Path("x_87_48_B04.tif"), "optical") == ("x_87_48", "B04")
    assert band_token(Path("T31TCJ_20200101T105441_B02_10m.jp2"), "optical") == (
        "T31TCJ_20200101T105441", "B02")
    assert band_token(Path("x_87_48_VH.tif"), "sar") == ("x_87_48", "VH")
    assert band_token(Path("x_87_48_VH.tif"), "optical") is None
    assert band_token(Path("003.png"), "optical") is None


def test_bigearthnet_samples_pair_by_patch_suffix() -> None:
    pairs = find_pairs(SAMPLES)
    assert len(pairs) == 6
    for pair in pairs:
        assert pair.sar.is_dir() and pair.optical.is_dir()
        # S1 and S2 folder names of one place end in the same _<row>_<col>
        assert pair.sar.name.split("_")[-2:] == pair.optical.name.split("_")[-2:]
    arrays = read_pair(pairs[0], bands="VH", optical_convention="dos")
    assert arrays.sar.shape == (1, 120, 120) and arrays.band_names == ("VH",)
    assert arrays.input_scale == "db"
    with rasterio.open(next(pairs[0].sar.glob("*_VH.tif"))) as src:
        np.testing.assert_array_equal(arrays.sar[0], src.read(1))
    both = read_pair(pairs[0])
    assert both.band_names == ("VV", "VH")
    # the optical image is red, green, blue = B04, B03, B02
    values, _ = read_stack(pairs[0].optical, "optical")
    for index, band in enumerate(("B04", "B03", "B02")):
        with rasterio.open(next(pairs[0].optical.glob(f"*_{band}.tif"))) as src:
            np.testing.assert_array_equal(values[index], src.read(1))


def test_manifest_pointing_at_band_files(tmp_path, make_geotiff, rng) -> None:
    """A manifest naming the B04 and the VH file: their partner bands are found beside them."""
    optical = _reflectance(rng)
    for index, band in enumerate(("B04", "B03", "B02")):
        make_geotiff(f"granule/IMG_DATA/T31TCJ_20200101T105441_{band}_10m.tif", optical[index])
    sar = rng.gamma(1.0, 0.05, (2, 24, 24)).astype(np.float32)
    make_geotiff("s1/scene_VV.tif", sar[0])
    make_geotiff("s1/scene_VH.tif", sar[1])
    (tmp_path / "m.csv").write_text(
        "sar,optical,split\ns1/scene_VH.tif,granule/IMG_DATA/T31TCJ_20200101T105441_B04_10m.tif,train\n"
    )
    pair = find_pairs(tmp_path / "m.csv")[0]
    arrays = read_pair(pair, bands="VH", optical_convention="as-is")
    np.testing.assert_array_equal(arrays.sar[0], sar[1])
    both = read_pair(pair, bands="VV,VH")
    np.testing.assert_array_equal(both.sar, sar)
    assert both.band_names == ("VV", "VH")
    # the granule folder itself is an optical image too
    folder = read_pair(Pair("g", pair.sar, tmp_path / "granule" / "IMG_DATA"))
    np.testing.assert_array_equal(folder.optical_rgb, read_pair(pair).optical_rgb)


def test_multiband_reflectance_in_another_band_order(tmp_path, make_geotiff, rng) -> None:
    optical = _reflectance(rng)
    rgb_file = make_geotiff("rgb.tif", optical, descriptions=["B04", "B03", "B02"])
    bgr_file = make_geotiff("bgr.tif", optical[::-1], descriptions=["B02", "B03", "B04"])
    sar = make_geotiff("sar.tif", rng.gamma(1.0, 0.05, (24, 24)).astype(np.float32))
    rgb = read_pair(Pair("a", sar, rgb_file)).optical_rgb
    np.testing.assert_array_equal(read_pair(Pair("b", sar, bgr_file)).optical_rgb, rgb)


def test_incomplete_or_mixed_band_sets_are_refused(tmp_path, make_geotiff, rng) -> None:
    optical = _reflectance(rng)
    make_geotiff("a/p_B04.tif", optical[0])
    make_geotiff("a/p_B03.tif", optical[1])
    with pytest.raises(InputError, match="B02 missing"):
        band_files(tmp_path / "a" / "p_B04.tif", "optical")
    make_geotiff("a/p_B02.tif", optical[2, :20])
    with pytest.raises(InputError, match="another grid"):
        stack_info(tmp_path / "a", "optical")
    make_geotiff("b/p_B04.tif", optical[0])
    make_geotiff("b/q_B04.tif", optical[0])
    with pytest.raises(InputError, match="2 images"):
        band_files(tmp_path / "b", "optical")
    assert band_files(make_geotiff("c/plain.tif", optical), "optical") is None


def test_eval_runs_on_the_bigearthnet_samples_as_they_are(tmp_path) -> None:
    """``sarcolor eval default data/samples/bigearthnet-s1-s2 --report DIR``: the VH model takes
    the VH files; the reference is in the model's own optical convention."""
    from sar_colorizer.bundle import read_metadata
    from sar_colorizer.cli import cli

    result = CliRunner().invoke(
        cli, ["-q", "eval", "default", str(SAMPLES), "--report", str(tmp_path / "r")]
    )
    assert result.exit_code == 0, result.output
    report = json.loads((tmp_path / "r" / "report.json").read_text())
    assert report["n_images"] == 6
    expected = read_metadata("default").get("optical_convention", "as-is")
    assert report["settings"]["optical_convention"] == expected


def test_preprocess_and_train_on_the_samples_with_default_flags(tmp_path) -> None:
    from sar_colorizer.cli import cli

    runner = CliRunner()
    result = runner.invoke(cli, ["-q", "preprocess", str(SAMPLES), str(tmp_path / "chips")])
    assert result.exit_code == 0, result.output
    stats = json.loads((tmp_path / "chips" / "stats.json").read_text())
    assert stats["bands"] == ["VV", "VH"] and stats["chip_size"] == 128
    assert sum(stats["n_images"].values()) == 6
    # the chips' pairs.csv names the image folders; eval --split val reads it back
    val = [p for p in find_pairs(tmp_path / "chips") if p.split == "val"]
    assert len(val) == stats["n_images"]["val"] and val[0].sar.is_dir()
    result = runner.invoke(cli, ["-q", "train", str(tmp_path / "chips"), str(tmp_path / "m"),
                                 "--epochs", "1", "--steps-per-epoch", "1"])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "m" / "model.keras").is_file()


def test_level2a_offset_from_metadata_or_option(tmp_path, make_geotiff, rng) -> None:
    """Baseline-04.00 reflectance (x 10000 + 1000): the offset comes from BOA_ADD_OFFSET in
    the file's metadata or from the option; in as-is it changes the rendering."""
    optical = _reflectance(rng)
    sar = make_geotiff("sar.tif", rng.gamma(1.0, 0.05, (24, 24)).astype(np.float32))
    plain = make_geotiff("plain.tif", optical)
    shifted = make_geotiff("shifted.tif", optical + 1000)
    tagged = make_geotiff("tagged.tif", optical + 1000)
    with rasterio.open(tagged, "r+") as dst:
        dst.update_tags(BOA_ADD_OFFSET="-1000")
    expected = read_pair(Pair("p", sar, plain), optical_convention="as-is").optical_rgb
    from_tag = read_pair(Pair("t", sar, tagged), optical_convention="as-is").optical_rgb
    given = read_pair(Pair("s", sar, shifted), optical_convention="as-is", optical_offset=-1000)
    ignored = read_pair(Pair("s", sar, shifted), optical_convention="as-is").optical_rgb
    np.testing.assert_allclose(from_tag, expected, atol=1e-6)
    np.testing.assert_allclose(given.optical_rgb, expected, atol=1e-6)
    assert np.abs(ignored - expected).max() > 0.02
