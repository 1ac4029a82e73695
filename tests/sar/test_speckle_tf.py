"""In-graph speckle filters: agreement with the numpy filters, dynamic shapes, tf.data."""

from __future__ import annotations

import numpy as np
import pytest

from sar_colorizer.errors import InputError
from sar_colorizer.sar.speckle import SPECKLE_FILTERS, SpeckleFilter, apply_speckle_filter
from sar_colorizer.sar.speckle_tf import speckle_filter_tf, tf

# Documented agreement: float32 rounding of local sums, amplified by the variance's
# cancellation; the median picks the same values, so it agrees exactly.
RTOL = 1e-4


def speckled_batch(seed: int, shape=(2, 29, 34, 2), looks: float = 2.0) -> np.ndarray:
    """(B, H, W, C) speckled blocks with a bright point, NaN holes and a NaN border pixel."""
    rng = np.random.default_rng(seed)
    scene = np.where(np.arange(shape[2]) < shape[2] // 2, 0.02, 0.3).astype(np.float32)
    images = scene[np.newaxis, np.newaxis, :, np.newaxis] * rng.gamma(
        looks, 1.0 / looks, size=shape
    ).astype(np.float32)
    images[0, min(10, shape[1] - 1), 5, 0] = 5.0
    images[0, 12:15, 20:23, :] = np.nan
    images[-1, 0, 0, -1] = np.nan
    return images


def numpy_reference(images: np.ndarray, spec: SpeckleFilter) -> np.ndarray:
    """The numpy filter applied per image and channel, back in (B, H, W, C)."""
    planes = np.moveaxis(images, -1, 1)  # (B, C, H, W)
    filtered = np.stack([apply_speckle_filter(image, spec) for image in planes])
    return np.moveaxis(filtered, 1, -1)


def assert_agrees(result: np.ndarray, expected: np.ndarray, exact: bool) -> None:
    np.testing.assert_array_equal(np.isnan(result), np.isnan(expected))
    if exact:
        np.testing.assert_array_equal(result, expected)
    else:
        np.testing.assert_allclose(result, expected, rtol=RTOL, atol=1e-7)


@pytest.mark.parametrize("name", SPECKLE_FILTERS)
def test_agrees_with_numpy(name: str) -> None:
    images = speckled_batch(seed=len(name))
    for window in (3, 7):
        spec = SpeckleFilter(name, window, looks=2.0)
        result = speckle_filter_tf(images, spec).numpy()
        assert result.dtype == np.float32 and result.shape == images.shape
        assert_agrees(result, numpy_reference(images, spec), exact=name in ("none", "median"))


def test_refined_lee_agrees_for_other_windows() -> None:
    images = speckled_batch(seed=11, shape=(1, 26, 27, 1))
    for window in (5, 9):
        spec = SpeckleFilter("refined_lee", window, looks=2.0)
        assert_agrees(speckle_filter_tf(images, spec).numpy(), numpy_reference(images, spec), False)


def test_dynamic_shapes_in_tf_function() -> None:
    spec = SpeckleFilter("refined_lee", 5, looks=2.0)
    graph = tf.function(
        lambda x: speckle_filter_tf(x, spec),
        input_signature=[tf.TensorSpec([None, None, None, 1], tf.float32)],
    )
    for shape in ((1, 17, 23, 1), (3, 9, 8, 1)):
        images = speckled_batch(seed=shape[1], shape=shape)
        assert_agrees(graph(images).numpy(), numpy_reference(images, spec), exact=False)


def test_unbatched_input_valid_mask_and_fill_value() -> None:
    images = speckled_batch(seed=3, shape=(1, 16, 18, 1))
    spec = SpeckleFilter("lee", 5, looks=2.0)
    batched = speckle_filter_tf(images, spec).numpy()
    unbatched = speckle_filter_tf(images[0], spec).numpy()
    np.testing.assert_array_equal(unbatched, batched[0])
    # Zeros marked invalid by a mask behave as NaN; fill_value replaces the NaN output.
    zeros = np.nan_to_num(images[0], nan=0.0)
    valid = np.isfinite(images[0, ..., 0])
    filled = speckle_filter_tf(zeros, spec, valid=valid, fill_value=0.0).numpy()
    np.testing.assert_array_equal(filled, np.nan_to_num(batched[0], nan=0.0))


def test_runs_inside_tf_data() -> None:
    spec = SpeckleFilter("gamma_map", 5, looks=2.0)
    images = [speckled_batch(seed, shape=(1, 12 + seed, 10, 1))[0] for seed in range(3)]
    dataset = tf.data.Dataset.from_generator(
        lambda: iter(images), output_signature=tf.TensorSpec([None, None, 1], tf.float32)
    ).map(lambda x: speckle_filter_tf(x, spec))
    for result, image in zip(dataset, images, strict=True):
        expected = numpy_reference(image[np.newaxis], spec)[0]
        assert_agrees(result.numpy(), expected, exact=False)


def test_rejects_bad_input() -> None:
    with pytest.raises(InputError, match="channel axis"):
        speckle_filter_tf(np.ones((4, 4), np.float32), SpeckleFilter())
    with pytest.raises(InputError):
        speckle_filter_tf(np.ones((4, 4, 1), np.float32), "lee")  # type: ignore[arg-type]
