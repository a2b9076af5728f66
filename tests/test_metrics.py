"""Tests for lumachrome.metrics: hand-computed values and agreement with scikit-image."""

from __future__ import annotations

import math

import numpy as np
import pytest
from skimage.color import deltaE_ciede2000, rgb2lab
from skimage.metrics import structural_similarity

from lumachrome.metrics import (
    AUC_MAX_THRESHOLD,
    METRIC_NAMES,
    PSNR_CAP,
    ab_auc,
    ab_error_auc,
    ciede2000,
    colorfulness,
    image_metrics,
    psnr,
    ssim,
)


@pytest.fixture(scope="module")
def photo() -> np.ndarray:
    """A smooth, colourful 64x64 uint8 image (gradients plus a few blobs)."""
    yy, xx = np.mgrid[0:64, 0:64].astype(np.float64) / 63.0
    r = 255 * xx
    g = 255 * yy
    b = 255 * (0.5 + 0.5 * np.sin(6 * xx + 4 * yy))
    return np.clip(np.stack([r, g, b], axis=2), 0, 255).round().astype(np.uint8)


@pytest.fixture(scope="module")
def noisy(photo: np.ndarray) -> np.ndarray:
    rng = np.random.default_rng(0)
    return np.clip(photo.astype(np.int16) + rng.integers(-25, 26, photo.shape), 0, 255).astype(np.uint8)


def _gray_of(img: np.ndarray) -> np.ndarray:
    y = img.astype(np.float64) @ np.array([0.299, 0.587, 0.114])
    return np.repeat(np.round(y)[:, :, None], 3, axis=2).astype(np.uint8)


# ------------------------------------------------------------------------------------- PSNR


def test_psnr_identical_images_is_capped(photo):
    assert psnr(photo, photo) == pytest.approx(PSNR_CAP)
    assert PSNR_CAP == pytest.approx(48.1308, abs=1e-4)  # 20 log10(255)
    assert psnr(photo, photo, cap=None) == math.inf


def test_psnr_hand_computed():
    gt = np.zeros((8, 8, 3), np.uint8)
    pred = np.full((8, 8, 3), 10, np.uint8)  # MSE = 100
    assert psnr(pred, gt) == pytest.approx(10 * math.log10(255**2 / 100.0))  # 28.1308
    pred2 = gt.copy()
    pred2[..., 0] = 30  # one channel off by 30: MSE = 900 / 3 = 300
    assert psnr(pred2, gt) == pytest.approx(10 * math.log10(255**2 / 300.0))
    # black vs white: MSE = 255^2 -> 0 dB; uint8 arithmetic must not wrap around
    assert psnr(np.full((4, 4, 3), 255, np.uint8), gt[:4, :4]) == pytest.approx(0.0)
    assert psnr(gt[:4, :4], np.full((4, 4, 3), 255, np.uint8)) == pytest.approx(0.0)


def test_psnr_cap_applies_below_one_level_rms():
    gt = np.zeros((4, 4, 3), np.uint8)
    pred = gt.copy()
    pred[0, 0, 0] = 1  # MSE = 1/48 -> 64.9 dB uncapped
    assert psnr(pred, gt, cap=None) == pytest.approx(10 * math.log10(255**2 * 48))
    assert psnr(pred, gt) == pytest.approx(PSNR_CAP)


# ------------------------------------------------------------------------------------- SSIM


def test_ssim_identical_is_one(photo):
    assert ssim(photo, photo) == pytest.approx(1.0)


def test_ssim_matches_skimage_defaults(photo, noisy):
    expected = structural_similarity(noisy, photo, channel_axis=-1, data_range=255)
    assert ssim(noisy, photo) == pytest.approx(expected, abs=1e-12)
    assert 0.0 < ssim(noisy, photo) < 0.95
    # not the Gaussian-window variant
    gauss = structural_similarity(
        noisy, photo, channel_axis=-1, data_range=255, gaussian_weights=True, sigma=1.5, use_sample_covariance=False
    )
    assert abs(ssim(noisy, photo) - gauss) > 1e-4


