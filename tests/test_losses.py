"""WeightedChromaLoss and rarity_weights against hand-computed values."""

import keras
import numpy as np
import pytest

from sar_colorizer.color.constants import AB_HISTOGRAM_EDGES
from sar_colorizer.errors import InputError
from sar_colorizer.losses import (
    CHROMA_EPS,
    WeightedChromaLoss,
    rarity_weights,
)


def _y_true(ab, valid):
    ab = np.asarray(ab, dtype="float32")
    valid = np.asarray(valid, dtype="float32")[..., None]
    return np.concatenate([ab, valid], axis=-1)


def _loss(loss, y_true, y_pred):
    return float(loss(y_true, np.asarray(y_pred, dtype="float32")))


def test_uniform_weights_without_chroma_term_is_masked_mse():
    rng = np.random.default_rng(0)
    ab = rng.uniform(-1, 1, (2, 3, 4, 2))
    pred = rng.uniform(-1, 1, (2, 3, 4, 2))
    valid = rng.random((2, 3, 4)) > 0.3
    masked_mse = np.mean(((pred - ab) ** 2).mean(-1)[valid])
    y_true = _y_true(ab, valid)
    assert _loss(WeightedChromaLoss(chroma_weight=0.0), y_true, pred) == pytest.approx(
        masked_mse, rel=1e-5
    )
    uniform = np.full((44, 44), 1.0)
    assert _loss(WeightedChromaLoss(uniform, chroma_weight=0.0), y_true, pred) == pytest.approx(
        masked_mse, rel=1e-5
    )


def test_two_pixel_hand_computed_value():
    # pixel 1: target (0.5, 0), prediction (0.2, 0): MSE over a, b = 0.09 / 2 = 0.045,
    #          chroma |0.2| - |0.5| = -0.3 -> 0.09
    # pixel 2: target (0, 0), prediction (0, 0.4): MSE 0.08, chroma 0.4 -> 0.16
    # loss = (0.045 + 0.08) / 2 + 0.5 * (0.09 + 0.16) / 2 = 0.0625 + 0.0625
    y_true = _y_true([[[[0.5, 0.0], [0.0, 0.0]]]], [[[1, 1]]])
    pred = [[[[0.2, 0.0], [0.0, 0.4]]]]
    # eps under the square root shifts the chroma of the zero target by sqrt(eps) = 1e-3
    assert _loss(WeightedChromaLoss(chroma_weight=0.5), y_true, pred) == pytest.approx(
        0.125, abs=2e-4
    )


def test_chroma_term_for_a_known_pair_ignores_hue():
    # Same chroma, opposite hue: only the MSE part sees the difference; with the MSE part
    # removed (chroma_weight large, compare two lambdas) the chroma term is ~0.
    y_true = _y_true([[[[0.3, 0.4]]]], [[[1]]])  # chroma 0.5
    pred = [[[[-0.4, -0.3]]]]  # chroma 0.5
    mse = ((0.3 + 0.4) ** 2 + (0.4 + 0.3) ** 2) / 2
    for lam in (0.0, 1.0, 10.0):
        assert _loss(WeightedChromaLoss(chroma_weight=lam), y_true, pred) == pytest.approx(
            mse, rel=1e-5
        )
    # A pale prediction on the right hue: chroma 0.25 vs 0.5.
    pale = [[[[0.15, 0.2]]]]
    mse_pale = ((0.15) ** 2 + (0.2) ** 2) / 2
    chroma = (np.sqrt(0.25**2 + CHROMA_EPS) - np.sqrt(0.5**2 + CHROMA_EPS)) ** 2
    assert _loss(WeightedChromaLoss(chroma_weight=2.0), y_true, pale) == pytest.approx(
        mse_pale + 2.0 * chroma, rel=1e-5
    )


def test_masked_pixels_do_not_change_the_loss():
    rng = np.random.default_rng(1)
    ab = rng.uniform(-1, 1, (1, 4, 4, 2))
    pred = rng.uniform(-1, 1, (1, 4, 4, 2))
    valid = np.ones((1, 4, 4), bool)
    valid[0, 0, :2] = False
    weights = rng.uniform(0.5, 2.0, (44, 44))
    loss = WeightedChromaLoss(weights, chroma_weight=0.5)
    before = _loss(loss, _y_true(ab, valid), pred)
    wild_ab, wild_pred = ab.copy(), pred.copy()
    wild_ab[0, 0, :2] = [[1.0, -1.0], [-0.9, 0.9]]
    wild_pred[0, 0, :2] = [[-1.0, 1.0], [0.9, -0.9]]
    assert _loss(loss, _y_true(wild_ab, valid), wild_pred) == pytest.approx(before, rel=1e-6)
    # ... and normalisation is by the valid pixels, not all pixels: the same 14 valid pixels
    # give the same loss inside a larger, mostly masked tile.
    big_ab = np.zeros((1, 8, 8, 2))
    big_pred = np.zeros((1, 8, 8, 2))
    big_valid = np.zeros((1, 8, 8), bool)
    big_ab[:, :4, :4], big_pred[:, :4, :4], big_valid[:, :4, :4] = ab, pred, valid
    assert _loss(loss, _y_true(big_ab, big_valid), big_pred) == pytest.approx(before, rel=1e-5)


