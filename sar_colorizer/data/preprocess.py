"""Turning co-registered SAR / optical pairs into training chips: the library behind
``sarcolor preprocess``.

For every source pair: read both images onto the SAR grid (reprojecting the optical image when the
grids differ), bring the SAR to relative intensity with a reference computed over the *whole
source image* (:func:`sar_colorizer.sar.radiometry.raw_to_relative`, as inference does for a
whole scene, so a chip's brightness means what it means at inference), cut chips, drop those
with too much nodata or no texture, and write them to sharded TFRecords. The split into train
and validation is made by source image: chips of one image overlap in content and must never sit
on both sides.

``stats.json`` (:mod:`sar_colorizer.data.stats`) records what training and inference need;
``pairs.csv`` lists the source images and their split.
"""

from __future__ import annotations

import csv
import dataclasses
import logging
import shutil
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from sar_colorizer.data.chips import Chip, ChipFilter, chip_grid, cut_chips
from sar_colorizer.data.layouts import assign_splits, find_pairs
from sar_colorizer.data.pairs import (
    FLAG_COLUMN,
    FLAGGED_CHOICES,
    Pair,
    PairArrays,
    check_pair,
    is_flagged,
    read_pair,
)
from sar_colorizer.data.stats import STATS_FORMAT_VERSION, TrainingStatistics, write_stats
from sar_colorizer.data.tfrecord import ShardWriter, encode_example, plan_shards
from sar_colorizer.errors import InputError, OutputExistsError
from sar_colorizer.io.atomic import new_temporary_folder, publish
from sar_colorizer.sar.radiometry import (
    Normalization,
    raw_to_relative,
    relative_to_feature,
    to_linear_power,
)
from sar_colorizer.signals import raise_if_interrupted
from sar_colorizer.version import __version__

if TYPE_CHECKING:
    from sar_colorizer.sar.speckle import SpeckleFilter

logger = logging.getLogger(__name__)

SOURCES_MANIFEST = "pairs.csv"  # the source images and their split, readable by eval/find_pairs
#: Chips of images smaller than the chip size are a multiple of this (the tile multiple of the
#: shipped network: downsample 4 x 2^depth 4).
CHIP_MULTIPLE = 64


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


@dataclass(frozen=True)
class _ChipSettings:
    """How every source image of one run is read and cut (see :func:`preprocess`)."""

    chip_size: int
    stride: int
    chip_filter: ChipFilter
    bands: str | Sequence[str | int] | None
    band_names: Sequence[str] | None
    input_scale: str
    normalization: Normalization
    speckle_filter: SpeckleFilter
    chips_per_shard: int
    optical_convention: str
    optical_offset: float | None


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
    normalization: Normalization | None = None,
    speckle_filter: SpeckleFilter | None = None,
    val_fraction: float = 0.15,
    include_test: bool = False,
    flagged: str = "exclude",
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
        input_path: Folder of pairs or CSV manifest (see :func:`sar_colorizer.data.layouts.find_pairs`).
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
        flagged: Pairs whose optical image the manifest flags ``cloud_or_snow``: ``"exclude"``
            leaves them out (before the validation draw; listed in ``stats.json`` as
            ``excluded_flagged``), ``"include"`` cuts chips from them like the rest.
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
    from sar_colorizer.color.convention import check_convention
    from sar_colorizer.sar.speckle import SpeckleFilter

    check_convention(optical_convention)
    out_dir = Path(out_dir)
    stride = _check_arguments(out_dir, overwrite, chip_size, stride)
    chip_filter = chip_filter or ChipFilter()
    if band_names is not None:
        band_names = [name.strip() for name in band_names]

    pairs, flagged_out = _without_flagged(find_pairs(input_path), flagged, input_path)
    splits = assign_splits(pairs, val_fraction=val_fraction, seed=seed, include_test=include_test)
    work = [pair for pair in pairs if splits[pair.name] is not None]
    if not work:
        raise InputError(
            f"{input_path}: every pair is labelled test; pass --include-test or add train pairs"
        )

    # Check every pair from its header before writing anything: fail in seconds, not after hours.
    shapes = {pair.name: check_pair(pair) for pair in work}
    requested = chip_size
    chip_size, stride = _adapt_grid(list(shapes.values()), chip_size, stride, chip_multiple)
    expected = _expected_chips(work, shapes, splits, chip_size, stride)
    per_split = Counter(splits[pair.name] for pair in work)
    logger.info("%d pair(s): %s", len(work),
                ", ".join(f"{k} {v}" for k, v in sorted(per_split.items())))
    settings = _ChipSettings(
        chip_size=chip_size,
        stride=stride,
        chip_filter=chip_filter,
        bands=bands,
        band_names=band_names,
        input_scale=input_scale,
        normalization=normalization or Normalization(),
        speckle_filter=speckle_filter or SpeckleFilter(),
        chips_per_shard=chips_per_shard,
        optical_convention=optical_convention,
        optical_offset=optical_offset,
    )

    root = Path(input_path) if Path(input_path).is_dir() else Path(input_path).parent
    stats = _publish_chips(
        out_dir, overwrite, work, splits, expected, settings, progress, flagged_out, root,
        {
            "input": str(Path(input_path).resolve()),
            "chip_size": requested,
            "chip_size_used": chip_size,
            "stride": stride,
            **chip_filter.to_dict(),
            **_recorded_settings(
                bands=bands, band_names=band_names, input_scale=input_scale,
                optical_convention=optical_convention, optical_offset=optical_offset,
                val_fraction=val_fraction, include_test=include_test, flagged=flagged,
                seed=seed, chips_per_shard=chips_per_shard,
            ),
        },
    )
    summary = ", ".join(
        f"{split} {count} chips from {stats['n_images'][split]} images"
        for split, count in stats["n_chips"].items()
    )
    logger.info("Wrote %s: %s", out_dir, summary)
    return stats