def test_ssim_rejects_tiny_images():
    img = np.zeros((5, 5, 3), np.uint8)
    with pytest.raises(ValueError, match="7x7"):
        ssim(img, img)


# ------------------------------------------------------------------------------ colourfulness


def test_colorfulness_of_gray_images_is_zero(photo):
    assert colorfulness(_gray_of(photo)) == pytest.approx(0.0, abs=1e-9)
    assert colorfulness(np.full((5, 7, 3), 128, np.uint8)) == 0.0


def test_colorfulness_hand_computed():
    # Uniform pure red: rg = 255, yb = |127.5 - 0| = 127.5, no spread -> 0.3 * hypot(255, 127.5)
    red = np.zeros((4, 4, 3), np.uint8)
    red[..., 0] = 255
    assert colorfulness(red) == pytest.approx(0.3 * math.hypot(255.0, 127.5))  # 85.53
    # Half red, half black: rg in {255, 0} (mean 127.5, std 127.5), yb in {127.5, 0} (mean = std = 63.75)
    # CF = hypot(127.5, 63.75) + 0.3 * hypot(127.5, 63.75) = 1.3 * 142.548 = 185.31
    half = red.copy()
    half[:, :2] = 0
    assert colorfulness(half) == pytest.approx(1.3 * math.hypot(127.5, 63.75))
    assert colorfulness(half) == pytest.approx(185.31, abs=0.01)


def test_colorfulness_uses_absolute_opponents():
    # rg = R - G is +100 on one half and -100 on the other: |rg| is constant, so std_rg = 0.
    img = np.zeros((2, 2, 3), np.uint8)
    img[0, :, 0] = 100  # R = 100, G = 0, B = 0  -> |rg| = 100, |yb| = 50
    img[1, :, 1] = 100  # R = 0, G = 100, B = 0  -> |rg| = 100, |yb| = 50
    assert colorfulness(img) == pytest.approx(0.3 * math.hypot(100.0, 50.0))


def test_colorfulness_matches_direct_formula(noisy):
    x = noisy.astype(np.float64)
    rg = np.abs(x[..., 0] - x[..., 1])
    yb = np.abs(0.5 * (x[..., 0] + x[..., 1]) - x[..., 2])
    expected = np.sqrt(rg.std() ** 2 + yb.std() ** 2) + 0.3 * np.sqrt(rg.mean() ** 2 + yb.mean() ** 2)
    assert colorfulness(noisy) == pytest.approx(expected, rel=1e-6)


# -------------------------------------------------------------------------------------- AuC


def test_ab_error_auc_hand_computed():
    assert ab_error_auc(np.zeros(10)) == 1.0
    assert ab_error_auc(np.full(10, 151.0)) == 0.0
    # Every error = 10: acc(t) = 0 for t < 10, 1 from t = 10 on.
    # Trapezoids: [9, 10] -> 0.5, [10, 150] -> 140; area 140.5 / 150.
    assert ab_error_auc(np.full(7, 10.0)) == pytest.approx(140.5 / 150)
    # Half the pixels perfect, half hopeless -> 0.5
    assert ab_error_auc(np.array([0.0, 0.0, 500.0, 500.0])) == pytest.approx(0.5)
    # A threshold counts errors equal to it (<= t)
    assert ab_error_auc(np.array([1.0]), max_threshold=1) == pytest.approx(0.5)
    assert ab_error_auc(np.array([1.0 + 1e-9]), max_threshold=1) == pytest.approx(0.0)


def test_ab_error_auc_matches_brute_force():
    rng = np.random.default_rng(1)
    err = rng.gamma(2.0, 15.0, size=(30, 40))
    acc = np.array([(err <= t).mean() for t in range(AUC_MAX_THRESHOLD + 1)])
    expected = np.sum((acc[1:] + acc[:-1]) / 2) / AUC_MAX_THRESHOLD
    assert ab_error_auc(err) == pytest.approx(expected, abs=1e-12)


def test_ab_error_auc_rejects_bad_input():
    with pytest.raises(ValueError, match="empty"):
        ab_error_auc(np.array([]))
    with pytest.raises(ValueError, match="max_threshold"):
        ab_error_auc(np.zeros(3), max_threshold=0)


