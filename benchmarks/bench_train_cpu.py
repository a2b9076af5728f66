"""CPU training images/s of the photo v5 network (effunet: EfficientNet-Lite0 encoder + U-Net decoder)
at 128 px, batch 32, the way `lumachrome train` runs it: the real `SupervisedTrainer.step` (AdamW,
EMA, L1 on ab), with the encoder frozen (stage 1) and unfrozen as in stage 2, in bf16 autocast +
channels-last (used automatically on CPUs with AMX / AVX512-BF16, `lumachrome.precision`) and in
float32. Prints a Markdown table; the issue-15 bar is >= 100 images/s with the frozen encoder.

    python benchmarks/bench_train_cpu.py [--steps 6] [--threads 2]
"""

from __future__ import annotations

import argparse
import os
import time

import torch

from lumachrome.models import create_model
from lumachrome.precision import cpu_bf16_supported
from lumachrome.train.config import RunConfig
from lumachrome.train.supervised import SupervisedTrainer

STAGES = {
    "frozen encoder (stage 1)": dict(freeze=["encoder."]),
    "encoder unfrozen (stage 2)": dict(freeze=["encoder.stem.", "encoder.blocks.0.", "encoder.blocks.1.",
                                               "encoder.blocks.2."], lr_mult={"encoder.": 0.2}),
}


def images_per_s(stage: dict, bf16: bool, steps: int, size: int, batch: int) -> float:
    torch.manual_seed(0)
    cfg = RunConfig()
    cfg.train.amp, cfg.train.batch_size = bf16, batch
    cfg.optim.freeze = list(stage.get("freeze", []))
    cfg.optim.lr_mult = dict(stage.get("lr_mult", {}))
    model = create_model("effunet", encoder="lite0", decoder=[192, 96, 64, 32], blocks=1, global_context=256)
    trainer = SupervisedTrainer(model, cfg, torch.device("cpu"), ddp=False)
    if bf16 and trainer.autocast_device is None:
        return float("nan")
    batch_t = {"L": torch.rand(batch, 1, size, size) * 100, "ab": torch.randn(batch, 2, size, size) * 20}
    for i in range(steps + 2):  # 2 warm-up steps
        if i == 2:
            t = time.perf_counter()
        trainer.step(batch_t)
    return steps * batch / (time.perf_counter() - t)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--steps", type=int, default=6)
    p.add_argument("--size", type=int, default=128)
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--threads", type=int, default=None, help="torch threads (default: all cores)")
    a = p.parse_args()
    if a.threads:
        torch.set_num_threads(a.threads)
    print(f"CPU: {os.cpu_count()} cores, {torch.get_num_threads()} torch threads, native bf16: "
          f"{'yes' if cpu_bf16_supported() else 'no'}; batch {a.batch} of {a.size} px\n")
    print("| stage | bf16 + channels-last img/s | float32 img/s | speed-up |")
    print("|---|---:|---:|---:|")
    for name, stage in STAGES.items():
        bf = images_per_s(stage, True, a.steps, a.size, a.batch)
        fp = images_per_s(stage, False, a.steps, a.size, a.batch)
        print(f"| {name} | {bf:.1f} | {fp:.1f} | {bf / fp:.2f}x |", flush=True)


if __name__ == "__main__":
    main()
