"""Adversarial regimes: GAN networks, losses, image pool, schedule, pix2pix / CycleGAN steps, and
CPU smoke runs of the three regimes (L1-only, pix2pix, CycleGAN) on generated images, with export,
resume and evaluation on a hold-out domain pack."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from torch import nn

from lumachrome.errors import ConfigError, ModelError
from lumachrome.models import create_model, list_models
from lumachrome.models.gan import PatchDiscriminator, ResnetGenerator, UNetGenerator, receptive_field
from lumachrome.train.config import RunConfig
from lumachrome.train.gan import (
    CycleGANTrainer,
    GANLoss,
    ImagePool,
    Pix2PixTrainer,
    gan_lr_lambda,
    translate_guards,
)

TINY_D = {"d_width": 8, "d_layers": 2}


# ------------------------------------------------------------------------------------- networks
def test_registered_architectures():
    assert {"resnet_gen", "unet_gen", "patchgan"} <= set(list_models())


def test_patchgan_receptive_field_default_is_70():
    assert receptive_field() == 70
    assert receptive_field(create_model("patchgan")) == 70
    assert [receptive_field(n_layers=n) for n in (1, 2, 4, 5)] == [16, 34, 142, 286]  # pix2pix Table 3


def test_patchgan_output_sees_exactly_its_receptive_field():
    """One output logit depends on a 70x70 input window (gradient support; no norm, which would mix)."""
    torch.manual_seed(0)
    d = PatchDiscriminator(in_channels=1, width=4, n_layers=3, norm="none").double()
    x = torch.randn(1, 1, 150, 150, dtype=torch.double, requires_grad=True)
    out = d(x)
    i, j = out.shape[-2] // 2, out.shape[-1] // 2
    out[0, 0, i, j].backward()
    nz = x.grad[0, 0].abs() > 0
    rows, cols = nz.any(1).nonzero(), nz.any(0).nonzero()
    assert int(rows.max() - rows.min() + 1) == 70 and int(cols.max() - cols.min() + 1) == 70


def test_resnet_generator_defaults_and_shapes():
    g = create_model("resnet_gen")
    assert g.args["n_blocks"] == 9 and sum(isinstance(m, nn.ReflectionPad2d) for m in g.modules()) >= 2 * 9 + 2
    assert any(isinstance(m, nn.InstanceNorm2d) for m in g.modules())
    assert 11.0e6 < sum(p.numel() for p in g.parameters()) < 11.8e6  # CycleGAN's ResNet-9: 11.4M
    small = ResnetGenerator(in_channels=1, out_channels=3, width=8, n_blocks=2)
    y = small(torch.rand(2, 1, 37, 50) * 2 - 1)  # any size: padded to a multiple of 4 and cropped back
    assert y.shape == (2, 3, 37, 50) and y.abs().max() <= 1


def test_unet_generator_any_channels_tanh():
    g = UNetGenerator(in_channels=2, out_channels=5, width=8, depth=4)
    y = g(torch.randn(3, 2, 30, 21))
    assert y.shape == (3, 5, 30, 21) and y.abs().max() <= 1
    assert 54.0e6 < sum(p.numel() for p in create_model("unet_gen").parameters()) < 55.0e6  # pix2pix unet_256
    with pytest.raises(ModelError, match="norm"):
        create_model("unet_gen", norm="layer")


def test_translate_model_folder_round_trip(tmp_path):
    from lumachrome.models.io import load_model_dir, save_model_dir

    g = UNetGenerator(in_channels=1, out_channels=3, width=8, depth=3)
    extra = {"task": "translate", "domain": "nir", "input": {"channels": ["nir"], "range": [-1, 1]},
             "output": {"space": "rgb", "range": [-1, 1]}}
    save_model_dir(g, tmp_path / "m", architecture="unet_gen", args=g.args, preprocessing={"size": 32}, extra=extra)
    m, cfg = load_model_dir(tmp_path / "m")
    assert cfg["task"] == "translate" and cfg["input"]["channels"] == ["nir"] and cfg["preprocessing"]["size"] == 32
    x = torch.rand(1, 1, 16, 16)
    g.eval()
    assert torch.equal(m(x), g(x))


# --------------------------------------------------------------------------------- loss pieces
def test_gan_losses_values():
    big, small = torch.full((2, 1, 3, 3), 20.0), torch.full((2, 1, 3, 3), -20.0)
    v = GANLoss("vanilla")
    assert float(v.d_loss(big, small)) < 1e-6 and float(v.g_loss(big)) < 1e-6
    assert float(v.d_loss(small, big)) == pytest.approx(20.0, rel=1e-3)
    ls = GANLoss("lsgan")
    assert float(ls.d_loss(torch.ones(4), torch.zeros(4))) == 0.0
    assert float(ls.d_loss(torch.zeros(4), torch.ones(4))) == pytest.approx(1.0)  # 0.5 * (1 + 1)
    assert float(ls.g_loss(torch.full((4,), 0.5))) == pytest.approx(0.25)
    h = GANLoss("hinge")
    assert float(h.d_loss(torch.full((4,), 2.0), torch.full((4,), -2.0))) == 0.0
    assert float(h.d_loss(torch.zeros(4), torch.zeros(4))) == pytest.approx(1.0)
    assert float(h.g_loss(torch.full((4,), 3.0))) == -3.0
    with pytest.raises(ConfigError):
        GANLoss("wasserstein")


def test_image_pool_history():
    pool = ImagePool(4, seed=0)
    first = torch.arange(4.0).view(4, 1, 1, 1)
    assert torch.equal(pool.query(first), first)  # filling: returned as is
    out = pool.query(torch.full((200, 1, 1, 1), 9.0))
    old = (out < 9).sum().item()
    assert 0 < old <= 4  # some historic images come back, each at most once
    assert sorted(v.item() for v in torch.cat(pool.images).flatten()).count(9.0) >= 4 - (4 - old)
    assert torch.equal(ImagePool(0).query(first), first)
    a = ImagePool(2, seed=3).query(torch.arange(10.0).view(10, 1, 1, 1))
    b = ImagePool(2, seed=3).query(torch.arange(10.0).view(10, 1, 1, 1))
    assert torch.equal(a, b)


def test_lr_constant_then_linear_to_zero():
    f = [gan_lr_lambda(s, total=100, decay_start=0.5) for s in range(101)]
    assert f[0] == f[50] == 1.0 and f[75] == pytest.approx(0.5) and f[100] == 0.0
    assert all(a >= b for a, b in zip(f, f[1:]))
    assert gan_lr_lambda(0, total=100, warmup=10) == pytest.approx(0.1)


def test_guards_flag_inversion_and_collapse():
    x = torch.rand(4, 1, 8, 8) * 2 - 1
    rgb = x.expand(-1, 3, -1, -1)
    assert translate_guards(x, rgb)["lum_corr"] == pytest.approx(1.0, abs=1e-5)
    assert translate_guards(x, -rgb)["lum_corr"] == pytest.approx(-1.0, abs=1e-5)
    assert translate_guards(x, torch.zeros(4, 3, 8, 8))["diversity"] == 0.0


def test_config_validation():
    with pytest.raises(ConfigError, match="cyclegan"):
        RunConfig.from_dict({"train": {"regime": "cyclegan"}})  # a colorizer cannot be cycled
    with pytest.raises(ConfigError, match="gan_loss"):
        RunConfig.from_dict({"train": {"regime": "pix2pix"}, "gan": {"gan_loss": "wgan"}})
    with pytest.raises(ConfigError, match="regime"):
        RunConfig.from_dict({"train": {"regime": "diffusion"}})
    with pytest.raises(ConfigError, match="nothing to train"):
        RunConfig.from_dict({"train": {"regime": "pix2pix"}, "gan": {"lambda_gan": 0, "lambda_l1": 0}})
    RunConfig.from_dict({"train": {"regime": "pix2pix"}, "gan": {"gan_loss": "hinge"}})  # valid


# ------------------------------------------------------------------------------------ one step
def _cfg(regime: str, **gan) -> RunConfig:
    return RunConfig.from_dict({
        "model": {"architecture": "unet_gen"},
        "optim": {"lr": 1e-3, "warmup_steps": 0, "ema": 0.0, "weight_decay": 0.0},
        "train": {"regime": regime, "steps": 10, "batch_size": 2, "device": "cpu"},
        "gan": {**TINY_D, **gan},
    })


def _snapshot(m: nn.Module) -> list[torch.Tensor]:
    return [p.detach().clone() for p in m.parameters()]


def _changed(before: list[torch.Tensor], m: nn.Module) -> bool:
    return any(not torch.equal(a, b) for a, b in zip(before, m.parameters()))


@pytest.mark.parametrize("loss", ["vanilla", "lsgan", "hinge"])
def test_pix2pix_step_updates_both_networks_with_finite_losses(loss):
    torch.manual_seed(0)
    G = UNetGenerator(in_channels=1, out_channels=3, width=8, depth=3)
    D = create_model("patchgan", in_channels=4, width=8, n_layers=2)
    tr = Pix2PixTrainer(G, D, _cfg("pix2pix", gan_loss=loss), torch.device("cpu"), colorize=False)
    g0, d0 = _snapshot(G), _snapshot(D)
    batch = {"A": torch.rand(2, 1, 16, 16) * 2 - 1, "B": torch.rand(2, 3, 16, 16) * 2 - 1}
    logs = tr.step(batch)
    assert _changed(g0, G) and _changed(d0, D)
    assert {"G", "G_l1", "G_gan", "D", "d_real", "d_fake", "lr"} <= set(logs)
    assert all(np.isfinite(v) for v in logs.values())
    assert all(p.requires_grad for p in D.parameters())  # unfrozen again after the G phase


def test_pix2pix_discriminator_warmup_and_l1_only():
    torch.manual_seed(0)
    batch = {"A": torch.rand(2, 1, 16, 16) * 2 - 1, "B": torch.rand(2, 3, 16, 16) * 2 - 1}
    G = UNetGenerator(in_channels=1, out_channels=3, width=8, depth=3)
    D = create_model("patchgan", in_channels=4, width=8, n_layers=2)
    tr = Pix2PixTrainer(G, D, _cfg("pix2pix", d_warmup=1), torch.device("cpu"), colorize=False)
    assert "G_gan" not in tr.step(batch) and "G_gan" in tr.step(batch)
    l1 = Pix2PixTrainer(UNetGenerator(in_channels=1, width=8, depth=3), None, _cfg("pix2pix", lambda_gan=0),
                        torch.device("cpu"), colorize=False)
    logs = l1.step(batch)
    assert "D" not in logs and logs["G"] == pytest.approx(100 * logs["G_l1"], rel=1e-5)
    assert [g["name"] for g in l1.optimizer.param_groups] == ["G"]


def test_pix2pix_nonfinite_loss_is_an_error():
    G = UNetGenerator(in_channels=1, out_channels=3, width=8, depth=3)
    tr = Pix2PixTrainer(G, None, _cfg("pix2pix", lambda_gan=0), torch.device("cpu"), colorize=False)
    with pytest.raises(FloatingPointError, match="non-finite"):
        tr.step({"A": torch.rand(2, 1, 16, 16), "B": torch.full((2, 3, 16, 16), float("nan"))})


@pytest.mark.parametrize("ca", [3, 1])
def test_cyclegan_step_updates_all_four_networks(ca):
    torch.manual_seed(0)
    G = ResnetGenerator(in_channels=ca, out_channels=3, width=4, n_blocks=1)
    F_ = ResnetGenerator(in_channels=3, out_channels=ca, width=4, n_blocks=1)
    DA, DB = (create_model("patchgan", in_channels=c, width=8, n_layers=2) for c in (ca, 3))
    tr = CycleGANTrainer(G, F_, DA, DB, _cfg("cyclegan", gan_loss="lsgan", pool_size=3), torch.device("cpu"),
                         identity=ca == 3)
    before = {n: _snapshot(m) for n, m in tr.nets.items()}
    batch = {"A": torch.rand(2, ca, 16, 16) * 2 - 1, "B": torch.rand(2, 3, 16, 16) * 2 - 1}
    logs = tr.step(batch)
    tr.step(batch)
    assert all(_changed(before[n], m) for n, m in tr.nets.items())
    assert {"cycle_A", "cycle_B", "G_gan_A", "G_gan_B", "D_A", "D_B"} <= set(logs)
    assert ("idt_A" in logs) == (ca == 3)  # identity needs equal channel counts
    assert all(np.isfinite(v) for v in logs.values())
    assert len(tr.pool_A.images) == 3  # the history pool filled up (2 + 2 images, capped at 3)


# ------------------------------------------------------------------------------- smoke runs (CLI)
@pytest.fixture(scope="module")
def packs(tmp_path_factory):
    """Generated paired packs (A: 1-channel luminance, B: RGB) for training and hold-out."""
    from lumachrome.data.domain_pack import write_domain_pack
    from lumachrome.data.synthetic import synthetic_photo

    root = tmp_path_factory.mktemp("gan-packs")
    rgb = np.stack([synthetic_photo(36, 36, seed=i) for i in range(10)])
    B = torch.from_numpy(np.rint(rgb * 255).astype(np.uint8)).permute(0, 3, 1, 2).contiguous()
    A = (B.float() * torch.tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1)).sum(1, keepdim=True)
    A = A.round().clamp(0, 255).to(torch.uint8)
    write_domain_pack(root / "train.safetensors", A=A[:8], B=B[:8], domain="luma", split="train", a_channels=["y"])
    write_domain_pack(root / "holdout.safetensors", A=A[8:], B=B[8:], domain="luma", split="holdout",
                      a_channels=["y"])
    write_domain_pack(root / "a.safetensors", A=A[:8], domain="luma", split="train", a_channels=["y"])
    write_domain_pack(root / "b.safetensors", B=B[2:], domain="luma", split="train")
    return root


def _train_args(packs, out, regime, arch, args, steps=3, extra=()):
    return ["--train.regime", regime, "--model.architecture", arch, "--model.args", json.dumps(args),
            "--data.val_pack", str(packs / "holdout.safetensors"), "--data.size", "32", "--data.val_size", "32",
            "--train.steps", str(steps), "--train.batch_size", "2", "--train.log_every", "1",
            "--train.epoch_steps", "2", "--train.ckpt_every", "2", "--train.progress", "false",
            "--train.device", "cpu", "--optim.warmup_steps", "0", "--gan.d_width", "8", "--gan.d_layers", "2",
            "--train.out", str(out), *extra]


@pytest.mark.parametrize("regime, arch, args, extra", [
    ("pix2pix", "unet_gen", {"width": 8, "depth": 3}, ["--gan.lambda_gan", "0"]),  # the L1-only baseline
    ("pix2pix", "unet_gen", {"width": 8, "depth": 3}, ["--gan.gan_loss", "hinge"]),
    ("cyclegan", "resnet_gen", {"width": 4, "n_blocks": 1}, ["--gan.gan_loss", "lsgan"]),
], ids=["l1-only", "pix2pix", "cyclegan"])
def test_regime_smoke_run_export_resume_evaluate(packs, tmp_path, regime, arch, args, extra):
    from lumachrome.cli import app
    from lumachrome.models.io import load_model_dir
    from lumachrome.train.checkpoint import load_checkpoint
    from lumachrome.train.cli import train_main
    from typer.testing import CliRunner

    data = (["--data.pack", str(packs / "a.safetensors"), str(packs / "b.safetensors")] if regime == "cyclegan"
            else ["--data.pack", str(packs / "train.safetensors")])
    out = tmp_path / "run"
    assert train_main(data + _train_args(packs, out, regime, arch, args, extra=extra)) == 0
    for name in ("config.yaml", "losses.jsonl", "metrics.jsonl", "samples/epoch-001.png", "model/config.json"):
        assert (out / name).exists(), name
    losses = [json.loads(x) for x in (out / "losses.jsonl").read_text().splitlines()]
    assert [r["step"] for r in losses] == [1, 2, 3] and all(np.isfinite(v) for r in losses for v in r.values())
    if regime == "cyclegan":
        assert {"cycle_A", "cycle_B", "D_A", "D_B"} <= set(losses[-1])
    metrics = json.loads((out / "metrics.jsonl").read_text().splitlines()[-1])
    assert {"psnr", "ssim", "ciede2000", "cf", "lum_corr", "diversity"} <= set(metrics)
    ckpt = load_checkpoint(out)
    keys = {k.split(".")[0] for k in ckpt.model}
    assert keys == ({"G", "F", "D_A", "D_B"} if regime == "cyclegan" else {"G"} if "0" in extra else {"G", "D"})

    # The exported generator (contract: a translate model folder) reproduces the checkpoint's G.
    model, cfg = load_model_dir(out / "model")
    assert cfg["architecture"] == arch and cfg["task"] == "translate" and cfg["domain"] == "luma"
    assert cfg["input"] == {"channels": ["y"], "range": [-1, 1]} and cfg["output"]["space"] == "rgb"
    assert cfg["preprocessing"]["size"] == 32 and cfg["args"]["in_channels"] == 1
    g_sd = ({k[len("module."):]: v for k, v in ckpt.ema.items() if k.startswith("module.")} if ckpt.ema is not None
            else {k[2:]: v for k, v in ckpt.model.items() if k.startswith("G.")})  # EMA of G by default
    assert g_sd.keys() == model.state_dict().keys()
    assert all(torch.equal(model.state_dict()[k], v) for k, v in g_sd.items())
    runner = CliRunner()
    res = runner.invoke(app, ["export", str(out), "-o", str(tmp_path / "exported"), "--inference", "tile=128",
                              "--inference", "scale=short_side"])
    assert res.exit_code == 0, res.output
    exported = json.loads((tmp_path / "exported" / "config.json").read_text())
    assert exported["task"] == "translate" and exported["inference"] == {"tile": 128, "scale": "short_side"}
    res = runner.invoke(app, ["export", str(out), "-o", str(tmp_path / "bad"), "--inference", "tile"])
    assert res.exit_code == 2 and "KEY=VALUE" in res.output and not (tmp_path / "bad").exists()

    # Resume to a longer run: continues from step 3 with the same networks.
    assert train_main(["--resume", str(out), "--train.steps", "4", "--train.progress", "false"]) == 0
    assert load_checkpoint(out).step == 4
    assert [json.loads(x)["step"] for x in (out / "losses.jsonl").read_text().splitlines()][-1] == 4

    # Evaluation on the hold-out pack: the model next to the input baseline.
    res = runner.invoke(app, ["evaluate", "--model", str(out / "model"), "--pack", str(packs / "holdout.safetensors")])
    assert res.exit_code == 0, res.output
    assert "| input |" in res.output and "CIEDE2000" in res.output and "| 2 |" in res.output
    assert "| hue_conc | fd_lite |" in res.output
    assert "texture check: output std on flat inputs" in res.output and "sharpness: output gradient energy" in res.output


def test_pix2pix_colorize_fine_tunes_a_colorizer(tmp_path):
    """L -> ab pix2pix starts from a colorizer folder (model.init) and exports a Colorizer-loadable folder."""
    from lumachrome.colorizer import Colorizer
    from lumachrome.data.pack import build_pack
    from lumachrome.data.synthetic import write_synthetic_folder
    from lumachrome.models.io import save_model_dir
    from lumachrome.train.checkpoint import load_checkpoint
    from lumachrome.train.gan import train_gan

    write_synthetic_folder(tmp_path / "imgs", 6, size=40)
    build_pack([tmp_path / "imgs"], tmp_path / "p.safetensors", size=32, progress=False, workers=1)
    torch.manual_seed(1)
    args = {"widths": [8, 16], "blocks": 1, "norm": "batch"}
    base = create_model("unet", **args)
    for p in base.parameters():
        p.data.normal_(0, 0.1)
    save_model_dir(base, tmp_path / "base", architecture="unet", args=base.args, preprocessing={"size": 32})
    cfg = RunConfig.from_dict({
        "data": {"pack": [str(tmp_path / "p.safetensors")], "val": str(tmp_path / "imgs"), "size": 32,
                 "val_size": 32, "val_images": 2},
        "model": {"architecture": "unet", "args": args, "init": str(tmp_path / "base"), "init_skip": []},
        "optim": {"lr": 1e-3, "warmup_steps": 0, "ema": 0.0},
        "train": {"regime": "pix2pix", "out": str(tmp_path / "run"), "steps": 2, "batch_size": 2,
                  "epoch_steps": 2, "progress": False, "device": "cpu", "name": "colour-gan"},
        "gan": TINY_D,
    })
    logs: list[str] = []
    run = train_gan(cfg, log=logs.append)
    assert any("model.init" in m for m in logs)
    ckpt = load_checkpoint(run)
    assert {k.split(".")[0] for k in ckpt.model} == {"G", "D"}
    assert ckpt.model["D.net.0.weight"].shape[1] == 3  # D judges (L, ab)
    # Trained from the init (two small steps away from it, not from a fresh network).
    moved = [float((ckpt.model["G." + k] - v).abs().max()) for k, v in base.state_dict().items()
             if v.dtype.is_floating_point and "running" not in k]
    assert 0 < max(moved) < 0.1
    col = Colorizer.load(run / "model", device="cpu")
    assert col.name == "colour-gan"
    out = col(np.full((32, 32, 3), 0.5, np.float32))
    assert out.shape == (32, 32, 3)
    assert "pix2pix" in (run / "model" / "README.md").read_text()


def test_texture_and_sharpness_checks_see_a_checkerboard_and_a_blur():
    """The issue-18 checks of evaluate --pack: a generator that adds a checkerboard of 0 / +2 grey
    levels (std 1) fails the flat-input check (bar: below 1); one that returns its input passes it and keeps all its
    gradient energy; a 4x4 box blur loses most of it."""
    from lumachrome.evaluate_translate import constant_input_std, gradient_energy

    class Checker(torch.nn.Module):
        def forward(self, x):
            y = x.expand(-1, 3, -1, -1).clone()
            y[..., ::2, ::2] += 4 / 255
            y[..., 1::2, 1::2] += 4 / 255
            return y

    class Same(torch.nn.Module):
        def forward(self, x):
            return x.expand(-1, 3, -1, -1)

    cpu = torch.device("cpu")
    assert constant_input_std(Checker(), 1, 32, cpu) == pytest.approx(1.0, abs=0.01)
    assert constant_input_std(Same(), 1, 32, cpu) == 0
    rng = np.random.default_rng(0)
    img = rng.integers(0, 256, (64, 64, 3)).astype(np.uint8)
    blurred = torch.nn.functional.avg_pool2d(torch.from_numpy(img).permute(2, 0, 1).float()[None], 4, 1, padding=2)
    blurred = blurred[0].permute(1, 2, 0).numpy()[:64, :64].round().astype(np.uint8)
    assert gradient_energy(img) > 10 * gradient_energy(blurred) > 0
    assert gradient_energy(np.full((8, 8), 7, np.uint8)) == 0


@pytest.mark.parametrize("arch, args", [
    ("unet_gen", {"width": 8, "depth": 3, "norm": "instance", "dropout": 0.0}),
    ("resnet_gen", {"width": 8, "n_blocks": 1}),
])
def test_resize_upsampling_cannot_draw_a_checkerboard(arch, args):
    """Issue 18: on a flat input, a freshly initialised generator with transposed convolutions already
    draws a period-2 pattern (its taps overlap unevenly); with resize-conv upsampling the interior
    stays flat. The option is stored in args only when used, so existing folders load unchanged."""
    from lumachrome.models import create_model

    stds = {}
    for up in ("transposed", "resize"):
        torch.manual_seed(0)
        g = create_model(arch, in_channels=1, out_channels=3, **args, upsample=up).eval()
        for m in g.modules():  # larger weights than the GAN init, so patterns show in 8-bit levels
            if isinstance(m, (torch.nn.Conv2d, torch.nn.ConvTranspose2d)):
                torch.nn.init.normal_(m.weight, 0.0, 0.3)
        with torch.no_grad():  # far from the borders (whose zero padding makes smooth, not periodic, ramps)
            y = (g(torch.full((1, 1, 256, 256), 0.25)).clamp(-1, 1) + 1) * 127.5
        stds[up] = float(y[0, :, 96:160, 96:160].flatten(1).std(dim=1).max())
        assert ("upsample" in g.args) == (up == "resize")
        assert g(torch.zeros(1, 1, 40, 56)).shape == (1, 3, 40, 56)
    assert stds["resize"] < 0.05 < 1.0 < stds["transposed"], stds
    from lumachrome.errors import ModelError

    with pytest.raises(ModelError, match="upsample"):
        create_model(arch, **args, upsample="nearest-ish")
    if arch == "unet_gen":  # reflection padding: stored only when used; odd sizes still work
        g = create_model(arch, in_channels=1, **args, upsample="resize", padding="reflect").eval()
        assert g.args["padding"] == "reflect" and "padding" not in create_model(arch, **args).args
        assert g(torch.zeros(1, 1, 37, 61)).shape == (1, 3, 37, 61)
        with pytest.raises(ModelError, match="padding"):
            create_model(arch, **args, padding="circular-ish")


def test_evaluate_pack_refuses_a_colorizer(tmp_path, packs):
    from lumachrome.evaluate_translate import evaluate_translate
    from lumachrome.models.io import save_model_dir

    m = create_model("unet", widths=[8, 16], blocks=1)
    save_model_dir(m, tmp_path / "c", architecture="unet", args=m.args, preprocessing={"size": 32})
    with pytest.raises(ModelError, match="not an image-to-image model"):
        evaluate_translate(tmp_path / "c", packs / "holdout.safetensors", device="cpu")
