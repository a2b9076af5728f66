"""End-to-end time of ``lumachrome explain`` (the HTML report) on a 1 MP image, on the CPU.

The image is scikit-image's astronaut (512x512) enlarged to 1024x1024 (1.05 MP) and written as PNG.
Each run is a fresh ``lumachrome explain IMG -o DIR --device cpu`` process (Python start-up, imports,
model loading and writing every figure included), once with an empty probe cache (the linear probes
are fitted first) and then with the cache filled. The bar of issue 6 is 20 s on the CPU. The second
table splits the in-process time of the last run into the report's stages (``report.json``).

Usage: python benchmarks/bench_explain.py [--model photo] [--side 1024] [--repeat 2] [--threads N]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="photo", help="shipped model name or model folder")
    p.add_argument("--side", type=int, default=1024, help="side of the square test image (px)")
    p.add_argument("--repeat", type=int, default=2, help="runs with a warm probe cache")
    p.add_argument("--threads", type=int, default=None, help="OMP_NUM_THREADS for the runs (default: unset)")
    args = p.parse_args(argv)

    import cv2
    import skimage.data

    from lumachrome.imageio import save_image

    with tempfile.TemporaryDirectory(prefix="bench-explain-") as tmp:
        tmp_path = Path(tmp)
        img = cv2.resize(skimage.data.astronaut(), (args.side, args.side), interpolation=cv2.INTER_CUBIC)
        src = tmp_path / f"astronaut_{args.side}.png"
        save_image(src, img)
        env = dict(os.environ, LUMACHROME_CACHE=str(tmp_path / "cache"))
        if args.threads:
            env["OMP_NUM_THREADS"] = str(args.threads)
        cmd = [sys.executable, "-m", "lumachrome", "explain", str(src), "--model", args.model,
               "-o", str(tmp_path / "report"), "--device", "cpu"]  # fmt: skip
        rows = []
        for i in range(1 + args.repeat):
            t0 = time.perf_counter()
            res = subprocess.run(cmd, env=env, capture_output=True, text=True, stdin=subprocess.DEVNULL)
            wall = time.perf_counter() - t0
            if res.returncode != 0:
                print(res.stderr, file=sys.stderr)
                return 1
            report = json.loads((tmp_path / "report" / "report.json").read_text())
            rows.append(("empty (probes fitted)" if i == 0 else "filled", wall, report))
        mp = args.side * args.side / 1e6
        threads = args.threads or os.environ.get("OMP_NUM_THREADS") or "default"
        print(f"`lumachrome explain` on a {args.side}x{args.side} ({mp:.2f} MP) PNG, model {args.model}, "
              f"CPU, OMP_NUM_THREADS={threads}, {os.cpu_count()} cores\n")
        print("| run | probe cache | wall s (process) | in-process s | figures | bar 20 s |")
        print("|---|---|---|---|---|---|")
        for i, (cache, wall, rep) in enumerate(rows, 1):
            inproc = rep["timings_s"]["total_before_html"]
            ok = "ok" if wall <= 20 else "**over**"
            print(f"| {i} | {cache} | {wall:.2f} | {inproc:.2f} | {len(rep['figures'])} | {ok} |")
        print("\nStages of the last run (s):\n")
        t = rows[-1][2]["timings_s"]
        keys = [k for k in t if k != "total_before_html"]
        print("| " + " | ".join(keys) + " |")
        print("|" + "---|" * len(keys))
        print("| " + " | ".join(f"{t[k]:.2f}" for k in keys) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
