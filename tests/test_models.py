"""Tests for lumachrome.models: registry, UNetColorizer, FLOP counting and model folders."""

from __future__ import annotations

import inspect
import json
import os

import pytest
import torch
from safetensors.torch import load_file, save_file
from torch import nn

from lumachrome.errors import ModelError
from lumachrome.models import (
    UNetColorizer,
    count_flops,
    count_macs,
    create_model,
    list_models,
    load_model_dir,
    save_model_dir,
)
from lumachrome.models import io as model_io
from lumachrome.models import unet as unet_module

Q = 7  # bins used by the classification tests
#: The L -> ab colorizers among the registered architectures (the GAN networks of models/gan.py
#: are image-to-image; they have their own tests in test_gan.py; the pretrained-encoder "effunet" has its
#: own in test_effnet.py).
COLORIZERS = [n for n in list_models() if n not in ("resnet_gen", "unet_gen", "effunet_gen", "patchgan", "effunet")]
SMALL = dict(widths=[8, 16], blocks=1)  # fastest useful U-Net


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


pytestmark = pytest.mark.usefixtures("one_thread")  # tiny tensors (conftest.one_thread)


def make(name: str, head: str = "regression", **kw) -> nn.Module:
    if head == "classification":
        kw.setdefault("num_bins", Q)
    return create_model(name, head=head, **kw)


def randomize(model: nn.Module) -> nn.Module:
    """Non-trivial weights and BatchNorm statistics (the head is zero at init)."""
    with torch.no_grad():
        nn.init.normal_(model.head.weight, std=0.2)
        nn.init.normal_(model.head.bias, std=0.2)
        model.train()
        for _ in range(2):
            model(torch.rand(2, 1, 16, 16) * 100)
    if getattr(model, "head_type", None) == "classification":
        model.set_bins(torch.randn(model.num_bins, 2) * 40, torch.rand(model.num_bins).softmax(0))
    return model.eval()


def L_batch(b=2, h=37, w=53) -> torch.Tensor:
    return torch.rand(b, 1, h, w) * 100


def save(model, path, **kw):
    kw.setdefault("preprocessing", {"size": 64})
    return save_model_dir(model, path, architecture="unet", args=model.args, **kw)


# --------------------------------------------------------------------------- registry


def test_registry_lists_all_architectures():
    names = list_models()
    assert names == sorted(names)
    assert {"unet", "unet_tiny", "unet_small", "unet_base"} <= set(names)


def test_unknown_architecture_lists_known_names():
    with pytest.raises(ModelError, match=r"unknown model architecture 'resnet'.*unet_tiny"):
        create_model("resnet")


@pytest.mark.parametrize(
    "args, pattern",
    [
        ({"widht": [8, 16]}, r"'unet'.*widht"),
        ({"norm": "layer"}, r"'unet'.*norm='layer'"),
        ({"act": "gelu"}, r"act='gelu'"),
        ({"upsample": "nearest"}, r"upsample='nearest'"),
        ({"head": "classification"}, r"num_bins"),
        ({"head": "regression", "num_bins": 5}, r"num_bins"),
        ({"widths": []}, r"widths"),
        ({"widths": [8, 0]}, r"widths"),
        ({"blocks": 0}, r"blocks"),
        ({"dropout": 1.5}, r"dropout"),
    ],
)
def test_bad_arguments_raise_model_error(args, pattern):
    with pytest.raises(ModelError, match=pattern):
        create_model("unet", **args)


def test_preset_rejects_unknown_argument():
    with pytest.raises(ModelError, match=r"'unet_tiny'.*colour"):
        create_model("unet_tiny", colour=True)


# --------------------------------------------------------------------------- forward


@pytest.mark.parametrize("head", ["regression", "classification"])
@pytest.mark.parametrize("name", COLORIZERS)
def test_forward_shapes_odd_size(name, head):
    model = randomize(make(name, head))
    with torch.no_grad():
        out = model(L_batch(1))
    channels = 2 if head == "regression" else Q
    assert out.shape == (1, channels, 37, 53)
    assert out.dtype == torch.float32
    assert torch.isfinite(out).all()
    if head == "regression":
        assert out.abs().max() < unet_module.AB_BOUND * 110  # soft-clamped raw ab
        assert out.std() > 0  # not the zero-initialised head
    model.train()
    assert model(L_batch(2, 19, 13)).shape == (2, channels, 19, 13)


@pytest.mark.parametrize("size", [(1, 1), (5, 7), (8, 8), (16, 17), (33, 2)])
def test_any_input_size(size):
    model = randomize(create_model("unet_tiny")).eval()
    with torch.no_grad():
        assert model(L_batch(1, *size)).shape == (1, 2, *size)


