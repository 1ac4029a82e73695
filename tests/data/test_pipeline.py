"""The tf.data input pipeline: shapes, value ranges, augmentation alignment, determinism."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from skimage.color import rgb2lab

from sar_colorizer.color.constants import AB_SCALE
from sar_colorizer.data.pipeline import make_dataset
from sar_colorizer.data.tfrecord import ShardWriter, encode_example
from sar_colorizer.errors import InputError
from sar_colorizer.sar.speckle import SpeckleFilter, apply_speckle_filter

CHIP = 32


def _write_chips(folder: Path, n: int = 12, channels: int = 1, seed: int = 0) -> list[dict]:
    """n chips (two shards) with speckle-like SAR, a nodata corner and colourful RGB."""
    rng = np.random.default_rng(seed)
    chips = []
    with ShardWriter(folder, "train", n_shards=2) as writer:
        for index in range(n):
            sar = (
                np.clip(rng.gamma(1.0, 0.2, (CHIP, CHIP, channels)), 0, 1)
                .astype(np.float16)
                .astype(np.float32)
            )
            valid = np.ones((CHIP, CHIP), dtype=bool)
            valid[: index % 5, : 3 + index % 4] = False  # a different nodata corner per chip
            sar[~valid] = 0
            rgb = rng.integers(0, 256, (CHIP, CHIP, 3), dtype=np.uint8)
            rgb[~valid] = 0
            writer.write(encode_example(sar, valid, rgb, f"src{index % 3}"))
            chips.append({"sar": sar, "valid": valid, "rgb": rgb})
    stats = {
        "chip_size": CHIP,
        "bands": [f"b{c}" for c in range(channels)],
        "n_chips": {"train": n},
        "speckle_filter": {"name": "boxcar", "window": 3, "looks": 1.0},
    }
    (folder / "stats.json").write_text(json.dumps(stats))
    return chips


@pytest.fixture(scope="module")
def chip_dir(tmp_path_factory) -> tuple[Path, list[dict]]:
    folder = tmp_path_factory.mktemp("chips")
    return folder, _write_chips(folder)


def _batches(dataset, n: int = 1) -> list[tuple[np.ndarray, np.ndarray]]:
    return [(x.numpy(), y.numpy()) for x, y in dataset.take(n)]


def _dihedral(image: np.ndarray) -> list[np.ndarray]:
    variants = []
    for flipped in (image, image[:, ::-1]):
        for k in range(4):
            variants.append(np.rot90(flipped, k))
    return variants


def test_shapes_dtypes_and_ranges(chip_dir) -> None:
    folder, _ = chip_dir
    dataset = make_dataset(folder, batch_size=5, crop_size=16, seed=3)
    assert dataset.element_spec[0].shape.as_list() == [None, 16, 16, 1]
    assert dataset.element_spec[1].shape.as_list() == [None, 16, 16, 3]
    batches = _batches(dataset, 3)
    assert [b[0].shape[0] for b in batches] == [5, 5, 2]
    for x, y in batches:
        assert x.dtype == np.float32 and y.dtype == np.float32
        assert x.min() >= 0 and x.max() <= 1
        assert np.abs(y[..., :2]).max() <= 1
        assert set(np.unique(y[..., 2])) <= {0.0, 1.0}
        invalid = y[..., 2] == 0
        assert (x[..., 0][invalid] == 0).all() and (y[..., :2][invalid] == 0).all()
    assert sum(b[0].shape[0] for b in batches) == 12


def test_plain_chips_and_lab_target(chip_dir) -> None:
    folder, chips = chip_dir
    dataset = make_dataset(
        folder,
        batch_size=12,
        speckle_filter="none",
        augment=False,
        shuffle=False,
        deterministic=True,
    )
    x, y = _batches(dataset)[0]
    assert x.shape == (12, CHIP, CHIP, 1)
    # deterministic interleave of the two round-robin shards restores the written order
    for index, chip in enumerate(chips):
        np.testing.assert_array_equal(x[index, ..., 0], chip["sar"][..., 0])
        np.testing.assert_array_equal(y[index, ..., 2], chip["valid"].astype(np.float32))
        expected_ab = rgb2lab(chip["rgb"])[..., 1:] / AB_SCALE * chip["valid"][..., None]
        np.testing.assert_allclose(y[index, ..., :2], expected_ab, atol=2e-4)


def test_speckle_filter_runs_in_the_graph_over_valid_pixels(chip_dir) -> None:
    folder, chips = chip_dir
    spec = SpeckleFilter("boxcar", 5)
    x, y = _batches(
        make_dataset(
            folder,
            batch_size=12,
            speckle_filter=spec,
            augment=False,
            shuffle=False,
            deterministic=True,
        )
    )[0]
    for index, chip in enumerate(chips):
        linear = np.where(chip["valid"], chip["sar"][..., 0], np.nan)
        expected = np.nan_to_num(apply_speckle_filter(linear, spec), nan=0.0)
        np.testing.assert_allclose(x[index, ..., 0], expected, atol=1e-5)
    # filtering lowers the variance of speckle
    plain = chips[0]["sar"][chips[0]["valid"]]
    assert x[0, ..., 0][chips[0]["valid"]].var() < 0.5 * plain.var()


def test_default_filter_comes_from_stats(chip_dir) -> None:
    folder, chips = chip_dir
    x = _batches(
        make_dataset(folder, batch_size=1, augment=False, shuffle=False, deterministic=True)
    )[0][0]
    linear = np.where(chips[0]["valid"], chips[0]["sar"][..., 0], np.nan)
    expected = np.nan_to_num(apply_speckle_filter(linear, SpeckleFilter("boxcar", 3)), nan=0.0)
    np.testing.assert_allclose(x[0, ..., 0], expected, atol=1e-5)


def test_filter_sees_the_whole_chip_before_cropping(chip_dir) -> None:
    folder, _ = chip_dir
    kwargs = dict(batch_size=12, augment=False, shuffle=False, deterministic=True)
    whole_x, whole_y = _batches(make_dataset(folder, **kwargs))[0]
    crop_x, crop_y = _batches(make_dataset(folder, crop_size=20, **kwargs))[0]
    np.testing.assert_array_equal(crop_x, whole_x[:, 6:26, 6:26])  # centre crop when not augmenting
    np.testing.assert_array_equal(crop_y, whole_y[:, 6:26, 6:26])


def test_augmentation_keeps_sar_mask_and_colour_aligned(chip_dir) -> None:
    folder, chips = chip_dir
    x, y = _batches(
        make_dataset(
            folder, batch_size=12, speckle_filter="none", shuffle=False, deterministic=True, seed=5
        )
    )[0]
    transforms_seen = set()
    for index, chip in enumerate(chips):
        expected_ab = (rgb2lab(chip["rgb"])[..., 1:] / AB_SCALE * chip["valid"][..., None]).astype(
            np.float32
        )
        stacked = np.concatenate([chip["sar"], chip["valid"][..., None], expected_ab], axis=-1)
        got = np.concatenate([x[index], y[index, ..., 2:], y[index, ..., :2]], axis=-1)
        matches = [
            k
            for k, variant in enumerate(_dihedral(stacked))
            if np.allclose(variant, got, atol=2e-4)
        ]
        assert matches, f"chip {index}: SAR, mask and colour were not transformed together"
        transforms_seen.add(matches[0])
    assert len(transforms_seen) > 2  # flips and rotations actually happen


def test_same_seed_same_batches_different_seed_differs(chip_dir) -> None:
    folder, _ = chip_dir

    def first(seed: int):
        return _batches(
            make_dataset(folder, batch_size=4, crop_size=24, deterministic=True, seed=seed), 2
        )

    one, again, other = first(7), first(7), first(8)
    for (x1, y1), (x2, y2) in zip(one, again, strict=True):
        np.testing.assert_array_equal(x1, x2)
        np.testing.assert_array_equal(y1, y2)
    assert not all(np.array_equal(a[0], b[0]) for a, b in zip(one, other, strict=True))


def test_epochs_reshuffle_and_reaugment(chip_dir) -> None:
    folder, _ = chip_dir
    dataset = make_dataset(folder, batch_size=12, deterministic=True, seed=1, repeat=True)
    (x1, _), (x2, _) = _batches(dataset, 2)
    assert not np.array_equal(x1, x2)
    assert np.isclose(
        np.sort(x1.sum(axis=(1, 2, 3))).sum(), np.sort(x2.sum(axis=(1, 2, 3))).sum(), rtol=1e-3
    )


def test_errors(tmp_path, chip_dir) -> None:
    folder, _ = chip_dir
    with pytest.raises(InputError, match="no val"):
        make_dataset(folder, split="val")
    with pytest.raises(InputError, match="crop size"):
        make_dataset(folder, crop_size=64)
    with pytest.raises(InputError, match="sarcolor preprocess"):
        make_dataset(tmp_path)


def test_phase_jitter_moves_whole_chips_over_mirrored_margins_without_loss_there(chip_dir) -> None:
    """Crops as large as the chip start at many offsets; the mirrored margin carries no loss
    and its SAR is the chip's own, mirrored."""
    folder, chips = chip_dir
    kwargs = dict(batch_size=12, speckle_filter="none", shuffle=False, deterministic=True)
    x, y = _batches(make_dataset(folder, crop_size=CHIP, phase_jitter=16, seed=2, **kwargs))[0]
    plain_x, _ = _batches(make_dataset(folder, crop_size=CHIP, seed=2, **kwargs))[0]
    assert x.shape == plain_x.shape == (12, CHIP, CHIP, 1)
    offsets = set()
    for index, chip in enumerate(chips):
        # find the chip (in one of its 8 orientations) inside the crop: rows/cols of weight 1
        inside = y[index, ..., 2] > 0
        rows, cols = np.flatnonzero(inside.any(axis=1)), np.flatnonzero(inside.any(axis=0))
        offsets.add((int(rows[0]), int(cols[0])))
        assert len(rows) <= CHIP and len(cols) <= CHIP
        # outside the chip: no loss, and the SAR there is mirrored chip pixels (all in [0, 1])
        assert (y[index, ~inside] == 0).all()
        assert set(np.round(x[index, ~inside, 0], 4)) <= set(np.round(chip["sar"][..., 0].ravel(), 4))
    assert len(offsets) > 3  # the chip lands at many pixel phases


def test_gain_jitter_scales_the_sar_within_its_bounds(chip_dir) -> None:
    folder, _ = chip_dir
    kwargs = dict(batch_size=12, speckle_filter="none", shuffle=False, deterministic=True, seed=4)
    plain_x, plain_y = _batches(make_dataset(folder, **kwargs))[0]
    x, y = _batches(make_dataset(folder, gain_jitter_db=3.0, **kwargs))[0]
    np.testing.assert_array_equal(y, plain_y)  # same flips and turns, same targets
    unclipped = (x < 1) & (plain_x > 0) & (plain_x < 10 ** (-0.3))
    ratio_db = 10 * np.log10(x[unclipped] / plain_x[unclipped])
    per_chip = [10 * np.log10(x[i][unclipped[i]] / plain_x[i][unclipped[i]]) for i in range(12)]
    assert np.abs(ratio_db).max() <= 3.0 + 1e-3
    assert all(np.ptp(gains) < 1e-3 for gains in per_chip)  # one gain per chip
    assert np.std([gains.mean() for gains in per_chip]) > 0.3  # that varies between chips
    assert x.max() <= 1 and x.min() >= 0
