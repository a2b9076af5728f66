"""Atomic, resumable training checkpoints without pickle.

A checkpoint is a folder ``RUN/checkpoints/step-000500/`` holding

* ``model.safetensors``  the trained weights (and ``ema.safetensors`` when EMA is on),
* ``optim.safetensors``  every tensor of the optimiser state plus the RNG states,
* ``state.json``         step, epoch, the run configuration, the model's architecture and
                         args, the optimiser's non-tensor state (param groups, scalar entries).

It is written into a temporary sibling folder and renamed into place, so an interrupted write
never leaves a half checkpoint; ``RUN/checkpoints/latest`` is a small text file naming the newest.
Temporary folders a killed write left behind (``checkpoints/.step-*``) are removed by the next save.
Checkpoints are ordered and pruned by their step number (never by name), and pruning never removes
the checkpoint just written.

Run folders (:func:`plan_run_dir`, :func:`prepare_run_dir`): a training starts only in an empty or
new folder, continues a run only in that run's own folder (``--resume``), and replaces an earlier
run only when asked (``--overwrite``: moved aside to ``RUN.old-<time>``, or ``--overwrite delete``).
A resumed run drops the log rows (``metrics.jsonl``, ``losses.jsonl``) written after its checkpoint.

In a distributed (DDP) run only rank 0 calls :func:`save_checkpoint`, with the unwrapped network, so
the keys carry no ``module.`` prefix and the checkpoint does not depend on the number of processes.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

from lumachrome.atomic import apply_umask
from lumachrome.errors import ConfigError, ModelError

__all__ = [
    "Checkpoint",
    "RunDirPlan",
    "find_checkpoint",
    "load_checkpoint",
    "plan_run_dir",
    "prepare_run_dir",
    "save_checkpoint",
    "step_of",
    "sweep_temp_checkpoints",
    "trim_logs",
]

STATE_FORMAT = "lumachrome-checkpoint"
_STEP_DIR = re.compile(r"^step-(\d+)$")
#: Files of a run folder with one JSON row per step (``{"step": N, ...}``), trimmed on resume.
LOG_FILES = ("metrics.jsonl", "losses.jsonl")
OVERWRITE_MODES = ("move", "delete")


def step_of(path: str | Path) -> int | None:
    """The step number of a checkpoint folder named ``step-NNN`` (None for any other name)."""
    m = _STEP_DIR.match(Path(path).name)
    return int(m.group(1)) if m else None


def _step_dirs(root: Path, complete: bool = False) -> list[Path]:
    """``root/step-*`` folders sorted by step number (only those with a state.json if ``complete``)."""
    found = [(step_of(p), p) for p in root.glob("step-*") if p.is_dir() and step_of(p) is not None
             and (not complete or (p / "state.json").is_file())]
    return [p for _, p in sorted(found, key=lambda t: t[0])]


def sweep_temp_checkpoints(ckpt_root: str | Path) -> int:
    """Remove the temporary folders (``.step-*``) and files (``.latest.tmp``) of checkpoint writes that
    were killed; returns how many. Only the run's writer (rank 0) calls it, before it writes."""
    ckpt_root = Path(ckpt_root)
    removed = 0
    if not ckpt_root.is_dir():
        return 0
    for p in ckpt_root.iterdir():
        if p.name.startswith(".step-") and p.is_dir() and not p.is_symlink():
            shutil.rmtree(p, ignore_errors=True)
            removed += 1
        elif p.name == ".latest.tmp":
            p.unlink(missing_ok=True)
            removed += 1
    return removed


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
    sweep_temp_checkpoints(ckpt_root)  # what a killed write left (never cleaned up otherwise)
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
    _prune(ckpt_root, keep, final)
    return final


def _json_default(o: Any) -> Any:
    if isinstance(o, torch.Tensor):
        return o.item() if o.numel() == 1 else o.tolist()
    if isinstance(o, Path):
        return str(o)
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")


def _prune(ckpt_root: Path, keep: int, current: Path) -> None:
    """Keep ``current`` and the ``keep - 1`` checkpoints before it, by step number (``step-10000000``
    sorts before ``step-9999999`` by name). Checkpoints after ``current`` (left by a run resumed from
    an earlier checkpoint) are not touched here."""
    if keep <= 0:
        return
    now = step_of(current)
    older = [p for p in _step_dirs(ckpt_root) if p != current and step_of(p) < now]
    for old in older[: max(0, len(older) - (keep - 1))]:
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
        steps = _step_dirs(root, complete=True)
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


# ------------------------------------------------------------------------------------ run folders
@dataclass
class RunDirPlan:
    """What :func:`prepare_run_dir` will do with a run folder: ``action`` is ``"new"`` (missing or
    empty folder), ``"resume"`` (continue the run in it), ``"move"`` or ``"delete"`` (``--overwrite``:
    an earlier run is moved aside to ``aside`` or removed)."""

    run_dir: Path
    action: str
    aside: Path | None = None


