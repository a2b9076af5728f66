"""The one training-run orchestrator: every regime (supervised, pix2pix / CycleGAN, hints) runs through :func:`run`.

A *regime* (:class:`Regime`) says what is particular to it: how its trainer, data and validation set are
built (``build``), which stored configuration wins on resume, what goes into a checkpoint besides the
trainer's state, what is validated at the end of an epoch. Everything else is here, once:

1. the run folder rules (:func:`lumachrome.train.checkpoint.plan_run_dir`: new, ``resume``, ``overwrite``)
   and the process group under torchrun (:mod:`lumachrome.train.distributed`);
2. seeding, loading the checkpoint to resume from, preparing the folder and writing ``config.yaml``;
3. restoring the trainer, the data position and the RNG from the checkpoint; per-rank seeds;
4. TensorBoard, the checkpoint closure (rank 0), the end-of-epoch validation (``metrics.jsonl``, sample
   grids), and the step loop (:func:`run_steps`: progress bar, scalars, schedule, Ctrl-C, the export of
   ``model/`` at the end, :func:`close_run`).

The regimes: :class:`lumachrome.train.loop.SupervisedRegime`, :class:`lumachrome.train.gan.GanRegime`,
:class:`lumachrome.train.hints.HintsRegime`; ``lumachrome train`` picks one by ``train.regime``
(:func:`lumachrome.train.cli.regime_for`).
"""

from __future__ import annotations

import json
import os
import random
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from lumachrome.train import distributed
from lumachrome.train.checkpoint import load_checkpoint, plan_run_dir, prepare_run_dir, save_checkpoint
from lumachrome.train.config import RunConfig
from lumachrome.train.distributed import DistInfo

__all__ = ["Built", "NullWriter", "Regime", "close_run", "model_spec", "run", "run_steps", "seed_everything",
           "summary_writer"]


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % (2**32))
    torch.manual_seed(seed)


@dataclass
class Built:
    """What a regime builds for a run: the trainer (``step(batch)``, ``load_state``,
    ``state_for_checkpoint``, ``eval_model``), the model spec of the export, the training data
    (``batches``, ``num_images``, ``state``) and the validation set (rank 0; None: none)."""

    trainer: Any
    spec: dict[str, Any]
    data: Any
    val: Any = None


class Regime:
    """What one training regime adds to :func:`run` (subclasses override what they need)."""

    #: ``train.regime`` names this regime runs.
    names: tuple[str, ...] = ()
    #: Whether a resumed run restores the RNG states stored in the checkpoint.
    restores_rng: bool = True

    def resume_config(self, cfg: RunConfig, saved: RunConfig, where: Path, log: Callable[[str], None]) -> None:
        """On resume: adopt the parts of the checkpoint's configuration that must match it (the model)."""
        if saved.model != cfg.model:
            log(f"resume: using the model configuration stored in {where}")
            cfg.model = saved.model

    def check(self, cfg: RunConfig, dist: DistInfo) -> None:
        """ConfigError for a configuration this regime cannot run, before the run folder is touched."""

    def build(self, cfg: RunConfig, dist: DistInfo, *, ckpt: Any, log: Callable[[str], None]) -> Built:
        raise NotImplementedError

    def restore(self, built: Built, ckpt: Any, step: int) -> None:
        """Regime-specific state of a checkpoint (besides the trainer's and the data position)."""

    def resumed(self, ckpt: Any, step: int, dist: DistInfo) -> str:
        """The log line of a resumed run."""
        return f"resumed from {ckpt.path} at step {step}"

    def distributed_note(self, built: Built, dist: DistInfo) -> str | None:
        """A note for runs under torchrun (None: nothing to say)."""
        return None

    def started(self, built: Built, resumed: bool, log: Callable[[str], None]) -> None:
        """Called once the trainer is ready, before the first step (e.g. a step-0 validation)."""

    def describe(self, cfg: RunConfig, built: Built, dist: DistInfo, run_dir: Path) -> str | None:
        """The log line that says what is trained (None: none)."""
        return None

    def extra_state(self, cfg: RunConfig, built: Built, dist: DistInfo) -> dict[str, Any]:
        """Checkpoint ``extra`` besides the data position."""
        return {"world_size": dist.world_size}

    def validate(self, cfg: RunConfig, built: Built, device: torch.device) -> tuple[dict[str, float], np.ndarray]:
        """End-of-epoch metrics and the sample grid, on ``built.val`` (rank 0, only when there is one)."""
        raise NotImplementedError

    def warnings(self, cfg: RunConfig, metrics: dict[str, float]) -> list[str]:
        """Lines to log after an epoch's metrics."""
        return []

    def end_of_epoch(self, cfg: RunConfig, built: Built, step: int, epoch: int, *, device: torch.device,
                     writer: Any, run_dir: Path, log: Callable[[str], None]) -> None:
        """Validation at the end of an epoch: scalars, ``metrics.jsonl``, ``samples/epoch-*.png``, a log line."""
        from lumachrome.imageio import save_image

        if built.val is not None:  # rank 0 only
            metrics, grid = self.validate(cfg, built, device)
            for k, v in metrics.items():
                writer.add_scalar(f"val/{k}", v, step)
            with open(run_dir / "metrics.jsonl", "a") as f:
                f.write(json.dumps({"step": step, "epoch": epoch, **metrics}) + "\n")
            save_image(run_dir / "samples" / f"epoch-{epoch:03d}.png", grid)
            log(f"epoch {epoch} (step {step}): " + ", ".join(f"{k} {v:.4g}" for k, v in metrics.items()))
            for line in self.warnings(cfg, metrics):
                log(line)
        distributed.barrier()  # the other ranks wait for rank 0's validation

    def postfix(self, logs: dict[str, float]) -> dict[str, str]:
        """Progress-bar fields of a logged step (default: loss and learning rate, the supervised trainers)."""
        return {"loss": f"{logs['loss']:.4f}", "lr": f"{logs['lr']:.2e}"}

    def on_log(self, run_dir: Path, step: int, logs: dict[str, float], main: bool) -> None:
        """Extra logging every ``train.log_every`` steps."""