def _publish_chips(
    out_dir: Path,
    overwrite: bool,
    work: list[Pair],
    splits: dict[str, str | None],
    expected: Counter[str],
    settings: _ChipSettings,
    progress: bool,
    flagged_out: list[str],
    root: Path,
    recorded: dict[str, Any],
) -> dict[str, Any]:
    """Write the chips, ``stats.json`` (source images relative to ``root``, the folder read)
    and the sources manifest into a temporary folder and publish it as ``out_dir``; nothing is
    left behind on failure."""
    temporary = new_temporary_folder(out_dir)
    try:
        stats = _write_chips(work, splits, temporary, expected, settings, progress, root)
        stats["excluded"] = sorted(name for name, split in splits.items() if split is None)
        stats["excluded_flagged"] = flagged_out
        stats["settings"] = recorded
        write_stats(temporary, stats)
        _write_sources_manifest(temporary / SOURCES_MANIFEST, stats["sources"], work)
        publish(temporary, out_dir, overwrite)
    except BaseException:
        shutil.rmtree(temporary, ignore_errors=True)
        raise
    return stats


def _check_arguments(out_dir: Path, overwrite: bool, chip_size: int, stride: int | None) -> int:
    """Refuse an existing output without ``overwrite`` and a chip grid that cannot work;
    returns the stride (default: the chip size)."""
    if out_dir.exists() and not overwrite:
        raise OutputExistsError(f"{out_dir} exists; pass --overwrite to replace it")
    if chip_size < 8:
        raise InputError(f"chip size {chip_size} is too small; use 8 px or more (e.g. 256)")
    stride = chip_size if stride is None else stride
    if stride < 1:
        raise InputError(f"stride {stride} must be >= 1 px")
    return stride


def _expected_chips(
    work: Sequence[Pair],
    shapes: dict[str, tuple[int, int]],
    splits: dict[str, str | None],
    chip_size: int,
    stride: int,
) -> Counter[str]:
    """Chips the grid cuts per split (before the nodata and texture filters), for the bar."""
    expected: Counter[str] = Counter()
    for pair in work:
        height, width = (max(side, chip_size) for side in shapes[pair.name])
        expected[splits[pair.name] or ""] += len(chip_grid(height, width, chip_size, stride))
    return expected


def _recorded_settings(
    *, bands: str | Sequence[str | int] | None, band_names: Sequence[str] | None,
    **settings: Any,
) -> dict[str, Any]:
    """The run's settings as ``stats.json`` records them (with the package version)."""
    return {
        "bands": bands if bands is None or isinstance(bands, str) else list(bands),
        "band_names": list(band_names) if band_names is not None else None,
        **settings,
        "package_version": __version__,
    }


