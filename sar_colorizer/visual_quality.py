"""No-reference checks of how a colorised SAR image looks: sharpness, colour speckle, smoothness.

These need no optical reference, so they apply to any scene:

* :func:`edge_fidelity`: Pearson correlation between the Sobel gradient magnitude of an image
  channel and that of the 3 x 3-median SAR in dB, over valid pixels away from nodata and the
  border. 1 = its edges are where the SAR's are, as strong; a blurred or shifted image scores
  lower. (The reference is itself a 3 x 3 median, so filters built on one score a little high.)
* :func:`colour_speckle_rms`: RMS of a*b* minus their Gaussian blur (sigma 2 px): the
  pixel-scale colour noise ("specks").
* :func:`equivalent_number_of_looks`: ENL ``mean**2 / variance`` of a filtered intensity in
  the flattest blocks of the scene (chosen on the unfiltered SAR), the usual measure of how
  smooth a despeckling leaves homogeneous areas.
"""

from __future__ import annotations

import cv2
import numpy as np

__all__ = ["colour_speckle_rms", "edge_fidelity", "equivalent_number_of_looks", "sobel_magnitude"]


def sobel_magnitude(image: np.ndarray) -> np.ndarray:
    """Gradient magnitude of a 2-D image (3 x 3 Sobel), float32."""
    image = np.ascontiguousarray(image, dtype=np.float32)
    gx = cv2.Sobel(image, cv2.CV_32F, 1, 0, ksize=3, borderType=cv2.BORDER_REFLECT)
    gy = cv2.Sobel(image, cv2.CV_32F, 0, 1, ksize=3, borderType=cv2.BORDER_REFLECT)
    return np.hypot(gx, gy)


def _interior(valid: np.ndarray, margin: int = 3) -> np.ndarray:
    inner = cv2.erode(valid.astype(np.uint8), np.ones((2 * margin + 1,) * 2, np.uint8)) > 0
    inner[:margin] = inner[-margin:] = False
    inner[:, :margin] = inner[:, -margin:] = False
    return inner


def sar_reference_db(relative: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """3 x 3 median of the unfiltered SAR in dB (the edge reference), float32."""
    db = 10.0 * np.log10(np.maximum(np.where(valid, relative, 1.0), 1e-10))
    return cv2.medianBlur(db.astype(np.float32), 3)


def edge_fidelity(
    channels: np.ndarray, relative: np.ndarray, valid: np.ndarray
) -> float:
    """Correlation of the gradient magnitude of ``channels`` with the SAR's.

    Args:
        channels: ``(H, W)`` one channel (e.g. L), or ``(H, W, K)`` several (e.g. a*, b*),
            whose gradient magnitudes are combined as ``sqrt(sum g_k**2)``.
        relative: ``(H, W)`` unfiltered SAR intensity (any linear scale).
        valid: ``(H, W)`` True where the data are valid.

    Returns:
        Pearson correlation in [-1, 1]; NaN if either gradient is constant.
    """
    channels = np.asarray(channels, dtype=np.float32)
    if channels.ndim == 2:
        channels = channels[..., None]
    squares = [sobel_magnitude(channels[..., k]) ** 2 for k in range(channels.shape[-1])]
    magnitude = np.sqrt(np.sum(squares, axis=0))
    reference = sobel_magnitude(sar_reference_db(relative, valid))
    inner = _interior(valid)
    a, b = reference[inner].astype(np.float64), magnitude[inner].astype(np.float64)
    if a.std() == 0 or b.std() == 0:
        return float("nan")
    return float(np.corrcoef(a, b)[0, 1])


def colour_speckle_rms(ab: np.ndarray, valid: np.ndarray, sigma: float = 2.0) -> float:
    """RMS of ``ab`` (H, W, 2) minus its Gaussian blur (``sigma`` px) over valid pixels."""
    ab = np.asarray(ab, dtype=np.float32)
    blurred = cv2.GaussianBlur(ab, (0, 0), sigma, borderType=cv2.BORDER_REFLECT)
    residual = (ab - blurred.reshape(ab.shape))[_interior(valid, 4)]
    return float(np.sqrt(np.mean(residual.astype(np.float64) ** 2)))


def equivalent_number_of_looks(
    filtered: np.ndarray,
    relative: np.ndarray,
    valid: np.ndarray,
    block: int = 16,
    fraction: float = 0.1,
) -> float:
    """Median ENL of ``filtered`` intensity over the flattest ``fraction`` of ``block``-px blocks.

    Flatness is judged on ``relative`` (the unfiltered SAR) smoothed by a 5 x 5 mean: blocks
    with the smallest coefficient of variation of that, all pixels valid. The same blocks are
    used for every filter of the same image.
    """
    height, width = relative.shape
    rows, cols = height // block, width // block
    if rows == 0 or cols == 0:
        return float("nan")

    def blocks(image: np.ndarray) -> np.ndarray:
        cut = np.asarray(image, dtype=np.float64)[: rows * block, : cols * block]
        return cut.reshape(rows, block, cols, block).transpose(0, 2, 1, 3).reshape(rows * cols, -1)

    smooth = cv2.blur(np.where(valid, relative, 0.0).astype(np.float32), (5, 5))
    flat_blocks = blocks(smooth)
    all_valid = blocks(valid).min(axis=1) > 0
    variation = flat_blocks.std(axis=1) / np.maximum(flat_blocks.mean(axis=1), 1e-12)
    candidates = np.flatnonzero(all_valid & (flat_blocks.mean(axis=1) > 0))
    if not len(candidates):
        return float("nan")
    keep = max(1, int(len(candidates) * fraction))
    chosen = candidates[np.argsort(variation[candidates])][:keep]
    values = blocks(np.where(valid, filtered, 0.0))[chosen]
    enl = values.mean(axis=1) ** 2 / np.maximum(values.var(axis=1), 1e-12)
    return float(np.median(enl))
