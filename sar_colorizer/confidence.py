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

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from sar_colorizer.color.constants import AB_SCALE  # CIELAB units per normalised AB unit
from sar_colorizer.errors import InputError

if TYPE_CHECKING:
    from sar_colorizer.bundle import Bundle

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
    ab = _channels(outputs, [channels.index("a"), channels.index("b")])
    if not all(name in channels for name in VARIANCE_CHANNELS):
        return ab, None
    return ab, _channels(outputs, [channels.index(name) for name in VARIANCE_CHANNELS])


def _channels(array: np.ndarray, index: list[int]) -> np.ndarray:
    """``array[..., index]``; a view (no copy) when the channels are consecutive."""
    if index == list(range(index[0], index[0] + len(index))):
        return array[..., index[0] : index[0] + len(index)]
    return array[..., index]


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


def bundle_shrink_k(bundle: Bundle) -> float:
    """The shrink constant recorded in the bundle (chosen on validation), else the default."""
    value = (bundle.confidence or {}).get("shrink_k")
    return DEFAULT_SHRINK_K if value is None else float(value)


def resolve_shrink(bundle: Bundle, shrink: bool | None) -> float | None:
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


@dataclass(frozen=True)
class OutputPlan:
    """What inference keeps of the network's output, computed at the network's resolution.

    For a model with a confidence head, :meth:`transform` runs on each batch of network outputs
    before they are upsampled and blended: it shrinks AB (:func:`shrink_ab`, when
    ``shrink_k`` is set) and turns the log-variance into :func:`predicted_sigma`, so that the
    full-resolution work (upsampling, tile blending) carries only the channels asked for: AB
    alone unless the sigma (``sigma``) or the unshrunk AB (``mean``) is wanted too. On models
    with ``downsample`` 4 this costs a sixteenth of a full-resolution pass. Without a head
    there is no transform and the network's channels pass unchanged.

    Attributes:
        channels: The network's output channels (bundle.json ``outputs.channels``).
        shrink_k: Shrink constant, or None for no shrink.
        sigma: Keep the predicted sigma (CIELAB units) as a channel.
        mean: Keep the unshrunk AB as two channels.
    """

    channels: tuple[str, ...]
    shrink_k: float | None = None
    sigma: bool = False
    mean: bool = False

    @classmethod
    def for_bundle(cls, bundle: Bundle, shrink: bool | None, *, sigma: bool = False,
                   mean: bool = False) -> OutputPlan:
        """The plan for ``bundle`` (see :func:`resolve_shrink` for ``shrink``)."""
        return cls(tuple(bundle.output_channels), resolve_shrink(bundle, shrink), sigma, mean)

    @property
    def has_variance(self) -> bool:
        return all(name in self.channels for name in VARIANCE_CHANNELS)

    @property
    def n_channels(self) -> int:
        """Channels of :meth:`transform`'s output (what the blender holds)."""
        if not self.has_variance:
            return len(self.channels)
        return 2 + int(self.sigma) + 2 * int(self.mean)

    @property
    def transform(self) -> Callable[[np.ndarray], np.ndarray] | None:
        """The per-batch function, or None when the outputs pass unchanged (no head)."""
        return self._transform if self.has_variance else None

    def _transform(self, outputs: np.ndarray) -> np.ndarray:
        ab, log_variance = split_outputs(outputs, self.channels)
        if log_variance is None:  # not reached: transform is None without a head
            return outputs
        parts = [ab if self.shrink_k is None else shrink_ab(ab, log_variance, self.shrink_k)]
        if self.sigma:
            parts.append(predicted_sigma(log_variance)[..., None])
        if self.mean:
            parts.append(ab)
        return np.concatenate(parts, axis=-1)

    def split(self, blended: np.ndarray) -> dict[str, np.ndarray]:
        """Blended, upsampled output -> ``{"ab": normalised AB, "sigma": (...) CIELAB units,
        "ab_mean": normalised AB before the shrink}`` (the last two only where kept)."""
        if not self.has_variance:
            return {"ab": split_outputs(blended, self.channels)[0]}
        parts = {"ab": blended[..., 0:2]}
        index = 2
        if self.sigma:
            parts["sigma"] = blended[..., index]
            index += 1
        if self.mean:
            parts["ab_mean"] = blended[..., index : index + 2]
        return parts


# --------------------------------------------------------------------------------------------
# Does the confidence predict the error? (sarcolor eval)

#: Most pixels per image that the evaluation keeps for the confidence table.
EVAL_PIXELS_PER_IMAGE = 50_000


