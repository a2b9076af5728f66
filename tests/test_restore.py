"""Tests of lumachrome.restore: the aging function and the preparation of old prints."""

from __future__ import annotations

import importlib

import numpy as np
import pytest
import torch
from skimage import data

from lumachrome.color.lab import rgb_to_lab_np
from lumachrome.errors import ConfigError
from lumachrome.restore import (
    TINTS,
    Aging,
    PrepareOptions,
    before_after,
    degrade,
    degrade_lightness,
    denoise,
    detect_defects,
    detect_tint,
    estimate_noise,
    gray_from_lightness,
    inpaint,
    lightness,
    local_contrast,
    normalize_levels,
    prepare,
    random_aging,
    tone,
)

prepare_mod = importlib.import_module("lumachrome.restore.prepare")

NO_DEFECTS = dict(dust=0, scratches=0)


@pytest.fixture(scope="module")
def photo() -> np.ndarray:
    """scikit-image's astronaut at 256x256, float32 RGB."""
    import cv2

    return cv2.resize(data.astronaut(), (256, 256), interpolation=cv2.INTER_AREA).astype(np.float32) / 255


@pytest.fixture(scope="module")
def camera() -> np.ndarray:
    import cv2

    return cv2.resize(data.camera(), (320, 320), interpolation=cv2.INTER_AREA).astype(np.float32) / 255


def smooth_L(h: int = 200, w: int = 240) -> np.ndarray:
    yy, xx = np.mgrid[:h, :w].astype(np.float32)
    return 30 + 40 * (xx / w) + 10 * np.sin(yy / 30)


# ------------------------------------------------------------------------------ lightness
def test_lightness_matches_lab_and_inverts(photo):
    L = lightness(photo)
    assert L.dtype == np.float32 and L.shape == photo.shape[:2]
    np.testing.assert_allclose(L, rgb_to_lab_np(photo)[..., 0], atol=2e-3)
    gray = gray_from_lightness(L, channels=3)
    lab = rgb_to_lab_np(gray)
    np.testing.assert_allclose(lab[..., 0], L, atol=2e-3)
    assert np.abs(lab[..., 1:]).max() < 0.01  # neutral
    np.testing.assert_allclose(lightness((photo * 255).astype(np.uint8)), L, atol=0.3)


# ------------------------------------------------------------------------------ degrade
def test_degrade_is_deterministic_and_valid(photo):
    a, ma = degrade(photo, np.random.default_rng(5), strength=1.0, return_mask=True)
    b, mb = degrade(photo, np.random.default_rng(5), strength=1.0, return_mask=True)
    c = degrade(photo, np.random.default_rng(6), strength=1.0)
    assert a.shape == photo.shape and a.dtype == np.float32
    assert 0.0 <= a.min() and a.max() <= 1.0
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(ma, mb)
    assert np.abs(a - c).mean() > 0.005


def test_degrade_strength_zero_is_the_gray_photo(photo):
    out, mask = degrade(photo, np.random.default_rng(0), strength=0.0, return_mask=True)
    assert not mask.any()
    np.testing.assert_allclose(lightness(out), lightness(photo), atol=0.05)
    assert np.abs(rgb_to_lab_np(out)[..., 1:]).max() < 0.05


def test_degrade_sepia_defects_and_fading(photo):
    aging = Aging(tint_ab=TINTS["sepia"], tint=1.0, fade=0.6, grain=0.0, blur=0.0, stains=0.0, vignette=0.0)
    out, mask = degrade(photo, np.random.default_rng(1), aging=aging, return_mask=True)
    lab = rgb_to_lab_np(out)
    mid = (lab[..., 0] > 30) & (lab[..., 0] < 70) & ~mask
    # sepia: positive a and b in the mid-tones
    assert np.median(lab[mid, 1]) > 4 and np.median(lab[mid, 2]) > 12
    # fading: blacks lifted, whites dimmed
    p1, p99 = np.percentile(lab[~mask, 0], [1, 99])
    assert p1 > 15 and p99 < 92
    assert 0.001 < mask.mean() < 0.2
    # defects are bright or dark specks / lines over the print
    clean = lightness(degrade(photo, np.random.default_rng(1), aging=aging.replace(**NO_DEFECTS)))
    assert np.abs(lab[..., 0] - clean)[mask].mean() > 15


