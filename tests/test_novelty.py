"""Novelty: the predicted spread rises where the network's features are unlike the training data's."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from sar_colorizer.bundle import load_bundle, save_bundle
from sar_colorizer.errors import InputError
from sar_colorizer.nets.layers import FeatureNovelty
from sar_colorizer.nets.unet import ColorizationUNet
from sar_colorizer.novelty import (
    NOVELTY_LAYER,
    FeatureDensity,
    choose_novelty,
    feature_novelty,
    fit_feature_density,
    gaussian_nll,
    has_novelty,
    set_novelty,
    validation_outputs,
    with_novelty,
)
from sar_colorizer.training import calibrate_confidence, with_heads


def _correlated_gaussian(rng, n, channels=6):
    mixing = rng.standard_normal((channels, channels))
    return rng.standard_normal((n, channels)) @ mixing + np.arange(channels), mixing


def test_density_whitens_training_features_and_flags_far_ones():
    rng = np.random.default_rng(0)
    features, mixing = _correlated_gaussian(rng, 20_000)
    density = FeatureDensity.fit(features)
    d2 = density.distance(features)
    # Squared Mahalanobis distance per dimension of Gaussian data: mean 1, median of chi2_6 / 6.
    assert d2.mean() == pytest.approx(1.0, abs=0.02)
    assert density.typical == pytest.approx(np.median(d2), rel=1e-3)
    assert np.mean(density.novelty(features) > 0) == pytest.approx(0.5, abs=0.01)
    # Along the direction of least variance a small step is already far; novelty grows with it.
    _, _, directions = np.linalg.svd(mixing)
    near = np.arange(6) + 0.5 * directions[-1] * np.linalg.svd(mixing)[1][-1]
    far = np.arange(6) + 20 * directions[-1] * np.linalg.svd(mixing)[1][-1]
    assert density.novelty(far[None])[0] > density.novelty(near[None])[0] + 3


def test_density_weights_count_like_repeated_pixels():
    rng = np.random.default_rng(1)
    a, _ = _correlated_gaussian(rng, 3000, channels=4)
    b = rng.standard_normal((1000, 4)) * 3 - 5
    repeated = FeatureDensity.fit(np.concatenate([a, b, b]))
    weighted = FeatureDensity.fit(np.concatenate([a, b]),
                                  np.concatenate([np.ones(len(a)), np.full(len(b), 2.0)]))
    np.testing.assert_allclose(weighted.mean, repeated.mean, rtol=1e-4, atol=1e-4)
    probe = rng.standard_normal((50, 4)) * 4
    np.testing.assert_allclose(weighted.distance(probe), repeated.distance(probe), rtol=2e-3)
    assert weighted.typical == pytest.approx(repeated.typical, rel=0.02)


def test_density_refuses_too_few_pixels_and_bad_weights():
    with pytest.raises(InputError, match="more pixels"):
        FeatureDensity.fit(np.ones((4, 8)))
    with pytest.raises(InputError, match="sample weights"):
        FeatureDensity.fit(np.random.default_rng(0).standard_normal((50, 2)), np.zeros(50))


def test_layer_is_the_numpy_definition_and_neutral_until_fitted():
    rng = np.random.default_rng(2)
    features, _ = _correlated_gaussian(rng, 4000, channels=5)
    density = FeatureDensity.fit(features)
    probe = (rng.standard_normal((2, 3, 4, 5)) * 4).astype(np.float32)
    log_variance = rng.uniform(-8, -2, (2, 3, 4, 2)).astype(np.float32)

    layer = FeatureNovelty()
    unchanged = np.asarray(layer([probe, log_variance]))
    np.testing.assert_allclose(unchanged, log_variance, atol=1e-5)  # weight 0: no change

    layer.mean.assign(density.mean)
    layer.whitening.assign(density.whitening)
    layer.typical.assign(density.typical)
    layer.novelty_weight.assign(0.02)
    expected = with_novelty(log_variance, density.novelty(probe), 0.02)
    np.testing.assert_allclose(np.asarray(layer([probe, log_variance])), expected, rtol=1e-4,
                               atol=1e-5)
    assert (expected >= log_variance - 1e-6).all() and (expected > log_variance + 0.1).any()


def test_novelty_is_zero_up_to_the_typical_distance_then_logarithmic():
    d2 = np.array([0.0, 0.5, 1.0, np.e, np.e**3])
    np.testing.assert_allclose(feature_novelty(d2, 1.0), [0, 0, 0, 1, 3], atol=1e-6)


def test_choose_novelty_raises_the_spread_only_where_it_predicts_the_error():
    rng = np.random.default_rng(3)
    n = 40_000
    novelty = np.where(rng.random(n) < 0.3, rng.uniform(1, 3, n), 0.0).astype(np.float32)
    truth = np.zeros((n, 2), np.float32)
    # Familiar pixels: error std 0.02, as the head says; unfamiliar ones: std 0.2, unpredicted.
    std = np.where(novelty > 0, 0.2, 0.02)[:, None]
    mean = (truth + std * rng.standard_normal((n, 2))).astype(np.float32)
    log_variance = np.full((n, 2), np.log(0.02**2), np.float32)
    choice = choose_novelty(truth, mean, log_variance, novelty)
    assert choice["novelty_weight"] > 0
    assert choice["nll"][f"{choice['novelty_weight']:g}"] < choice["nll"]["0"] - 1
    # Muting the now-uncertain colour (truth is grey) lowers the error at the chosen k.
    k = choice["shrink_k"]
    assert choice["ab_rmse"][f"{k:g}"] < min(choice["ab_rmse_without_novelty"].values())

    # Where novelty says nothing about the error, the spread is left alone.
    shuffled = rng.permutation(novelty)
    std = np.where(rng.random(n) < 0.3, 0.2, 0.02)[:, None]
    mean = (truth + std * rng.standard_normal((n, 2))).astype(np.float32)
    log_variance = np.log(std**2).repeat(2, axis=1).astype(np.float32)
    assert choose_novelty(truth, mean, log_variance, shuffled)["novelty_weight"] == 0


def test_gaussian_nll_is_lowest_at_the_true_variance():
    rng = np.random.default_rng(4)
    error = 0.1 * rng.standard_normal((20_000, 2))
    nlls = {v: gaussian_nll(np.zeros_like(error), error, np.full_like(error, np.log(v)))
            for v in (0.001, 0.01, 0.1)}
    assert min(nlls, key=nlls.get) == 0.01


def _head_model(novelty=True):
    keras.utils.set_random_seed(0)
    return ColorizationUNet(depth=2, base_filters=4, downsample=2, confidence_head=True,
                            novelty=novelty)


def _blocks(rng, n=8, size=32, level=0.3):
    """SAR relative intensity: bright and dark 8-px blocks around ``level`` (training-like)."""
    blocks = rng.random((n, size // 8, size // 8)) < 0.5
    x = np.where(np.kron(blocks, np.ones((8, 8))) > 0, level * 2, level / 4)
    valid = np.ones((n, size, size, 1))
    y = np.concatenate([np.zeros((n, size, size, 2)), valid], axis=-1)
    return x[..., None].astype(np.float32), y.astype(np.float32)


def test_adding_the_layer_changes_nothing_until_it_is_fitted():
    plain = _head_model(novelty=False)
    with_layer = with_heads(plain, True, True)
    assert has_novelty(with_layer) and not has_novelty(plain)
    x, _ = _blocks(np.random.default_rng(5))
    np.testing.assert_allclose(np.asarray(with_layer(x)), np.asarray(plain(x)), atol=1e-5)
    assert not has_novelty(with_heads(with_layer, False, True))  # no head, no novelty


def _smooth(rng, n=16, size=32):
    """Training-like SAR: smooth dark fields (relative intensity 0.02-0.05, 5% noise)."""
    level = rng.uniform(0.02, 0.05, (n, 1, 1, 1))
    x = level * (1 + 0.05 * rng.standard_normal((n, size, size, 1)))
    y = np.concatenate([np.zeros((n, size, size, 2)), np.ones((n, size, size, 1))], axis=-1)
    return x.astype(np.float32), y.astype(np.float32)


def test_fitted_model_is_less_sure_on_unfamiliar_input_and_round_trips(tmp_path):
    import tensorflow as tf

    model = _head_model()
    train = tf.data.Dataset.from_tensor_slices(_smooth(np.random.default_rng(6))).batch(8)
    density = fit_feature_density(model, [train], [1.0], max_pixels=5000)
    before = model.get_layer(NOVELTY_LAYER).get_weights()
    familiar, _ = _smooth(np.random.default_rng(7), n=4)
    strange = np.random.default_rng(8).uniform(0, 1, (4, 32, 32, 1)).astype(np.float32)
    head_familiar = np.exp(np.asarray(model(familiar))[..., 2:]).mean()
    head_strange = np.exp(np.asarray(model(strange))[..., 2:]).mean()

    set_novelty(model, density, 0.05)
    assert not np.allclose(model.get_layer(NOVELTY_LAYER).get_weights()[0], before[0])
    sigma_familiar = np.exp(np.asarray(model(familiar))[..., 2:]).mean()
    sigma_strange = np.exp(np.asarray(model(strange))[..., 2:]).mean()
    # Bright speckle after smooth dark fields: the spread rises far more than on familiar land
    # (by more than the untrained head's own difference between the two).
    assert sigma_strange - head_strange > 1.5 * (sigma_familiar - head_familiar) > 0
    assert sigma_strange / sigma_familiar > 1.3 * head_strange / head_familiar

    # The fitted layer travels in the bundle and reloads in safe mode with the same output.
    save_bundle(tmp_path / "m", model, {"bands": ["VH"], "confidence": {"shrink_k": 1.0}})
    loaded = load_bundle(tmp_path / "m")
    assert loaded.model.get_config()["novelty"]
    np.testing.assert_allclose(np.asarray(loaded.model(strange)), np.asarray(model(strange)),
                               rtol=1e-5, atol=1e-6)


def test_calibration_writes_the_weight_it_chose_or_zero_without_validation():
    import tensorflow as tf

    rng = np.random.default_rng(9)
    model = _head_model()
    x, y = _blocks(rng, n=16)
    train = tf.data.Dataset.from_tensor_slices((x, y)).batch(8)
    density = fit_feature_density(model, [train], [1.0], max_pixels=5000)

    layer = model.get_layer(NOVELTY_LAYER)
    layer.novelty_weight.assign(0.5)
    entry = calibrate_confidence(model, None, density)
    assert float(np.asarray(layer.novelty_weight)) == 0.0
    assert entry["chosen_on"].startswith("default")

    # Validation where the colour is wrong only on unfamiliar land: a weight above 0 is chosen.
    familiar, familiar_y = _blocks(np.random.default_rng(10), n=8)
    strange = np.random.default_rng(11).uniform(0.9, 1.0, (8, 32, 32, 1)).astype(np.float32)
    outputs = np.asarray(model(familiar))[..., :2]
    familiar_y[..., :2] = outputs  # the network is right here ...
    strange_y = familiar_y.copy()
    strange_y[..., :2] = np.asarray(model(strange))[..., :2] + 0.4  # ... and far off here
    val = tf.data.Dataset.from_tensor_slices(
        (np.concatenate([familiar, strange]), np.concatenate([familiar_y, strange_y]))).batch(8)
    entry = calibrate_confidence(model, val, density)
    weight = entry["novelty"]["weight"]
    assert weight > 0 and float(np.asarray(layer.novelty_weight)) == pytest.approx(weight)
    pixels = validation_outputs(model, val, density)
    assert float(np.asarray(layer.novelty_weight)) == pytest.approx(weight)  # restored
    assert pixels["novelty"][len(pixels["novelty"]) // 2:].mean() > pixels["novelty"][
        : len(pixels["novelty"]) // 2].mean()


def test_set_novelty_refuses_a_model_without_the_layer_or_other_features():
    density = FeatureDensity.fit(np.random.default_rng(0).standard_normal((100, 3)))
    with pytest.raises(InputError, match="no novelty layer"):
        set_novelty(_head_model(novelty=False), density, 0.1)
    with pytest.raises(InputError, match="features"):
        set_novelty(_head_model(), density, 0.1)


@pytest.mark.parametrize("export_format", ["savedmodel", "onnx"])
def test_export_carries_the_fitted_novelty(tmp_path, export_format):
    import tensorflow as tf

    from sar_colorizer.export import export_model

    if export_format == "onnx":
        pytest.importorskip("tf2onnx")
        ort = pytest.importorskip("onnxruntime")
    model = _head_model()
    train = tf.data.Dataset.from_tensor_slices(_smooth(np.random.default_rng(12))).batch(8)
    set_novelty(model, fit_feature_density(model, [train], [1.0], max_pixels=5000), 0.05)
    save_bundle(tmp_path / "m", model, {"bands": ["VH"], "confidence": {"shrink_k": 1.0}})
    bundle = load_bundle(tmp_path / "m")
    x = np.random.default_rng(13).random((2, 32, 48, 1), dtype=np.float32)
    expected = bundle.model(x).numpy()
    plain = with_heads(_head_model(novelty=False), True, True)  # same weights, layer unfitted
    assert np.abs(expected[..., 2:] - np.asarray(plain(x))[..., 2:]).max() > 0.1
    if export_format == "onnx":
        session = ort.InferenceSession(str(export_model(bundle, tmp_path / "m.onnx")))
        got = session.run(None, {session.get_inputs()[0].name: x})[0]
    else:
        loaded = tf.saved_model.load(str(export_model(bundle, tmp_path / "m_savedmodel")))
        got = loaded.serve(x).numpy()
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-4)
