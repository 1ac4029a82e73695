"""ColorizationUNet: shapes on unseen tile sizes, output range, serialization, FLOP count."""

import keras
import numpy as np
import pytest

from sar_colorizer.errors import InputError
from sar_colorizer.nets.layers import BlurPool2D, LogIntensity, ResizeLike, blur_kernel
from sar_colorizer.nets.unet import (
    ColorizationUNet,
    count_flops_per_pixel,
    fold_batch_norm,
)
from sar_colorizer.sar.radiometry import FEATURE_DB_MIN  # noqa: E402

TINY = {"depth": 2, "base_filters": 4}


def _relative_intensity(rng, shape):
    """Speckle-like relative intensity in [0, 1] (exponential, clipped at the 99th percentile)."""
    linear = rng.exponential(1.0, size=shape)
    return np.clip(linear / np.quantile(linear, 0.99), 0, 1).astype("float32")


@pytest.fixture(scope="module")
def tiny_model():
    keras.utils.set_random_seed(0)
    return ColorizationUNet(input_channels=1, downsample=2, **TINY)


def test_tile_multiple_is_downsample_times_two_to_the_depth():
    assert ColorizationUNet(depth=2, base_filters=2, downsample=4).tile_multiple == 16
    assert ColorizationUNet(depth=3, base_filters=2, downsample=1).tile_multiple == 8


def test_predicts_on_sizes_it_was_not_first_run_on(tiny_model):
    # The first predict traces at 64 px; the others must not fail on retracing with other
    # shapes (UpSampling2D(interpolation="bilinear") does,
    # see DESIGN_NOTES.md, "Bilinear upsampling that works at every tile size").
    rng = np.random.default_rng(1)
    for height, width in [(64, 64), (32, 32), (96, 160), (128, 32)]:
        x = _relative_intensity(rng, (2, height, width, 1))
        ab = tiny_model.predict(x, verbose=0)
        assert ab.shape == (2, height, width, 2)
        assert np.all(np.isfinite(ab))
        assert np.all(np.abs(ab) <= 1.0)


@pytest.mark.parametrize("downsample", [1, 2, 4])
def test_two_channel_model_runs_at_every_downsample(downsample):
    model = ColorizationUNet(input_channels=2, downsample=downsample, **TINY)
    size = model.tile_multiple * 2
    x = np.random.default_rng(2).random((1, size, size * 2, 2), dtype=np.float32)
    assert model(x).shape == (1, size, size * 2, 2)


def test_output_is_the_coarse_ab_resized_bilinearly_to_the_input_size():
    import tensorflow as tf

    keras.utils.set_random_seed(3)
    model = ColorizationUNet(input_channels=1, downsample=4, **TINY)
    coarse_model = keras.Model(model.inputs[0], model.get_layer("ab").output)
    x = _relative_intensity(np.random.default_rng(3), (1, 64, 96, 1))
    coarse = np.asarray(coarse_model(x))
    assert coarse.shape == (1, 16, 24, 2)
    expected = tf.image.resize(coarse, (64, 96), method="bilinear").numpy()
    np.testing.assert_allclose(np.asarray(model(x)), expected, atol=1e-6)


def test_log_intensity_is_the_db_feature():
    relative = np.array([[0.0, 1e-12, 10 ** (FEATURE_DB_MIN / 10), 0.01, 0.1, 1.0, np.nan]])
    feature = np.asarray(LogIntensity()(relative.astype("float32")))
    # 0 dB (the image's 99th percentile) -> 1, FEATURE_DB_MIN and below (and NaN) -> 0.
    expected = [
        0.0,
        0.0,
        0.0,
        (-20 - FEATURE_DB_MIN) / -FEATURE_DB_MIN,
        (-10 - FEATURE_DB_MIN) / -FEATURE_DB_MIN,
        1.0,
        0.0,
    ]
    np.testing.assert_allclose(feature[0], expected, atol=1e-6)


