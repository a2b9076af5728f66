#!/usr/bin/env python3
"""Train a tiny DEMO colorizer on generated images (used by `make run` when no model is shipped).

The images come from :mod:`lumachrome.data.synthetic` (a sky/ground gradient with a few blobs whose
colour follows from their brightness), so no data download is needed. The result is a working
model folder that shows the whole pipeline end to end; it is NOT a photo colorizer: on real photos
its colours are crude. Takes about 1-2 minutes on 2 CPU cores.

Usage: python scripts/make_demo_model.py [--out out/demo_model] [--steps 300] [--force]
"""

from __future__ import annotations

import argparse
import shutil
import sys
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", type=Path, default=REPO_ROOT / "out" / "demo_model", help="model folder to write")
    p.add_argument("--work", type=Path, default=REPO_ROOT / "out" / "demo_work", help="generated data and run folder")
    p.add_argument("--steps", type=int, default=300, help="training steps (batch 16, 64x64 crops)")
    p.add_argument("--images", type=int, default=512, help="generated training images")
    p.add_argument("--force", action="store_true", help="retrain even if the model folder exists")
    args = p.parse_args(argv)

    if (args.out / "config.json").is_file() and not args.force:
        from lumachrome.colorizer import Colorizer
        from lumachrome.errors import LumachromeError

        try:
            Colorizer.load(args.out, device="cpu")
        except LumachromeError as e:  # e.g. written by an older version: train it again
            print(f"existing demo model cannot be loaded ({e}); training it again")
        else:
            print(f"demo model already trained: {args.out} (use --force to retrain)")
            return 0

    from lumachrome.data.synthetic import write_synthetic_folder
    from lumachrome.train.cli import train_main
    from lumachrome.train.export import export_checkpoint

    t0 = time.perf_counter()
    train_dir, val_dir, run_dir = args.work / "train", args.work / "val", args.work / "run"
    for d in (train_dir, val_dir, run_dir):
        shutil.rmtree(d, ignore_errors=True)
    print(f"generating {args.images} training images in {train_dir} ...", flush=True)
    write_synthetic_folder(train_dir, args.images, size=96, seed=1)
    write_synthetic_folder(val_dir, 32, size=96, seed=2)
    print(f"training a tiny U-Net (widths 16-32-64-128) for {args.steps} steps on the CPU ...", flush=True)
    code = train_main(
        [
            "--data", str(train_dir), "--val", str(val_dir), "--out", str(run_dir),
            "--arch", "unet", "--model.args", '{"widths": [16, 32, 64, 128]}',
            "--size", "64", "--batch-size", "16", "--steps", str(args.steps),
            "--lr", "2e-3", "--optim.warmup_steps", "30", "--optim.ema", "0.98",
            "--train.amp", "false", "--train.epoch_steps", "100", "--name", "demo",
            "--train.progress", "true" if sys.stderr.isatty() else "false",
        ]
    )  # fmt: skip
    if code:
        return code
    export_checkpoint(run_dir, args.out, name="demo")
    print(f"demo model written to {args.out} in {time.perf_counter() - t0:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
