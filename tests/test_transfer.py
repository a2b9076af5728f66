"""Tests of lumachrome.transfer: Reinhard, per-band and histogram transfer, exemplar colorization,
era palettes, the colorizer hook and the CLI (palette build, colorize --reference/--palette)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from skimage import data

from lumachrome.color.lab import lab_to_rgb_np, rgb_to_lab_np
from lumachrome.errors import ConfigError, ImageError
from lumachrome.transfer import (
    BandStats,
    ColorCorrection,
    LabStats,
    Palette,
    band_transfer,
    band_weights,
    build_palette,
    chain,
    lab_stats,
    load_references,
    pooled_samples,
    reinhard_ab,
    welsh_ab,
)
from lumachrome.transfer.local import _monotone_map


def scene(h: int = 96, w: int = 128, seed: int = 0) -> np.ndarray:
    """Lab image whose colour depends on lightness: dark = blue, mid = green, bright = orange."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:h, :w].astype(np.float32)
    L = 15 + 70 * (yy / h) + 5 * np.sin(xx / 7) + rng.normal(0, 1.0, (h, w)).astype(np.float32)
    L = np.clip(L, 1, 99)
    a = np.where(L < 40, 10.0, np.where(L < 65, -30.0, 25.0)).astype(np.float32)
    b = np.where(L < 40, -40.0, np.where(L < 65, 25.0, 45.0)).astype(np.float32)
    a += rng.normal(0, 3, (h, w)).astype(np.float32)
    b += rng.normal(0, 3, (h, w)).astype(np.float32)
    return np.dstack([L, a, b]).astype(np.float32)


def rgb_of(lab: np.ndarray) -> np.ndarray:
    return lab_to_rgb_np(lab)


def ab_err(ab: np.ndarray, truth: np.ndarray) -> float:
    return float(np.linalg.norm(ab - truth, axis=-1).mean())


# ------------------------------------------------------------------------------ reinhard
def test_lab_stats_and_pooling():
    rng = np.random.default_rng(0)
    x = rng.normal(5, 3, (1000, 3))
    y = rng.normal(-2, 1, (500, 3))
    pooled = LabStats.pool([lab_stats(x), lab_stats(y)])
    both = lab_stats(np.concatenate([x, y]))
    np.testing.assert_allclose(pooled.mean, both.mean, atol=1e-9)
    np.testing.assert_allclose(pooled.std, both.std, atol=1e-9)
    w = lab_stats(np.concatenate([x, y]), weights=np.r_[np.ones(1000), np.zeros(500)])
    np.testing.assert_allclose(w.mean, lab_stats(x).mean, atol=1e-9)


def test_reinhard_matches_target_moments_and_caps_gain():
    lab = scene()
    ref = scene(seed=1)
    ref[..., 1] = ref[..., 1] * 0.5 + 12
    target = lab_stats(ref)
    out = reinhard_ab(lab[..., 0], lab[..., 1:], target)
    got = lab_stats(np.dstack([lab[..., 0], out]))
    np.testing.assert_allclose(got.mean[1:], target.mean[1:], atol=1e-3)
    np.testing.assert_allclose(got.std[1:], target.std[1:], rtol=1e-3)
    # a gray prediction is not blown up: gain <= max_gain over a floored source std
    gray_ab = np.random.default_rng(0).normal(0, 0.1, lab.shape[:2] + (2,)).astype(np.float32)
    out = reinhard_ab(lab[..., 0], gray_ab, target, max_gain=3.0, min_std=2.0)
    assert out.std(axis=(0, 1)).max() <= 0.1 * 3.0 * 1.05
    np.testing.assert_allclose(out.mean(axis=(0, 1)), target.mean[1:], atol=0.05)
    with pytest.raises(ValueError):
        reinhard_ab(lab[..., 0], lab, target)


# ------------------------------------------------------------------------------ bands / histogram
def test_band_weights_sum_to_one():
    w = band_weights(np.array([0, 10, 49, 100], np.float32), np.array([10, 50, 90.0]), 12.0)
    np.testing.assert_allclose(w.sum(1), 1, atol=1e-6)
    assert w[1].argmax() == 0 and w[2].argmax() == 1 and w[3].argmax() == 2


