"""Guided upsampling of low-resolution colour keeps the guide's edges where bilinear blurs."""

import numpy as np

from sar_colorizer.color.upsampling import guided_upsample, resize_bilinear


def _step(size, at):
    image = np.zeros((size, size), dtype=np.float32)
    image[:, at:] = 1.0
    return image


def test_step_edge_stays_sharp_where_bilinear_blurs():
    size, factor = 64, 4
    edge = 30  # not on a low-resolution block boundary
    guide = (0.3 + 0.4 * _step(size, edge))[None]
    colour = np.stack([_step(size, edge) * 0.5, -_step(size, edge) * 0.3], -1)
    low = colour.reshape(size // factor, factor, size // factor, factor, 2).mean(axis=(1, 3))[None]
    guided = guided_upsample(low, guide)[0]
    bilinear = resize_bilinear(low, size, size)[0]
    rows = slice(8, -8)
    cols = slice(edge - 3, edge + 3)
    error_guided = np.abs(guided[rows, cols] - colour[rows, cols]).mean()
    error_bilinear = np.abs(bilinear[rows, cols] - colour[rows, cols]).mean()
    assert error_guided < 0.4 * error_bilinear
    # A sharp step: at most one transition pixel in a* across the edge.
    middle = guided[size // 2, :, 0]
    assert np.sum((middle > 0.05) & (middle < 0.45)) <= 1


def test_flat_guide_gives_the_bilinear_result_and_any_channel_count():
    rng = np.random.default_rng(0)
    low = rng.normal(size=(2, 8, 8, 3)).astype(np.float32)
    low = np.repeat(np.repeat(low, 2, axis=1), 2, axis=2)  # smooth enough for the box means
    guide = np.full((2, 64, 64), 0.4, dtype=np.float32)
    out = guided_upsample(low, guide)
    assert out.shape == (2, 64, 64, 3)
    constant = np.full((1, 16, 16, 2), 0.25, dtype=np.float32)
    varied_guide = rng.uniform(0, 1, size=(1, 64, 64)).astype(np.float32)
    np.testing.assert_allclose(guided_upsample(constant, varied_guide), 0.25, atol=1e-5)
