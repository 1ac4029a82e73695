"""The tiling driver that predict runs (run_tile_row, TileStitcher, strip cutting) against the
whole image, with networks whose output is a known function of their input."""

from pathlib import Path

import keras
import numpy as np
import pytest
import rasterio
from scipy import ndimage

from sar_colorizer.bundle import load_bundle, save_bundle
from sar_colorizer.inference import colorize_raster, prepare_sar
from sar_colorizer.inference.runner import ModelRunner
from sar_colorizer.inference.tiles import TileStitcher, strip_span
from sar_colorizer.io.tiling import TileGrid


def _pointwise(batch: np.ndarray) -> np.ndarray:
    """Two AB-like channels, each a different function of each pixel's first channel."""
    x = batch[..., :1].astype(np.float32)
    return np.concatenate([np.tanh(3.0 * x - 1.0), x * x - 0.5], axis=-1)


def _local(batch: np.ndarray) -> np.ndarray:
    """A small deterministic convolution: 5x5 mean then a pointwise nonlinearity."""
    smoothed = ndimage.uniform_filter(batch, size=(1, 5, 5, 1), mode="constant")
    return np.tanh(smoothed * 2.0 - 0.5).astype(np.float32)


def _stitcher(forward, shape, tile, overlap, batch, channels, any_batch=False):
    grid = TileGrid.for_shape(shape[0], shape[1], tile, overlap)
    return TileStitcher(ModelRunner(forward, any_batch=any_batch), grid, channels, batch)


def _streamed(stitcher: TileStitcher, image: np.ndarray) -> np.ndarray:
    """The rows of tiles run on strips cut as predict's reader cuts them."""
    grid = stitcher.grid
    out = np.full((grid.height, grid.width, stitcher.channels), np.nan, np.float32)
    for row in range(grid.n_rows):
        first, stop = strip_span(grid, row)
        start, end, block = stitcher.row(row, image[first:stop].copy(), first)
        out[start:end] = block
    return out


@pytest.mark.parametrize(
    ("shape", "tile", "overlap", "batch"),
    [
        ((97, 131, 2), 32, 8, 3),
        ((20, 15, 1), 64, 16, 4),
        ((64, 64, 3), 64, 0, 1),
        ((200, 70, 1), 48, 24, 5),
    ],
)
def test_a_pointwise_network_stitches_to_the_function_of_the_whole_image(
    shape, tile, overlap, batch
):
    """Blending weights sum to one and every tile sees the scene's own pixels: the seams and
    the reflected borders must not show, whole image and strip by strip alike."""
    image = np.random.default_rng(0).random(shape, dtype=np.float32)
    expected = _pointwise(image[None])[0]
    whole = _stitcher(_pointwise, shape, tile, overlap, batch, 2).image(image)
    assert whole.shape == shape[:2] + (2,) and whole.dtype == np.float32
    np.testing.assert_allclose(whole, expected, rtol=1e-6, atol=1e-6)
    streamed = _streamed(_stitcher(_pointwise, shape, tile, overlap, batch, 2), image)
    np.testing.assert_array_equal(streamed, whole)


def test_blending_hides_the_tile_seams_of_a_local_network():
    image = np.random.default_rng(1).random((150, 230, 1), dtype=np.float32)
    whole = _local(image[None])[0]
    blended = _streamed(_stitcher(_local, image.shape, 64, 16, 4, 1), image)
    hard_seams = _streamed(_stitcher(_local, image.shape, 64, 0, 4, 1), image)
    # The 5x5 network sees the tile's zero padding within 2 px of a tile edge; those pixels
    # carry raised-cosine weights of at most 0.021, so the blend stays within ~1% of
    # whole-image inference, while tiles without overlap show seams many times larger. (The
    # outer 2 px differ by design: tiles see the scene reflected there, the whole image zeros.)
    interior = (slice(2, -2), slice(2, -2))
    blended_error = np.abs(blended - whole)[interior].max()
    assert blended_error < 0.015
    assert np.abs(hard_seams - whole)[interior].max() > 10 * blended_error
    # Away from every tile edge the tiled result is whole-image inference exactly.
    grid = TileGrid.for_shape(150, 230, 64, 16)
    r0, c0 = grid.row_origins[1], grid.col_origins[2]
    centre = (slice(r0 + 16, r0 + 48), slice(c0 + 16, c0 + 48))
    np.testing.assert_allclose(blended[centre], whole[centre], atol=1e-6)


def test_strips_hold_the_rows_their_tiles_reach_reflected_into_the_scene():
    grid = TileGrid.for_shape(100, 40, 32, 8)
    spans = [strip_span(grid, row) for row in range(grid.n_rows)]
    assert grid.row_origins[0] < 0 and spans[0][0] == 0  # the top tile reflects rows 1, 2, ...
    assert spans[-1][1] == 100
    for row, (first, stop) in enumerate(spans):
        r0, r1 = grid.strip_rows(row)
        assert stop - first <= r1 - r0 and 0 <= first < stop <= 100