def _describe_run(run_dir: Path) -> str:
    steps = _step_dirs(run_dir / "checkpoints", complete=True)
    if steps:
        return f"{len(steps)} checkpoint(s) up to step {step_of(steps[-1])}"
    n = sum(1 for _ in run_dir.iterdir())
    return f"{n} file(s) or folder(s)"


def _aside_name(run_dir: Path) -> Path:
    stamp = time.strftime("%Y%m%d-%H%M%S")
    cand = run_dir.with_name(f"{run_dir.name}.old-{stamp}")
    k = 1
    while cand.exists() or cand.is_symlink():
        k += 1
        cand = run_dir.with_name(f"{run_dir.name}.old-{stamp}-{k}")
    return cand


def plan_run_dir(run_dir: str | Path, *, resume: str | Path | None = None, overwrite: str | bool | None = None
                 ) -> RunDirPlan:
    """Decide (without touching anything) how a training may use ``run_dir``.

    * a missing or empty folder: a new run;
    * ``resume``: only into the run folder of that checkpoint, or into a missing/empty folder;
    * a folder holding anything else: refused (``ConfigError``, one line naming ``--resume`` and
      ``--overwrite``) unless ``overwrite`` is ``"move"`` (or True: the earlier run is renamed to
      ``RUN.old-<time>``) or ``"delete"`` (it is removed).
    """
    run_dir = Path(run_dir)
    if overwrite is True:
        overwrite = "move"
    if overwrite not in (None, False, *OVERWRITE_MODES):
        raise ConfigError(f"--overwrite: {overwrite!r} is not one of {', '.join(OVERWRITE_MODES)}")
    if run_dir.exists() and not run_dir.is_dir():
        raise ConfigError(f"{run_dir}: the run folder (train.out) exists and is not a folder")
    empty = not run_dir.exists() or not any(run_dir.iterdir())
    if resume:
        if overwrite:
            raise ConfigError("--resume continues a run and --overwrite starts over: give one of them")
        ckpt = find_checkpoint(resume)
        own = ckpt.parent.parent if ckpt.parent.name == "checkpoints" else None
        if own is not None and os.path.realpath(own) == os.path.realpath(run_dir):
            return RunDirPlan(run_dir, "resume")
        if empty:
            return RunDirPlan(run_dir, "new")
        raise ConfigError(f"{run_dir}: holds {_describe_run(run_dir)} and is not the run of {ckpt}; "
                          f"continue into an empty folder (--out) or into {own or 'its own run folder'}")
    if empty:
        return RunDirPlan(run_dir, "new")
    if not overwrite:
        raise ConfigError(f"{run_dir}: already holds a run ({_describe_run(run_dir)}); continue it with "
                          f"--resume {run_dir}, or start over with --overwrite (it is moved aside to "
                          f"{run_dir.name}.old-<time>; --overwrite delete removes it)")
    return RunDirPlan(run_dir, overwrite, _aside_name(run_dir) if overwrite == "move" else None)


def prepare_run_dir(plan: RunDirPlan, *, resume_step: int | None = None, log=print) -> None:
    """Carry out ``plan`` (rank 0 only): move aside or remove an earlier run (one log line saying
    which), create the folder, and on a resume sweep killed checkpoint writes and drop the log rows
    written after the checkpoint (:func:`trim_logs`)."""
    run_dir = plan.run_dir
    try:
        if plan.action == "move":
            os.replace(run_dir, plan.aside)
            log(f"--overwrite: moved the earlier run in {run_dir} to {plan.aside}")
        elif plan.action == "delete":
            shutil.rmtree(run_dir)
            log(f"--overwrite delete: removed the earlier run in {run_dir}")
        run_dir.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise ConfigError(f"{run_dir}: cannot prepare the run folder ({e.strerror or e})") from None
    if plan.action == "resume":
        sweep_temp_checkpoints(run_dir / "checkpoints")
        if resume_step is not None:
            trim_logs(run_dir, resume_step)


def trim_logs(run_dir: str | Path, step: int) -> int:
    """Drop the rows with ``"step"`` above ``step`` (and unparsable ones, cut by a kill) from the run's
    JSONL logs, atomically, so a resumed run does not repeat them; returns the rows dropped."""
    from lumachrome.atomic import atomic_write_text

    dropped = 0
    for name in LOG_FILES:
        path = Path(run_dir) / name
        if not path.is_file():
            continue
        keep: list[str] = []
        lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
        for line in lines:
            try:
                row = json.loads(line)
                ok = int(row["step"]) <= step
            except (ValueError, KeyError, TypeError):
                ok = False
            if ok:
                keep.append(line)
        if len(keep) != len(lines):
            dropped += len(lines) - len(keep)
            atomic_write_text(path, "".join(k + "\n" for k in keep), error=ConfigError)
    return dropped
