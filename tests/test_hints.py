"""Colour hints: parsing, coordinate mapping, encoding, simulation, the hint model and `colorize --hint`."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from lumachrome.color.lab import AB_SCALE, rgb_to_lab_np
from lumachrome.colorizer import available_models
from lumachrome.errors import ConfigError
from lumachrome.hints import (
    Hint,
    encode_hints,
    hint_ab,
    parse_hint,
    pin_hints,
    sample_hints_from_ab,
    simulate_hints,
    to_working,
)
from lumachrome.models import create_model
from lumachrome.models.io import save_model_dir

TINY = dict(widths=[8, 16, 32], blocks=1)


# ------------------------------------------------------------------ parsing and encoding
def test_parse_hint():
    h = parse_hint("120,80,#3366cc")
    assert (h.x, h.y) == (120, 80) and h.hex == "#3366cc"
    assert parse_hint(" 1.5 , 2 , FF0000 ").hex == "#ff0000"
    for bad, what in [("1,2", "expected x,y,#rrggbb"), ("a,2,#ffffff", "must be numbers"),
                      ("1,2,#ggg000", "not #rrggbb"), ("-1,2,#ffffff", ">= 0"), ("1,2,#fff", "not #rrggbb"),
                      ("nan,2,#ffffff", ">= 0")]:
        with pytest.raises(ConfigError, match=what) as e:
            parse_hint(bad)
        assert "\n" not in str(e.value) and bad in str(e.value)


def test_hint_ab_is_the_colour_chroma():
    a, b = hint_ab(Hint.from_hex(0, 0, "#0000ff"))
    assert b < -100 and a > 50  # sRGB blue: a ~ 79, b ~ -108
    a, b = hint_ab(Hint.from_hex(0, 0, "#808080"))
    assert abs(a) < 0.5 and abs(b) < 0.5


def test_full_resolution_coordinates_map_to_the_right_working_pixel():
    H, W, hs, ws = 3000, 4000, 96, 128  # a 12 MP photo at working size 128
    assert to_working(0, 0, H, W, hs, ws) == (0, 0)
    assert to_working(W - 1, H - 1, H, W, hs, ws) == (ws - 1, hs - 1)
    assert to_working(2000, 1500, H, W, hs, ws) == (64, 48)
    # a working pixel covers 31.25 x 31.25 full-resolution pixels; pixel centres decide:
    # pixel 30 (centre 30.5 -> 0.976) is in working pixel 0, pixel 31 (centre 31.5 -> 1.008) in 1
    assert to_working(30, 30, H, W, hs, ws) == (0, 0)
    assert to_working(31, 30, H, W, hs, ws) == (1, 0)
    # the same relative position in images of different sizes lands on the same working pixel
    for (h, w) in [(300, 400), (3000, 4000), (96, 128)]:
        assert to_working(0.75 * w, 0.25 * h, h, w, hs, ws) == (96, 24)


def test_encode_hints_places_a_patch_with_a_b_and_mask():
    h = Hint.from_hex(2000, 1500, "#ff0000")
    m = encode_hints([h], 3000, 4000, 96, 128, patch=3)
    assert m.shape == (3, 96, 128) and m.dtype == np.float32
    ys, xs = np.nonzero(m[2])
    assert (ys.min(), ys.max(), xs.min(), xs.max()) == (47, 49, 63, 65)
    a, b = hint_ab(h)
    np.testing.assert_allclose(m[0, 48, 64], a / AB_SCALE, rtol=1e-6)
    np.testing.assert_allclose(m[1, 48, 64], b / AB_SCALE, rtol=1e-6)
    assert m[:, m[2] == 0].sum() == 0  # zeros outside the hints
    # a hint on the border is clipped, not wrapped
    m = encode_hints([Hint.from_hex(0, 0, "#00ff00")], 300, 400, 96, 128, patch=3)
    assert m[2].sum() == 4 and m[2, :2, :2].all()


def test_pin_hints_sets_the_hint_colour_at_its_pixel_and_fades():
    ab = np.zeros((32, 48, 2), np.float32)
    h = Hint.from_hex(240, 100, "#0000ff")  # in a 320x480 image -> working (24, 10)
    out = pin_hints(ab, [h], 320, 480, sigma=1.5)
    np.testing.assert_allclose(out[10, 24], hint_ab(h), atol=1e-3)
    assert np.abs(out[10, 34]).max() < 1.0  # 10 working pixels away: (almost) untouched
    # a lightness edge stops the correction
    L = np.full((32, 48), 30.0, np.float32)
    L[:, 26:] = 80.0
    edge = pin_hints(ab, [h], 320, 480, L, sigma=1.5)
    assert np.abs(edge[10, 26]).max() < 0.05 * np.abs(out[10, 26]).max()


# ------------------------------------------------------------------ training hints
def test_simulated_hints_follow_the_recipe():
    g = torch.Generator().manual_seed(0)
    ab = torch.randn(400, 2, 16, 16) * 30
    hints = simulate_hints(ab, g, p=1 / 8, zero_share=0.25, max_patch=1)  # 1-px patches: count the points
    points = hints[:, 2].flatten(1).sum(1)
    share_zero = float((points == 0).float().mean())
    assert 0.17 < share_zero < 0.33
    # among hinted images, the geometric mean is 8 (minus overlaps and the 256-px cap); loose bounds
    mean = float(points[points > 0].mean())
    assert 5.5 < mean < 9.5, mean
    # values at hinted pixels are the ground truth there (1x1 patches), zeros elsewhere
    on = hints[:, 2] > 0
    torch.testing.assert_close(hints[:, 0][on], ab[:, 0][on] / AB_SCALE)
    assert float(hints[:, :2][(~on)[:, None].expand(-1, 2, -1, -1)].abs().sum()) == 0
    # same seed, same hints
    again = simulate_hints(ab, torch.Generator().manual_seed(0), p=1 / 8, zero_share=0.25, max_patch=1)
    assert torch.equal(hints, again)


def test_patch_value_is_the_mean_ground_truth_of_the_patch():
    ab = torch.zeros(2, 20, 20)
    ab[0, :, 10:] = 50.0  # left half a = 0, right half a = 50
    hints = sample_hints_from_ab(ab, 200, torch.Generator().manual_seed(3), min_patch=4, max_patch=4)
    vals = set(np.round(hints[0][hints[2] > 0].numpy() * AB_SCALE, 3).tolist())
    assert vals <= {0.0, 12.5, 25.0, 37.5, 50.0} and len(vals) >= 3  # straddling patches average


# ------------------------------------------------------------------ the model
def test_hint_channels_default_keeps_plain_models_unchanged():
    plain = create_model("unet", **TINY)
    assert "hint_channels" not in plain.args
    assert plain.enc[0].units[0].conv.weight.shape[1] == 1
    hinted = create_model("unet", **TINY, hint_channels=3)
    assert hinted.args["hint_channels"] == 3
    assert hinted.enc[0].units[0].conv.weight.shape[1] == 4
    L = torch.rand(2, 1, 24, 40) * 100
    assert hinted(L).shape == (2, 2, 24, 40)
    with pytest.raises(ValueError, match="hints of shape"):
        hinted(L, torch.zeros(2, 2, 24, 40))
    with pytest.raises(ValueError, match="takes no hints"):
        plain(L, torch.zeros(2, 3, 24, 40))


@pytest.mark.parametrize("arch,args,side,std", [
    ("unet", TINY, 32, 0.2),  # photo-hints v1: the first stage's input convolutions widened by 3 zero channels
    ("effunet", {"decoder": [16, 16, 16, 8], "global_context": 8}, 64, 0.05),  # v5: new branches ending in zeros
])
def test_widen_from_starts_exactly_at_the_source_model(tmp_path, arch, args, side, std):
    from lumachrome.train.hints import widen_from

    torch.manual_seed(0)
    src = create_model(arch, **args)
    for p in src.parameters():
        p.data.normal_(0, std)
    folder = save_model_dir(src, tmp_path / "src", architecture=arch, args=src.args, preprocessing={"size": side})
    dst = create_model(arch, **args, hint_channels=3)
    widen_from(dst, folder)
    src.eval(), dst.eval()
    L = torch.rand(2, 1, side, side) * 100
    hints = simulate_hints(torch.randn(2, 2, side, side) * 20, torch.Generator().manual_seed(1), zero_share=0)
    with torch.no_grad():
        torch.testing.assert_close(dst(L), src(L))
        torch.testing.assert_close(dst(L, hints), src(L))  # zero weights on every hint path
    if arch == "effunet":
        dst.hint_dec[0].body[2].weight.data.fill_(0.1)  # a hint path that does not end in zero is refused
        with pytest.raises(ConfigError, match="do not start at zero"):
            widen_from(dst, folder)


def test_frozen_plain_weights_stay_exactly_the_plain_model(tmp_path):
    """The photo-hints v5 recipe: only the hint branches train (optim.freeze on everything else);
    frozen BatchNorm layers keep their running statistics, so without hints the trained hint model
    still computes exactly what its source computes."""
    from lumachrome.train.config import RunConfig
    from lumachrome.train.hints import HintTrainer, widen_from

    torch.manual_seed(0)
    args = {"decoder": [16, 16, 16, 8], "global_context": 8}
    src = create_model("effunet", **args)
    folder = save_model_dir(src, tmp_path / "src", architecture="effunet", args=src.args, preprocessing={"size": 64})
    model = create_model("effunet", **args, hint_channels=3)
    widen_from(model, folder)
    cfg = RunConfig.from_dict({"optim": {"lr": 1e-2, "warmup_steps": 0, "ema": 0.0,
                                         "freeze": ["encoder.", "bottleneck.", "glob.", "dec.", "head."]},
                               "train": {"steps": 3, "loss": "l1", "device": "cpu", "progress": False,
                                         "amp": False}})
    trainer = HintTrainer(model, cfg, torch.device("cpu"), seed=0, zero_share=0.0)
    g = torch.Generator().manual_seed(3)
    for _ in range(3):
        trainer.step({"L": torch.rand(4, 1, 64, 64, generator=g) * 100,
                      "ab": (torch.rand(4, 2, 64, 64, generator=g) - 0.5) * 80})
    trained = {k: v for k, v in model.state_dict().items() if not k.startswith("hint_dec.")}
    for k, v in src.state_dict().items():
        assert torch.equal(trained[k], v), k  # weights and BatchNorm running statistics alike
    assert any(p.abs().sum() > 0 for p in model.hint_dec.parameters())
    model.eval(), src.eval()
    L = torch.rand(2, 1, 64, 64) * 100
    with torch.no_grad():
        assert torch.equal(model(L), src(L))


def _train_tiny_hint_model(steps: int = 40):
    """A tiny hint model trained on images whose colour is random per image: only hints tell it."""
    from lumachrome.train.config import RunConfig
    from lumachrome.train.hints import HintTrainer

    torch.manual_seed(0)
    model = create_model("unet", **TINY, hint_channels=3)
    cfg = RunConfig.from_dict({"optim": {"lr": 1e-2, "warmup_steps": 0, "ema": 0.0},
                               "train": {"steps": steps, "loss": "l1", "device": "cpu", "progress": False}})
    trainer = HintTrainer(model, cfg, torch.device("cpu"), seed=0, zero_share=0.1, max_patch=5)
    g = torch.Generator().manual_seed(1)
    for _ in range(steps):
        L = 30 + 40 * torch.rand(16, 1, 1, 1, generator=g) + 5 * torch.rand(16, 1, 32, 32, generator=g)
        ab = (torch.rand(16, 2, 1, 1, generator=g) * 120 - 60).expand(-1, -1, 32, 32).contiguous()
        trainer.step({"L": L, "ab": ab})
    return model.eval()


@pytest.fixture(scope="module")
def tiny_hint_model():
    return _train_tiny_hint_model()


def test_a_tiny_model_trained_a_few_steps_responds_to_a_hint(tiny_hint_model):
    model = tiny_hint_model
    L = torch.full((1, 1, 32, 32), 50.0)
    target = torch.tensor([40.0, -50.0])
    h = torch.zeros(1, 3, 32, 32)
    h[0, 0, 14:19, 14:19], h[0, 1, 14:19, 14:19], h[0, 2, 14:19, 14:19] = 40 / AB_SCALE, -50 / AB_SCALE, 1.0
    with torch.no_grad():
        without = model(L)[0, :, 14:19, 14:19].mean((1, 2))
        with_hint = model(L, h)[0, :, 14:19, 14:19].mean((1, 2))
    err_without = float((without - target).abs().mean())
    err_with = float((with_hint - target).abs().mean())
    assert err_with < 0.5 * err_without, (err_with, err_without)


# ------------------------------------------------------------------ Colorizer and CLI
@pytest.fixture(scope="module")
def hint_model_dir(tmp_path_factory, tiny_hint_model):
    model = tiny_hint_model
    return save_model_dir(model, tmp_path_factory.mktemp("m") / "tiny-hints", architecture="unet", args=model.args,
                          preprocessing={"size": 64}, extra={"name": "tiny-hints"})


def _gray(h=90, w=120):
    y, x = np.mgrid[0:h, 0:w]
    return (0.3 + 0.4 * (x / w) + 0.1 * np.sin(y / 7.0)).astype(np.float32)


def test_colorizer_applies_hints_at_full_resolution(hint_model_dir):
    from lumachrome.colorizer import Colorizer

    col = Colorizer.load(hint_model_dir, device="cpu")
    assert col.accepts_hints
    gray = _gray()
    base = col.colorize_array(gray)
    hint = Hint.from_hex(90, 30, "#2040ff")
    out = col.colorize_array(gray, hints=[hint])
    lab, lab0 = rgb_to_lab_np(out), rgb_to_lab_np(base)
    ha, hb = hint_ab(hint)
    # the hint's hue at the hint (its chroma clipped by the gamut at this lightness): strongly blue
    assert lab[30, 90, 2] < -25 and lab[30, 90, 2] < lab0[30, 90, 2] - 20
    assert np.sign(lab[30, 90, 1]) == np.sign(ha) or abs(lab[30, 90, 1]) < 10
    # lightness is the input's, and far from the hint the colours are (almost) the automatic ones
    dL = np.abs(lab[:, :, 0] - rgb_to_lab_np(np.dstack([gray] * 3))[:, :, 0])
    assert np.mean(dL < 1.0) > 0.95 and dL.max() < 8  # only gamut clipping of saturated blue moves L
    assert np.abs(lab[80, 5, 1:] - lab0[80, 5, 1:]).max() < 8
    with pytest.raises(ConfigError, match="outside the 120x90 image"):
        col.colorize_array(gray, hints=[Hint.from_hex(120, 10, "#ffffff")])


def test_plain_model_refuses_hints(tmp_path):
    from lumachrome.colorizer import Colorizer

    plain = create_model("unet", **TINY)
    folder = save_model_dir(plain, tmp_path / "plain", architecture="unet", args=plain.args, preprocessing={"size": 64})
    with pytest.raises(ConfigError, match="takes no colour hints"):
        Colorizer.load(folder, device="cpu").colorize_array(_gray(), hints=[Hint.from_hex(1, 1, "#ff0000")])


def test_cli_colorize_with_hints(hint_model_dir, tmp_path, capsys):
    from lumachrome.cli import main
    from lumachrome.imageio import load_image, save_image

    src = tmp_path / "gray.png"
    save_image(src, np.dstack([_gray()] * 3))
    out = tmp_path / "out.png"
    rc = main(["colorize", str(src), "-o", str(out), "-m", str(hint_model_dir), "-q",
               "--hint", "90,30,#2040ff", "--hint", "10,80,#ff3000"])
    assert rc == 0, capsys.readouterr().err
    lab = rgb_to_lab_np(load_image(out).rgb)
    assert lab[30, 90, 2] < -25 and lab[80, 10, 1] > 20  # blue and red where they were placed

    for bad, what in [("90,30", "expected x,y,#rrggbb"), ("x,1,#ffffff", "must be numbers"),
                      ("1,1,blue", "not #rrggbb")]:
        rc = main(["colorize", str(src), "-o", str(tmp_path / "o2.png"), "-m", str(hint_model_dir), "--hint", bad])
        err = capsys.readouterr().err.strip()
        assert rc == 1 and err.count("\n") == 0 and err.startswith("lumachrome: error: --hint") and what in err, err
    rc = main(["colorize", str(src), "-o", str(tmp_path / "o3.png"), "-m", str(hint_model_dir),
               "--hint", "500,10,#ffffff"])
    err = capsys.readouterr().err.strip()
    assert rc == 1 and "outside the 120x90 image" in err and err.count("\n") == 0
    plain = create_model("unet", **TINY)
    pdir = save_model_dir(plain, tmp_path / "plain", architecture="unet", args=plain.args, preprocessing={"size": 64})
    rc = main(["colorize", str(src), "-o", str(tmp_path / "o4.png"), "-m", str(pdir), "--hint", "1,1,#ffffff"])
    err = capsys.readouterr().err.strip()
    assert rc == 1 and "takes no colour hints" in err and err.count("\n") == 0


# ------------------------------------------------------------------ the training run
def test_train_hints_runs_validates_exports_and_resumes(tmp_path):
    """train_hints on the shared step loop: widened from a plain model, validated with 0 and 10 hints,
    exported with its hint settings, and resumed to more steps from the last checkpoint."""
    import json

    from lumachrome.data.synthetic import write_synthetic_folder
    from lumachrome.models.io import load_model_dir
    from lumachrome.train.config import RunConfig
    from lumachrome.train.hints import train_hints

    write_synthetic_folder(tmp_path / "train", 16, size=40, seed=1)
    write_synthetic_folder(tmp_path / "val", 4, size=40, seed=2)
    plain = create_model("unet", **TINY)
    init = save_model_dir(plain, tmp_path / "plain", architecture="unet", args=plain.args, preprocessing={"size": 32})

    def cfg(steps):
        return RunConfig.from_dict({
            "data": {"train": [str(tmp_path / "train")], "val": str(tmp_path / "val"), "size": 32,
                     "val_size": 32, "val_images": 4, "workers": 0},
            "model": {"architecture": "unet", "args": TINY},
            "optim": {"lr": 3e-3, "warmup_steps": 0, "ema": 0.9},
            "train": {"out": str(tmp_path / "run"), "steps": steps, "batch_size": 4, "log_every": 2,
                      "ckpt_every": 3, "epoch_steps": 3, "progress": False, "device": "cpu", "name": "h"},
        })

    lines: list[str] = []
    out = train_hints(cfg(6), str(init), log=lines.append)
    model, config = load_model_dir(out)
    assert model.hint_channels == 3 and config["hints"]["init"] == str(init)
    assert config["training"]["step"] == 6 and set(config["validation"]) >= {"psnr_0", "psnr_10"}
    metrics = [json.loads(x) for x in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert [m["step"] for m in metrics] == [3, 6]
    train_hints(cfg(9), str(init), log=lines.append)
    assert any("resumed" in x and "at step 6" in x for x in lines)
    assert load_model_dir(out)[1]["training"]["step"] == 9


@pytest.mark.skipif(not {"photo", "photo-hints"} <= set(available_models()),
                    reason="needs the shipped photo and photo-hints models")
def test_shipped_photo_hints_without_hints_is_photo():
    """photo-hints is photo plus hint branches: without hints the two give byte-identical images
    (same weights, same decoding, same adaptive gain), with a hint the colour moves toward it."""
    from skimage import data

    from lumachrome.colorizer import Colorizer

    gray = data.camera()[::2, ::2]  # 256 x 256
    photo = Colorizer.load("photo", device="cpu")
    hinted = Colorizer.load("photo-hints", device="cpu")
    assert (hinted.size, hinted.flip) == (photo.size, photo.flip) and hinted.adaptive == photo.adaptive
    assert np.array_equal(hinted.colorize_array(gray), photo.colorize_array(gray))
    red = parse_hint("60,40,#c03020")  # the sky, top left
    out = hinted.colorize_array(gray, hints=[red])
    lab = rgb_to_lab_np(out.astype(np.float32))
    assert lab[30:50, 50:70, 1].mean() > 10  # a > 0: red where the hint is
    assert np.abs(lab[200:, :, 1:] - rgb_to_lab_np(photo.colorize_array(gray).astype(np.float32))[200:, :, 1:]).mean() < 3
