"""Colour baselines a colorization model must beat, always scored on the same images.

* ``no_colour``: A = B = 0 (the grey SAR-derived L alone).
* ``mean_colour``: the mean A, B of the training optical images, everywhere.
* ``linear_regression``: per pixel ``A = w0 + w1 * s`` and ``B = w0' + w1' * s``, with ``s``
  the normalised SAR feature value, fitted by least squares on training pixels (the SAR
  colorization benchmarking protocol's "LR4ColSAR", Shen et al., 2023).

The SAR feature ``s`` is :func:`sar_colorizer.sar.radiometry.relative_to_feature` of the
speckle-filtered relative intensity (linear power divided by its 99th percentile, clipped to
[0, 1]): a dB scale mapped from [-25, 0] dB to [0, 1]. Brighter backscatter (urban, rough
surfaces) and darker (water, smooth fields) are the only colour cue these baselines have.

A, B here are CIELAB units (not the network's AB / AB_SCALE). The parameters are fitted at
training time on training data and stored in the bundle's ``bundle.json`` under
``"baselines"``::

    {"mean_colour": [a, b], "linear_regression": {"a": [w0, w1], "b": [w0, w1]}}
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from sar_colorizer.errors import InputError

logger = logging.getLogger(__name__)

#: Baseline names, in report order.
BASELINE_NAMES: tuple[str, ...] = ("no_colour", "mean_colour", "linear_regression")


def _pair(values: Any, what: str) -> tuple[float, float]:
    try:
        first, second = (float(value) for value in values)
    except (TypeError, ValueError) as error:
        raise InputError(f"baselines: {what} must be two numbers, got {values!r}") from error
    return first, second


@dataclass
class BaselineAccumulator:
    """Running sums for the mean colour and the linear regression over many training images.

    Training sets hold billions of pixels; this keeps only seven sums per channel, so the
    baselines are fitted in one streaming pass (float64 sums; exact least squares).

    Example:
        >>> acc = BaselineAccumulator()
        >>> for feature, ab, valid in training_images:  # doctest: +SKIP
        ...     acc.update(feature, ab, valid)
        >>> baselines = acc.result()  # doctest: +SKIP
    """

    count: float = 0.0
    sum_s: float = 0.0
    sum_ss: float = 0.0
    sum_ab: np.ndarray = field(default_factory=lambda: np.zeros(2))
    sum_s_ab: np.ndarray = field(default_factory=lambda: np.zeros(2))

    def update(self, feature: np.ndarray, ab: np.ndarray, valid: np.ndarray | None = None) -> None:
        """Add the pixels of one image.

        Args:
            feature: (...) SAR feature ``s`` per pixel.
            ab: (..., 2) optical a*, b* per pixel in CIELAB units.
            valid: optional (...) boolean mask; non-finite values are left out as well.

        Raises:
            InputError: the shapes do not match.
        """
        feature = np.asarray(feature, dtype=np.float64)
        ab = np.asarray(ab, dtype=np.float64)
        if ab.shape != feature.shape + (2,):
            raise InputError(
                f"baselines: feature shape {feature.shape} and AB shape {ab.shape} do not match "
                "(AB needs a trailing axis of 2)"
            )
        keep = np.isfinite(feature) & np.all(np.isfinite(ab), axis=-1)
        if valid is not None:
            valid = np.asarray(valid, dtype=bool)
            if valid.shape != feature.shape:
                raise InputError(
                    f"baselines: valid mask shape {valid.shape} does not match feature shape "
                    f"{feature.shape}"
                )
            keep &= valid
        s = feature[keep]
        colour = ab[keep]
        self.count += float(s.size)
        self.sum_s += float(np.sum(s))
        self.sum_ss += float(np.sum(s * s))
        self.sum_ab = self.sum_ab + colour.sum(axis=0)
        self.sum_s_ab = self.sum_s_ab + (s[:, None] * colour).sum(axis=0)

    def _check(self) -> None:
        if self.count <= 0:
            raise InputError("baselines: no valid training pixels to fit the baselines on")

    def mean_colour(self) -> list[float]:
        """Mean a*, b* over all pixels added so far."""
        self._check()
        return [float(value) for value in self.sum_ab / self.count]

    def linear_regression(self) -> dict[str, list[float]]:
        """Least-squares ``{"a": [w0, w1], "b": [w0, w1]}`` over all pixels added so far."""
        self._check()
        mean_s = self.sum_s / self.count
        mean_ab = self.sum_ab / self.count
        variance_s = self.sum_ss / self.count - mean_s**2
        covariance = self.sum_s_ab / self.count - mean_s * mean_ab
        # A (near-)constant feature carries no information: fall back to the mean colour.
        if variance_s <= 1e-12 * max(self.sum_ss / self.count, 1e-300):
            slope = np.zeros(2)
        else:
            slope = covariance / variance_s
        intercept = mean_ab - slope * mean_s
        return {
            "a": [float(intercept[0]), float(slope[0])],
            "b": [float(intercept[1]), float(slope[1])],
        }

    def result(self) -> Baselines:
        """The fitted :class:`Baselines`."""
        regression = self.linear_regression()
        return Baselines(
            mean_colour=_pair(self.mean_colour(), "mean_colour"),
            linear_a=_pair(regression["a"], "linear_regression.a"),
            linear_b=_pair(regression["b"], "linear_regression.b"),
        )


@dataclass(frozen=True)
class Baselines:
    """Fitted baseline parameters, in CIELAB units.

    Attributes:
        mean_colour: mean (a*, b*) of the training optical images.
        linear_a: (w0, w1) of ``a* = w0 + w1 * s``.
        linear_b: (w0, w1) of ``b* = w0 + w1 * s``.
    """

    mean_colour: tuple[float, float] = (0.0, 0.0)
    linear_a: tuple[float, float] = (0.0, 0.0)
    linear_b: tuple[float, float] = (0.0, 0.0)

    def to_dict(self) -> dict[str, Any]:
        """The bundle.json ``"baselines"`` entry."""
        return {
            "mean_colour": [float(v) for v in self.mean_colour],
            "linear_regression": {
                "a": [float(v) for v in self.linear_a],
                "b": [float(v) for v in self.linear_b],
            },
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Baselines:
        """Read the bundle.json ``"baselines"`` entry (or a preprocess ``stats.json``).

        Raises:
            InputError: a key is missing or a value is not two numbers.
        """
        try:
            regression = data["linear_regression"]
            return cls(
                mean_colour=_pair(data["mean_colour"], "mean_colour"),
                linear_a=_pair(regression["a"], "linear_regression.a"),
                linear_b=_pair(regression["b"], "linear_regression.b"),
            )
        except (KeyError, TypeError) as error:
            raise InputError(
                "baselines: expected {'mean_colour': [a, b], 'linear_regression': "
                f"{{'a': [w0, w1], 'b': [w0, w1]}}}}, got {dict(data)!r}"
            ) from error

    def predict_ab(self, name: str, feature: np.ndarray) -> np.ndarray:
        """Colour of baseline ``name`` for each pixel.

        Args:
            name: one of :data:`BASELINE_NAMES`.
            feature: (H, W) SAR feature ``s`` (only the shape matters for the first two).

        Returns:
            (H, W, 2) float32 a*, b* in CIELAB units. NaN features (nodata) give NaN colour
            for the linear regression.

        Raises:
            InputError: unknown baseline name.
        """
        feature = np.asarray(feature, dtype=np.float32)
        if name == "no_colour":
            return np.zeros(feature.shape + (2,), dtype=np.float32)
        if name == "mean_colour":
            return np.broadcast_to(
                np.asarray(self.mean_colour, dtype=np.float32), feature.shape + (2,)
            ).copy()
        if name == "linear_regression":
            a = self.linear_a[0] + self.linear_a[1] * feature
            b = self.linear_b[0] + self.linear_b[1] * feature
            return np.stack([a, b], axis=-1).astype(np.float32)
        raise InputError(f"unknown baseline {name!r}; valid names: {', '.join(BASELINE_NAMES)}")
