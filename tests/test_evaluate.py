"""Tests for lumachrome.evaluate: the protocol on a tiny generated folder, and the reference
gray-baseline numbers on the shared validation photos."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from lumachrome.color.lab import rgb_to_lab_np
from lumachrome.errors import ConfigError, DataError, ModelError
from lumachrome.evaluate import (
    EvalResult,
    crop_resize_square,
    evaluate,
    format_table,
    gray_predictor,
    load_eval_images,
    predict_rgb,
    to_json,
)
from lumachrome.metrics import PSNR_CAP


def _colour_image(h: int, w: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    base = np.stack([xx / w, yy / h, 0.5 + 0.5 * np.sin((xx + yy) / 5.0)], axis=2) * 255
    return np.clip(base + rng.normal(0, 8, base.shape), 0, 255).astype(np.uint8)


@pytest.fixture()
def folder(tmp_path: Path) -> Path:
    """4 colour images (one in a subfolder, one stored as RGB but gray), 3 bad files, 1 non-image."""
    Image.fromarray(_colour_image(30, 40, 0)).save(tmp_path / "a.png")
    Image.fromarray(_colour_image(48, 36, 1)).save(tmp_path / "b.jpg", quality=95)
    (tmp_path / "sub").mkdir()
    Image.fromarray(_colour_image(20, 20, 2)).save(tmp_path / "sub" / "c.webp", quality=90)
    gray_rgb = np.repeat(_colour_image(24, 24, 3)[:, :, :1], 3, axis=2)
    Image.fromarray(gray_rgb, "RGB").save(tmp_path / "sub" / "d_gray_content.png")  # kept: RGB file
    Image.fromarray(_colour_image(24, 24, 4)[:, :, 0], "L").save(tmp_path / "e_gray.png")  # skipped
    Image.fromarray(np.full((16, 16), 3000, np.uint16)).save(tmp_path / "f_gray16.png")  # skipped (I;16)
    (tmp_path / "g_corrupt.jpg").write_bytes(b"\xff\xd8\xff\xe0 this is not really a jpeg")  # skipped
    (tmp_path / "h_empty.png").write_bytes(b"")  # skipped
    (tmp_path / "notes.txt").write_text("not an image")  # ignored (extension)
    return tmp_path


# --------------------------------------------------------------------------------- images


def test_crop_resize_square_centre_crop():
    img = np.zeros((20, 40, 3), np.uint8)
    img[:, 10:30] = 200  # the centre 20x20 square
    out = crop_resize_square(img, 20)
    assert out.shape == (20, 20, 3) and out.dtype == np.uint8
    assert (out == 200).all()
    tall = np.zeros((41, 20, 3), np.uint8)
    tall[10:30] = 7  # top = (41 - 20) // 2 = 10
    assert (crop_resize_square(tall, 20) == 7).all()
    assert crop_resize_square(img, 64).shape == (64, 64, 3)
    assert crop_resize_square(img, 8).shape == (8, 8, 3)


def test_crop_resize_square_is_pil_bicubic():
    img = _colour_image(50, 70, 5)
    expected = np.asarray(Image.fromarray(img[:, 10:60]).resize((32, 32), Image.Resampling.BICUBIC))
    np.testing.assert_array_equal(crop_resize_square(img, 32), expected)


def test_load_eval_images_skips_and_counts(folder):
    skipped: list[tuple[str, str]] = []
    items = list(load_eval_images(folder, size=16, skipped=skipped))
    names = [p.name for p, _ in items]
    assert names == ["a.png", "b.jpg", "c.webp", "d_gray_content.png"]
    assert all(img.shape == (16, 16, 3) and img.dtype == np.uint8 for _, img in items)
    bad = sorted(Path(p).name for p, _ in skipped)
    assert bad == ["e_gray.png", "f_gray16.png", "g_corrupt.jpg", "h_empty.png"]
    reasons = dict((Path(p).name, why) for p, why in skipped)
    assert "grayscale" in reasons["e_gray.png"] and "e_gray.png" in reasons["e_gray.png"]
    assert "grayscale" not in reasons["g_corrupt.jpg"]


def test_load_eval_images_errors(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        list(load_eval_images(tmp_path / "missing"))
    with pytest.raises(DataError, match="no image files"):
        list(load_eval_images(tmp_path))
    with pytest.raises(ConfigError, match="size"):
        list(load_eval_images(tmp_path, size=4))


# ------------------------------------------------------------------------------ prediction


def test_gray_predictor_shape():
    L = torch.rand(3, 1, 8, 12) * 100
    ab = gray_predictor(L)
    assert ab.shape == (3, 2, 8, 12) and ab.dtype == L.dtype and not ab.any()


def test_predict_rgb_with_oracle_ab_reconstructs_gt():
    gt = np.stack([_colour_image(32, 32, s) for s in range(3)])
    ab_true = torch.from_numpy(np.stack([rgb_to_lab_np(g)[:, :, 1:] for g in gt])).permute(0, 3, 1, 2)
    pred = predict_rgb(lambda L: ab_true.clone(), gt)
    assert pred.shape == gt.shape and pred.dtype == np.uint8
    assert np.abs(pred.astype(int) - gt).max() <= 1  # float32 Lab round trip


def test_predict_rgb_gray_gives_gray_output():
    gt = _colour_image(16, 16, 9)[None]
    pred = predict_rgb(gray_predictor, gt)[0].astype(int)
    assert np.abs(pred[..., 0] - pred[..., 1]).max() <= 1 and np.abs(pred[..., 1] - pred[..., 2]).max() <= 1


def test_predict_rgb_passes_raw_L():
    gt = np.zeros((2, 16, 16, 3), np.uint8)
    gt[1] = 255
    seen = {}

    def spy(L):
        seen["L"] = L
        return gray_predictor(L)

    predict_rgb(spy, gt)
    L = seen["L"]
    assert L.shape == (2, 1, 16, 16) and L.dtype == torch.float32
    assert float(L[0].max()) == pytest.approx(0.0, abs=0.01)
    assert float(L[1].min()) == pytest.approx(100.0, abs=0.01)


@pytest.mark.parametrize(
    ("predictor", "match"),
    [
        (lambda L: torch.zeros(L.shape[0], 3, *L.shape[2:]), "shape"),
        (lambda L: torch.full((L.shape[0], 2, *L.shape[2:]), float("nan")), "non-finite"),
        (lambda L: np.zeros((L.shape[0], 2, *L.shape[2:])), "torch.Tensor"),
    ],
)
def test_predict_rgb_rejects_bad_predictors(predictor, match):
    with pytest.raises(ModelError, match=match):
        predict_rgb(predictor, np.zeros((1, 16, 16, 3), np.uint8))


# -------------------------------------------------------------------------------- evaluate


def test_evaluate_gray_baseline_on_tiny_folder(folder):
    res = evaluate(gray_predictor, folder, size=16, batch_size=3, progress=False)
    assert isinstance(res, EvalResult)
    assert res.n_images == 4 and res.n_skipped == 4 and len(res.skipped) == 4
    assert [Path(r["path"]).name for r in res.rows] == ["a.png", "b.jpg", "c.webp", "d_gray_content.png"]
    for key in ("psnr", "ssim", "cf", "cf_gt", "dcf", "auc", "ciede2000"):
        assert math.isfinite(getattr(res, key)), key
    assert 5 < res.psnr <= PSNR_CAP
    assert 0 < res.ssim <= 1 and 0 < res.auc <= 1 and res.ciede2000 > 0
    assert res.cf < 1.0 < res.cf_gt  # the gray baseline is (almost) colourless
    assert res.dcf == pytest.approx(abs(res.cf - res.cf_gt))
    assert res.psnr == pytest.approx(np.mean([r["psnr"] for r in res.rows]))
    # the RGB file with gray content is scored: identical to its gray prediction -> capped PSNR
    row = next(r for r in res.rows if r["path"].endswith("d_gray_content.png"))
    assert row["psnr"] == pytest.approx(PSNR_CAP) and row["cf_gt"] == pytest.approx(0.0)


def test_evaluate_hue_concentration_columns(folder):
    """Gray predictions are achromatic: no hue_conc (NaN, counted), never a made-up number; a constant
    tint is one hue; the ground truth's mean skips its one gray-content file."""
    gray = evaluate(gray_predictor, folder, size=16, progress=False, fd_lite=False)
    assert math.isnan(gray.hue_conc) and gray.n_achromatic == 4
    assert all(math.isnan(r["hue_conc"]) for r in gray.rows)
    finite_gt = [r["hue_conc_gt"] for r in gray.rows if math.isfinite(r["hue_conc_gt"])]
    assert gray.n_achromatic_gt == 1 and len(finite_gt) == 3
    assert gray.hue_conc_gt == pytest.approx(np.mean(finite_gt)) and 1 / 6 <= gray.hue_conc_gt <= 1
    tint = evaluate(lambda L: torch.full((L.shape[0], 2, *L.shape[2:]), 25.0), folder, size=16, progress=False,
                    fd_lite=False)
    assert tint.hue_conc == pytest.approx(1.0, abs=0.01) and tint.n_achromatic == 0