def test_no_valid_pixel_gives_zero_loss():
    y_true = _y_true(np.full((1, 2, 2, 2), 0.5), np.zeros((1, 2, 2)))
    assert _loss(WeightedChromaLoss(), y_true, np.zeros((1, 2, 2, 2))) == 0.0


def test_rarity_weight_is_looked_up_from_the_target_bin():
    # 4x4 grid: bins of 0.5 in normalised AB. Target (0.6, -0.9) -> a bin 3, b bin 0.
    weights = np.ones((4, 4))
    weights[3, 0] = 5.0
    y_true = _y_true([[[[0.6, -0.9], [0.1, 0.1]]]], [[[1, 1]]])
    pred = np.asarray([[[[0.6, -0.5], [0.1, 0.5]]]])  # both errors: 0.4 on one channel
    per_pixel_mse = 0.16 / 2
    expected = (5.0 * per_pixel_mse + 1.0 * per_pixel_mse) / 2
    loss = WeightedChromaLoss(weights, chroma_weight=0.0)
    assert _loss(loss, y_true, pred) == pytest.approx(expected, rel=1e-5)
    # The bin of the target decides, not the prediction's: swap them and the weight moves.
    swapped = _y_true(pred, [[[1, 1]]])
    assert _loss(loss, swapped, y_true[..., :2]) == pytest.approx(per_pixel_mse, rel=1e-5)
    # Edges: +1 falls in the last bin, -1 in the first.
    edge = _y_true([[[[1.0, -1.0]]]], [[[1]]])
    assert _loss(loss, edge, [[[[1.0, -0.6]]]]) == pytest.approx(5.0 * per_pixel_mse, rel=1e-5)


def test_gradient_is_finite_when_prediction_is_exactly_zero():
    import tensorflow as tf

    loss = WeightedChromaLoss(np.ones((44, 44)), chroma_weight=0.5)
    y_true = tf.constant(_y_true([[[[0.0, 0.0], [0.3, -0.2]]]], [[[1, 1]]]))
    pred = tf.Variable(np.zeros((1, 1, 2, 2), dtype="float32"))
    with tf.GradientTape() as tape:
        value = loss(y_true, pred)
    gradient = tape.gradient(value, pred).numpy()
    assert np.all(np.isfinite(gradient))
    assert np.any(gradient != 0)


def test_reduction_none_gives_a_per_pixel_map_whose_mean_is_the_loss():
    rng = np.random.default_rng(2)
    y_true = _y_true(rng.uniform(-1, 1, (2, 3, 3, 2)), rng.random((2, 3, 3)) > 0.5)
    pred = rng.uniform(-1, 1, (2, 3, 3, 2)).astype("float32")
    pixel_map = np.asarray(WeightedChromaLoss(reduction=None)(y_true, pred))
    assert pixel_map.shape == (2, 3, 3)
    assert np.all(pixel_map[y_true[..., 2] == 0] == 0)
    assert pixel_map.mean() == pytest.approx(_loss(WeightedChromaLoss(), y_true, pred), rel=1e-5)


def test_serialization_round_trip():
    weights = np.random.default_rng(3).uniform(0.2, 3.0, (44, 44))
    loss = WeightedChromaLoss(weights, chroma_weight=0.25)
    config = loss.get_config()
    assert config["chroma_weight"] == 0.25
    assert np.asarray(config["ab_weights"]).shape == (44, 44)
    restored = keras.losses.deserialize(keras.losses.serialize(loss))
    assert isinstance(restored, WeightedChromaLoss)
    np.testing.assert_allclose(restored.ab_weights, weights.astype("float32"))
    y_true = _y_true(np.full((1, 2, 2, 2), 0.3), np.ones((1, 2, 2)))
    pred = np.full((1, 2, 2, 2), -0.1, dtype="float32")
    assert _loss(restored, y_true, pred) == pytest.approx(_loss(loss, y_true, pred))
    assert WeightedChromaLoss.from_config(WeightedChromaLoss().get_config()).ab_weights is None


