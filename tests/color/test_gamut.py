"""Gamut-aware chroma limit: hue kept, colours inside sRGB, no hue flips near black and white."""

import numpy as np
import pytest
from skimage.color import lab2rgb, rgb2lab

from sar_colorizer.color import gamut
from sar_colorizer.color.gamut import lab_to_linear_rgb, limit_chroma_numpy, max_chroma_table


def test_cap_is_the_gamut_boundary():
    table = max_chroma_table()
    assert table[0].max() < 1e-3 and table[-1].max() < 1e-3  # black and white: grey only
    rng = np.random.default_rng(2)
    n = 20000
    lightness = rng.uniform(2, 98, n)
    hue = rng.uniform(0, 2 * np.pi, n)
    true = gamut._boundary(lightness, np.cos(hue), np.sin(hue))
    # Far outside the gamut: the cap is what remains.
    lab = np.stack([lightness, 300 * np.cos(hue), 300 * np.sin(hue)], -1)
    cap = np.hypot(*limit_chroma_numpy(lab)[:, 1:].T)
    assert np.all(cap <= true + 0.02)  # never outside (to float32 rounding)
    assert np.mean(true - cap) < 0.5 and np.quantile(true - cap, 0.99) < 3.0  # cusps: ~2
    rgb = lab_to_linear_rgb(limit_chroma_numpy(lab))
    assert rgb.min() > -1e-3 and rgb.max() < 1 + 1e-3


def _hue(lab):
    return np.rad2deg(np.arctan2(lab[..., 2], lab[..., 1]))


def _hue_difference(a, b):
    return np.abs((a - b + 180.0) % 360.0 - 180.0)


@pytest.mark.parametrize("lightness", [3.0, 50.0, 97.0])
def test_dark_bright_and_mid_grey_keep_their_hue(lightness):
    rng = np.random.default_rng(0)
    n = 2000
    hue = rng.uniform(0, 2 * np.pi, n)
    chroma = rng.uniform(10, 60, n)
    lab = np.stack([np.full(n, lightness), chroma * np.cos(hue), chroma * np.sin(hue)], -1)
    limited = limit_chroma_numpy(lab)
    shown = rgb2lab(np.clip(lab2rgb(limited), 0, 1))
    clipped = rgb2lab(np.clip(lab2rgb(lab), 0, 1))
    np.testing.assert_allclose(limited[..., 0], lightness)
    visible = np.hypot(shown[..., 1], shown[..., 2]) > 0.5
    assert visible.mean() > 0.9
    assert _hue_difference(_hue(shown), _hue(lab))[visible].max() < 3.0
    np.testing.assert_allclose(shown[..., 0], lightness, atol=0.5)
    if lightness != 50.0:  # channel clipping flips hues and shifts L near black and white
        assert _hue_difference(_hue(clipped), _hue(lab)).max() > 20.0


def test_in_gamut_colours_are_unchanged():
    lab = np.array([[50.0, 10.0, -10.0], [70.0, -20.0, 30.0], [30.0, 5.0, 5.0]])
    np.testing.assert_allclose(limit_chroma_numpy(lab), lab, atol=1e-5)


def test_in_graph_limit_matches_numpy():
    import tensorflow as tf

    rng = np.random.default_rng(1)
    lab = np.stack(
        [rng.uniform(0, 100, 500), rng.uniform(-100, 100, 500), rng.uniform(-100, 100, 500)], -1
    ).astype(np.float32)
    graph = gamut.limit_chroma(
        tf.constant(lab[:, 0]), tf.constant(lab[:, 1:]), tf.constant(max_chroma_table().reshape(-1))
    ).numpy()
    np.testing.assert_allclose(graph, limit_chroma_numpy(lab)[:, 1:], atol=1e-3)