def test_evaluate_batching_and_limit(folder):
    one = evaluate(gray_predictor, folder, size=16, batch_size=1, progress=False)
    many = evaluate(gray_predictor, folder, size=16, batch_size=16, progress=False)
    assert one.summary() == pytest.approx(many.summary(), nan_ok=True)  # hue_conc of gray rows: NaN
    limited = evaluate(gray_predictor, folder, size=16, limit=2, progress=False)
    assert limited.n_images == 2
    assert [r["path"] for r in limited.rows] == [r["path"] for r in one.rows[:2]]


def test_evaluate_calls_predictor_in_batches_without_grad(folder):
    calls = []

    def predictor(L):
        calls.append((tuple(L.shape), torch.is_grad_enabled()))
        return gray_predictor(L)

    evaluate(predictor, folder, size=16, batch_size=3, progress=False)
    assert calls == [((3, 1, 16, 16), False), ((1, 1, 16, 16), False)]


def test_evaluate_better_predictor_scores_better(folder):
    """A predictor that adds the right mean tint beats the gray baseline on ab metrics."""
    gray = evaluate(gray_predictor, folder, size=16, progress=False)
    # a constant (wrong) strong colour is worse than gray on AuC
    loud = evaluate(lambda L: torch.full((L.shape[0], 2, *L.shape[2:]), 80.0), folder, size=16, progress=False)
    assert loud.auc < gray.auc and loud.ciede2000 > gray.ciede2000 and loud.cf > gray.cf


