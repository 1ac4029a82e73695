"""Chip grids and the nodata / texture rules that drop chips."""

from __future__ import annotations

import numpy as np
import pytest

from sar_colorizer.data.chips import (
    ChipFilter,
    chip_grid,
    chip_origins,
    cut_chips,
    rejection_reason,
)
from sar_colorizer.errors import InputError


def _textured(height: int, width: int, channels: int = 1, seed: int = 0):
    rng = np.random.default_rng(seed)
    sar = rng.uniform(0.0, 1.0, (height, width, channels)).astype(np.float32)
    rgb = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
    valid = np.ones((height, width), dtype=bool)
    return sar, valid, rgb


def test_chip_origins_exact_tiling() -> None:
    assert chip_origins(1024, 256, 256) == [0, 256, 512, 768]
    assert chip_origins(256, 256, 256) == [0]


def test_chip_origins_stride_and_edge_flush_chip() -> None:
    assert chip_origins(100, 32, 16) == [0, 16, 32, 48, 64, 68]
    assert chip_origins(600, 256, 256) == [0, 256, 344]
    origins = chip_origins(97, 20, 13)
    assert origins[-1] == 97 - 20  # last chip flush with the edge: every pixel is covered
    assert all(b - a <= 13 for a, b in zip(origins, origins[1:], strict=False))


def test_chip_origins_too_small_image_has_no_chips() -> None:
    assert chip_origins(31, 32, 32) == []
    assert chip_grid(100, 31, 32) == []


def test_chip_origins_rejects_zero_size() -> None:
    with pytest.raises(InputError):
        chip_origins(10, 0, 1)


def test_chip_grid_counts_and_order() -> None:
    grid = chip_grid(64, 96, 32)
    assert len(grid) == 2 * 3
    assert grid[0] == (0, 0) and grid[1] == (0, 32) and grid[-1] == (32, 64)
    assert len(chip_grid(64, 64, 32, stride=16)) == 3 * 3


def test_cut_chips_returns_the_source_windows() -> None:
    sar, valid, rgb = _textured(64, 64, channels=2)
    chips, dropped = cut_chips(sar, valid, rgb, size=32, stride=16)
    assert len(chips) == 9 and sum(dropped.values()) == 0
    chip = next(c for c in chips if (c.row, c.col) == (16, 32))
    np.testing.assert_array_equal(chip.sar, sar[16:48, 32:64])
    np.testing.assert_array_equal(chip.rgb, rgb[16:48, 32:64])
    assert chip.sar.shape == (32, 32, 2) and chip.rgb.dtype == np.uint8


def test_cut_chips_converts_float_rgb_to_uint8() -> None:
    sar, valid, rgb = _textured(32, 32)
    chips, _ = cut_chips(sar, valid, rgb.astype(np.float32) / 255.0, size=32)
    np.testing.assert_array_equal(chips[0].rgb, rgb)


def test_nodata_fraction_threshold() -> None:
    sar, valid, rgb = _textured(32, 64)
    valid[:, :7] = False  # left chip: 7/32 = 22 % nodata
    valid[:, 32:34] = False  # right chip: 2/32 = 6 % nodata
    chips, dropped = cut_chips(sar, valid, rgb, size=32, chip_filter=ChipFilter(0.1))
    assert [(c.row, c.col) for c in chips] == [(0, 32)]
    assert dropped == {"nodata": 1}
    # the kept chip carries its mask, and nodata pixels are zeroed
    assert not chips[0].valid[:, :2].any() and chips[0].valid[:, 2:].all()
    assert (chips[0].sar[:, :2] == 0).all() and (chips[0].rgb[:, :2] == 0).all()
    chips, dropped = cut_chips(sar, valid, rgb, size=32, chip_filter=ChipFilter(0.3))
    assert len(chips) == 2 and not dropped


def test_nan_sar_is_zeroed_at_invalid_pixels() -> None:
    sar, valid, rgb = _textured(32, 32)
    sar[0, 0] = np.nan
    valid[0, 0] = False
    chips, _ = cut_chips(sar, valid, rgb, size=32)
    assert np.isfinite(chips[0].sar).all() and chips[0].sar[0, 0, 0] == 0


def test_flat_sar_and_flat_optical_are_dropped() -> None:
    sar, valid, rgb = _textured(32, 96)
    sar[:, :32] = 0.3  # constant SAR: fill or saturation
    rgb[:, 32:64] = (250, 250, 250)  # cloud top: flat optical
    chips, dropped = cut_chips(sar, valid, rgb, size=32)
    assert [(c.row, c.col) for c in chips] == [(0, 64)]
    assert dropped == {"flat_sar": 1, "flat_optical": 1}


def test_texture_is_measured_over_valid_pixels_only() -> None:
    sar, valid, rgb = _textured(32, 32)
    sar[:, :] = 0.2
    sar[0, :2] = 1.0  # only the invalid pixels vary
    valid[0, :2] = False
    assert rejection_reason(sar, valid, rgb, ChipFilter()) == "flat_sar"


def test_all_invalid_chip_is_nodata() -> None:
    sar, valid, rgb = _textured(16, 16)
    assert rejection_reason(sar, np.zeros_like(valid), rgb, ChipFilter(1.0)) == "nodata"


def test_chip_filter_validates() -> None:
    with pytest.raises(InputError):
        ChipFilter(max_nodata_fraction=1.5)
