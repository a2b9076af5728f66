"""End-to-end training on generated images: loss falls, checkpoints resume, export reloads exactly."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from lumachrome.data.synthetic import write_synthetic_folder
from lumachrome.errors import ConfigError
from lumachrome.train.checkpoint import find_checkpoint, load_checkpoint
from lumachrome.train.cli import train_main
from lumachrome.train.config import RunConfig, load_config_file
from lumachrome.train.loop import train

TINY = {"widths": [8, 16, 32], "blocks": 1}


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    root = tmp_path_factory.mktemp("synthetic")
    write_synthetic_folder(root / "train", 48, size=48, seed=1)
    write_synthetic_folder(root / "val", 8, size=48, seed=2)
    return root


def _cfg(folders: Path, out: Path, model: dict | None = None, **train) -> RunConfig:
    cfg = RunConfig.from_dict({
        "data": {"train": [str(folders / "train")], "val": str(folders / "val"), "size": 32, "val_size": 32,
                 "val_images": 8, "workers": 0},
        "model": {"architecture": "unet", "args": TINY, **(model or {})},
        "optim": {"lr": 3e-3, "warmup_steps": 5, "ema": 0.9},
        "train": {"out": str(out), "steps": 40, "batch_size": 8, "log_every": 5, "ckpt_every": 20,
                  "progress": False, "epoch_steps": 20, **train},
    })
    return cfg


def test_loss_falls_and_beats_gray(folders, tmp_path):
    from lumachrome.train.loop import load_val_set, validate
    from lumachrome.train.supervised import SupervisedTrainer
    from lumachrome.train.loop import build_model, make_train_data

    cfg = _cfg(folders, tmp_path / "run", steps=80)
    torch.manual_seed(0)
    data = make_train_data(cfg, torch.device("cpu"))
    model, _, _ = build_model(cfg, data, torch.device("cpu"))
    trainer = SupervisedTrainer(model, cfg, torch.device("cpu"))
    losses = [trainer.step(next(data.batches))["loss"] for _ in range(cfg.train.steps)]
    assert all(np.isfinite(losses))
    assert np.mean(losses[-10:]) < 0.7 * np.mean(losses[:10])
    val = load_val_set(cfg)
    gray = {"L": val["L"], "ab": val["ab"], "rgb": val["rgb"]}

    class Gray(torch.nn.Module):
        def predict_ab(self, L, temperature=None):
            return torch.zeros(L.shape[0], 2, *L.shape[2:])

    m_model, _ = validate(trainer.model, val, torch.device("cpu"))
    m_gray, _ = validate(Gray(), gray, torch.device("cpu"))
    assert m_model["ab_l1"] < m_gray["ab_l1"]


def test_train_run_writes_everything_and_export_reloads(folders, tmp_path):
    from lumachrome.models.io import load_model_dir

    run = train(_cfg(folders, tmp_path / "run"), log=lambda m: None)
    assert (run / "config.yaml").is_file()
    assert sorted(p.name for p in (run / "samples").glob("*.png")) == ["epoch-001.png", "epoch-002.png"]
    lines = (run / "metrics.jsonl").read_text().splitlines()
    assert len(lines) == 2 and {"psnr", "auc", "cf"} <= set(json.loads(lines[-1]))
    assert list((run / "tb").iterdir()), "tensorboard event file written"
    ckpt = find_checkpoint(run)
    assert ckpt.name == "step-0000040"
    model, config = load_model_dir(run / "model")
    assert config["architecture"] == "unet"
    assert (run / "model" / "README.md").read_text().startswith("# lumachrome model")
    # The exported model is the checkpoint's EMA, bit for bit.
    c = load_checkpoint(run)
    sd = model.state_dict()
    for k, v in c.ema.items():
        if k.startswith("module."):
            assert torch.equal(sd[k[len("module."):]], v)
    L = torch.rand(2, 1, 24, 40) * 100
    model2, _ = load_model_dir(run / "model")
    with torch.no_grad():
        assert torch.equal(model.predict_ab(L), model2.predict_ab(L))
    # A tuned decoding stored at export becomes the model's default in colorize / evaluate.
    from lumachrome.cli import main
    from lumachrome.colorizer import Colorizer

    assert main(["export", str(run), "-o", str(tmp_path / "tuned"), "--saturation", "1.3", "--flip",
                 "--size", "48"]) == 0
    col = Colorizer.load(tmp_path / "tuned", device="cpu")
    assert col.saturation == 1.3 and col.flip and col.size == 48
    plain = Colorizer.load(run / "model", device="cpu")
    assert plain.saturation == 1.0 and plain.size != 48
    # The working resolution must suit the network's strides.
    assert main(["export", str(run), "-o", str(tmp_path / "odd"), "--size", "50"]) != 0
    assert not (tmp_path / "odd").exists()


def test_resume_matches_uninterrupted_run(folders, tmp_path):
    """20 steps + resume to 40 gives exactly the weights of one 40-step run (pack data, CPU)."""
    from lumachrome.data.pack import build_pack

    pack = tmp_path / "train.npz"
    build_pack([folders / "train"], pack, size=32, progress=False)

    def cfg(out, steps):
        c = _cfg(folders, out, steps=steps)
        c.data.train, c.data.pack, c.data.val = [], [str(pack)], None
        c.optim.schedule = "constant"
        return c

    full = train(cfg(tmp_path / "full", 40), log=lambda m: None)
    part = train(cfg(tmp_path / "part", 20), log=lambda m: None)
    resumed = train(cfg(tmp_path / "part", 40), resume=str(part), log=lambda m: None)
    a, b = load_checkpoint(full), load_checkpoint(resumed)
    assert a.step == b.step == 40
    for k in a.model:
        torch.testing.assert_close(a.model[k], b.model[k], rtol=1e-5, atol=1e-6)


def test_keyboard_interrupt_saves_checkpoint(folders, tmp_path, monkeypatch):
    from lumachrome.train import supervised

    calls = {"n": 0}
    orig = supervised.SupervisedTrainer.step

    def step(self, batch):
        calls["n"] += 1
        if calls["n"] == 7:
            raise KeyboardInterrupt
        return orig(self, batch)

    monkeypatch.setattr(supervised.SupervisedTrainer, "step", step)
    with pytest.raises(KeyboardInterrupt):
        train(_cfg(folders, tmp_path / "run"), log=lambda m: None)
    assert load_checkpoint(tmp_path / "run").step == 6


def test_classification_training_runs(folders, tmp_path):
    cfg = _cfg(folders, tmp_path / "cls", model={"head": "classification", "prior_images": 16}, steps=6, loss="ce")
    cfg.train.epoch_steps = 6
    run = train(cfg, log=lambda m: None)
    from lumachrome.models.io import load_model_dir

    model, config = load_model_dir(run / "model")
    assert config["decoding"]["temperature"] == pytest.approx(0.38)
    assert torch.isclose(model.prior.sum(), torch.tensor(1.0), atol=1e-4)
    ab = model.predict_ab(torch.rand(1, 1, 32, 32) * 100)
    assert ab.shape == (1, 2, 32, 32) and torch.isfinite(ab).all()


def test_cli_flags_and_config_file(folders, tmp_path):
    conf = tmp_path / "c.toml"
    conf.write_text(f"""
