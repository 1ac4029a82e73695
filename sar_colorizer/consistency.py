"""Does the colour of a place depend on where the tiles and the crop fall? Two measures.

* **Shift agreement** (:func:`shift_agreement`): colour an image and the same image cut by
  ``(rows, cols)`` pixels (or a centre crop of it); the land is the same, only the tile grid and
  the image's extent moved. Compare a*b* over the pixels both cover: RMSE and 95th percentile
  of the per-pixel a*b* distance, in CIELAB units. A colourisation that is a property of the land
  scores 0.
* **Seam score** (:func:`seam_score`): the mean a*b* step between neighbouring pixels across the
  tile grid's overlap bands (where two tiles' outputs are blended), divided by the same step
  everywhere else, across the same direction. Tiles that agree give about 1; tiles whose
  colours jump give more (the bands are where the jumps are spread).

Pure numpy; ``bench/consistency.py`` runs them on real scenes with ``predict``'s defaults.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from sar_colorizer.errors import InputError

__all__ = ["ShiftAgreement", "band_positions", "seam_score", "shift_agreement"]


@dataclass(frozen=True)
class ShiftAgreement:
    """a*b* agreement of two colourings over the pixels they share.

    Attributes:
        rmse: Root mean square of the per-pixel a*b* distance (CIELAB units).
        p95: 95th percentile of the per-pixel a*b* distance.
        pixels: Number of pixels compared.
    """

    rmse: float
    p95: float
    pixels: int


def shift_agreement(
    reference_ab: np.ndarray,
    cut_ab: np.ndarray,
    offset: tuple[int, int],
    reference_valid: np.ndarray | None = None,
    cut_valid: np.ndarray | None = None,
) -> ShiftAgreement:
    """Compare the a*b* of an image cut from a larger one with the larger one's a*b* there.

    Args:
        reference_ab: ``(H, W, 2)`` a*b* of the whole image.
        cut_ab: ``(h, w, 2)`` a*b* of the image cut at ``offset``: its pixel ``(i, j)`` is the
            whole image's ``(i + rows, j + cols)``.
        offset: ``(rows, cols)`` of the cut's first pixel in the whole image (``>= 0``).
        reference_valid, cut_valid: Masks of valid pixels (None: all).

    Returns:
        The :class:`ShiftAgreement` over the pixels valid in both.

    Raises:
        InputError: Bad shapes, an offset outside the image, or no pixel in common.
    """
    reference_ab = np.asarray(reference_ab, dtype=np.float64)
    cut_ab = np.asarray(cut_ab, dtype=np.float64)
    if reference_ab.ndim != 3 or cut_ab.ndim != 3 or reference_ab.shape[2] != cut_ab.shape[2]:
        raise InputError(
            f"a*b* must be (H, W, 2) arrays; got {reference_ab.shape} and {cut_ab.shape}"
        )
    rows, cols = (int(offset[0]), int(offset[1]))
    height, width = cut_ab.shape[:2]
    if rows < 0 or cols < 0 or rows + height > reference_ab.shape[0] or cols + width > reference_ab.shape[1]:
        raise InputError(
            f"a cut of {height} x {width} px at {rows}, {cols} does not lie inside the "
            f"{reference_ab.shape[0]} x {reference_ab.shape[1]} px image"
        )
    shared = reference_ab[rows : rows + height, cols : cols + width]
    valid = np.ones((height, width), dtype=bool)
    if reference_valid is not None:
        valid &= np.asarray(reference_valid, dtype=bool)[rows : rows + height, cols : cols + width]
    if cut_valid is not None:
        valid &= np.asarray(cut_valid, dtype=bool)
    valid &= np.isfinite(shared).all(axis=2) & np.isfinite(cut_ab).all(axis=2)
    if not valid.any():
        raise InputError("the two colourings share no valid pixel")
    distance = np.sqrt(np.sum((shared - cut_ab) ** 2, axis=2))[valid]
    return ShiftAgreement(
        rmse=float(np.sqrt(np.mean(distance**2))),
        p95=float(np.percentile(distance, 95)),
        pixels=int(valid.sum()),
    )


def band_positions(origins: Sequence[int], overlap: int, length: int) -> np.ndarray:
    """Indices ``k`` of the steps ``x[k] - x[k - 1]`` that lie in a tile grid's overlap bands.

    Tile ``i + 1`` starts at ``origins[i + 1]`` and tile ``i`` ends ``overlap`` pixels later, so
    the blend of the two spans the pixels ``[origins[i + 1], origins[i + 1] + overlap)``; the
    steps into, inside and out of that span are ``origins[i + 1] .. origins[i + 1] + overlap``
    (one step, at the tile edge, when ``overlap`` is 0). Steps outside ``1 .. length - 1`` are
    left out.

    Args:
        origins: Tile origins along one axis, increasing (the first tile has no band before it).
        overlap: Pixels shared by neighbouring tiles.
        length: Image size along the axis.

    Returns:
        Sorted unique step indices in ``[1, length)``.
    """
    steps = [
        np.arange(int(origin), int(origin) + max(int(overlap), 0) + 1) for origin in list(origins)[1:]
    ]
    if not steps:
        return np.empty(0, dtype=np.int64)
    positions = np.unique(np.concatenate(steps))
    return positions[(positions >= 1) & (positions < length)]


def seam_score(
    ab: np.ndarray,
    row_bands: Sequence[int] | np.ndarray,
    col_bands: Sequence[int] | np.ndarray,
    valid: np.ndarray | None = None,
) -> float:
    """Mean a*b* step across the tile grid's bands over the same step elsewhere.

    The step at row ``k`` is ``|ab[k] - ab[k - 1]|`` (a*b* distance between vertically
    neighbouring pixels), at column ``k`` the same horizontally; only steps between two valid
    pixels count. Steps in ``row_bands`` (rows) and ``col_bands`` (columns) are "on the seams",
    the other steps of the same direction are "elsewhere"; both directions are pooled.

    Args:
        ab: ``(H, W, 2)`` a*b*.
        row_bands: Row step indices on horizontal seams (:func:`band_positions`).
        col_bands: Column step indices on vertical seams.
        valid: ``(H, W)`` valid pixels (None: all finite).

    Returns:
        The ratio; about 1 when the tiles agree.

    Raises:
        InputError: No step on the seams or none elsewhere.
    """
    ab = np.asarray(ab, dtype=np.float64)
    if ab.ndim != 3:
        raise InputError(f"a*b* must be an (H, W, 2) array; got {ab.shape}")
    ok = np.isfinite(ab).all(axis=2)
    if valid is not None:
        ok &= np.asarray(valid, dtype=bool)
    on: list[np.ndarray] = []
    off: list[np.ndarray] = []
    for axis, bands in ((0, row_bands), (1, col_bands)):
        step = np.sqrt(np.sum(np.diff(ab, axis=axis) ** 2, axis=2))  # step k -> index k - 1
        both = ok[1:] & ok[:-1] if axis == 0 else ok[:, 1:] & ok[:, :-1]
        is_band = np.zeros(ab.shape[axis] - 1, dtype=bool)
        index = np.asarray(bands, dtype=np.int64) - 1
        is_band[index[(index >= 0) & (index < is_band.size)]] = True
        mask = is_band[:, None] if axis == 0 else is_band[None, :]
        on.append(step[both & mask])
        off.append(step[both & ~mask])
    on_steps, off_steps = np.concatenate(on), np.concatenate(off)
    if on_steps.size == 0 or off_steps.size == 0:
        raise InputError("the seam score needs valid steps both on the tile bands and elsewhere")
    elsewhere = float(off_steps.mean())
    if elsewhere == 0:
        return 1.0 if float(on_steps.mean()) == 0 else float("inf")
    return float(on_steps.mean()) / elsewhere