def test_depth_one_model_has_no_resampling():
    model = create_model("unet", widths=[8], blocks=1).eval()
    assert len(model.enc) == 1 and len(model.dec) == 0 and model.multiple == 1
    assert model(L_batch(1, 5, 3)).shape == (1, 2, 5, 3)


def test_padding_is_reflect_then_crop():
    model = randomize(create_model("unet", widths=[8, 16, 32], blocks=1))  # multiple of 4
    x = L_batch(1, 13, 10)
    manual = model(nn.functional.pad(x, (0, 2, 0, 3), mode="reflect"))[..., :13, :10]
    assert torch.equal(model(x), manual)


def test_submodule_names_for_hooks():
    model = create_model("unet_tiny")
    names = dict(model.named_modules())
    for n in ("enc.0", "enc.2", "bottleneck", "dec.0", "dec.2", "head"):
        assert n in names
    assert "enc.3" not in names and "dec.3" not in names
    assert model.head.out_channels == 2


@pytest.mark.parametrize("upsample", unet_module.UPSAMPLES)
@pytest.mark.parametrize("norm", unet_module.NORMS)
def test_variants_forward_backward(norm, upsample):
    act = unet_module.ACTS[(unet_module.NORMS.index(norm) + unet_module.UPSAMPLES.index(upsample)) % 3]
    model = create_model("unet", **SMALL, norm=norm, act=act, upsample=upsample, dropout=0.1)
    randomize(model).train()
    out = model(L_batch(2, 11, 9))
    assert out.shape == (2, 2, 11, 9)
    out.square().mean().backward()
    assert all(p.grad is not None for p in model.parameters())


def test_pixelshuffle_starts_as_nearest_upsampling():
    up = unet_module.make_upsample("pixelshuffle", 3, 2)
    y = up(torch.randn(1, 3, 4, 5))
    assert torch.equal(y[..., 0::2, 0::2], y[..., 1::2, 1::2])


def test_dropout_eval_deterministic():
    model = randomize(create_model("unet", **SMALL, dropout=0.5))
    x = L_batch(1, 16, 16)
    assert torch.equal(model(x), model(x))
    model.train()
    assert not torch.equal(model(x), model(x))


def test_args_property_rebuilds_the_same_architecture():
    model = create_model("unet_small", head="classification", num_bins=3, act="silu")
    args = json.loads(json.dumps(model.args))
    assert args["widths"] == [32, 64, 128, 256, 256] and args["act"] == "silu"
    clone = create_model("unet", **args)
    assert {k: v.shape for k, v in clone.state_dict().items()} == {
        k: v.shape for k, v in model.state_dict().items()
    }


def test_global_context_starts_as_identity_and_then_uses_the_whole_image(tmp_path):
    plain = randomize(create_model("unet", **SMALL)).eval()
    ctx = create_model("unet", **SMALL, global_context=16).eval()
    missing = ctx.load_state_dict(plain.state_dict(), strict=False).missing_keys
    assert missing and all(k.startswith("glob.") for k in missing)  # the branch is the only new part
    x = L_batch()
    with torch.no_grad():
        assert torch.equal(ctx(x), plain(x))  # zero-initialised FiLM: exactly the plain model
        nn.init.normal_(ctx.glob.mlp[2].weight, std=0.5)
        far = x.clone()
        far[..., :, -8:] = 100 - far[..., :, -8:]  # change only a strip far from the top-left pixel
        plain_moved = (plain(far) - plain(x))[..., :4, :4].abs().max()
        ctx_moved = (ctx(far) - ctx(x))[..., :4, :4].abs().max()
    assert plain_moved == 0 and ctx_moved > 0  # the context branch sees beyond the receptive field
    assert ctx.args["global_context"] == 16 and "global_context" not in plain.args
    save(ctx, tmp_path / "m")
    loaded, _ = load_model_dir(tmp_path / "m")
    with torch.no_grad():
        assert torch.equal(loaded(x), ctx(x))


# --------------------------------------------------------------------------- predict_ab / bins


def reference_annealed_mean(logits, centers, T):
    # Zhang et al. 2016 eq. 5: softmax(log z / T) with z = softmax(logits) == softmax(logits / T).
    p = torch.softmax(logits / T, dim=1)
    return torch.einsum("bqhw,qc->bchw", p, centers)