def _adapt_grid(
    shapes: list[tuple[int, int]], chip_size: int, stride: int, multiple: int
) -> tuple[int, int]:
    """Chip size and stride of the run: the requested ones, or smaller for small images (see
    :func:`adapt_chip_size`), the stride then no longer than the chip."""
    smallest = min(min(shape) for shape in shapes)
    adapted = min(adapt_chip_size(min(shape), chip_size, multiple) for shape in shapes)
    if adapted == chip_size:
        return chip_size, stride
    logger.info(
        "images as small as %d px: %d-px chips (smaller images padded with nodata)",
        smallest,
        adapted,
    )
    return adapted, adapted if stride == chip_size else min(stride, adapted)


def _without_flagged(
    pairs: list[Pair], flagged: str, input_path: str | Path
) -> tuple[list[Pair], list[str]]:
    """``pairs`` less those flagged ``cloud_or_snow`` when ``flagged`` is ``"exclude"``, and the
    names left out (logged).

    Raises:
        InputError: ``flagged`` is unknown, or every pair is flagged and left out.
    """
    if flagged not in FLAGGED_CHOICES:
        raise InputError(f"flagged must be one of {', '.join(FLAGGED_CHOICES)}, not {flagged!r}")
    if flagged == "include":
        return pairs, []
    left_out = sorted(pair.name for pair in pairs if is_flagged(pair))
    kept = [pair for pair in pairs if not is_flagged(pair)]
    if not kept:
        raise InputError(f"{input_path}: every pair is flagged {FLAG_COLUMN}; pass --flagged "
                         "include to cut chips from them anyway")
    if left_out:
        logger.info("left out %d pair(s) flagged %s (their optical image does not show the "
                    "surface colour; --flagged include keeps them): %s", len(left_out),
                    FLAG_COLUMN, ", ".join(left_out))
    return kept, left_out


def _write_sources_manifest(
    path: Path, sources: dict[str, dict[str, Any]], pairs: list[Pair]
) -> None:
    """``sar,optical,split,cloud_or_snow`` of every source image, absolute paths: ``sarcolor
    eval OUT_DIR --split val`` then scores whole validation images (what ``predict`` would
    produce), flagged ones apart."""
    by_name = {pair.name: pair for pair in pairs}
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["sar", "optical", "split", FLAG_COLUMN])
        for name, source in sources.items():
            pair = by_name[name]
            writer.writerow([Path(pair.sar).resolve(), Path(pair.optical).resolve(),
                             source["split"], int(source[FLAG_COLUMN])])


# --------------------------------------------------------------------------------------------
# Chip writing, image by image
# --------------------------------------------------------------------------------------------


@dataclass
class _SourceImage:
    """One source pair on the SAR grid, ready to cut.

    Attributes:
        arrays: What :func:`read_pair` read.
        relative: ``(C, H, W)`` float32 unfiltered relative intensity, NaN where not valid.
        references: Per band, the linear power that maps to relative intensity 1.
        rgb_u8: ``(H, W, 3)`` uint8 sRGB of the optical image.
    """

    arrays: PairArrays
    relative: np.ndarray
    references: tuple[float, ...]
    rgb_u8: np.ndarray

    @property
    def sar_valid(self) -> np.ndarray:
        """Where the SAR alone holds data (the pixels its references come from)."""
        arrays = self.arrays
        return arrays.sar_valid if arrays.sar_valid is not None else arrays.valid


