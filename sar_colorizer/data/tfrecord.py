"""The on-disk chip format written by ``sarcolor preprocess`` and read by the input pipeline.

An output folder holds ``<split>-<index>-of-<count>.tfrecord`` shards (``train``, ``val`` and,
when asked for, ``test``) and ``stats.json``. Each record is a ``tf.train.Example`` with:

=============  ======  ======================================================================
key            type    content
=============  ======  ======================================================================
``sar``        bytes   float16 little-endian (h, w, C): *unfiltered* relative intensity in
                       [0, 1] (linear power / per-source-image reference), 0 at invalid pixels
``valid``      bytes   uint8 (h, w): 1 where SAR and optical are valid
``rgb``        bytes   uint8 (h, w, 3): sRGB of the optical image, 0 at invalid pixels
``height``     int64   h
``width``      int64   w
``channels``   int64   C (number of SAR bands)
``source``     bytes   name of the source pair (UTF-8)
=============  ======  ======================================================================

The speckle filter is applied later, in the input pipeline, so one set of chips serves any filter.
"""

from __future__ import annotations

import logging
import math
import re
from pathlib import Path
from typing import Any

import numpy as np

from sar_colorizer._tf import import_tensorflow
from sar_colorizer.errors import InputError

logger = logging.getLogger(__name__)

SHARD_SUFFIX = ".tfrecord"
SPLITS = ("train", "val", "test")
_SHARD_PATTERN = re.compile(r"^(?P<split>[a-z]+)-(?P<index>\d{5})-of-(?P<count>\d{5})\.tfrecord$")


def shard_name(split: str, index: int, count: int) -> str:
    """``train-00000-of-00004.tfrecord``."""
    return f"{split}-{index:05d}-of-{count:05d}{SHARD_SUFFIX}"


def list_shards(data_dir: str | Path, split: str) -> list[Path]:
    """The shards of one split in ``data_dir``, sorted by index."""
    data_dir = Path(data_dir)
    if not data_dir.is_dir():
        return []
    shards = []
    for path in data_dir.iterdir():
        match = _SHARD_PATTERN.match(path.name)
        if match and match["split"] == split:
            shards.append((int(match["index"]), path))
    return [path for _, path in sorted(shards)]


def encode_example(sar: np.ndarray, valid: np.ndarray, rgb: np.ndarray, source: str) -> bytes:
    """Serialise one chip as a ``tf.train.Example``.

    Args:
        sar: (h, w, C) relative intensity in [0, 1] (stored as float16).
        valid: (h, w) bool.
        rgb: (h, w, 3) uint8 sRGB.
        source: Name of the source pair.

    Returns:
        The serialised example.
    """
    tf = import_tensorflow()
    if sar.ndim != 3:
        raise InputError(f"chip SAR must be (h, w, C), got shape {sar.shape}")
    height, width, channels = sar.shape
    if valid.shape != (height, width) or rgb.shape != (height, width, 3):
        raise InputError(
            f"chip arrays disagree: sar {sar.shape}, valid {valid.shape}, rgb {rgb.shape}"
        )
    if rgb.dtype != np.uint8:
        raise InputError(f"chip RGB must be uint8, got {rgb.dtype}")

    def _bytes(value: bytes) -> Any:
        return tf.train.Feature(bytes_list=tf.train.BytesList(value=[value]))

    def _int(value: int) -> Any:
        return tf.train.Feature(int64_list=tf.train.Int64List(value=[int(value)]))

    features = {
        "sar": _bytes(np.ascontiguousarray(sar, dtype="<f2").tobytes()),
        "valid": _bytes(np.ascontiguousarray(valid, dtype=np.uint8).tobytes()),
        "rgb": _bytes(np.ascontiguousarray(rgb).tobytes()),
        "height": _int(height),
        "width": _int(width),
        "channels": _int(channels),
        "source": _bytes(source.encode("utf-8")),
    }
    example = tf.train.Example(features=tf.train.Features(feature=features))
    return example.SerializeToString()


