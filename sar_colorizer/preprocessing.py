"""Turning co-registered SAR / optical pairs into training chips: the library behind
``sarcolor preprocess``.

For every source pair: read both images onto the SAR grid (reprojecting the optical image when the
grids differ), bring the SAR to linear power, normalise it with a reference computed over the
*whole source image* (so a chip's brightness means what it means at inference, where the
reference comes from the whole scene), cut chips, drop those with too much nodata or no texture,
and write them to sharded TFRecords. The split into train and validation is made by source image:
chips of one image overlap in content and must never sit on both sides.

``stats.json`` records what training and inference need: counts, the AB histogram (for the
rarity-weighted loss), the optical L quantiles (tone curve), the SAR feature quantiles, the
baselines (mean colour, per-pixel linear regression of a and b on the log SAR feature), the SAR
value range and every setting used.
"""

from __future__ import annotations

import csv
import dataclasses
import json
import logging
import shutil
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from sar_colorizer import __version__
from sar_colorizer.baselines import BaselineAccumulator
from sar_colorizer.color.constants import AB_HISTOGRAM_EDGES
from sar_colorizer.data.chips import ChipFilter, chip_grid, cut_chips
from sar_colorizer.data.pairs import Pair, assign_splits, check_pair, find_pairs, read_pair
from sar_colorizer.data.tfrecord import (
    STATS_FILE,
    ShardWriter,
    encode_example,
    plan_shards,
)
from sar_colorizer.errors import InputError, OutputExistsError
from sar_colorizer.io.atomic import new_temporary_folder, publish
from sar_colorizer.signals import raise_if_interrupted

logger = logging.getLogger(__name__)

STATS_FORMAT_VERSION = 1
SOURCES_MANIFEST = "pairs.csv"  # the source images and their split, readable by eval/find_pairs
_QUANTILE_BINS = 20000  # histogram resolution for the 101 quantiles: 0.005 L units, 5e-5 feature
#: Chips of images smaller than the chip size are a multiple of this (the tile multiple of the
#: shipped network: downsample 4 x 2^depth 4).
CHIP_MULTIPLE = 64


# --------------------------------------------------------------------------------------------
# Statistics over the training pixels
# --------------------------------------------------------------------------------------------


