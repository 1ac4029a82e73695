"""Inference: preprocessing, tone curve, in-memory and streamed colorization agree."""

import math

import cv2
import keras
import numpy as np
import pytest
import rasterio
from affine import Affine

from sar_colorizer import inference
from sar_colorizer.bundle import load_bundle
from sar_colorizer.color.lab import AB_SCALE, lab_to_rgb
from sar_colorizer.errors import InputError, ModelMismatchError, OutputExistsError
from sar_colorizer.inference import (
    InputSpec,
    colorize_array,
    colorize_raster,
    prepare_sar,
    scene_statistics,
    tiles_per_call,
)
from sar_colorizer.inference import scene as inference_scene
from sar_colorizer.inference.runner import ModelRunner
from sar_colorizer.inference.tiles import TileStitcher
from sar_colorizer.io.tiling import TileGrid, reflect_pad_window
from sar_colorizer.nets.unet import ColorizationUNet
from sar_colorizer.sar.radiometry import Normalization
from sar_colorizer.sar.speckle import SpeckleFilter, apply_speckle_filter

TILE, OVERLAP = 64, 16


@pytest.fixture(scope="module")
def bundle(tiny_bundle):
    return load_bundle(tiny_bundle)


@pytest.fixture(scope="module")
def dual_bundle(make_bundle):
    return load_bundle(make_bundle(bands=("VV", "VH")))


