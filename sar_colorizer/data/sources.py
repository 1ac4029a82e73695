"""Training on several chip folders (sources) at once, with per-source sampling weights.

Each source is a folder written by ``sarcolor preprocess`` (one dataset, one chip size). Small
datasets would drown among large ones if their chips were simply pooled (30 BigEarthNet patches
give 30 chips of 128 px, 76 Los Angeles fragments give about 1000 chips of 256 px), so the
chips of each training batch are drawn from the sources at random with the sources' weights
(``tf.data.Dataset.sample_from_datasets``). Sources of one crop size share every batch, so batch
normalisation sees the mixture; sources of different crop sizes take turns by whole batches
(a batch has one shape; the network is fully convolutional).

Validation uses the validation images of every source (split by source image in each
``preprocess`` run, never by chip), each source's chips repeated so that the sources weigh in
the validation loss as in training (:func:`validation_repeats`): the model is chosen for the
mixture it is trained on, not for whichever source has the most validation chips. The statistics the model and its baselines need (AB
histogram, tone curve, mean colour, linear regression) are combined with the same weights, so
they describe the mixture the network is trained on.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from sar_colorizer.errors import InputError

if TYPE_CHECKING:
    from tensorflow.data import Dataset

logger = logging.getLogger(__name__)


def as_sources(data_dirs: str | Path | Sequence[str | Path]) -> list[Path]:
    """One folder or several, as a list of paths."""
    if isinstance(data_dirs, (str, Path)):
        return [Path(data_dirs)]
    sources = [Path(folder) for folder in data_dirs]
    if not sources:
        raise InputError("no chip folder given; give one or more folders from 'sarcolor preprocess'")
    if len(set(map(str, sources))) != len(sources):
        raise InputError("a chip folder is given twice; give each folder once")
    return sources


def source_weights(weights: Sequence[float] | None, n_sources: int) -> list[float]:
    """Normalised sampling weights, one per source (equal when None)."""
    if weights is None or len(weights) == 0:
        return [1.0 / n_sources] * n_sources
    if len(weights) != n_sources:
        raise InputError(
            f"{len(weights)} source weight(s) for {n_sources} chip folder(s); give one per folder"
        )
    values = [float(w) for w in weights]
    if any(not math.isfinite(w) or w < 0 for w in values) or sum(values) <= 0:
        raise InputError(f"source weights {values} must be >= 0 and not all 0")
    total = sum(values)
    return [w / total for w in values]


def combine_stats(
    stats: Sequence[dict[str, Any]],
    weights: Sequence[float],
    polarisations: Sequence[str] | None = None,
) -> dict[str, Any]:
    """Statistics of a weighted mixture of sources, in the layout of one ``stats.json``.

    Every source contributes in proportion to its weight, whatever its pixel count: the AB
    histogram and the baselines' sums are rescaled per source, the tone and SAR feature
    quantiles averaged (the quantile function of the mixture of the sources' training sets is
    approximated by their weighted mean). Counts (chips, images) are summed.

    With ``polarisations`` (a network whose polarisations are each optional) the sources may
    hold different ones; the combined ``bands`` are ``polarisations``.

    Raises:
        InputError: The sources disagree on bands (without ``polarisations``) or optical
            colour convention.
    """
    if polarisations is not None:
        return combine_stats([{**s, "bands": list(polarisations)} for s in stats], weights)
    if len(stats) == 1:
        return dict(stats[0])
    bands = {tuple(s.get("bands") or ()) for s in stats}
    if len(bands) > 1:
        raise InputError(
            f"the chip folders have different SAR bands ({', '.join('+'.join(b) for b in bands)}); "
            "preprocess them with the same --bands"
        )
    conventions = {s.get("optical_convention", "as-is") for s in stats}
    if len(conventions) > 1:
        raise InputError(
            f"the chip folders use different optical conventions ({', '.join(sorted(conventions))}); "
            "preprocess them with the same --optical-convention"
        )
    combined = dict(stats[0])
    ab_total = np.zeros_like(np.asarray(stats[0]["ab_histogram"]["counts"], dtype=np.float64))
    for source, weight in zip(stats, weights, strict=True):
        counts = np.asarray(source["ab_histogram"]["counts"], dtype=np.float64)
        ab_total += weight * counts / max(counts.sum(), 1.0)
    scale = 1e9  # keep integer-looking counts with plenty of resolution
    combined["ab_histogram"] = {
        **stats[0]["ab_histogram"],
        "counts": np.round(ab_total * scale).astype(np.int64).tolist(),
    }
    for key in ("l_quantiles", "sar_feature_quantiles"):
        curves = np.array([s[key] for s in stats], dtype=np.float64)
        combined[key] = [float(v) for v in np.maximum.accumulate(np.average(curves, axis=0, weights=weights))]
    combined.update(_combine_baselines(stats, weights))
    for key in ("n_chips", "n_images"):
        total: dict[str, int] = {}
        for source in stats:
            for split, count in (source.get(key) or {}).items():
                total[split] = total.get(split, 0) + int(count)
        combined[key] = total
    combined["n_train_pixels"] = int(sum(int(s.get("n_train_pixels", 0)) for s in stats))
    combined["chip_size"] = max(int(s["chip_size"]) for s in stats)
    combined["sources"] = {name: info for s in stats for name, info in (s.get("sources") or {}).items()}
    scales = {s.get("input_scale") for s in stats}
    combined["input_scale"] = scales.pop() if len(scales) == 1 else "mixed"
    return combined


def _combine_baselines(stats: Sequence[dict[str, Any]], weights: Sequence[float]) -> dict[str, Any]:
    from sar_colorizer.baselines import BaselineAccumulator

    if all("baseline_sums" in s for s in stats):
        accumulator = BaselineAccumulator()
        for source, weight in zip(stats, weights, strict=True):
            sums = source["baseline_sums"]
            factor = weight / max(float(sums["count"]), 1.0)
            accumulator.count += factor * float(sums["count"])
            accumulator.sum_s += factor * float(sums["sum_s"])
            accumulator.sum_ss += factor * float(sums["sum_ss"])
            accumulator.sum_ab = accumulator.sum_ab + factor * np.asarray(sums["sum_ab"])
            accumulator.sum_s_ab = accumulator.sum_s_ab + factor * np.asarray(sums["sum_s_ab"])
        return {
            "mean_colour": accumulator.mean_colour(),
            "linear_regression": accumulator.linear_regression(),
        }
    # Chip folders written before the sums were recorded: weighted means of the fitted values.
    mean = np.average([s["mean_colour"] for s in stats], axis=0, weights=weights)
    regression = {
        channel: [
            float(v)
            for v in np.average(
                [s["linear_regression"][channel] for s in stats], axis=0, weights=weights
            )
        ]
        for channel in ("a", "b")
    }
    return {"mean_colour": [float(v) for v in mean], "linear_regression": regression}


def source_crop(crop_size: int | None, chip_size: int, multiple: int = 1) -> int | None:
    """The training crop for a source: the configured crop, but never larger than its chips
    (then the largest multiple of the network's tile ``multiple`` that fits in a chip)."""
    if crop_size is None or crop_size <= chip_size:
        return crop_size
    fitted = chip_size // multiple * multiple
    if fitted < 1:
        raise InputError(
            f"chips of {chip_size} px are smaller than the network's tile multiple {multiple}; "
            "preprocess with a larger --chip-size or train a shallower network"
        )
    return fitted


def validation_repeats(n_val_chips: Sequence[int], weights: Sequence[float]) -> list[int]:
    """How many times to repeat each source's validation chips so that each source's share of
    the validation chips follows its sampling weight (the largest share is not repeated).

    >>> validation_repeats([176, 4], [0.5, 0.5])   # 176 LA chips, 4 BigEarthNet chips
    [1, 44]
    >>> validation_repeats([176, 4], [0.8, 0.2]), validation_repeats([10, 0], [0.5, 0.5])
    ([1, 11], [1, 1])
    """
    per_weight = [n / w for n, w in zip(n_val_chips, weights, strict=True) if n and w > 0]
    if not per_weight:
        return [1] * len(n_val_chips)
    base = max(per_weight)
    return [
        max(1, round(w * base / n)) if n and w > 0 else 1
        for n, w in zip(n_val_chips, weights, strict=True)
    ]


def mixed_dataset(
    datasets: Sequence[Dataset], weights: Sequence[float], seed: int, batch_size: int | None = None
) -> Dataset:
    """Training batches drawn from the per-source batched datasets with the given probabilities.

    With ``batch_size`` and sources of one crop size, each batch mixes chips of every source
    (drawn one by one with the weights): batch normalisation then learns statistics of the
    mixture it is applied to. Batches drawn whole from one source at a time make each source's
    batch statistics differ from the moving averages used at inference, which made the
    validation loss of a Los Angeles + BigEarthNet run climb after a few epochs. Sources of
    different crop sizes cannot share a batch; their batches are drawn whole.
    """
    from sar_colorizer._tf import import_tensorflow

    tf = import_tensorflow()
    if len(datasets) == 1:
        return datasets[0]
    weights = [float(w) for w in weights]
    shapes = {tuple(ds.element_spec[0].shape[1:]) for ds in datasets}
    if batch_size is not None and len(shapes) == 1:
        chips = tf.data.Dataset.sample_from_datasets(
            [ds.unbatch() for ds in datasets], weights=weights, seed=seed,
            stop_on_empty_dataset=False,
        )
        return chips.batch(batch_size, drop_remainder=True).prefetch(tf.data.AUTOTUNE)
    return tf.data.Dataset.sample_from_datasets(
        list(datasets), weights=weights, seed=seed, stop_on_empty_dataset=False
    )
