"""Novelty: colour that knows it has never seen such land.

The confidence head (:mod:`sar_colorizer.confidence`) predicts how much the colour varies where
the network has seen similar land. Where the land is unlike anything in training, it has no
reason to predict a large spread, and it does not: on the test splits its sigma ranked the
errors the wrong way round. This module adds the missing part, the distance of the decoder's
features from the training data (deep deterministic uncertainty, Mukhoti et al., CVPR 2023,
with one Gaussian for a regression network), computed inside the model by
:class:`~sar_colorizer.nets.layers.FeatureNovelty` and fitted after training:

1. :func:`fit_feature_density`: the mean and covariance of the decoder features (the input of
   the colour and variance heads, at the network's resolution) over valid pixels of the
   training chips, each chip folder contributing with its sampling weight; a small ridge keeps
   the covariance invertible (ReLU features have dead channels). ``typical`` is the median of
   ``d2`` (squared Mahalanobis distance per dimension) over those pixels.
2. :func:`choose_novelty`: on the validation pixels (never a test split), the novelty weight
   that fits the predicted spread to the errors best (Gaussian likelihood; the variance becomes
   ``exp(log_variance) + weight * novelty``), then the shrink constant of
   :mod:`sar_colorizer.confidence` with the lowest AB RMSE on that spread.
3. :func:`set_novelty`: write both into the model's layer.

Pure numpy here except :func:`fit_feature_density` and :func:`validation_outputs`, which run the
network (TensorFlow imported lazily).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from sar_colorizer.confidence import SHRINK_CANDIDATES, choose_shrink
from sar_colorizer.errors import InputError

if TYPE_CHECKING:
    import keras
    import tensorflow as tf

logger = logging.getLogger(__name__)

#: Name of the layer that holds the fitted density (:class:`~sar_colorizer.nets.layers.FeatureNovelty`).
NOVELTY_LAYER = "feature_novelty"

#: Name of the layer whose output are the decoder features the density is fitted on.
FEATURES_LAYER = "variance_detach"

#: Candidate novelty weights (normalised AB variance per unit of novelty) :func:`choose_novelty`
#: compares; 0 turns novelty off.
NOVELTY_WEIGHTS = (0.0, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1)

#: Ridge added to the covariance, as a fraction of its mean diagonal.
RIDGE = 1e-3

#: Pixels of training features the density is fitted on (drawn across folders by weight).
FIT_PIXELS = 200_000


@dataclass(frozen=True)
class FeatureDensity:
    """A Gaussian over the decoder features of the training pixels.

    Attributes:
        mean: ``(C,)`` feature mean.
        whitening: ``(C, C)`` lower Cholesky factor ``L`` of the inverse covariance
            (``d2 * C = |(f - mean) @ L|^2``).
        typical: Median of ``d2`` over the fitting pixels.
        n_pixels: Pixels it was fitted on.
    """

    mean: np.ndarray
    whitening: np.ndarray
    typical: float
    n_pixels: int

    @classmethod
    def fit(cls, features: np.ndarray, sample_weights: np.ndarray | None = None,
            ridge: float = RIDGE) -> FeatureDensity:
        """Fit on ``(N, C)`` features (N > C), each pixel counted with its ``sample_weights``
        (None: alike) in the mean, the covariance and the median ``typical``.

        Raises:
            InputError: Too few pixels for a covariance, or non-finite features.
        """
        features = np.asarray(features, dtype=np.float64).reshape(len(features), -1)
        n, channels = features.shape
        if n <= channels:
            raise InputError(f"fitting the feature density needs more pixels ({n}) than feature "
                             f"channels ({channels}); give more training chips")
        if not np.isfinite(features).all():
            raise InputError("the decoder features hold NaN or inf; the model is broken")
        weights = np.ones(n) if sample_weights is None else np.asarray(sample_weights, np.float64)
        if weights.shape != (n,) or not (weights >= 0).all() or weights.sum() <= 0:
            raise InputError(f"sample weights must be {n} numbers >= 0, not all 0")
        mean = np.average(features, axis=0, weights=weights)
        covariance = np.atleast_2d(np.cov(features, rowvar=False, aweights=weights))
        covariance += np.eye(channels) * ridge * max(float(np.trace(covariance)) / channels, 1e-12)
        whitening = np.linalg.cholesky(np.linalg.inv(covariance))
        density = cls(mean.astype(np.float32), whitening.astype(np.float32), 1.0, n)
        typical = _weighted_median(density.distance(features), weights)
        return cls(density.mean, density.whitening, max(typical, 1e-12), n)

    def distance(self, features: np.ndarray) -> np.ndarray:
        """``d2``: squared Mahalanobis distance per feature dimension of ``(..., C)`` features."""
        features = np.asarray(features, dtype=np.float32)
        whitened = (features - self.mean) @ self.whitening
        return np.square(whitened).sum(axis=-1) / np.float32(features.shape[-1])

    def novelty(self, features: np.ndarray) -> np.ndarray:
        """:func:`feature_novelty` of ``features`` under this density."""
        return feature_novelty(self.distance(features), self.typical)


def _weighted_median(values: np.ndarray, weights: np.ndarray) -> float:
    """The value below which half of the total weight lies."""
    order = np.argsort(values, kind="stable")
    cumulative = np.cumsum(weights[order])
    return float(values[order][np.searchsorted(cumulative, 0.5 * cumulative[-1])])


def feature_novelty(d2: np.ndarray, typical: float) -> np.ndarray:
    """``max(0, log(d2 / typical))``: 0 up to the training median, then the log of the excess
    (numpy twin of :class:`~sar_colorizer.nets.layers.FeatureNovelty`)."""
    ratio = np.maximum(np.asarray(d2, dtype=np.float32), np.float32(1e-12)) / np.float32(typical)
    return np.maximum(np.log(ratio), 0.0).astype(np.float32)


def with_novelty(log_variance: np.ndarray, novelty: np.ndarray, weight: float) -> np.ndarray:
    """``log(exp(log_variance) + weight * novelty)`` on both channels of ``(..., 2)``."""
    variance = np.exp(np.asarray(log_variance, dtype=np.float32))
    return np.log(variance + np.float32(weight) * np.asarray(novelty, np.float32)[..., None])


def gaussian_nll(ab_true: np.ndarray, ab_norm: np.ndarray, log_variance: np.ndarray) -> float:
    """Mean Gaussian negative log-likelihood (without the constant) of the true AB under the
    predicted mean and log-variance, summed over a* and b*: how well the spread fits the errors."""
    error = np.square(np.asarray(ab_norm, np.float64) - np.asarray(ab_true, np.float64))
    log_variance = np.asarray(log_variance, np.float64)
    return float(np.mean(np.sum(0.5 * (log_variance + error / np.exp(log_variance)), axis=-1)))


def choose_novelty(
    ab_true: np.ndarray,
    ab_norm: np.ndarray,
    log_variance: np.ndarray,
    novelty: np.ndarray,
    *,
    weights: Sequence[float] = NOVELTY_WEIGHTS,
    shrink_candidates: Sequence[float] = SHRINK_CANDIDATES,
) -> dict[str, Any]:
    """The novelty weight that makes the predicted spread fit the errors best, then the shrink
    constant with the lowest AB RMSE given it, both on validation pixels.

    The weight is a calibration of the spread (lowest Gaussian negative log-likelihood of the
    errors, :func:`gaussian_nll`), so that the sigma ``predict --confidence`` writes stays on
    the scale of the actual error where the land is unfamiliar; the shrink constant then trades
    colour for safety on that spread as :func:`~sar_colorizer.confidence.choose_shrink` does.

    Args:
        ab_true: ``(N, 2)`` true normalised AB.
        ab_norm: ``(N, 2)`` predicted normalised AB.
        log_variance: ``(N, 2)`` the confidence head's log-variance (before novelty).
        novelty: ``(N,)`` :func:`feature_novelty` of the same pixels.
        weights: Novelty weights to compare.
        shrink_candidates: Shrink constants to compare.

    Returns:
        ``{"novelty_weight", "nll": {str(weight): NLL}, "shrink_k", "ab_rmse": {str(k): AB
        RMSE in CIELAB units at the chosen weight}, "ab_rmse_without_novelty": {str(k): AB RMSE
        at weight 0}, "n_pixels"}``.

    Raises:
        InputError: No pixels, or lengths that disagree.
    """
    ab_true = np.asarray(ab_true, np.float32).reshape(-1, 2)
    ab_norm = np.asarray(ab_norm, np.float32).reshape(-1, 2)
    log_variance = np.asarray(log_variance, np.float32).reshape(-1, 2)
    novelty = np.asarray(novelty, np.float32).reshape(-1)
    if not len(ab_true) or not (len(ab_true) == len(ab_norm) == len(log_variance) == len(novelty)):
        raise InputError(
            f"choosing the novelty weight needs as many true, predicted, variance and novelty "
            f"values (got {len(ab_true)}, {len(ab_norm)}, {len(log_variance)}, {len(novelty)})"
        )
    nll = {float(w): gaussian_nll(ab_true, ab_norm, with_novelty(log_variance, novelty, float(w)))
           for w in weights}
    weight = min(nll, key=lambda key: (nll[key], key))
    shrink = choose_shrink(ab_true, ab_norm, with_novelty(log_variance, novelty, weight),
                           shrink_candidates)
    without = choose_shrink(ab_true, ab_norm, log_variance, shrink_candidates)
    return {
        "novelty_weight": weight,
        "nll": {f"{w:g}": round(v, 4) for w, v in nll.items()},
        "shrink_k": shrink["shrink_k"],
        "ab_rmse": shrink["ab_rmse"],
        "ab_rmse_without_novelty": without["ab_rmse"],
        "n_pixels": shrink["n_pixels"],
    }


# --------------------------------------------------------------------------------------------
# The model's side (TensorFlow)


def has_novelty(model: keras.Model) -> bool:
    """Whether ``model`` has a :class:`~sar_colorizer.nets.layers.FeatureNovelty` layer."""
    return any(layer.name == NOVELTY_LAYER for layer in model.layers)


def _feature_model(model: keras.Model) -> keras.Model:
    """``model``'s input -> (decoder features at the network's resolution, output)."""
    from sar_colorizer._tf import import_keras

    keras_api = import_keras()
    return keras_api.Model(model.inputs, [model.get_layer(FEATURES_LAYER).output, model.outputs[0]])


def _pooled_valid(valid: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """``(B, H, W)`` valid weights -> ``(B, h, w)`` True where a whole ``H/h`` block is valid."""
    batch, height, width = valid.shape
    fy, fx = height // size[0], width // size[1]
    blocks = valid[:, : size[0] * fy, : size[1] * fx].reshape(batch, size[0], fy, size[1], fx)
    return blocks.min(axis=(2, 4)) > 0


def fit_feature_density(
    model: keras.Model,
    datasets: Sequence[tf.data.Dataset],
    weights: Sequence[float],
    *,
    max_pixels: int = FIT_PIXELS,
    max_batches: int = 200,
    seed: int = 0,
) -> FeatureDensity:
    """Fit the Gaussian of the decoder features on training chips.

    Args:
        model: A trained network with a confidence head.
        datasets: One finite, unaugmented dataset of training ``(x, y)`` batches per chip
            folder (``y[..., 2]`` the valid weight).
        weights: Each folder's sampling weight: its share of the fitted distribution (a folder
            with fewer pixels than its share counts each pixel more).
        max_pixels: Pixels in all.
        max_batches: Batches read per folder at most.
        seed: Seed of the pixel sample.
    """
    extractor = _feature_model(model)
    rng = np.random.default_rng(seed)
    total = float(sum(weights))
    parts, pixel_weights = [], []
    for dataset, weight in zip(datasets, weights, strict=True):
        features = []
        for number, (inputs, targets) in enumerate(dataset):
            if number >= max_batches:
                break
            feature_map = np.asarray(extractor(inputs, training=False)[0])
            valid = _pooled_valid(np.asarray(targets)[..., 2], feature_map.shape[1:3])
            features.append(feature_map[valid])
        pooled = np.concatenate(features) if features else np.zeros((0, 1), np.float32)
        share = int(round(max_pixels * weight / total))
        if len(pooled) > share:
            pooled = pooled[rng.choice(len(pooled), share, replace=False)]
        if not len(pooled):
            raise InputError("a chip folder gave no valid training pixels to fit the novelty "
                             "on; check its chips, or train with --no-novelty")
        parts.append(pooled)
        pixel_weights.append(np.full(len(pooled), weight / total / len(pooled)))
    density = FeatureDensity.fit(np.concatenate(parts), np.concatenate(pixel_weights))
    logger.info("feature density fitted on %d training pixels (%d features, typical d2 %.3g)",
                density.n_pixels, density.mean.shape[0], density.typical)
    return density


def validation_outputs(
    model: keras.Model,
    val_ds: Iterable[tuple[Any, Any]],
    density: FeatureDensity | None,
    *,
    seed: int = 0,
    max_pixels_per_batch: int = 20_000,
) -> dict[str, np.ndarray]:
    """Sampled valid validation pixels: true AB, predicted AB, the head's log-variance (before
    novelty) and, with ``density``, their novelty.

    The head's own log-variance is read from the output with the novelty weight at 0, whatever
    the layer holds (the weight is restored). The novelty is computed at the network's
    resolution and resized bilinearly to the pixels; the model adds it before resizing its
    log-variance, so the two differ slightly along edges, which does not matter for choosing
    one weight for the whole model.
    """
    rng = np.random.default_rng(seed)
    layer = model.get_layer(NOVELTY_LAYER) if has_novelty(model) else None
    saved = None if layer is None else float(np.asarray(layer.novelty_weight))
    if layer is not None:
        layer.novelty_weight.assign(0.0)
    extractor = _feature_model(model) if density is not None else None
    columns: dict[str, list[np.ndarray]] = {"true": [], "mean": [], "log_var": [], "novelty": []}
    try:
        for inputs, targets in val_ds:
            if extractor is not None:
                feature_map, outputs = (np.asarray(t) for t in extractor(inputs, training=False))
            else:
                outputs, feature_map = np.asarray(model(inputs, training=False)), None
            targets = np.asarray(targets)
            index = np.flatnonzero(targets[..., 2].reshape(-1) > 0)
            if len(index) > max_pixels_per_batch:
                index = rng.choice(index, max_pixels_per_batch, replace=False)
            columns["true"].append(targets[..., :2].reshape(-1, 2)[index])
            columns["mean"].append(outputs[..., :2].reshape(-1, 2)[index])
            columns["log_var"].append(outputs[..., 2:4].reshape(-1, 2)[index])
            if density is not None and feature_map is not None:
                columns["novelty"].append(
                    _upsampled(density.novelty(feature_map), targets.shape[1:3]).reshape(-1)[index])
    finally:
        if layer is not None and saved is not None:
            layer.novelty_weight.assign(saved)
    return {key: np.concatenate(value) for key, value in columns.items() if value}


def _upsampled(values: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """``(B, h, w)`` -> ``(B, H, W)`` by bilinear resize (as the network resizes its output)."""
    import cv2

    return np.stack([cv2.resize(v, (size[1], size[0]), interpolation=cv2.INTER_LINEAR)
                     for v in np.asarray(values, np.float32)])


def set_novelty(model: keras.Model, density: FeatureDensity, weight: float) -> None:
    """Write the fitted density and the chosen weight into ``model``'s novelty layer.

    Raises:
        InputError: The model has no novelty layer, or its features have another width.
    """
    if not has_novelty(model):
        raise InputError("the model has no novelty layer; build it with novelty=True")
    layer = model.get_layer(NOVELTY_LAYER)
    channels = int(layer.mean.shape[0])
    if density.mean.shape != (channels,):
        raise InputError(f"the density has {density.mean.shape[0]} features, the model {channels}")
    layer.mean.assign(density.mean)
    layer.whitening.assign(density.whitening)
    layer.typical.assign(float(density.typical))
    layer.novelty_weight.assign(float(weight))


def density_record(density: FeatureDensity) -> dict[str, Any]:
    """What bundle.json records of the density (the arrays live in the model's weights)."""
    return {"features": int(density.mean.shape[0]), "typical_d2": round(float(density.typical), 6),
            "n_pixels": int(density.n_pixels), "ridge": RIDGE,
            "fitted_on": "training chips (each folder by its sampling weight)"}