def model_spec(cfg: RunConfig, args: dict[str, Any], *, size: int | None = None,
               decoding: dict[str, Any] | None = None, prefix: str | None = None,
               extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """What a checkpoint stores for the export of every regime (:func:`lumachrome.train.export.export_checkpoint`):
    the architecture and its ``args``; ``preprocessing.size`` (default ``data.val_size``, 256 below 64 px);
    ``decoding`` (default: the annealed-mean temperature of a classification head, else nothing); the
    generator's key ``prefix`` in a checkpoint of several networks; ``extra`` config keys of the model folder."""
    if size is None:
        size = cfg.data.val_size if cfg.data.val_size >= 64 else 256
    if decoding is None:
        decoding = {"temperature": cfg.model.temperature} if cfg.model.head == "classification" else {}
    spec: dict[str, Any] = {"architecture": cfg.model.architecture, "args": args, "preprocessing": {"size": size},
                            "decoding": decoding}
    if prefix is not None:
        spec["prefix"] = prefix
    if extra is not None:
        spec["extra"] = extra
    return spec


def run(cfg: RunConfig, regime: Regime, resume: str | os.PathLike[str] | None = None, *,
        overwrite: str | bool | None = None, log: Callable[[str], None] = print) -> Path:
    """Run a training of ``regime``; returns the run folder (see the module docstring).

    ``cfg.train.out`` must be new or empty, or the run folder of ``resume``; with ``overwrite``
    (``"move"``/True or ``"delete"``) an earlier run in it is moved aside or removed first. Started by
    ``torchrun`` (``WORLD_SIZE`` > 1), the run joins the process group and leaves it at the end.
    """
    cfg.validate()
    plan = plan_run_dir(cfg.train.out, resume=resume, overwrite=overwrite)  # every rank refuses alike
    dist = distributed.setup(cfg.train.device)
    try:
        return _run(cfg, regime, resume, log, dist, plan)
    finally:
        distributed.cleanup(dist)


def _run(cfg: RunConfig, regime: Regime, resume: Any, log: Callable[[str], None], dist: DistInfo, plan: Any) -> Path:
    import yaml

    main = dist.is_main
    if not main:
        log = _quiet  # rank 0 speaks for the group
    regime.check(cfg, dist)
    device = dist.device
    seed_everything(cfg.train.seed)  # the same on every rank: identical initial weights
    run_dir = Path(cfg.train.out)
    ckpt = None
    if resume:
        ckpt = load_checkpoint(resume)
        saved = RunConfig.from_dict(ckpt.state["config"], where=str(ckpt.path))
        regime.resume_config(cfg, saved, ckpt.path, log)
    if main:
        prepare_run_dir(plan, resume_step=ckpt.step if ckpt is not None else None, log=log)
        (run_dir / "config.yaml").write_text(yaml.safe_dump(cfg.to_dict(), sort_keys=False))

    built = regime.build(cfg, dist, ckpt=ckpt, log=log)
    trainer, data = built.trainer, built.data
    start = 0
    if ckpt is not None:
        # The checkpoint state is global (weights, optimiser, step, pack batcher), so a run may resume
        # with another number of processes.
        trainer.load_state(ckpt.model, ckpt.optimizer_state(), ckpt.state.get("scheduler"), ckpt.ema)
        start = ckpt.step
        if regime.restores_rng:
            ckpt.restore_rng()
        if data.state is not None and "data" in ckpt.state.get("extra", {}):
            data.state.load_state_dict(ckpt.state["extra"]["data"])
        regime.restore(built, ckpt, start)
        log(regime.resumed(ckpt, start, dist))
    if dist.enabled:
        # Per-rank randomness (folder augmentation in the main process, dropout); the weights were
        # initialised identically above and DDP broadcast rank 0's anyway.
        torch.manual_seed(distributed.rank_seed(cfg.train.seed, dist.rank, start))
        note = regime.distributed_note(built, dist)
        if note:
            log(note)
    regime.started(built, ckpt is not None, log)

    epoch_steps = cfg.train.epoch_steps or max(1, data.num_images // cfg.train.batch_size)
    writer = summary_writer(run_dir / "tb", purge_step=start if ckpt is not None else None) if main else NullWriter()
    line = regime.describe(cfg, built, dist, run_dir)
    if line:
        log(line)

    def checkpoint(step: int) -> Path | None:
        if not main:
            return None
        extra = {"data": data.state.state_dict()} if data.state is not None else {}
        extra.update(regime.extra_state(cfg, built, dist))
        return save_checkpoint(run_dir, step=step, epoch=step // epoch_steps, config=cfg.to_dict(),
                               model_spec=built.spec, extra=extra, keep=cfg.train.keep_checkpoints,
                               **trainer.state_for_checkpoint())

    def end_of_epoch(step: int) -> None:
        regime.end_of_epoch(cfg, built, step, step // epoch_steps, device=device, writer=writer, run_dir=run_dir,
                            log=log)

    return run_steps(cfg, data, trainer, start, dist=dist, writer=writer, epoch_steps=epoch_steps,
                     end_of_epoch=end_of_epoch, checkpoint=checkpoint, log=log, run_dir=run_dir,
                     postfix=regime.postfix, on_log=lambda step, logs: regime.on_log(run_dir, step, logs, main))


def run_steps(cfg: RunConfig, data, trainer, start: int, *, dist: DistInfo, writer, epoch_steps: int,
              end_of_epoch, checkpoint, log, run_dir: Path, postfix, on_log=None) -> Path:
    """The step loop: ``trainer.step`` on each batch, progress bar, TensorBoard scalars every
    ``log_every`` steps (``postfix(logs)`` for the bar, ``on_log(step, logs)`` for extra logging),
    ``end_of_epoch`` / ``checkpoint`` on schedule, Ctrl-C and the end of the run (:func:`close_run`).
    Returns ``run_dir``."""
    from lumachrome.progress import log_bar

    main = dist.is_main
    step = start
    bar = log_bar(cfg.train.steps, initial=start, disable=not (cfg.train.progress and main), unit="step")
    t_last, n_last = time.perf_counter(), 0
    try:
        while step < cfg.train.steps:
            batch = next(data.batches)
            logs = trainer.step(batch)
            step += 1
            n_last += next(iter(batch.values())).shape[0] * dist.world_size
            bar.update(1)
            if step % cfg.train.log_every == 0 or step == cfg.train.steps:
                dt = time.perf_counter() - t_last
                ips = n_last / max(dt, 1e-9)
                t_last, n_last = time.perf_counter(), 0
                bar.set_postfix(**postfix(logs), img_s=f"{ips:.0f}")
                for k, v in logs.items():
                    writer.add_scalar(f"train/{k}", v, step)
                writer.add_scalar("train/images_per_s", ips, step)
                if on_log is not None:
                    on_log(step, logs)
            if step % epoch_steps == 0 or step == cfg.train.steps:
                end_of_epoch(step)
            if step % cfg.train.ckpt_every == 0 and step < cfg.train.steps:
                checkpoint(step)
    except KeyboardInterrupt:
        # No collective here: the other ranks may already be gone. Rank 0's state is complete.
        close_run(step, checkpoint, bar, writer, main=main, log=log, run_dir=run_dir, name=cfg.train.name,
                  interrupted=True)
        raise
    close_run(step, checkpoint, bar, writer, main=main, log=log, run_dir=run_dir, name=cfg.train.name)
    distributed.barrier()  # when the run returns on any rank, rank 0's files are complete
    return run_dir


def close_run(step: int, checkpoint, bar, writer, *, main: bool, log, run_dir: Path, name: str,
              interrupted: bool = False) -> None:
    """End of a training loop (every regime): close the bar, save the last checkpoint, close
    TensorBoard; rank 0 then says how to resume (``interrupted``) or exports ``run_dir/model``."""
    bar.close()
    path = checkpoint(step)
    writer.close()
    if not main:
        return
    if interrupted:
        log(f"interrupted at step {step}: saved {path}; continue with --resume {run_dir}")
        return
    from lumachrome.train.export import export_checkpoint

    model_dir = export_checkpoint(path, run_dir / "model", name=name)
    log(f"done: checkpoint {path}, model folder {model_dir}")


def _quiet(message: str) -> None:
    pass


class NullWriter:
    """A TensorBoard writer that writes nothing (ranks other than 0, or no tensorboard installed)."""

    def add_scalar(self, *a, **k) -> None:
        pass

    def close(self) -> None:
        pass


def summary_writer(path: Path, purge_step: int | None = None):
    """TensorBoard writer; ``purge_step``: a resumed run hides the events logged after its checkpoint."""
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:  # tensorboard is a dependency, but keep training alive without it
        return NullWriter()
    os.makedirs(path, exist_ok=True)
    return SummaryWriter(str(path), purge_step=purge_step)