def sample_errors(
    sigma: np.ndarray,
    ab_output: np.ndarray,
    ab_mean: np.ndarray,
    ab_reference: np.ndarray,
    valid: np.ndarray,
    *,
    max_pixels: int = EVAL_PIXELS_PER_IMAGE,
    seed: int = 0,
) -> np.ndarray:
    """Per-pixel predicted sigma and squared AB errors of one image, for :func:`error_by_decile`.

    Args:
        sigma: ``(H, W)`` predicted standard deviation of a*, b* (CIELAB units).
        ab_output: ``(H, W, 2)`` a*, b* of the output (after any shrink).
        ab_mean: ``(H, W, 2)`` a*, b* the network predicted (before the shrink).
        ab_reference: ``(H, W, 2)`` true a*, b*.
        valid: ``(H, W)`` pixels to use.
        max_pixels: Keep at most this many (a random sample: large images do not drown the
            small ones).
        seed: Seed of the sample.

    Returns:
        ``(N, 3)`` float32: sigma, squared error of the output and of the mean, each the mean
        over a* and b* (so that the root of their mean is the AB RMSE of ``eval``).
    """
    mask = np.asarray(valid, bool) & np.isfinite(sigma)
    index = np.flatnonzero(mask.reshape(-1))
    if len(index) > max_pixels:
        index = np.sort(np.random.default_rng(seed).choice(index, max_pixels, replace=False))
    reference = np.asarray(ab_reference, np.float64).reshape(-1, 2)[index]
    output_error = np.mean(np.square(np.asarray(ab_output, np.float64).reshape(-1, 2)[index]
                                     - reference), axis=-1)
    mean_error = np.mean(np.square(np.asarray(ab_mean, np.float64).reshape(-1, 2)[index]
                                   - reference), axis=-1)
    return np.stack([np.asarray(sigma).reshape(-1)[index], output_error, mean_error],
                    axis=-1).astype(np.float32)


def error_by_decile(samples: np.ndarray, n_bins: int = 10) -> dict[str, Any]:
    """AB error of pixels grouped by predicted sigma, in equal-count bins (deciles).

    Pixels are sorted by predicted sigma and cut into ``n_bins`` groups of equal size (ties
    split by order, so that constant sigma still gives ``n_bins`` groups). A confidence that
    predicts the error shows an AB RMSE rising from the first (most confident) to the last
    decile; a calibrated one shows an RMSE of the mean about equal to the RMS predicted sigma
    in every decile.

    Args:
        samples: ``(N, 3)`` rows of :func:`sample_errors` (any number of images pooled).
        n_bins: Number of groups.

    Returns:
        ``{"deciles": [{"decile", "sigma_min", "sigma_max", "predicted_sigma" (RMS),
        "ab_rmse" (output), "ab_rmse_mean" (before the shrink), "n_pixels"}, ...],
        "spearman": rank correlation of sigma with the error of the mean (None if undefined),
        "ab_rmse_ratio_last_first": ab_rmse_mean of the last decile / the first,
        "n_pixels": N}``.

    Raises:
        InputError: Fewer pixels than bins.
    """
    samples = np.asarray(samples, dtype=np.float64).reshape(-1, 3)
    if len(samples) < n_bins:
        raise InputError(
            f"the confidence table needs at least {n_bins} pixels (got {len(samples)})"
        )
    order = np.argsort(samples[:, 0], kind="stable")
    rows = []
    for number, group in enumerate(np.array_split(samples[order], n_bins), start=1):
        rows.append({
            "decile": number,
            "sigma_min": float(group[:, 0].min()),
            "sigma_max": float(group[:, 0].max()),
            "predicted_sigma": float(np.sqrt(np.mean(np.square(group[:, 0])))),
            "ab_rmse": float(np.sqrt(np.mean(group[:, 1]))),
            "ab_rmse_mean": float(np.sqrt(np.mean(group[:, 2]))),
            "n_pixels": int(len(group)),
        })
    from scipy.stats import spearmanr

    # Undefined (None) when either side is constant.
    defined = np.ptp(samples[:, 0]) > 0 and np.ptp(samples[:, 2]) > 0
    rho = float(spearmanr(samples[:, 0], samples[:, 2]).statistic) if defined else math.nan
    first = rows[0]["ab_rmse_mean"]
    return {
        "deciles": rows,
        "spearman": float(rho) if np.isfinite(rho) else None,
        "ab_rmse_ratio_last_first": rows[-1]["ab_rmse_mean"] / first if first > 0 else None,
        "n_pixels": int(len(samples)),
    }


def plot_error_by_decile(table: dict[str, Any], path: Any, title: str = "") -> None:
    """Bar chart of AB RMSE per sigma decile with the predicted sigma (calibration), written
    atomically to ``path`` (PNG)."""
    from pathlib import Path

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = table["deciles"]
    deciles = [row["decile"] for row in rows]
    fig, ax = plt.subplots(figsize=(6.4, 4.0))
    width = 0.4
    ax.bar([d - width / 2 for d in deciles], [row["ab_rmse_mean"] for row in rows], width,
           label="AB RMSE of the network's colour")
    ax.bar([d + width / 2 for d in deciles], [row["ab_rmse"] for row in rows], width,
           label="AB RMSE of the output (muted)")
    ax.plot(deciles, [row["predicted_sigma"] for row in rows], "k.-",
            label="predicted sigma (RMS)")
    ax.set_xticks(deciles)
    ax.set_xlabel("decile of predicted sigma (1 = most confident)")
    ax.set_ylabel("CIELAB units")
    rho = table.get("spearman")
    ax.set_title(title or (f"Error by confidence decile (Spearman {rho:.2f})" if rho is not None
                           else "Error by confidence decile"))
    ax.grid(axis="y", alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    from sar_colorizer.io.writer import atomic_path

    try:
        with atomic_path(Path(path), overwrite=True) as temporary:
            fig.savefig(temporary, dpi=110, format="png")
    finally:
        plt.close(fig)
