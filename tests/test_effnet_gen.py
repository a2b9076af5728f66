"""effunet_gen: the image-to-image generator on the pretrained EfficientNet-Lite encoder (issue 18)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from torch import nn

from lumachrome.errors import ConfigError, ModelError
from lumachrome.models import create_model
from lumachrome.models.effnet import EffUNetColorizer, EffUNetGenerator

def _photo_dir():
    from lumachrome.models.io import resolve_model_dir

    return resolve_model_dir("photo")


def test_shapes_range_any_size_and_channels():
    torch.manual_seed(0)
    g = create_model("effunet_gen").eval()
    assert isinstance(g, EffUNetGenerator) and g.multiple == 32
    with torch.no_grad():
        y = g(torch.rand(2, 1, 37, 70) * 2 - 1)  # padded to 64 x 96 inside, cropped back: full resolution
    assert y.shape == (2, 3, 37, 70) and y.dtype == torch.float32 and y.abs().max() <= 1
    f = create_model("effunet_gen", in_channels=3, out_channels=1).eval()  # CycleGAN's F: RGB -> A
    with torch.no_grad():
        assert f(torch.rand(1, 3, 40, 33) * 2 - 1).shape == (1, 1, 40, 33)
    with pytest.raises(ValueError, match=r"expected an input of shape \(B, 1, H, W\)"):
        g(torch.rand(1, 3, 32, 32))
    with pytest.raises(ModelError, match="in_channels=2 must be 1 or 3"):
        create_model("effunet_gen", in_channels=2)
    with pytest.raises(ModelError, match="padding"):
        create_model("effunet_gen", padding="reflect101")


def test_upsampling_is_resize_then_convolve():
    """No transposed convolution anywhere (the checkerboard source); every resize is bilinear."""
    g = create_model("effunet_gen")
    assert not any(isinstance(m, nn.ConvTranspose2d) for m in g.modules())
    assert not any(isinstance(m, nn.PixelShuffle) for m in g.modules())


def test_photo_init_copies_every_shared_weight_exactly():
    from safetensors.torch import load_file

    from lumachrome.train.loop import init_from

    photo = _photo_dir()
    g = create_model("effunet_gen")
    fresh = init_from(g, str(photo), ["head."])
    assert fresh == ["head.0.bias", "head.0.weight", "head.2.bias", "head.2.weight"]
    src = load_file(str(photo / "model.safetensors"))
    own = g.state_dict()
    shared = [k for k in own if not k.startswith("head.")]
    assert len(shared) == len(src) - 2  # photo's head.weight / head.bias are the only ones not copied
    for k in shared:
        assert torch.equal(own[k], src[k]), k
    # Strict: without the skip list the differing heads are an error naming them.
    with pytest.raises(ConfigError, match="head"):
        init_from(create_model("effunet_gen"), str(photo), [])
    # The copied network computes the colorizer's features: with the colorizer's (zero) padding, the same
    # decoder output on the same gray image.
    col = EffUNetColorizer()
    col.load_state_dict(src, strict=True)
    col.eval()
    g0 = create_model("effunet_gen", padding="zeros")
    g0.load_state_dict(own, strict=True)
    g = g0.eval()
    x = torch.rand(1, 1, 64, 64) * 2 - 1
    feats = {}
    for name, net in (("col", col), ("gen", g)):
        net.dec[3].register_forward_hook(lambda m, i, o, name=name: feats.__setitem__(name, o))
    with torch.no_grad():
        g(x)
        # the colorizer takes raw L; give it the L whose neutral-gray sRGB is x (its encoder_input inverts that)
        from lumachrome.color.lab import rgb_to_lab

        gray = ((x + 1) / 2).expand(-1, 3, -1, -1)
        col(rgb_to_lab(gray)[:, :1])
    d = (feats["gen"] - feats["col"]).abs().max()
    assert d < 1e-3 * feats["col"].abs().max(), float(d)


@pytest.mark.parametrize("padding, flat", [("replicate", True), ("zeros", False)])
def test_flat_input_gives_flat_output(padding, flat):
    """Issue 18's bar (evaluate --pack's check): std < 1 grey level on a constant input. With replicate
    padding it is exactly 0; the pretrained encoder's own zero padding draws border ramps that reach
    deep into a 64 px image, which the check catches."""
    from lumachrome.evaluate_translate import constant_input_std
    from lumachrome.train.loop import init_from

    torch.manual_seed(0)
    g = create_model("effunet_gen", padding=padding)
    init_from(g, str(_photo_dir()), ["head."])
    std = constant_input_std(g, 1, 64, torch.device("cpu"))
    assert (std < 1e-6) if flat else (std > 1.0), std


def test_encoder_batchnorm_stays_frozen_in_training():
    g = create_model("effunet_gen").train()
    enc = [m for m in g.encoder.modules() if isinstance(m, nn.BatchNorm2d)]
    dec = [m for m in g.dec.modules() if isinstance(m, nn.BatchNorm2d)]
    assert enc and dec and not any(m.training for m in enc) and all(m.training for m in dec)


# ------------------------------------------------------------------ output="affine" (the local-affine head)
def _textured(seed: int = 0, size: int = 64) -> torch.Tensor:
    """A [-1, 1] image with detail at every scale: smooth ramps plus pixel-level noise."""
    g = torch.Generator().manual_seed(seed)
    yy, xx = torch.meshgrid(torch.linspace(-1, 1, size), torch.linspace(-1, 1, size), indexing="ij")
    smooth = 0.4 * torch.sin(3 * xx + 2 * yy)
    return (smooth + 0.5 * (torch.rand(size, size, generator=g) * 2 - 1)).clamp(-1, 1)[None, None]


def _set_gain(g: EffUNetGenerator, gain: float) -> None:
    """a = ``gain`` everywhere (the a part of the last head convolution: zero weights, bias ``gain``)."""
    c = g.args["out_channels"]
    with torch.no_grad():
        g.head[2].weight[:c].zero_()
        g.head[2].bias[:c].fill_(gain)


def test_affine_output_shapes_args_and_direct_unchanged():
    torch.manual_seed(0)
    g = create_model("effunet_gen", output="affine").eval()
    assert g.args["output"] == "affine" and create_model("effunet_gen", **g.args).args == g.args
    with torch.no_grad():
        y = g(torch.rand(2, 1, 37, 70) * 2 - 1)
    assert y.shape == (2, 3, 37, 70) and y.dtype == torch.float32 and y.abs().max() <= 1
    f = create_model("effunet_gen", in_channels=3, out_channels=1, output="affine").eval()
    with torch.no_grad():
        assert f(torch.rand(1, 3, 40, 33) * 2 - 1).shape == (1, 1, 40, 33)
    # the head predicts 2 * out_channels maps from the stride-2 features and the pooled input; a starts at 0
    assert g.head[0].in_channels == 32 + 1 and g.head[2].out_channels == 6
    assert not g.head[2].weight[:3].any() and not g.head[2].bias[:3].any() and g.head[2].weight[3:].any()
    # "direct" is today's model: no "output" key in its args (old config.json files load the same), same keys
    d = create_model("effunet_gen")
    assert "output" not in d.args and create_model("effunet_gen", output="direct").args == d.args
    assert isinstance(d.head[3], nn.Tanh) and d.head[2].out_channels == 3
    assert list(d.state_dict()) == list(g.state_dict())  # same names; only the head's shapes differ
    with pytest.raises(ModelError, match="output='guided' is not one of direct, affine"):
        create_model("effunet_gen", output="guided")


def test_affine_starts_smooth_and_passes_detail_when_a_is_set():
    """At a = 0 the output is tanh(b), b a bilinear resize of stride-2 maps: little of the input's
    pixel-level texture. With a set to 1 the input's detail comes through at full resolution."""
    from lumachrome.evaluate_translate import _u8, gradient_energy

    torch.manual_seed(0)
    g = create_model("effunet_gen", output="affine").eval()
    x = _textured()

    def ratio() -> float:
        with torch.no_grad():
            y = g(x)
        return gradient_energy(_u8(y)[0]) / gradient_energy(_u8(x)[0])

    smooth = ratio()
    _set_gain(g, 1.0)
    sharp = ratio()
    assert smooth < 0.2 and sharp > 0.5, (smooth, sharp)
    # a = 1, b = 0: out = tanh(x) exactly
    with torch.no_grad():
        g.head[2].weight.zero_()
        g.head[2].bias[3:].zero_()
        torch.testing.assert_close(g(x), torch.tanh(x).expand(-1, 3, -1, -1))