[data]
train = ["{folders / 'train'}"]
size = 32
workers = 0
[model]
args = {{ widths = [8, 16], blocks = 1 }}
[train]
steps = 4
batch_size = 4
progress = false
out = "{tmp_path / 'cli'}"
""")
    assert load_config_file(conf)["train"]["steps"] == 4
    assert train_main(["--config", str(conf), "--train.steps", "3", "--lr", "0.001"]) == 0
    c = load_checkpoint(tmp_path / "cli")
    assert c.step == 3 and c.state["config"]["optim"]["lr"] == 0.001


@pytest.mark.parametrize("bad", [
    {"train": {"loss": "nope"}},
    {"train": {"steps": 0}},
    {"train": {"nosuch": 1}},
    {"bogus": {}},
    {"train": {"loss": "ce"}},  # ce needs a classification head
    {"data": {"size": "big"}},
])
def test_bad_configs_raise_config_error(bad):
    with pytest.raises(ConfigError):
        RunConfig.from_dict(bad)


def test_no_training_data_is_a_clear_error(tmp_path):
    cfg = RunConfig.from_dict({"train": {"out": str(tmp_path / "x"), "progress": False}})
    with pytest.raises(ConfigError, match="no training data"):
        train(cfg, log=lambda m: None)


def test_init_from_copies_trunk_and_leaves_new_head(tmp_path):
    """model.init: a classification model starts from a regression model's trunk (fine-tuning)."""
    from lumachrome.models import create_model
    from lumachrome.models.io import save_model_dir
    from lumachrome.train.loop import init_from

    torch.manual_seed(0)
    reg = create_model("unet", widths=[8, 16], blocks=1)
    for p in reg.parameters():
        p.data.normal_()
    src = save_model_dir(reg, tmp_path / "reg", architecture="unet", args=reg.args, preprocessing={"size": 64})
    cls = create_model("unet", widths=[8, 16], blocks=1, head="classification", num_bins=5)
    fresh = init_from(cls, str(src), ["head.", "ab_centers", "prior"])
    assert fresh == ["ab_centers", "head.bias", "head.weight", "prior"]
    for k, v in reg.state_dict().items():
        if not k.startswith("head."):
            assert torch.equal(cls.state_dict()[k], v), k
    assert torch.count_nonzero(cls.head.weight) == 0  # the new head keeps its zero initialisation

    wider = create_model("unet", widths=[8, 32], blocks=1)
    with pytest.raises(ConfigError, match="shape mismatch"):
        init_from(wider, str(src), ["head."])
    with pytest.raises(ConfigError, match="no model.safetensors"):
        init_from(wider, str(tmp_path / "nowhere"), ["head."])


