"""No-reference visual checks: they rank sharp above blurred, specks above smooth colour."""

import cv2
import numpy as np
import pytest

from sar_colorizer.visual_quality import (
    colour_speckle_rms,
    edge_fidelity,
    equivalent_number_of_looks,
)


def _scene(shape=(128, 128), looks=4.0, seed=0):
    rng = np.random.default_rng(seed)
    mean = np.full(shape, 0.05, dtype=np.float32)
    mean[30:90, 20:70] = 0.4
    mean[:, 100:106] = 0.005
    return (mean * rng.gamma(looks, 1.0 / looks, shape)).astype(np.float32)


def test_edge_fidelity_ranks_sharp_above_blurred():
    relative = _scene()
    valid = np.ones(relative.shape, bool)
    db = 10 * np.log10(relative)
    sharp = cv2.medianBlur(db, 3)
    blurred = cv2.blur(db, (7, 7))
    assert edge_fidelity(sharp, relative, valid) == pytest.approx(1.0, abs=1e-6)
    assert edge_fidelity(blurred, relative, valid) < edge_fidelity(sharp, relative, valid) - 0.2
    # Two channels: the gradient magnitudes combine.
    assert edge_fidelity(np.dstack([sharp, sharp]), relative, valid) == pytest.approx(1.0, abs=1e-6)


def test_colour_speckle_is_zero_for_smooth_colour_and_the_noise_level_for_specks():
    valid = np.ones((64, 64), bool)
    yy, xx = np.mgrid[0:64, 0:64].astype(np.float32)
    smooth = np.dstack([xx / 8, yy / 8])  # a linear ramp: the blur leaves it unchanged
    assert colour_speckle_rms(smooth, valid) < 0.01  # kernel truncation at the border
    rng = np.random.default_rng(1)
    specks = rng.normal(0, 2.0, (64, 64, 2)).astype(np.float32)
    assert colour_speckle_rms(specks, valid) == pytest.approx(2.0, rel=0.1)


def test_enl_of_gamma_speckle_is_its_number_of_looks():
    rng = np.random.default_rng(2)
    relative = (0.1 * rng.gamma(4.0, 0.25, (256, 256))).astype(np.float32)
    valid = np.ones(relative.shape, bool)
    assert equivalent_number_of_looks(relative, relative, valid) == pytest.approx(4.0, rel=0.25)
    smoothed = cv2.blur(relative, (5, 5))
    assert equivalent_number_of_looks(smoothed, relative, valid) > 40