@pytest.mark.parametrize("in_channels", [1, 3])
def test_affine_flat_input_gives_flat_output(in_channels):
    from lumachrome.evaluate_translate import constant_input_std
    from lumachrome.train.loop import init_from

    torch.manual_seed(0)
    g = create_model("effunet_gen", output="affine", in_channels=in_channels)
    if in_channels == 1:
        init_from(g, str(_photo_dir()), ["head."])
    with torch.no_grad():  # a non-zero, spatially varying gain: the flatness must not rest on a = 0
        g.head[2].weight.normal_(0, 0.1)
        g.head[2].bias.normal_(0, 0.5)
    std = constant_input_std(g, in_channels, 64, torch.device("cpu"))
    assert std < 1e-4, std  # float64 rounding of the resizes (~1e-5 grey levels); issue 18's bar is 1


def test_affine_save_load_round_trip(tmp_path):
    from lumachrome.models.io import load_model_dir, save_model_dir

    torch.manual_seed(0)
    g = create_model("effunet_gen", output="affine", head_width=8).eval()
    with torch.no_grad():
        g.head[2].weight.normal_(0, 0.1)
    save_model_dir(g, tmp_path / "m", architecture="effunet_gen", args=g.args, preprocessing={"size": 64})
    assert json.loads((tmp_path / "m" / "config.json").read_text())["args"]["output"] == "affine"
    net, _ = load_model_dir(tmp_path / "m")
    assert isinstance(net, EffUNetGenerator) and net.args == g.args and net.output == "affine"
    x = _textured(1, 48)
    with torch.no_grad():
        torch.testing.assert_close(net.eval()(x), g(x))


