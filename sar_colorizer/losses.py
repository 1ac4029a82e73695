"""Training losses for SAR colorization: rarity-weighted MSE on AB plus a chroma term.

Plain MSE on AB regresses to the mean colour: the outputs have the right hue family but look
pale (``docs/DESIGN_NOTES.md``, "Loss: weighted MSE and a chroma term"). Two counter-measures,
both in :class:`WeightedChromaLoss`:

* class rebalancing as in Zhang, Isola and Efros, "Colorful Image Colorization" (ECCV 2016):
  each pixel's squared error is weighted by the rarity of its *target* colour, looked up in a
  2-D grid of (a, b) bins (:func:`rarity_weights` builds it from the training AB histogram);
* a chroma term ``(|ab_pred| - |ab_true|)^2`` that penalises predicting a colour that is less
  (or more) saturated than the target, whatever the hue.

The AB grid covers normalised AB in [-1, 1], i.e. CIELAB a*, b* in [-110, 110]; the training
statistics use bins of 5 CIELAB units (44 x 44 bins,
:data:`sar_colorizer.color.constants.AB_HISTOGRAM_EDGES`), but any square grid works: bin ``i`` of
``n`` covers ``[-1 + 2 i / n, -1 + 2 (i + 1) / n)``.

This module is TensorFlow/Keras code and imports keras at module top.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np

from sar_colorizer._tf import import_keras
from sar_colorizer.errors import InputError

keras = import_keras()

logger = logging.getLogger(__name__)

#: Added under the square root of the chroma magnitude: keeps its gradient finite at ab = 0.
CHROMA_EPS = 1e-6


def rarity_weights(
    counts: np.ndarray,
    sigma: float = 1.0,
    mix: float = 0.5,
    max_weight: float | None = 20.0,
) -> np.ndarray:
    """Per-bin loss weights that favour rare colours (Zhang et al. 2016, eq. 4).

    ``p`` is the empirical AB distribution of the training targets smoothed with a gaussian of
    ``sigma`` bins; the weight of a bin is ``w ∝ 1 / ((1 - mix) p + mix / Q)`` where ``Q`` is the
    number of bins that occur in the training data (the in-gamut bins). ``mix`` = 0 is full
    rebalancing (every occurring colour counts the same in total), 1 is no rebalancing. Weights
    are scaled so that their expectation under ``p`` is 1 (the loss keeps the scale of plain MSE)
    and, if ``max_weight`` is set, capped at it: the scale is then solved so that
    ``E_p[min(c w, max_weight)] = 1`` still holds exactly. Bins that never occur get the formula's
    value for ``p = 0``, the largest weight (capped); they matter only for colours unseen in
    training.

    Args:
        counts: (nb, nb) pixel counts over (a, b) bins (stats.json's ``ab_histogram.counts``;
            rows are a*, columns b*).
        sigma: Gaussian smoothing of the distribution, in bins (Zhang et al. used 5 CIELAB units
            on bins of 10, i.e. 0.5 bin).
        mix: Weight of the uniform distribution mixed into ``p``, in (0, 1].
        max_weight: Cap on a bin's weight (>= 1), or ``None`` for no cap.

    Returns:
        (nb, nb) float64 weights, ``sum(p * w) == 1`` with ``p`` the smoothed distribution
        (as in the paper; smoothing moves the expectation under the raw histogram little).

    Raises:
        InputError: ``counts`` is not a square 2-D array of non-negative numbers with a
            positive total, or an argument is out of range.
    """
    counts = np.asarray(counts, dtype=np.float64)
    if counts.ndim != 2 or counts.shape[0] != counts.shape[1] or counts.shape[0] < 1:
        raise InputError(f"AB histogram must be a square 2-D array (got shape {counts.shape})")
    if not np.all(np.isfinite(counts)) or np.any(counts < 0) or counts.sum() <= 0:
        raise InputError("AB histogram must hold finite non-negative counts with a positive total")
    if not 0 < mix <= 1:
        raise InputError(f"mix must be in (0, 1] (got {mix})")
    if sigma < 0:
        raise InputError(f"sigma must be >= 0 (got {sigma})")
    if max_weight is not None and max_weight < 1:
        raise InputError(f"max_weight must be >= 1 or None (got {max_weight})")

    from scipy.ndimage import gaussian_filter

    empirical = counts / counts.sum()
    smoothed = gaussian_filter(empirical, sigma=sigma, mode="constant") if sigma > 0 else empirical
    smoothed = smoothed / smoothed.sum()
    n_in_gamut = int(np.count_nonzero(counts))
    raw = 1.0 / ((1.0 - mix) * smoothed + mix / n_in_gamut)
    weights = raw / float(np.sum(smoothed * raw))
    if max_weight is not None and weights.max() > max_weight:
        weights = _capped(raw, smoothed, float(max_weight))
    return weights


def _capped(raw: np.ndarray, p: np.ndarray, cap: float) -> np.ndarray:
    """``min(c * raw, cap)`` with ``c`` such that ``sum(p * min(c * raw, cap)) == 1``."""

    def expectation(scale: float) -> float:
        return float(np.sum(p * np.minimum(scale * raw, cap)))

    low = 0.0
    high = 1.0 / float(np.sum(p * raw))  # uncapped solution: expectation(high) <= 1
    while expectation(high) < 1.0:
        low, high = high, high * 2.0
        if high > 1e300:  # cap < 1 is excluded by the caller; this guards float overflow only
            break
    for _ in range(200):
        middle = 0.5 * (low + high)
        if expectation(middle) < 1.0:
            low = middle
        else:
            high = middle
    return np.minimum(high * raw, cap)


@keras.saving.register_keras_serializable(package="sar_colorizer")
class WeightedChromaLoss(keras.losses.Loss):
    """Rarity-weighted, masked MSE on normalised AB plus a chroma-magnitude term.

    ``y_true`` is (B, H, W, 3): channels 0-1 the normalised AB target (AB / 110, in [-1, 1]),
    channel 2 the valid weight (1 = valid pixel, 0 = nodata; pixels of weight 0 do not count).
    ``y_pred`` is (B, H, W, 2), or (B, H, W, 2 + k) whose first two channels are AB (the
    others, e.g. a confidence head's, are ignored here). With ``v`` the valid weight, ``w`` the rarity weight of the
    target's (a, b) bin, and ``|z| = sqrt(a^2 + b^2 + eps)``::

        loss = sum(v * w * mean_c (pred - true)^2) / sum(v)
             + chroma_weight * sum(v * (|pred| - |true|)^2) / sum(v)

    The sums run over the whole batch, so every valid pixel counts the same whatever its tile
    (a tile that is mostly nodata does not get a larger say). A batch without valid pixels has
    loss 0. :meth:`call` returns the per-pixel terms (B, H, W) scaled by
    ``B * H * W / sum(v)``, so that Keras' default ``"sum_over_batch_size"`` reduction (a mean,
    which Keras also rescales correctly under a multi-replica ``tf.distribute`` strategy) gives
    the value above, and ``reduction=None`` gives a per-pixel loss map. Pass valid weights in
    ``y_true``, not as ``sample_weight``.

    Args:
        ab_weights: (nb, nb) rarity weights over normalised (a, b) bins, e.g. from
            :func:`rarity_weights`; ``None`` for plain (masked) MSE.
        chroma_weight: Weight of the chroma term (lambda); 0 disables it.
        name: Loss name.
        **kwargs: ``reduction`` / ``dtype`` as for :class:`keras.losses.Loss`.

    Raises:
        InputError: ``ab_weights`` is not square 2-D with finite non-negative values, or
            ``chroma_weight`` is negative.
    """

    def __init__(
        self,
        ab_weights: Any = None,
        chroma_weight: float = 0.5,
        name: str = "weighted_chroma_loss",
        **kwargs: Any,
    ) -> None:
        super().__init__(name=name, **kwargs)
        if chroma_weight < 0:
            raise InputError(f"chroma_weight must be >= 0 (got {chroma_weight})")
        self.chroma_weight = float(chroma_weight)
        if ab_weights is None:
            self.ab_weights = None
        else:
            grid = np.asarray(ab_weights, dtype=np.float32)
            if grid.ndim != 2 or grid.shape[0] != grid.shape[1] or grid.shape[0] < 1:
                raise InputError(f"ab_weights must be a square 2-D grid (got shape {grid.shape})")
            if not np.all(np.isfinite(grid)) or np.any(grid < 0):
                raise InputError("ab_weights must be finite and non-negative")
            self.ab_weights = grid

    def call(self, y_true: Any, y_pred: Any) -> Any:
        ops = keras.ops
        y_true = ops.cast(y_true, "float32")
        y_pred = ops.cast(y_pred, "float32")[..., 0:2]  # AB; further channels are not colour
        ab_true = y_true[..., 0:2]
        valid = y_true[..., 2]
        squared = ops.mean(ops.square(y_pred - ab_true), axis=-1)

        pixel_weight = valid
        if self.ab_weights is not None:
            n_bins = self.ab_weights.shape[0]
            index = ops.floor((ab_true + 1.0) * (0.5 * n_bins))
            index = ops.cast(ops.clip(index, 0, n_bins - 1), "int32")
            flat = index[..., 0] * n_bins + index[..., 1]
            table = ops.convert_to_tensor(self.ab_weights.reshape(-1), dtype="float32")
            pixel_weight = valid * ops.take(table, flat)

        per_pixel = pixel_weight * squared
        if self.chroma_weight > 0:
            chroma_true = ops.sqrt(ops.sum(ops.square(ab_true), axis=-1) + CHROMA_EPS)
            chroma_pred = ops.sqrt(ops.sum(ops.square(y_pred), axis=-1) + CHROMA_EPS)
            per_pixel = per_pixel + self.chroma_weight * valid * ops.square(
                chroma_pred - chroma_true
            )
        # Scale so that the *mean over all pixels* (what the "sum_over_batch_size" reduction
        # takes, and the reduction Keras rescales across replicas) is the sum over valid ones.
        n_pixels = ops.cast(ops.size(valid), "float32")
        return per_pixel * (n_pixels / ops.maximum(ops.sum(valid), 1e-12))

    def get_config(self) -> dict[str, Any]:
        """Constructor arguments; the weight grid as nested lists (JSON-serialisable)."""
        config = super().get_config()
        config.update(
            {
                "ab_weights": None if self.ab_weights is None else self.ab_weights.tolist(),
                "chroma_weight": self.chroma_weight,
            }
        )
        return config


#: ``0.5 * log(2 pi)``: the constant of a Gaussian negative log-likelihood per dimension.
HALF_LOG_2PI = 0.5 * float(np.log(2.0 * np.pi))


def gaussian_nll(ab_true: Any, ab_mean: Any, log_variance: Any) -> Any:
    """Per-pixel Gaussian negative log-likelihood of ``ab_true``, mean over the AB channels.

    ``0.5 * (log_variance + (ab_true - ab_mean)^2 / exp(log_variance)) + 0.5 log(2 pi)`` per
    channel, averaged over the last axis; all in normalised AB units (AB / 110). Returns
    (B, H, W).
    """
    ops = keras.ops
    squared = ops.square(ab_true - ab_mean)
    per_channel = 0.5 * (log_variance + squared * ops.exp(-log_variance)) + HALF_LOG_2PI
    return ops.mean(per_channel, axis=-1)


@keras.saving.register_keras_serializable(package="sar_colorizer")
class GaussianNLLChromaLoss(WeightedChromaLoss):
    """:class:`WeightedChromaLoss` on the AB mean plus a Gaussian NLL for the confidence head.

    ``y_pred`` is (B, H, W, 4): normalised AB mean, then the predicted log-variance of the
    normalised a* and b* (:class:`~sar_colorizer.nets.unet.ColorizationUNet` with
    ``confidence_head``). The loss is::

        WeightedChromaLoss(ab_mean) + nll_weight * sum(v * NLL(ab_true | sg(ab_mean), s)) / sum(v)

    with ``sg`` a stop-gradient: the NLL term trains the variance to match the squared error
    of the mean but never pulls the mean (which the colour loss alone shapes, as without the
    head). The NLL is not rarity-weighted: the variance must describe the error of every pixel
    as it occurs. With a 2-channel ``y_pred`` this is exactly :class:`WeightedChromaLoss`.

    Args:
        ab_weights: As :class:`WeightedChromaLoss`.
        chroma_weight: As :class:`WeightedChromaLoss`.
        nll_weight: Weight of the NLL term (> 0).
        name: Loss name.
        **kwargs: ``reduction`` / ``dtype`` as for :class:`keras.losses.Loss`.
    """

    def __init__(
        self,
        ab_weights: Any = None,
        chroma_weight: float = 0.5,
        nll_weight: float = 1.0,
        name: str = "gaussian_nll_chroma_loss",
        **kwargs: Any,
    ) -> None:
        super().__init__(ab_weights=ab_weights, chroma_weight=chroma_weight, name=name, **kwargs)
        if not nll_weight > 0:
            raise InputError(f"nll_weight must be > 0 (got {nll_weight})")
        self.nll_weight = float(nll_weight)

    def call(self, y_true: Any, y_pred: Any) -> Any:
        colour = super().call(y_true, y_pred)
        if y_pred.shape[-1] is not None and y_pred.shape[-1] < 4:
            return colour
        ops = keras.ops
        y_true = ops.cast(y_true, "float32")
        y_pred = ops.cast(y_pred, "float32")
        valid = y_true[..., 2]
        nll = gaussian_nll(y_true[..., 0:2], ops.stop_gradient(y_pred[..., 0:2]), y_pred[..., 2:4])
        n_pixels = ops.cast(ops.size(valid), "float32")
        scale = n_pixels / ops.maximum(ops.sum(valid), 1e-12)
        return colour + self.nll_weight * valid * nll * scale

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update({"nll_weight": self.nll_weight})
        return config
