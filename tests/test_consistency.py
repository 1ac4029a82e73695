"""The consistency measures (shift agreement, seam score) and the property they check in the
tiling machinery: a network whose output is a function of each pixel gives colours that move
with the land when the image is cut, wherever the tile grid falls."""

import numpy as np
import pytest
from scipy import ndimage

from sar_colorizer.consistency import band_positions, seam_score, shift_agreement
from sar_colorizer.errors import InputError
from sar_colorizer.inference.runner import ModelRunner
from sar_colorizer.inference.tiles import TileStitcher
from sar_colorizer.io.tiling import TileGrid


def _pointwise(batch: np.ndarray) -> np.ndarray:
    """An identity-like network: two channels, each a function of the pixel's own value."""
    x = batch[..., :1].astype(np.float32)
    return np.concatenate([40 * np.tanh(3.0 * x - 1.0), 30 * x * x - 10], axis=-1)


def _tile_bias(batch: np.ndarray) -> np.ndarray:
    """A network whose colour depends on the tile it sees: the tile's own mean is added."""
    out = _pointwise(batch)
    return out + 60 * batch[..., :1].mean(axis=(1, 2), keepdims=True)


def _stitched(forward, image, tile, overlap):
    grid = TileGrid.for_shape(image.shape[0], image.shape[1], tile, overlap)
    return TileStitcher(ModelRunner(forward), grid, 2, 4).image(image), grid


def _field(shape, seed=0, sigma=6.0):
    field = ndimage.gaussian_filter(np.random.default_rng(seed).random(shape), sigma)
    return ((field - field.min()) / (field.max() - field.min())).astype(np.float32)


@pytest.mark.parametrize("offset", [(1, 1), (8, 8), (37, 53), (64, 64)])
def test_a_cut_image_keeps_its_colours_with_a_pointwise_network(offset):
    """The grid moves with the cut (it is centred on each image), the colours must not."""
    image = _field((181, 233, 1))
    whole, _ = _stitched(_pointwise, image, 64, 16)
    rows, cols = offset
    cut, _ = _stitched(_pointwise, image[rows:, cols:], 64, 16)
    np.testing.assert_allclose(cut, whole[rows:, cols:], atol=1e-4)
    agreement = shift_agreement(whole, cut, offset)
    assert agreement.rmse < 1e-4 and agreement.pixels == cut.shape[0] * cut.shape[1]


def test_a_network_that_sees_its_tile_fails_the_shift_test_and_shows_seams():
    image = _field((181, 233, 1), seed=1, sigma=12.0)
    whole, grid = _stitched(_tile_bias, image, 64, 16)
    cut, _ = _stitched(_tile_bias, image[37:, 53:], 64, 16)
    assert shift_agreement(whole, cut, (37, 53)).rmse > 0.5
    rows = band_positions(grid.row_origins, grid.overlap, grid.height)
    cols = band_positions(grid.col_origins, grid.overlap, grid.width)
    assert seam_score(whole, rows, cols) > 1.5
    pointwise, _ = _stitched(_pointwise, image, 64, 16)
    assert seam_score(pointwise, rows, cols) == pytest.approx(1.0, abs=0.15)


def test_shift_agreement_measures_the_distance_over_shared_valid_pixels():
    reference = np.zeros((10, 12, 2))
    cut = np.zeros((6, 7, 2))
    cut[..., 0] = 3.0
    cut[..., 1] = 4.0  # a*b* distance 5 everywhere
    valid = np.ones((6, 7), dtype=bool)
    valid[0] = False
    cut[0] = 1000.0  # invalid: left out
    agreement = shift_agreement(reference, cut, (2, 3), cut_valid=valid)
    assert agreement.rmse == pytest.approx(5.0) and agreement.p95 == pytest.approx(5.0)
    assert agreement.pixels == 35
    with pytest.raises(InputError, match="does not lie inside"):
        shift_agreement(reference, cut, (5, 6))
    with pytest.raises(InputError, match="no valid pixel"):
        shift_agreement(reference, cut, (0, 0), cut_valid=np.zeros((6, 7), dtype=bool))


def test_band_positions_are_the_steps_into_through_and_out_of_each_overlap():
    # tiles at -4, 52, 108 of 64 px, overlap 8: blends over [52, 60) and [108, 116)
    assert band_positions([-4, 52, 108], 8, 150).tolist() == [*range(52, 61), *range(108, 117)]
    assert band_positions([0, 64], 0, 128).tolist() == [64]
    assert band_positions([0], 8, 50).size == 0


def test_seam_score_of_block_offsets_and_of_a_smooth_field():
    smooth = np.stack([_field((200, 200), 2), _field((200, 200), 3)], axis=-1) * 50
    rows = cols = band_positions([-10, 50, 110, 170], 4, 200)
    assert seam_score(smooth, rows, cols) == pytest.approx(1.0, abs=0.15)
    tile = np.searchsorted([52, 112, 172], np.arange(200))  # which tile a row / column is in
    blocks = smooth.copy()
    blocks[..., 0] += 4.0 * ((tile[:, None] + tile[None, :]) % 2)  # tiles of alternating colour
    assert seam_score(blocks, rows, cols) > 1.5
    with pytest.raises(InputError, match="both on the tile bands and elsewhere"):
        seam_score(smooth, [], [])
