"""End-to-end colorization benchmark: decode + network + full-resolution join + encode, per image size.

For each size (megapixels, 3:2 photos) a photo-like test image (smooth random colour fields and
gradients plus fine grain, so JPEG has real work to do) is written as JPEG q90 to a temporary
folder. A fresh subprocess then loads the model, warms it up on a small image, and times one
``Colorizer.colorize_file(in.jpg, out.jpg)``: the real path used by ``lumachrome colorize``.
"peak RSS" is the child's high-water mark (``VmHWM``, includes Python + torch + model) and
"+RSS" its growth over the RSS just before the timed call.

Also reported: the network's cost at the working resolution (GFLOPs = 2 x MACs, from
``lumachrome.models.count_flops``; time of one forward pass on the working-size L) and the training
throughput (images/s, forward + backward + AdamW step, batch 16 at 128 x 128, float32,
channels_last, on the CPU).

The model is the shipped ``photo`` (or ``--model NAME_OR_DIR``); when none is shipped, a
randomly initialised ``unet_small`` stands in (same cost, meaningless colours) and the table says so.

Usage::

    python benchmarks/bench_colorize.py                      # 0.25, 1, 4, 12, 24 MP
    python benchmarks/bench_colorize.py --sizes 1 24 --model out/demo_model
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _shared import resolve_model  # benchmarks/ is on sys.path when run as a script

DEFAULT_SIZES = (0.25, 1.0, 4.0, 12.0, 24.0)


# ------------------------------------------------------------------------------------ images
def photo_like(height: int, width: int, seed: int = 0):
    """float32 (H, W, 3) in [0, 1]: upsampled colour noise + gradients + grain."""
    import cv2
    import numpy as np

    rng = np.random.default_rng(seed)
    coarse = rng.uniform(0.1, 0.9, size=(6, 9, 3)).astype(np.float32)
    img = cv2.resize(coarse, (width, height), interpolation=cv2.INTER_CUBIC)
    mid = rng.uniform(-0.15, 0.15, size=(48, 72, 3)).astype(np.float32)
    img += cv2.resize(mid, (width, height), interpolation=cv2.INTER_LINEAR)
    ramp = np.linspace(-0.1, 0.1, height, dtype=np.float32)[:, None, None]
    img += ramp
    grain = rng.normal(0.0, 0.02, size=(height, width)).astype(np.float32)
    img += grain[:, :, None]
    return np.clip(img, 0.0, 1.0, out=img)


def write_jpeg(path: Path, megapixels: float, seed: int = 0) -> tuple[int, int]:
    import numpy as np
    from PIL import Image

    width = int(round(math.sqrt(megapixels * 1e6 * 3 / 2)))
    height = int(round(width * 2 / 3))
    rgb = photo_like(height, width, seed)
    Image.fromarray((rgb * 255 + 0.5).astype(np.uint8), "RGB").save(path, quality=90)
    return height, width


# ------------------------------------------------------------------------------------ child
def _proc_status_mb(field: str) -> float:
    with open("/proc/self/status", encoding="ascii") as fh:
        for line in fh:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024.0
    return float("nan")


def child(in_path: str, out_path: str, model: str) -> None:
    """Time one colorize_file in this (fresh) process; print a JSON line."""
    import numpy as np

    from lumachrome.colorizer import Colorizer

    col = Colorizer.load(model, device="cpu")
    col(np.full((300, 450), 0.5, np.float32))  # warm-up: allocator, kernels
    rss0 = _proc_status_mb("VmRSS")
    t0 = time.perf_counter()
    col.colorize_file(in_path, out_path, overwrite=True)
    seconds = time.perf_counter() - t0
    print(json.dumps({"seconds": seconds, "peak_mb": _proc_status_mb("VmHWM"), "rss0_mb": rss0}))


def run_child(in_path: Path, out_path: Path, model: str) -> dict:
    env = dict(os.environ)
    src = str(Path(__file__).resolve().parents[1] / "src")
    env["PYTHONPATH"] = src + os.pathsep + env.get("PYTHONPATH", "")
    proc = subprocess.run(
        [sys.executable, __file__, "--child", str(in_path), str(out_path), model],
        capture_output=True, text=True, env=env, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    if proc.returncode != 0:
        raise RuntimeError(f"child failed for {in_path}:\n{proc.stderr}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


# ------------------------------------------------------------------------------------ network
def network_cost(model_dir: str, size: int) -> dict:
    import torch

    from lumachrome.colorizer import Colorizer, working_shape
    from lumachrome.models import count_flops

    col = Colorizer.load(model_dir, device="cpu")
    hs, ws = working_shape(2000, 3000, col.size if size is None else size, col.multiple)
    passes = 2 if col.flip else 1  # test-time flip averaging runs the network twice
    flops = passes * count_flops(col.model, hs, ws)
    L = torch.rand(1, 1, hs, ws) * 100
    col.predict_ab_batch(L)
    times = []
    for _ in range(5):
        t0 = time.perf_counter()
        col.predict_ab_batch(L)
        times.append(time.perf_counter() - t0)
    return {"shape": (hs, ws), "gflops": flops / 1e9, "forward_s": min(times), "config": col.config, "passes": passes}


def training_throughput(config: dict, batch: int = 16, side: int = 128, steps: int = 5) -> float:
    """Images/s of forward + L1 loss + backward + AdamW at ``side`` x ``side`` on the CPU."""
    import torch

    from lumachrome.models import create_model

    torch.manual_seed(0)
    model = create_model(config["architecture"], **config["args"]).train()
    model = model.to(memory_format=torch.channels_last)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
    L = (torch.rand(batch, 1, side, side) * 100).to(memory_format=torch.channels_last)
    ab = torch.randn(batch, 2, side, side) * 20
    head = config["args"].get("head", "regression")

    def step() -> None:
        out = model(L)
        if head == "classification":
            loss = out.logsumexp(1).mean()  # same cost class as cross-entropy over the bins
        else:
            loss = (out - ab).abs().mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    for _ in range(2):
        step()
    t0 = time.perf_counter()
    for _ in range(steps):
        step()
    return batch * steps / (time.perf_counter() - t0)


def _architecture(config: dict) -> str:
    """``unet [32, 64, 128, 256]`` (the widths) or ``effunet {"encoder": "lite0", "decoder": [...]}``."""
    args = config["args"]
    shape = args["widths"] if "widths" in args else {k: args[k] for k in ("encoder", "decoder") if k in args}
    return f"{config['architecture']} {json.dumps(shape)}"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description="End-to-end colorization benchmark (decode + infer + encode).")
    p.add_argument("--model", default=None, help="model name or folder (default: shipped 'photo', else random unet_small)")
    p.add_argument("--sizes", type=float, nargs="+", default=list(DEFAULT_SIZES), help="megapixels")
    p.add_argument("--size", type=int, default=None, help="working resolution (default: the model's)")
    p.add_argument("--no-train", action="store_true", help="skip the training throughput measurement")
    p.add_argument("--child", nargs=3, metavar=("IN", "OUT", "MODEL"), help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.child:
        child(*args.child)
        return 0

    import torch

    with tempfile.TemporaryDirectory(prefix="lumachrome-bench-") as tmp_name:
        tmp = Path(tmp_name)
        model, label = resolve_model(args.model, tmp)
        net = network_cost(model, args.size)
        hs, ws = net["shape"]
        print(f"# Colorize benchmark: {label}")
        print()
        print(f"CPU threads: {torch.get_num_threads()} (os.cpu_count() = {os.cpu_count()}), torch {torch.__version__}")
        flip = " (2 passes: test-time flip averaging)" if net["passes"] == 2 else ""
        print(f"network at the working resolution {ws}x{hs} (3:2 photo): {net['gflops']:.2f} GFLOPs{flip}, "
              f"{net['forward_s'] * 1000:.0f} ms per prediction")  # fmt: skip
        print()
        print("| MP | image | JPEG MB | seconds (decode+infer+encode) | peak RSS MB | +RSS MB |")
        print("|---:|---|---:|---:|---:|---:|")
        for mp in args.sizes:
            src = tmp / f"in_{mp:g}MP.jpg"
            h, w = write_jpeg(src, mp)
            r = run_child(src, tmp / f"out_{mp:g}MP.jpg", model)
            print(f"| {mp:g} | {w}x{h} | {src.stat().st_size / 1e6:.1f} | {r['seconds']:.2f} | "
                  f"{r['peak_mb']:.0f} | {r['peak_mb'] - r['rss0_mb']:.0f} |", flush=True)  # fmt: skip
            src.unlink()
        if not args.no_train:
            ips = training_throughput(net["config"])
            print()
            print("| training (CPU, float32, channels_last) | images/s |")
            print("|---|---:|")
            print(f"| {_architecture(net['config'])}, batch 16 at 128x128, fwd+bwd+AdamW | {ips:.1f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
