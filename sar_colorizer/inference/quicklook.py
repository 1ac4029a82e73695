"""The quicklook of a colorised scene: a small side-by-side PNG (SAR in grey | colours),
accumulated block by block while the scene streams."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

__all__ = ["Quicklook", "write_png"]


class Quicklook:
    """Accumulates a block-averaged, side-by-side (SAR | colorised) preview while streaming.

    Args:
        height, width: Scene size.
        max_width: Most pixels across both halves; the scene is averaged over square blocks of
            an integer side to fit.
    """

    def __init__(self, height: int, width: int, max_width: int = 2048) -> None:
        self.factor = max(1, math.ceil(2 * width / max_width))
        self.width = width
        self.q_height = math.ceil(height / self.factor)
        self.q_width = math.ceil(width / self.factor)
        # Channels: grey SAR, R, G, B; summed over valid pixels, plus valid and total counts.
        self._sums = np.zeros((self.q_height, self.q_width, 4), dtype=np.float64)
        self._valid = np.zeros((self.q_height, self.q_width), dtype=np.float64)
        self._total = np.zeros((self.q_height, self.q_width), dtype=np.float64)

    def add(self, start: int, feature: np.ndarray, rgb: np.ndarray, valid: np.ndarray) -> None:
        """Add rows ``start...`` of the scene: feature (h, W), rgb uint8 (h, W, 3), valid (h, W)."""
        if not len(valid):
            return
        f = self.factor
        channels = np.concatenate([feature[..., None] * 255.0, rgb.astype(np.float32)], axis=-1)
        weight = valid.astype(np.float32)
        channels *= weight[..., None]
        pad = self.q_width * f - self.width
        if pad:
            channels = np.pad(channels, [(0, 0), (0, pad), (0, 0)])
            weight = np.pad(weight, [(0, 0), (0, pad)])
            ones = np.pad(np.ones_like(valid, dtype=np.float32), [(0, 0), (0, pad)])
        else:
            ones = np.ones_like(weight)
        rows = start + np.arange(len(valid))
        q_rows = rows // f
        cuts = np.flatnonzero(np.diff(q_rows)) + 1
        starts = np.concatenate([[0], cuts])
        targets = q_rows[starts]

        def reduce(array: np.ndarray) -> np.ndarray:
            array = array.reshape(array.shape[0], self.q_width, f, *array.shape[2:]).sum(axis=2)
            return np.add.reduceat(array, starts, axis=0)

        self._sums[targets] += reduce(channels)
        self._valid[targets] += reduce(weight)
        self._total[targets] += reduce(ones)

    def image(self) -> np.ndarray:
        """RGBA uint8 ``(h, 2 w, 4)``: SAR in grey on the left, colours on the right."""
        mean = self._sums / np.maximum(self._valid, 1.0)[..., None]
        alpha = np.where(self._valid * 2 >= np.maximum(self._total, 1), 255, 0).astype(np.uint8)
        grey = np.clip(mean[..., 0] + 0.5, 0, 255).astype(np.uint8)
        colour = np.clip(mean[..., 1:] + 0.5, 0, 255).astype(np.uint8)
        left = np.dstack([grey, grey, grey, alpha])
        right = np.dstack([colour, alpha])
        return np.concatenate([left, right], axis=1)


def write_png(path: Path, rgba: np.ndarray, overwrite: bool) -> None:
    """Write an RGBA ``(h, w, 4)`` uint8 image as PNG."""
    from sar_colorizer.io.writer import write_raster

    # Through the raster writer, so that the PNG carries sarcolor's tag (--overwrite may
    # replace it) and is written atomically like every output.
    write_raster(path, rgba.transpose(2, 0, 1), {}, overwrite=overwrite, driver="PNG")