def test_predict_ab_regression_is_forward():
    model = randomize(create_model("unet", **SMALL))
    x = L_batch()
    with torch.no_grad():
        assert torch.equal(model.predict_ab(x), model(x))
        assert model.predict_ab(x, temperature=0.1).shape == (2, 2, 37, 53)


def test_predict_ab_classification_annealed_mean():
    model = randomize(create_model("unet", **SMALL, head="classification", num_bins=Q))
    x = L_batch()
    with torch.no_grad():
        logits = model(x)
        ab = model.predict_ab(x)
        assert ab.shape == (2, 2, 37, 53)
        torch.testing.assert_close(ab, reference_annealed_mean(logits, model.ab_centers, 0.38))
        lo, hi = model.ab_centers.min(0).values, model.ab_centers.max(0).values
        assert (ab >= lo.view(1, 2, 1, 1) - 1e-4).all() and (ab <= hi.view(1, 2, 1, 1) + 1e-4).all()
        model.default_temperature = 1.0
        expected = reference_annealed_mean(logits, model.ab_centers, 1.0)
        torch.testing.assert_close(model.predict_ab(x), expected)
        torch.testing.assert_close(
            model.predict_ab(x, temperature=0.2), reference_annealed_mean(logits, model.ab_centers, 0.2)
        )


def test_untrained_classifier_predicts_mean_of_centres():
    from lumachrome.color.bins import DEFAULT_TEMPERATURE

    centers = torch.randn(40, 2) * 50
    model = create_model("unet", **SMALL, head="classification", num_bins=40)
    assert model.default_temperature == DEFAULT_TEMPERATURE
    model.set_bins(centers)
    with torch.no_grad():
        ab = model.predict_ab(L_batch(1, 8, 8))  # zero head: uniform bins -> mean of the centres
    torch.testing.assert_close(ab[0, :, 0, 0], centers.mean(0))


def test_set_bins_validation():
    model = create_model("unet", **SMALL, head="classification", num_bins=Q)
    assert torch.equal(model.prior, torch.full((Q,), 1 / Q))
    with pytest.raises(ModelError, match=r"centers.*\(7, 2\)"):
        model.set_bins(torch.zeros(Q + 1, 2))
    with pytest.raises(ModelError, match=r"prior"):
        model.set_bins(torch.zeros(Q, 2), torch.zeros(3))
    with pytest.raises(ModelError, match="regression"):
        create_model("unet", **SMALL).set_bins(torch.zeros(Q, 2))


# --------------------------------------------------------------------------- cost


def test_count_macs_hand_computed():
    net = nn.Sequential(
        nn.Conv2d(1, 4, 3, padding=1),  # 10*12 outputs * 4 ch * (1*9)   = 4320
        nn.ReLU(),
        nn.Conv2d(4, 2, 1),  # 10*12 * 2 * 4                              = 960
        nn.Conv2d(2, 4, 3, padding=1, groups=2),  # 10*12 * 4 * (1*9)     = 4320
        nn.ConvTranspose2d(4, 3, 2, stride=2),  # 4*10*12 inputs * 3 * 4  = 5760
        nn.Flatten(),
        nn.Linear(3 * 20 * 24, 5),  # 5 * 1440                            = 7200
    )
    net.train()
    assert count_macs(net, 10, 12) == 4320 + 960 + 4320 + 5760 + 7200
    assert count_flops(net, 10, 12) == 2 * 22560
    assert net.training  # mode restored
    assert not net[0]._forward_hooks  # hooks removed


def test_count_macs_unet_scales_with_area():
    model = create_model("unet_tiny")
    a, b = count_macs(model, 32, 32), count_macs(model, 64, 64)
    assert a > 0 and b == 4 * a
    # Padded internally: 30x30 costs as much as 32x32.
    assert count_macs(model, 30, 30) == a


# --------------------------------------------------------------------------- training sanity


@pytest.mark.parametrize("head", ["regression", "classification"])
def test_gradient_steps_reduce_loss(head):
    model = make("unet", head, **SMALL).train()
    x = L_batch(4, 16, 16)
    target_ab = torch.randn(4, 2, 16, 16) * 30
    target_bins = torch.randint(0, Q, (4, 16, 16))
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)

    def loss_fn():
        out = model(x)
        if head == "regression":
            return nn.functional.smooth_l1_loss(out, target_ab)
        return nn.functional.cross_entropy(out, target_bins)

    first = loss_fn().item()
    for _ in range(8):
        opt.zero_grad()
        loss = loss_fn()
        loss.backward()
        opt.step()
    assert loss_fn().item() < first * 0.98


