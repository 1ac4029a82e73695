"""Per-pixel confidence of the colour: predicted spread of a*, b*, and colour that mutes with it.

A model with a confidence head (:class:`~sar_colorizer.nets.unet.ColorizationUNet` with
``confidence_head``) predicts, beside the normalised AB mean ``mu`` (AB / 110), the log-variance
``s_a, s_b`` of a Gaussian around it, trained with a negative log-likelihood on the error of the
mean (:class:`~sar_colorizer.losses.GaussianNLLChromaLoss`). This module turns those channels
into what ``predict`` and ``eval`` use, with numpy only (no TensorFlow):

* :func:`predicted_sigma`: the predicted standard deviation of a*, b* in CIELAB units, the root
  mean of the two channel variances, ``110 * sqrt((exp(s_a) + exp(s_b)) / 2)``. It is on the
  scale of the AB RMSE that ``eval`` reports: where the model is calibrated, the RMS of the
  actual a*, b* errors of pixels with predicted sigma ``x`` is ``x``. This is what
  ``predict --confidence`` writes (small = sure).
* :func:`shrink_gain` / :func:`shrink_ab`: a Wiener-like shrink of the colour toward neutral
  (a* = b* = 0, grey), ``AB' = g * AB`` with::

      g = |mu|^2 / (|mu|^2 + k * (var_a + var_b))

  This is the Wiener gain ``P / (P + N)`` with the predicted colour's power ``|mu|^2`` for the
  signal power ``P`` and ``k`` times the predicted variance for the noise power ``N``. The
  colour loss (with its chroma term) makes the network predict colours as saturated as the
  truth even where it cannot tell which colour it is, which is more than the error-minimising
  mean there; the gain takes that chroma back where the predicted spread is large compared
  with the colour itself. ``k`` trades colour for safety and is chosen on validation data
  (:func:`choose_shrink`, run at the end of training and recorded in bundle.json as
  ``confidence.shrink_k``). The gain lies in [0, 1], falls monotonically as the predicted
  variance grows, leaves pixels with negligible variance unchanged and never turns a
  hue: where the model is unsure of the colour the output tends to the SAR's grey-scale.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from sar_colorizer.errors import InputError

#: CIELAB units per normalised AB unit (as :data:`sar_colorizer.color.lab.AB_SCALE`, without
#: importing Keras).
AB_SCALE = 110.0

#: Shrink constant for bundles whose training chose none (no validation data): the Wiener gain.
DEFAULT_SHRINK_K = 1.0

#: Candidate shrink constants :func:`choose_shrink` compares (0 = no shrink).
SHRINK_CANDIDATES = (0.0, 0.125, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 4.0, 6.0, 8.0)

#: Output channel names of the log-variance (bundle.json ``outputs.channels``).
VARIANCE_CHANNELS = ("log_var_a", "log_var_b")


def split_outputs(
    outputs: np.ndarray, channels: Sequence[str] = ("a", "b")
) -> tuple[np.ndarray, np.ndarray | None]:
    """``(..., C)`` network output -> ``(ab_norm (..., 2), log_variance (..., 2) or None)``.

    Args:
        outputs: The network output, channels last.
        channels: What each channel is (:attr:`~sar_colorizer.bundle.Bundle.output_channels`).

    Raises:
        InputError: The output has another number of channels than ``channels`` names.
    """
    channels = list(channels)
    if outputs.shape[-1] != len(channels):
        raise InputError(
            f"the model outputs {outputs.shape[-1]} channels but its bundle names "
            f"{len(channels)} ({', '.join(channels)}); the bundle is inconsistent"
        )
    ab = outputs[..., [channels.index("a"), channels.index("b")]]
    if not all(name in channels for name in VARIANCE_CHANNELS):
        return ab, None
    log_variance = outputs[..., [channels.index(name) for name in VARIANCE_CHANNELS]]
    return ab, log_variance


def predicted_sigma(log_variance: np.ndarray) -> np.ndarray:
    """Predicted standard deviation of a*, b* in CIELAB units (RMS over the two channels).

    Args:
        log_variance: ``(..., 2)`` log-variance of normalised a*, b*.

    Returns:
        ``(...)`` float32 ``110 * sqrt((exp(s_a) + exp(s_b)) / 2)``.
    """
    variance = np.exp(np.asarray(log_variance, dtype=np.float32))
    return (np.float32(AB_SCALE) * np.sqrt(variance.mean(axis=-1))).astype(np.float32)


def shrink_gain(ab_norm: np.ndarray, log_variance: np.ndarray, k: float) -> np.ndarray:
    """Gain ``|mu|^2 / (|mu|^2 + k * (var_a + var_b))`` in [0, 1] per pixel.

    Args:
        ab_norm: ``(..., 2)`` normalised AB mean.
        log_variance: ``(..., 2)`` its predicted log-variance.
        k: Shrink constant (>= 0; 0 keeps every colour).

    Returns:
        ``(...)`` float32 gain; 1 where ``k == 0``, 0 where ``mu == 0`` and ``k > 0``.

    Raises:
        InputError: ``k`` is negative or not finite.
    """
    if not (np.isfinite(k) and k >= 0):
        raise InputError(f"the shrink constant k must be a finite number >= 0 (got {k})")
    ab = np.asarray(ab_norm, dtype=np.float32)
    power = np.square(ab).sum(axis=-1)
    if k == 0:
        return np.ones_like(power)
    spread = np.float32(k) * np.exp(np.asarray(log_variance, dtype=np.float32)).sum(axis=-1)
    denominator = power + spread
    return np.divide(
        power, denominator, out=np.zeros_like(power), where=denominator > 0
    ).astype(np.float32)


def shrink_ab(ab_norm: np.ndarray, log_variance: np.ndarray, k: float) -> np.ndarray:
    """``ab_norm`` moved toward neutral by :func:`shrink_gain` (same hue, less chroma)."""
    gain = shrink_gain(ab_norm, log_variance, k)
    return (np.asarray(ab_norm, dtype=np.float32) * gain[..., None]).astype(np.float32)


def choose_shrink(
    ab_true: np.ndarray,
    ab_norm: np.ndarray,
    log_variance: np.ndarray,
    candidates: Sequence[float] = SHRINK_CANDIDATES,
) -> dict[str, Any]:
    """The shrink constant with the lowest AB RMSE on held-out (validation) pixels.

    Args:
        ab_true: ``(N, 2)`` true normalised AB of valid pixels.
        ab_norm: ``(N, 2)`` predicted normalised AB mean.
        log_variance: ``(N, 2)`` predicted log-variance.
        candidates: Constants to compare (0 = no shrink).

    Returns:
        ``{"shrink_k": best, "ab_rmse": {str(k): AB RMSE in CIELAB units}, "n_pixels": N}``.

    Raises:
        InputError: No pixels, or shapes that disagree.
    """
    ab_true = np.asarray(ab_true, dtype=np.float32).reshape(-1, 2)
    ab_norm = np.asarray(ab_norm, dtype=np.float32).reshape(-1, 2)
    log_variance = np.asarray(log_variance, dtype=np.float32).reshape(-1, 2)
    if not len(ab_true) or not (len(ab_true) == len(ab_norm) == len(log_variance)):
        raise InputError(
            f"choosing the shrink needs as many true, predicted and variance values (got "
            f"{len(ab_true)}, {len(ab_norm)}, {len(log_variance)})"
        )
    scores = {}
    for k in candidates:
        error = shrink_ab(ab_norm, log_variance, float(k)) - ab_true
        scores[float(k)] = float(AB_SCALE * np.sqrt(np.mean(np.square(error, dtype=np.float64))))
    best = min(scores, key=lambda key: (scores[key], key))
    return {
        "shrink_k": best,
        "ab_rmse": {f"{k:g}": round(v, 4) for k, v in scores.items()},
        "n_pixels": int(len(ab_true)),
    }


def bundle_shrink_k(bundle: Any) -> float:
    """The shrink constant recorded in the bundle (chosen on validation), else the default."""
    value = (bundle.confidence or {}).get("shrink_k")
    return DEFAULT_SHRINK_K if value is None else float(value)


def resolve_shrink(bundle: Any, shrink: bool | None) -> float | None:
    """The shrink constant inference applies to ``bundle``'s colours, or None for no shrink.

    Args:
        bundle: A :class:`~sar_colorizer.bundle.Bundle`.
        shrink: None: on when the model has a confidence head; True: on (the model must have
            one); False: off.

    Raises:
        InputError: ``shrink`` is True and the model has no confidence head.
    """
    if shrink is False:
        return None
    if not bundle.has_confidence:
        if shrink:
            raise InputError(
                f"model {bundle.path or ''} has no confidence head, so it cannot mute unsure "
                "colour; drop the option or use a model trained with one (sarcolor train)"
            )
        return None
    return bundle_shrink_k(bundle)


def colour_from_outputs(
    outputs: np.ndarray, channels: Sequence[str], shrink_k: float | None
) -> tuple[np.ndarray, np.ndarray | None]:
    """Network outputs (blended, full resolution) -> ``(ab_norm, sigma or None)``.

    ``ab_norm`` is shrunk by :func:`shrink_ab` when ``shrink_k`` is not None and the outputs
    carry a log-variance; ``sigma`` is :func:`predicted_sigma` (CIELAB units), None without a
    confidence head.
    """
    ab_norm, log_variance = split_outputs(outputs, channels)
    if log_variance is None:
        return ab_norm, None
    if shrink_k is not None:
        ab_norm = shrink_ab(ab_norm, log_variance, shrink_k)
    return ab_norm, predicted_sigma(log_variance)
