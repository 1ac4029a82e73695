"""Speckle filters for whole SAR rasters (numpy / OpenCV), in linear power.

Speckle is multiplicative: in linear power an L-look homogeneous area has gamma-distributed
intensity with coefficient of variation ``Cu = 1 / sqrt(L)``. Every filter here therefore runs
on linear power, never on dB (averaging dB is biased and breaks the noise model).

Semantics shared exactly with :mod:`sar_colorizer.sar.speckle_tf` (the in-graph version used by
the ``tf.data`` input pipeline):

* **Nodata** is any non-finite pixel (NaN, inf). It never enters a statistic: local sums are
  normalised convolutions ``sum(x * valid) / sum(valid)`` over the window. Nodata pixels come
  out as NaN; every valid pixel comes out finite and independent of what lies under the nodata.
* **Outside the image is nodata too** (zero padding of both ``x * valid`` and ``valid``), so a
  pixel at the border is filtered from the part of its window inside the image.
* Windows are ``window x window`` (odd) centred on the pixel; ``looks`` is the equivalent number
  of looks (ENL) of the input, which sets the speckle level ``Cu**2 = 1 / looks``.

Filters (:data:`SPECKLE_FILTERS`):

* ``none``: identity (nodata set to NaN).
* ``boxcar``: local mean.
* ``median``: local median of the valid pixels (mean of the two middle values for an even
  count, as :func:`numpy.nanmedian`).
* ``lee``: Lee (1980) local-statistics MMSE filter,
  ``mean + k (x - mean)``, ``k = var_x / var``, ``var_x = max(var - mean**2 Cu**2, 0) / (1 + Cu**2)``.
* ``refined_lee``: Lee (1981) refined filter: the same MMSE estimate, but with its statistics
  taken over one of 8 edge-aligned windows (left/right/upper/lower half, four triangular halves
  along the diagonals, each including the centre line), chosen from the gradient of the 3 x 3
  grid of sub-window means (see :func:`refined_lee_subwindows`).
* ``frost``: Frost et al. (1982) adaptive exponential kernel
  ``exp(-alpha |t|)``, ``alpha = (2 / window) * Ci / Cu`` (damping factor 1), ``Ci`` the local
  coefficient of variation and ``|t|`` the Euclidean distance to the centre.
* ``gamma_map``: Lopes et al. (1990) Gamma-MAP filter: the local mean where ``Ci <= Cu``, the
  pixel itself where ``Ci >= sqrt(2) Cu`` (point targets), the MAP estimate in between.
"""

from __future__ import annotations

import itertools
import logging
import threading
from dataclasses import asdict, dataclass
from functools import lru_cache
from typing import Any

import cv2
import numpy as np
import numpy.typing as npt

from sar_colorizer.errors import InputError
from sar_colorizer.settings import check_known_keys

logger = logging.getLogger(__name__)

SPECKLE_FILTERS: tuple[str, ...] = (
    "none",
    "boxcar",
    "median",
    "lee",
    "refined_lee",
    "frost",
    "gamma_map",
)
"""Names accepted by :class:`SpeckleFilter`."""

# Order of the refined Lee edge-aligned windows; index = 2 * edge direction + side.
REFINED_LEE_WINDOWS: tuple[str, ...] = (
    "left",  # vertical edge, dj <= 0
    "right",  # vertical edge, dj >= 0
    "upper",  # horizontal edge, di <= 0
    "lower",  # horizontal edge, di >= 0
    "upper_right",  # edge along the main diagonal, dj >= di
    "lower_left",  # edge along the main diagonal, dj <= di
    "upper_left",  # edge along the anti-diagonal, di + dj <= 0
    "lower_right",  # edge along the anti-diagonal, di + dj >= 0
)

# Smallest normal float32: guards divisions whose numerator is 0 whenever the divisor is.
_TINY = np.float32(np.finfo(np.float32).tiny)

# Pixels per processing strip: small enough for the working set (~30 strip-sized arrays) to
# stay mostly in cache, large enough for the per-strip Python overhead not to count.
_STRIP_PIXELS = 1 << 18