def test_log_intensity_matches_radiometry_relative_to_feature():
    from sar_colorizer.sar import radiometry

    assert radiometry.FEATURE_DB_MIN == FEATURE_DB_MIN
    relative = np.concatenate([[0.0, 1e-9, 1e-3], np.random.default_rng(4).random(200)])
    relative = relative.astype("float32")
    expected = radiometry.relative_to_feature(relative)
    np.testing.assert_allclose(np.asarray(LogIntensity()(relative)), expected, atol=1e-6)


def test_resize_like_takes_the_reference_size_at_run_time():
    layer = ResizeLike()
    small = np.ones((1, 3, 5, 2), dtype="float32") * 0.5
    reference = np.zeros((1, 12, 20, 1), dtype="float32")
    out = np.asarray(layer([small, reference]))
    assert out.shape == (1, 12, 20, 2)
    np.testing.assert_allclose(out, 0.5, atol=1e-7)
    with pytest.raises(ValueError, match="bilinear"):
        ResizeLike("cubic-spline")


def test_get_config_is_the_constructor_arguments_and_rebuilds():
    model = ColorizationUNet(
        input_channels=2,
        depth=2,
        base_filters=3,
        downsample=4,
        filter_growth=1.5,
        batch_norm=False,
        dropout=0.1,
        separable=True,
        confidence_head=True,
        novelty=True,
        name="net",
    )
    config = model.get_config()
    assert config == {
        "input_channels": 2,
        "depth": 2,
        "base_filters": 3,
        "downsample": 4,
        "filter_growth": 1.5,
        "batch_norm": False,
        "dropout": 0.1,
        "separable": True,
        "confidence_head": True,
        "novelty": True,
        "antialias": False,
        "name": "net",
    }
    clone = ColorizationUNet.from_config(config)
    assert clone.get_config() == config
    assert clone.count_params() == model.count_params()
    assert "feature_novelty" in [layer.name for layer in clone.layers]
    # Bundles saved before the novelty layer existed have no "novelty" key: built without it.
    old = {key: value for key, value in config.items() if key != "novelty"}
    assert not ColorizationUNet.from_config(old).novelty
    # ... nor an "antialias" key: plain pooling, as they were trained.
    old = {key: value for key, value in config.items() if key != "antialias"}
    assert not ColorizationUNet.from_config(old).antialias


def test_keras_file_round_trip_in_safe_mode(tmp_path, tiny_model):
    rng = np.random.default_rng(5)
    # Non-trivial batch-norm statistics, so that inference-mode weights matter in the comparison.
    for weight in tiny_model.weights:
        if "moving_mean" in weight.path:
            weight.assign(rng.uniform(-0.1, 0.1, weight.shape).astype("float32"))
        if "moving_variance" in weight.path:
            weight.assign(rng.uniform(0.5, 1.5, weight.shape).astype("float32"))
    path = tmp_path / "unet.keras"
    tiny_model.save(path)
    reloaded = keras.saving.load_model(path, safe_mode=True)
    assert isinstance(reloaded, ColorizationUNet)
    assert reloaded.get_config() == tiny_model.get_config()
    assert reloaded.tile_multiple == tiny_model.tile_multiple
    x = _relative_intensity(rng, (2, 32, 64, 1))
    expected = tiny_model.predict(x, verbose=0)
    assert np.std(expected) > 0
    np.testing.assert_allclose(reloaded.predict(x, verbose=0), expected, atol=1e-6)


def test_model_trains_a_step():
    keras.utils.set_random_seed(6)
    model = ColorizationUNet(input_channels=1, **TINY)
    model.compile(optimizer=keras.optimizers.Adam(1e-2), loss="mse")
    rng = np.random.default_rng(6)
    x = _relative_intensity(rng, (4, 32, 32, 1))
    y = np.tanh(x[..., [0, 0]] - 0.5).astype("float32")
    history = model.fit(x, y, epochs=3, batch_size=4, verbose=0)
    assert history.history["loss"][-1] < history.history["loss"][0]