def test_degrade_lightness_for_augmentation():
    rng = np.random.default_rng(0)
    L = smooth_L()
    aged, mask = degrade_lightness(L, rng, random_aging(rng, strength=0.8))
    assert aged.shape == L.shape and aged.dtype == np.float32
    assert 0 <= aged.min() and aged.max() <= 100
    with pytest.raises(ValueError):
        degrade_lightness(np.zeros((4, 4, 3), np.float32), rng)


def test_tone_lightness_is_kept():
    L = smooth_L(40, 50)
    rgb = tone(L, TINTS["cyanotype"], 1.0)
    lab = rgb_to_lab_np(rgb)
    np.testing.assert_allclose(lab[..., 0], L, atol=0.05)
    assert (lab[..., 2] < -10).mean() > 0.9


# ------------------------------------------------------------------------------ tint
def test_detect_tint(photo):
    L = lightness(photo)
    sepia = detect_tint(tone(L, TINTS["sepia"]))
    assert sepia.monochrome and sepia.tinted and 55 < sepia.hue < 85
    cyan = detect_tint(tone(L, TINTS["cyanotype"]))
    assert cyan.tinted and cyan.b < -10
    gray = detect_tint(gray_from_lightness(L, 3))
    assert gray.monochrome and not gray.tinted and gray.chroma < 0.5
    colour = detect_tint(photo)
    assert not colour.monochrome and not colour.tinted
    assert detect_tint(gray_from_lightness(L)).monochrome  # 2-D input
    assert "removed" in sepia.describe() and "colour" in colour.describe()


# ------------------------------------------------------------------------------ levels, contrast
def test_levels_undo_fading():
    L = smooth_L()
    faded = 30 + 0.5 * (L - L.min()) / (L.max() - L.min()) * 80  # in [30, 70]
    out = normalize_levels(faded)
    lo, hi = np.percentile(out, [0.5, 99.5])
    assert lo < 5 and hi > 95
    # monotone: the order of the grey levels is kept
    idx = np.argsort(faded.ravel())
    assert np.all(np.diff(out.ravel()[idx]) >= -1e-3)


def test_levels_brighten_very_dark_and_spare_flat():
    L = smooth_L()
    dark = L * 0.15  # median ~ 7
    out = normalize_levels(dark)
    assert np.median(out) > 35
    flat = np.full((50, 60), 40, np.float32) + np.random.default_rng(0).normal(0, 0.2, (50, 60)).astype(np.float32)
    assert normalize_levels(flat).std() < 1.0  # gain capped at 4: noise is not blown up
    good = np.linspace(1, 99, 100 * 120, dtype=np.float32).reshape(100, 120)
    np.testing.assert_allclose(normalize_levels(good), good, atol=1.5)


def test_local_contrast():
    L = smooth_L()
    rng = np.random.default_rng(0)
    L = L * 0.3 + 35 + rng.normal(0, 0.5, L.shape).astype(np.float32)
    out = local_contrast(L, 2.0)
    assert out.std() > L.std() * 1.1
    np.testing.assert_array_equal(local_contrast(L, 0.0), L)


# ------------------------------------------------------------------------------ noise
def test_estimate_noise_white_and_correlated():
    import cv2

    rng = np.random.default_rng(0)
    L = smooth_L(300, 300)
    assert estimate_noise(L) < 0.5
    noisy = L + rng.normal(0, 3.0, L.shape).astype(np.float32)
    assert 2.5 < estimate_noise(noisy) < 3.5
    corr = cv2.GaussianBlur(rng.standard_normal(L.shape).astype(np.float32), (0, 0), 0.8)
    corr *= 3.0 / corr.std()
    assert 2.3 < estimate_noise(L + corr) < 3.8  # the flat-patch estimate catches correlated grain


def test_denoise_removes_grain_keeps_clean_images():
    rng = np.random.default_rng(1)
    L = smooth_L(160, 160)
    noisy = np.clip(L + rng.normal(0, 4.0, L.shape).astype(np.float32), 0, 100)
    out = denoise(noisy)
    assert np.abs(out - L).mean() < 0.5 * np.abs(noisy - L).mean()
    np.testing.assert_array_equal(denoise(L), L)  # clean: skipped
    np.testing.assert_array_equal(denoise(noisy, strength=0), noisy)


