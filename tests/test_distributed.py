"""Distributed data-parallel training (torchrun, gloo on the CPU).

The end-to-end test trains with 2 processes and checks that the weights equal a single-process run
with the same global batch, then resumes that checkpoint with 1 process and again with 2.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml

from lumachrome.data.tensor_batches import TensorBatcher
from lumachrome.errors import ConfigError
from lumachrome.train import distributed
from lumachrome.train.checkpoint import load_checkpoint
from lumachrome.train.config import RunConfig
from lumachrome.train.distributed import DistInfo

TORCHRUN_TIMEOUT = 180


# ------------------------------------------------------------------------------------- helpers
@pytest.fixture(scope="module")
def data(tmp_path_factory):
    from lumachrome.data.pack import build_pack
    from lumachrome.data.synthetic import write_synthetic_folder

    root = tmp_path_factory.mktemp("ddp-data")
    write_synthetic_folder(root / "train", 32, size=40, seed=1)
    write_synthetic_folder(root / "val", 4, size=40, seed=2)
    build_pack([root / "train"], root / "train.safetensors", size=32, progress=False, workers=1)
    return root


def _config(data: Path, out: Path, steps: int) -> dict:
    # GroupNorm: per-sample statistics, so the result does not depend on how the batch is split
    # (BatchNorm would see per-rank statistics on CPU: SyncBatchNorm needs CUDA).
    return {
        "data": {"pack": [str(data / "train.safetensors")], "val": str(data / "val"), "size": 32,
                 "val_size": 32, "val_images": 4},
        "model": {"architecture": "unet", "args": {"widths": [8, 16], "blocks": 1, "norm": "group"}},
        "optim": {"lr": 3e-3, "warmup_steps": 2, "schedule": "constant", "ema": 0.9},
        "train": {"out": str(out), "steps": steps, "batch_size": 8, "log_every": 2, "ckpt_every": 2,
                  "epoch_steps": 2, "keep_checkpoints": 0, "progress": False, "device": "cpu",
                  # float32: the comparison with one process is exact up to summation order; bf16
                  # autocast (on by default on CPUs with AMX) rounds each rank's half batch differently.
                  "amp": False},
    }


def _torchrun(nproc: int, args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items()
           if k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "LOCAL_WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT")}
    env["OMP_NUM_THREADS"] = "1"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={nproc}",
           "-m", "lumachrome", "train", *args]
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=TORCHRUN_TIMEOUT)
    assert proc.returncode == 0, f"torchrun failed ({proc.returncode}):\n{proc.stderr[-4000:]}"
    return proc


def _assert_same_state(a, b) -> None:
    """Model, EMA and optimiser tensors of two checkpoints agree within float tolerance."""
    assert a.step == b.step
    assert a.model.keys() == b.model.keys() and not any(k.startswith("module.") for k in a.model)
    for k in a.model:
        torch.testing.assert_close(a.model[k], b.model[k], rtol=1e-4, atol=2e-6, msg=lambda m: f"model {k}: {m}")
    for k in a.ema:
        torch.testing.assert_close(a.ema[k], b.ema[k], rtol=1e-4, atol=2e-6, msg=lambda m: f"ema {k}: {m}")
    for k in a.optim:
        if k.startswith("state."):
            torch.testing.assert_close(a.optim[k], b.optim[k], rtol=1e-3, atol=1e-8, msg=lambda m: f"optim {k}: {m}")
    # The pack batcher's state is global: same permutation position and generator on every rank.
    assert a.state["extra"]["data"] == b.state["extra"]["data"]


# ----------------------------------------------------------------------------- fast unit tests
@pytest.mark.parametrize("world", [2, 4])
def test_batcher_rank_slices_make_the_global_batch(world):
    images = torch.randint(0, 256, (10, 3, 20, 20), dtype=torch.uint8)
    single = TensorBatcher(images, 12, 8, seed=5)
    ranks = [TensorBatcher(images, 12, 8, seed=5, rank=r, world_size=world) for r in range(world)]
    for _ in range(4):  # crosses an epoch boundary (10 images, batches of 8)
        want = next(single)
        got = [next(b) for b in ranks]
        assert all(g["L"].shape[0] == 8 // world for g in got)
        for k in ("L", "ab", "rgb"):
            assert torch.equal(torch.cat([g[k] for g in got]), want[k])
        assert all(b.state_dict() == single.state_dict() for b in ranks)


def test_batcher_rejects_uneven_split():
    images = torch.zeros(4, 3, 8, 8, dtype=torch.uint8)
    with pytest.raises(ValueError, match="not divisible"):
        TensorBatcher(images, 8, 6, world_size=4)
    with pytest.raises(ValueError, match="rank 2"):
        TensorBatcher(images, 8, 4, rank=2, world_size=2)


def test_single_process_helpers(monkeypatch):
    for k in ("RANK", "WORLD_SIZE", "LOCAL_RANK"):
        monkeypatch.delenv(k, raising=False)
    info = distributed.setup("cpu")
    assert (info.rank, info.world_size, info.enabled, info.is_main, info.owns_group) == (0, 1, False, True, False)
    assert not torch.distributed.is_initialized()
    assert distributed.is_main() and distributed.get_world_size() == 1
    distributed.barrier()  # no-op
    t = torch.tensor([1.0, 2.0])
    assert distributed.all_reduce_mean(t) is t
    assert distributed.per_rank_batch_size(32, 4) == 8
    with pytest.raises(ConfigError, match="train.batch_size.*not divisible by the 3 processes"):
        distributed.per_rank_batch_size(32, 3)
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "5")
    with pytest.raises(ConfigError, match="RANK=5"):
        distributed.env_ranks()
    monkeypatch.setenv("RANK", "x")
    with pytest.raises(ConfigError, match="RANK"):
        distributed.env_ranks()


def test_folder_data_uses_distributed_sampler(data):
    from lumachrome.train.loop import make_train_data

    cfg = RunConfig.from_dict(_config(data, data / "unused", 4))
    cfg.data.pack, cfg.data.train, cfg.data.workers = [], [str(data / "train")], 0
    shards = [make_train_data(cfg, torch.device("cpu"), DistInfo(rank=r, world_size=2)) for r in range(2)]
    idx = []
    for td in shards:
        assert td.num_images == 32 and td.sampler is not None
        assert next(td.batches)["L"].shape == (4, 1, 32, 32)  # the global batch 8 split over 2 ranks
        idx.append(list(iter(td.sampler)))
    assert len(idx[0]) == len(idx[1]) == 16
    assert sorted(idx[0] + idx[1]) == list(range(32)), "the ranks' shards partition the epoch"
    shards[0].sampler.set_epoch(1)
    assert list(iter(shards[0].sampler)) != idx[0], "set_epoch reshuffles"
    with pytest.raises(ConfigError, match="not divisible"):
        make_train_data(cfg, torch.device("cpu"), DistInfo(rank=0, world_size=3))


# ------------------------------------------------------------------------ torchrun end to end
def test_torchrun_two_processes_equal_one_and_resume_across_world_sizes(data, tmp_path):
    """2 gloo processes == 1 process on the same global batch; resume 2 -> 1 -> 2 processes."""
    from lumachrome.train.cli import train_main
    from lumachrome.train.loop import train

    # Reference: one process, 8 steps, every second checkpoint kept.
    ref = train(RunConfig.from_dict(_config(data, tmp_path / "ref", 8)), log=lambda m: None)
    ref_ckpt = {s: load_checkpoint(ref / "checkpoints" / f"step-{s:07d}") for s in (4, 6, 8)}

    # 2 processes, steps 0 -> 4.
    conf = tmp_path / "ddp.yaml"
    conf.write_text(yaml.safe_dump(_config(data, tmp_path / "ddp", 4)))
    run = tmp_path / "ddp"
    proc = _torchrun(2, ["--config", str(conf)], tmp_path)
    assert proc.stderr.count("2 processes (gloo) x 4 images per step") == 1, "only rank 0 logs"
    c4 = load_checkpoint(run)
    assert c4.state["extra"]["world_size"] == 2
    _assert_same_state(c4, ref_ckpt[4])
    # Only rank 0 writes: one TensorBoard file, one metrics line and one sample grid per epoch.
    assert len(list((run / "tb").iterdir())) == 1
    assert [json.loads(ln)["step"] for ln in (run / "metrics.jsonl").read_text().splitlines()] == [2, 4]
    assert sorted(p.name for p in (run / "samples").iterdir()) == ["epoch-001.png", "epoch-002.png"]
    assert (run / "model" / "model.safetensors").is_file()

    # Resume with 1 process (in this process, through the CLI entry point), steps 4 -> 6.
    assert train_main(["--resume", str(run), "--steps", "6"]) == 0
    c6 = load_checkpoint(run)
    assert c6.step == 6 and c6.state["extra"]["world_size"] == 1
    _assert_same_state(c6, ref_ckpt[6])
    last = json.loads((run / "metrics.jsonl").read_text().splitlines()[-1])
    assert last["step"] == 6 and torch.isfinite(torch.tensor(last["ab_l1"]))

    # And with 2 processes again, steps 6 -> 8.
    proc = _torchrun(2, ["--resume", str(run), "--steps", "8"], tmp_path)
    assert "saved by 1 processes, now 2" in proc.stderr
    c8 = load_checkpoint(run)
    assert c8.step == 8
    _assert_same_state(c8, ref_ckpt[8])
    assert all(torch.isfinite(v).all() for v in c8.model.values())