@dataclass(frozen=True)
class SpeckleFilter:
    """A speckle filter chosen by name, with its window size and the input's number of looks.

    Stored in the model bundle (``to_dict``/``from_dict``): the model is trained on inputs
    filtered this way and inference must filter the same way.

    Attributes:
        name: One of :data:`SPECKLE_FILTERS` (``-`` is accepted for ``_``, case-insensitive).
        window: Odd window size in pixels, >= 3 (ignored by ``none``).
        looks: Equivalent number of looks (ENL) of the input, > 0; Sentinel-1 IW GRDH has
            about 4.4, single-look data 1. Used by ``lee``, ``refined_lee``, ``frost`` and
            ``gamma_map`` to tell speckle from texture.

    Raises:
        InputError: For an unknown name (the message lists the valid ones), an even or too small
            window, or a non-positive number of looks.
    """

    name: str = "boxcar"
    window: int = 5
    looks: float = 1.0

    def __post_init__(self) -> None:
        name = str(self.name).strip().lower().replace("-", "_")
        if name not in SPECKLE_FILTERS:
            raise InputError(
                f"unknown speckle filter {self.name!r}; choose one of: {', '.join(SPECKLE_FILTERS)}"
            )
        object.__setattr__(self, "name", name)
        window = self.window
        if (
            isinstance(window, bool)
            or not isinstance(window, int | np.integer)
            or (window < 3 or window % 2 == 0)
        ):
            raise InputError(
                f"speckle filter window must be an odd integer >= 3 (3, 5, 7, ...), got {window!r}"
            )
        object.__setattr__(self, "window", int(window))
        looks = self.looks
        if (
            isinstance(looks, bool)
            or not isinstance(looks, int | float | np.number)
            or not (np.isfinite(looks) and looks > 0)
        ):
            raise InputError(f"speckle filter looks (ENL) must be a number > 0, got {looks!r}")
        object.__setattr__(self, "looks", float(looks))

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict of the constructor arguments (stored in ``bundle.json``)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SpeckleFilter:
        """Rebuild from :meth:`to_dict` output; missing keys take their defaults.

        Raises:
            InputError: For unknown keys or invalid values.
        """
        check_known_keys(cls, data, "speckle filter settings")
        return cls(**data)

    def __call__(self, linear: npt.ArrayLike) -> np.ndarray:
        """Shorthand for :func:`apply_speckle_filter` with this filter."""
        return apply_speckle_filter(linear, self)


# --------------------------------------------------------------------------------------------
# Window geometry, shared with speckle_tf so both implementations use the same windows.


