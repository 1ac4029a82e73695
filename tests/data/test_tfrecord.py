"""The TFRecord chip format: exact round trips, shard naming and round-robin writing."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from sar_colorizer.data.tfrecord import (
    ShardWriter,
    decode_example,
    encode_example,
    list_shards,
    parse_example,
    plan_shards,
    shard_name,
)
from sar_colorizer.errors import InputError


def _read_chips(shards: list[Path]) -> list[dict]:
    """Every chip of the shards, decoded with the numpy decoder, in file order."""
    import tensorflow as tf

    records = tf.data.TFRecordDataset([str(shard) for shard in shards])
    return [decode_example(record) for record in records.as_numpy_iterator()]


def _chip(seed: int, size: int = 8, channels: int = 2):
    rng = np.random.default_rng(seed)
    sar = rng.uniform(0, 1, (size, size + 2, channels)).astype(np.float32)
    valid = rng.uniform(size=(size, size + 2)) > 0.2
    sar[~valid] = 0
    rgb = rng.integers(0, 256, (size, size + 2, 3), dtype=np.uint8)
    return sar, valid, rgb


def test_encode_decode_round_trip() -> None:
    sar, valid, rgb = _chip(1)
    chip = decode_example(encode_example(sar, valid, rgb, "pair_07"))
    assert chip["sar"].shape == (8, 10, 2) and chip["sar"].dtype == np.float32
    # float16 storage: relative error <= 2**-11, exact for values float16 can hold
    np.testing.assert_allclose(chip["sar"], sar, rtol=2**-11, atol=2**-24)
    np.testing.assert_array_equal(chip["sar"], sar.astype(np.float16).astype(np.float32))
    np.testing.assert_array_equal(chip["valid"], valid)
    np.testing.assert_array_equal(chip["rgb"], rgb)
    assert chip["source"] == "pair_07"


def test_graph_parser_matches_numpy_decoder() -> None:
    import tensorflow as tf

    sar, valid, rgb = _chip(2, channels=1)
    record = encode_example(sar, valid, rgb, "x")
    parsed = parse_example(tf.constant(record))
    assert parsed["sar"].dtype == tf.float16 and parsed["sar"].shape == (8, 10, 1)
    np.testing.assert_array_equal(
        parsed["sar"].numpy().astype(np.float32), decode_example(record)["sar"]
    )
    np.testing.assert_array_equal(parsed["valid"].numpy()[..., 0], valid.astype(np.uint8))
    np.testing.assert_array_equal(parsed["rgb"].numpy(), rgb)


def test_encode_rejects_inconsistent_arrays() -> None:
    sar, valid, rgb = _chip(3)
    with pytest.raises(InputError):
        encode_example(sar[..., 0], valid, rgb, "x")
    with pytest.raises(InputError):
        encode_example(sar, valid[:4], rgb, "x")
    with pytest.raises(InputError):
        encode_example(sar, valid, rgb.astype(np.float32), "x")


def test_shard_writer_round_robin_and_names(tmp_path) -> None:
    chips = [_chip(seed) for seed in range(7)]
    with ShardWriter(tmp_path, "train", n_shards=3) as writer:
        for index, (sar, valid, rgb) in enumerate(chips):
            writer.write(encode_example(sar, valid, rgb, f"src{index}"))
    names = [path.name for path in writer.final_paths]
    assert names == [shard_name("train", i, 3) for i in range(3)]
    assert names[0] == "train-00000-of-00003.tfrecord"
    assert list_shards(tmp_path, "train") == writer.final_paths
    assert list_shards(tmp_path, "val") == []
    assert not list(tmp_path.glob(".*"))  # no partial files left
    sources = [[c["source"] for c in _read_chips([path])] for path in writer.final_paths]
    assert sources == [["src0", "src3", "src6"], ["src1", "src4"], ["src2", "src5"]]
    decoded = {c["source"]: c for c in _read_chips(writer.final_paths)}
    np.testing.assert_array_equal(decoded["src4"]["rgb"], chips[4][2])


def test_shard_writer_drops_empty_shards(tmp_path) -> None:
    writer = ShardWriter(tmp_path, "val", n_shards=4)
    sar, valid, rgb = _chip(0)
    writer.write(encode_example(sar, valid, rgb, "a"))
    writer.write(encode_example(sar, valid, rgb, "b"))
    paths = writer.close()
    assert [p.name for p in paths] == ["val-00000-of-00002.tfrecord", "val-00001-of-00002.tfrecord"]
    assert sorted(p.name for p in tmp_path.iterdir()) == [p.name for p in paths]


def test_plan_shards() -> None:
    assert plan_shards(0, 128) == 1
    assert plan_shards(128, 128) == 1
    assert plan_shards(129, 128) == 2
    with pytest.raises(InputError):
        plan_shards(10, 0)
