"""stats.json: writing and reading it, and the statistics accumulated over training pixels."""

from __future__ import annotations

import json

import numpy as np
import pytest
from skimage.color import rgb2lab

from sar_colorizer.color.constants import AB_HISTOGRAM_EDGES
from sar_colorizer.data.stats import (
    STATS_FILE,
    TrainingStatistics,
    read_stats,
    write_stats,
)
from sar_colorizer.errors import InputError


def test_read_stats(tmp_path) -> None:
    with pytest.raises(InputError, match="sarcolor preprocess"):
        read_stats(tmp_path)
    (tmp_path / STATS_FILE).write_text(json.dumps({"chip_size": 32}))
    assert read_stats(tmp_path)["chip_size"] == 32


def test_training_statistics_round_trip_through_stats_json(tmp_path) -> None:
    rng = np.random.default_rng(5)
    rgb = rng.uniform(0, 1, (500, 3))
    lab = rgb2lab(rgb[None])[0]
    feature = rng.uniform(0, 1, 500)
    statistics = TrainingStatistics()
    statistics.add(lab[:200], feature[:200])
    statistics.add(lab[200:], feature[200:])
    path = write_stats(tmp_path, statistics.to_dict())
    assert path == tmp_path / STATS_FILE
    stats = read_stats(tmp_path)
    # The AB histogram counts every pixel once, in the bins of its a and b.
    counts = np.asarray(stats["ab_histogram"]["counts"])
    expected, _, _ = np.histogram2d(
        lab[:, 1], lab[:, 2], bins=[AB_HISTOGRAM_EDGES, AB_HISTOGRAM_EDGES]
    )
    np.testing.assert_array_equal(counts, expected)
    assert stats["n_train_pixels"] == 500
    assert stats["mean_colour"] == pytest.approx(lab[:, 1:].mean(axis=0))
    # The extreme quantiles are the extreme values, to the histogram's bin width (0.005 L).
    quantiles = stats["l_quantiles"]
    assert len(quantiles) == 101 and np.all(np.diff(quantiles) >= 0)
    assert quantiles[0] == pytest.approx(lab[:, 0].min(), abs=0.005)
    assert quantiles[-1] == pytest.approx(lab[:, 0].max(), abs=0.005)
