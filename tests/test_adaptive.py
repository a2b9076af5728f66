"""Tests of lumachrome.adaptive (features, chroma stretch, the per-image gain) and lumachrome.calibrate (fitting it)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from _stubs import RampAB, save_tiny_model
from PIL import Image

from lumachrome.adaptive import FEATURES, GAIN_GRID, AdaptiveGain, centre_ab, image_features, stretch_chroma
from lumachrome.calibrate import calibrate, colorfulness_torch, fit_gain, mean_ab, score_gains
from lumachrome.color.lab import lab_to_rgb, rgb_to_lab
from lumachrome.colorizer import Colorizer
from lumachrome.errors import ConfigError, DataError
from lumachrome.metrics import colorfulness, psnr


def random_ab(b: int = 3, h: int = 16, w: int = 24, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(b, 2, h, w, generator=g) * 15


def flat_gain(log_gain: float = math.log(1.5), stretch: float = 0.0) -> AdaptiveGain:
    n = len(FEATURES)
    return AdaptiveGain(mean=[0.0] * n, scale=[1.0] * n, weights=[0.0] * n, bias=log_gain, stretch=stretch)


# ------------------------------------------------------------------------------------ pieces
def test_image_features_shape_and_gray_inputs() -> None:
    L = torch.rand(3, 1, 16, 24) * 100
    f = image_features(L, random_ab())
    assert f.shape == (3, len(FEATURES)) and torch.isfinite(f).all()
    gray = image_features(torch.full((2, 1, 8, 8), 50.0), torch.zeros(2, 2, 8, 8))
    assert torch.isfinite(gray).all()
    assert gray[:, :5].abs().max() == 0  # no chroma: every chroma feature is 0
    torch.testing.assert_close(gray[:, 10], torch.full((2,), 0.5))  # median L / 100


def test_stretch_keeps_hue_and_mean_chroma() -> None:
    ab = random_ab() * 0.05 + 5  # chroma well above 0: no clamping
    out = stretch_chroma(ab, 0.5)
    c, c2 = ab.norm(dim=1), out.norm(dim=1)
    torch.testing.assert_close(c2.mean((1, 2)), c.mean((1, 2)), rtol=1e-5, atol=1e-4)
    assert (c2.std((1, 2)) > 1.4 * c.std((1, 2))).all()
    cos = (ab * out).sum(1) / (c * c2)
    assert cos.min() > 0.9999  # hue kept
    assert stretch_chroma(ab, 0.0) is ab
    low = stretch_chroma(random_ab(), 3.0)
    assert torch.isfinite(low).all()  # weak pixels clamp to gray, never flip hue
    assert ((low * random_ab()).sum(1) >= -1e-4).all()


def test_gain_applies_stretch_then_gain() -> None:
    L = torch.rand(2, 1, 16, 24) * 100
    ab = random_ab(2)
    torch.testing.assert_close(flat_gain().apply(L, ab), 1.5 * ab)
    torch.testing.assert_close(flat_gain(stretch=0.4).apply(L, ab), 1.5 * stretch_chroma(ab, 0.4))
    clamped = flat_gain(log_gain=10.0).gains(L, ab)
    assert torch.equal(clamped, torch.full((2,), GAIN_GRID[-1]))
    with pytest.raises(ValueError, match="do not match"):
        flat_gain().apply(L[:1], ab)


def test_gain_around_a_centre_colour() -> None:
    """With a centre, stretch and gain act on ab - centre: the centre colour itself is a fixed point,
    and colours on the far side of gray from it gain chroma faster than under a gain around gray."""
    L = torch.rand(2, 1, 16, 24) * 100
    ab = random_ab(2)
    centre = (2.0, 6.0)
    c = torch.tensor(centre).view(1, 2, 1, 1)
    g = flat_gain(stretch=0.4)
    g.centre = centre
    torch.testing.assert_close(g.apply(L, ab), 1.5 * stretch_chroma(ab - c, 0.4) + c)
    torch.testing.assert_close(g.gains(L, ab), flat_gain(stretch=0.4).gains(L, ab - c))
    fixed = c.expand(1, 2, 4, 4).clone()
    flat = flat_gain()
    flat.centre = centre
    torch.testing.assert_close(flat.apply(L[:1, :, :4, :4], fixed), fixed)
    blue = torch.tensor([-4.0, -20.0]).view(1, 2, 1, 1).expand(1, 2, 4, 4)
    assert flat.apply(L[:1, :, :4, :4], blue).norm(dim=1).mean() > flat_gain().apply(L[:1, :, :4, :4], blue).norm(dim=1).mean()
    assert centre_ab(ab, (0, 0)) is ab
    torch.testing.assert_close(centre_ab(centre_ab(ab, centre), centre, inverse=True), ab)
    # A gain fitted around gray writes no "centre" key, so earlier model folders stay byte-identical.
    assert "centre" not in flat_gain().to_config() and flat.to_config()["centre"] == [2.0, 6.0]
    assert AdaptiveGain.from_config(json.loads(json.dumps(flat.to_config()))) == flat
    for bad in ([1.0], [float("nan"), 0.0], [0.0, 99.0]):
        with pytest.raises(ConfigError, match="centre"):
            AdaptiveGain.from_config({**flat_gain().to_config(), "centre": bad})


def test_score_gains_around_a_centre_colour() -> None:
    g = torch.Generator().manual_seed(1)
    gt = torch.rand(2, 3, 24, 24, generator=g)
    L = rgb_to_lab(gt)[:, :1]
    ab = random_ab(2, 24, 24, seed=2) * 0.5
    c = (3.0, 8.0)
    p, cf = score_gains(L, ab, gt, gains=(0.0, 1.5), centre=c)
    p0, cf0 = score_gains(L, torch.tensor(c).view(1, 2, 1, 1).expand_as(ab), gt, gains=(1.0,))
    torch.testing.assert_close(p[:, 0], p0[:, 0])  # gain 0 around a centre: the centre colour everywhere
    p1, _ = score_gains(L, 1.5 * ab + torch.tensor(c).view(1, 2, 1, 1), gt, gains=(1.0,))
    torch.testing.assert_close(p[:, 1], p1[:, 0])


def test_gain_depends_on_the_image() -> None:
    """A weight on the median chroma feature: duller images get more gain, per image of a batch."""
    n = len(FEATURES)
    w = [0.0] * n
    w[FEATURES.index("log1p chroma q50")] = -0.5
    gain = AdaptiveGain(mean=[0.0] * n, scale=[1.0] * n, weights=w, bias=1.5)
    L = torch.full((2, 1, 8, 8), 50.0)
    ab = torch.stack([torch.full((2, 8, 8), 2.0), torch.full((2, 8, 8), 20.0)])
    g = gain.gains(L, ab)
    assert g[0] > g[1]
    expected = torch.exp(1.5 - 0.5 * torch.log1p(ab.norm(dim=1).flatten(1).median(1).values))
    torch.testing.assert_close(g, expected)


def test_config_round_trip_and_validation() -> None:
    gain = flat_gain(stretch=0.3)
    cfg = json.loads(json.dumps(gain.to_config()))
    again = AdaptiveGain.from_config(cfg)
    assert again == gain
    bad_cases = [
        {**cfg, "weights": cfg["weights"][:-1]},
        {**cfg, "mean": [float("nan")] * len(FEATURES)},
        {**cfg, "scale": [0.0] * len(FEATURES)},
        {**cfg, "features": ["something else"]},
        {**cfg, "surprise": 1},
        {k: v for k, v in cfg.items() if k != "bias"},
        {**cfg, "stretch": -1},
        {**cfg, "min_gain": 2.0, "max_gain": 1.0},
        {**cfg, "bias": "x"},
        [1, 2, 3],
    ]
    for bad in bad_cases:
        with pytest.raises(ConfigError, match="adaptive_gain"):
            AdaptiveGain.from_config(bad)


# ------------------------------------------------------------------------------------ scoring / fitting
def test_score_gains_matches_the_metrics() -> None:
    g = torch.Generator().manual_seed(1)
    gt = torch.rand(2, 3, 24, 24, generator=g)
    L = rgb_to_lab(gt)[:, :1]
    ab = random_ab(2, 24, 24, seed=2) * 0.5
    p, c = score_gains(L, ab, gt, gains=(0.0, 1.0, 2.0))
    assert p.shape == c.shape == (2, 3)
    gt8 = np.rint(gt.permute(0, 2, 3, 1).numpy() * 255).astype(np.uint8)
    for k, gain in enumerate((0.0, 1.0, 2.0)):
        rgb = torch.round(lab_to_rgb(torch.cat([L, ab * gain], 1)) * 255).permute(0, 2, 3, 1).numpy().astype(np.uint8)
        for i in range(2):
            assert p[i, k].item() == pytest.approx(psnr(rgb[i], gt8[i]), abs=1e-3)
            assert c[i, k].item() == pytest.approx(colorfulness(rgb[i]), abs=1e-3)
    assert c[:, 0].abs().max() < 1.0  # gain 0: (nearly) gray
    assert colorfulness_torch(torch.zeros(1, 3, 4, 4)).item() == 0


def test_fit_gain_learns_a_feature_dependent_gain() -> None:
    """Synthetic scores whose best gain grows with feature 0: the fit reproduces the rule."""
    rng = np.random.default_rng(0)
    n = 400
    x = rng.normal(size=(n, len(FEATURES)))
    best = np.clip(np.exp(0.3 + 0.25 * x[:, 0]), GAIN_GRID[0], GAIN_GRID[-1])
    g = np.array(GAIN_GRID)
    psnr_grid = -((np.log(g)[None] - np.log(best)[:, None]) ** 2) * 10  # peaks at each image's best gain
    fitted = fit_gain(x, psnr_grid, np.zeros_like(psnr_grid), cf_weight=0.0, ridge=1.0)
    w = np.array(fitted.weights) / np.array(fitted.scale)
    assert w[0] == pytest.approx(0.25, abs=0.05)
    assert np.abs(w[1:]).max() < 0.05
    assert fitted.fitted["images"] == n and fitted.min_gain == GAIN_GRID[0]
    # colourfulness weight: a larger one picks larger gains
    cf_grid = np.tile(g, (n, 1)) * 10
    assert fit_gain(x, psnr_grid, cf_grid, cf_weight=1.0).bias > fitted.bias
    with pytest.raises(ValueError, match="too few"):
        fit_gain(x[:5], psnr_grid[:5], psnr_grid[:5], cf_weight=0.0)
    with pytest.raises(ValueError, match="do not match"):
        fit_gain(x, psnr_grid[:, :3], psnr_grid[:, :3], cf_weight=0.0)


# ------------------------------------------------------------------------------------ colorizer
def test_colorizer_applies_the_stored_gain_before_saturation() -> None:
    L = torch.linspace(0, 100, 2 * 16 * 24).view(2, 1, 16, 24)
    cfg = {"decoding": {"adaptive_gain": flat_gain(stretch=0.2).to_config()}}
    base = Colorizer(RampAB(), {}, "cpu").predict_ab_batch(L)
    col = Colorizer(RampAB(), cfg, "cpu")
    assert col.adaptive is not None
    torch.testing.assert_close(col.predict_ab_batch(L), 1.5 * stretch_chroma(base, 0.2))
    torch.testing.assert_close(Colorizer(RampAB(), cfg, "cpu", saturation=2).predict_ab_batch(L),
                               3.0 * stretch_chroma(base, 0.2))
    off = Colorizer(RampAB(), cfg, "cpu", adaptive=False)
    assert off.adaptive is None
    torch.testing.assert_close(off.predict_ab_batch(L), base)
    with pytest.raises(ConfigError, match="adaptive_gain"):
        Colorizer(RampAB(), {"decoding": {"adaptive_gain": {"bias": 1}}}, "cpu")


@pytest.fixture(scope="module")
def photo_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("photos")
    rng = np.random.default_rng(3)
    for i in range(36):
        base = rng.uniform(0, 255, size=(1, 1, 3))
        ramp = np.linspace(0, 1, 48)[None, :, None] * rng.uniform(-80, 80, size=(1, 1, 3))
        img = np.clip(base + ramp + rng.normal(0, 8, size=(40, 48, 3)), 0, 255).astype(np.uint8)
        Image.fromarray(img).save(folder / f"p{i:02d}.png")
    return folder


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save_tiny_model(tmp_path_factory.mktemp("models") / "tiny", size=32, decoding={"saturation": 1.3})


def test_calibrate_fits_on_photos_and_leaves_the_colorizer_as_it_was(tiny_model: Path, photo_folder: Path) -> None:
    col = Colorizer.load(tiny_model, device="cpu")
    gain = calibrate(col, photo_folder, cf_weight=0.05, stretch=0.3, size=32, batch_size=8, progress=False)
    assert gain.fitted["images"] == 36 and gain.stretch == 0.3
    assert col.saturation == 1.3 and col.adaptive is None  # restored
    L = torch.rand(2, 1, 32, 32) * 100
    g = gain.gains(L, col.predict_ab_batch(L))
    assert torch.isfinite(g).all() and (g >= GAIN_GRID[0]).all() and (g <= GAIN_GRID[-1]).all()
    assert calibrate(col, photo_folder, cf_weight=0.05, size=32, limit=31, progress=False).fitted["images"] == 31
    with pytest.raises(DataError, match="at least 30"):
        calibrate(col, photo_folder, cf_weight=0.05, size=32, limit=20, progress=False)


def test_calibrate_around_the_mean_colour_of_the_photos(tiny_model: Path, photo_folder: Path) -> None:
    from lumachrome.color.lab import rgb_to_lab_np
    from lumachrome.evaluate import load_eval_images

    expected = np.mean([rgb_to_lab_np(gt)[..., 1:].reshape(-1, 2).mean(0) for _, gt in load_eval_images(photo_folder, 32)], 0)
    a, b = mean_ab(photo_folder, size=32)
    assert (a, b) == pytest.approx(tuple(expected), abs=2e-3)  # equal-size crops: mean of means
    assert abs(a) + abs(b) > 1  # the test photos are coloured
    col = Colorizer.load(tiny_model, device="cpu")
    gain = calibrate(col, photo_folder, cf_weight=0.05, stretch=0.3, centre="mean", size=32, batch_size=8, progress=False)
    assert gain.centre == (a, b)
    with pytest.raises(ConfigError, match="centre"):
        calibrate(col, photo_folder, cf_weight=0.05, centre="median", size=32, progress=False)


def test_cli_calibrate_stores_the_gain_and_colorize_uses_it(tiny_model: Path, photo_folder: Path, tmp_path: Path,
                                                           capsys: pytest.CaptureFixture) -> None:
    import shutil

    from lumachrome.cli import main

    model = tmp_path / "model"
    shutil.copytree(tiny_model, model)
    assert main(["calibrate", str(model), "--data", str(photo_folder), "--cf-weight", "0.05"]) == 0
    assert "fitted on 36 photos" in capsys.readouterr().out
    cfg = json.loads((model / "config.json").read_text())
    assert "saturation" not in cfg["decoding"] and cfg["decoding"]["adaptive_gain"]["stretch"] == 0.3
    col = Colorizer.load(model, device="cpu")
    assert col.adaptive is not None and col.saturation == 1.0
    out = tmp_path / "out.png"
    assert main(["colorize", str(photo_folder / "p00.png"), "-o", str(out), "--model", str(model)]) == 0
    assert out.is_file()
    capsys.readouterr()
    assert main(["calibrate", str(tmp_path / "missing"), "--data", str(photo_folder)]) != 0
    err = capsys.readouterr().err
    assert "not found" in err and "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert main(["calibrate", str(model), "--data", str(photo_folder), "--centre", "1.5,4"]) == 0
    assert "centre a 1.5 b 4" in capsys.readouterr().out
    assert json.loads((model / "config.json").read_text())["decoding"]["adaptive_gain"]["centre"] == [1.5, 4.0]
    for bad in ("1.5", "a,b", "0,99"):
        assert main(["calibrate", str(model), "--data", str(photo_folder), "--centre", bad]) == 2
        err = capsys.readouterr().err
        assert "--centre" in err and "Traceback" not in err


def test_onnx_backend_decodes_like_torch(tiny_model: Path, tmp_path: Path) -> None:
    """The adaptive gain is decoding, outside the network: the ONNX backend applies it the same way."""
    import shutil

    model = tmp_path / "model"
    shutil.copytree(tiny_model, model)
    cfg = json.loads((model / "config.json").read_text())
    cfg["decoding"] = {"adaptive_gain": AdaptiveGain(mean=[0.0] * len(FEATURES), scale=[1.0] * len(FEATURES),
                                                     weights=[0.05] * len(FEATURES), bias=0.3, stretch=0.3).to_config()}
    (model / "config.json").write_text(json.dumps(cfg))
    L = torch.rand(2, 1, 32, 32) * 100
    torch_col = Colorizer.load(model, device="cpu")
    onnx_col = Colorizer.load(model, device="cpu", backend="onnx")
    assert onnx_col.adaptive is not None
    torch.testing.assert_close(onnx_col.predict_ab_batch(L), torch_col.predict_ab_batch(L), atol=1e-3, rtol=1e-4)
