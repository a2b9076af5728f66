"""Atomic, resumable training checkpoints without pickle.

A checkpoint is a folder ``RUN/checkpoints/step-000500/`` holding

* ``model.safetensors``  the trained weights (and ``ema.safetensors`` when EMA is on),
* ``optim.safetensors``  every tensor of the optimiser state plus the RNG states,
* ``state.json``         step, epoch, the run configuration, the model's architecture and
                         args, the optimiser's non-tensor state (param groups, scalar entries).

It is written into a temporary sibling folder and renamed into place, so an interrupted write
never leaves a half checkpoint; ``RUN/checkpoints/latest`` is a small text file naming the newest.

In a distributed (DDP) run only rank 0 calls :func:`save_checkpoint`, with the unwrapped network, so
the keys carry no ``module.`` prefix and the checkpoint does not depend on the number of processes.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

from lumachrome.atomic import apply_umask
from lumachrome.errors import ModelError

__all__ = ["Checkpoint", "find_checkpoint", "load_checkpoint", "save_checkpoint"]

STATE_FORMAT = "lumachrome-checkpoint"


def _cpu_contig(sd: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {k: v.detach().to("cpu").contiguous() for k, v in sd.items()}


def _unwrap(model: torch.nn.Module) -> torch.nn.Module:
    """The network inside a DistributedDataParallel wrapper (its state_dict keys have no ``module.``)."""
    from torch.nn.parallel import DistributedDataParallel

    return model.module if isinstance(model, DistributedDataParallel) else model


def _flatten_optimizer(opt_state: dict[str, Any]) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Split ``optimizer.state_dict()`` into tensors (for safetensors) and JSON."""
    tensors: dict[str, torch.Tensor] = {}
    scalars: dict[str, dict[str, Any]] = {}
    for idx, entry in opt_state["state"].items():
        for key, value in entry.items():
            if isinstance(value, torch.Tensor):
                tensors[f"state.{idx}.{key}"] = value
            else:
                scalars.setdefault(str(idx), {})[key] = value
    return tensors, {"param_groups": opt_state["param_groups"], "scalars": scalars}


def _unflatten_optimizer(tensors: dict[str, torch.Tensor], meta: dict[str, Any]) -> dict[str, Any]:
    state: dict[int, dict[str, Any]] = {}
    for name, value in tensors.items():
        if not name.startswith("state."):
            continue
        _, idx, key = name.split(".", 2)
        state.setdefault(int(idx), {})[key] = value
    for idx, entry in meta.get("scalars", {}).items():
        state.setdefault(int(idx), {}).update(entry)
    return {"state": state, "param_groups": meta["param_groups"]}