def test_evaluate_errors(tmp_path, folder):
    with pytest.raises(DataError):
        evaluate(gray_predictor, tmp_path / "nope", progress=False)
    only_bad = tmp_path / "bad"
    only_bad.mkdir()
    (only_bad / "x.jpg").write_bytes(b"garbage")
    Image.fromarray(np.zeros((16, 16), np.uint8), "L").save(only_bad / "y.png")
    with pytest.raises(DataError, match="2 files skipped"):
        evaluate(gray_predictor, only_bad, progress=False)
    with pytest.raises(ConfigError):
        evaluate(gray_predictor, folder, size=0, progress=False)
    with pytest.raises(ConfigError):
        evaluate(gray_predictor, folder, batch_size=0, progress=False)
    with pytest.raises(ConfigError):
        evaluate(gray_predictor, folder, limit=0, progress=False)


def test_evaluate_with_progress_bar(folder, capsys):
    res = evaluate(gray_predictor, folder, size=16, progress=True)
    assert res.n_images == 4
    assert capsys.readouterr().out == ""  # the bar goes to stderr, stdout stays clean


# ------------------------------------------------------------------------------- reporting


def test_format_table_and_json(folder):
    gray = evaluate(gray_predictor, folder, size=16, progress=False)
    loud = evaluate(lambda L: torch.full((L.shape[0], 2, *L.shape[2:]), 30.0), folder, size=16, progress=False)
    table = format_table({"model": loud, "gray": gray})
    lines = table.splitlines()
    assert lines[0] == "| method | PSNR | SSIM | CF | dCF | AuC | CIEDE2000 | hue_conc | fd_lite | n |"
    assert lines[1].startswith("|---|") and lines[1].count("|") == 11
    assert lines[2].startswith("| model | ") and lines[2].endswith(f" | {loud.hue_conc:.3f} | {loud.fd_lite:.2f} | 4 |")
    fd = f"{gray.fd_lite:.2f}" if math.isfinite(gray.fd_lite) else "n/a"
    assert lines[3] == (
        f"| gray | {gray.psnr:.2f} | {gray.ssim:.3f} | {gray.cf:.2f} | {gray.dcf:.2f} | {gray.auc:.3f} "
        f"| {gray.ciede2000:.2f} | n/a | {fd} | 4 |"
    )
    assert f"Ground-truth CF: {gray.cf_gt:.2f}, hue_conc {gray.hue_conc_gt:.3f}, 1 achromatic" in table
    assert "4 skipped" in table
    assert "Achromatic predictions left out of hue_conc: gray 4/4." in table
    assert "Not FID" in table

    data = to_json({"model": loud, "gray": gray})
    text = json.dumps(data, allow_nan=False)  # strict JSON
    back = json.loads(text)
    assert set(back["results"]) == {"model", "gray"}
    g = back["results"]["gray"]
    assert g["n_images"] == 4 and g["n_skipped"] == 4 and len(g["per_image"]) == 4
    assert g["psnr"] == pytest.approx(gray.psnr) and g["cf_gt"] == pytest.approx(gray.cf_gt)
    assert g["hue_conc"] is None and g["n_achromatic"] == 4 and g["n_achromatic_gt"] == 1
    assert all(row["hue_conc"] is None for row in g["per_image"])
    m = back["results"]["model"]
    assert m["hue_conc"] == pytest.approx(loud.hue_conc) and m["n_achromatic"] == 0
    assert "fd_lite" in m and "hue_conc" in back["protocol"] and "not FID" in back["protocol"]["fd_lite"]
    assert {s["path"].rsplit("/", 1)[-1] for s in g["skipped"]} >= {"g_corrupt.jpg", "h_empty.png"}
    assert "per_image" not in to_json({"gray": gray}, per_image=False)["results"]["gray"]