@pytest.mark.parametrize("path", sorted((Path(__file__).resolve().parents[1] / "src/lumachrome/configs").glob("*.yaml")),
                         ids=lambda p: p.name)
def test_shipped_configs_parse_and_validate(path):
    """Every recipe in src/lumachrome/configs is a valid run config (typos fail here, not hours into a run)."""
    from lumachrome.train.config import load_config_file

    cfg = RunConfig.from_dict(load_config_file(path))
    cfg.validate()
    # Colorizer recipes start from the stage-1 run (runs/photo-cpu/model), never from the shipped photo
    # model: once that is replaced by a model the recipe made, re-running the recipe would not re-create it.
    # Image-to-image generators (effunet_gen for thermal) may start from it: they make another model; their
    # recipe names the photo weights' sha256 it was made with.
    from lumachrome.train.config import GENERATORS

    if cfg.model.architecture not in GENERATORS:
        assert cfg.model.init != "src/lumachrome/weights/photo"
    else:
        assert cfg.model.init != "src/lumachrome/weights/photo" or "sha256" in path.read_text()


def test_rebalanced_regression_weights_each_pixel_by_its_colour_bin(folders, tmp_path):
    """train.rebalance: the L1 of a pixel counts with its true colour's rebalancing weight, so an image
    whose pixels are all of a rare colour weighs more than one of a common colour (same error)."""
    from lumachrome.color.bins import ABGamut, hard_encode, rebalance_weights
    from lumachrome.train.supervised import SupervisedTrainer

    centers = ABGamut.build().centers
    common = hard_encode(torch.zeros(1, 2, 1, 1), centers).item()
    rare = hard_encode(torch.tensor([[[[60.0]], [[-50.0]]]]), centers).item()
    prior = torch.full((centers.shape[0],), 1e-4)
    prior[common] = 1.0
    weights = rebalance_weights(prior, 0.5)
    assert weights[rare] > 5 * weights[common]

    class Const(torch.nn.Module):  # predicts ab = (10, 10) everywhere
        def __init__(self):
            super().__init__()
            self.p = torch.nn.Parameter(torch.zeros(1))

        def forward(self, L):
            return torch.full((L.shape[0], 2, *L.shape[2:]), 10.0) + 0 * self.p

    cfg = _cfg(folders, tmp_path / "run", rebalance=True, amp=False)
    trainer = SupervisedTrainer(Const(), cfg, torch.device("cpu"), class_weights=weights,
                                rebalance_centers=centers)
    L = torch.full((1, 1, 4, 4), 50.0)
    ab_common = torch.full((1, 2, 4, 4), 0.0)
    ab_rare = torch.cat([torch.full((1, 1, 4, 4), 60.0), torch.full((1, 1, 4, 4), -50.0)], dim=1)
    l_common, _ = trainer.compute_loss({"L": L, "ab": ab_common})
    # Same L1 error as the common case, by construction: shift the prediction so |pred - gt| matches.
    plain = _cfg(folders, tmp_path / "plain", amp=False)
    unweighted = SupervisedTrainer(Const(), plain, torch.device("cpu"))
    u_common, _ = unweighted.compute_loss({"L": L, "ab": ab_common})
    u_rare, _ = unweighted.compute_loss({"L": L, "ab": ab_rare})
    l_rare, _ = trainer.compute_loss({"L": L, "ab": ab_rare})
    torch.testing.assert_close(l_common, u_common * weights[common])
    torch.testing.assert_close(l_rare, u_rare * weights[rare])