class TrainingStatistics:
    """Accumulates colour and SAR statistics over the training pixels, image by image.

    Quantiles come from fine histograms (exact to the bin width), so no pixel list is kept.
    The baselines are fitted from running sums (:class:`BaselineAccumulator`).
    """

    def __init__(self) -> None:
        n_ab = len(AB_HISTOGRAM_EDGES) - 1
        self.ab_counts = np.zeros((n_ab, n_ab), dtype=np.int64)
        self.l_edges = np.linspace(0.0, 100.0, _QUANTILE_BINS + 1)
        self.l_counts = np.zeros(_QUANTILE_BINS, dtype=np.int64)
        self.feature_edges = np.linspace(0.0, 1.0, _QUANTILE_BINS + 1)
        self.feature_counts = np.zeros(_QUANTILE_BINS, dtype=np.int64)
        # Running sums for the mean-colour and linear-regression baselines.
        self.baselines = BaselineAccumulator()

    def add(self, lab: np.ndarray, feature: np.ndarray) -> None:
        """Add pixels: ``lab`` (N, 3) CIE LAB of the optical image, ``feature`` (N,) SAR feature."""
        if lab.shape[0] == 0:
            return
        lightness = lab[:, 0].astype(np.float64)
        a = lab[:, 1].astype(np.float64)
        b = lab[:, 2].astype(np.float64)
        s = feature.astype(np.float64)
        lim = (AB_HISTOGRAM_EDGES[0], AB_HISTOGRAM_EDGES[-1] - 1e-9)
        counts, _, _ = np.histogram2d(np.clip(a, *lim), np.clip(b, *lim), bins=[AB_HISTOGRAM_EDGES, AB_HISTOGRAM_EDGES])
        self.ab_counts += counts.astype(np.int64)
        self.l_counts += np.histogram(np.clip(lightness, 0, 100), bins=self.l_edges)[0]
        self.feature_counts += np.histogram(np.clip(s, 0, 1), bins=self.feature_edges)[0]
        self.baselines.update(s, np.stack([a, b], axis=-1))

    @property
    def n_pixels(self) -> int:
        return int(self.baselines.count)

    def regression(self) -> dict[str, list[float]]:
        """Least-squares ``a = w0 + w1 s`` and ``b = w0 + w1 s`` (CIELAB units)."""
        if self.n_pixels == 0:
            return {"a": [0.0, 0.0], "b": [0.0, 0.0]}
        return self.baselines.linear_regression()

    def mean_colour(self) -> list[float]:
        if self.n_pixels == 0:
            return [0.0, 0.0]
        return self.baselines.mean_colour()

    def to_dict(self) -> dict[str, Any]:
        return {
            "ab_histogram": {
                "edges": [float(edge) for edge in AB_HISTOGRAM_EDGES],
                "counts": self.ab_counts.tolist(),
                "axes": ["a", "b"],
            },
            "l_quantiles": histogram_quantiles(self.l_counts, self.l_edges),
            "sar_feature_quantiles": histogram_quantiles(self.feature_counts, self.feature_edges),
            "linear_regression": self.regression(),
            "mean_colour": self.mean_colour(),
            "n_train_pixels": self.n_pixels,
            # The sums behind the baselines, so that several chip folders can be combined.
            "baseline_sums": {
                "count": float(self.baselines.count),
                "sum_s": float(self.baselines.sum_s),
                "sum_ss": float(self.baselines.sum_ss),
                "sum_ab": [float(v) for v in self.baselines.sum_ab],
                "sum_s_ab": [float(v) for v in self.baselines.sum_s_ab],
            },
        }


def histogram_quantiles(counts: np.ndarray, edges: np.ndarray, n: int = 101) -> list[float]:
    """Quantiles 0, 1/(n-1), ..., 1 of histogrammed values, interpolated linearly within a bin.

    Quantile 0 is the lower edge of the first non-empty bin, quantile 1 the upper edge of the
    last; the result is non-decreasing. Empty histograms give ``n`` zeros.
    """
    total = int(counts.sum())
    if total == 0:
        return [0.0] * n
    cumulative = np.cumsum(counts)
    targets = np.linspace(0.0, 1.0, n) * total
    last = int(np.flatnonzero(counts)[-1])
    index = np.minimum(np.searchsorted(cumulative, targets, side="right"), last)
    before = cumulative[index] - counts[index]
    fraction = np.clip((targets - before) / np.maximum(counts[index], 1), 0.0, 1.0)
    values = edges[index] + fraction * (edges[index + 1] - edges[index])
    return [float(v) for v in np.maximum.accumulate(values)]


# --------------------------------------------------------------------------------------------
# The command's library function
# --------------------------------------------------------------------------------------------