@pytest.fixture(scope="module")
def packs(tmp_path_factory):
    from lumachrome.data.domain_pack import write_domain_pack
    from lumachrome.data.synthetic import synthetic_photo

    root = tmp_path_factory.mktemp("effgen-packs")
    rgb = np.stack([synthetic_photo(40, 40, seed=i) for i in range(8)])
    B = torch.from_numpy(np.rint(rgb * 255).astype(np.uint8)).permute(0, 3, 1, 2).contiguous()
    A = (255 - B.float().mean(1, keepdim=True)).round().to(torch.uint8)  # a made-up "thermal" side
    write_domain_pack(root / "train.safetensors", A=A[:6], B=B[:6], domain="thermal", split="train",
                      a_channels=["thermal"])
    write_domain_pack(root / "val.safetensors", A=A[6:], B=B[6:], domain="thermal", split="val",
                      a_channels=["thermal"])
    return root


@pytest.mark.parametrize("regime, extra, margs", [("pix2pix", ["--gan.lambda_gan", "0"], {}), ("pix2pix", [], {}),
                                                  ("cyclegan", ["--gan.gan_loss", "lsgan"], {}),
                                                  ("pix2pix", ["--gan.lambda_gan", "0"], {"output": "affine"})],
                         ids=["l1-only", "pix2pix", "cyclegan", "l1-only-affine"])
def test_train_export_load_pipeline_round_trip(packs, tmp_path, regime, extra, margs):
    from lumachrome.cli import app
    from lumachrome.models.io import load_model_dir
    from lumachrome.pipeline import load_pipeline
    from lumachrome.train.cli import train_main
    from lumachrome.translate import Translator
    from typer.testing import CliRunner

    out = tmp_path / "run"
    init = ["--model.init", str(_photo_dir()), "--model.init_skip", "head."] if regime != "cyclegan" else []
    argv = ["--train.regime", regime, "--model.architecture", "effunet_gen", "--model.args", json.dumps({"head_width": 8, **margs}),
            "--data.pack", str(packs / "train.safetensors"), "--data.val_pack", str(packs / "val.safetensors"),
            "--data.size", "32", "--data.val_size", "32", "--train.steps", "2", "--train.batch_size", "2",
            "--train.log_every", "1", "--train.epoch_steps", "2", "--train.ckpt_every", "2",
            "--train.progress", "false", "--train.device", "cpu", "--optim.warmup_steps", "0",
            "--gan.d_width", "8", "--gan.d_layers", "2", "--train.out", str(out), *init, *extra]
    assert train_main(argv) == 0
    res = CliRunner().invoke(app, ["export", str(out), "-o", str(tmp_path / "m"), "--name", "th"])
    assert res.exit_code == 0, res.output
    cfg = json.loads((tmp_path / "m" / "config.json").read_text())
    assert cfg["architecture"] == "effunet_gen" and cfg["task"] == "translate"
    assert cfg["args"]["in_channels"] == 1 and cfg["args"]["out_channels"] == 3 and cfg["args"]["padding"] == "replicate"
    assert cfg["args"].get("output", "direct") == margs.get("output", "direct")
    pipe = load_pipeline(str(tmp_path / "m"), device="cpu")
    assert isinstance(pipe, Translator) and isinstance(pipe.model, EffUNetGenerator)
    net, _ = load_model_dir(tmp_path / "m")
    x = np.random.default_rng(0).uniform(-1, 1, (1, 1, 64, 96)).astype(np.float32)
    with torch.no_grad():
        want = ((net.eval()(torch.from_numpy(x)).clamp(-1, 1) + 1) / 2).numpy()
    np.testing.assert_allclose(pipe.forward(x), want, atol=1e-6)
    img = pipe.translate_array(np.full((50, 90), 128, np.uint8))
    assert img.shape == (50, 90, 3) and img.dtype == np.uint8
    if regime == "cyclegan":
        from lumachrome.train.checkpoint import load_checkpoint

        ck = load_checkpoint(out)
        assert ck.model["F.encoder.stem.conv.weight"].shape[1] == 3  # F: RGB -> thermal, its own RGB stem


def test_pretrained_without_an_encoder_is_a_one_line_error(packs, tmp_path):
    from lumachrome.train.cli import train_main

    argv = ["--train.regime", "pix2pix", "--model.architecture", "unet_gen", "--model.args", '{"width": 4, "depth": 3}',
            "--model.pretrained", "true", "--data.pack", str(packs / "train.safetensors"), "--data.size", "32",
            "--train.steps", "1", "--train.batch_size", "2", "--train.device", "cpu", "--train.progress", "false",
            "--train.out", str(tmp_path / "r"), "--gan.lambda_gan", "0"]
    with pytest.raises(ConfigError, match="model.pretrained: architecture 'unet_gen' has no pretrained encoder"):
        train_main(argv)
