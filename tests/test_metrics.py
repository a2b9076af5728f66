"""Tests for lumachrome.metrics: hand-computed values and agreement with scikit-image."""

from __future__ import annotations

import math

import numpy as np
import pytest
from skimage.color import deltaE_ciede2000, rgb2lab
from skimage.metrics import structural_similarity

from lumachrome.color.lab import lab_to_rgb_np
from lumachrome.metrics import (
    AUC_MAX_THRESHOLD,
    HUE_HALF_WINDOW,
    HUE_MIN_CHROMA,
    METRIC_NAMES,
    PSNR_CAP,
    ab_auc,
    ab_error_auc,
    ciede2000,
    colorfulness,
    frechet_distance,
    frechet_distance_from_stats,
    hue_concentration,
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


# ----------------------------------------------------------------------- hue concentration


def _lab_image(L: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """uint8 RGB of a Lab image given per-pixel L, a, b (same shape)."""
    lab = np.stack([L, a, b], axis=-1).astype(np.float32)
    return np.rint(lab_to_rgb_np(lab) * 255.0).astype(np.uint8)


def test_hue_concentration_sepia_is_one():
    """A gray photo toned with the classic sepia matrix: one hue, whatever the lightness."""
    yy, xx = np.mgrid[0:64, 0:64].astype(np.float64)
    gray = 40 + 150 * (0.5 + 0.5 * np.sin(xx / 7.0) * np.cos(yy / 5.0))
    sepia = np.array([[0.393, 0.769, 0.189], [0.349, 0.686, 0.168], [0.272, 0.534, 0.131]])
    rgb = np.clip(np.repeat(gray[..., None], 3, axis=2) / 255.0 @ sepia.T, 0, 1)
    img = np.rint(rgb * 255).astype(np.uint8)
    assert hue_concentration(img) == pytest.approx(1.0, abs=0.01)
    assert colorfulness(img) > 5  # it is a coloured image, not a gray one


def test_hue_concentration_uniform_hues_is_one_sixth():
    rng = np.random.default_rng(1)
    hue = rng.uniform(0, 2 * np.pi, (128, 128))
    img = _lab_image(np.full(hue.shape, 65.0), 20 * np.cos(hue), 20 * np.sin(hue))
    assert hue_concentration(img) == pytest.approx(1 / 6, abs=0.02)
    # evenly spaced hues, no sampling noise: the window holds exactly 60 of 360 degrees
    ring = np.linspace(0, 2 * np.pi, 360 * 36, endpoint=False).reshape(72, 180)
    assert hue_concentration(_lab_image(np.full(ring.shape, 65.0), 20 * np.cos(ring), 20 * np.sin(ring))) == (
        pytest.approx(1 / 6, abs=0.01))


def test_hue_concentration_window_and_wrap_around():
    """70% of the chroma mass in 350..10 degrees (across 0), 30% at 180: the window wraps around 360."""
    rng = np.random.default_rng(2)
    n = 100 * 100
    hue = np.where(np.arange(n) < 0.7 * n, rng.uniform(-10, 10, n), 180.0)
    h = np.radians(hue).reshape(100, 100)
    img = _lab_image(np.full(h.shape, 60.0), 25 * np.cos(h), 25 * np.sin(h))
    assert hue_concentration(img) == pytest.approx(0.7, abs=0.01)
    # the same mass 25 and 35 degrees either side of 0: 60 degrees apart fits one window only in part
    two = np.radians(np.where(np.arange(n) % 2 == 0, -35.0, 35.0)).reshape(100, 100)
    assert hue_concentration(_lab_image(np.full(two.shape, 60.0), 25 * np.cos(two), 25 * np.sin(two))) == (
        pytest.approx(0.5, abs=0.01))
    # mass is chroma, not pixels: half the pixels at 0 degrees with chroma 30, half at 180 with 10
    half = np.arange(n).reshape(100, 100) % 2 == 0
    img = _lab_image(np.full(half.shape, 60.0), np.where(half, 30.0, -10.0), np.zeros(half.shape))
    assert hue_concentration(img) == pytest.approx(0.75, abs=0.01)


def test_hue_concentration_invariant_to_chroma_scale():
    """Weighting by chroma, with no per-pixel threshold: scaling every chroma leaves it unchanged, even
    when a third of the pixels (of random hues) are only weakly coloured."""
    rng = np.random.default_rng(3)
    weak = rng.random((96, 96)) < 0.33
    hue = np.where(weak, rng.uniform(0, 360, weak.shape), rng.normal(60, 15, weak.shape))
    chroma = np.where(weak, rng.uniform(1.5, 3, weak.shape), rng.uniform(4, 8, weak.shape))
    h = np.radians(hue)
    values = [
        hue_concentration(_lab_image(np.full(h.shape, 62.0), k * chroma * np.cos(h), k * chroma * np.sin(h)))
        for k in (1.0, 2.5, 5.0)
    ]
    assert 0.5 < values[0] < 0.9
    assert values == pytest.approx([values[0]] * 3, abs=0.01)


def test_hue_concentration_achromatic_rule():
    gray = np.repeat(np.linspace(0, 255, 64 * 64).reshape(64, 64, 1), 3, axis=2).round().astype(np.uint8)
    assert math.isnan(hue_concentration(gray))
    # 8-bit rounding noise (one level in one channel of a tenth of the pixels) stays achromatic
    noisy = gray.copy()
    noisy[::10, :, 0] = np.minimum(noisy[::10, :, 0].astype(int) + 1, 255).astype(np.uint8)
    assert math.isnan(hue_concentration(noisy))
    # a faint but real tint is scored; the threshold is on the mean chroma over all pixels
    tinted = _lab_image(np.full((32, 32), 50.0), np.full((32, 32), 2.0), np.full((32, 32), 1.0))
    assert hue_concentration(tinted) == pytest.approx(1.0)
    assert math.isnan(hue_concentration(tinted, min_chroma=3.0))
    # mostly gray with a small coloured area (5 % of the pixels, chroma 10): mean chroma 0.5, scored
    patch = np.zeros((40, 40), bool)
    patch[:2] = True
    spot = _lab_image(np.full(patch.shape, 55.0), np.where(patch, 8.0, 0.0), np.where(patch, 6.0, 0.0))
    assert hue_concentration(spot) == pytest.approx(1.0, abs=0.02)
    assert HUE_MIN_CHROMA == 0.25 and HUE_HALF_WINDOW == 30


def test_image_metrics_hue_conc_of_pred_and_gt(photo):
    gray = _gray_of(photo)
    m = image_metrics(gray, photo)
    assert math.isnan(m["hue_conc"]) and m["hue_conc_gt"] == pytest.approx(hue_concentration(photo))
    assert 1 / 6 <= m["hue_conc_gt"] <= 1


# ---------------------------------------------------------------------- Frechet distance


def _fd_direct(mu1, s1, mu2, s2) -> float:
    """The formula with Tr sqrtm(S1 S2) as the sum of the square roots of the eigenvalues of S1 S2
    (real and >= 0 for positive semi-definite S1, S2), without scipy."""
    ev = np.linalg.eigvals(s1 @ s2).real.clip(min=0)
    return float(np.sum((mu1 - mu2) ** 2) + np.trace(s1) + np.trace(s2) - 2 * np.sqrt(ev).sum())


def test_frechet_distance_diagonal_gaussians_closed_form():
    rng = np.random.default_rng(4)
    d = 6
    mu1, mu2 = rng.normal(size=d), rng.normal(size=d)
    v1, v2 = rng.uniform(0.2, 3, d), rng.uniform(0.2, 3, d)
    closed = float(np.sum((mu1 - mu2) ** 2) + np.sum(v1 + v2 - 2 * np.sqrt(v1 * v2)))
    assert frechet_distance_from_stats(mu1, np.diag(v1), mu2, np.diag(v2)) == pytest.approx(closed, rel=1e-9)
    # from samples: the estimate converges to the closed form
    x1 = mu1 + rng.normal(size=(200_000, d)) * np.sqrt(v1)
    x2 = mu2 + rng.normal(size=(200_000, d)) * np.sqrt(v2)
    assert frechet_distance(x1, x2) == pytest.approx(closed, rel=0.02, abs=0.01)


def test_frechet_distance_matches_direct_numpy_computation():
    rng = np.random.default_rng(5)
    d = 12
    a1, a2 = rng.normal(size=(d, d)), rng.normal(size=(d, d))
    s1, s2 = a1 @ a1.T / d, a2 @ a2.T / d  # full (non-diagonal) covariances
    mu1, mu2 = rng.normal(size=d), rng.normal(size=d)
    assert frechet_distance_from_stats(mu1, s1, mu2, s2) == pytest.approx(_fd_direct(mu1, s1, mu2, s2), rel=1e-8)
    x1 = rng.normal(size=(300, d)) @ a1.T
    x2 = rng.normal(size=(250, d)) @ a2.T + 1.0
    m1, m2, c1, c2 = x1.mean(0), x2.mean(0), np.cov(x1, rowvar=False), np.cov(x2, rowvar=False)
    assert frechet_distance(x1, x2) == pytest.approx(_fd_direct(m1, c1, m2, c2), rel=1e-8)


def test_frechet_distance_small_sets_projection_is_exact():
    """Fewer vectors than dimensions (as 561 images in 1280-d): the projected computation equals the
    full d x d one."""
    rng = np.random.default_rng(6)
    d = 96
    x1 = rng.normal(size=(20, d)) * np.linspace(0.5, 2, d)
    x2 = rng.normal(size=(30, d)) + 0.3
    full = frechet_distance_from_stats(x1.mean(0), np.cov(x1, rowvar=False), x2.mean(0), np.cov(x2, rowvar=False))
    assert frechet_distance(x1, x2) == pytest.approx(full, rel=1e-6)
    assert frechet_distance(x1, x2) == pytest.approx(_fd_direct(x1.mean(0), np.cov(x1, rowvar=False),
                                                                x2.mean(0), np.cov(x2, rowvar=False)), rel=1e-6)


def test_frechet_distance_identical_is_zero_and_grows_with_mean_shift():
    rng = np.random.default_rng(7)
    x = rng.normal(size=(40, 16))
    assert frechet_distance(x, x) == pytest.approx(0.0, abs=1e-6)
    x_small = rng.normal(size=(5, 64))  # singular covariances
    assert frechet_distance(x_small, x_small) == pytest.approx(0.0, abs=1e-6)
    shift = np.zeros(16)
    previous = 0.0
    for step in (0.5, 1.0, 2.0):
        shift[:4] = step
        value = frechet_distance(x, x + shift)
        assert value == pytest.approx(float(shift @ shift), rel=1e-6)  # equal covariances: ||shift||^2
        assert value > previous
        previous = value


def test_frechet_distance_rejects_bad_inputs():
    with pytest.raises(ValueError, match="at least 2"):
        frechet_distance(np.zeros((1, 4)), np.zeros((3, 4)))
    with pytest.raises(ValueError, match="same d"):
        frechet_distance(np.zeros((3, 4)), np.zeros((3, 5)))
    with pytest.raises(ValueError, match="do not match"):
        frechet_distance_from_stats(np.zeros(3), np.eye(3), np.zeros(3), np.eye(4))