def test_format_table_footer_per_dataset(folder, tmp_path):
    other = tmp_path / "other"
    other.mkdir()
    Image.fromarray(_colour_image(20, 20, 11)).save(other / "z.png")
    a = evaluate(gray_predictor, folder, size=16, progress=False)
    b = evaluate(gray_predictor, other, size=16, progress=False)
    table = format_table({"a": a, "b": b})
    assert "Ground-truth CF (a):" in table and "Ground-truth CF (b):" in table
    with pytest.raises(ValueError):
        format_table({})


# ------------------------------------------------------------------ reference numbers


@pytest.mark.shared
def test_gray_baseline_reference_numbers_imagenet(shared_data):
    """README reference for photos/val/imagenet (102 JPEGs): PSNR 22.77, AuC 0.887, GT CF 38.45."""
    folder = shared_data / "photos" / "val" / "imagenet"
    if not folder.is_dir():
        pytest.skip(f"{folder} not found")
    res = evaluate(gray_predictor, folder, size=256, batch_size=34, progress=False)
    assert res.n_images == 102 and res.n_skipped == 0
    assert res.psnr == pytest.approx(22.77, abs=0.05)
    assert res.auc == pytest.approx(0.887, abs=0.005)
    assert res.cf_gt == pytest.approx(38.45, abs=0.05)
    assert res.cf == pytest.approx(0.08, abs=0.05)
    assert res.ssim == pytest.approx(0.930, abs=0.005)
