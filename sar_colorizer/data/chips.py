"""Cutting co-registered images into training chips and dropping the unusable ones.

A chip is kept when it has enough valid pixels (nodata from the SAR valid mask and optical
zeros / nodata) and texture on both sides: a SAR chip whose relative intensity barely varies
(constant fill, saturation) or an optical chip that is flat (cloud tops, fill) teaches the network
nothing about colour.
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import asdict, dataclass

import numpy as np

from sar_colorizer.errors import InputError

logger = logging.getLogger(__name__)

#: Reasons a chip is dropped, as counted in ``stats.json``.
DROP_REASONS = ("nodata", "flat_sar", "flat_optical")


@dataclass(frozen=True)
class ChipFilter:
    """Which chips to keep.

    Attributes:
        max_nodata_fraction: Drop a chip when more than this fraction of its pixels is invalid.
        min_sar_std: Drop a chip when the standard deviation of its SAR relative intensity (in
            [0, 1], over valid pixels, every band) is below this. Real speckled SAR chips of the
            s1s2-la-texas data have 0.02 or more, even over water.
        min_optical_std: Drop a chip when every RGB channel's standard deviation (sRGB in [0, 1],
            valid pixels) is below this: the optical image is flat.
    """

    max_nodata_fraction: float = 0.1
    min_sar_std: float = 0.005
    min_optical_std: float = 0.002

    def __post_init__(self) -> None:
        if not 0.0 <= self.max_nodata_fraction <= 1.0:
            raise InputError(
                f"max nodata fraction {self.max_nodata_fraction} is not in [0, 1]; e.g. 0.1"
            )
        if self.min_sar_std < 0 or self.min_optical_std < 0:
            raise InputError("minimum standard deviations must be >= 0")

    def to_dict(self) -> dict[str, float]:
        return asdict(self)


@dataclass
class Chip:
    """One chip of a source image.

    Attributes:
        row, col: Top-left pixel of the chip in the source image.
        sar: (size, size, C) float32 relative intensity in [0, 1], 0 at invalid pixels.
        valid: (size, size) bool.
        rgb: (size, size, 3) uint8 sRGB, 0 at invalid pixels.
    """

    row: int
    col: int
    sar: np.ndarray
    valid: np.ndarray
    rgb: np.ndarray


def chip_origins(length: int, size: int, stride: int) -> list[int]:
    """Start offsets of chips along one axis.

    Chips start every ``stride`` pixels; when that leaves a strip at the end, one more chip is
    placed flush with the edge so that the whole image is covered. An axis shorter than ``size``
    gives no chips.

    >>> chip_origins(1024, 256, 256)
    [0, 256, 512, 768]
    >>> chip_origins(600, 256, 256)
    [0, 256, 344]
    """
    if size < 1 or stride < 1:
        raise InputError(f"chip size {size} and stride {stride} must be >= 1 pixel")
    if length < size:
        return []
    origins = list(range(0, length - size + 1, stride))
    if origins[-1] != length - size:
        origins.append(length - size)
    return origins


def chip_grid(
    height: int, width: int, size: int, stride: int | None = None
) -> list[tuple[int, int]]:
    """Top-left corners ``(row, col)`` of all chips of an image, row by row."""
    stride = size if stride is None else stride
    return [
        (row, col)
        for row in chip_origins(height, size, stride)
        for col in chip_origins(width, size, stride)
    ]


def rejection_reason(
    sar: np.ndarray, valid: np.ndarray, rgb: np.ndarray, chip_filter: ChipFilter
) -> str | None:
    """Why a chip should be dropped (one of :data:`DROP_REASONS`), or None to keep it.

    Args:
        sar: (h, w, C) relative intensity in [0, 1].
        valid: (h, w) bool.
        rgb: (h, w, 3) sRGB, uint8 or float in [0, 1].
        chip_filter: Thresholds.
    """
    n_valid = int(valid.sum())
    if n_valid == 0 or 1.0 - n_valid / valid.size > chip_filter.max_nodata_fraction:
        return "nodata"
    sar_valid = sar[valid]
    if float(sar_valid.std(axis=0).min()) < chip_filter.min_sar_std:
        return "flat_sar"
    rgb_valid = rgb[valid].astype(np.float32)
    if rgb.dtype == np.uint8:
        rgb_valid /= 255.0
    if float(rgb_valid.std(axis=0).max()) < chip_filter.min_optical_std:
        return "flat_optical"
    return None


def cut_chips(
    sar: np.ndarray,
    valid: np.ndarray,
    rgb: np.ndarray,
    size: int = 256,
    stride: int | None = None,
    chip_filter: ChipFilter | None = None,
) -> tuple[list[Chip], Counter[str]]:
    """Cut an image into chips and drop the unusable ones.

    Args:
        sar: (H, W, C) relative intensity in [0, 1] (NaN or anything at invalid pixels).
        valid: (H, W) bool, True where SAR and optical are both valid.
        rgb: (H, W, 3) sRGB float in [0, 1] or uint8.
        size: Chip side in pixels.
        stride: Step between chips (default ``size``: no overlap).
        chip_filter: Thresholds (default :class:`ChipFilter`).

    Returns:
        ``(chips, dropped)`` where ``dropped`` counts the dropped chips by reason.
    """
    chip_filter = chip_filter or ChipFilter()
    if sar.ndim != 3 or sar.shape[:2] != valid.shape or rgb.shape[:2] != valid.shape:
        raise InputError(
            f"SAR {sar.shape}, valid {valid.shape} and RGB {rgb.shape} must share (H, W); "
            "SAR is (H, W, C)"
        )
    sar = np.where(valid[..., None], np.nan_to_num(sar, nan=0.0), 0.0).astype(np.float32)
    if rgb.dtype != np.uint8:
        rgb = np.clip(np.round(np.nan_to_num(rgb) * 255.0), 0, 255).astype(np.uint8)
    rgb = np.where(valid[..., None], rgb, 0).astype(np.uint8)

    chips: list[Chip] = []
    dropped: Counter[str] = Counter()
    for row, col in chip_grid(valid.shape[0], valid.shape[1], size, stride):
        window = np.s_[row : row + size, col : col + size]
        reason = rejection_reason(sar[window], valid[window], rgb[window], chip_filter)
        if reason is not None:
            dropped[reason] += 1
            continue
        chips.append(Chip(row, col, sar[window].copy(), valid[window].copy(), rgb[window].copy()))
    return chips, dropped