def _sigma0_db(shape, seed=0):
    """Speckled dB backscatter with some structure (a bright block, a dark stripe)."""
    rng = np.random.default_rng(seed)
    height, width = shape
    mean = np.full(shape, 0.03)
    mean[height // 4 : height // 2, width // 3 : 2 * width // 3] = 0.3
    mean[:, width // 5 : width // 5 + 6] = 0.002
    linear = mean * rng.gamma(4.0, 0.25, size=shape)
    return (10 * np.log10(linear)).astype(np.float32)


@pytest.fixture
def db_scene(make_geotiff):
    """A float32 dB raster with NaN nodata in a corner and along the right edge."""
    db = _sigma0_db((150, 170))
    db[:30, :25] = np.nan
    db[:, -7:] = np.nan
    return make_geotiff("scene_VH.tif", db, nodata=float("nan"))


def test_prepare_sar_gives_filtered_relative_intensity(bundle):
    db = _sigma0_db((40, 50))
    valid = np.ones(db.shape, bool)
    valid[:5, :5] = False
    relative = prepare_sar(db[None], valid, bundle)
    assert relative.shape == (40, 50, 1) and relative.dtype == np.float32
    assert np.all(relative[~valid] == 0) and relative.min() >= 0 and relative.max() <= 1
    # Same as the documented chain: linear power, clip(x / p99), 5x5 boxcar (NaN-aware).
    linear = np.where(valid, 10 ** (db / 10), np.nan).astype(np.float32)
    reference = np.percentile(linear[valid], 99)
    expected = apply_speckle_filter(np.clip(linear / reference, 0, 1), SpeckleFilter("boxcar", 5))
    np.testing.assert_allclose(relative[..., 0][valid], expected[valid], rtol=1e-5, atol=1e-7)


def test_prepare_sar_is_independent_of_the_input_scale(bundle):
    db = _sigma0_db((30, 30))
    valid = np.ones(db.shape, bool)
    from_db = prepare_sar(db[None], valid, bundle)  # detected as dB
    from_linear = prepare_sar(10 ** (db[None] / 10), valid, bundle)  # detected as linear
    from_amplitude = prepare_sar(10 ** (db[None] / 20), valid, bundle, input_scale="amplitude")
    np.testing.assert_allclose(from_db, from_linear, atol=1e-5)
    np.testing.assert_allclose(from_db, from_amplitude, atol=1e-5)


def test_prepare_sar_uses_a_given_scene_reference():
    input_spec = InputSpec(Normalization(), SpeckleFilter("none"))
    values = np.array([[[1.0, 2.0], [4.0, 8.0]]], np.float32)
    relative = prepare_sar(values, np.ones((2, 2), bool), input_spec, "linear", reference=4.0)
    np.testing.assert_allclose(relative[..., 0], [[0.25, 0.5], [1.0, 1.0]])


def test_prepare_sar_rejects_mismatched_shapes_and_all_nodata(bundle):
    with pytest.raises(InputError, match="valid mask"):
        prepare_sar(np.ones((1, 4, 4), np.float32), np.ones((3, 3), bool), bundle)
    with pytest.raises(InputError, match="no valid pixels"):
        prepare_sar(np.ones((1, 4, 4), np.float32), np.zeros((4, 4), bool), bundle)


def test_colorize_array_outputs(bundle):
    db = _sigma0_db((48, 80))
    valid = np.isfinite(db)
    valid[:6, :6] = False
    result = colorize_array(bundle, db[None], valid)
    rgb, lab, ab = result["rgb"], result["lab"], result["ab"]
    assert rgb.shape == (48, 80, 3) and rgb.dtype == np.uint8
    assert lab.shape == (48, 80, 3) and lab.dtype == np.float32
    assert ab.shape == (48, 80, 2) and result["feature"].shape == (48, 80)
    assert np.all(rgb[~valid] == 0) and np.all(ab[~valid] == 0)
    assert np.abs(ab).max() <= AB_SCALE and np.abs(ab[valid]).max() > 0
    # LAB and RGB agree; L spans the tone curve.
    expected = np.round(keras.ops.convert_to_numpy(lab_to_rgb(lab)) * 255)
    assert np.abs(expected[valid] - rgb[valid]).max() <= 1
    assert lab[..., 0][valid].min() < 10 and lab[..., 0][valid].max() > 90


def test_colorize_array_refuses_the_wrong_number_of_bands(bundle):
    with pytest.raises(ModelMismatchError, match="expects 1 band"):
        colorize_array(bundle, np.ones((2, 16, 16), np.float32), np.ones((16, 16), bool))


@pytest.mark.parametrize(
    ("n_cols", "tile", "batch_size", "expected"),
    [
        (55, 256, None, 14),  # at most 16 tiles of 256 px: 4 calls of 14 (one padded tile)
        (16, 256, None, 16),
        (17, 256, None, 9),  # two calls, not 16 + 1
        (3, 512, None, 3),  # at most 4 tiles of 512 px
        (9, 512, None, 3),
        (5, 2048, None, 1),  # a tile larger than the pixel budget still runs
        (55, 256, 4, 4),
        (10, 256, 4, 4),  # three calls of at most 4: 4, 4, 2 + 2 padded
        (7, 256, 100, 7),
    ],
)
def test_tiles_per_call_spreads_the_row_evenly(n_cols, tile, batch_size, expected):
    per_call = tiles_per_call(n_cols, tile, batch_size)
    assert per_call == expected
    calls = -(-n_cols // per_call)
    limit = batch_size or max(1, (1 << 20) // tile**2)
    assert per_call <= limit and calls == -(-n_cols // limit)  # no more calls than needed


@pytest.mark.parametrize("downsample", [1, 2, 4])
def test_model_runner_gives_the_network_s_output(downsample):
    """The runner folds batch normalisation and, for a network that predicts AB at reduced
    resolution, upsamples with OpenCV outside TensorFlow: the result must be the model's."""
    keras.utils.set_random_seed(5)
    model = ColorizationUNet(depth=2, base_filters=4, downsample=downsample)
    rng = np.random.default_rng(1)
    for weight in model.weights:  # trained-looking batch normalisation and a varied output
        if "moving_variance" in weight.path:
            weight.assign(rng.uniform(0.2, 3.0, weight.shape).astype("float32"))
        elif "gamma" in weight.path or "beta" in weight.path or "moving_mean" in weight.path:
            weight.assign(rng.normal(0.0, 1.0, weight.shape).astype("float32"))
    runner = ModelRunner.from_keras(model)
    assert runner.upsample == (downsample > 1)
    multiple = 4 * downsample
    for shape in [(2, 4 * multiple, 4 * multiple, 1), (1, 3 * multiple, 5 * multiple, 1)]:
        x = rng.random(shape, dtype=np.float32)
        expected = model(x, training=False).numpy()
        assert np.abs(np.diff(expected, axis=2)).max() > 1e-3  # not a flat output
        np.testing.assert_allclose(runner(x), expected, atol=2e-5)
        wy = rng.random(shape[:2], dtype=np.float32)
        wx = rng.random((shape[0], shape[2]), dtype=np.float32)
        np.testing.assert_allclose(
            runner(x, (wy, wx)), expected * wy[:, :, None, None] * wx[:, None, :, None], atol=2e-5
        )


def test_tiles_per_call_refuses_an_empty_batch():
    with pytest.raises(InputError, match="batch-size"):
        tiles_per_call(10, 256, 0)


def _read(path):
    with rasterio.open(path) as src:
        return src.read(), src.profile, src.colorinterp


def test_streaming_matches_in_memory_tiling(bundle, db_scene, tmp_path):
    out = tmp_path / "out.tif"
    summary = colorize_raster(
        bundle,
        db_scene,
        out,
        tile_size=TILE,
        overlap=OVERLAP,
        batch_size=3,
        ab_path=tmp_path / "ab.tif",
        progress=False,
    )
    assert summary.input_scale == "db" and summary.tiles > 4 and summary.width == 170
    with rasterio.open(db_scene) as src:
        db = src.read()
    valid = np.isfinite(db[0])
    expected = colorize_array(bundle, db, valid, tile_size=TILE, overlap=OVERLAP)

    data, profile, interp = _read(out)
    assert profile["driver"] == "GTiff" and data.shape == (4, 150, 170) and data.dtype == np.uint8
    assert interp[3] == rasterio.enums.ColorInterp.alpha
    with rasterio.open(db_scene) as src:
        assert profile["crs"] == src.crs and profile["transform"] == src.transform
    np.testing.assert_array_equal(data[3] == 0, ~valid)  # alpha 0 exactly on nodata
    assert np.abs(data[:3].transpose(1, 2, 0).astype(int) - expected["rgb"]).max() <= 1
    ab, ab_profile, _ = _read(tmp_path / "ab.tif")
    assert ab.dtype == np.float32 and ab.shape == (2, 150, 170)
    assert ab_profile["crs"] == profile["crs"]
    assert np.all(np.isnan(ab[:, ~valid])) and np.all(np.isfinite(ab[:, valid]))
    np.testing.assert_allclose(ab.transpose(1, 2, 0)[valid], expected["ab"][valid], atol=1e-4)


def test_streaming_matches_per_tile_inference_inside_tiles(bundle, db_scene, tmp_path):
    """Where a tile has weight 1 (its centre), the scene output is that tile's own output
    (upsampled bilinearly, chroma not limited: the network's AB as it is)."""
    colorize_raster(
        bundle,
        db_scene,
        tmp_path / "out.tif",
        tile_size=TILE,
        overlap=OVERLAP,
        ab_path=tmp_path / "ab.tif",
        progress=False,
        colour_upsampling="bilinear",
        chroma_limit=False,
    )
    ab, _, _ = _read(tmp_path / "ab.tif")
    with rasterio.open(db_scene) as src:
        db = src.read()
    valid = np.isfinite(db[0])
    relative = prepare_sar(db, valid, bundle)
    grid = TileGrid.for_shape(150, 170, TILE, OVERLAP)
    for row, col in [(1, 1), (2, 2), (1, 2)]:
        r0, c0 = grid.row_origins[row], grid.col_origins[col]
        tile = reflect_pad_window(relative, 0, r0, c0, TILE, TILE, 150, 170)
        direct = keras.ops.convert_to_numpy(bundle.model(tile[None], training=False))[0]
        centre = (slice(OVERLAP, TILE - OVERLAP),) * 2
        scene = ab[:, r0 + OVERLAP : r0 + TILE - OVERLAP, c0 + OVERLAP : c0 + TILE - OVERLAP]
        scene_valid = valid[r0 + OVERLAP : r0 + TILE - OVERLAP, c0 + OVERLAP : c0 + TILE - OVERLAP]
        np.testing.assert_allclose(
            scene.transpose(1, 2, 0)[scene_valid],
            direct[centre][scene_valid] * AB_SCALE,
            atol=1e-3,
        )


def test_whole_image_and_tiled_inference_agree_closely(bundle):
    db = _sigma0_db((128, 128))
    valid = np.ones(db.shape, bool)
    whole = colorize_array(bundle, db[None], valid, tile_size=None)
    tiled = colorize_array(bundle, db[None], valid, tile_size=TILE, overlap=32)
    # The tiny U-Net sees less context in a tile; with blending the difference stays small.
    assert np.abs(whole["ab"] - tiled["ab"]).mean() < 1.0
    np.testing.assert_allclose(whole["lab"][..., 0], tiled["lab"][..., 0], atol=1e-3)


def test_integer_display_input_with_zero_nodata(bundle, make_geotiff, tmp_path):
    rng = np.random.default_rng(3)
    values = rng.integers(1, 256, (1, 70, 90)).astype(np.uint8)
    values[0, 60:, :] = 0
    path = make_geotiff("display.tif", values, nodata=0)
    summary = colorize_raster(
        bundle, path, tmp_path / "out.png", tile_size=TILE, overlap=OVERLAP, progress=False
    )
    assert summary.input_scale == "display"
    data, profile, _ = _read(tmp_path / "out.png")
    assert profile["driver"] == "PNG" and data.shape == (4, 70, 90)
    np.testing.assert_array_equal(data[3] == 0, values[0] == 0)
    assert np.all(data[:3, 60:] == 0)
    # Georeference travels in the .aux.xml / world file beside the PNG.
    assert profile["crs"] == rasterio.crs.CRS.from_epsg(32631)
    assert profile["transform"] == Affine(10.0, 0.0, 600000.0, 0.0, -10.0, 4800000.0)


def test_dual_polarisation_bands_by_name(dual_bundle, bundle, make_geotiff, tmp_path):
    db = np.stack([_sigma0_db((40, 60), 1) + 6, _sigma0_db((40, 60), 2)])
    path = make_geotiff("dual.tif", db, descriptions=["VV", "VH"])
    summary = colorize_raster(
        dual_bundle, path, tmp_path / "dual.png", tile_size=TILE, overlap=OVERLAP, progress=False
    )
    assert summary.bands == (1, 2)
    with pytest.raises(ModelMismatchError, match="reorder with --bands VV,VH"):
        colorize_raster(dual_bundle, path, tmp_path / "x.png", bands="VH,VV", progress=False)
    with pytest.raises(ModelMismatchError, match="choose one with --bands VH"):
        colorize_raster(bundle, path, tmp_path / "y.png", progress=False)
    summary = colorize_raster(
        bundle,
        path,
        tmp_path / "vh.png",
        bands="VH",
        tile_size=TILE,
        overlap=OVERLAP,
        progress=False,
    )
    assert summary.bands == (2,)
    assert not (tmp_path / "x.png").exists() and not (tmp_path / "y.png").exists()


def test_refuses_existing_outputs_before_any_work(bundle, db_scene, tmp_path):
    out = tmp_path / "out.png"
    out.write_bytes(b"keep me")
    with pytest.raises(OutputExistsError, match="--overwrite"):
        colorize_raster(bundle, db_scene, out, progress=False)
    assert out.read_bytes() == b"keep me"


def test_failure_midway_leaves_no_partial_output(bundle, db_scene, tmp_path, monkeypatch):
    calls = {"n": 0}
    original = TileStitcher.row

    def failing(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 2:
            raise RuntimeError("disk on fire")
        return original(*args, **kwargs)

    monkeypatch.setattr(TileStitcher, "row", failing)
    with pytest.raises(RuntimeError, match="disk on fire"):
        colorize_raster(
            bundle,
            db_scene,
            tmp_path / "out.png",
            tile_size=TILE,
            overlap=OVERLAP,
            ab_path=tmp_path / "ab.tif",
            progress=False,
        )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["scene_VH.tif"]


def test_quicklook_is_side_by_side_and_small(bundle, make_geotiff, tmp_path):
    db = _sigma0_db((40, 2600))
    path = make_geotiff("wide.tif", db)
    colorize_raster(
        bundle,
        path,
        tmp_path / "out.tif",
        tile_size=128,
        overlap=16,
        batch_size=8,
        quicklook_path=tmp_path / "ql.png",
        progress=False,
    )
    bgra = cv2.imread(str(tmp_path / "ql.png"), cv2.IMREAD_UNCHANGED)
    quicklook = bgra[..., [2, 1, 0, 3]].transpose(2, 0, 1)
    assert quicklook.shape[0] == 4 and quicklook.shape[2] <= 2048
    half = quicklook.shape[2] // 2
    factor = math.ceil(2600 / half)  # block-averaged by an integer factor
    assert quicklook.shape[2] == 2 * half and quicklook.shape[1] == math.ceil(40 / factor)
    left, right = quicklook[:3, :, :half], quicklook[:3, :, half:]
    assert np.all(left[0] == left[1]) and np.all(left[1] == left[2])  # SAR in grey
    assert np.any(right[0] != right[1])  # colours


def test_scene_statistics_come_from_a_decimated_read(bundle, db_scene, monkeypatch):
    """Statistics of a decimated read approximate those of the full image."""
    with rasterio.open(db_scene) as src:
        full = src.read()
        small = src.read(out_shape=(1, 75, 85), resampling=rasterio.enums.Resampling.nearest)
    input_spec = InputSpec.from_bundle(bundle)
    full_stats = scene_statistics(full, np.isfinite(full[0]), input_spec)
    small_stats = scene_statistics(small, np.isfinite(small[0]), input_spec)
    assert small_stats.references[0] == pytest.approx(full_stats.references[0], rel=0.3)
    assert np.median(np.abs(small_stats.feature_quantiles - full_stats.feature_quantiles)) < 0.03
    monkeypatch.setattr(inference_scene, "STATS_MAX_SIDE", 64)
    assert inference_scene.stats_shape(150, 170) == (56, 64)
    summary = colorize_raster(
        bundle,
        db_scene,
        db_scene.with_name("out.tif"),
        tile_size=TILE,
        overlap=OVERLAP,
        progress=False,
    )
    assert summary.references[0] == pytest.approx(full_stats.references[0], rel=0.3)


@pytest.fixture(scope="module")
def tile32_bundle(make_bundle):
    """A bundle whose network was trained on 32-px tiles (recorded in bundle.json)."""
    return load_bundle(make_bundle(tile_size=32))


def test_colorize_array_tiles_at_the_training_tile_size_by_default(tile32_bundle):
    db = _sigma0_db((96, 128))
    valid = np.ones(db.shape, bool)
    default = colorize_array(tile32_bundle, db[None], valid)
    explicit = colorize_array(tile32_bundle, db[None], valid, tile_size=32, overlap=4)
    whole = colorize_array(tile32_bundle, db[None], valid, tile_size=None)
    np.testing.assert_array_equal(default["ab"], explicit["ab"])
    # the whole-image pass sees other context, so its colours are not those of the tiles
    assert np.abs(default["ab"] - whole["ab"]).max() > 1e-3
    with pytest.raises(InputError, match="tile_size"):
        colorize_array(tile32_bundle, db[None], valid, tile_size="big")


def test_colorize_raster_tiles_at_the_training_tile_size_by_default(
    tile32_bundle, make_geotiff, tmp_path
):
    path = make_geotiff("scene_VH.tif", _sigma0_db((96, 128)), nodata=float("nan"))
    summary = colorize_raster(tile32_bundle, path, tmp_path / "out.tif", progress=False)
    # the default overlap is an eighth of the tile
    assert (summary.tile_size, summary.overlap) == (32, 4)
    summary = colorize_raster(
        tile32_bundle, path, tmp_path / "out64.tif", tile_size=64, overlap=16, progress=False
    )
    assert summary.tile_size == 64


def test_bundle_pixel_size_defaults_to_10_m(bundle):
    assert bundle.pixel_size == 10.0
    assert load_bundle("default").pixel_size == 10.0


def test_display_filter_sharpens_l_but_not_the_network_input(bundle):
    db = _sigma0_db((128, 128))
    valid = np.ones(db.shape, bool)
    old = colorize_array(bundle, db[None], valid, display_filter="network", tile_size=TILE)
    new = colorize_array(bundle, db[None], valid, tile_size=TILE)
    np.testing.assert_array_equal(old["relative"], new["relative"])  # the network sees the same
    from sar_colorizer.visual_quality import edge_fidelity

    relative = 10 ** (db / 10)  # L's edges against the SAR's own
    fidelity_old = edge_fidelity(old["lab"][..., 0], relative, valid)
    fidelity_new = edge_fidelity(new["lab"][..., 0], relative, valid)
    assert fidelity_new > fidelity_old + 0.15


@pytest.fixture
def db_scene_20m(make_geotiff):
    """The db_scene raster on a 20 m UTM grid."""
    db = _sigma0_db((150, 170))
    db[:30, :25] = np.nan
    return make_geotiff(
        "scene20_VH.tif",
        db,
        nodata=float("nan"),
        crs="EPSG:32631",
        transform=Affine(20.0, 0, 600000.0, 0, -20.0, 4800000.0),
    )


def test_pixel_size_from_the_crs_resamples_tiles_and_keeps_the_output_grid(
    bundle, db_scene_20m, tmp_path, monkeypatch
):
    seen = []
    original = ModelRunner.__call__

    def spy(self, batch, *args, **kwargs):
        seen.append(batch.shape[1])
        return original(self, batch, *args, **kwargs)

    monkeypatch.setattr(ModelRunner, "__call__", spy)
    out = tmp_path / "out.tif"
    summary = colorize_raster(
        bundle, db_scene_20m, out, tile_size=TILE, overlap=OVERLAP, progress=False
    )
    assert set(seen) == {TILE} and summary.tile_size == TILE // 2  # 20 m: half-size tiles
    with rasterio.open(db_scene_20m) as src, rasterio.open(out) as dst:
        assert (dst.width, dst.height) == (src.width, src.height)
        assert dst.crs == src.crs and dst.transform == src.transform
        db = src.read()
        alpha = dst.read(4)
    valid = np.isfinite(db[0])
    np.testing.assert_array_equal(alpha == 0, ~valid)
    # The same as in memory with the pixel size given, and not the same as without it.
    with rasterio.open(out) as dst:
        rgb = dst.read()[:3].transpose(1, 2, 0).astype(int)
    expected = colorize_array(bundle, db, valid, tile_size=TILE, overlap=OVERLAP, pixel_size=20.0)
    assert np.abs(rgb - expected["rgb"]).max() <= 1
    unscaled = colorize_array(bundle, db, valid, tile_size=TILE, overlap=OVERLAP)
    assert np.abs(expected["ab"] - unscaled["ab"])[valid].mean() > 0.01  # tiny untrained net
    # --pixel-size overrides the georeference: 10 m means no resampling.
    seen.clear()
    colorize_raster(
        bundle, db_scene_20m, tmp_path / "o10.tif", tile_size=TILE, overlap=OVERLAP,
        progress=False, pixel_size=10.0,
    )
    assert set(seen) == {TILE}


def test_pixel_size_without_georeference_keeps_the_grid(bundle):
    db = _sigma0_db((100, 90))
    valid = np.ones(db.shape, bool)
    valid[:10, :10] = False
    result = colorize_array(bundle, db[None], valid, tile_size=TILE, overlap=OVERLAP, pixel_size=40)
    assert result["rgb"].shape == (100, 90, 3)
    assert np.all(result["rgb"][~valid] == 0)


def test_balanced_tone_is_monotone_and_evener_than_matched():
    rng = np.random.default_rng(3)
    # A scene whose histogram is dense in the middle and sparse in the dark tail.
    feature = np.concatenate([rng.uniform(0.05, 0.4, 2000), rng.normal(0.7, 0.03, 8000)])
    scene = np.quantile(np.clip(feature, 0, 1), np.linspace(0, 1, 101))
    l_quantiles = np.linspace(10.0, 90.0, 101)
    matched = inference.tone_lut("matched", scene, l_quantiles)
    balanced = inference.tone_lut("balanced", scene, l_quantiles)
    assert np.all(np.diff(balanced) >= 0) and balanced.min() >= 0 and balanced.max() <= 100
    inside = slice(int(scene[1] * 4096), int(scene[99] * 4096))
    slope_matched, slope_balanced = np.diff(matched)[inside], np.diff(balanced)[inside]
    assert slope_balanced.std() / slope_balanced.mean() < 0.6 * (
        slope_matched.std() / slope_matched.mean()
    )
    # Half-way between the matched curve and the straight line through its 1 % and 99 % points.
    i = int(scene[50] * 4096)
    line = l_quantiles[1] + (i / 4096 - scene[1]) * (l_quantiles[99] - l_quantiles[1]) / (
        scene[99] - scene[1]
    )
    assert balanced[i] == pytest.approx(0.5 * matched[i] + 0.5 * line, abs=0.05)
