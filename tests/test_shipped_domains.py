"""The shipped cross-domain models (``lumachrome/weights/{sketch,nir,thermal}``, issue 4, docs/domains.md):
they load strictly, translate generated inputs to RGB of the input's size, are small enough, are listed by
``lumachrome models``, and (with ../shared/data) beat the input itself on a few held-out pairs."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from lumachrome.cli import main
from lumachrome.models.io import load_model_dir, weights_root
from lumachrome.translate import Translator

DOMAINS = ("sketch", "nir", "thermal")
WEIGHTS = Path(weights_root() or "")


def _input(domain: str, h: int = 75, w: int = 110) -> np.ndarray:
    """A small generated input: line art (black strokes on white) for sketch, smooth texture otherwise."""
    rng = np.random.default_rng(0)
    if domain == "sketch":
        img = np.full((h, w), 255, np.uint8)
        cv2.circle(img, (w // 2, h // 2), min(h, w) // 3, 0, 3)
        cv2.rectangle(img, (8, 8), (w // 3, h // 3), 0, 3)
        cv2.line(img, (0, h - 10), (w - 1, h // 2), 0, 3)
        return img
    noise = cv2.GaussianBlur(rng.uniform(0, 255, (h, w)).astype(np.float32), (0, 0), 4)
    ramp = np.linspace(0, 120, w, dtype=np.float32)[None, :]
    return np.clip(noise + ramp - noise.mean() + 60, 0, 255).astype(np.uint8)


@pytest.mark.parametrize("domain", DOMAINS)
def test_shipped_model_loads_strictly_and_translates(domain):
    folder = WEIGHTS / domain
    config = json.loads((folder / "config.json").read_text())
    assert config["task"] == "translate" and config["domain"] == domain
    assert config["architecture"] in ("unet_gen", "resnet_gen", "effunet_gen")
    assert config["args"]["in_channels"] == 1 and config["args"]["out_channels"] == 3
    model, _ = load_model_dir(folder)  # strict: every tensor present with its shape
    assert not model.training
    card = (folder / "README.md").read_text()
    for needed in ("PSNR", "CIEDE2000", "pix2pix", "CycleGAN", "L1", "lumachrome train"):
        assert needed in card, f"{domain} model card lacks {needed!r}"

    t = Translator.load(domain)
    x = _input(domain)
    out = t.translate_array(x)
    assert out.shape == (*x.shape, 3) and out.dtype == np.uint8
    assert out.std() > 1.0  # not a constant image
    # the network itself: [-1, 1] in, 3 channels of the same size in [0, 1] out (Translator.forward)
    y = t.forward(x[None, None].astype(np.float32) / 127.5 - 1.0)
    assert y.shape == (1, 3, *x.shape) and np.isfinite(y).all() and y.min() >= 0.0 and y.max() <= 1.0


def test_shipped_models_are_small_and_listed(capsys):
    sizes = {p.parent.name: p.stat().st_size for p in WEIGHTS.glob("*/model.safetensors")}
    assert set(DOMAINS) <= set(sizes)
    # all shipped models, the photo ones included: issue 4 set 60 MB; issue 18 (with photo v5 and
    # photo-hints v5 on the pretrained encoder) sets 80 MB. photo-hints' file holds only its hint branches
    # (the rest is photo's, "base" in its config; tests/test_model_base.py), so photo's tensors count once.
    assert sum(sizes.values()) <= 80e6, sizes
    # the unet_gen domain models are 10.4 MB; one on the pretrained encoder (effunet_gen, 4.7M parameters) is
    # 19 MB in float32 and 9.6 MB with its parameters stored as float16 (`export --half`, the shipped thermal)
    assert all(sizes[d] <= 12e6 for d in DOMAINS), sizes
    assert main(["models"]) == 0
    listed = capsys.readouterr().out
    for d in DOMAINS:
        assert any(line.split("\t")[0] == d and "image-to-image" in line for line in listed.splitlines()), listed


# ------------------------------------------------------------------ held-out pairs (../shared/data)
def _held_out(domain: str, root: Path, k: int = 6) -> list[tuple[np.ndarray, np.ndarray]]:
    """``k`` held-out pairs evenly spaced in file order, at full resolution: (input uint8 (H, W), truth RGB)."""
    from lumachrome.data.domains import _stretch_u8, holdout_ids
    from lumachrome.imageio import read_rgb_uint8

    if domain == "sketch":
        a_dir, b_dir, prefix = root / "sketch/openmoji/line", root / "sketch/openmoji/color", "openmoji"
    elif domain == "nir":
        a_dir, b_dir, prefix = root / "nir/geolifeclef/nir", root / "nir/geolifeclef/rgb", "geolifeclef"
    else:
        a_dir, b_dir, prefix = root / "thermal/roadscene/infrared", root / "thermal/roadscene/visible", "roadscene"
    names = sorted(p.name for p in b_dir.iterdir() if (a_dir / p.name).is_file())
    held = holdout_ids(f"{prefix}/{Path(n).stem}" for n in names)
    names = [n for n in names if f"{prefix}/{Path(n).stem}" in held]
    pairs = []
    for n in [names[i] for i in np.linspace(0, len(names) - 1, k).round().astype(int)]:
        a = cv2.cvtColor(read_rgb_uint8(a_dir / n)[0], cv2.COLOR_RGB2GRAY)
        b = read_rgb_uint8(b_dir / n)[0]
        if domain == "nir":  # the pack's per-band 2-98 % stretch of the truth (the input is stretched by Translator)
            b = np.ascontiguousarray(_stretch_u8(b.transpose(2, 0, 1)).transpose(1, 2, 0))
        if a.shape != b.shape[:2]:
            a = cv2.resize(a, (b.shape[1], b.shape[0]), interpolation=cv2.INTER_AREA)
        pairs.append((a, b))
    return pairs


@pytest.mark.shared
@pytest.mark.parametrize("domain", DOMAINS)
def test_shipped_model_beats_its_input_on_held_out_pairs(domain, shared_data):
    from lumachrome.data.domains import _stretch_u8
    from lumachrome.metrics import image_metrics

    torch.manual_seed(0)
    t = Translator.load(domain)
    model, base = [], []
    for a, b in _held_out(domain, shared_data):
        shown = _stretch_u8(a) if domain == "nir" else a  # the input as the user would see it
        model.append(image_metrics(t.translate_array(a), b))
        base.append(image_metrics(np.repeat(shown[..., None], 3, axis=2), b))

    def mean(rows: list[dict[str, float]], key: str) -> float:
        return float(np.mean([r[key] for r in rows]))

    assert mean(model, "psnr") > mean(base, "psnr"), (model, base)
    # sketch: on the whole hold-out the model is only ~1 CIEDE2000 better than the line art (white paper
    # is already right), so on 6 drawings it may lose a little; it must not lose much.
    slack = 2.0 if domain == "sketch" else 0.0
    assert mean(model, "ciede2000") < mean(base, "ciede2000") + slack, (model, base)
    assert mean(model, "cf") > mean(base, "cf") + 5.0, (model, base)
