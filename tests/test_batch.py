"""The archive engine (``lumachrome.batch``): streaming walk, rank split, manifests, resume after
SIGKILL, and ``torchrun`` with 2 CPU processes equal to one process (a rank killed mid-run, then a
rerun that completes only what is missing)."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from lumachrome.batch import (
    ArchiveJob,
    ManifestWriter,
    archive_jobs,
    colorize_archive,
    merge_manifests,
    part_path,
    run_archive,
    shard,
)
from lumachrome.colorizer import Colorizer
from lumachrome.imageio import iter_image_files
from lumachrome.models import create_model, save_model_dir

REPO_ROOT = Path(__file__).resolve().parents[1]
TIMEOUT = 180


# ------------------------------------------------------------------------------------- helpers
@pytest.fixture(scope="module")
def model_dir(tmp_path_factory) -> Path:
    torch.manual_seed(0)
    model = create_model("unet", widths=[8, 16, 32], blocks=1)
    with torch.no_grad():  # a non-zero head: real colours, so outputs differ from the input
        for p in model.head.parameters():
            p.copy_(torch.randn(p.shape, generator=torch.Generator().manual_seed(1)) * 0.3)
    folder = tmp_path_factory.mktemp("batch_model") / "m"
    save_model_dir(model, folder, architecture="unet", args=model.args, preprocessing={"size": 48}, extra={"name": "m"})
    return folder


def write_gray(path: Path, h: int, w: int, seed: int) -> Path:
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 256, size=(3, 4), dtype=np.uint8)
    img = Image.fromarray(small, "L").resize((w, h), Image.BILINEAR)
    path.parent.mkdir(parents=True, exist_ok=True)
    img.save(path)
    return path


def make_tree(root: Path, n: int, seed: int = 0) -> list[str]:
    """``n`` small gray images in a few sub-folders with two aspect ratios; returns their rel paths."""
    rels = []
    for i in range(n):
        rel = f"d{i % 3}/s{i % 2}/img_{i:04d}.png" if i % 5 else f"img_{i:04d}.png"
        h, w = (24, 36) if i % 2 else (40, 30)
        write_gray(root / rel, h, w, seed * 10_000 + i)
        rels.append(rel)
    return sorted(rels, key=lambda r: r.split("/"))


def files_under(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)).replace(os.sep, "/") for p in folder.rglob("*") if p.is_file())


def read_rows(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def clean_env() -> dict:
    env = {k: v for k, v in os.environ.items()
           if k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "LOCAL_WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT")}
    env["PYTHONPATH"] = str(REPO_ROOT / "src") + os.pathsep + env.get("PYTHONPATH", "")
    env["OMP_NUM_THREADS"] = "1"
    return env


def lumachrome_cmd(*args: str, nproc: int = 0) -> list[str]:
    if nproc:
        return [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={nproc}",
                "-m", "lumachrome", *args]
    return [sys.executable, "-m", "lumachrome", *args]


def children(pid: int) -> list[int]:
    try:
        return [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


def env_rank(pid: int) -> int | None:
    try:
        env = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    except OSError:
        return None
    for item in env:
        if item.startswith(b"RANK="):
            return int(item[5:])
    return None


# ----------------------------------------------------------------------------- stream and split
def test_walk_is_sorted_streaming_and_mirrors_the_tree(tmp_path: Path) -> None:
    root = tmp_path / "tree"
    rels = make_tree(root, 12)
    (root / ".hidden").mkdir()
    write_gray(root / ".hidden" / "x.png", 20, 20, 1)
    write_gray(root / ".dot.png", 20, 20, 2)
    (root / "notes.txt").write_text("not an image")
    write_gray(root / "d0" / "twin.jpg", 20, 20, 3)  # twin.jpg and twin.png -> twin.png twice
    write_gray(root / "d0" / "twin.png", 20, 20, 4)
    write_gray(root / "pal.gif", 20, 20, 5)
    out = root / "out"  # the output tree inside the input tree is not walked
    write_gray(out / "img_0000.png", 20, 20, 6)

    jobs = list(archive_jobs(root, out, ext="png"))
    assert [j.src for j in jobs] == [p for p in iter_image_files(root) if out not in p.parents]
    assert [j.index for j in jobs] == list(range(len(jobs)))
    assert set(rels) <= {j.rel for j in jobs}
    for j in jobs:
        assert j.src == root / j.rel and j.dst == (out / j.rel).with_suffix(".png")
    problems = [j for j in jobs if j.problem]
    assert [j.rel for j in problems] == ["d0/twin.png"] and "would also be written" in problems[0].problem
    # Default extension: the input's when writable, .gif -> .png.
    by_rel = {j.rel: j for j in archive_jobs(root, out)}
    assert by_rel["pal.gif"].dst.name == "pal.png" and by_rel["d0/twin.jpg"].dst.name == "twin.jpg"
    # Output == input folder: refused per image, nothing is read.
    assert all(j.problem and "refusing" in j.problem for j in archive_jobs(root / "d1", root / "d1"))


@pytest.mark.parametrize("world", [1, 2, 3])
def test_rank_split_is_a_deterministic_partition(world: int) -> None:
    jobs = [ArchiveJob(i, Path(f"{i}"), Path(f"o{i}"), f"{i}") for i in range(17)]
    parts = [[j.index for j in shard(jobs, r, world)] for r in range(world)]
    assert sorted(sum(parts, [])) == list(range(17))
    assert all(p == list(range(r, 17, world)) for r, p in enumerate(parts))


def test_manifest_parts_merge_to_one_row_per_image(tmp_path: Path) -> None:
    root, out = tmp_path / "tree", tmp_path / "out"
    make_tree(root, 6)
    jobs = list(archive_jobs(root, out))
    manifest = out / "manifest.jsonl"
    for j in jobs[:4]:
        write_gray(j.dst, 10, 10, 0)
    row = lambda j, status, t, rank=0: {"input": str(j.src), "output": str(j.dst), "rel": j.rel,  # noqa: E731
                                        "index": j.index, "model": "m", "status": status, "seconds": 0.1,
                                        "rank": rank, "time": t}
    with ManifestWriter(part_path(manifest, 0)) as w:
        w.write(row(jobs[0], "error", 1.0))
        w.write(row(jobs[1], "ok", 1.0))
    with open(part_path(manifest, 0), "ab") as f:
        f.write(b'{"input": "cut sho')  # a kill in the middle of a line
    with ManifestWriter(part_path(manifest, 0)) as w:  # reopening terminates the broken line
        w.write(row(jobs[0], "ok", 2.0))  # newer: replaces the error
    with ManifestWriter(part_path(manifest, 3)) as w:  # a part of an earlier run with 4 processes
        w.write(row(jobs[2], "ok", 1.5, rank=3))
        w.write(row(jobs[5], "ok", 1.5, rank=3))  # recorded, but its output is gone
    (out / ".img_0000.tmp-abcd1234.png").write_bytes(b"half")  # a killed save
    result = merge_manifests(manifest, jobs, model="m", out_dir=out)
    rows = read_rows(manifest)
    assert [r["rel"] for r in rows] == [j.rel for j in jobs] and [r["index"] for r in rows] == list(range(6))
    assert [r["status"] for r in rows] == ["ok", "ok", "ok", "skipped", "missing", "missing"]
    assert rows[0]["time"] == 2.0 and rows[2]["rank"] == 3
    assert result.counts == {"ok": 3, "skipped": 1, "missing": 2} and result.parts == 2
    assert result.temp_files_removed == 1
    assert sorted(p.name for p in out.iterdir() if p.suffix == ".jsonl") == ["manifest.jsonl"]
    assert not [p for p in out.rglob(".*")], "parts and temporary files are gone"
    # Merging again (a rerun with nothing new) keeps the same rows.
    merge_manifests(manifest, jobs, model="m", out_dir=out)
    assert [r["status"] for r in read_rows(manifest)] == ["ok", "ok", "ok", "skipped", "missing", "missing"]


# ------------------------------------------------------------------------------ the pipeline
def test_archive_output_equals_colorize_file(tmp_path: Path, model_dir: Path) -> None:
    root = tmp_path / "tree"
    make_tree(root, 14)
    (root / "bad.png").write_bytes(b"not a png")
    write_gray(root / "big" / "wide.png", 60, 200, 7)  # another working shape
    col = Colorizer.load(model_dir, device="cpu")
    want = tmp_path / "want"
    for j in archive_jobs(root, want):
        if j.src.name != "bad.png":
            col.colorize_file(j.src, j.dst)

    events = []
    out1 = tmp_path / "b1"
    with ManifestWriter(tmp_path / "m1.jsonl") as w:
        stats = colorize_archive(col, archive_jobs(root, out1), writer=w, batch_size=1, workers=2,
                                 on_event=lambda kind, job, msg: events.append((kind, job.rel, msg)))  # fmt: skip
    assert (stats.done, stats.failed, stats.skipped) == (15, 1, 0)
    errors = [e for e in events if e[0] == "error"]
    assert len(errors) == 1 and errors[0][1] == "bad.png" and "bad.png" in errors[0][2] and "\n" not in errors[0][2]
    assert files_under(out1) == files_under(want)
    for rel in files_under(want):  # batch size 1: byte-identical to colorize_file
        assert (out1 / rel).read_bytes() == (want / rel).read_bytes(), rel
    rows = read_rows(tmp_path / "m1.jsonl")
    assert len(rows) == 16 and {r["status"] for r in rows} == {"ok", "error"}
    assert all(r["model"] == "m" and r["seconds"] >= 0 for r in rows)

    # Batches of 4 with a pixel budget of ~2 images: same pictures (one code value at most).
    out4 = tmp_path / "b4"
    stats = colorize_archive(col, archive_jobs(root, out4), batch_size=4, workers=2, max_pixels_in_flight=2500)
    assert stats.done == 15 and stats.batches < 15 + 1
    for rel in files_under(want):
        a = np.asarray(Image.open(out4 / rel), dtype=np.int16)
        b = np.asarray(Image.open(want / rel), dtype=np.int16)
        assert a.shape == b.shape and int(np.abs(a - b).max()) <= 1, rel
    # Resume: everything exists -> skipped, nothing rewritten.
    mtimes = {rel: (out4 / rel).stat().st_mtime_ns for rel in files_under(out4)}
    stats = colorize_archive(col, archive_jobs(root, out4), batch_size=4, workers=2)
    assert (stats.done, stats.failed, stats.skipped) == (0, 1, 15)
    assert mtimes == {rel: (out4 / rel).stat().st_mtime_ns for rel in files_under(out4)}


def test_interrupt_stops_cleanly_with_every_written_output_recorded(tmp_path: Path, model_dir: Path) -> None:
    """Ctrl-C in the middle (decoders waiting for memory, batches pending): no hang, no half file."""
    root, out = tmp_path / "tree", tmp_path / "out"
    make_tree(root, 30)
    col = Colorizer.load(model_dir, device="cpu")
    seen = []

    def on_event(kind, job, message):
        seen.append(job.rel)
        if len(seen) == 3:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt), ManifestWriter(tmp_path / "m.jsonl") as w:
        colorize_archive(col, archive_jobs(root, out), writer=w, batch_size=4, workers=2, max_pixels_in_flight=3000,
                         on_event=on_event)  # fmt: skip
    written = [f for f in files_under(out)]
    assert 3 <= len(written) < 30 and not [f for f in written if Path(f).name.startswith(".")]
    recorded = {r["rel"] for r in read_rows(tmp_path / "m.jsonl") if r["status"] == "ok"}
    assert recorded == set(written)
    for f in written:
        with Image.open(out / f) as im:
            im.load()


def test_killed_run_resumes_with_every_output_exactly_once(tmp_path: Path, model_dir: Path) -> None:
    """SIGKILL at a random point (seeded), rerun: every output exactly once, one manifest row each."""
    root, out = tmp_path / "tree", tmp_path / "out"
    rels = make_tree(root, 200, seed=2)
    expected = sorted(r for r in rels)
    args = ["colorize", str(root), "-o", str(out), "--archive", "--model", str(model_dir),
            "--batch-size", "4", "--workers", "2", "-q"]  # fmt: skip
    kill_at = random.Random(8).randint(20, 150)
    proc = subprocess.Popen(lumachrome_cmd(*args), env=clean_env(), cwd=tmp_path, stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)  # fmt: skip
    deadline = time.monotonic() + TIMEOUT
    part = part_path(out / "manifest.jsonl", 0)
    while proc.poll() is None and time.monotonic() < deadline:
        if part.is_file() and part.read_bytes().count(b"\n") >= kill_at:
            proc.send_signal(signal.SIGKILL)
            break
        time.sleep(0.01)
    proc.communicate(timeout=TIMEOUT)
    assert proc.returncode == -signal.SIGKILL, "the run must be killed before it finishes"
    outputs = [f for f in files_under(out) if f.endswith(".png")]
    done_before = len([f for f in outputs if not Path(f).name.startswith(".")])  # not temporary files
    assert kill_at <= done_before < 200

    proc = subprocess.run(lumachrome_cmd(*args[:-1]), env=clean_env(), cwd=tmp_path, stdin=subprocess.DEVNULL,
                          capture_output=True, text=True, timeout=TIMEOUT)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert f"{done_before} already done" in proc.stdout and f"colorized {200 - done_before} image(s)" in proc.stdout
    assert files_under(out) == sorted(expected + ["manifest.jsonl"]), "every output once, no temporary files"
    rows = read_rows(out / "manifest.jsonl")
    assert [r["rel"] for r in rows] == rels and [r["index"] for r in rows] == list(range(200))
    assert all(r["status"] in ("ok", "skipped") for r in rows)
    # "skipped": saved by the killed run but not yet recorded (at most the 2 encoder threads' images).
    assert sum(r["status"] == "ok" for r in rows) >= 200 - 2
    for r in rows:
        assert Path(r["output"]).is_file() and r["output"].endswith(r["rel"])


def test_archive_cli_usage_errors(tmp_path: Path, model_dir: Path) -> None:
    from lumachrome.cli import main

    make_tree(tmp_path / "tree", 2)
    assert main(["colorize", str(tmp_path / "tree"), str(tmp_path / "tree"), "--archive"]) == 2
    assert main(["colorize", str(tmp_path / "tree" / "img_0000.png"), "--archive"]) == 2
    assert main(["colorize", str(tmp_path / "tree"), "--archive", "-o", str(tmp_path / "x.png")]) == 2
    assert not (tmp_path / "out").exists()


# ------------------------------------------------------------------------------ torchrun, 2 ranks
def test_torchrun_two_processes_equal_one_and_rerun_after_a_rank_died(tmp_path: Path, model_dir: Path) -> None:
    root = tmp_path / "tree"
    rels = make_tree(root, 60, seed=3)
    (root / "d1" / "broken.png").write_bytes(b"\x89PNG broken")
    single, multi = tmp_path / "single", tmp_path / "multi"

    # Reference: one process, one thread (as each torchrun rank), in this process.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        code = run_archive(root, single, model=str(model_dir), device="cpu", batch_size=3, workers=1, quiet=True)
    finally:
        torch.set_num_threads(threads)
    assert code == 1  # the broken file

    # Batches of 3 (padded when partial): the ranks' batches hold other images than the single
    # process's, and the bytes must still be the same.
    args = ["colorize", str(root), "-o", str(multi), "--model", str(model_dir), "--device", "cpu",
            "--batch-size", "3", "--workers", "1"]  # fmt: skip
    # First launch: kill rank 1 once it has written a few rows; torchrun stops rank 0 too.
    proc = subprocess.Popen(lumachrome_cmd(*args, nproc=2), env=clean_env(), cwd=tmp_path,
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE)  # fmt: skip
    deadline, killed = time.monotonic() + TIMEOUT, False
    part1 = part_path(multi / "manifest.jsonl", 1)
    while proc.poll() is None and time.monotonic() < deadline and not killed:
        if part1.is_file() and part1.read_bytes().count(b"\n") >= 5:
            for pid in children(proc.pid):
                if env_rank(pid) == 1:
                    os.kill(pid, signal.SIGKILL)
                    killed = True
        time.sleep(0.01)
    _, err = proc.communicate(timeout=TIMEOUT)
    assert killed and proc.returncode != 0, err.decode()[-2000:]
    partial = [f for f in files_under(multi) if f.endswith(".png") and not Path(f).name.startswith(".")]
    assert 5 <= len(partial) < 60
    assert not (multi / "manifest.jsonl").exists(), "no merge without every rank"

    # Rerun: completes only what is missing; outputs equal the single-process ones, each once.
    mtimes = {f: (multi / f).stat().st_mtime_ns for f in partial}
    proc = subprocess.run(lumachrome_cmd(*args, nproc=2), env=clean_env(), cwd=tmp_path,
                          stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=TIMEOUT)  # fmt: skip
    assert proc.returncode != 0 and "broken.png" in proc.stderr  # rank 0 exits 1: one image failed
    assert proc.stdout.count("colorized") == 1, "only rank 0 prints the summary"
    assert f"colorized {60 - len(partial)} image(s)" in proc.stdout and "2 processes" in proc.stdout
    assert mtimes == {f: (multi / f).stat().st_mtime_ns for f in partial}, "done outputs are not redone"
    assert files_under(multi) == files_under(single) == sorted(rels + ["manifest.jsonl"])
    for rel in rels:
        assert (multi / rel).read_bytes() == (single / rel).read_bytes(), rel
    rows = read_rows(multi / "manifest.jsonl")
    all_rels = [j.rel for j in archive_jobs(root, multi)]
    assert [r["rel"] for r in rows] == all_rels, "one row per image, in stream order"
    statuses = {r["rel"]: r["status"] for r in rows}
    assert statuses.pop("d1/broken.png") == "error" and set(statuses.values()) <= {"ok", "skipped"}
    assert {r["rank"] for r in rows if r["status"] == "ok"} == {0, 1}
    assert all(r["rank"] == r["index"] % 2 for r in rows if r["status"] == "ok")
    assert not list(multi.glob("manifest.rank-*")), "parts are merged away"
