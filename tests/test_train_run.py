"""lumachrome.train.run: the one orchestrator; the hint regime through ``lumachrome train --config``."""

from __future__ import annotations

import json
from pathlib import Path

import torch
import yaml

from lumachrome.models import create_model
from lumachrome.models.io import load_model_dir, save_model_dir

TINY = {"widths": [8, 16], "blocks": 1}


def _config(tmp_path: Path, out: str, init: str) -> dict:
    from lumachrome.data.synthetic import write_synthetic_folder

    if not (tmp_path / "train").is_dir():
        write_synthetic_folder(tmp_path / "train", 16, size=40, seed=1)
        write_synthetic_folder(tmp_path / "val", 4, size=40, seed=2)
    return {
        "data": {"train": [str(tmp_path / "train")], "val": str(tmp_path / "val"), "size": 32, "val_size": 32,
                 "val_images": 4, "workers": 0},
        "model": {"architecture": "unet", "args": TINY},
        "optim": {"lr": 3e-3, "warmup_steps": 0, "ema": 0.9},
        "train": {"out": str(tmp_path / out), "steps": 4, "batch_size": 4, "log_every": 2, "ckpt_every": 2,
                  "epoch_steps": 2, "progress": False, "device": "cpu", "name": "h", "regime": "hints"},
        "hints": {"init": init, "seed": 1, "zero_share": 0.2},
    }


def test_hints_regime_from_lumachrome_train_is_train_hints(tmp_path: Path, capsys) -> None:
    from lumachrome.cli import main
    from lumachrome.train.config import RunConfig
    from lumachrome.train.hints import train_hints

    plain = create_model("unet", **TINY)
    init = str(save_model_dir(plain, tmp_path / "plain", architecture="unet", args=plain.args,
                              preprocessing={"size": 32}))
    cfg_file = tmp_path / "hints.yaml"
    cfg_file.write_text(yaml.safe_dump(_config(tmp_path, "cli-run", init)))
    assert main(["train", "--config", str(cfg_file)]) == 0
    err = capsys.readouterr().err
    assert "step 0: psnr_0" in err and "done: checkpoint" in err
    via_cli, config = load_model_dir(tmp_path / "cli-run" / "model")
    assert via_cli.hint_channels == 3 and config["hints"]["init"] == init
    metrics = [json.loads(x) for x in (tmp_path / "cli-run" / "metrics.jsonl").read_text().splitlines()]
    assert [m["step"] for m in metrics] == [2, 4] and {"psnr_0", "psnr_10"} <= set(metrics[0])

    # the same run through the function: the same weights
    out = train_hints(RunConfig.from_dict(_config(tmp_path, "fn-run", init)), init, log=lambda m: None)
    via_fn, _ = load_model_dir(out)
    a, b = via_cli.state_dict(), via_fn.state_dict()
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_every_regime_runs_through_the_one_orchestrator() -> None:
    from lumachrome.train import gan, hints, loop, run
    from lumachrome.train.cli import regime_for
    from lumachrome.train.config import RunConfig

    for name, cls in (("supervised", loop.SupervisedRegime), ("pix2pix", gan.GanRegime),
                      ("cyclegan", gan.GanRegime), ("hints", hints.HintsRegime)):
        cfg = RunConfig()
        cfg.train.regime = name
        if name == "cyclegan":
            cfg.model.architecture = "unet_gen"
        regime = regime_for(cfg)
        assert isinstance(regime, cls) and isinstance(regime, run.Regime) and name in regime.names
    # the step loop exists once
    for module in (loop, gan, hints):
        assert not hasattr(module, "run_steps") and not hasattr(module, "close_run")
