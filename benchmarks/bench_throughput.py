"""Training and inference images/s at 256x256 for a model (default: the shipped `photo`).

Uses the GPU when there is one (bf16 autocast, channels-last), else the CPU. Prints a Markdown table.

    python benchmarks/bench_throughput.py [--model photo] [--batch 64] [--steps 10]
"""

from __future__ import annotations

import argparse
import time
from contextlib import nullcontext

import torch

from lumachrome.models.io import load_model_dir


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default="photo")
    p.add_argument("--batch", type=int, default=None, help="default: 256 on CUDA, 16 on CPU")
    p.add_argument("--steps", type=int, default=None, help="timed iterations (default: 20 CUDA, 3 CPU)")
    p.add_argument("--size", type=int, default=256)
    a = p.parse_args()
    dev = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    cuda = dev.type == "cuda"
    batch = a.batch or (256 if cuda else 16)
    steps = a.steps or (20 if cuda else 3)
    model, _ = load_model_dir(_model_dir(a.model), device="cpu")
    model = model.to(dev).to(memory_format=torch.channels_last)
    amp = torch.autocast("cuda", dtype=torch.bfloat16) if cuda else nullcontext()
    L = (torch.rand(batch, 1, a.size, a.size, device=dev) * 100).contiguous(memory_format=torch.channels_last)
    ab = torch.randn(batch, 2, a.size, a.size, device=dev) * 20

    def sync():
        if cuda:
            torch.cuda.synchronize()

    opt = torch.optim.AdamW(model.parameters(), lr=1e-4, fused=cuda)
    model.train()
    for i in range(steps + 2):  # 2 warm-up steps
        if i == 2:
            sync()
            t = time.perf_counter()
        with amp:
            loss = (model(L).float() - ab).abs().mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    sync()
    train_ips = steps * batch / (time.perf_counter() - t)
    model.eval()
    with torch.inference_mode():
        for i in range(steps + 2):
            if i == 2:
                sync()
                t = time.perf_counter()
            with amp:
                model.predict_ab(L)
        sync()
    infer_ips = steps * batch / (time.perf_counter() - t)
    name = torch.cuda.get_device_name() if cuda else f"CPU, {torch.get_num_threads()} threads"
    print("| model | device | precision | size | batch | training images/s | inference images/s |")
    print("|---|---|---|---:|---:|---:|---:|")
    print(f"| {a.model} | {name} | {'bf16' if cuda else 'fp32'} | {a.size} | {batch} | {train_ips:.1f} | {infer_ips:.1f} |")


def _model_dir(name: str):
    from pathlib import Path

    import lumachrome

    p = Path(lumachrome.__file__).parent / "weights" / name
    return p if p.is_dir() else Path(name)


if __name__ == "__main__":
    main()
