"""Training settings: :class:`TrainConfig`, read from a TOML file and overridden by flags.

Kept apart from :mod:`sar_colorizer.training` so that the command line reads them without
importing the training machinery.
"""

from __future__ import annotations

import dataclasses
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sar_colorizer.errors import InputError
from sar_colorizer.settings import check_known_keys

__all__ = ["STRATEGIES", "TrainConfig"]

STRATEGIES = ("default", "mirrored", "multiworker")


@dataclass
class TrainConfig:
    """Training settings; every field can come from a TOML file and be overridden by a flag.

    Attributes:
        epochs: Maximum number of epochs (early stopping may end sooner).
        batch_size: Global batch size, split across replicas under a distribution strategy.
        crop_size: Random crop of each chip in pixels (None: the whole chip).
        learning_rate: Adam learning rate (cosine-decayed to 5% over the run).
        depth: U-Net depth (number of 2x poolings inside the network).
        base_filters: Filters of the first U-Net level; doubled at each level.
        downsample: The network sees the SAR at 1/downsample of its resolution; AB is upsampled.
        separable: Depthwise-separable convolutions (fewer FLOPs and weights).
        speckle_filter: Speckle filter applied to the SAR before the network.
        speckle_window: Window of the speckle filter in pixels (odd).
        speckle_looks: Equivalent number of looks assumed by the adaptive filters.
        chroma_weight: Lambda of the chroma term of the loss.
        rarity_weighting: Rebalance the AB loss by colour rarity (Zhang et al. 2016).
        rarity_mix: Mix of the smoothed AB distribution with uniform (1 = no rebalancing).
        rarity_sigma: Gaussian smoothing of the AB histogram, in bins.
        confidence_head: Also predict the per-pixel variance of a*, b* (Gaussian NLL with a
            stop-gradient on the mean; the colour loss and the best-epoch choice are unchanged).
        nll_weight: Weight of the NLL term of the confidence head.
        novelty: With the confidence head, also raise the predicted variance where the
            decoder's features are far from the training data's (fitted after training on the
            training chips, its weight chosen with the shrink on the validation chips; see
            :mod:`sar_colorizer.novelty`).
        patience: Early stopping patience in epochs (on the validation loss).
        steps_per_epoch: Batches per epoch (None: one pass over the training chips).
        seed: Seed for weights, shuffling and augmentation.
        deterministic: Bit-identical input pipeline (slower).
        strategy: ``default`` (one device), ``mirrored`` (all local GPUs) or ``multiworker``.
        source_weights: Sampling weight of each chip folder when training on several (one per
            folder, normalised; None: equal). See :mod:`sar_colorizer.data.sources`.
        antialias: Shift-consistent network (blur before every subsampling, bilinear decoder
            upsampling; :class:`~sar_colorizer.nets.unet.ColorizationUNet`).
        phase_jitter: Training crops start at at least this many positions per axis (chips too
            small for it are mirrored at their edges, without loss there), so every pixel phase
            of the network's pooling is seen (:func:`~sar_colorizer.data.pipeline.make_dataset`).
        gain_jitter_db: Random gain of the training SAR, uniform in +- this many dB.
        polarisations: The polarisations the network takes, each optional (e.g.
            ``["VH", "VV"]``): its input holds, per polarisation, the SAR channel (0 where the
            polarisation is absent) and then, per polarisation, a 0/1 presence channel. Chips
            of a folder that lacks a polarisation have it absent. None: the chips' bands, all
            required (no presence channels).
        pol_dropout: With ``polarisations``, the probability that a training chip holding
            several of them has one of them hidden (never all): the network learns to colour
            from each polarisation alone.
    """

    epochs: int = 30
    batch_size: int = 16
    crop_size: int | None = 256
    learning_rate: float = 2e-3
    depth: int = 4
    base_filters: int = 16
    downsample: int = 2
    separable: bool = False
    speckle_filter: str = "boxcar"
    speckle_window: int = 5
    speckle_looks: float = 1.0
    chroma_weight: float = 0.5
    rarity_weighting: bool = True
    rarity_mix: float = 0.5
    rarity_sigma: float = 1.0
    confidence_head: bool = True
    nll_weight: float = 1.0
    novelty: bool = True
    patience: int = 8
    steps_per_epoch: int | None = None
    seed: int = 0
    deterministic: bool = False
    strategy: str = "default"
    source_weights: list[float] | None = None
    antialias: bool = False
    phase_jitter: int = 0
    gain_jitter_db: float = 0.0
    polarisations: list[str] | None = None
    pol_dropout: float = 0.0

    def validate(self) -> None:
        """Raise :class:`InputError` for settings that cannot work."""
        if self.strategy not in STRATEGIES:
            raise InputError(
                f"unknown strategy {self.strategy!r}; choose one of {', '.join(STRATEGIES)}"
            )
        for name in ("epochs", "batch_size", "depth", "base_filters", "downsample"):
            if getattr(self, name) < 1:
                raise InputError(f"{name} must be at least 1, got {getattr(self, name)}")
        if self.crop_size is not None:
            multiple = self.downsample * 2**self.depth
            if self.crop_size % multiple:
                raise InputError(
                    f"crop_size {self.crop_size} is not a multiple of {multiple} "
                    f"(downsample x 2^depth); choose e.g. {multiple * max(1, self.crop_size // multiple)}"
                )
        if self.phase_jitter < 0 or self.gain_jitter_db < 0:
            raise InputError(
                f"phase_jitter and gain_jitter_db must not be negative (got {self.phase_jitter}, "
                f"{self.gain_jitter_db})"
            )

        self._validate_polarisations()

    def _validate_polarisations(self) -> None:
        from sar_colorizer.sar.polarisation import POLARISATIONS

        pols = self.polarisations
        if pols is not None:
            unknown = [p for p in pols if p not in POLARISATIONS]
            if not pols or unknown or len(set(pols)) != len(pols):
                raise InputError(
                    f"polarisations {pols} must be distinct names among {', '.join(POLARISATIONS)}"
                )
        if not 0 <= self.pol_dropout < 1:
            raise InputError(f"pol_dropout must be in [0, 1), got {self.pol_dropout}")
        if self.pol_dropout and not (pols and len(pols) > 1):
            raise InputError("pol_dropout needs at least two polarisations (polarisations = [...])")

    @classmethod
    def from_toml(cls, path: str | Path, **overrides: Any) -> TrainConfig:
        """Read a TOML file (keys at top level or under ``[train]``) and apply overrides."""
        path = Path(path)
        try:
            raw = tomllib.loads(path.read_text())
        except FileNotFoundError:
            raise InputError(f"{path}: no such config file") from None
        except tomllib.TOMLDecodeError as error:
            raise InputError(f"{path}: not valid TOML ({error})") from None
        settings = raw.get("train", raw)
        return cls.from_dict({**settings, **overrides})

    @classmethod
    def from_dict(cls, settings: dict[str, Any]) -> TrainConfig:
        """Build from a mapping, refusing unknown keys with the list of known ones."""
        check_known_keys(cls, settings, "training setting(s)")
        config = cls(**{k: v for k, v in settings.items() if v is not None or k == "crop_size"})
        config.validate()
        return config

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)