@pytest.fixture(scope="module")
def pointwise_bundle(tmp_path_factory) -> Path:
    """A bundle whose network is a 1x1 convolution with tanh: AB is a function of each pixel."""
    inputs = keras.Input((None, None, 1))
    conv = keras.layers.Conv2D(2, 1, activation="tanh")
    model = keras.Model(inputs, conv(inputs))
    conv.set_weights([np.array([[[[2.5, -1.5]]]], np.float32), np.array([-1.0, 0.4], np.float32)])
    metadata = {
        "bands": ["VH"],
        "normalization": {"method": "percentile", "percentile": 99.0},
        "speckle_filter": {"name": "boxcar", "window": 5, "looks": 1.0},
        "tone": {"method": "sar"},
        "tile_size": 32,
    }
    return save_bundle(tmp_path_factory.mktemp("bundle") / "pointwise", model, metadata)


def test_predict_of_a_pointwise_network_is_that_function_of_the_whole_scene(
    pointwise_bundle, make_geotiff, tmp_path
):
    """The whole streaming path (strips with the speckle filter's halo, reflect-padded tiles,
    batches, blending, the AB output) gives the network's function of the whole scene's
    preprocessed input at every valid pixel."""
    rng = np.random.default_rng(4)
    db = (10 * np.log10(0.05 * rng.gamma(4.0, 0.25, (150, 170)))).astype(np.float32)
    db[:30, :25] = np.nan
    path = make_geotiff("scene_VH.tif", db, nodata=float("nan"))
    bundle = load_bundle(pointwise_bundle)
    colorize_raster(
        bundle, path, tmp_path / "out.tif", ab_path=tmp_path / "ab.tif", batch_size=3,
        colour_upsampling="bilinear", progress=False,
    )
    with rasterio.open(tmp_path / "ab.tif") as src:
        ab = src.read().transpose(1, 2, 0)
    valid = np.isfinite(db)
    relative = prepare_sar(db[None], valid, bundle)
    expected = np.tanh(relative * np.float32([2.5, -1.5]) + np.float32([-1.0, 0.4])) * 110.0
    np.testing.assert_allclose(ab[valid], expected[valid], atol=2e-4)
    assert np.all(np.isnan(ab[~valid]))


class _Counting:
    """A numpy network that counts the tiles it is given."""

    def __init__(self, forward):
        self.forward = forward
        self.tiles = 0

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        self.tiles += len(batch)
        return self.forward(batch)


@pytest.mark.parametrize(("batch", "any_batch"), [(1, False), (3, False), (3, True), (16, True)])
def test_tiles_without_data_never_reach_the_network(batch, any_batch):
    """Valid pixels get the outputs of a run over every tile; tiles without a valid pixel are
    never computed (a diagonal swath and a hole, as GRD footprints leave in a tile)."""
    rng = np.random.default_rng(5)
    shape = (150, 230)
    image = rng.random(shape + (1,), dtype=np.float32)
    rows, cols = np.mgrid[: shape[0], : shape[1]]
    valid = np.abs(cols / shape[1] - rows / shape[0]) < 0.12
    valid[60:70, 100:110] = False
    image[~valid] = 0.0
    every, skipping = _Counting(_local), _Counting(_local)
    expected = _stitcher(every, shape, 32, 8, batch, 1).image(image)
    stitcher = _stitcher(skipping, shape, 32, 8, batch, 1, any_batch)
    got = stitcher.image(image, valid=valid)
    np.testing.assert_array_equal(got[valid], expected[valid])
    grid = stitcher.grid
    padded = np.pad(valid, 64, mode="reflect")  # tiles beyond the edges are reflected
    with_data = sum(
        padded[r + 64 : r + 96, c + 64 : c + 96].any()
        for r in grid.row_origins for c in grid.col_origins
    )
    assert every.tiles >= len(grid)
    # Only the tiles with data, in full batches (the last one of a row padded, unless the
    # network takes any batch size).
    assert with_data <= skipping.tiles <= with_data + grid.n_rows * (batch - 1)
    if any_batch:
        assert skipping.tiles == with_data
    assert skipping.tiles < every.tiles / 2
    # Strip by strip as predict cuts them: the same.
    stitcher = _stitcher(_local, shape, 32, 8, batch, 1)
    streamed = np.full(got.shape, np.nan, np.float32)
    for row in range(grid.n_rows):
        first, stop = strip_span(grid, row)
        start, end, block = stitcher.row(row, image[first:stop].copy(), first,
                                         valid=valid[first:stop].copy())
        streamed[start:end] = block
    np.testing.assert_array_equal(streamed[valid], expected[valid])


def test_an_image_without_data_runs_no_tile():
    skipping = _Counting(_pointwise)
    stitcher = _stitcher(skipping, (70, 90), 32, 8, 4, 2)
    out = stitcher.image(np.zeros((70, 90, 1), np.float32), valid=np.zeros((70, 90), bool))
    assert skipping.tiles == 0 and not out.any()
