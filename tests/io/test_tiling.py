"""Tile grid, raised-cosine blending and the strip blender (pure numpy); stitching a network's
tiles is tested on the production driver in tests/inference/test_tiling_driver.py."""

import numpy as np
import pytest

from sar_colorizer.errors import InputError
from sar_colorizer.io.tiling import (
    StripBlender,
    TileGrid,
    axis_origins,
    blend_ramp,
    default_overlap,
    fit_tile_size,
    reflect_pad_window,
    round_tile_size,
)


@pytest.mark.parametrize(
    ("size", "multiple", "expected"), [(512, 32, 512), (500, 32, 512), (10, 32, 32), (530, 64, 512)]
)
def test_round_tile_size_gives_the_nearest_multiple(size, multiple, expected):
    assert round_tile_size(size, multiple) == expected


def test_round_tile_size_rejects_non_positive_sizes():
    with pytest.raises(InputError, match="tile-size"):
        round_tile_size(0, 32)


@pytest.mark.parametrize(
    ("height", "width", "expected"),
    [(5120, 12288, 512), (120, 120, 192), (217, 268, 352), (5, 3, 128)],
)
def test_fit_tile_size_shrinks_tiles_for_small_scenes(height, width, expected):
    tile = fit_tile_size(512, 32, height, width, 64)
    assert tile == expected and tile % 32 == 0 and tile >= 2 * 64
    grid = TileGrid.for_shape(height, width, tile, 64)
    if tile < 512:
        assert len(grid) == 1  # one tile covers the scene and its margins


@pytest.mark.parametrize(
    ("tile", "expected"), [(1024, 64), (512, 64), (256, 32), (128, 16), (32, 4), (4, 0)]
)
def test_default_overlap_is_an_eighth_of_the_tile_at_most_64_px(tile, expected):
    assert default_overlap(tile) == expected


def test_ramps_of_neighbouring_tiles_sum_to_one():
    ramp = blend_ramp(64)
    assert np.all(np.diff(ramp) > 0) and 0 < ramp[0] < 0.01 and 0.99 < ramp[-1] < 1
    np.testing.assert_allclose(ramp + ramp[::-1], 1.0, atol=1e-6)


@pytest.mark.parametrize("length", [1, 7, 100, 448, 449, 1000, 5120])
@pytest.mark.parametrize(("tile", "overlap"), [(512, 64), (64, 16), (32, 0), (64, 32)])
def test_axis_origins_cover_the_scene_with_a_margin(length, tile, overlap):
    origins = axis_origins(length, tile, overlap)
    assert np.all(np.diff(origins) == tile - overlap)
    assert origins[0] <= -(overlap // 2) and origins[-1] + tile >= length + overlap // 2
    # Centred: the padding on both sides differs by at most one pixel.
    assert abs(-origins[0] - (origins[-1] + tile - length)) <= 1
    # No wasted tile: one tile fewer could not cover the scene plus both margins.
    if len(origins) > 1:
        assert (len(origins) - 1) * (tile - overlap) + overlap < length + 2 * (overlap // 2)


def test_grid_weights_sum_to_one_over_the_scene():
    grid = TileGrid.for_shape(300, 410, 64, 16)
    blender = StripBlender(grid, channels=1)
    pad = grid.tile_size
    total = np.zeros((grid.height + 2 * pad, grid.width + 2 * pad))
    for i, r0 in enumerate(grid.row_origins):
        wy, wx = blender.axis_weights(i, range(grid.n_cols))
        for j, c0 in enumerate(grid.col_origins):
            total[pad + r0 : pad + r0 + 64, pad + c0 : pad + c0 + 64] += wy[j][:, None] * wx[j]
    np.testing.assert_allclose(total[pad : pad + 300, pad : pad + 410], 1.0, atol=1e-6)


def test_grid_rejects_overlap_larger_than_half_a_tile():
    with pytest.raises(InputError, match="overlap"):
        TileGrid.for_shape(100, 100, 64, 40)


def test_finished_rows_partition_the_scene():
    grid = TileGrid.for_shape(1000, 50, 128, 32)
    blocks = [grid.finished_rows(i) for i in range(grid.n_rows)]
    assert blocks[0][0] == 0 and blocks[-1][1] == 1000
    assert all(a[1] == b[0] for a, b in zip(blocks, blocks[1:], strict=False))


def test_reflect_pad_window_mirrors_about_the_scene_edge():
    scene = np.arange(5 * 6, dtype=np.float32).reshape(5, 6)
    window = reflect_pad_window(scene, 0, -2, -1, 9, 9, 5, 6)
    np.testing.assert_array_equal(window, np.pad(scene, [(2, 2), (1, 2)], mode="reflect"))
    # A window inside the scene is a plain slice.
    np.testing.assert_array_equal(reflect_pad_window(scene, 0, 1, 1, 3, 4, 5, 6), scene[1:4, 1:5])
    # Data holding only some rows of the scene (a strip).
    np.testing.assert_array_equal(
        reflect_pad_window(scene[2:], 2, 3, -1, 4, 3, 5, 6),
        np.pad(scene, [(0, 2), (1, 0)], mode="reflect")[3:7, 0:3],
    )


def test_blender_refuses_rows_out_of_order():
    grid = TileGrid.for_shape(100, 100, 32, 8)
    blender = StripBlender(grid, channels=1)
    with pytest.raises(ValueError, match="in order"):
        blender.add_tiles(1, 0, np.zeros((grid.n_cols, 32, 32, 1), np.float32))
    blender.add_tiles(0, 0, np.zeros((2, 32, 32, 1), np.float32))
    with pytest.raises(ValueError, match="not complete"):
        blender.finish_row(0)


def test_skipped_tiles_blend_as_tiles_of_zeros():
    """Tiles without data are skipped, not added as zeros: the blended rows are the same, and
    skips keep the order checks."""
    rng = np.random.default_rng(11)
    grid = TileGrid.for_shape(90, 130, 32, 8)
    adding, skipping = StripBlender(grid, channels=2), StripBlender(grid, channels=2)
    for row in range(grid.n_rows):
        skipped = [(row + col) % 3 == 0 for col in range(grid.n_cols)]
        for col in range(grid.n_cols):
            output = rng.normal(size=(1, 32, 32, 2)).astype(np.float32)
            if skipped[col]:
                adding.add_tiles(row, col, np.zeros_like(output))
                skipping.skip_tiles(row, col, col + 1)
            else:
                adding.add_tiles(row, col, output)
                skipping.add_tiles(row, col, output)
        expected, got = adding.finish_row(row), skipping.finish_row(row)
        assert expected[:2] == got[:2]
        np.testing.assert_array_equal(got[2], expected[2])
    with pytest.raises(ValueError, match="in order"):
        StripBlender(grid, channels=2).skip_tiles(0, 1, 2)