def test_band_stats_json_roundtrip_and_validation():
    lab = scene()
    st = BandStats.from_lab(lab[..., 0], lab[..., 1:])
    d = json.loads(json.dumps(st.to_dict()))
    back = BandStats.from_dict(d)
    np.testing.assert_allclose(back.mean, st.mean, atol=1e-3)
    np.testing.assert_allclose(back.quantiles, st.quantiles, atol=1e-3)
    assert back.bands == 5 and back.hist.shape == st.hist.shape
    np.testing.assert_allclose(st.hist.sum(axis=(1, 2)), 1.0, atol=1e-6)
    # dark band is blue (b < 0), bright band orange (a, b > 0)
    assert st.mean[0, 1] < -20 and st.mean[-1, 0] > 10 and st.mean[-1, 1] > 30
    bad = dict(d, mean=[[0, 0]])
    with pytest.raises(ValueError):
        BandStats.from_dict(bad)
    with pytest.raises(ValueError):
        BandStats.from_dict(dict(d, mean=[[float("nan"), 0]] * 5))


@pytest.mark.parametrize("method", ["bands", "histogram"])
def test_band_transfer_recovers_lightness_dependent_colour(method):
    truth = scene()
    L, ab_true = truth[..., 0], truth[..., 1:]
    # a "model" that knows there is colour but not which: one dull global colour + noise
    rng = np.random.default_rng(3)
    ab_pred = np.zeros_like(ab_true) + np.array([5.0, 10.0], np.float32)
    ab_pred += rng.normal(0, 4, ab_pred.shape).astype(np.float32)
    target = BandStats.from_lab(L, ab_true)
    out = band_transfer(L, ab_pred, target, method=method)
    glob = reinhard_ab(L, ab_pred, lab_stats(truth))
    assert out.shape == ab_pred.shape and out.dtype == np.float32
    # per band beats global (which only scales the noise up) and nothing
    assert ab_err(out, ab_true) < 0.7 * min(ab_err(glob, ab_true), ab_err(ab_pred, ab_true))
    with pytest.raises(ValueError):
        band_transfer(L, ab_pred, target, method="nope")


def test_histogram_transfer_matches_marginals():
    src = scene(seed=4)
    ref = scene(seed=5)
    ref[..., 1] = -ref[..., 1]  # another palette
    # one band: plain histogram matching of a and b, the marginals match
    target = BandStats.from_lab(ref[..., 0], ref[..., 1:], centers=(50.0,), width=1000.0)
    out = band_transfer(src[..., 0], src[..., 1:], target, method="histogram", max_gain=10)
    for c in range(2):
        q_out = np.quantile(out[..., c], [0.1, 0.5, 0.9])
        q_ref = np.quantile(ref[..., 1 + c], [0.1, 0.5, 0.9])
        np.testing.assert_allclose(q_out, q_ref, atol=1.5)
    # with the slope limited to 1, the map can only shift: the spread stays the source's
    out1 = band_transfer(src[..., 0], src[..., 1:], target, method="histogram", max_gain=1.0)
    assert out1[..., 0].std() < src[..., 1].std() * 1.05


def test_monotone_map_limits_the_slope():
    x = np.array([0.0, 0.0, 0.0, 0.1, 0.1])
    y = np.array([-20.0, -10.0, 0.0, 10.0, 20.0])
    xs = _monotone_map(x, y, max_gain=2.0)
    assert np.all(np.diff(xs) > 0)
    assert np.all(np.diff(y) / np.diff(xs) <= 2.0 + 1e-9)
    assert xs[2] == 0.0  # the median stays


# ------------------------------------------------------------------------------ exemplar
def test_welsh_exemplar_colours_by_lightness_and_texture():
    ref = scene(seed=6)
    target = scene(seed=7)
    refs = load_references([rgb_of(ref)])
    ab = welsh_ab(target[..., 0], refs)
    assert ab.shape == target.shape[:2] + (2,) and ab.dtype == np.float32
    # far better than gray, and deterministic
    assert ab_err(ab, target[..., 1:]) < 0.4 * ab_err(np.zeros_like(ab), target[..., 1:])
    np.testing.assert_array_equal(ab, welsh_ab(target[..., 0], refs))
    assert not np.array_equal(ab, welsh_ab(target[..., 0], refs, seed=1, smooth=0))
    with pytest.raises(ConfigError):
        welsh_ab(target[..., 0], [])


