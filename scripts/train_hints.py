"""Fine-tune the shipped photo model into the hint-conditioned ``photo-hints`` model.

    # photo-hints v5 (the shipped one), from photo v5:
    OMP_NUM_THREADS=2 .venv/bin/python scripts/train_hints.py \
        --config src/lumachrome/configs/photo5-hints-cpu.yaml --init src/lumachrome/weights/photo
    # photo-hints v1 (from photo v1, the U-Net of configs/photo-cpu.yaml):
    OMP_NUM_THREADS=1 .venv/bin/python scripts/train_hints.py --steps 2400 --out runs/photo-hints
    # then export and calibrate the run (see `make photo-hints-model`) and copy it to
    # src/lumachrome/weights/photo-hints with its model card

Without ``--config``: same data and sizes as ``configs/photo-cpu.yaml`` (64 px crops of the 96 px pack, validation at the
128 px working size); hints simulated as in Zhang et al. 2017 (see lumachrome.hints). Re-running
with the same ``--out`` resumes from the last checkpoint; ``--overwrite`` starts over (the earlier run is
moved aside to ``OUT.old-<time>``).
"""

from __future__ import annotations

import argparse

from lumachrome.train.config import RunConfig
from lumachrome.train.hints import train_hints


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", help="a run config (YAML/TOML/JSON) describing data, network, optimiser and "
                    "run; the options below then only override --init, --zero-share and --overwrite")
    ap.add_argument("--steps", type=int, default=2400)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--size", type=int, default=64, help="training crop side")
    ap.add_argument("--pack", default=".packs/photos96.safetensors")
    ap.add_argument("--val", default="../shared/data/photos/val")
    ap.add_argument("--init", default="runs/photo-cpu/model",
                    help="plain model folder to start from (photo-hints: the v1 photo model, stage 1 of make photo-model)")
    ap.add_argument("--zero-share", type=float, default=0.2, help="share of training images without hints")
    ap.add_argument("--out", default="runs/photo-hints")
    ap.add_argument("--epoch-steps", type=int, default=200, help="validate every N steps")
    ap.add_argument("--overwrite", action="store_true", help="start over: move an earlier run in --out aside")
    a = ap.parse_args()
    if a.config:
        from lumachrome.train.config import load_config_file

        cfg = RunConfig.from_dict(load_config_file(a.config), where=a.config)
        train_hints(cfg, a.init, zero_share=a.zero_share, overwrite=a.overwrite or None)
        return
    cfg = RunConfig.from_dict({
        "data": {"pack": [a.pack], "val": a.val, "size": a.size, "val_size": 128, "val_images": 64},
        "model": {"architecture": "unet", "head": "regression",
                  "args": {"widths": [32, 64, 128, 256], "blocks": 1, "norm": "batch", "upsample": "bilinear"}},
        "optim": {"lr": a.lr, "schedule": "cosine", "warmup_steps": 100, "ema": 0.999},
        "train": {"out": a.out, "steps": a.steps, "batch_size": a.batch_size, "loss": "l1", "seed": 0,
                  "epoch_steps": a.epoch_steps, "ckpt_every": a.epoch_steps, "log_every": 25,
                  "name": "photo-hints", "device": "cpu"},
    })
    train_hints(cfg, a.init, zero_share=a.zero_share, overwrite=a.overwrite or None)


if __name__ == "__main__":
    main()
