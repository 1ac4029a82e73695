"""``stats.json``: what ``sarcolor preprocess`` measured over the training pixels, and its file.

Training and inference need: counts, the AB histogram (for the rarity-weighted loss), the
optical L quantiles (tone curve), the SAR feature quantiles, the baselines (mean colour,
per-pixel linear regression of a and b on the log SAR feature), the SAR value range and every
setting used. :class:`TrainingStatistics` accumulates the pixel statistics image by image;
:func:`write_stats` and :func:`read_stats` write and read the file.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from sar_colorizer.baselines import BaselineAccumulator
from sar_colorizer.color.constants import AB_HISTOGRAM_EDGES
from sar_colorizer.errors import InputError

STATS_FILE = "stats.json"
STATS_FORMAT_VERSION = 1
_QUANTILE_BINS = 20000  # histogram resolution for the 101 quantiles: 0.005 L units, 5e-5 feature


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
        edges = AB_HISTOGRAM_EDGES
        lim = (edges[0], edges[-1] - 1e-9)
        counts, _, _ = np.histogram2d(np.clip(a, *lim), np.clip(b, *lim), bins=[edges, edges])
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


def write_stats(folder: str | Path, stats: dict[str, Any]) -> Path:
    """Write ``stats`` as the ``stats.json`` of ``folder``; returns its path."""
    path = Path(folder) / STATS_FILE
    with open(path, "w", encoding="utf-8") as handle:
        json.dump(stats, handle, indent=1)
    return path


def read_stats(data_dir: str | Path) -> dict[str, Any]:
    """Load ``stats.json`` of a preprocessed folder.

    Raises:
        InputError: The folder has no ``stats.json`` (not written by ``sarcolor preprocess``).
    """
    path = Path(data_dir) / STATS_FILE
    if not path.is_file():
        raise InputError(
            f"{data_dir}: no {STATS_FILE}; give a folder written by 'sarcolor preprocess'"
        )
    with open(path, encoding="utf-8") as handle:
        stats: dict[str, Any] = json.load(handle)
    return stats