# ------------------------------------------------------------------------------ references
def test_load_references_files_arrays_and_errors(tmp_path):
    from lumachrome.imageio import save_image

    save_image(tmp_path / "refs" / "a.png", data.coffee())
    save_image(tmp_path / "refs" / "b.jpg", data.astronaut())
    save_image(tmp_path / "gray.png", data.camera())
    refs = load_references([tmp_path / "refs", data.chelsea()])
    assert [r.name for r in refs] == ["a.png", "b.jpg", "array1"]
    assert max(refs[1].lab.shape[:2]) == 512 and refs[0].colourful
    s = pooled_samples(refs, per_reference=1000)
    assert s.shape[1] == 3 and 2900 <= len(s) <= 3000
    with pytest.raises(ImageError, match="gray"):
        load_references([tmp_path / "gray.png"])
    with pytest.raises(ImageError):
        load_references([tmp_path / "missing.jpg"])
    with pytest.raises(ImageError):
        load_references([np.zeros((8, 8), np.float32)])
    with pytest.raises(ConfigError):
        load_references([])


# ------------------------------------------------------------------------------ correction hook
def test_color_correction_strength_methods_and_errors():
    truth = scene()
    L, ab_true = truth[..., 0], truth[..., 1:]
    ab_pred = np.full_like(ab_true, 3.0)
    ref = rgb_of(truth)
    for method in ("reinhard", "bands", "histogram", "exemplar"):
        corr = ColorCorrection.from_references([ref], method=method, strength=1.0)
        out = corr(L, ab_pred)
        assert ab_err(out, ab_true) < ab_err(ab_pred, ab_true), method
    full = ColorCorrection.from_references([ref], method="bands", strength=1.0)(L, ab_pred)
    half = ColorCorrection.from_references([ref], method="bands", strength=0.5)(L, ab_pred)
    np.testing.assert_allclose(half, ab_pred + 0.5 * (full - ab_pred), atol=1e-4)
    zero = ColorCorrection.from_references([ref], strength=0.0)
    np.testing.assert_array_equal(zero(L, ab_pred), ab_pred)
    with pytest.raises(ConfigError):
        ColorCorrection.from_references([ref], method="magic")
    with pytest.raises(ConfigError):
        ColorCorrection.from_references([ref], strength=1.5)
    pal = build_palette([ref])
    with pytest.raises(ConfigError, match="exemplar"):
        ColorCorrection.from_palette(pal, method="exemplar")


def test_source_momentum_smooths_statistics_across_calls():
    truth = scene()
    L = truth[..., 0]
    ref = rgb_of(truth)
    rng = np.random.default_rng(0)
    frames = [np.full_like(truth[..., 1:], 0.0) + rng.normal(0, 1, 2).astype(np.float32) * 6 for _ in range(8)]
    outs = {}
    for m in (0.0, 0.9):
        corr = ColorCorrection.from_references([ref], method="bands", source_momentum=m)
        outs[m] = [corr(L, f).mean(axis=(0, 1)) for f in frames]
    jump = {m: np.abs(np.diff(np.array(o), axis=0)).mean() for m, o in outs.items()}
    # without momentum each frame's own mean is removed: outputs identical whatever the frame;
    # with it, the frame differences pass partly through but the statistics move slowly
    assert jump[0.0] < 1e-3
    assert jump[0.9] > 0.5
    corr = ColorCorrection.from_references([ref], method="bands", source_momentum=0.9)
    corr(L, frames[0])
    corr.reset()
    np.testing.assert_allclose(corr(L, frames[1]), ColorCorrection.from_references([ref])(L, frames[1]), atol=1e-4)


def test_chain():
    def add1(L, ab):
        return ab + 1

    def dbl(L, ab):
        return ab * 2

    ab = np.zeros((2, 2, 2), np.float32)
    assert chain() is None and chain(None) is None and chain(add1) is add1
    np.testing.assert_array_equal(chain(add1, None, dbl)(None, ab), np.full_like(ab, 2))