def test_bf16_autocast_cpu():
    model = randomize(create_model("unet_tiny", norm="group"))
    x = L_batch(1, 24, 24)
    with torch.no_grad():
        ref = model(x)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            out = model(x)
    assert out.dtype == torch.float32 and out.shape == ref.shape
    assert torch.isfinite(out).all()
    assert (out - ref).abs().max() < 0.1 * ref.abs().max() + 1.0


def test_channels_last():
    model = randomize(create_model("unet_tiny"))
    x = L_batch(2, 24, 40)
    with torch.no_grad():
        ref = model(x)
        model = model.to(memory_format=torch.channels_last)
        out = model(x.contiguous(memory_format=torch.channels_last))
    torch.testing.assert_close(out, ref, atol=1e-3, rtol=1e-4)


# --------------------------------------------------------------------------- model folders


@pytest.mark.parametrize(
    "name, head",
    [(n, "regression") for n in COLORIZERS] + [("unet_tiny", "classification")],
)
def test_save_load_reproduces_outputs(tmp_path, name, head):
    model = randomize(make(name, head))
    save_model_dir(model, tmp_path / "m", architecture=name, args={"head": head, "num_bins": model.num_bins},
                   preprocessing={"size": 256})  # fmt: skip
    loaded, config = load_model_dir(tmp_path / "m")
    assert isinstance(loaded, UNetColorizer) and not loaded.training
    assert config["architecture"] == name
    x = L_batch(1, 21, 30)
    with torch.no_grad():
        assert torch.equal(loaded(x), model(x))
        assert torch.equal(loaded.predict_ab(x), model.predict_ab(x)) if head == "regression" else True


def test_classification_buffers_roundtrip(tmp_path):
    model = randomize(create_model("unet", **SMALL, head="classification", num_bins=Q))
    model.default_temperature = 0.5
    save(model, tmp_path / "m")
    loaded, config = load_model_dir(tmp_path / "m")
    assert config["decoding"] == {"temperature": 0.5} and loaded.default_temperature == 0.5
    assert torch.equal(loaded.ab_centers, model.ab_centers) and loaded.ab_centers.abs().sum() > 0
    assert torch.equal(loaded.prior, model.prior)
    x = L_batch(1, 16, 16)
    with torch.no_grad():
        assert torch.equal(loaded.predict_ab(x), model.predict_ab(x))
    assert "ab_centers" in load_file(str(tmp_path / "m" / "model.safetensors"))


def test_config_json_roundtrip_and_card(tmp_path):
    model = create_model("unet", **SMALL)
    extra = {"name": "demo-net", "training": {"steps": 10}, "metrics": {"psnr": 21.5}}
    save(model, tmp_path / "m", decoding={"temperature": 0.3}, extra=extra)
    files = sorted(os.listdir(tmp_path / "m"))
    assert files == ["README.md", "config.json", "model.safetensors"]
    raw = json.loads((tmp_path / "m" / "config.json").read_text())
    assert raw == {
        "format": "lumachrome-model",
        "format_version": 1,
        "architecture": "unet",
        "args": model.args,
        "preprocessing": {"size": 64},
        "decoding": {"temperature": 0.3},
        **extra,
    }
    _, config = load_model_dir(tmp_path / "m" / "config.json")  # the file itself is accepted too
    assert config == raw
    card = (tmp_path / "m" / "README.md").read_text()
    assert card.startswith("# demo-net") and "args.widths" in card and "[8, 16]" in card
    with open(tmp_path / "m" / "model.safetensors", "rb") as f:  # safetensors header metadata
        header = json.loads(f.read(int.from_bytes(f.read(8), "little")))
    assert header["__metadata__"] == {"format": "pt"}

    save(model, tmp_path / "c", card="# custom card\n")
    assert (tmp_path / "c" / "README.md").read_text() == "# custom card\n"


def test_save_rejects_bad_input_and_keeps_existing_folder(tmp_path):
    model = create_model("unet", **SMALL)
    save(model, tmp_path / "m", extra={"name": "first"})
    other = create_model("unet", widths=[8, 32], blocks=1)
    with pytest.raises(ModelError, match=r"does not match architecture 'unet'.*shape"):
        save_model_dir(other, tmp_path / "m", architecture="unet", args=model.args, preprocessing={})
    with pytest.raises(ModelError, match="not JSON-serialisable"):
        save(model, tmp_path / "m", extra={"name": object()})
    with pytest.raises(ModelError, match="reserved"):
        save(model, tmp_path / "m", extra={"args": {}})
    with pytest.raises(ModelError, match="unknown model architecture"):
        save_model_dir(model, tmp_path / "m", architecture="nope", args={}, preprocessing={})
    assert json.loads((tmp_path / "m" / "config.json").read_text())["name"] == "first"
    save(other, tmp_path / "m", extra={"name": "second"})  # replaces the folder
    loaded, config = load_model_dir(tmp_path / "m")
    assert config["name"] == "second" and loaded.args["widths"] == [8, 32]
    assert sorted(os.listdir(tmp_path)) == ["m"]  # no temporary folders left behind
    (tmp_path / "file").write_text("x")
    with pytest.raises(ModelError, match="not a folder"):
        save(model, tmp_path / "file")