def test_ab_auc_identical_is_one(photo):
    assert ab_auc(photo, photo) == 1.0


def test_ab_auc_matches_skimage_lab(photo):
    pred = _gray_of(photo)
    a, b = rgb2lab(pred), rgb2lab(photo)
    err = np.sqrt(((a[..., 1:] - b[..., 1:]) ** 2).sum(-1))
    acc = np.array([(err <= t).mean() for t in range(151)])
    expected = np.sum((acc[1:] + acc[:-1]) / 2) / 150
    assert ab_auc(pred, photo) == pytest.approx(expected, abs=2e-3)
    assert 0.3 < ab_auc(pred, photo) < 0.95


def test_ab_auc_ignores_lightness(photo):
    darker = (photo.astype(np.float64) * 0.999).astype(np.uint8)  # tiny changes only
    assert ab_auc(darker, photo) > 0.99
    # A lightness change between gray images keeps ab ~ 0 (float32 Lab of a gray is ~1e-3 off, so
    # only the t = 0 point may be lost: AuC >= 149.5 / 150).
    g = np.full((8, 8, 3), 100, np.uint8)
    assert ab_auc(g, np.full((8, 8, 3), 200, np.uint8)) >= 149.5 / 150 - 1e-12


# -------------------------------------------------------------------------------- CIEDE2000


def test_ciede2000_identical_is_zero(photo):
    assert ciede2000(photo, photo) == 0.0


def test_ciede2000_black_vs_white_is_100():
    # Neutral colours, L 0 vs 100: mean L = 50 so S_L = 1 and Delta E 2000 = Delta L = 100.
    black = np.zeros((4, 4, 3), np.uint8)
    white = np.full((4, 4, 3), 255, np.uint8)
    assert ciede2000(black, white) == pytest.approx(100.0, abs=0.05)


def test_ciede2000_matches_skimage_float64(photo, noisy):
    expected = deltaE_ciede2000(rgb2lab(photo), rgb2lab(noisy)).mean()
    assert ciede2000(noisy, photo) == pytest.approx(expected, abs=1e-3)


# ---------------------------------------------------------------------------- image_metrics


def test_image_metrics_identical(photo):
    m = image_metrics(photo, photo)
    assert tuple(m) == METRIC_NAMES
    assert all(isinstance(v, float) for v in m.values())
    assert m["psnr"] == pytest.approx(PSNR_CAP)
    assert m["ssim"] == pytest.approx(1.0)
    assert m["auc"] == 1.0
    assert m["ciede2000"] == 0.0
    assert m["cf"] == pytest.approx(m["cf_gt"])


def test_image_metrics_agrees_with_single_functions(photo, noisy):
    m = image_metrics(noisy, photo)
    assert m["psnr"] == pytest.approx(psnr(noisy, photo))
    assert m["ssim"] == pytest.approx(ssim(noisy, photo))
    assert m["cf"] == pytest.approx(colorfulness(noisy))
    assert m["cf_gt"] == pytest.approx(colorfulness(photo))
    assert m["auc"] == pytest.approx(ab_auc(noisy, photo))
    assert m["ciede2000"] == pytest.approx(ciede2000(noisy, photo))
    assert m["psnr"] < 30 and m["ciede2000"] > 1


@pytest.mark.parametrize(
    ("pred", "match"),
    [
        (np.zeros((8, 8, 3), np.float32), "uint8"),
        (np.zeros((8, 8), np.uint8), "shape"),
        (np.zeros((8, 9, 3), np.uint8), "differs"),
    ],
)
def test_metrics_reject_bad_inputs(pred, match):
    gt = np.zeros((8, 8, 3), np.uint8)
    for fn in (psnr, ssim, ab_auc, ciede2000, image_metrics):
        with pytest.raises(ValueError, match=match):
            fn(pred, gt)


def test_colorfulness_rejects_non_images():
    with pytest.raises(TypeError):
        colorfulness([[1, 2, 3]])
    with pytest.raises(ValueError, match="uint8"):
        colorfulness(np.zeros((4, 4, 3), np.float64))
