"""The confidence head: it learns the error of the mean, travels in bundles, and mutes colour."""

from __future__ import annotations

import json
import math

import keras
import numpy as np
import pytest

from sar_colorizer.bundle import load_bundle
from sar_colorizer.confidence import (
    AB_SCALE,
    OutputPlan,
    choose_shrink,
    predicted_sigma,
    resolve_shrink,
    shrink_ab,
    shrink_gain,
    split_outputs,
)
from sar_colorizer.errors import InputError
from sar_colorizer.inference import colorize_array
from sar_colorizer.keras_metrics import ColourLoss, MaskedABRMSE, MaskedGaussianNLL
from sar_colorizer.losses import GaussianNLLChromaLoss, WeightedChromaLoss
from sar_colorizer.nets.unet import ColorizationUNet
from sar_colorizer.training import TrainConfig, build_model, with_confidence_head


def _sar(shape=(70, 90), seed=0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    linear = np.full(shape, 0.03) * rng.gamma(4.0, 0.25, size=shape)
    linear[20:40, 30:60] *= 10
    valid = np.ones(shape, bool)
    valid[:10, :15] = False
    return (10 * np.log10(linear))[None].astype(np.float32), valid


# -- the head learns ---------------------------------------------------------------------------


def _noisy_targets(rng, n=16, size=32):
    """SAR relative intensity of bright and dark 8-px blocks; the AB target is a mean colour
    per kind (bright: a = 0.2, b = -0.1; dark: a = -0.1, b = 0.1) plus noise of std 0.25 on
    bright blocks and 0.02 on dark ones. (The head reads the AB network's features, which
    must tell the kinds apart: here because their colours differ.)"""
    blocks = rng.random((n, size // 8, size // 8)) < 0.5
    bright = np.kron(blocks, np.ones((8, 8))).astype(bool)
    x = np.where(bright, 0.8, 0.02).astype(np.float32)[..., None]
    std = np.where(bright, 0.25, 0.02)[..., None]
    mean = np.where(bright[..., None], np.array([0.2, -0.1]), np.array([-0.1, 0.1]))
    ab = mean + std * rng.standard_normal((n, size, size, 2))
    y = np.concatenate([np.clip(ab, -1, 1), np.ones((n, size, size, 1))], axis=-1)
    return x, y.astype(np.float32), bright


def test_head_learns_higher_variance_where_the_target_is_noisier():
    keras.utils.set_random_seed(1)
    rng = np.random.default_rng(1)
    x, y, _ = _noisy_targets(rng, n=64)
    # No batch normalisation: its moving averages would lag behind this short training.
    model = ColorizationUNet(depth=1, base_filters=8, downsample=1, batch_norm=False,
                             confidence_head=True)
    model.compile(optimizer=keras.optimizers.Adam(1e-2),
                  loss=GaussianNLLChromaLoss(chroma_weight=0.0),
                  metrics=[MaskedABRMSE(), MaskedGaussianNLL()])
    history = model.fit(x, y, batch_size=16, epochs=25, verbose=0)
    assert history.history["nll"][-1] < history.history["nll"][0]

    x_test, y_test, bright = _noisy_targets(np.random.default_rng(7), n=8)
    out = model.predict(x_test, verbose=0)
    sigma = predicted_sigma(out[..., 2:4]) / AB_SCALE  # back to normalised units
    inner = np.zeros_like(bright)
    inner[:, 2:-2, 2:-2] = True  # block borders mix both kinds in the 3x3 convolutions
    sigma_bright = float(np.median(sigma[bright & inner]))
    sigma_dark = float(np.median(sigma[~bright & inner]))
    # The head separates the two noise levels (0.25 and 0.02) by far more than chance.
    assert sigma_bright > 3 * sigma_dark, (sigma_bright, sigma_dark)
    # ... and is about calibrated on the noisy blocks (the mean's error there is the noise).
    error = np.sqrt(np.mean(np.square(out[..., :2] - y_test[..., :2]), axis=-1))
    rmse_bright = float(np.sqrt(np.mean(np.square(error[bright & inner]))))
    assert 0.6 * rmse_bright < sigma_bright < 1.5 * rmse_bright, (sigma_bright, rmse_bright)


def test_nll_does_not_move_the_mean():
    """Gradients of the NLL reach only the head: the AB network's are the colour loss's."""
    import tensorflow as tf

    keras.utils.set_random_seed(2)
    model = ColorizationUNet(depth=1, base_filters=4, downsample=2, confidence_head=True)
    x, y, _ = _noisy_targets(np.random.default_rng(2), n=4)
    with_nll = GaussianNLLChromaLoss(chroma_weight=0.5, nll_weight=3.0)
    colour = WeightedChromaLoss(chroma_weight=0.5)
    head = {"variance_hidden", "variance_logits"}
    variables = [v for layer in model.layers if layer.name not in head for v in layer.trainable_weights]
    grads = []
    for loss in (with_nll, colour):
        with tf.GradientTape() as tape:
            value = loss(y, model(x, training=False))
        grads.append(tape.gradient(value, variables))
    for a, b in zip(*grads, strict=True):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-5, atol=1e-7)
    with tf.GradientTape() as tape:
        value = with_nll(y, model(x, training=False))
    head_grads = tape.gradient(value, model.get_layer("variance_logits").trainable_weights)
    assert all(float(tf.reduce_max(tf.abs(g))) > 0 for g in head_grads)


def test_metrics_measure_ab_only_and_the_nll():
    rng = np.random.default_rng(3)
    y = np.concatenate([rng.uniform(-0.5, 0.5, (2, 8, 8, 2)), np.ones((2, 8, 8, 1))], -1)
    y[0, :4, :, 2] = 0.0
    mean = y[..., :2] + 0.01
    log_var = np.full(mean.shape, math.log(0.01**2))
    pred = np.concatenate([mean, log_var], -1).astype(np.float32)
    rmse = MaskedABRMSE()
    rmse.update_state(y, pred)
    assert float(rmse.result()) == pytest.approx(1.1, rel=1e-4)  # 0.01 x 110, the AB error only
    nll = MaskedGaussianNLL()
    nll.update_state(y, pred)
    # A unit-scaled error (e = sigma) of sigma = 1.1 CIELAB units: 0.5 log(2 pi) + log 1.1 + 0.5.
    expected = 0.5 * math.log(2 * math.pi) + math.log(1.1) + 0.5
    assert float(nll.result()) == pytest.approx(expected, rel=1e-4)
    colour = ColourLoss(chroma_weight=0.0)
    colour.update_state(y, pred)
    assert float(colour.result()) == pytest.approx(1e-4, rel=1e-3)


# -- bundles -----------------------------------------------------------------------------------


def test_head_bundle_round_trips_in_safe_mode(tmp_path, make_bundle):
    path = make_bundle(tmp_path / "head", confidence_head=True)
    meta = json.loads((path / "bundle.json").read_text())
    assert meta["outputs"]["channels"] == ["a", "b", "log_var_a", "log_var_b"]
    bundle = load_bundle(path)  # safe_mode=True
    assert bundle.has_confidence and bundle.output_channels == meta["outputs"]["channels"]
    x = np.random.default_rng(0).random((1, 32, 32, 1), dtype=np.float32)
    keras.utils.set_random_seed(0)  # the same weights as make_bundle's
    original = ColorizationUNet(depth=2, base_filters=4, downsample=2, confidence_head=True)
    np.testing.assert_allclose(bundle.model(x).numpy(), original(x).numpy(), atol=1e-6)
    assert bundle.model(x).shape == (1, 32, 32, 4)


def test_bundle_without_outputs_entry_is_ab_only(tmp_path, make_bundle):
    path = make_bundle(tmp_path / "plain")
    meta = json.loads((path / "bundle.json").read_text())
    del meta["outputs"]  # as bundles written before the confidence head
    (path / "bundle.json").write_text(json.dumps(meta))
    bundle = load_bundle(path)
    assert bundle.output_channels == ["a", "b"] and not bundle.has_confidence
    assert resolve_shrink(bundle, None) is None
    with pytest.raises(InputError, match="no confidence head"):
        resolve_shrink(bundle, True)


def test_bundle_whose_outputs_disagree_with_the_model_is_refused(tmp_path, make_bundle):
    path = make_bundle(tmp_path / "head", confidence_head=True)
    meta = json.loads((path / "bundle.json").read_text())
    del meta["outputs"]  # a 4-channel model that claims AB only
    (path / "bundle.json").write_text(json.dumps(meta))
    with pytest.raises(InputError, match="names 2 output channels .* outputs 4"):
        load_bundle(path)


def test_old_bundles_predict_as_the_network_says(tiny_bundle):
    """Without a head, colorize_array's AB is the network's AB exactly, shrink or not."""
    bundle = load_bundle(tiny_bundle)
    values, valid = _sar()
    # Bilinear upsampling: the network's own output (guided upsampling follows L's edges).
    default = colorize_array(bundle, values, valid, tile_size=None, colour_upsampling="bilinear")
    off = colorize_array(
        bundle, values, valid, tile_size=None, shrink=False, colour_upsampling="bilinear"
    )
    assert "sigma" not in default
    np.testing.assert_array_equal(default["rgb"], off["rgb"])
    np.testing.assert_array_equal(default["ab"], off["ab"])
    relative = default["relative"]
    padded = np.pad(relative, ((0, 2), (0, 6), (0, 0)), mode="reflect")  # to multiples of 8
    network = bundle.model(padded[None]).numpy()[0, :70, :90] * AB_SCALE
    np.testing.assert_allclose(default["ab"][valid], network[valid], atol=0.02)


def test_head_model_shrinks_its_colour_and_reports_sigma(make_bundle):
    bundle = load_bundle(make_bundle(confidence_head=True, confidence={"shrink_k": 2.0}))
    values, valid = _sar()
    # Bilinear upsampling, so that the gain's relation to sigma is not mixed with L's edges.
    shrunk = colorize_array(bundle, values, valid, colour_upsampling="bilinear")
    plain = colorize_array(bundle, values, valid, shrink=False, colour_upsampling="bilinear")
    np.testing.assert_array_equal(shrunk["sigma"][valid], plain["sigma"][valid])
    assert np.isnan(shrunk["sigma"][~valid]).all()
    assert (shrunk["sigma"][valid] > 0).all()
    chroma_shrunk = np.hypot(*np.moveaxis(shrunk["ab"][valid], -1, 0))
    chroma_plain = np.hypot(*np.moveaxis(plain["ab"][valid], -1, 0))
    assert (chroma_shrunk <= chroma_plain + 0.02).all()
    assert chroma_shrunk.mean() < 0.95 * chroma_plain.mean()
    # The shrink follows the documented gain (applied at the network's resolution, then
    # upsampled with AB): pixels whose predicted spread is large against their colour lose
    # the most chroma.
    from scipy.stats import spearmanr

    moved = chroma_plain > 0.5
    expected_gain = chroma_plain**2 / (chroma_plain**2 + 2.0 * 2 * plain["sigma"][valid] ** 2)
    rho = spearmanr(expected_gain[moved], chroma_shrunk[moved] / chroma_plain[moved]).statistic
    assert rho > 0.8, rho


def test_fine_tuning_adds_a_head_and_keeps_the_ab_network():
    keras.utils.set_random_seed(0)
    plain = ColorizationUNet(depth=2, base_filters=4, downsample=2)
    with_head = with_confidence_head(plain, True)
    assert with_head.confidence_head and with_confidence_head(with_head, True) is with_head
    x = np.random.default_rng(0).random((1, 32, 32, 1), dtype=np.float32)
    np.testing.assert_allclose(with_head(x).numpy()[..., :2], plain(x).numpy(), atol=1e-6)
    assert build_model(TrainConfig(depth=1, confidence_head=False), 1).output_names_by_channel == (
        "a", "b")


# -- the shrink ----------------------------------------------------------------------------------


def test_shrink_is_monotone_in_the_variance_and_keeps_confident_pixels():
    ab = np.array([[0.3, -0.2]] * 7, dtype=np.float32)
    log_var = np.log(np.array([1e-12, 1e-6, 1e-4, 1e-3, 1e-2, 1e-1, 1.0]))[:, None].repeat(2, 1)
    gain = shrink_gain(ab, log_var, 1.0)
    assert gain[0] == pytest.approx(1.0, abs=1e-6)  # confident: unchanged
    assert np.all(np.diff(gain) < 0) and gain[-1] < 0.1
    assert np.all((gain >= 0) & (gain <= 1))
    shrunk = shrink_ab(ab, log_var, 1.0)
    # Same hue (a / b ratio), less chroma.
    np.testing.assert_allclose(shrunk[:, 0] / shrunk[:, 1], ab[:, 0] / ab[:, 1], rtol=1e-5)
    # More k, more shrink; k = 0 changes nothing.
    assert np.all(shrink_gain(ab, log_var, 4.0)[1:] < gain[1:])
    np.testing.assert_array_equal(shrink_ab(ab, log_var, 0.0), ab)
    # A neutral prediction stays neutral.
    assert shrink_gain(np.zeros((1, 2)), np.zeros((1, 2)), 1.0)[0] == 0.0
    with pytest.raises(InputError, match="k must be"):
        shrink_gain(ab, log_var, -1.0)


def test_choose_shrink_finds_the_constant_that_undoes_overconfident_chroma():
    """Targets with a random sign around a confident-looking mean: the unsure pixels (large
    variance) are best left grey, the sure ones kept; the chosen k lowers the RMSE."""
    rng = np.random.default_rng(0)
    n = 20000
    mean = np.tile([0.2, 0.1], (n, 1)).astype(np.float32)
    sure = rng.random(n) < 0.5
    truth = np.where(sure[:, None], mean, mean * rng.choice([-1.0, 1.0], (n, 1)))
    variance = np.where(sure, 1e-6, 0.05)[:, None].repeat(2, 1)
    choice = choose_shrink(truth, mean, np.log(variance))
    assert choice["shrink_k"] > 0
    assert choice["ab_rmse"][f"{choice['shrink_k']:g}"] < choice["ab_rmse"]["0"]


def test_split_outputs_follows_the_channel_names():
    outputs = np.arange(2 * 4, dtype=np.float32).reshape(2, 4)
    ab, log_var = split_outputs(outputs, ["a", "b", "log_var_a", "log_var_b"])
    np.testing.assert_array_equal(ab, outputs[:, :2])
    assert log_var is not None
    np.testing.assert_array_equal(log_var, outputs[:, 2:])
    ab, log_var = split_outputs(outputs[:, :2], ["a", "b"])
    assert log_var is None
    with pytest.raises(InputError, match="inconsistent"):
        split_outputs(outputs, ["a", "b"])



def test_output_plan_keeps_what_is_asked_at_network_resolution():
    rng = np.random.default_rng(0)
    ab = rng.uniform(-0.3, 0.3, (2, 4, 4, 2)).astype(np.float32)
    log_var = rng.uniform(-8, -2, (2, 4, 4, 2)).astype(np.float32)
    outputs = np.concatenate([ab, log_var], axis=-1)
    channels = ("a", "b", "log_var_a", "log_var_b")
    plain = OutputPlan(("a", "b"))
    assert plain.transform is None and plain.n_channels == 2
    np.testing.assert_array_equal(plain.split(ab)["ab"], ab)
    muted = OutputPlan(channels, shrink_k=1.0)
    assert muted.n_channels == 2  # the full-resolution work carries AB only
    np.testing.assert_allclose(muted.transform(outputs), shrink_ab(ab, log_var, 1.0))
    full = OutputPlan(channels, shrink_k=2.0, sigma=True, mean=True)
    transformed = full.transform(outputs)
    assert transformed.shape == (2, 4, 4, 5) == (2, 4, 4, full.n_channels)
    parts = full.split(transformed)
    np.testing.assert_allclose(parts["ab"], shrink_ab(ab, log_var, 2.0))
    np.testing.assert_allclose(parts["sigma"], predicted_sigma(log_var))
    np.testing.assert_array_equal(parts["ab_mean"], ab)
    unmuted = OutputPlan(channels, shrink_k=None, sigma=True)
    np.testing.assert_array_equal(unmuted.split(unmuted.transform(outputs))["ab"], ab)


# -- export ------------------------------------------------------------------------------------


@pytest.mark.parametrize("export_format", ["savedmodel", "onnx"])
def test_export_keeps_the_confidence_channels(tmp_path, export_format, head_bundle):
    from sar_colorizer.export import export_model

    if export_format == "onnx":
        pytest.importorskip("tf2onnx")
        ort = pytest.importorskip("onnxruntime")
    bundle = load_bundle(head_bundle)
    x = np.random.default_rng(0).random((2, 32, 48, 1), dtype=np.float32)
    expected = bundle.model(x).numpy()
    if export_format == "onnx":
        path = export_model(bundle, tmp_path / "head.onnx")
        session = ort.InferenceSession(str(path))
        got = session.run(None, {session.get_inputs()[0].name: x})[0]
    else:
        import tensorflow as tf

        path = export_model(bundle, tmp_path / "head_savedmodel")
        loaded = tf.saved_model.load(str(path))  # kept: its variables die with it
        got = loaded.serve(x).numpy()
        assert json.loads((path / "bundle.json").read_text())["outputs"]["channels"][2:] == [
            "log_var_a", "log_var_b"]
    assert got.shape == (2, 32, 48, 4)
    np.testing.assert_allclose(got, expected, atol=1e-4)