def decode_example(serialized: bytes) -> dict[str, Any]:
    """Decode one serialised chip into numpy arrays (for tests, stats and inspection).

    Returns:
        ``{"sar": (h, w, C) float32, "valid": (h, w) bool, "rgb": (h, w, 3) uint8,
        "source": str}``.
    """
    tf = import_tensorflow()
    feature = tf.train.Example.FromString(serialized).features.feature
    height = feature["height"].int64_list.value[0]
    width = feature["width"].int64_list.value[0]
    channels = feature["channels"].int64_list.value[0]
    sar = np.frombuffer(feature["sar"].bytes_list.value[0], dtype="<f2")
    valid = np.frombuffer(feature["valid"].bytes_list.value[0], dtype=np.uint8)
    rgb = np.frombuffer(feature["rgb"].bytes_list.value[0], dtype=np.uint8)
    return {
        "sar": sar.reshape(height, width, channels).astype(np.float32),
        "valid": valid.reshape(height, width).astype(bool),
        "rgb": rgb.reshape(height, width, 3).copy(),
        "source": feature["source"].bytes_list.value[0].decode("utf-8"),
    }


def parse_example(serialized: Any) -> dict[str, Any]:
    """Parse one serialised chip in the graph (for ``tf.data``).

    Returns compact tensors (cheap to cache): ``sar`` (h, w, C) float16, ``valid`` (h, w, 1)
    uint8, ``rgb`` (h, w, 3) uint8, ``source`` string.
    """
    tf = import_tensorflow()
    spec = {
        "sar": tf.io.FixedLenFeature([], tf.string),
        "valid": tf.io.FixedLenFeature([], tf.string),
        "rgb": tf.io.FixedLenFeature([], tf.string),
        "height": tf.io.FixedLenFeature([], tf.int64),
        "width": tf.io.FixedLenFeature([], tf.int64),
        "channels": tf.io.FixedLenFeature([], tf.int64),
        "source": tf.io.FixedLenFeature([], tf.string, default_value=""),
    }
    parsed = tf.io.parse_single_example(serialized, spec)
    height = tf.cast(parsed["height"], tf.int32)
    width = tf.cast(parsed["width"], tf.int32)
    channels = tf.cast(parsed["channels"], tf.int32)
    sar = tf.reshape(
        tf.io.decode_raw(parsed["sar"], tf.float16, little_endian=True), [height, width, channels]
    )
    valid = tf.reshape(tf.io.decode_raw(parsed["valid"], tf.uint8), [height, width, 1])
    rgb = tf.reshape(tf.io.decode_raw(parsed["rgb"], tf.uint8), [height, width, 3])
    return {"sar": sar, "valid": valid, "rgb": rgb, "source": parsed["source"]}


class ShardWriter:
    """Writes the chips of one split round-robin into a planned number of shards.

    Round-robin spreads the chips of each source image over all shards, so that interleaved
    reading mixes images. Shards left empty (more chips dropped than planned for) are removed and
    the rest renamed ``<split>-<i>-of-<n>.tfrecord`` on :meth:`close`.

    Args:
        out_dir: Folder to write into (normally the temporary output folder).
        split: ``"train"``, ``"val"`` or ``"test"``.
        n_shards: Number of shards to spread the chips over (>= 1).
    """

    def __init__(self, out_dir: str | Path, split: str, n_shards: int) -> None:
        tf = import_tensorflow()
        self.out_dir = Path(out_dir)
        self.split = split
        self.n_shards = max(1, int(n_shards))
        self._paths = [self.out_dir / f".{split}-{i:05d}.partial" for i in range(self.n_shards)]
        self._writers = [tf.io.TFRecordWriter(str(path)) for path in self._paths]
        self._counts = [0] * self.n_shards
        self._next = 0
        self.final_paths: list[Path] = []

    @property
    def n_written(self) -> int:
        return sum(self._counts)

    def write(self, serialized: bytes) -> None:
        """Append one serialised example to the next shard."""
        self._writers[self._next].write(serialized)
        self._counts[self._next] += 1
        self._next = (self._next + 1) % self.n_shards

    def close(self) -> list[Path]:
        """Flush, drop empty shards, give the others their final names; returns them."""
        for writer in self._writers:
            writer.close()
        self._writers = []
        kept = [path for path, count in zip(self._paths, self._counts, strict=True) if count > 0]
        for path, count in zip(self._paths, self._counts, strict=True):
            if count == 0:
                path.unlink(missing_ok=True)
        self.final_paths = []
        for index, path in enumerate(kept):
            final = self.out_dir / shard_name(self.split, index, len(kept))
            path.rename(final)
            self.final_paths.append(final)
        return self.final_paths

    def __enter__(self) -> ShardWriter:
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self._writers:
            self.close()


def plan_shards(expected_chips: int, chips_per_shard: int) -> int:
    """Number of shards for about ``chips_per_shard`` chips each (at least 1)."""
    if chips_per_shard < 1:
        raise InputError(f"chips per shard must be >= 1, got {chips_per_shard}")
    return max(1, math.ceil(expected_chips / chips_per_shard))
