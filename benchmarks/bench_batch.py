"""Archive engine benchmark: memory over 2,000 images, throughput, and SIGKILL + resume.

1. A tree of ``--images`` (default 2,000) generated photo-like JPEGs (q90) in 20 folders, mixed
   sizes (0.04-0.3 MP) and orientations (several working shapes, so batches are really grouped).
2. For each backend, a fresh process runs :func:`lumachrome.batch.colorize_archive` over the tree
   (batched, prefetching decode threads, manifest part with fsync per row) and samples its resident
   memory after every image. Reported: images/s; RSS (``VmRSS``) at image 100, at the last image and
   the largest in between; the peak RSS (``VmHWM``, high-water mark) at image 100 and at the last
   image (the bar: within 10%).
3. Kill and resume: ``lumachrome colorize TREE -o OUT --archive`` in a subprocess, SIGKILLed once
   its manifest holds a random number of rows (``--seed``), then started again; checked: every
   output exists exactly once (no temporary files), the merged manifest has one row per image, in
   stream order, each ``ok`` or ``skipped`` (saved by the killed run, not yet recorded).

Usage::

    python benchmarks/bench_batch.py                  # 2,000 images, threads/workers = the cores
    python benchmarks/bench_batch.py --images 500 --backends onnx --batch-size 1 8
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
SHAPES = ((2, 3), (3, 2), (3, 4), (4, 3), (1, 1))  # (h, w) aspect ratios


def _rss_mb(field: str = "VmRSS") -> float:
    with open("/proc/self/status", encoding="ascii") as fh:
        for line in fh:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024.0
    return float("nan")


def make_tree(root: Path, n: int, seed: int = 0) -> None:
    import numpy as np
    from PIL import Image

    sys.path.insert(0, str(HERE))
    from bench_colorize import photo_like

    rng = random.Random(seed)
    for i in range(n):
        ah, aw = SHAPES[rng.randrange(len(SHAPES))]
        mp = rng.uniform(0.04, 0.3)
        unit = (mp * 1e6 / (ah * aw)) ** 0.5
        h, w = max(16, int(ah * unit)), max(16, int(aw * unit))
        path = root / f"box{i % 20:02d}" / f"photo_{i:05d}.jpg"
        path.parent.mkdir(parents=True, exist_ok=True)
        rgb = photo_like(h, w, seed=i)
        gray = (rgb.mean(axis=2) * 255 + 0.5).astype(np.uint8)
        Image.fromarray(gray, "L").save(path, quality=90)


# ------------------------------------------------------------------------------------ child
def child_rss(backend: str, model: str, root: str, out: str, batch: int, workers: int) -> None:
    import torch

    from lumachrome.batch import ManifestWriter, archive_jobs, colorize_archive
    from lumachrome.colorizer import Colorizer

    col = Colorizer.load(model, device="cpu", backend=backend)
    rss: list[float] = []
    hwm_at_100 = [float("nan")]

    def on_event(kind: str, job, message) -> None:
        rss.append(_rss_mb())
        if len(rss) == 100:
            hwm_at_100[0] = _rss_mb("VmHWM")

    with ManifestWriter(Path(out) / "manifest.rank-00000.jsonl") as writer:
        stats = colorize_archive(col, archive_jobs(root, out), writer=writer, batch_size=batch, workers=workers,
                                 on_event=on_event)  # fmt: skip
    print(json.dumps({
        "done": stats.done, "failed": stats.failed, "seconds": stats.seconds, "batches": stats.batches,
        "rss": rss, "hwm_100": hwm_at_100[0], "hwm_end": _rss_mb("VmHWM"), "threads": torch.get_num_threads(),
    }))  # fmt: skip


def run(args: list[str], **kw) -> subprocess.CompletedProcess:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(HERE.parent / "src") + os.pathsep + env.get("PYTHONPATH", "")
    return subprocess.run(args, env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True, **kw)


# ------------------------------------------------------------------------------------ kill/resume
def kill_and_resume(root: Path, out: Path, model: str, n: int, seed: int, batch: int) -> dict:
    from lumachrome.batch import archive_jobs, part_path

    env = dict(os.environ)
    env["PYTHONPATH"] = str(HERE.parent / "src") + os.pathsep + env.get("PYTHONPATH", "")
    cmd = [sys.executable, "-m", "lumachrome", "colorize", str(root), "-o", str(out), "--archive",
           "--model", model, "--batch-size", str(batch)]  # fmt: skip
    kill_at = random.Random(seed).randint(1, n - 1)
    proc = subprocess.Popen(cmd + ["-q"], env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)  # fmt: skip
    part = part_path(out / "manifest.jsonl", 0)
    while proc.poll() is None:
        if part.is_file() and part.read_bytes().count(b"\n") >= kill_at:
            proc.send_signal(signal.SIGKILL)
            break
        time.sleep(0.005)
    proc.wait()
    killed = proc.returncode == -signal.SIGKILL
    before = sum(1 for p in out.rglob("*.png") if not p.name.startswith(".")) + sum(
        1 for p in out.rglob("*.jpg") if not p.name.startswith(".")
    )
    temp_before = sum(1 for p in out.rglob(".*") if p.is_file())
    t0 = time.perf_counter()
    second = run(cmd)
    rerun_s = time.perf_counter() - t0
    jobs = list(archive_jobs(root, out))
    outputs = sorted(p for p in out.rglob("*") if p.is_file() and p.name != "manifest.jsonl")
    rows = [json.loads(line) for line in (out / "manifest.jsonl").read_text().splitlines()]
    statuses: dict[str, int] = {}
    for r in rows:
        statuses[r["status"]] = statuses.get(r["status"], 0) + 1
    ok = (
        second.returncode == 0
        and outputs == sorted(j.dst for j in jobs)  # every output once, nothing else (no temporary files)
        and [r["rel"] for r in rows] == [j.rel for j in jobs]
        and set(statuses) <= {"ok", "skipped"}
        and all(Path(r["output"]).is_file() for r in rows)
    )
    return {"kill_at_row": kill_at, "killed": killed, "outputs_before": before, "temp_files_before": temp_before,
            "rerun_stdout": second.stdout.strip(), "rerun_s": rerun_s, "statuses": statuses, "ok": ok,
            "rerun_stderr": second.stderr.strip()[-500:]}  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description="Archive engine: RSS over a long run, throughput, kill + resume.")
    p.add_argument("--model", default=None)
    p.add_argument("--images", type=int, default=2000)
    p.add_argument("--backends", nargs="+", default=["torch", "onnx"])
    p.add_argument("--batch-size", type=int, nargs="+", default=[4])
    p.add_argument("--workers", type=int, default=0, help="decode/encode threads (default: the cores)")
    p.add_argument("--seed", type=int, default=None, help="kill point seed (default: time)")
    p.add_argument("--no-kill", action="store_true")
    p.add_argument("--child-rss", nargs=6, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.child_rss:
        b, m, r, o, bs, w = args.child_rss
        child_rss(b, m, r, o, int(bs), int(w))
        return 0

    import torch

    sys.path.insert(0, str(HERE))
    from bench_onnx import resolve_model

    from lumachrome.batch import default_workers

    workers = args.workers or default_workers()
    seed = args.seed if args.seed is not None else int(time.time())
    with tempfile.TemporaryDirectory(prefix="lumachrome-bench-batch-") as tmp_name:
        tmp = Path(tmp_name)
        model, label = resolve_model(args.model, tmp)
        root = tmp / "tree"
        t0 = time.perf_counter()
        make_tree(root, args.images)
        print(f"# Archive engine: {args.images} generated JPEGs (0.04-0.3 MP, 5 aspect ratios), model {label}")
        print()
        print(f"generated in {time.perf_counter() - t0:.0f} s; torch threads {torch.get_num_threads()}, "
              f"{workers} decode + {workers} encode threads, os.cpu_count() = {os.cpu_count()}")  # fmt: skip
        print()
        print("| backend | batch | images/s | RSS @100 MB | RSS @last MB | max RSS 100..last MB | "
              "peak RSS (VmHWM) @100 MB | peak RSS @last MB | peak growth |")
        print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
        worst = 0.0
        for backend in args.backends:
            for bs in args.batch_size:
                out = tmp / f"out_{backend}_{bs}"
                proc = run([sys.executable, __file__, "--child-rss", backend, model, str(root), str(out), str(bs),
                            str(workers)])  # fmt: skip
                if proc.returncode != 0:
                    print(f"| {backend} | {bs} | failed: {proc.stderr.strip().splitlines()[-1:]} |||||")
                    continue
                r = json.loads(proc.stdout.strip().splitlines()[-1])
                rss = r["rss"]
                a, z, top = rss[99], rss[-1], max(rss[99:])
                growth = r["hwm_end"] / r["hwm_100"] - 1
                worst = max(worst, growth)
                print(f"| {backend} | {bs} | {r['done'] / r['seconds']:.1f} | {a:.0f} | {z:.0f} | {top:.0f} | "
                      f"{r['hwm_100']:.0f} | {r['hwm_end']:.0f} | {100 * growth:+.1f}% |", flush=True)  # fmt: skip
                import shutil

                shutil.rmtree(out, ignore_errors=True)
        print()
        print(f"largest peak-RSS growth from image 100 to the last: {100 * worst:+.1f}% (bar: within 10%)")
        if not args.no_kill:
            res = kill_and_resume(root, tmp / "out_kill", model, args.images, seed, args.batch_size[0])
            print()
            print(f"kill + resume (seed {seed}): SIGKILL after {res['kill_at_row']} manifest rows "
                  f"(killed: {res['killed']}), {res['outputs_before']} outputs and {res['temp_files_before']} "
                  f"temporary file(s) on disk; rerun ({res['rerun_s']:.0f} s): {res['rerun_stdout']}")  # fmt: skip
            print(f"merged manifest statuses: {res['statuses']}; every output exactly once and one row per image: "
                  f"{'YES' if res['ok'] else 'NO'}")  # fmt: skip
            if not res["ok"]:
                print(res["rerun_stderr"])
                return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