# ------------------------------------------------------------------------------ palettes
def test_palette_build_save_load(tmp_path):
    pal = build_palette([data.coffee(), data.chelsea()], name="warm")
    path = pal.save(tmp_path / "p" / "warm.json")
    text = path.read_text()
    d = json.loads(text)
    assert d["format"] == "lumachrome-palette" and d["n_images"] == 2 and d["name"] == "warm"
    back = Palette.load(path)
    np.testing.assert_allclose(back.stats.mean, pal.stats.mean, atol=1e-3)
    assert "warm" in back.describe()
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(ConfigError, match="invalid JSON"):
        Palette.load(tmp_path / "bad.json")
    (tmp_path / "other.json").write_text(json.dumps({"format": "x"}))
    with pytest.raises(ConfigError, match="not a lumachrome palette"):
        Palette.load(tmp_path / "other.json")
    d["stats"]["mean"] = [[0, 0]]
    (tmp_path / "broken.json").write_text(json.dumps(d))
    with pytest.raises(ConfigError, match="malformed"):
        Palette.load(tmp_path / "broken.json")
    with pytest.raises(ConfigError, match="not found"):
        Palette.load(tmp_path / "missing.json")


def test_palette_moves_colours_toward_the_era():
    truth = scene()
    L = truth[..., 0]
    warm = build_palette([data.coffee()])
    cool = build_palette([lab_to_rgb_np(np.dstack([L, np.full_like(L, -15), np.full_like(L, -25)]))])
    ab = np.zeros(L.shape + (2,), np.float32) + np.random.default_rng(0).normal(0, 3, L.shape + (2,)).astype(np.float32)
    out_w = ColorCorrection.from_palette(warm)(L, ab).mean(axis=(0, 1))
    out_c = ColorCorrection.from_palette(cool)(L, ab).mean(axis=(0, 1))
    assert out_w[1] > 5 and out_c[1] < -15 and out_c[0] < -8


# ------------------------------------------------------------------------------ colorizer + CLI
@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory) -> Path:
    from lumachrome.models import create_model, save_model_dir

    torch.manual_seed(0)
    model = create_model("unet_tiny")
    folder = tmp_path_factory.mktemp("transfer_models") / "tiny"
    save_model_dir(model, folder, architecture="unet", args=model.args, preprocessing={"size": 64})
    return folder


def test_colorizer_ab_transform_hook(tiny_model):
    from lumachrome.colorizer import Colorizer

    col = Colorizer.load(tiny_model, device="cpu")
    gray = data.camera()[::4, ::4].astype(np.float32) / 255
    seen = []

    def const(L, ab):
        seen.append((L.shape, ab.shape))
        return np.zeros_like(ab) + np.array([20.0, -10.0], np.float32)

    out = col.colorize_array(gray, ab_transform=const)
    assert seen and seen[0][1] == seen[0][0] + (2,)
    ab = rgb_to_lab_np(out)[..., 1:]
    mid = (rgb_to_lab_np(out)[..., 0] > 30) & (rgb_to_lab_np(out)[..., 0] < 70)
    np.testing.assert_allclose(np.median(ab[mid], axis=0), [20, -10], atol=1.0)
    with pytest.raises(ValueError, match="ab_transform"):
        col.colorize_array(gray, ab_transform=lambda L, ab: ab[:4])


@pytest.fixture
def cli(capsys, monkeypatch):
    from lumachrome.cli import main

    monkeypatch.setenv("COLUMNS", "200")

    def invoke(*args, cwd: Path):
        monkeypatch.chdir(cwd)
        capsys.readouterr()
        code = main([str(a) for a in args])
        out, err = capsys.readouterr()
        return code, out, err

    return invoke


def test_cli_palette_reference_restore(cli, tmp_path, tiny_model):
    from lumachrome.imageio import load_image, save_image
    from lumachrome.restore import degrade

    save_image(tmp_path / "old.jpg", degrade(data.chelsea(), np.random.default_rng(0), strength=0.9))
    save_image(tmp_path / "refs" / "coffee.jpg", data.coffee())
    code, out, err = cli("palette", "build", "refs", "-o", "era.json", cwd=tmp_path)
    assert code == 0 and "palette written" in out and (tmp_path / "era.json").is_file()
    code, out, _ = cli("palette", "show", "era.json", cwd=tmp_path)
    assert code == 0 and "L~" in out
    m = str(tiny_model)
    code, out, err = cli("colorize", "old.jpg", "-m", m, "-o", "plain.png", cwd=tmp_path)
    assert code == 0, err
    code, out, err = cli(
        "colorize", "old.jpg", "-m", m, "-o", "ref.png", "--restore", "--reference", "refs/coffee.jpg",
        "--strength", "1", "--before-after", cwd=tmp_path,
    )  # fmt: skip
    assert code == 0, err
    assert "neutralise" in err and "defects" in err  # the restoration steps are reported
    assert (tmp_path / "ref.before_after.jpg").is_file()
    code, out, err = cli("colorize", "old.jpg", "-m", m, "-o", "pal.png", "--palette", "era.json", cwd=tmp_path)
    assert code == 0, err
    plain = rgb_to_lab_np(load_image(tmp_path / "plain.png").rgb)[..., 1:].mean((0, 1))
    ref = rgb_to_lab_np(load_image(tmp_path / "ref.png").rgb)[..., 1:].mean((0, 1))
    pal = rgb_to_lab_np(load_image(tmp_path / "pal.png").rgb)[..., 1:].mean((0, 1))
    coffee = rgb_to_lab_np(data.coffee().astype(np.float32) / 255)[..., 1:].mean((0, 1))
    assert np.linalg.norm(ref - coffee) < 0.5 * np.linalg.norm(plain - coffee)
    assert np.linalg.norm(pal - coffee) < 0.5 * np.linalg.norm(plain - coffee)


