"""In-graph twin of :func:`sar_colorizer.sar.radiometry.relative_to_feature` in ``keras.ops``.

The network takes relative intensity and computes its dB feature inside the graph
(:class:`sar_colorizer.nets.layers.LogIntensity`), as does the compiled colour conversion of
inference; both use this function, with the constants of :mod:`sar_colorizer.sar.radiometry`,
so the feature has one definition in numpy and one in the graph, and a test keeps them equal.

This module imports Keras at the top: it is TensorFlow-only code, never imported by
``sar_colorizer/__init__.py`` or at the top of a command module.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from sar_colorizer._tf import import_keras
from sar_colorizer.sar.radiometry import FEATURE_DB_MIN, INTENSITY_FLOOR

if TYPE_CHECKING:
    from tensorflow import Tensor

keras = import_keras()

_DB_PER_NEPER = 10.0 / math.log(10.0)  # 10 * log10(x) = ln(x) * 10 / ln(10)


def relative_to_feature_tf(relative: Tensor, db_min: float = FEATURE_DB_MIN) -> Tensor:
    """``clip((10 * log10(max(relative, INTENSITY_FLOOR)) - db_min) / -db_min, 0, 1)``.

    Args:
        relative: Relative intensity in [0, 1] (a float tensor or array of any shape); NaN
            stays NaN, as in the numpy version.
        db_min: dB value mapped to feature 0 (relative intensity 1.0 = 0 dB maps to 1).

    Returns:
        The dB feature in [0, 1], in the dtype of ``relative``.
    """
    ops = keras.ops
    db = ops.log(ops.maximum(relative, INTENSITY_FLOOR)) * _DB_PER_NEPER
    return ops.clip((db - db_min) / -db_min, 0.0, 1.0)