@pytest.mark.parametrize(
    "kwargs",
    [
        {"input_channels": 0},
        {"depth": 0},
        {"base_filters": 0},
        {"downsample": 3},
        {"filter_growth": 0.5},
        {"dropout": 1.0},
    ],
)
def test_invalid_arguments_raise_input_error(kwargs):
    with pytest.raises(InputError):
        ColorizationUNet(**kwargs)


def test_flops_per_pixel_match_a_hand_count():
    # depth 1, 2 base filters, no downsampling, 1 channel, on 8x8:
    # enc0 conv1 1->2 and conv2 2->2 at 64 px; bottleneck 2->4, 4->4 at 16 px;
    # transposed 2x2 conv 4->2 over 16 input px; dec0 4->2, 2->2 at 64 px; 1x1 conv 2->2.
    model = ColorizationUNet(input_channels=1, depth=1, base_filters=2, downsample=1)
    expected = (
        2 * 9 * 1 * 2 * 64
        + 2 * 9 * 2 * 2 * 64
        + 2 * 9 * 2 * 4 * 16
        + 2 * 9 * 4 * 4 * 16
        + 2 * 4 * 4 * 2 * 16
        + 2 * 9 * 4 * 2 * 64
        + 2 * 9 * 2 * 2 * 64
        + 2 * 2 * 2 * 64
    )
    assert count_flops_per_pixel(model, 8) == pytest.approx(expected / 64)
    # Per pixel, the count does not depend on the tile size.
    assert count_flops_per_pixel(model, (16, 32)) == pytest.approx(expected / 64)


def test_downsampling_and_separable_convolutions_cut_flops():
    full = count_flops_per_pixel(ColorizationUNet(downsample=1, **TINY), 64)
    half = count_flops_per_pixel(ColorizationUNet(downsample=2, **TINY), 64)
    separable = count_flops_per_pixel(ColorizationUNet(downsample=1, separable=True, **TINY), 64)
    assert half == pytest.approx(full / 4)
    assert separable < full


@pytest.mark.parametrize("separable", [False, True])
def test_folding_batch_norm_keeps_the_predictions(separable):
    keras.utils.set_random_seed(3)
    model = ColorizationUNet(
        input_channels=2, depth=2, base_filters=4, downsample=2, separable=separable
    )
    rng = np.random.default_rng(0)
    for weight in model.weights:  # batch normalisations that are far from the identity
        if "gamma" in weight.path or "beta" in weight.path or "moving_mean" in weight.path:
            weight.assign(rng.normal(0.0, 1.0, weight.shape).astype("float32"))
        elif "moving_variance" in weight.path:
            weight.assign(rng.uniform(0.2, 3.0, weight.shape).astype("float32"))
    folded = fold_batch_norm(model)
    assert not folded.batch_norm
    assert not any(isinstance(layer, keras.layers.BatchNormalization) for layer in folded.layers)
    x = rng.random((2, 24, 40, 2), dtype=np.float32)
    expected = model(x, training=False).numpy()
    np.testing.assert_allclose(folded(x, training=False).numpy(), expected, atol=1e-5)
    # the statistics matter: without them the outputs differ
    assert np.abs(ColorizationUNet.from_config(folded.get_config())(x).numpy() - expected).max() > 1e-3


def test_folding_a_model_without_batch_norm_returns_it():
    model = ColorizationUNet(depth=1, base_filters=2, downsample=1, batch_norm=False)
    assert fold_batch_norm(model) is model


def _smooth_field(rng, shape, sigma=3.0):
    from scipy import ndimage

    field = ndimage.gaussian_filter(rng.random(shape), sigma)
    return ((field - field.min()) / (field.max() - field.min())).astype("float32")