@pytest.fixture
def saved(tmp_path):
    model = randomize(create_model("unet", **SMALL))
    save(model, tmp_path / "m")
    return tmp_path / "m"


def _tamper(folder, fn):
    path = folder / "model.safetensors"
    state = load_file(str(path))
    fn(state)
    save_file(state, str(path))


def test_tampered_weights_missing_key(saved):
    _tamper(saved, lambda s: s.pop("head.weight"))
    pattern = r"model.safetensors: weights do not match.*1 missing tensor\(s\): head.weight"
    with pytest.raises(ModelError, match=pattern):
        load_model_dir(saved)


def test_tampered_weights_wrong_shape(saved):
    _tamper(saved, lambda s: s.__setitem__("head.bias", torch.zeros(3)))
    with pytest.raises(ModelError, match=r"shape mismatch.*head.bias \(3,\) vs \(2,\)"):
        load_model_dir(saved)


def test_tampered_weights_unexpected_key(saved):
    _tamper(saved, lambda s: s.__setitem__("extra.weight", torch.zeros(1)))
    with pytest.raises(ModelError, match=r"unexpected tensor\(s\): extra.weight"):
        load_model_dir(saved)


def test_config_mismatch_widths(saved):
    cfg = json.loads((saved / "config.json").read_text())
    cfg["args"]["widths"] = [8, 16, 32]
    (saved / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(ModelError, match=r"weights do not match config.json.*missing tensor"):
        load_model_dir(saved)
    cfg["args"]["widths"] = [8, 24]
    (saved / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(ModelError, match=r"shape mismatch"):
        load_model_dir(saved)


def _edit_config(folder, fn):
    cfg = json.loads((folder / "config.json").read_text())
    fn(cfg)
    (folder / "config.json").write_text(json.dumps(cfg))


@pytest.mark.parametrize(
    "edit, pattern",
    [
        (lambda c: c.update(format_version=2), r"unsupported format_version 2"),
        (lambda c: c.update(format="other"), r"not a lumachrome model config"),
        (lambda c: c.update(architecture="resnet"), r"config.json: unknown model architecture 'resnet'"),
        (lambda c: c["args"].update(norm="layer"), r"config.json: model architecture 'unet': norm='layer'"),
        (lambda c: c["args"].update(colour=1), r"config.json: model architecture 'unet'.*colour"),
        (lambda c: c.update(args=[1]), r"'args' must be an object"),
        (lambda c: c.update(decoding={"temperature": 0}), r"temperature must be a positive number"),
    ],
)
def test_invalid_config(saved, edit, pattern):
    _edit_config(saved, edit)
    with pytest.raises(ModelError, match=pattern):
        load_model_dir(saved)


def test_missing_and_corrupt_files(tmp_path, saved):
    with pytest.raises(ModelError, match=r"model folder not found"):
        load_model_dir(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ModelError, match=r"empty: not a lumachrome model folder \(config.json missing\)"):
        load_model_dir(tmp_path / "empty")
    (saved / "model.safetensors").write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{not json at all")
    with pytest.raises(ModelError, match=r"model.safetensors: unreadable safetensors file"):
        load_model_dir(saved)
    (saved / "model.safetensors").unlink()
    with pytest.raises(ModelError, match=r"model.safetensors missing"):
        load_model_dir(saved)
    (saved / "config.json").write_text("{broken")
    with pytest.raises(ModelError, match=r"config.json: invalid JSON"):
        load_model_dir(saved)


def test_errors_are_one_line(saved):
    _tamper(saved, lambda s: [s.pop(k) for k in list(s)[:6]])
    with pytest.raises(ModelError) as info:
        load_model_dir(saved)
    assert "\n" not in str(info.value) and "(+3 more)" in str(info.value)


def test_no_pickle_anywhere():
    for module in (model_io, unet_module):
        src = inspect.getsource(module)
        assert "torch.load(" not in src and "import pickle" not in src