def adapt_chip_size(min_side: int, chip_size: int, multiple: int = CHIP_MULTIPLE) -> int:
    """The chip size for images whose shorter side is ``min_side``.

    Images at least ``chip_size`` on a side keep it. A smaller image becomes one chip: its side
    rounded up to ``multiple`` (120 -> 128 px), the image padded at the bottom and right with
    nodata that the loss ignores (``valid`` 0). One chip then holds the whole patch, so the
    network sees all its context (a 64-px chip would see 28% of a 120-px patch, at 16 x 16 px of
    network input), and only 12% of its pixels are padding.

    >>> adapt_chip_size(1024, 256), adapt_chip_size(120, 256), adapt_chip_size(64, 256)
    (256, 128, 64)
    """
    if min_side >= chip_size:
        return chip_size
    return min(chip_size, max(multiple, -(-min_side // multiple) * multiple))


def _pad_to(array: np.ndarray, height: int, width: int) -> np.ndarray:
    """Pad the first two axes at the end with zeros up to ``height`` x ``width``."""
    pad = [(0, height - array.shape[0]), (0, width - array.shape[1])]
    pad += [(0, 0)] * (array.ndim - 2)
    return np.pad(array, pad)


def preprocess(
    input_path: str | Path,
    out_dir: str | Path,
    *,
    chip_size: int = 256,
    stride: int | None = None,
    chip_filter: ChipFilter | None = None,
    bands: str | Sequence[str | int] | None = None,
    band_names: Sequence[str] | None = None,
    input_scale: str = "auto",
    normalization: Any = None,
    speckle_filter: Any = None,
    val_fraction: float = 0.15,
    include_test: bool = False,
    seed: int = 0,
    chips_per_shard: int = 128,
    overwrite: bool = False,
    progress: bool = True,
    optical_convention: str = "dos",
    optical_offset: float | None = None,
    chip_multiple: int = CHIP_MULTIPLE,
) -> dict[str, Any]:
    """Cut SAR / optical pairs into TFRecord chips plus ``stats.json``.

    Args:
        input_path: Folder of pairs or CSV manifest (see :func:`sar_colorizer.data.pairs.find_pairs`).
        out_dir: Output folder; written to a temporary folder beside it and renamed at the end,
            so nothing half-written is left behind on failure.
        chip_size: Chip side in pixels. When an image is smaller, the chip size of the whole
            run adapts to the smallest image (see :func:`adapt_chip_size`): its side rounded up
            to ``chip_multiple``, smaller images padded with nodata.
        stride: Step between chips (default ``chip_size``, no overlap).
        chip_filter: Nodata / texture thresholds (default :class:`ChipFilter`).
        bands: SAR bands to use (``"VV,VH"``, ``"1,2"``); default all bands.
        band_names: Names of the selected bands (e.g. ``["VH"]``) recorded in ``stats.json`` and
            later in the model bundle; default from the band descriptions, a polarisation in the
            file name, else ``band<i>``.
        input_scale: ``"auto"`` (detected per image), ``"linear"``, ``"db"``, ``"amplitude"`` or
            ``"display"``.
        normalization: :class:`~sar_colorizer.sar.radiometry.Normalization` (default percentile
            99); its reference is computed per source image and band over the SAR's valid pixels.
        speckle_filter: :class:`~sar_colorizer.sar.speckle.SpeckleFilter` used for the SAR feature
            of the statistics and baselines (default boxcar 5x5); chips are stored unfiltered.
        val_fraction: Fraction of training images held out for validation (see
            :func:`assign_splits`).
        include_test: Also write pairs labelled ``test`` (as a ``test`` split).
        seed: Seed of the validation draw.
        chips_per_shard: About this many chips per TFRecord shard.
        overwrite: Replace an existing ``out_dir``.
        progress: Show a progress bar over source images.
        optical_convention: How optical images become the RGB the model learns: ``"dos"``
            (haze removed, one display stretch) or ``"as-is"`` (earlier versions); see
            :mod:`sar_colorizer.color.convention`. Recorded in ``stats.json``.
        optical_offset: Offset added to integer reflectance before dividing by 10000 (-1000
            for Level-2A from processing baseline 04.00); None reads it from the files' metadata.
        chip_multiple: Adapted chip sizes are multiples of this (the network's tile multiple).

    Returns:
        The statistics written to ``stats.json``.

    Raises:
        OutputExistsError: ``out_dir`` exists and ``overwrite`` is False.
        InputError: Unusable input (missing partners, mismatched pairs, no usable chips, ...).
    """
    from tqdm.auto import tqdm

    from sar_colorizer.color.convention import check_convention
    from sar_colorizer.sar.radiometry import Normalization
    from sar_colorizer.sar.speckle import SpeckleFilter

    check_convention(optical_convention)
    out_dir = Path(out_dir)
    if out_dir.exists() and not overwrite:
        raise OutputExistsError(f"{out_dir} exists; pass --overwrite to replace it")
    if chip_size < 8:
        raise InputError(f"chip size {chip_size} is too small; use 8 px or more (e.g. 256)")
    stride = chip_size if stride is None else stride
    if stride < 1:
        raise InputError(f"stride {stride} must be >= 1 px")
    chip_filter = chip_filter or ChipFilter()
    normalization = normalization or Normalization()
    speckle_filter = speckle_filter or SpeckleFilter()
    if band_names is not None:
        band_names = [name.strip() for name in band_names]

    pairs = find_pairs(input_path)
    splits = assign_splits(pairs, val_fraction=val_fraction, seed=seed, include_test=include_test)
    work = [pair for pair in pairs if splits[pair.name] is not None]
    if not work:
        raise InputError(
            f"{input_path}: every pair is labelled test; pass --include-test or add train pairs"
        )

    # Check every pair from its header before writing anything: fail in seconds, not after hours.
    shapes = {pair.name: check_pair(pair) for pair in work}
    requested = chip_size
    chip_size = min(adapt_chip_size(min(shape), chip_size, chip_multiple) for shape in shapes.values())
    if chip_size != requested:
        stride = chip_size if stride == requested else min(stride, chip_size)
        logger.info(
            "images as small as %d px: %d-px chips (smaller images padded with nodata)",
            min(min(shape) for shape in shapes.values()),
            chip_size,
        )
    expected: Counter[str] = Counter()
    for pair in work:
        height, width = (max(side, chip_size) for side in shapes[pair.name])
        expected[splits[pair.name] or ""] += len(chip_grid(height, width, chip_size, stride))
    per_split = Counter(splits[pair.name] for pair in work)
    logger.info(
        "%d pair(s): %s", len(work), ", ".join(f"{k} {v}" for k, v in sorted(per_split.items()))
    )

    temporary = new_temporary_folder(out_dir)
    try:
        stats = _write_chips(
            work,
            splits,
            temporary,
            expected,
            tqdm,
            chip_size=chip_size,
            stride=stride,
            chip_filter=chip_filter,
            bands=bands,
            band_names=band_names,
            input_scale=input_scale,
            normalization=normalization,
            speckle_filter=speckle_filter,
            chips_per_shard=chips_per_shard,
            progress=progress,
            optical_convention=optical_convention,
            optical_offset=optical_offset,
        )
        stats["excluded"] = sorted(name for name, split in splits.items() if split is None)
        stats["settings"] = {
            "input": str(Path(input_path).resolve()),
            "chip_size": requested,
            "chip_size_used": chip_size,
            "stride": stride,
            **chip_filter.to_dict(),
            "bands": bands if bands is None or isinstance(bands, str) else list(bands),
            "band_names": list(band_names) if band_names is not None else None,
            "input_scale": input_scale,
            "optical_convention": optical_convention,
            "optical_offset": optical_offset,
            "val_fraction": val_fraction,
            "include_test": include_test,
            "seed": seed,
            "chips_per_shard": chips_per_shard,
            "package_version": __version__,
        }
        with open(temporary / STATS_FILE, "w", encoding="utf-8") as handle:
            json.dump(stats, handle, indent=1)
        _write_sources_manifest(temporary / SOURCES_MANIFEST, stats["sources"])
        _replace_folder(temporary, out_dir, overwrite)
    except BaseException:
        shutil.rmtree(temporary, ignore_errors=True)
        raise
    summary = ", ".join(
        f"{split} {count} chips from {stats['n_images'][split]} images"
        for split, count in stats["n_chips"].items()
    )
    logger.info("Wrote %s: %s", out_dir, summary)
    return stats


def _write_sources_manifest(path: Path, sources: dict[str, dict[str, Any]]) -> None:
    """``sar,optical,split`` of every source image, absolute paths: ``sarcolor eval OUT_DIR
    --split val`` then scores whole validation images (what ``predict`` would produce)."""
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["sar", "optical", "split"])
        for source in sources.values():
            writer.writerow(
                [Path(source["sar"]).resolve(), Path(source["optical"]).resolve(), source["split"]]
            )


def _write_chips(
    work: list[Pair],
    splits: dict[str, str | None],
    folder: Path,
    expected: Counter[str],
    tqdm: Any,
    *,
    chip_size: int,
    stride: int,
    chip_filter: ChipFilter,
    bands: Any,
    band_names: Sequence[str] | None,
    input_scale: str,
    normalization: Any,
    speckle_filter: Any,
    chips_per_shard: int,
    progress: bool,
    optical_convention: str,
    optical_offset: float | None,
) -> dict[str, Any]:
    from skimage.color import rgb2lab

    from sar_colorizer.sar.radiometry import relative_to_feature, to_linear_power
    from sar_colorizer.sar.speckle import apply_speckle_filter

    split_names = [
        split for split in ("train", "val", "test") if any(splits[p.name] == split for p in work)
    ]
    writers = {
        split: ShardWriter(folder, split, plan_shards(expected[split], chips_per_shard))
        for split in split_names
    }
    statistics = TrainingStatistics()
    n_chips: Counter[str] = Counter()
    n_images: Counter[str] = Counter()
    dropped: Counter[str] = Counter()
    sources: dict[str, Any] = {}
    scales: set[str] = set()
    names_seen: tuple[str, ...] | None = None
    raw_range = [np.inf, -np.inf]
    linear_range = [np.inf, -np.inf]
    try:
        for pair in tqdm(work, desc="preprocess", unit="image", disable=None if progress else True):
            raise_if_interrupted()
            split = splits[pair.name] or ""
            arrays = read_pair(
                pair,
                bands=bands,
                input_scale=input_scale,
                band_names=band_names,
                optical_convention=optical_convention,
                optical_offset=optical_offset,
            )
            if names_seen is None:
                names_seen = arrays.band_names
            elif len(arrays.band_names) != len(names_seen):
                raise InputError(
                    f"pair {pair.name}: {len(arrays.band_names)} SAR band(s) but earlier pairs have "
                    f"{len(names_seen)}; select the same bands everywhere with --bands"
                )
            scales.add(arrays.input_scale)
            sar_valid = arrays.sar_valid if arrays.sar_valid is not None else arrays.valid
            linear = np.asarray(
                to_linear_power(arrays.sar, arrays.input_scale, sar_valid), dtype=np.float32
            )
            linear = np.where(sar_valid[None], linear, np.nan)
            references = [float(normalization.reference(band)) for band in linear]
            relative = np.stack(
                [
                    normalization.apply(band, ref)
                    for band, ref in zip(linear, references, strict=True)
                ]
            ).astype(np.float32)
            relative = np.where(arrays.valid[None], relative, np.nan)
            _update_range(raw_range, arrays.sar[:, sar_valid])
            _update_range(linear_range, linear[:, sar_valid])

            rgb_u8 = np.clip(np.round(arrays.optical_rgb * 255.0), 0, 255).astype(np.uint8)
            sar_hwc = np.moveaxis(relative, 0, -1)
            valid = arrays.valid
            image_filter = chip_filter
            height, width = valid.shape
            if height < chip_size or width < chip_size:
                # One chip holds the whole image; the padding is nodata the loss ignores and
                # does not count against the chip's nodata limit.
                padded = (max(height, chip_size), max(width, chip_size))
                pad_fraction = 1.0 - height * width / (padded[0] * padded[1])
                sar_hwc = _pad_to(np.nan_to_num(sar_hwc, nan=0.0), *padded)
                valid = _pad_to(valid, *padded)
                rgb_u8 = _pad_to(rgb_u8, *padded)
                image_filter = dataclasses.replace(
                    chip_filter,
                    max_nodata_fraction=min(1.0, chip_filter.max_nodata_fraction + pad_fraction),
                )
            chips, chip_drops = cut_chips(sar_hwc, valid, rgb_u8, chip_size, stride, image_filter)
            dropped.update(chip_drops)
            for chip in chips:
                writers[split].write(encode_example(chip.sar, chip.valid, chip.rgb, pair.name))
            n_chips[split] += len(chips)
            n_images[split] += 1
            if split == "train" and chips:
                used = np.zeros_like(valid)
                for chip in chips:
                    used[chip.row : chip.row + chip_size, chip.col : chip.col + chip_size] = True
                used = used[:height, :width] & arrays.valid
                rgb_u8 = rgb_u8[:height, :width]
                filtered = apply_speckle_filter(relative[:1], speckle_filter)[0]
                feature = relative_to_feature(np.nan_to_num(filtered[used], nan=0.0))
                lab = rgb2lab(rgb_u8[used][None].astype(np.float64) / 255.0)[0]
                statistics.add(lab, np.asarray(feature, dtype=np.float64))
            sources[pair.name] = {
                "split": split,
                "sar": str(pair.sar),
                "optical": str(pair.optical),
                "height": int(arrays.valid.shape[0]),
                "width": int(arrays.valid.shape[1]),
                "input_scale": arrays.input_scale,
                "reference": references,
                "reprojected": bool(arrays.reprojected),
                "valid_fraction": float(arrays.valid.mean()),
                "n_chips": len(chips),
                "n_dropped": dict(chip_drops),
            }
            if not chips:
                logger.warning(
                    "%s: no usable chip (dropped: %s)",
                    pair.name,
                    dict(chip_drops) or "image smaller than a chip",
                )
        shards = {
            split: [path.name for path in writer.close()] for split, writer in writers.items()
        }
    finally:
        for writer in writers.values():
            writer.__exit__(None, None, None)

    if n_chips["train"] == 0:
        raise InputError(
            f"no usable training chip (dropped: {dict(dropped) or 'images smaller than a chip'}); "
            "lower --chip-size, raise --max-nodata or check the inputs"
        )
    if split_names and "val" not in split_names:
        logger.warning("No validation images (too few pairs or --val-fraction 0)")
    scale = scales.pop() if len(scales) == 1 else "mixed"
    return {
        "format_version": STATS_FORMAT_VERSION,
        "package_version": __version__,
        "n_chips": {split: int(n_chips[split]) for split in split_names},
        "n_images": {split: int(n_images[split]) for split in split_names},
        "n_dropped": {reason: int(count) for reason, count in sorted(dropped.items())},
        "chip_size": chip_size,
        "stride": stride,
        "bands": list(names_seen or ()),
        "input_scale": scale,
        "optical_convention": optical_convention,
        "normalization": normalization.to_dict(),
        "normalization_reference": "per source image and band, over the SAR's valid pixels",
        "speckle_filter": speckle_filter.to_dict(),
        **statistics.to_dict(),
        "baseline_feature": "s = relative_to_feature(speckle-filtered relative intensity, first band)",
        "sar_value_range": {
            "raw": [float(v) for v in raw_range] if np.isfinite(raw_range[0]) else None,
            "linear": [float(v) for v in linear_range] if np.isfinite(linear_range[0]) else None,
        },
        "shards": shards,
        "sources": sources,
    }


def _update_range(bounds: list[float], values: np.ndarray) -> None:
    finite = values[np.isfinite(values)]
    if finite.size:
        bounds[0] = min(bounds[0], float(finite.min()))
        bounds[1] = max(bounds[1], float(finite.max()))


def _replace_folder(temporary: Path, out_dir: Path, overwrite: bool) -> None:
    """Move the finished temporary folder into place, replacing ``out_dir`` when allowed."""
    publish(temporary, out_dir, overwrite)