@pytest.mark.parametrize(("factor", "mode"), [(4, "average"), (2, "average"), (2, "max")])
def test_blur_pool_keeps_the_pooling_grid_and_moves_with_shifts_of_its_factor(factor, mode):
    kernel = blur_kernel(factor, mode)
    assert sum(kernel) == pytest.approx(1.0) and kernel == kernel[::-1]
    layer = BlurPool2D(factor, mode)
    # A linear ramp: each output pixel is centred where the pooling block's centre is.
    ramp = np.tile(np.arange(64, dtype="float32"), (64, 1))[None, ..., None]
    out = np.asarray(layer(ramp))[0, :, :, 0]
    assert out.shape == (64 // factor, 64 // factor)
    centres = factor * np.arange(64 // factor) + (factor - 1) / 2 + (0.5 if mode == "max" else 0)
    np.testing.assert_allclose(out[8 // factor, 2:-2], centres[2:-2], atol=1e-4)
    # A shift by the factor moves the output by one pixel, exactly (away from the edges).
    rng = np.random.default_rng(0)
    image = rng.random((1, 96, 96, 3), dtype=np.float32)
    moved = np.asarray(layer(np.roll(image, factor, axis=1)))
    np.testing.assert_allclose(
        moved[0, 8:-8], np.roll(np.asarray(layer(image)), 1, axis=1)[0, 8:-8], atol=1e-6
    )


@pytest.mark.parametrize(("factor", "mode", "plain"), [
    (4, "average", keras.layers.AveragePooling2D(4)),
    (2, "max", keras.layers.MaxPooling2D(2)),
])
def test_blur_pool_changes_less_than_plain_pooling_when_the_input_moves_by_one_pixel(
    factor, mode, plain
):
    """Move the image by one pixel: the pooled output should move by 1/factor of its pixel
    (linear interpolation between its neighbours). Plain pooling aliases: it departs more."""
    rng = np.random.default_rng(1)
    image = _smooth_field(rng, (1, 128, 128, 1), sigma=0.7)

    def aliasing(pool):
        a = np.asarray(pool(image))[0, :, :, 0]
        b = np.asarray(pool(np.roll(image, -1, axis=2)))[0, :, :, 0]
        between = (1 - 1 / factor) * a[:, :-1] + (1 / factor) * a[:, 1:]
        return np.sqrt(np.mean((b[4:-4, 4:-5] - between[4:-4, 4:-4]) ** 2)) / a.std()

    assert aliasing(BlurPool2D(factor, mode)) < 0.85 * aliasing(plain)


def test_antialiased_model_round_trips_in_safe_mode_and_folds(tmp_path):
    keras.utils.set_random_seed(4)
    model = ColorizationUNet(input_channels=1, depth=2, base_filters=4, downsample=4,
                             separable=True, confidence_head=True, antialias=True)
    assert model.get_config()["antialias"] is True
    names = [layer.name for layer in model.layers]
    assert "downsample" in names and "dec0_resize" in names
    assert not any(isinstance(layer, keras.layers.Conv2DTranspose | keras.layers.MaxPooling2D)
                   for layer in model.layers)
    rng = np.random.default_rng(2)
    for weight in model.weights:
        if "moving_mean" in weight.path:
            weight.assign(rng.uniform(-0.1, 0.1, weight.shape).astype("float32"))
    x = _relative_intensity(rng, (2, 64, 128, 1))
    expected = model.predict(x, verbose=0)
    assert expected.shape == (2, 64, 128, 4) and np.std(expected[..., :2]) > 0
    path = tmp_path / "aa.keras"
    model.save(path)
    reloaded = keras.saving.load_model(path, safe_mode=True)
    assert reloaded.get_config() == model.get_config()
    np.testing.assert_allclose(reloaded.predict(x, verbose=0), expected, atol=1e-6)
    np.testing.assert_allclose(fold_batch_norm(model).predict(x, verbose=0), expected, atol=1e-5)
    # one model for every tile size that is a multiple of its tile_multiple (16 here)
    assert model.predict(x[:, :16, :48], verbose=0).shape == (2, 16, 48, 4)
