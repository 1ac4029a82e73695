"""``sarcolor preprocess`` end to end: outputs, stats.json, refusals that leave nothing behind."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
from click.testing import CliRunner
from rasterio.transform import from_origin
from skimage.color import rgb2lab

from sar_colorizer.cli import cli
from sar_colorizer.color.constants import AB_HISTOGRAM_EDGES
from sar_colorizer.data.preprocess import preprocess
from sar_colorizer.data.stats import histogram_quantiles
from sar_colorizer.data.tfrecord import decode_example, list_shards
from sar_colorizer.errors import InputError
from sar_colorizer.sar.radiometry import relative_to_feature
from sar_colorizer.sar.speckle import SpeckleFilter, apply_speckle_filter

REAL_DATA = Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "s1s2-la-texas"

STATS_KEYS = {
    "format_version",
    "package_version",
    "n_chips",
    "n_images",
    "n_dropped",
    "chip_size",
    "stride",
    "bands",
    "input_scale",
    "normalization",
    "normalization_reference",
    "speckle_filter",
    "ab_histogram",
    "l_quantiles",
    "sar_feature_quantiles",
    "linear_regression",
    "mean_colour",
    "n_train_pixels",
    "baseline_feature",
    "sar_value_range",
    "shards",
    "sources",
    "excluded",
    "excluded_flagged",
    "optical_convention",
    "baseline_sums",
    "settings",
}


def _read_chips(shards: list[Path]) -> list[dict]:
    """Every chip of the shards, decoded with the numpy decoder, in file order."""
    import tensorflow as tf

    records = tf.data.TFRecordDataset([str(shard) for shard in shards])
    return [decode_example(record) for record in records.as_numpy_iterator()]


def _assert_quantiles(quantiles, values, bin_width) -> None:
    """Histogram quantile k/100 lies between the order statistics around rank k/100 * N."""
    ordered = np.sort(np.asarray(values, dtype=np.float64))
    n = ordered.size
    ranks = np.linspace(0, 1, 101) * n
    low = ordered[np.clip(np.floor(ranks).astype(int) - 1, 0, n - 1)] - bin_width
    high = ordered[np.clip(np.ceil(ranks).astype(int), 0, n - 1)] + bin_width
    assert np.all(quantiles >= low) and np.all(quantiles <= high)
    assert np.all(np.diff(quantiles) >= 0)


def _run(*args: str):
    return CliRunner().invoke(cli, ["-q", "preprocess", *args], catch_exceptions=False)


def _leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


def test_cli_writes_shards_and_stats(tmp_path, write_pairs) -> None:
    write_pairs(tmp_path / "in", 4, texture="noise", splits=["train", "train", "train", "test"])
    out = tmp_path / "chips"
    result = _run(
        str(tmp_path / "in"),
        str(out),
        "--chip-size",
        "32",
        "--band-names",
        "VH",
        "--val-fraction",
        "0.34",
        "--chips-per-shard",
        "4",
    )
    assert result.exit_code == 0, result.output
    stats = json.loads((out / "stats.json").read_text())
    assert set(stats) == STATS_KEYS
    # 4 pairs: 003 is test (excluded), 1 of the 3 train rows becomes val; 4 chips per 64 px image
    assert stats["excluded"] == ["003"]
    assert stats["n_images"] == {"train": 2, "val": 1}
    assert stats["n_chips"] == {"train": 8, "val": 4}
    assert stats["bands"] == ["VH"] and stats["input_scale"] == "display"
    assert stats["chip_size"] == 32 and stats["stride"] == 32
    train_shards = list_shards(out, "train")
    assert [p.name for p in train_shards] == [
        "train-00000-of-00002.tfrecord",
        "train-00001-of-00002.tfrecord",
    ]
    assert stats["shards"]["train"] == [p.name for p in train_shards]
    assert len(list_shards(out, "val")) == 1
    assert _leftovers(tmp_path) == []
    # split by source image: no source on both sides
    train_sources = {c["source"] for c in _read_chips(train_shards)}
    val_sources = {c["source"] for c in _read_chips(list_shards(out, "val"))}
    assert len(train_sources) == 2 and len(val_sources) == 1 and not train_sources & val_sources
    assert {s for s, v in stats["sources"].items() if v["split"] == "val"} == val_sources
    # pairs.csv lists the source images with their split: eval can score whole val images
    from sar_colorizer.data.layouts import find_pairs

    listed = find_pairs(out)
    assert {p.name: p.split for p in listed} == {n: v["split"] for n, v in stats["sources"].items()}
    assert all(Path(p.sar).is_absolute() and Path(p.sar).is_file() for p in listed)
    assert {p.name for p in listed if p.split == "val"} == val_sources


def test_chips_hold_normalised_unfiltered_sar_and_rgb(tmp_path, write_pairs) -> None:
    images = write_pairs(tmp_path / "in", 2, texture="noise").images
    out = tmp_path / "chips"
    stats = preprocess(
        tmp_path / "in", out, chip_size=32, val_fraction=0.0, progress=False,
        optical_convention="as-is",
    )
    sar, rgb = images["001"]
    reference = np.percentile(sar.astype(np.float32), 99)
    assert stats["sources"]["001"]["reference"] == [pytest.approx(reference)]
    chips = [c for c in _read_chips(list_shards(out, "train")) if c["source"] == "001"]
    assert len(chips) == 4
    relative = np.clip(sar / reference, 0, 1)
    # which chip is which: match on RGB, then the SAR must be the per-image normalised window
    for chip in chips:
        row, col = next(
            (r, c)
            for r in (0, 32)
            for c in (0, 32)
            if np.array_equal(rgb[r : r + 32, c : c + 32], chip["rgb"])
        )
        np.testing.assert_allclose(
            chip["sar"][..., 0], relative[row : row + 32, col : col + 32], rtol=2**-10
        )
        assert chip["valid"].all()


def test_stats_match_direct_computation(tmp_path, write_pairs) -> None:
    images = write_pairs(tmp_path / "in", 2, 32, texture="noise").images
    stats = preprocess(
        tmp_path / "in", tmp_path / "chips", chip_size=32, val_fraction=0.0, progress=False,
        optical_convention="as-is",
    )
    lab, feature = [], []
    for sar, rgb in images.values():
        lab.append(rgb2lab(rgb).reshape(-1, 3))
        relative = np.clip(sar / np.percentile(sar.astype(np.float32), 99), 0, 1).astype(np.float32)
        filtered = apply_speckle_filter(relative, SpeckleFilter("boxcar", 5))
        feature.append(relative_to_feature(filtered).ravel())
    lab, feature = np.concatenate(lab), np.concatenate(feature)
    assert stats["n_train_pixels"] == lab.shape[0]
    np.testing.assert_allclose(stats["mean_colour"], lab[:, 1:].mean(0), atol=1e-3)
    design = np.stack([np.ones_like(feature), feature], axis=1).astype(np.float64)
    for channel, key in ((1, "a"), (2, "b")):
        weights = np.linalg.lstsq(design, lab[:, channel], rcond=None)[0]
        np.testing.assert_allclose(stats["linear_regression"][key], weights, rtol=1e-3, atol=1e-3)
    _assert_quantiles(stats["l_quantiles"], lab[:, 0], 100 / 20000)
    _assert_quantiles(stats["sar_feature_quantiles"], feature, 1 / 20000)
    histogram = stats["ab_histogram"]
    assert (
        histogram["edges"] == list(AB_HISTOGRAM_EDGES)
        and histogram["edges"][0] == -110
        and histogram["edges"][-1] == 110
    )
    counts = np.array(histogram["counts"])
    assert counts.shape == (44, 44) and counts.sum() == lab.shape[0]
    expected, _, _ = np.histogram2d(lab[:, 1], lab[:, 2], bins=[AB_HISTOGRAM_EDGES, AB_HISTOGRAM_EDGES])
    np.testing.assert_array_equal(counts, expected)
    assert stats["speckle_filter"] == {"name": "boxcar", "window": 5, "looks": 1.0}
    assert stats["sar_value_range"]["raw"][0] >= 5 and stats["sar_value_range"]["raw"][1] <= 255
    assert stats["settings"]["max_nodata_fraction"] == 0.1


def test_histogram_quantiles_are_exact_to_the_bin_width() -> None:
    values = np.random.default_rng(0).normal(50, 10, 5000).clip(0, 100)
    edges = np.linspace(0, 100, 20001)
    counts = np.histogram(values, bins=edges)[0]
    quantiles = histogram_quantiles(counts, edges)
    _assert_quantiles(quantiles, values, 100 / 20000)
    # dense data: close to numpy's interpolated quantiles
    np.testing.assert_allclose(
        quantiles[5:96], np.quantile(values, np.linspace(0, 1, 101))[5:96], atol=0.1
    )
    assert histogram_quantiles(np.zeros(4, dtype=int), np.arange(5.0)) == [0.0] * 101


def test_georeferenced_pair_on_another_grid(tmp_path, make_geotiff) -> None:
    rng = np.random.default_rng(1)
    sar = rng.gamma(1.0, 0.05, (48, 48)).astype(np.float32)
    make_geotiff(
        tmp_path / "in" / "sar" / "a.tif",
        sar,
        "float32",
        transform=from_origin(600000, 4800000, 10, 10),
    )
    optical = rng.integers(1, 255, (3, 100, 64), dtype=np.uint8)
    # 5 m optical covering only the western 320 m (32 SAR columns) of the SAR
    make_geotiff(
        tmp_path / "in" / "opt" / "a.tif",
        optical,
        "uint8",
        transform=from_origin(600000, 4800000, 5, 5),
    )
    stats = preprocess(
        tmp_path / "in",
        tmp_path / "chips",
        chip_size=16,
        val_fraction=0.0,
        chip_filter=None,
        progress=False,
    )
    source = stats["sources"]["a"]
    assert source["reprojected"] and source["input_scale"] == "linear"
    assert source["valid_fraction"] == pytest.approx(32 / 48, abs=0.03)
    # chips of the uncovered east are dropped as nodata: 3 x 3 grid, the third column drops
    assert stats["n_chips"]["train"] == 6 and stats["n_dropped"] == {"nodata": 3}


def test_refuses_existing_output_without_overwrite(tmp_path, write_pairs) -> None:
    write_pairs(tmp_path / "in", 2, texture="noise")
    out = tmp_path / "chips"
    out.mkdir()
    (out / "keep.txt").write_text("x")
    result = _run(str(tmp_path / "in"), str(out), "--chip-size", "32")
    assert result.exit_code != 0 and "--overwrite" in result.output
    assert (out / "keep.txt").exists()
    result = _run(str(tmp_path / "in"), str(out), "--chip-size", "32", "--overwrite")
    assert result.exit_code == 0, result.output
    assert not (out / "keep.txt").exists() and (out / "stats.json").exists()
    assert _leftovers(tmp_path) == []


@pytest.mark.parametrize("problem", ["missing_partner", "size_mismatch", "no_chips", "all_test"])
def test_refusals_leave_no_output(tmp_path, problem, write_pairs) -> None:
    write_pairs(tmp_path / "in", 3, texture="noise",
                splits=["train", "train", "test"] if problem == "all_test" else None)
    args = ["--chip-size", "32"]
    if problem == "missing_partner":
        (tmp_path / "in" / "opt" / "001.png").unlink()
        expected = "001.png"
    elif problem == "size_mismatch":
        cv2.imwrite(str(tmp_path / "in" / "opt" / "002.png"), np.ones((40, 40, 3), np.uint8) * 9)
        expected = "no georeference"
    elif problem == "no_chips":
        args = ["--chip-size", "32", "--min-sar-std", "1"]
        expected = "no usable training chip"
    else:
        (tmp_path / "in" / "pairs.csv").write_text(
            "sar,optical,split\nsar/000.png,opt/000.png,test\n"
        )
        expected = "test"
    out = tmp_path / "chips"
    result = _run(str(tmp_path / "in"), str(out), *args)
    assert result.exit_code != 0
    assert expected in result.output
    assert not out.exists()
    assert _leftovers(tmp_path) == []


def test_bad_speckle_filter_name_lists_the_valid_ones(tmp_path, write_pairs) -> None:
    write_pairs(tmp_path / "in", 2, texture="noise")
    result = _run(str(tmp_path / "in"), str(tmp_path / "o"), "--speckle-filter", "wiener")
    assert result.exit_code != 0 and "refined_lee" in result.output
    assert not (tmp_path / "o").exists()


def test_library_raises_input_error(tmp_path) -> None:
    with pytest.raises(InputError):
        preprocess(tmp_path / "missing", tmp_path / "o", progress=False)


def test_real_pairs(tmp_path) -> None:
    """Three real s1s2-la-texas pairs, cut into 256 px chips."""
    if not REAL_DATA.is_dir():
        pytest.skip(f"real data not found at {REAL_DATA} (only in the development checkout)")
    rows = [
        f"{REAL_DATA / 'sar' / n}.png,{REAL_DATA / 'opt' / n}.png,train"
        for n in ("003", "004", "014")
    ]
    (tmp_path / "m.csv").write_text("sar,optical,split\n" + "\n".join(rows) + "\n")
    result = _run(
        str(tmp_path / "m.csv"), str(tmp_path / "out"), "--chip-size", "256", "--band-names", "VH"
    )
    assert result.exit_code == 0, result.output
    stats = json.loads((tmp_path / "out" / "stats.json").read_text())
    assert stats["n_images"] == {"train": 2, "val": 1}
    assert (
        stats["n_chips"]["train"] + stats["n_chips"]["val"] + sum(stats["n_dropped"].values()) == 48
    )
    assert stats["n_chips"]["train"] >= 28
    assert stats["input_scale"] == "display" and stats["bands"] == ["VH"]
    assert 20 < stats["l_quantiles"][50] < 90
    assert -30 < stats["mean_colour"][0] < 30


def test_optical_convention_is_chosen_and_recorded(tmp_path, write_pairs) -> None:
    images = write_pairs(tmp_path / "in", 2, texture="noise").images
    rgb = {name: pair[1] for name, pair in images.items()}
    for convention in ("as-is", "dos"):
        out = tmp_path / convention
        result = _run(str(tmp_path / "in"), str(out), "--chip-size", "64", "--val-fraction", "0",
                      "--optical-convention", convention)
        assert result.exit_code == 0, result.output
        stats = json.loads((out / "stats.json").read_text())
        assert stats["optical_convention"] == convention
        assert stats["settings"]["optical_convention"] == convention
        chips = {c["source"]: c["rgb"] for c in _read_chips(list_shards(out, "train"))}
        same = all(np.array_equal(chips[name], rgb[name]) for name in chips)
        # as-is keeps 8-bit images as stored; dos stretches each channel from its dark object
        assert same == (convention == "as-is")
        if convention == "dos":
            for chip in chips.values():
                assert np.percentile(chip.reshape(-1, 3), 1, axis=0).max() <= 1
    result = _run(str(tmp_path / "in"), str(tmp_path / "x"), "--optical-convention", "natural")
    assert result.exit_code != 0 and "dos" in result.output


def test_pairs_flagged_cloud_or_snow_are_left_out_unless_asked(tmp_path, write_pairs) -> None:
    write_pairs(tmp_path / "in", 4, texture="noise", splits=["train"] * 4,
                cloud_or_snow=["0", "1", "", "yes"])
    out = tmp_path / "chips"
    result = _run(str(tmp_path / "in"), str(out), "--chip-size", "32", "--val-fraction", "0.4")
    assert result.exit_code == 0, result.output
    stats = json.loads((out / "stats.json").read_text())
    assert stats["excluded_flagged"] == ["001", "003"]
    assert stats["settings"]["flagged"] == "exclude"
    assert set(stats["sources"]) == {"000", "002"}  # validation drawn among the clear ones
    chips = _read_chips(list_shards(out, "train") + list_shards(out, "val"))
    assert {c["source"] for c in chips} == {"000", "002"}

    kept = tmp_path / "chips_all"
    result = _run(str(tmp_path / "in"), str(kept), "--chip-size", "32", "--val-fraction", "0.4",
                  "--flagged", "include")
    assert result.exit_code == 0, result.output
    stats = json.loads((kept / "stats.json").read_text())
    assert stats["excluded_flagged"] == [] and set(stats["sources"]) == {"000", "001", "002", "003"}
    # The sources manifest carries the flags, so that eval OUT --split val scores them apart.
    from sar_colorizer.data.layouts import find_pairs

    assert {p.name: p.cloud_or_snow for p in find_pairs(kept)} == {
        "000": False, "001": True, "002": False, "003": True}


def test_refuses_when_every_pair_is_flagged(tmp_path, write_pairs) -> None:
    write_pairs(tmp_path / "in", 2, texture="noise", cloud_or_snow=["1", "1"])
    out = tmp_path / "chips"
    result = _run(str(tmp_path / "in"), str(out), "--chip-size", "32")
    assert result.exit_code != 0
    assert "every pair is flagged cloud_or_snow" in result.output and "--flagged include" in result.output
    assert not out.exists() and _leftovers(tmp_path) == []
