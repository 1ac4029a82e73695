"""Tests for sar_colorizer.metrics: hand cases and the properties METRICS.md asks for."""

from __future__ import annotations

import numpy as np
import pytest
from skimage.color import lab2rgb, rgb2lab
from skimage.metrics import structural_similarity

from sar_colorizer import metrics


def _random_rgb(shape=(48, 40), seed=0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    # Smooth-ish image (blocks of colour plus texture) so SSIM / Q4 are not degenerate.
    base = rng.integers(30, 220, size=(shape[0] // 8 + 1, shape[1] // 8 + 1, 3))
    image = np.kron(base, np.ones((8, 8, 1)))[: shape[0], : shape[1]]
    image = image + rng.normal(0, 10, size=image.shape)
    return np.clip(np.round(image), 0, 255).astype(np.uint8)


def _add_noise(image: np.ndarray, sigma: float, seed: int = 1) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.clip(np.round(image + rng.normal(0, sigma, image.shape)), 0, 255).astype(np.uint8)


def _q4_brute_force(x: np.ndarray, y: np.ndarray, size: int, shift: int) -> float:
    """Loop over blocks with explicit quaternion arithmetic, as METRICS.md, "Q4" words it."""

    def mult(p, q):
        a0, a1, a2, a3 = p
        b0, b1, b2, b3 = q
        return np.array(
            [
                a0 * b0 - a1 * b1 - a2 * b2 - a3 * b3,
                a0 * b1 + a1 * b0 + a2 * b3 - a3 * b2,
                a0 * b2 - a1 * b3 + a2 * b0 + a3 * b1,
                a0 * b3 + a1 * b2 - a2 * b1 + a3 * b0,
            ]
        )

    def conj(p):
        return p * np.array([1, -1, -1, -1]).reshape((4,) + (1,) * (p.ndim - 1))

    height, width = x.shape[:2]
    x = np.concatenate([x.astype(float), np.zeros((height, width, 1))], axis=-1)
    y = np.concatenate([y.astype(float), np.zeros((height, width, 1))], axis=-1)
    steps_r, steps_c = int(np.ceil(height / shift)), int(np.ceil(width / shift))
    pad_r, pad_c = (steps_r - 1) * shift + size - height, (steps_c - 1) * shift + size - width
    x = np.pad(x, [(0, pad_r), (0, pad_c), (0, 0)], mode="symmetric")
    y = np.pad(y, [(0, pad_r), (0, pad_c), (0, 0)], mode="symmetric")
    values = []
    for i in range(steps_r):
        for j in range(steps_c):
            bx = np.moveaxis(x[i * shift : i * shift + size, j * shift : j * shift + size], -1, 0)
            by = np.moveaxis(y[i * shift : i * shift + size, j * shift : j * shift + size], -1, 0)
            mx, my = bx.mean(axis=(1, 2)), by.mean(axis=(1, 2))
            sxy = mult(bx, conj(by)).mean(axis=(1, 2)) - mult(mx, conj(my))
            vx = np.mean(np.sum(bx**2, axis=0)) - np.sum(mx**2)
            vy = np.mean(np.sum(by**2, axis=0)) - np.sum(my**2)
            sx, sy = np.sqrt(vx), np.sqrt(vy)
            nx, ny = np.linalg.norm(mx), np.linalg.norm(my)
            q = (np.linalg.norm(sxy) / (sx * sy)) * (2 * sx * sy / (vx + vy))
            q *= 2 * nx * ny / (nx**2 + ny**2)
            values.append(q)
    return float(np.mean(values))


# ---------------------------------------------------------------------------- PSNR / SSIM


def test_psnr_hand_case_and_identical():
    ref = np.zeros((4, 4, 3), dtype=np.uint8)
    pred = ref.copy()
    assert metrics.psnr(pred, ref) == float("inf")
    pred[0, 0, 0] = 10  # MSE = 100 / 48
    expected = 10 * np.log10(255**2 / (100 / 48))
    assert metrics.psnr(pred, ref) == pytest.approx(expected)


def test_psnr_valid_mask_excludes_pixels():
    ref = np.full((4, 4, 3), 100, dtype=np.uint8)
    pred = ref.copy()
    pred[0, 0] = 0
    valid = np.ones((4, 4), dtype=bool)
    valid[0, 0] = False
    assert metrics.psnr(pred, ref, valid) == float("inf")
    assert np.isnan(metrics.psnr(pred, ref, np.zeros((4, 4), dtype=bool)))


def test_ssim_identical_is_one_and_matches_skimage():
    ref = _random_rgb()
    pred = _add_noise(ref, 15)
    assert metrics.ssim(ref, ref) == pytest.approx(1.0)
    expected = structural_similarity(
        pred.astype(float), ref.astype(float), channel_axis=-1, data_range=255
    )
    assert metrics.ssim(pred, ref) == pytest.approx(expected)
    # An all-valid mask gives the unmasked value.
    assert metrics.ssim(pred, ref, np.ones(ref.shape[:2], bool)) == pytest.approx(expected)
    assert metrics.ssim(pred, ref) < 0.99


def test_ssim_valid_mask_ignores_garbage_in_invalid_pixels():
    ref = _random_rgb()
    pred = ref.copy()
    pred[:, :10] = 0  # wrong, but masked out
    valid = np.ones(ref.shape[:2], dtype=bool)
    valid[:, :10] = False
    assert metrics.ssim(pred, ref, valid) == pytest.approx(1.0)
    assert metrics.ssim(pred, ref) < 0.9


# ---------------------------------------------------------------------------- LAB metrics


def test_ab_rmse_hand_case():
    ref = np.zeros((2, 2, 2))
    pred = np.zeros((2, 2, 2))
    pred[0, 0] = [3.0, 4.0]  # squared errors 9 + 16 over 8 values
    assert metrics.ab_rmse(pred, ref) == pytest.approx(np.sqrt(25 / 8))
    # LAB input: L is ignored.
    pred_lab = np.concatenate([np.full((2, 2, 1), 50.0), pred], axis=-1)
    ref_lab = np.concatenate([np.full((2, 2, 1), 10.0), ref], axis=-1)
    assert metrics.ab_rmse(pred_lab, ref_lab) == pytest.approx(np.sqrt(25 / 8))
    valid = np.ones((2, 2), dtype=bool)
    valid[0, 0] = False
    assert metrics.ab_rmse(pred, ref, valid) == 0.0


def test_ciede2000_zero_for_same_colour_and_matches_skimage():
    rng = np.random.default_rng(3)
    lab = np.stack(
        [rng.uniform(10, 90, (6, 5)), rng.uniform(-40, 40, (6, 5)), rng.uniform(-40, 40, (6, 5))],
        axis=-1,
    )
    other = lab + rng.normal(0, 5, lab.shape)
    from skimage.color import deltaE_ciede2000

    assert metrics.ciede2000(lab, lab) == pytest.approx(0.0, abs=1e-9)
    assert metrics.ciede2000(other, lab) == pytest.approx(np.mean(deltaE_ciede2000(lab, other)))


def test_chroma_ratio():
    optical = np.zeros((3, 3, 2))
    optical[..., 0] = 3.0
    optical[..., 1] = 4.0  # chroma 5
    half = optical / 2
    assert metrics.chroma_ratio(half, optical) == pytest.approx(0.5)
    assert metrics.chroma_ratio(np.zeros_like(optical), optical) == 0.0
    assert np.isnan(metrics.chroma_ratio(optical, np.zeros_like(optical)))


def test_colourfulness_grey_is_zero_and_ratio():
    grey = np.full((16, 16, 3), 120, dtype=np.uint8)
    assert metrics.colourfulness(grey) == pytest.approx(0.0)
    colour = _random_rgb((16, 16))
    assert metrics.colourfulness(colour) > 10
    assert metrics.colourfulness_ratio(colour, colour) == pytest.approx(1.0)
    assert metrics.colourfulness_ratio(grey, colour) == pytest.approx(0.0)
    # Hand case: constant (R, G, B) = (200, 100, 50): rg = yb = 100, M = 0.3 * sqrt(2) * 100.
    flat = np.zeros((4, 4, 3))
    flat[...] = [200, 100, 50]
    assert metrics.colourfulness(flat) == pytest.approx(0.3 * np.sqrt(2) * 100)


# ---------------------------------------------------------------------------- protocol metrics


def test_nrmse_hand_case():
    ref = np.zeros((1, 2, 3))
    ref[0, 0] = [1, 2, 2]
    ref[0, 1] = [1, 2, 2]
    pred = ref.copy()
    pred[..., 0] = 2  # band 0: rms error 1, rms ref 1 -> 1; other bands 0
    assert metrics.nrmse(pred, ref) == pytest.approx(1 / 3)
    assert metrics.nrmse(ref, ref) == 0.0
    # Scale invariant (8-bit vs 12-bit).
    assert metrics.nrmse(pred * 16, ref * 16) == pytest.approx(1 / 3)


def test_sam_scaled_image_is_zero_and_hand_angle():
    ref = _random_rgb().astype(float) + 1
    assert metrics.sam(ref * 3.0, ref) == pytest.approx(0.0, abs=1e-5)
    a = np.array([[[1.0, 0.0, 0.0]]])
    b = np.array([[[1.0, 1.0, 0.0]]])
    assert metrics.sam(a, b) == pytest.approx(45.0)
    # Zero-norm pixels are left out rather than counted as 0 or 90 degrees.
    a2 = np.array([[[1.0, 0.0, 0.0], [0.0, 0.0, 0.0]]])
    b2 = np.array([[[1.0, 1.0, 0.0], [0.0, 1.0, 0.0]]])
    assert metrics.sam(a2, b2) == pytest.approx(45.0)
    # Masking the only pixel with an angle leaves nothing to average.
    assert np.isnan(metrics.sam(a2, b2, np.array([[False, True]])))


def test_q4_identity_noise_and_symmetry():
    ref = _random_rgb((64, 72))
    assert metrics.q4(ref, ref) == pytest.approx(1.0)
    previous = 1.0
    for sigma in (5, 20, 60):
        noisy = _add_noise(ref, sigma)
        value = metrics.q4(noisy, ref)
        assert value < previous
        previous = value
        assert metrics.q4(ref, noisy) == pytest.approx(value)
    assert previous < 0.8


def test_q4_matches_brute_force_quaternion_loop():
    ref = _random_rgb((40, 50), seed=4)
    pred = _add_noise(ref, 25, seed=5)
    assert metrics.q4(pred, ref) == pytest.approx(_q4_brute_force(ref, pred, 32, 16), rel=1e-9)
    # Block sizes that are multiples of the shift sum tiles; others take running sums.
    for size, shift in ((8, 4), (6, 4)):
        assert metrics.q4(pred, ref, block_size=size, shift=shift) == pytest.approx(
            _q4_brute_force(ref, pred, size, shift), rel=1e-9
        )


def test_q4_scale_invariant_and_mean_bias_counts():
    ref = _random_rgb((48, 48), seed=6)
    pred = _add_noise(ref, 20, seed=7)
    assert metrics.q4(pred.astype(float) * 16, ref.astype(float) * 16) == pytest.approx(
        metrics.q4(pred, ref)
    )
    darker = (ref.astype(float) * 0.5).astype(np.uint8)
    assert metrics.q4(darker, ref) < 0.95


def test_q4_valid_mask_excludes_blocks_and_pixels():
    ref = _random_rgb((64, 64), seed=8)
    pred = ref.copy()
    pred[:, :32] = 255 - pred[:, :32]
    valid = np.ones((64, 64), dtype=bool)
    valid[:, :32] = False
    assert metrics.q4(pred, ref, valid) == pytest.approx(1.0)
    assert metrics.q4(pred, ref) < 0.8


# ---------------------------------------------------------------------------- reference, all


def test_reference_rgb_keeps_l_and_takes_optical_colour():
    rng = np.random.default_rng(9)
    optical_rgb = rng.uniform(0.1, 0.9, (6, 7, 3))
    optical_lab = rgb2lab(optical_rgb)
    lightness = np.full((6, 7), 55.0)
    ref_lab = metrics.reference_lab(lightness, optical_lab[..., 1:])
    assert np.array_equal(ref_lab[..., 0], lightness)
    assert np.array_equal(ref_lab[..., 1:], optical_lab[..., 1:])
    rgb = metrics.lab_to_rgb_u8(ref_lab)
    assert rgb.dtype == np.uint8 and rgb.shape == (6, 7, 3)
    expected = np.round(np.clip(lab2rgb(ref_lab), 0, 1) * 255)
    assert np.abs(rgb.astype(int) - expected).max() == 0
    # With the optical L the reference is the optical image itself (up to 8-bit rounding).
    same = metrics.lab_to_rgb_u8(metrics.reference_lab(optical_lab[..., 0], optical_lab[..., 1:]))
    assert np.abs(same.astype(float) - optical_rgb * 255).max() <= 0.51


def test_image_metrics_keys_and_perfect_output():
    rng = np.random.default_rng(10)
    optical_lab = rgb2lab(rng.uniform(0.1, 0.9, (40, 40, 3)))
    lightness = rng.uniform(30, 70, (40, 40))
    ref_lab = metrics.reference_lab(lightness, optical_lab[..., 1:])
    ref_rgb = metrics.lab_to_rgb_u8(ref_lab)
    result = metrics.image_metrics(ref_rgb, ref_rgb, ref_lab, ref_lab, optical_lab)
    assert tuple(result) == metrics.METRIC_NAMES
    assert result["psnr"] == float("inf")
    assert result["ab_rmse"] == 0.0 and result["nrmse"] == 0.0
    assert result["ssim"] == pytest.approx(1.0) and result["q4"] == pytest.approx(1.0)
    assert result["chroma_ratio"] == pytest.approx(1.0)

    grey_lab = metrics.reference_lab(lightness, np.zeros((40, 40, 2)))
    grey = metrics.image_metrics(
        metrics.lab_to_rgb_u8(grey_lab), ref_rgb, grey_lab, ref_lab, optical_lab
    )
    assert grey["chroma_ratio"] == 0.0
    assert grey["ab_rmse"] > 5 and np.isfinite(grey["psnr"])
    assert all(np.isfinite(value) for value in grey.values())


def test_improvement_signs_follow_metric_goals():
    assert metrics.improvement("psnr", 25.0, 20.0) == 5.0
    assert metrics.improvement("ab_rmse", 4.0, 5.0) == 1.0
    # Ratios: closer to 1 wins, from either side.
    assert metrics.improvement("chroma_ratio", 0.9, 0.5) == pytest.approx(0.4)
    assert metrics.improvement("chroma_ratio", 1.6, 0.5) == pytest.approx(-0.1)
    assert set(metrics.METRIC_GOALS) == set(metrics.METRIC_NAMES)