def test_cli_errors(cli, tmp_path, tiny_model):
    from lumachrome.imageio import save_image

    save_image(tmp_path / "a.png", data.camera()[::4, ::4])
    m = str(tiny_model)
    code, _, err = cli("colorize", "a.png", "-m", m, "--transfer", "bands", cwd=tmp_path)
    assert code == 2 and "--reference" in err
    code, _, err = cli("colorize", "a.png", "-m", m, "--palette", "nope.json", "-o", "b.png", cwd=tmp_path)
    assert code == 1 and "palette file not found" in err and not (tmp_path / "b.png").exists()
    code, _, err = cli("colorize", "a.png", "-m", m, "--reference", "missing.jpg", "-o", "b.png", cwd=tmp_path)
    assert code == 1 and "missing.jpg" in err
    code, _, err = cli("colorize", "a.png", "-m", m, "--restore-skip", "denoise", cwd=tmp_path)
    assert code == 2
    code, _, err = cli("colorize", "a.png", "-m", m, "--restore", "--restore-skip", "sharpen", cwd=tmp_path)
    assert code == 2 and "sharpen" in err
    code, _, err = cli("colorize", "a.png", "-m", m, "--reference", "a.png", "--strength", "2", cwd=tmp_path)
    assert code == 2


# ------------------------------------------------------------------------------ shared data
@pytest.mark.shared
def test_own_reference_improves_ciede2000_on_photos_val(shared_data, tiny_model):
    """The bar, on a small subset: colorizing with the photo's own colour version as the reference
    must beat the plain model (the full measurement is benchmarks/bench_reference.py)."""
    from lumachrome.colorizer import Colorizer, available_models
    from lumachrome.evaluate import load_eval_images
    from lumachrome.metrics import ciede2000

    col = Colorizer.load("photo" if "photo" in available_models() else tiny_model, device="cpu")
    plain, own = [], []
    for i, (_p, gt) in enumerate(load_eval_images(shared_data / "photos" / "val", 128)):
        if i >= 12:
            break
        L = rgb_to_lab_np(gt)[..., 0]
        ab = col.predict_ab_working(torch.from_numpy(L)[None, None])[0].permute(1, 2, 0).numpy()
        corr = ColorCorrection.from_references([gt], method="bands")

        def to8(ab_):
            return (np.clip(lab_to_rgb_np(np.dstack([L, ab_])), 0, 1) * 255 + 0.5).astype(np.uint8)

        plain.append(ciede2000(to8(ab), gt))
        own.append(ciede2000(to8(corr(L, ab)), gt))
    assert np.mean(own) < np.mean(plain) - 1.0, (np.mean(own), np.mean(plain))


def test_weighted_quantiles_with_zero_weights_fall_back_to_the_median() -> None:
    """All-zero weights (no pixel votes) give the plain median instead of failing."""
    from lumachrome.transfer.local import _weighted_quantiles

    v = np.array([1.0, 2.0, 3.0, 10.0])
    out = _weighted_quantiles(v, np.zeros(4), np.array([0.1, 0.5, 0.9]))
    np.testing.assert_allclose(out, [2.5, 2.5, 2.5])
    np.testing.assert_allclose(_weighted_quantiles(v, np.ones(4), np.array([0.5])), [2.5])