# ------------------------------------------------------------------------------ defects
def test_detect_defects_finds_dust_and_scratches(camera):
    import cv2

    aging = Aging(tint=0.0, fade=0.2, grain=2.0, blur=0.5, stains=0.0, vignette=0.0, dust=60, scratches=5)
    recalls = []
    for seed in range(3):
        out, truth = degrade(camera, np.random.default_rng(seed), aging=aging, return_mask=True)
        found = detect_defects(lightness(out))
        recalls.append((found & truth).sum() / truth.sum())
        # the mask is dilated to cover anti-aliased rims: count pixels within 2 px of a defect
        near = cv2.dilate(truth.astype(np.uint8), np.ones((5, 5), np.uint8)).astype(bool)
        precision = (found & near).sum() / max(1, found.sum())
        assert precision > 0.25, precision  # a random mask of the same size: ~0.05
    assert np.mean(recalls) > 0.3, recalls  # camera at 320 px: grass and tripod make it hard


def test_detect_defects_quiet_on_clean_and_grainy_images(camera):
    clean = lightness(camera)
    assert detect_defects(clean).mean() < 0.035  # catchlight-like details, thin bright lines
    grainy = clean + np.random.default_rng(0).normal(0, 3.0, clean.shape).astype(np.float32)
    assert detect_defects(grainy).mean() < 0.025
    flat = np.full((200, 200), 50, np.float32) + np.random.default_rng(1).normal(0, 3.0, (200, 200)).astype(np.float32)
    assert detect_defects(flat).mean() < 0.001  # grain alone is not dust
    with pytest.raises(ConfigError):
        detect_defects(clean, sensitivity=0)


def test_inpaint_fills_a_scratch():
    L = smooth_L()
    scratched = L.copy()
    scratched[:, 100:102] = 98.0
    mask = np.zeros(L.shape, bool)
    mask[:, 99:103] = True
    out = inpaint(scratched, mask)
    assert np.abs(out - L)[mask].mean() < 2.0
    np.testing.assert_array_equal(out[~mask], scratched[~mask])
    np.testing.assert_array_equal(inpaint(L, np.zeros(L.shape, bool)), L)
    with pytest.raises(ValueError):
        inpaint(L, mask[:10])


# ------------------------------------------------------------------------------ prepare
def test_prepare_tinted_scratched_print(camera):
    aging = Aging(tint_ab=TINTS["sepia"], tint=1.0, fade=0.5, grain=2.5, blur=0.3, dust=40, scratches=5)
    old, truth = degrade(camera, np.random.default_rng(3), aging=aging, return_mask=True)
    res = prepare(old)
    assert [s.name for s in res.steps] == ["neutralise", "levels", "defects", "denoise", "contrast"]
    assert res.tint.tinted and res.steps[0].applied
    assert res.defects.any() and res.steps[2].applied
    assert res.noise > 1.0 and res.steps[3].applied
    assert res.L.shape == camera.shape[:2] and res.L.dtype == np.float32
    g = res.gray()
    assert g.ndim == 2 and np.abs(rgb_to_lab_np(np.dstack([g] * 3))[..., 1:]).max() < 0.05
    # the defects are mostly gone: on the true defect pixels the prepared L is close to its
    # smoothed neighbourhood, much closer than in the damaged print
    import cv2

    ref = cv2.medianBlur((res.L * 2.55).astype(np.uint8), 11).astype(np.float32) / 2.55
    before = cv2.medianBlur((lightness(old) * 2.55).astype(np.uint8), 11).astype(np.float32) / 2.55
    assert np.abs(res.L - ref)[truth].mean() < 0.75 * np.abs(lightness(old) - before)[truth].mean()
    assert "tint" in res.report() and res.image().ndim == 2
    kept = prepare(old, neutralize=False).image()
    assert kept.ndim == 3 and detect_tint(kept).tinted


def test_prepare_very_dark_input(camera):
    dark_L = lightness(camera) * 0.2
    res = prepare(gray_from_lightness(dark_L))
    assert np.median(res.L) > 30 > np.median(dark_L)
    assert not res.tint.tinted


def test_prepare_every_step_optional(camera):
    x = camera
    res = prepare(x, levels=False, defects=False, denoise=False, contrast=0.0)
    np.testing.assert_allclose(res.L, lightness(x), atol=1e-5)
    assert [s.name for s in res.steps] == ["neutralise"]
    with pytest.raises(ConfigError):
        prepare(x, sharpen=True)
    with pytest.raises(ConfigError):
        prepare(x, PrepareOptions(contrast=-1))