def save_checkpoint(
    run_dir: str | Path,
    *,
    step: int,
    epoch: int,
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler: Any,
    config: dict[str, Any],
    model_spec: dict[str, Any],
    ema: torch.nn.Module | None = None,
    extra: dict[str, Any] | None = None,
    keep: int = 3,
) -> Path:
    """Write ``run_dir/checkpoints/step-XXXXXXX`` atomically and return its path.

    ``model_spec`` is ``{"architecture": ..., "args": ..., "preprocessing": ..., "decoding": ...}``,
    enough to rebuild the network and export it without the original flags.
    """
    ckpt_root = Path(run_dir) / "checkpoints"
    ckpt_root.mkdir(parents=True, exist_ok=True)
    final = ckpt_root / f"step-{step:07d}"
    tmp = Path(tempfile.mkdtemp(prefix=f".step-{step:07d}.", dir=ckpt_root))
    try:
        save_file(_cpu_contig(_unwrap(model).state_dict()), str(tmp / "model.safetensors"),
                  metadata={"format": "pt"})
        if ema is not None:
            save_file(_cpu_contig(ema.state_dict()), str(tmp / "ema.safetensors"), metadata={"format": "pt"})
        opt_tensors, opt_meta = _flatten_optimizer(optimizer.state_dict())
        opt_tensors = _cpu_contig(opt_tensors)
        opt_tensors["rng.torch"] = torch.get_rng_state()
        if torch.cuda.is_available():
            for i, s in enumerate(torch.cuda.get_rng_state_all()):
                opt_tensors[f"rng.cuda.{i}"] = s
        save_file(opt_tensors, str(tmp / "optim.safetensors"))
        state = {
            "format": STATE_FORMAT,
            "format_version": 1,
            "step": step,
            "epoch": epoch,
            "config": config,
            "model": model_spec,
            "optimizer": opt_meta,
            "scheduler": scheduler.state_dict() if scheduler is not None else None,
            "extra": extra or {},
        }
        (tmp / "state.json").write_text(json.dumps(state, indent=1, default=_json_default))
        apply_umask(tmp)  # mkdtemp and safetensors make 0700/0600: the umask's modes instead
        if final.exists():
            shutil.rmtree(final)
        os.replace(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    latest_tmp = ckpt_root / ".latest.tmp"
    latest_tmp.write_text(final.name + "\n")
    os.replace(latest_tmp, ckpt_root / "latest")
    _prune(ckpt_root, keep)
    return final


def _json_default(o: Any) -> Any:
    if isinstance(o, torch.Tensor):
        return o.item() if o.numel() == 1 else o.tolist()
    if isinstance(o, Path):
        return str(o)
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")


def _prune(ckpt_root: Path, keep: int) -> None:
    if keep <= 0:
        return
    steps = sorted(p for p in ckpt_root.glob("step-*") if p.is_dir())
    for old in steps[:-keep]:
        shutil.rmtree(old, ignore_errors=True)


def find_checkpoint(path: str | Path) -> Path:
    """Resolve a checkpoint folder, a run folder (its latest checkpoint) or a ``checkpoints`` folder."""
    p = Path(path)
    if (p / "state.json").is_file():
        return p
    for root in (p / "checkpoints", p):
        latest = root / "latest"
        if latest.is_file():
            cand = root / latest.read_text().strip()
            if (cand / "state.json").is_file():
                return cand
        steps = sorted(q for q in root.glob("step-*") if (q / "state.json").is_file())
        if steps:
            return steps[-1]
    if not p.exists():
        raise ModelError(f"{p}: no such checkpoint or run folder")
    raise ModelError(f"{p}: no checkpoint found (expected state.json or checkpoints/step-*)")


@dataclass
class Checkpoint:
    path: Path
    state: dict[str, Any]
    model: dict[str, torch.Tensor]
    ema: dict[str, torch.Tensor] | None
    optim: dict[str, torch.Tensor]

    @property
    def step(self) -> int:
        return int(self.state["step"])

    def optimizer_state(self) -> dict[str, Any]:
        return _unflatten_optimizer(self.optim, self.state["optimizer"])

    def restore_rng(self) -> None:
        if "rng.torch" in self.optim:
            torch.set_rng_state(self.optim["rng.torch"])
        if torch.cuda.is_available():
            states = [self.optim[k] for k in sorted(self.optim) if k.startswith("rng.cuda.")]
            if len(states) == torch.cuda.device_count():
                torch.cuda.set_rng_state_all(states)


def load_checkpoint(path: str | Path) -> Checkpoint:
    """Load a checkpoint written by :func:`save_checkpoint` (tensors on the CPU)."""
    ckpt = find_checkpoint(path)
    try:
        state = json.loads((ckpt / "state.json").read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise ModelError(f"{ckpt / 'state.json'}: unreadable checkpoint state ({e})") from e
    if state.get("format") != STATE_FORMAT:
        raise ModelError(f"{ckpt}: not a lumachrome checkpoint")
    try:
        model = load_file(str(ckpt / "model.safetensors"))
        ema = load_file(str(ckpt / "ema.safetensors")) if (ckpt / "ema.safetensors").is_file() else None
        optim = load_file(str(ckpt / "optim.safetensors")) if (ckpt / "optim.safetensors").is_file() else {}
    except Exception as e:
        raise ModelError(f"{ckpt}: cannot read checkpoint tensors ({str(e).splitlines()[0]})") from e
    return Checkpoint(path=ckpt, state=state, model=model, ema=ema, optim=optim)