@dataclass
class _Tally:
    """Counts, sources and value ranges of the images written so far, for ``stats.json``."""

    statistics: TrainingStatistics = field(default_factory=TrainingStatistics)
    n_chips: Counter[str] = field(default_factory=Counter)
    n_images: Counter[str] = field(default_factory=Counter)
    dropped: Counter[str] = field(default_factory=Counter)
    sources: dict[str, dict[str, Any]] = field(default_factory=dict)
    scales: set[str] = field(default_factory=set)
    band_names: tuple[str, ...] | None = None
    raw_range: list[float] = field(default_factory=lambda: [np.inf, -np.inf])
    linear_range: list[float] = field(default_factory=lambda: [np.inf, -np.inf])
    root: Path | None = None

    def check_bands(self, pair: Pair, names: tuple[str, ...]) -> None:
        """Every pair must bring as many SAR bands as the first one."""
        if self.band_names is None:
            self.band_names = names
        elif len(names) != len(self.band_names):
            raise InputError(
                f"pair {pair.name}: {len(names)} SAR band(s) but earlier pairs have "
                f"{len(self.band_names)}; select the same bands everywhere with --bands"
            )

    def add_image(
        self,
        pair: Pair,
        split: str,
        image: _SourceImage,
        chips: list[Chip],
        drops: Counter[str],
    ) -> None:
        from sar_colorizer.bundle import portable_path

        arrays = image.arrays
        self.scales.add(arrays.input_scale)
        raw = arrays.sar[:, image.sar_valid]
        _update_range(self.raw_range, raw)
        _update_range(self.linear_range, to_linear_power(raw, arrays.input_scale))
        self.dropped.update(drops)
        self.n_chips[split] += len(chips)
        self.n_images[split] += 1
        self.sources[pair.name] = {
            "split": split,
            FLAG_COLUMN: is_flagged(pair),
            # Relative to the folder read (names where outside it): the record travels into
            # bundle.json, which must not carry the paths of the machine that trained it.
            "sar": portable_path(pair.sar, self.root),
            "optical": portable_path(pair.optical, self.root),
            "height": int(arrays.valid.shape[0]),
            "width": int(arrays.valid.shape[1]),
            "input_scale": arrays.input_scale,
            "reference": list(image.references),
            "reprojected": bool(arrays.reprojected),
            "valid_fraction": float(arrays.valid.mean()),
            "n_chips": len(chips),
            "n_dropped": dict(drops),
        }
        if not chips:
            logger.warning(
                "%s: no usable chip (dropped: %s)",
                pair.name,
                dict(drops) or "image smaller than a chip",
            )


def _write_chips(
    work: list[Pair],
    splits: dict[str, str | None],
    folder: Path,
    expected: Counter[str],
    settings: _ChipSettings,
    progress: bool,
    root: Path | None = None,
) -> dict[str, Any]:
    """Write the chips of every pair into ``folder``; returns ``stats.json`` but for
    ``excluded`` and ``settings`` (source paths relative to ``root``, the folder read)."""
    from sar_colorizer.progress import progress_bar

    split_names = [
        split for split in ("train", "val", "test") if any(splits[p.name] == split for p in work)
    ]
    tally = _Tally(root=root)
    with _shard_writers(folder, split_names, expected, settings.chips_per_shard) as writers:
        for pair in progress_bar(work, desc="preprocess", unit="images", enabled=progress):
            raise_if_interrupted()
            split = splits[pair.name] or ""
            arrays = _read_pair(pair, settings)
            tally.check_bands(pair, arrays.band_names)
            image = _source_image(arrays, settings)
            chips, drops = _cut_image(image, settings)
            for chip in chips:
                writers[split].write(encode_example(chip.sar, chip.valid, chip.rgb, pair.name))
            if split == "train" and chips:
                tally.statistics.add(*_training_pixels(image, chips, settings))
            tally.add_image(pair, split, image, chips, drops)
        shards = {
            split: [path.name for path in writer.close()] for split, writer in writers.items()
        }

    if tally.n_chips["train"] == 0:
        raise InputError(
            f"no usable training chip (dropped: {dict(tally.dropped) or 'images smaller than a chip'}); "
            "lower --chip-size, raise --max-nodata or check the inputs"
        )
    if split_names and "val" not in split_names:
        logger.warning("No validation images (too few pairs or --val-fraction 0)")
    return _chip_stats(tally, split_names, settings, shards)


@contextmanager
def _shard_writers(
    folder: Path, split_names: list[str], expected: Counter[str], chips_per_shard: int
) -> Iterator[dict[str, ShardWriter]]:
    """One :class:`ShardWriter` per split, all closed on leaving (also on an error)."""
    with ExitStack() as stack:
        yield {
            split: stack.enter_context(
                ShardWriter(folder, split, plan_shards(expected[split], chips_per_shard))
            )
            for split in split_names
        }


def _read_pair(pair: Pair, settings: _ChipSettings) -> PairArrays:
    return read_pair(
        pair,
        bands=settings.bands,
        input_scale=settings.input_scale,
        band_names=settings.band_names,
        optical_convention=settings.optical_convention,
        optical_offset=settings.optical_offset,
    )


def _source_image(arrays: PairArrays, settings: _ChipSettings) -> _SourceImage:
    """The pair's SAR as relative intensity referenced to the whole image, its optical as 8 bit."""
    sar_valid = arrays.sar_valid if arrays.sar_valid is not None else arrays.valid
    relative, references = raw_to_relative(
        arrays.sar, settings.normalization, arrays.input_scale, sar_valid
    )
    relative = np.where(arrays.valid[None], relative, np.nan)
    rgb_u8 = np.clip(np.round(arrays.optical_rgb * 255.0), 0, 255).astype(np.uint8)
    return _SourceImage(arrays, relative, references, rgb_u8)


