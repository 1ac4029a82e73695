"""Training on several chip folders: per-source sampling, combined statistics, small patches."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from sar_colorizer.data.preprocess import adapt_chip_size, preprocess
from sar_colorizer.data.sources import (
    combine_stats,
    source_crop,
    source_weights,
    validation_repeats,
)
from sar_colorizer.data.stats import read_stats
from sar_colorizer.errors import InputError
from sar_colorizer.training import TrainConfig, train

TINY = {"depth": 2, "base_filters": 4, "downsample": 2, "crop_size": 64, "batch_size": 4,
        "steps_per_epoch": 2, "patience": 10}


@pytest.fixture(scope="module")
def two_sources(tmp_path_factory, write_pairs) -> tuple[Path, Path]:
    """A 'large' source (4 images of 128 px, reddish) and a 'small' one (3 of 40 px, green)."""
    root = tmp_path_factory.mktemp("sources")
    large = write_pairs(root / "large_pairs", 4, 128, colour=(200, 90, 60), seed=1).root
    small = write_pairs(root / "small_pairs", 3, 40, colour=(60, 170, 70), seed=2).root
    preprocess(large, root / "large", chip_size=64, val_fraction=0.25, band_names=["VH"],
               progress=False)
    preprocess(small, root / "small", chip_size=64, val_fraction=0.34, band_names=["VH"],
               progress=False, chip_multiple=8)
    return root / "large", root / "small"


def test_small_images_become_one_padded_chip_each(two_sources) -> None:
    stats = read_stats(two_sources[1])
    # 40-px images: one chip each, 40 rounded up to the multiple 8 -> 40; with 64 -> 64
    assert stats["chip_size"] == 40
    assert stats["n_images"] == {"train": 2, "val": 1} and stats["n_chips"] == {"train": 2, "val": 1}
    assert adapt_chip_size(120, 256) == 128 and adapt_chip_size(1024, 256) == 256
    assert adapt_chip_size(50, 256, 64) == 64 and adapt_chip_size(200, 256, 64) == 256


def test_padding_is_nodata(tmp_path, write_pairs) -> None:
    import tensorflow as tf

    from sar_colorizer.data.tfrecord import decode_example, list_shards

    pairs = write_pairs(tmp_path / "pairs", 2, 50, colour=(60, 170, 70), seed=3).root
    stats = preprocess(pairs, tmp_path / "chips", chip_size=256, val_fraction=0.0,
                       band_names=["VH"], progress=False)
    assert stats["chip_size"] == 64 and stats["n_chips"] == {"train": 2}
    shards = [str(shard) for shard in list_shards(tmp_path / "chips", "train")]
    for record in tf.data.TFRecordDataset(shards).as_numpy_iterator():
        chip = decode_example(record)
        assert chip["valid"].shape == (64, 64)
        assert chip["valid"][:50, :50].all() and not chip["valid"][50:].any()
        assert not chip["valid"][:, 50:].any() and not chip["rgb"][50:].any()
    # the padding enters no statistic
    assert stats["n_train_pixels"] == 2 * 50 * 50


def test_source_weights_and_crops() -> None:
    assert source_weights(None, 2) == [0.5, 0.5]
    assert source_weights([3, 1], 2) == [0.75, 0.25]
    with pytest.raises(InputError, match="one per folder"):
        source_weights([1.0], 2)
    with pytest.raises(InputError, match=">= 0"):
        source_weights([1.0, -1.0], 2)
    assert source_crop(256, 1024, 64) == 256
    assert source_crop(256, 128, 64) == 128
    assert source_crop(256, 120, 64) == 64
    assert source_crop(None, 128, 64) is None


def test_validation_follows_the_source_weights() -> None:
    # 176 LA validation chips and 4 BigEarthNet ones weigh equally at weights 0.5 / 0.5
    repeats = validation_repeats([176, 4], [0.5, 0.5])
    assert repeats == [1, 44] and 176 * repeats[0] == 4 * repeats[1]
    repeats = validation_repeats([30, 100], [0.75, 0.25])
    assert repeats == [10, 1] and 30 * repeats[0] == 3 * 100 * repeats[1]
    assert validation_repeats([0, 0], [0.5, 0.5]) == [1, 1]
    assert validation_repeats([10, 5], [1.0, 0.0]) == [1, 1]


def test_combined_statistics_follow_the_weights(two_sources) -> None:
    large, small = (read_stats(folder) for folder in two_sources)
    # equal weights: the mean colour lies halfway, whatever the pixel counts
    half = combine_stats([large, small], [0.5, 0.5])
    np.testing.assert_allclose(
        half["mean_colour"], (np.add(large["mean_colour"], small["mean_colour"])) / 2, atol=1e-6
    )
    only_large = combine_stats([large, small], [1.0, 0.0])
    np.testing.assert_allclose(only_large["mean_colour"], large["mean_colour"], atol=1e-6)
    np.testing.assert_allclose(only_large["linear_regression"]["a"],
                               large["linear_regression"]["a"], atol=1e-6)
    assert half["n_chips"]["train"] == large["n_chips"]["train"] + small["n_chips"]["train"]
    other = dict(small, optical_convention="as-is")
    with pytest.raises(InputError, match="optical convention"):
        combine_stats([large, other], [0.5, 0.5])
    with pytest.raises(InputError, match="bands"):
        combine_stats([large, dict(small, bands=["VV", "VH"])], [0.5, 0.5])


def test_batches_come_from_each_source_by_weight(two_sources) -> None:
    from sar_colorizer.data.pipeline import make_dataset
    from sar_colorizer.data.sources import mixed_dataset

    datasets = [make_dataset(folder, batch_size=2, crop_size=source_crop(64, size, 8),
                             repeat=True, seed=0)
                for folder, size in zip(two_sources, (64, 40), strict=True)]
    shapes = [tuple(x.shape[1:3]) for x, _ in mixed_dataset(datasets, [0.8, 0.2], 0).take(200)]
    small_share = shapes.count((40, 40)) / len(shapes)
    assert set(shapes) == {(64, 64), (40, 40)}  # one shape per batch, each source's own
    assert 0.1 < small_share < 0.3


def test_sources_of_one_crop_size_share_every_batch(two_sources) -> None:
    """Batch normalisation must see the mixture: with one crop size, batches mix the sources."""
    from sar_colorizer.data.pipeline import make_dataset
    from sar_colorizer.data.sources import mixed_dataset

    # Tag each source through its SAR: the small source's chips are scaled to 0 (all dark).
    datasets = [make_dataset(folder, batch_size=4, crop_size=32, repeat=True, seed=0)
                for folder in two_sources]
    datasets[1] = datasets[1].map(lambda x, y: (x * 0.0 - 1.0, y))
    batches = list(mixed_dataset(datasets, [0.75, 0.25], 0, batch_size=8).take(60))
    assert all(tuple(x.shape) == (8, 32, 32, 1) for x, _ in batches)
    from_small = np.array([[float(chip.numpy().max()) < 0 for chip in x] for x, _ in batches])
    mixed = np.mean([0 < row.sum() < len(row) for row in from_small])
    assert mixed > 0.5  # most batches hold chips of both sources
    assert 0.15 < from_small.mean() < 0.35  # in the weights' proportion


def test_train_on_two_sources_writes_one_bundle(two_sources, tmp_path, machine_paths) -> None:
    model_out = tmp_path / "model"
    config = TrainConfig.from_dict({**TINY, "epochs": 1, "source_weights": [0.5, 0.5]})
    train(list(two_sources), model_out, config, progress=False)
    meta = json.loads((model_out / "bundle.json").read_text())
    # Names and paths relative to the data folders, never this machine's (the bundle travels).
    assert machine_paths(meta) == []
    assert meta["training"]["data_dir"] == ",".join(p.name for p in two_sources)
    assert all("/" not in f["data_dir"] for f in meta["training"]["source_folders"])
    assert meta["optical_convention"] == "dos"
    assert meta["tile_size"] == 64
    folders = meta["training"]["source_folders"]
    assert [f["crop_size"] for f in folders] == [64, 40] and [f["weight"] for f in folders] == [0.5, 0.5]
    assert meta["training"]["n_images"] == {"train": 5, "val": 2}
    log = (model_out / "training_log.csv").read_text()
    assert "val_loss" in log


def test_cli_train_takes_several_folders(two_sources, tmp_path) -> None:
    from sar_colorizer.cli import cli

    result = CliRunner().invoke(cli, [
        "-q", "train", *map(str, two_sources), str(tmp_path / "m"), "--epochs", "1",
        "--steps-per-epoch", "1", "--depth", "2", "--base-filters", "4", "--downsample", "2",
        "--crop-size", "32", "--batch-size", "2", "--source-weights", "1,3"])
    assert result.exit_code == 0, result.output
    meta = json.loads((tmp_path / "m" / "bundle.json").read_text())
    assert [f["weight"] for f in meta["training"]["source_folders"]] == [0.25, 0.75]
    result = CliRunner().invoke(cli, [
        "-q", "train", *map(str, two_sources), str(tmp_path / "n"), "--source-weights", "1"])
    assert result.exit_code != 0 and "one per folder" in result.output
    assert not (tmp_path / "n").exists()


def test_bigearthnet_preprocess_and_train_with_default_flags(shared_data, tmp_path) -> None:
    """The 120-px BigEarthNet patches as they are: 2-band dB SAR, L2A reflectance optics."""
    from sar_colorizer.cli import cli

    data = shared_data / "bigearthnet-configilm"
    if not data.is_dir():
        pytest.skip(f"{data} is absent")
    runner = CliRunner()
    result = runner.invoke(cli, ["-q", "preprocess", str(data), str(tmp_path / "chips")])
    assert result.exit_code == 0, result.output
    stats = read_stats(tmp_path / "chips")
    assert stats["chip_size"] == 128 and stats["bands"] == ["VV", "VH"]
    assert stats["input_scale"] == "db" and stats["optical_convention"] == "dos"
    assert stats["n_images"]["train"] + stats["n_images"]["val"] == 30  # test patches left out
    assert sum(stats["n_chips"].values()) == 30
    # green-yellow Europe in summer once haze and stretch are removed (not the blue of as-is)
    assert stats["mean_colour"][1] > 0
    result = runner.invoke(cli, ["-q", "train", str(tmp_path / "chips"), str(tmp_path / "m"),
                                 "--epochs", "1", "--steps-per-epoch", "2"])
    assert result.exit_code == 0, result.output
    meta = json.loads((tmp_path / "m" / "bundle.json").read_text())
    assert meta["tile_size"] == 128 and meta["bands"] == ["VV", "VH"]
    assert meta["optical_convention"] == "dos"
