"""The in-graph dB feature equals the numpy one."""

from __future__ import annotations

import numpy as np
import pytest

tf = pytest.importorskip("tensorflow")

from sar_colorizer.sar.radiometry import FEATURE_DB_MIN, relative_to_feature  # noqa: E402
from sar_colorizer.sar.radiometry_tf import relative_to_feature_tf  # noqa: E402


def test_feature_in_the_graph_equals_the_numpy_feature() -> None:
    rng = np.random.default_rng(4)
    relative = np.concatenate(
        [[0.0, 1e-12, 1e-9, 10 ** (FEATURE_DB_MIN / 10), 1e-3, 1.0, np.nan], rng.random(200)]
    ).astype(np.float32)
    expected = relative_to_feature(relative)

    @tf.function(input_signature=[tf.TensorSpec([None], tf.float32)])
    def in_graph(values):
        return relative_to_feature_tf(values)

    for feature in (
        in_graph(tf.constant(relative)).numpy(),
        np.asarray(relative_to_feature_tf(relative)),
    ):
        np.testing.assert_allclose(feature, expected, atol=1e-6)  # NaN in the same places
        assert feature.dtype == np.float32