def test_boundary_chroma_rises_to_one_cusp_and_falls_along_every_hue():
    # What makes the envelope's cap safe: along each hue the smallest cap over an interval of L
    # lies at one of its ends.
    table = max_chroma_table().astype(np.float64)
    steps = np.diff(table, axis=0)
    for column in range(table.shape[1]):
        signs = np.sign(steps[:, column][np.abs(steps[:, column]) > 1e-4])
        assert np.all(np.diff(signs) <= 0), column  # + ... + then - ... -: no second rise


def test_envelope_bounds_the_feature_and_ignores_nodata():
    rng = np.random.default_rng(3)
    feature = rng.uniform(0.0, 1.0, (60, 70)).astype(np.float32)
    valid = np.ones(feature.shape, bool)
    valid[:, :10] = False
    feature[~valid] = 0.0
    low, high = gamut.lightness_envelope(feature, valid, radius=3)
    assert np.all(low[valid] <= feature[valid]) and np.all(high[valid] >= feature[valid])
    # A nodata border (0) does not drag the lower bound of the valid pixels next to it down.
    edge = feature[:, 10:14].min()
    assert low[:, 10:14].min() >= edge - 1e-6
    # Smooth: much less pixel-to-pixel variation than the speckled feature.
    assert np.abs(np.diff(low[:, 20:], axis=1)).mean() < 0.25 * np.abs(
        np.diff(feature[:, 20:], axis=1)
    ).mean()
    same, also = gamut.lightness_envelope(feature, valid, radius=0)
    np.testing.assert_array_equal(same, feature)
    np.testing.assert_array_equal(also, feature)


def test_envelope_cap_keeps_speckled_dark_water_in_gamut_with_smooth_chroma():
    # A dark pond: L speckled around 8, one predicted colour. Capped at each pixel's own L, the
    # chroma shown follows the speckle; capped over the envelope, it hardly varies, and never
    # leaves the gamut.
    rng = np.random.default_rng(4)
    lightness = np.clip(8.0 + 3.0 * rng.standard_normal((64, 64)), 0.5, 30).astype(np.float32)
    lab = np.stack(
        [lightness, np.full_like(lightness, -12.0), np.full_like(lightness, -8.0)], -1
    )
    feature = lightness / 100.0  # monotonic in L, as the tone curve is
    low, high = gamut.lightness_envelope(feature, np.ones(lightness.shape, bool))
    own = limit_chroma_numpy(lab)
    smooth = limit_chroma_numpy(lab, 100.0 * low, 100.0 * high)
    chroma_own = np.hypot(own[..., 1], own[..., 2])[8:-8, 8:-8]
    chroma_smooth = np.hypot(smooth[..., 1], smooth[..., 2])[8:-8, 8:-8]
    assert chroma_smooth.std() < 0.35 * chroma_own.std()
    assert np.all(chroma_smooth <= chroma_own + 1e-5)
    rgb = lab_to_linear_rgb(smooth)
    assert rgb.min() > -1e-3 and rgb.max() < 1 + 1e-3
    shown = np.hypot(smooth[..., 1], smooth[..., 2]) > 0.5
    assert shown.mean() > 0.9
    assert _hue_difference(_hue(smooth), _hue(lab))[shown].max() < 0.5


def test_in_graph_limit_with_bounds_matches_numpy():
    tf = pytest.importorskip("tensorflow")
    rng = np.random.default_rng(5)
    lab = np.stack(
        [rng.uniform(0, 100, 500), rng.uniform(-100, 100, 500), rng.uniform(-100, 100, 500)], -1
    ).astype(np.float32)
    low = (lab[:, 0] * rng.uniform(0.5, 1.0, 500)).astype(np.float32)
    high = np.minimum(100.0, lab[:, 0] * rng.uniform(1.0, 1.5, 500)).astype(np.float32)
    graph = gamut.limit_chroma(
        tf.constant(lab[:, 0]),
        tf.constant(lab[:, 1:]),
        tf.constant(max_chroma_table().reshape(-1)),
        tf.constant(low),
        tf.constant(high),
    ).numpy()
    np.testing.assert_allclose(graph, limit_chroma_numpy(lab, low, high)[:, 1:], atol=1e-3)