def refined_lee_subwindows(window: int) -> tuple[int, int]:
    """Size and spacing of the 3 x 3 grid of sub-windows used to find the edge direction.

    Lee (1981) splits the 7 x 7 window into nine overlapping 3 x 3 sub-windows whose centres
    are 2 px apart, so that together they cover the window exactly. Other sizes keep that
    scheme: odd sub-windows of about a third of the window (``2 * ((window + 1) // 6) + 1``),
    spaced so that the outer ones touch the window's edges: 3 -> 1 x 1 at 1 px, 5 -> 3 x 3 at
    1 px, 7 -> 3 x 3 at 2 px, 9 -> 3 x 3 at 3 px, 11 -> 5 x 5 at 3 px.

    Returns:
        ``(size, step)``: sub-window size and the offset between sub-window centres.
    """
    radius = window // 2
    size = 2 * ((window + 1) // 6) + 1
    return size, radius - size // 2


@lru_cache(maxsize=16)
def refined_lee_window_masks(window: int) -> np.ndarray:
    """The 8 edge-aligned windows of the refined Lee filter as boolean masks.

    Returns:
        Boolean array (8, window, window), in the order of :data:`REFINED_LEE_WINDOWS`; element
        ``[k, i, j]`` is the offset ``(i - r, j - r)`` from the centre pixel (r = window // 2).
    """
    radius = window // 2
    di, dj = np.mgrid[-radius : radius + 1, -radius : radius + 1]
    masks = np.stack(
        [dj <= 0, dj >= 0, di <= 0, di >= 0, dj >= di, dj <= di, di + dj <= 0, di + dj >= 0]
    )
    masks.setflags(write=False)
    return masks


@lru_cache(maxsize=16)
def frost_rings(window: int) -> tuple[np.ndarray, np.ndarray]:
    """Rings of equal Euclidean distance to the centre within the window (Frost kernel).

    Returns:
        ``(distances, masks)``: distances (K,) in ascending order (the first is 0, the centre)
        and boolean masks (K, window, window), offsets as in :func:`refined_lee_window_masks`.
    """
    radius = window // 2
    di, dj = np.mgrid[-radius : radius + 1, -radius : radius + 1]
    squared = di * di + dj * dj
    levels = np.unique(squared)
    masks = np.stack([squared == level for level in levels])
    distances = np.sqrt(levels).astype(np.float32)
    masks.setflags(write=False)
    distances.setflags(write=False)
    return distances, masks


# --------------------------------------------------------------------------------------------
# numpy implementation. Every kernel works on a strip of the zero-padded image (data with
# nodata set to 0, and the valid mask as 0/1) and returns the strip's centre, so the padding
# implements "outside the image is nodata" exactly and the strips join without seams.


def apply_speckle_filter(
    linear: npt.ArrayLike, spec: SpeckleFilter, valid: npt.ArrayLike | None = None
) -> np.ndarray:
    """Filter speckle from a linear-power raster.

    Args:
        linear: Linear power (never dB), (H, W) or (C, H, W); NaN/inf mark nodata. Each band
            is filtered on its own.
        spec: The filter, window and number of looks.
        valid: Optional (H, W) mask, True where the pixel holds data (in addition to NaN).

    Returns:
        float32 array of the input's shape; NaN exactly at the nodata pixels.

    Raises:
        InputError: If the array is not 2-D or 3-D or the mask does not match it.
    """
    if not isinstance(spec, SpeckleFilter):
        raise InputError(f"expected a SpeckleFilter, got {type(spec).__name__}")
    array = np.asarray(linear, dtype=np.float32)
    if array.ndim not in (2, 3):
        raise InputError(f"expected (H, W) or (C, H, W) linear power, got shape {array.shape}")
    mask = None
    if valid is not None:
        mask = np.asarray(valid, dtype=bool)
        if mask.shape != array.shape[-2:]:
            raise InputError(
                f"valid mask of shape {mask.shape} does not match the raster's {array.shape[-2:]}"
            )
    if array.ndim == 2:
        return _filter_plane(array, spec, mask)
    return np.stack([_filter_plane(band, spec, mask) for band in array])


class _Workspace:
    """Arrays reused from one strip (and one call) to the next, by name and shape.

    Strip-sized temporaries allocated afresh cost page faults (the allocator hands freed
    blocks of this size back to the OS), which made the Lee filters up to twice as slow; the
    hot paths write into these buffers instead (``out=`` / ``dst=``). One workspace per
    thread; it is emptied when it grows past ``_WORKSPACE_BYTES``.
    """

    def __init__(self) -> None:
        self._arrays: dict[tuple[str, tuple[int, ...], np.dtype], np.ndarray] = {}
        self._bytes = 0

    def __call__(
        self, name: str, shape: tuple[int, ...], dtype: npt.DTypeLike = np.float32
    ) -> np.ndarray:
        key = (name, tuple(shape), np.dtype(dtype))
        array = self._arrays.get(key)
        if array is None:
            array = np.empty(shape, dtype=dtype)
            if self._bytes + array.nbytes > _WORKSPACE_BYTES:
                self._arrays.clear()
                self._bytes = 0
            self._arrays[key] = array
            self._bytes += array.nbytes
        return array


_WORKSPACE_BYTES = 128 << 20
_workspaces = threading.local()


def _thread_workspace() -> _Workspace:
    workspace = getattr(_workspaces, "workspace", None)
    if workspace is None:
        workspace = _workspaces.workspace = _Workspace()
    return workspace


def _filter_plane(x: np.ndarray, spec: SpeckleFilter, mask: np.ndarray | None) -> np.ndarray:
    valid = np.isfinite(x)
    if mask is not None:
        valid &= mask
    if spec.name == "none" or x.size == 0:
        return np.where(valid, x, np.float32(np.nan)).astype(np.float32, copy=False)
    radius = spec.window // 2
    height, width = x.shape
    data = np.zeros((height + 2 * radius, width + 2 * radius), dtype=np.float32)
    weight = np.zeros_like(data)
    np.copyto(data[radius : radius + height, radius : radius + width], x, where=valid)
    weight[radius : radius + height, radius : radius + width] = valid
    # Rows holding no nodata: a strip made of such rows has the same mask in every row.
    full_rows = np.concatenate([[False] * radius, valid.all(axis=1), [False] * radius])
    full_rows_below = np.concatenate([[0], np.cumsum(full_rows)])
    kernel = _KERNELS[spec.name]
    workspace = _thread_workspace()
    out = np.empty((height, width), dtype=np.float32)
    rows = max(8, _STRIP_PIXELS // (width + 2 * radius))
    # The first and last `radius` rows get strips of their own, so that the strips between
    # them can be row-uniform (see below) when the image has no nodata.
    cut_set = {0, height, min(radius, height), max(height - radius, 0)}
    cut_set.update(range(radius, max(height - radius, radius), rows))
    cuts = sorted(cut_set)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        for top, bottom in itertools.pairwise(cuts):
            strip_weight = weight[top : bottom + 2 * radius]
            # Every row of the strip's mask is the same (no nodata, away from the top and
            # bottom edges): window counts depend on the column only and come from the first
            # 2 * radius + 1 rows ("row-uniform").
            uniform = bool(
                full_rows_below[bottom + 2 * radius] - full_rows_below[top] == len(strip_weight)
            )
            result = kernel(data[top : bottom + 2 * radius], strip_weight, spec, workspace, uniform)
            # 0 / weight is NaN at nodata and 0 elsewhere: marks nodata without a masked copy.
            centre_weight = _centre(_count_source(strip_weight, radius, uniform), radius)
            nodata = np.divide(
                np.float32(0.0), centre_weight, out=workspace("nodata", centre_weight.shape)
            )
            np.add(result, nodata, out=out[top:bottom])
    return out


def _count_source(weight: np.ndarray, radius: int, uniform: bool) -> np.ndarray:
    """The mask rows window counts are computed from: all, or for a row-uniform strip its
    first 2 * radius + 1 rows (their results, one row, stand for every row)."""
    return weight[: 2 * radius + 1] if uniform else weight


def _centre(array: np.ndarray, radius: int, dy: int = 0, dx: int = 0) -> np.ndarray:
    """The strip's output region of ``array`` (padded geometry), shifted by (dy, dx)."""
    height = array.shape[0] - 2 * radius
    width = array.shape[1] - 2 * radius
    return array[radius + dy : radius + dy + height, radius + dx : radius + dx + width]


def _output_shape(data: np.ndarray, radius: int) -> tuple[int, int]:
    return data.shape[0] - 2 * radius, data.shape[1] - 2 * radius


def _box(array: np.ndarray, height: int, width: int, dst: np.ndarray | None = None) -> np.ndarray:
    """Box sums with the kernel's anchor at (height // 2, width // 2).

    A separable filter with ones kernels: direct float32 sums, twice as fast as
    ``cv2.boxFilter`` on float32 (which runs double-precision running sums).
    """
    return cv2.sepFilter2D(
        array,
        -1,
        _ones(width),
        _ones(height),
        dst=dst,
        borderType=cv2.BORDER_CONSTANT,
    )


@lru_cache(maxsize=32)
def _ones(length: int) -> np.ndarray:
    return np.ones(length, dtype=np.float32)


def _mask_sum(array: np.ndarray, mask: np.ndarray, dst: np.ndarray | None = None) -> np.ndarray:
    """Correlation with a 0/1 mask centred on the pixel (sparse taps, so cheap)."""
    return cv2.filter2D(array, -1, mask.astype(np.float32), dst=dst, borderType=cv2.BORDER_CONSTANT)


def _moments(
    data: np.ndarray, weight: np.ndarray, window: int, workspace: _Workspace
) -> tuple[np.ndarray, np.ndarray]:
    """Local mean and variance of the valid pixels in the centred square window."""
    radius = window // 2
    shape = _output_shape(data, radius)
    count = _centre(_box(weight, window, window, workspace("box_weight", weight.shape)), radius)
    total = _box(data, window, window, workspace("box_data", data.shape))
    square = np.multiply(data, data, out=workspace("square", data.shape))
    total_square = _box(square, window, window, workspace("box_square", data.shape))
    mean = np.divide(_centre(total, radius), count, out=workspace("mean", shape))
    variance = np.divide(_centre(total_square, radius), count, out=workspace("variance", shape))
    variance -= np.multiply(mean, mean, out=workspace("mean_square", shape))
    np.maximum(variance, np.float32(0.0), out=variance)
    return mean, variance


def _lee_estimate(
    centre: np.ndarray,
    mean: np.ndarray,
    variance: np.ndarray,
    looks: float,
    workspace: _Workspace,
) -> np.ndarray:
    """Lee MMSE estimate ``mean + k (x - mean)`` for multiplicative noise with Cu**2 = 1/L.

    ``k = var_x / var`` with ``var_x = max(var - mean**2 Cu**2, 0) / (1 + Cu**2)``, in the
    operation order of the TensorFlow version; ``variance`` is overwritten.
    """
    noise = 1.0 / looks
    gain = np.multiply(mean, mean, out=workspace("gain", mean.shape))
    gain *= np.float32(noise)
    np.subtract(variance, gain, out=gain)
    np.maximum(gain, np.float32(0.0), out=gain)
    gain /= np.float32(1.0 + noise)
    # var_x <= var, and both are 0 together: no division by zero, no masked select.
    gain /= np.maximum(variance, _TINY, out=variance)
    estimate = np.subtract(centre, mean, out=workspace("estimate", mean.shape))
    estimate *= gain
    estimate += mean
    return estimate


def _boxcar(
    data: np.ndarray,
    weight: np.ndarray,
    spec: SpeckleFilter,
    workspace: _Workspace,
    uniform: bool,
) -> np.ndarray:
    radius, window = spec.window // 2, spec.window
    weight = _count_source(weight, radius, uniform)
    count = _centre(_box(weight, window, window, workspace("box_weight", weight.shape)), radius)
    total = _centre(_box(data, window, window, workspace("box_data", data.shape)), radius)
    return np.divide(total, count, out=workspace("estimate", _output_shape(data, radius)))


def _lee(
    data: np.ndarray,
    weight: np.ndarray,
    spec: SpeckleFilter,
    workspace: _Workspace,
    uniform: bool,
) -> np.ndarray:
    weight = _count_source(weight, spec.window // 2, uniform)
    mean, variance = _moments(data, weight, spec.window, workspace)
    centre = _centre(data, spec.window // 2)
    return _lee_estimate(centre, mean, variance, spec.looks, workspace)


def _gamma_map(
    data: np.ndarray,
    weight: np.ndarray,
    spec: SpeckleFilter,
    workspace: _Workspace,
    uniform: bool,
) -> np.ndarray:
    weight = _count_source(weight, spec.window // 2, uniform)
    mean, variance = _moments(data, weight, spec.window, workspace)
    centre = _centre(data, spec.window // 2)
    looks = np.float32(spec.looks)
    noise = np.float32(1.0 / spec.looks)
    ci2 = variance / np.maximum(mean * mean, _TINY)
    alpha = np.float32(1.0 + 1.0 / spec.looks) / (ci2 - noise)
    b = alpha - looks - np.float32(1.0)
    discriminant = mean * mean * b * b + np.float32(4.0) * alpha * looks * mean * centre
    estimate = (b * mean + np.sqrt(np.maximum(discriminant, np.float32(0.0)))) / (
        np.float32(2.0) * alpha
    )
    # Point targets keep their value, homogeneous areas take the mean.
    cv2.copyTo(centre, (ci2 >= np.float32(2.0) * noise).view(np.uint8), estimate)
    cv2.copyTo(mean, (ci2 <= noise).view(np.uint8), estimate)
    return estimate


def _frost(
    data: np.ndarray,
    weight: np.ndarray,
    spec: SpeckleFilter,
    workspace: _Workspace,
    uniform: bool,
) -> np.ndarray:
    radius = spec.window // 2
    weight = _count_source(weight, radius, uniform)
    mean, variance = _moments(data, weight, spec.window, workspace)
    shape = mean.shape
    # alpha = (2 / window) * Ci / Cu, from Ci**2 = variance / mean**2 and Cu**2 = 1 / looks.
    alpha = np.multiply(mean, mean, out=workspace("alpha", shape))
    np.maximum(alpha, _TINY, out=alpha)
    np.divide(variance, alpha, out=alpha)
    alpha *= np.float32(spec.looks)
    np.sqrt(alpha, out=alpha)
    alpha *= np.float32(-2.0 / spec.window)
    distances, masks = frost_rings(spec.window)
    numerator = np.array(_centre(data, radius), order="C")
    denominator = np.array(np.broadcast_to(_centre(weight, radius), shape), order="C")
    ring_data = workspace("ring_data", data.shape)
    ring_count = workspace("ring_count", weight.shape)
    ring_weight = workspace("ring_weight", shape)
    term = workspace("term", shape)
    for distance, mask in zip(distances[1:], masks[1:], strict=True):
        # cv2.exp is ~5x faster than np.exp on float32.
        cv2.exp(np.multiply(alpha, distance, out=ring_weight), dst=ring_weight)
        numerator += np.multiply(
            ring_weight, _centre(_mask_sum(data, mask, ring_data), radius), out=term
        )
        denominator += np.multiply(
            ring_weight, _centre(_mask_sum(weight, mask, ring_count), radius), out=term
        )
    return np.divide(numerator, denominator, out=numerator)


@lru_cache(maxsize=16)
def _refined_lee_gradient_kernels(window: int) -> tuple[np.ndarray, ...]:
    """Gradient masks over the 3 x 3 sub-window means (Lee 1981), as correlation kernels
    with taps at the sub-window centres, in the order of the window pairs of
    :data:`REFINED_LEE_WINDOWS`: vertical edge, horizontal edge, edge along the main diagonal,
    edge along the anti-diagonal."""
    _, step = refined_lee_subwindows(window)
    signs = (
        ((-1, 0, 1), (-1, 0, 1), (-1, 0, 1)),
        ((1, 1, 1), (0, 0, 0), (-1, -1, -1)),
        ((0, 1, 1), (-1, 0, 1), (-1, -1, 0)),
        ((1, 1, 0), (1, 0, -1), (0, -1, -1)),
    )
    kernels = []
    for sign in signs:
        kernel = np.zeros((2 * step + 1, 2 * step + 1), dtype=np.float32)
        kernel[::step, ::step] = sign
        kernels.append(kernel)
    return tuple(kernels)


def _refined_lee_choice(
    data: np.ndarray, weight: np.ndarray, window: int, workspace: _Workspace
) -> np.ndarray:
    """Index (0-7, :data:`REFINED_LEE_WINDOWS`) of the edge-aligned window for each pixel.

    The edge direction is the largest of four gradients of the 3 x 3 sub-window means (the
    first one on ties); the side is the half whose outer sub-window mean is closer to the
    centre's (the second on ties). An empty sub-window (all nodata or outside the image) has
    mean 0, so the window turns away from nodata and the image edge.
    """
    radius = window // 2
    size, step = refined_lee_subwindows(window)
    shape = _output_shape(data, radius)
    sums = _box(data, size, size, workspace("sub_sums", data.shape))
    counts = _box(weight, size, size, workspace("sub_counts", weight.shape))
    np.maximum(counts, np.float32(0.5), out=counts)
    if counts.shape != sums.shape:  # row-uniform mask: its middle row stands for every row
        counts = counts[radius]
    means = np.divide(sums, counts, out=workspace("sub_means", data.shape))
    gradients = []
    for k, kernel in enumerate(_refined_lee_gradient_kernels(window)):
        filtered = cv2.filter2D(
            means, -1, kernel, dst=workspace("gradient", data.shape), borderType=cv2.BORDER_CONSTANT
        )
        gradients.append(np.abs(_centre(filtered, radius), out=workspace(f"g{k}", shape)))
    m = {
        (a, b): _centre(means, radius, (a - 1) * step, (b - 1) * step)
        for a in (0, 1, 2)
        for b in (0, 1, 2)
    }
    centre = m[1, 1]
    # For each direction: is the first window of its pair (REFINED_LEE_WINDOWS) closer?
    pairs = (((1, 0), (1, 2)), ((0, 1), (2, 1)), ((0, 2), (2, 0)), ((0, 0), (2, 2)))
    first_side = []
    distance_a, distance_b = workspace("distance_a", shape), workspace("distance_b", shape)
    for k, (a, b) in enumerate(pairs):
        cv2.absdiff(m[a], centre, dst=distance_a)
        cv2.absdiff(m[b], centre, dst=distance_b)
        first_side.append(np.less(distance_a, distance_b, out=workspace(f"s{k}", shape, bool)))
    best = gradients[0]
    choice = workspace("choice", shape, np.uint8)
    choice.fill(0)
    side = first_side[0]
    better = workspace("better", shape, bool)
    scratch = workspace("scratch", shape, bool)
    step_choice = workspace("step_choice", shape, np.uint8)
    for k in range(1, 4):
        np.greater(gradients[k], best, out=better)
        np.maximum(best, gradients[k], out=best)
        np.maximum(choice, np.multiply(better, np.uint8(2 * k), out=step_choice), out=choice)
        # side = better ? first_side[k] : side
        np.logical_and(first_side[k], better, out=scratch)
        np.logical_not(better, out=better)
        np.logical_and(side, better, out=side)
        np.logical_or(side, scratch, out=side)
    np.logical_not(side, out=side)
    choice += side.view(np.uint8)
    return choice


def _refined_lee_offsets(window: int) -> list[tuple[int, int, int]]:
    """(slot, dy, dx) of each window of :data:`REFINED_LEE_WINDOWS` in the slot images of
    :func:`_refined_lee_window_sums`."""
    radius = window // 2
    half = (radius + 1) // 2
    return [
        (0, 0, half - radius),
        (0, 0, half),
        (1, half - radius, 0),
        (1, half, 0),
        (2, 0, 0),
        (3, 0, 0),
        (4, 0, 0),
        (5, 0, 0),
    ]


@lru_cache(maxsize=16)
def _refined_lee_triangle_kernels(window: int) -> tuple[tuple[np.ndarray, int], ...]:
    """Each triangular window as (kernel, half): the triangle's sum is the sum over the
    upper (2) or lower (3) half-window plus the correlation with ``kernel`` = triangle mask
    minus half mask, which has r (r + 1) taps instead of the triangle's (r + 1)(2r + 1)."""
    masks = refined_lee_window_masks(window).astype(np.float32)
    halves = {4: 2, 5: 3, 6: 2, 7: 3}
    return tuple((masks[k] - masks[halves[k]], halves[k]) for k in range(4, 8))


def _refined_lee_window_sums(plane: np.ndarray, window: int, slots: np.ndarray) -> np.ndarray:
    """Fill ``slots`` (6, *plane.shape) with the images the 8 window sums are read from (see
    :func:`_refined_lee_offsets`; only the strip's output region of slots 2-5 is valid)."""
    radius = window // 2
    half = (radius + 1) // 2
    _box(plane, window, radius + 1, slots[0])  # left / right halves
    _box(plane, radius + 1, window, slots[1])  # upper / lower halves
    shifts = {2: half - radius, 3: half}
    for slot, (kernel, base) in zip(slots[2:], _refined_lee_triangle_kernels(window), strict=True):
        cv2.filter2D(plane, -1, kernel, dst=slot, borderType=cv2.BORDER_CONSTANT)
        region = _centre(slot, radius)
        np.add(region, _centre(slots[1], radius, shifts[base], 0), out=region)
    return slots


def _refined_lee(
    data: np.ndarray,
    weight: np.ndarray,
    spec: SpeckleFilter,
    workspace: _Workspace,
    uniform: bool,
) -> np.ndarray:
    window = spec.window
    radius = window // 2
    shape = _output_shape(data, radius)
    source = _count_source(weight, radius, uniform)
    choice = _refined_lee_choice(data, source, window, workspace)
    offsets = _refined_lee_offsets(window)
    rows, cols = data.shape

    # Each pixel's chosen window sum, by flat index into the slot stack: one gather per
    # quantity instead of seven masked copies.
    table = np.zeros(256, dtype=np.int32)
    table[:8] = [slot * rows * cols + dy * cols + dx for slot, dy, dx in offsets]
    index = workspace("index", shape, np.intp)
    np.add(
        cv2.LUT(choice, table, dst=workspace("lookup", shape, np.int32)),
        _flat_base(shape, cols, radius),
        out=index,
    )
    slots = workspace("slots", (6, rows, cols))
    flat = slots.reshape(-1)
    _refined_lee_window_sums(data, window, slots)
    total = np.take(flat, index, out=workspace("total", shape), mode="clip")
    square = np.multiply(data, data, out=workspace("square", data.shape))
    _refined_lee_window_sums(square, window, slots)
    total_square = np.take(flat, index, out=workspace("total_square", shape), mode="clip")
    count = _refined_lee_counts(weight, source, choice, index, window, workspace)
    mean = np.divide(total, count, out=total)
    variance = np.divide(total_square, count, out=total_square)
    variance -= np.multiply(mean, mean, out=count)
    np.maximum(variance, np.float32(0.0), out=variance)
    return _lee_estimate(_centre(data, radius), mean, variance, spec.looks, workspace)


def _refined_lee_counts(
    weight: np.ndarray,
    source: np.ndarray,
    choice: np.ndarray,
    index: np.ndarray,
    window: int,
    workspace: _Workspace,
) -> np.ndarray:
    """Valid pixels in each pixel's chosen window (``index``: its flat index in the slots).

    All 8 windows hold window * (radius + 1) pixels where the whole square window is valid;
    only pixels near nodata or the image edge (usually few) count their window's taps.
    """
    radius = window // 2
    shape = choice.shape
    cols = weight.shape[1]
    count = workspace("count", shape)
    count.fill(window * (radius + 1))
    square = _centre(_box(source, window, window, workspace("box_weight", source.shape)), radius)
    # Pixels whose square window is cut by nodata or the edge; nodata pixels themselves come
    # out as NaN anyway.
    partial = np.broadcast_to(square < window * window - 0.5, shape) & np.broadcast_to(
        _centre(source, radius) > 0, shape
    )
    ys, xs = np.nonzero(partial)
    if len(ys) > count.size // 8:  # much nodata: count all windows with filters
        slots = _refined_lee_window_sums(weight, window, workspace("slots", (6, *weight.shape)))
        return np.take(slots.reshape(-1), index, out=count, mode="clip")
    if len(ys):
        taps = _refined_lee_taps(window, cols)
        centres = (ys + radius) * cols + (xs + radius)
        pixels = weight.reshape(-1)[centres[:, np.newaxis] + taps[choice[ys, xs]]]
        count[ys, xs] = pixels.sum(axis=1)
    return count


@lru_cache(maxsize=8)
def _refined_lee_taps(window: int, cols: int) -> np.ndarray:
    """Flat offsets (8, window * (radius + 1)) of each window's pixels from its centre in an
    image ``cols`` wide."""
    radius = window // 2
    di, dj = np.mgrid[-radius : radius + 1, -radius : radius + 1]
    offsets = (di * cols + dj).astype(np.intp)
    taps = np.stack([offsets[mask] for mask in refined_lee_window_masks(window)])
    taps.setflags(write=False)
    return taps


@lru_cache(maxsize=8)
def _flat_base(shape: tuple[int, int], cols: int, radius: int) -> np.ndarray:
    """Flat index of each output pixel's centre in a padded (rows, cols) image."""
    rows = np.arange(radius, radius + shape[0], dtype=np.intp) * cols
    base = rows[:, None] + np.arange(radius, radius + shape[1], dtype=np.intp)
    base.setflags(write=False)
    return base


def _median(
    data: np.ndarray,
    weight: np.ndarray,
    spec: SpeckleFilter,
    workspace: _Workspace,
    uniform: bool,
) -> np.ndarray:
    window = spec.window
    radius = window // 2
    taps = window * window
    count = _centre(_box(weight, window, window), radius)
    full = count >= taps - 0.5
    if window <= 5:
        # Exact median of a full window: OpenCV's sorting network for 3x3 / 5x5 float32.
        out = _centre(cv2.medianBlur(data, window), radius).copy()
    else:
        patches = np.lib.stride_tricks.sliding_window_view(data, (window, window))
        patches = patches.reshape(*patches.shape[:2], taps)
        out = np.partition(patches, taps // 2, axis=-1)[..., taps // 2]
    partial = ~full & (_centre(weight, radius) > 0)
    if partial.any():
        # Windows cut by nodata or the image edge: sort the valid values (NaN sorts last).
        rows, cols = np.nonzero(partial)
        di, dj = np.mgrid[0:window, 0:window]
        nan_data = np.where(weight > 0, data, np.float32(np.nan))
        values = np.sort(nan_data[rows[:, None] + di.ravel(), cols[:, None] + dj.ravel()], axis=-1)
        n = count[rows, cols].astype(np.int64)
        lower = np.take_along_axis(values, ((n - 1) // 2)[:, None], axis=-1)[:, 0]
        upper = np.take_along_axis(values, (n // 2)[:, None], axis=-1)[:, 0]
        out[rows, cols] = (lower + upper) * np.float32(0.5)
    return out


_KERNELS = {
    "boxcar": _boxcar,
    "median": _median,
    "lee": _lee,
    "refined_lee": _refined_lee,
    "frost": _frost,
    "gamma_map": _gamma_map,
}