def test_rebalanced_regression_trains_and_resumes_with_its_prior(folders, tmp_path):
    """The prior is estimated once at the start and stored in the checkpoint: a resumed run uses it
    (no new estimate that would consume data) and ends with the weights of an uninterrupted run."""
    from lumachrome.data.pack import build_pack

    pack = tmp_path / "train.npz"
    build_pack([folders / "train"], pack, size=32, progress=False)

    def cfg(out, steps):
        c = _cfg(folders, out, steps=steps, rebalance=True)
        c.data.train, c.data.pack, c.data.val = [], [str(pack)], None
        c.optim.schedule = "constant"
        c.model.prior_images = 16
        return c

    full = train(cfg(tmp_path / "full", 40), log=lambda m: None)
    part = train(cfg(tmp_path / "part", 20), log=lambda m: None)
    prior = load_checkpoint(part).state["extra"]["rebalance_prior"]
    from lumachrome.color.bins import ABGamut

    assert len(prior) == ABGamut.build().centers.shape[0] and abs(sum(prior) - 1) < 1e-4
    resumed = train(cfg(tmp_path / "part", 40), resume=str(part), log=lambda m: None)
    a, b = load_checkpoint(full), load_checkpoint(resumed)
    assert a.step == b.step == 40
    for k in a.model:
        torch.testing.assert_close(a.model[k], b.model[k], rtol=1e-5, atol=1e-6)


def test_packs_of_different_sizes_are_resized_in_chunks_like_all_at_once():
    """Mixed-size packs are brought to the largest size chunk by chunk (a whole pack in float32 at the larger
    size ran out of memory); the result is the one-shot resize, byte for byte."""
    from lumachrome.train.loop import _resize_uint8

    g = torch.Generator().manual_seed(0)
    small = torch.randint(0, 256, (5, 3, 8, 8), dtype=torch.uint8, generator=g)
    once = torch.nn.functional.interpolate(small.float(), size=(16, 16), mode="bilinear", antialias=True,
                                           align_corners=False).round().clamp(0, 255).to(torch.uint8)
    out = _resize_uint8(small, 16, chunk=2)
    assert out.dtype == torch.uint8 and out.shape == (5, 3, 16, 16)
    assert torch.equal(out, once)
