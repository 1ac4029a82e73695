"""Gamut-aware chroma limit: hue kept, colours inside sRGB, no hue flips near black and white."""

import numpy as np
import pytest
from skimage.color import lab2rgb, rgb2lab

from sar_colorizer.color import gamut
from sar_colorizer.color import lab as lab_module
from sar_colorizer.color.gamut import lab_to_linear_rgb, limit_chroma_numpy, max_chroma_table


def test_constants_match_the_lab_module():
    np.testing.assert_allclose(gamut._RGB_FROM_XYZ, lab_module._RGB_FROM_XYZ)
    np.testing.assert_allclose(gamut._WHITE, lab_module.D65_WHITE)
    assert gamut._LAB_F_KNEE == lab_module._LAB_F_KNEE
    assert gamut._LAB_SLOPE == lab_module._LAB_SLOPE


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