def _cut_image(image: _SourceImage, settings: _ChipSettings) -> tuple[list[Chip], Counter[str]]:
    """The usable chips of an image and the count of dropped ones by reason."""
    sar_hwc = np.moveaxis(image.relative, 0, -1)
    valid = image.arrays.valid
    rgb_u8 = image.rgb_u8
    chip_size = settings.chip_size
    chip_filter = settings.chip_filter
    height, width = valid.shape
    if height < chip_size or width < chip_size:
        # One chip holds the whole image; the padding is nodata the loss ignores and does not
        # count against the chip's nodata limit.
        padded = (max(height, chip_size), max(width, chip_size))
        pad_fraction = 1.0 - height * width / (padded[0] * padded[1])
        sar_hwc = _pad_to(np.nan_to_num(sar_hwc, nan=0.0), *padded)
        valid = _pad_to(valid, *padded)
        rgb_u8 = _pad_to(rgb_u8, *padded)
        chip_filter = dataclasses.replace(
            chip_filter,
            max_nodata_fraction=min(1.0, chip_filter.max_nodata_fraction + pad_fraction),
        )
    return cut_chips(sar_hwc, valid, rgb_u8, chip_size, settings.stride, chip_filter)


def _training_pixels(
    image: _SourceImage, chips: list[Chip], settings: _ChipSettings
) -> tuple[np.ndarray, np.ndarray]:
    """``(lab, feature)`` of the valid pixels under the written chips: ``(N, 3)`` CIE LAB of the
    optical image and ``(N,)`` SAR feature of the speckle-filtered first band."""
    from skimage.color import rgb2lab

    from sar_colorizer.sar.speckle import apply_speckle_filter

    size = settings.chip_size
    used = np.zeros_like(image.arrays.valid)
    for chip in chips:
        used[chip.row : chip.row + size, chip.col : chip.col + size] = True
    used &= image.arrays.valid
    filtered = apply_speckle_filter(image.relative[:1], settings.speckle_filter)[0]
    feature = relative_to_feature(np.nan_to_num(filtered[used], nan=0.0))
    lab = rgb2lab(image.rgb_u8[used][None].astype(np.float64) / 255.0)[0]
    return lab, np.asarray(feature, dtype=np.float64)


def _chip_stats(
    tally: _Tally, split_names: list[str], settings: _ChipSettings, shards: dict[str, list[str]]
) -> dict[str, Any]:
    scale = tally.scales.pop() if len(tally.scales) == 1 else "mixed"
    raw_range, linear_range = tally.raw_range, tally.linear_range
    return {
        "format_version": STATS_FORMAT_VERSION,
        "package_version": __version__,
        "n_chips": {split: int(tally.n_chips[split]) for split in split_names},
        "n_images": {split: int(tally.n_images[split]) for split in split_names},
        "n_dropped": {reason: int(count) for reason, count in sorted(tally.dropped.items())},
        "chip_size": settings.chip_size,
        "stride": settings.stride,
        "bands": list(tally.band_names or ()),
        "input_scale": scale,
        "optical_convention": settings.optical_convention,
        "normalization": settings.normalization.to_dict(),
        "normalization_reference": "per source image and band, over the SAR's valid pixels",
        "speckle_filter": settings.speckle_filter.to_dict(),
        **tally.statistics.to_dict(),
        "baseline_feature": "s = relative_to_feature(speckle-filtered relative intensity, first band)",
        "sar_value_range": {
            "raw": [float(v) for v in raw_range] if np.isfinite(raw_range[0]) else None,
            "linear": [float(v) for v in linear_range] if np.isfinite(linear_range[0]) else None,
        },
        "shards": shards,
        "sources": tally.sources,
    }


def _pad_to(array: np.ndarray, height: int, width: int) -> np.ndarray:
    """Pad the first two axes at the end with zeros up to ``height`` x ``width``."""
    pad = [(0, height - array.shape[0]), (0, width - array.shape[1])]
    pad += [(0, 0)] * (array.ndim - 2)
    return np.pad(array, pad)


def _update_range(bounds: list[float], values: np.ndarray) -> None:
    finite = values[np.isfinite(values)]
    if finite.size:
        bounds[0] = min(bounds[0], float(finite.min()))
        bounds[1] = max(bounds[1], float(finite.max()))
