"""sRGB <-> CIE LAB in keras.ops against scikit-image, in eager mode and inside TF graphs."""

from __future__ import annotations

import warnings

import keras
import numpy as np
import pytest
import tensorflow as tf
from skimage.color import lab2rgb, rgb2lab

from sar_colorizer.color.constants import AB_SCALE, L_MAX
from sar_colorizer.color.lab import lab_to_rgb, rgb_to_lab
from sar_colorizer.errors import InputError

# Black, white, greys, the sRGB primaries and secondaries, and near-black colours that fall on
# the linear segments of both the sRGB and the CIE L* piecewise functions.
EDGE_COLOURS = np.array(
    [
        [0, 0, 0],
        [1, 1, 1],
        [0.5, 0.5, 0.5],
        [0.04045, 0.04045, 0.04045],
        [0.01, 0.0, 0.02],
        [1, 0, 0],
        [0, 1, 0],
        [0, 0, 1],
        [1, 1, 0],
        [0, 1, 1],
        [1, 0, 1],
    ],
    dtype=np.float32,
)


def to_numpy(tensor) -> np.ndarray:
    return keras.ops.convert_to_numpy(tensor)


@pytest.fixture
def random_rgb() -> np.ndarray:
    rng = np.random.default_rng(0)
    return rng.random((2, 16, 20, 3), dtype=np.float32)


def test_rgb_to_lab_matches_skimage_on_random_colours(random_rgb):
    lab = to_numpy(rgb_to_lab(random_rgb))
    assert lab.dtype == np.float32
    assert lab.shape == random_rgb.shape
    np.testing.assert_allclose(lab, rgb2lab(random_rgb.astype(np.float64)), atol=0.5)


def test_rgb_to_lab_matches_skimage_on_edge_colours():
    lab = to_numpy(rgb_to_lab(EDGE_COLOURS))
    np.testing.assert_allclose(lab, rgb2lab(EDGE_COLOURS.astype(np.float64)), atol=0.5)
    # Anchors that do not depend on scikit-image: black is L 0, white is L 100 with no chroma.
    np.testing.assert_allclose(lab[0], [0, 0, 0], atol=1e-3)
    np.testing.assert_allclose(lab[1], [100, 0, 0], atol=0.01)


def test_uint8_input_is_scaled_like_skimage():
    rgb_u8 = (EDGE_COLOURS * 255).round().astype(np.uint8)
    np.testing.assert_allclose(to_numpy(rgb_to_lab(rgb_u8)), rgb2lab(rgb_u8), atol=0.5)


def test_round_trip_rgb_lab_rgb_within_one_level(random_rgb):
    for rgb in (random_rgb, EDGE_COLOURS):
        back = to_numpy(lab_to_rgb(rgb_to_lab(rgb)))
        assert np.abs(back - rgb).max() <= 1 / 255


def test_lab_to_rgb_matches_skimage_and_clips_out_of_gamut():
    rng = np.random.default_rng(1)
    # Far outside the sRGB gamut on purpose: negative Z, negative linear RGB, L beyond 100.
    lab = np.stack(
        [rng.uniform(0, 110, 2000), rng.uniform(-128, 128, 2000), rng.uniform(-128, 128, 2000)],
        axis=-1,
    )
    rgb = to_numpy(lab_to_rgb(lab))
    assert rgb.min() >= 0.0 and rgb.max() <= 1.0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # skimage warns about the negative Z values it clips
        expected = lab2rgb(lab)
    np.testing.assert_allclose(rgb, expected, atol=0.5 / 255)


def test_every_srgb_colour_fits_the_ab_scale():
    steps = np.linspace(0.0, 1.0, 65, dtype=np.float32)
    grid = np.stack(np.meshgrid(steps, steps, steps, indexing="ij"), axis=-1).reshape(-1, 3)
    lab = to_numpy(rgb_to_lab(grid))
    assert lab[:, 0].min() >= -1e-3 and lab[:, 0].max() <= L_MAX + 1e-3
    assert np.abs(lab[:, 1:]).max() <= AB_SCALE
    # The scale is not needlessly loose either: b of pure blue reaches ~98% of it.
    assert np.abs(lab[:, 1:]).max() > 0.95 * AB_SCALE


@pytest.mark.parametrize("shape", [(3,), (7, 3), (2, 3, 4, 5, 3)])
def test_any_leading_dimensions_give_the_same_colours(shape):
    rgb = np.random.default_rng(2).random(shape, dtype=np.float32)
    lab = to_numpy(rgb_to_lab(rgb))
    assert lab.shape == shape
    flat = to_numpy(rgb_to_lab(rgb.reshape(-1, 3))).reshape(shape)
    np.testing.assert_allclose(lab, flat, rtol=1e-6, atol=1e-5)


def test_tensor_and_numpy_inputs_agree(random_rgb):
    np.testing.assert_allclose(
        to_numpy(rgb_to_lab(tf.constant(random_rgb))), to_numpy(rgb_to_lab(random_rgb))
    )


def test_works_in_tf_function_with_dynamic_shapes(random_rgb):
    @tf.function(input_signature=[tf.TensorSpec([None, None, None, 3], tf.float32)])
    def round_trip(rgb):
        return lab_to_rgb(rgb_to_lab(rgb))

    for rgb in (random_rgb, random_rgb[:1, :5, :7]):
        np.testing.assert_allclose(round_trip(tf.constant(rgb)).numpy(), rgb, atol=1 / 255)


def test_works_in_tf_data_map(random_rgb):
    images = [random_rgb[0], random_rgb[1, :9, :11]]
    dataset = tf.data.Dataset.from_generator(
        lambda: iter(images), output_signature=tf.TensorSpec([None, None, 3], tf.float32)
    ).map(lambda rgb: rgb_to_lab(rgb)[..., 1:] / AB_SCALE)
    for image, ab_norm in zip(images, dataset, strict=True):
        expected = rgb2lab(image.astype(np.float64))[..., 1:] / AB_SCALE
        np.testing.assert_allclose(ab_norm.numpy(), expected, atol=0.5 / AB_SCALE)


def test_gradients_are_finite_at_black_and_white():
    rgb = tf.constant(EDGE_COLOURS)
    with tf.GradientTape() as tape:
        tape.watch(rgb)
        loss = tf.reduce_sum(rgb_to_lab(rgb))
    assert np.isfinite(tape.gradient(loss, rgb).numpy()).all()
    lab = tf.constant([[0.0, 0.0, 0.0], [100.0, 0.0, 0.0], [50.0, 120.0, -120.0]])
    with tf.GradientTape() as tape:
        tape.watch(lab)
        loss = tf.reduce_sum(lab_to_rgb(lab))
    assert np.isfinite(tape.gradient(loss, lab).numpy()).all()


@pytest.mark.parametrize("bad", [np.zeros((4, 4)), np.zeros((4, 4, 4)), np.zeros((2, 3), np.int32)])
def test_bad_input_raises_input_error(bad):
    with pytest.raises(InputError):
        rgb_to_lab(bad)