@pytest.mark.filterwarnings("ignore:Skipping variable loading for optimizer")
def test_loss_survives_a_compiled_model_save_and_load(tmp_path):
    inputs = keras.Input((None, None, 1))
    model = keras.Model(inputs, keras.layers.Conv2D(2, 1, activation="tanh")(inputs))
    model.compile(optimizer="adam", loss=WeightedChromaLoss(np.ones((4, 4)), chroma_weight=0.3))
    model.save(tmp_path / "m.keras")
    reloaded = keras.saving.load_model(tmp_path / "m.keras", safe_mode=True)
    assert isinstance(reloaded.loss, WeightedChromaLoss)
    assert reloaded.loss.chroma_weight == 0.3


def test_invalid_loss_arguments():
    with pytest.raises(InputError):
        WeightedChromaLoss(np.ones((4, 5)))
    with pytest.raises(InputError):
        WeightedChromaLoss(chroma_weight=-1.0)


def _peaked_histogram():
    """44x44 counts: a grey peak near (0, 0), a greenish tail, and out-of-gamut empty bins."""
    centres = (AB_HISTOGRAM_EDGES[:-1] + AB_HISTOGRAM_EDGES[1:]) / 2
    a, b = np.meshgrid(centres, centres, indexing="ij")
    counts = 1e6 * np.exp(-(a**2 + b**2) / (2 * 8.0**2))
    counts += 1e3 * np.exp(-((a + 30) ** 2 + (b - 30) ** 2) / (2 * 6.0**2))
    counts[np.hypot(a, b) > 80] = 0
    return np.round(counts)


def test_rarity_weights_favour_rare_bins_with_unit_expectation():
    from scipy.ndimage import gaussian_filter

    counts = _peaked_histogram()
    weights = rarity_weights(counts, sigma=1.0, mix=0.5, max_weight=None)
    assert weights.shape == (44, 44)
    p = gaussian_filter(counts / counts.sum(), 1.0, mode="constant")
    p /= p.sum()
    assert np.sum(p * weights) == pytest.approx(1.0, rel=1e-9)
    common = np.unravel_index(np.argmax(counts), counts.shape)
    rare = (22 - 6, 22 + 6)  # (a, b) = (-27.5, 32.5), the tail
    assert counts[rare] > 0
    assert weights[rare] > 5 * weights[common]
    # Bins far from every colour (p = 0 even after smoothing) get the largest weight.
    assert p[0, 0] == 0 and weights[0, 0] == pytest.approx(weights.max())
    # Formula check: w ∝ 1 / ((1 - mix) p + mix / Q).
    n_in_gamut = np.count_nonzero(counts)
    raw = 1 / (0.5 * p + 0.5 / n_in_gamut)
    np.testing.assert_allclose(weights, raw / np.sum(p * raw), rtol=1e-9)


def test_rarity_weights_cap_keeps_unit_expectation():
    from scipy.ndimage import gaussian_filter

    counts = _peaked_histogram()
    uncapped = rarity_weights(counts, max_weight=None)
    assert uncapped.max() > 3
    capped = rarity_weights(counts, max_weight=3.0)
    p = gaussian_filter(counts / counts.sum(), 1.0, mode="constant")
    p /= p.sum()
    assert capped.max() == pytest.approx(3.0)
    assert np.sum(p * capped) == pytest.approx(1.0, rel=1e-6)
    # Order is kept: rarer is never lighter.
    order = np.argsort(uncapped, axis=None)
    assert np.all(np.diff(capped.ravel()[order]) >= -1e-12)


def test_rarity_weights_mix_one_is_no_rebalancing():
    weights = rarity_weights(_peaked_histogram(), mix=1.0)
    np.testing.assert_allclose(weights, 1.0)


def test_rarity_weights_reject_bad_histograms():
    with pytest.raises(InputError):
        rarity_weights(np.zeros((44, 44)))
    with pytest.raises(InputError):
        rarity_weights(np.ones((44, 43)))
    with pytest.raises(InputError):
        rarity_weights(-np.ones((4, 4)))
    with pytest.raises(InputError):
        rarity_weights(np.ones((4, 4)), mix=0.0)


def test_fit_with_three_channel_targets_lowers_the_loss():
    keras.utils.set_random_seed(4)
    inputs = keras.Input((None, None, 1))
    hidden = keras.layers.Conv2D(4, 3, padding="same", activation="relu")(inputs)
    model = keras.Model(inputs, keras.layers.Conv2D(2, 1, activation="tanh")(hidden))
    rng = np.random.default_rng(4)
    x = rng.random((8, 8, 8, 1)).astype("float32")
    y = _y_true(np.concatenate([x - 0.5, 0.5 - x], -1) * 0.8, rng.random((8, 8, 8)) > 0.2)
    model.compile(optimizer=keras.optimizers.Adam(0.05), loss=WeightedChromaLoss(np.ones((8, 8))))
    history = model.fit(x, y, epochs=5, batch_size=4, verbose=0)
    assert history.history["loss"][-1] < 0.5 * history.history["loss"][0]