def test_denoise_uses_the_fast_path_above_the_limit(monkeypatch):
    calls = []
    import cv2

    real = cv2.fastNlMeansDenoising

    def spy(src, dst=None, h=3, templateWindowSize=7, searchWindowSize=21):
        calls.append((templateWindowSize, searchWindowSize))
        return real(src, dst, h, templateWindowSize, searchWindowSize)

    monkeypatch.setattr(prepare_mod.cv2, "fastNlMeansDenoising", spy)
    monkeypatch.setattr(prepare_mod, "FAST_DENOISE_PIXELS", 3_000)
    noisy = smooth_L(80, 80) + np.random.default_rng(0).normal(0, 3, (80, 80)).astype(np.float32)
    denoise(noisy[:50, :50])
    denoise(noisy)
    assert calls == [(7, 21), (5, 11)]


def test_before_after_view(photo):
    view = before_after([photo, lightness(photo) / 100, (photo * 255).astype(np.uint8)], ["a", "b", "c"], height=128)
    assert view.dtype == np.uint8 and view.shape == (128, 3 * 128 + 2 * 6, 3)
    with pytest.raises(ValueError):
        before_after([photo], ["a", "b"])
    with pytest.raises(ValueError):
        before_after([])


# ------------------------------------------------------------------------------ pipeline
@pytest.fixture(scope="module")
def tiny_colorizer(tmp_path_factory):
    from lumachrome.colorizer import Colorizer
    from lumachrome.models import create_model, save_model_dir

    torch.manual_seed(0)
    model = create_model("unet_tiny")
    folder = tmp_path_factory.mktemp("restore_models") / "tiny"
    save_model_dir(model, folder, architecture="unet", args=model.args, preprocessing={"size": 64})
    return Colorizer.load(folder, device="cpu")


def test_colorize_old_photo_pipeline(tiny_colorizer, camera):
    from lumachrome.restore.pipeline import colorize_old_photo

    old = degrade(camera, np.random.default_rng(2), strength=0.8)
    res = colorize_old_photo(tiny_colorizer, old, restore=True, references=[data.coffee()], strength=1.0)
    assert res.rgb.shape == camera.shape[:2] + (3,)
    # the output's lightness is the prepared one, not the damaged print's
    # (up to gamut clipping of saturated colours in the highlights)
    assert np.median(np.abs(lightness(res.rgb) - res.prepared.L)) < 0.2
    ab = rgb_to_lab_np(res.rgb)[..., 1:]
    coffee_ab = rgb_to_lab_np(data.coffee().astype(np.float32) / 255)[..., 1:]
    # moved toward the reference's (warm, brown-red) mean colour
    assert np.linalg.norm(ab.mean((0, 1)) - coffee_ab.mean((0, 1))) < 8
    view = res.before_after(height=100)
    assert view.shape[0] == 100 and view.shape[1] > 300
    plain = colorize_old_photo(tiny_colorizer, old, restore=False)
    assert plain.prepared is None
    assert np.median(np.abs(lightness(plain.rgb) - lightness(old))) < 0.2


def test_restorer_hook_in_colorize_file(tiny_colorizer, tmp_path, camera):
    from lumachrome.imageio import load_image, save_image
    from lumachrome.restore.pipeline import Restorer

    src = tmp_path / "old.png"
    save_image(src, degrade(camera, np.random.default_rng(4), strength=1.0))
    rest = Restorer()
    dst = tiny_colorizer.colorize_file(src, tmp_path / "out.png", preprocess=rest)
    out = load_image(dst).rgb
    assert rest.last is not None
    assert np.median(np.abs(lightness(out) - rest.last.L)) < 0.5
    assert rest.before_after(out, height=64).shape[0] == 64


def test_remove_defects_at_reduced_resolution():
    import cv2

    from lumachrome.restore import remove_defects

    camera = cv2.resize(data.chelsea(), (384, 256), interpolation=cv2.INTER_AREA).astype(np.float32) / 255

    aging = Aging(tint=0.0, fade=0.0, grain=1.0, blur=0.5, stains=0.0, vignette=0.0, dust=60, scratches=5)
    old, truth = degrade(camera, np.random.default_rng(7), aging=aging, return_mask=True)
    L = lightness(old)
    full, m_full = remove_defects(L)
    small, m_small = remove_defects(L, max_pixels=L.size // 2)  # a 0.7x copy
    clean = lightness(degrade(camera, np.random.default_rng(7), aging=aging.replace(dust=0, scratches=0)))
    err0 = np.abs(L - clean)[truth].mean()
    for out, m in ((full, m_full), (small, m_small)):
        assert m.shape == L.shape and m.any()
        assert np.abs(out - clean)[truth].mean() < 0.8 * err0
        np.testing.assert_array_equal(out[~m], L[~m])  # untouched outside the mask
