"""Display filter for L: keeps constants, removes speckle, keeps edges, streams exactly."""

import numpy as np
import pytest

from sar_colorizer.errors import InputError
from sar_colorizer.sar.display import (
    DISPLAY_FILTERS,
    apply_display_filter,
    check_display_filter,
    display_halo,
)
from sar_colorizer.sar.speckle import SpeckleFilter, apply_speckle_filter

FILTERS = [name for name in DISPLAY_FILTERS if name != "network"]


def _speckled_step(shape=(96, 96), looks=4.0, seed=0):
    """Two flat areas 10 dB apart (left dark, right bright) with gamma speckle."""
    rng = np.random.default_rng(seed)
    mean = np.full(shape, 0.02, dtype=np.float32)
    mean[:, shape[1] // 2 :] = 0.2
    return (mean * rng.gamma(looks, 1.0 / looks, size=shape)).astype(np.float32), mean


@pytest.mark.parametrize("name", FILTERS)
def test_constant_image_stays_constant(name):
    image = np.full((40, 50), 0.05, dtype=np.float32)
    out = apply_display_filter(image, np.ones(image.shape, bool), name)
    np.testing.assert_allclose(out, 0.05, rtol=1e-4)


@pytest.mark.parametrize("name", FILTERS)
def test_speckle_variance_drops(name):
    image, _ = _speckled_step()
    valid = np.ones(image.shape, bool)
    out = apply_display_filter(image, valid, name)
    flat = (slice(10, -10), slice(5, 35))  # inside the dark half
    log_in, log_out = np.log(image[flat]), np.log(out[flat])
    assert log_out.var() < 0.5 * log_in.var()


@pytest.mark.parametrize("name", FILTERS)
def test_step_edge_is_kept_sharper_than_by_the_boxcar(name):
    image, mean = _speckled_step(looks=8.0)
    valid = np.ones(image.shape, bool)
    out = apply_display_filter(image, valid, name)
    boxcar = apply_speckle_filter(image[None], SpeckleFilter("boxcar", 5))[0]
    edge = image.shape[1] // 2

    def error_next_to_edge(filtered):
        # dB error of the two columns on each side of the step, where the boxcar mixes them.
        cols = slice(edge - 2, edge + 2)
        return np.abs(10 * np.log10(filtered[10:-10, cols] / mean[10:-10, cols])).mean()

    assert error_next_to_edge(out) < 0.6 * error_next_to_edge(boxcar)


@pytest.mark.parametrize("name", FILTERS)
def test_nodata_stays_nodata_and_does_not_leak(name):
    image, _ = _speckled_step()
    valid = np.ones(image.shape, bool)
    valid[:, :10] = False
    out = apply_display_filter(image, valid, name)
    assert np.all(np.isnan(out[~valid])) and np.all(np.isfinite(out[valid]))
    changed = image.copy()
    changed[~valid] = 1e6  # whatever lies under nodata must not matter
    np.testing.assert_array_equal(apply_display_filter(changed, valid, name), out)


@pytest.mark.parametrize("name", FILTERS)
def test_strips_with_the_halo_match_the_whole_image(name):
    image, _ = _speckled_step((80, 60))
    valid = np.ones(image.shape, bool)
    whole = apply_display_filter(image, valid, name)
    halo = display_halo(name)
    for start, stop in [(0, 20), (20, 45), (45, 80)]:
        lo, hi = max(0, start - halo), min(80, stop + halo)
        strip = apply_display_filter(image[lo:hi], valid[lo:hi], name)
        np.testing.assert_allclose(strip[start - lo : stop - lo], whole[start:stop], rtol=1e-5)


def test_unknown_filter_lists_the_valid_ones():
    with pytest.raises(InputError, match="median_guided"):
        check_display_filter("wiener")
    assert check_display_filter("Median-Guided") == "median_guided"
