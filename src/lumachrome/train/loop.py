"""The training loop around :class:`SupervisedTrainer`: data, validation, samples, checkpoints, logs.

``train(cfg, resume=...)`` runs a whole training and returns the run folder, which holds::

    config.yaml            the resolved configuration
    checkpoints/step-*/    atomic checkpoints (see lumachrome.train.checkpoint)
    samples/epoch-*.png    per-epoch sample grids (gray input | prediction | ground truth)
    tb/                    TensorBoard scalars (loss, lr, images/s, validation metrics)
    metrics.jsonl          validation metrics per epoch
    model/                 the exported model folder (EMA weights) at the end

A run starts only in a new or empty folder; ``resume`` continues the run of a checkpoint in its own
folder (the rows logged after that checkpoint are dropped); ``overwrite`` ("move" or "delete")
starts over in a folder that holds an earlier run (see :func:`lumachrome.train.checkpoint.plan_run_dir`).

Under ``torchrun --nproc_per_node N -m lumachrome train ...`` the same function runs in N processes
(PyTorch DDP, see :mod:`lumachrome.train.distributed`): ``train.batch_size`` is the global batch,
each rank trains on ``batch_size / N`` images (pack data: its slice of the same global batch;
folders: a ``DistributedSampler`` shard), and rank 0 alone validates and writes everything above.
"""

from __future__ import annotations

import json
import os
import random
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from lumachrome.color.lab import lab_to_rgb
from lumachrome.errors import ConfigError, DataError
from lumachrome.models import create_model
from lumachrome.train import distributed
from lumachrome.train.checkpoint import load_checkpoint, plan_run_dir, prepare_run_dir, save_checkpoint
from lumachrome.train.config import RunConfig
from lumachrome.train.distributed import DistInfo
from lumachrome.train.supervised import SupervisedTrainer

__all__ = ["train", "validate"]


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % (2**32))
    torch.manual_seed(seed)


# ----------------------------------------------------------------------------------------- data
@dataclass
class TrainData:
    batches: Iterator[dict[str, torch.Tensor]]
    num_images: int  # images in the whole training set (all ranks together)
    state: Any = None  # an object with state_dict()/load_state_dict() (TensorBatcher), or None
    sampler: Any = None  # the DistributedSampler of a distributed folder run, or None


def describe_skipped(problems: list[tuple[Path, str]], total: int, where: str) -> str:
    """One line: how many of ``total`` files were skipped and why (counts per reason, first example)."""
    kinds: dict[str, int] = {}
    for _, reason in problems:
        kind = reason.split(":", 1)[0]
        kinds[kind] = kinds.get(kind, 0) + 1
    why = ", ".join(f"{n} {'greyscale' if k == 'gray' else k}" for k, n in sorted(kinds.items()))
    path, reason = problems[0]
    detail = reason.split(": ", 1)[-1]
    if str(path) not in detail:
        detail = f"{path}: {detail}"
    return (f"skipped {len(problems)} of {total} files in {where} ({why}; e.g. {detail}); "
            f"using {total - len(problems)}")


def _scan(ds, where: str, log) -> None:
    """Drop the files whose header shows they cannot be used (not an image, empty, too small or
    large, greyscale, a link loop) before the loader starts, and say how many and why. Files whose
    damage only decoding finds are still skipped while sampling (DataLoader workers cannot report)."""
    report = ds.scan(validate=True)
    if report.problems and log is not None:
        log(describe_skipped(report.problems, report.total, where))


def _folder_batches(cfg: RunConfig, dist: DistInfo | None = None, start_step: int = 0, log=None) -> TrainData:
    from torch.utils.data import ConcatDataset, DataLoader, DistributedSampler

    from lumachrome.data.photos import ColorFolderDataset

    dist = dist or DistInfo()
    sets = [ColorFolderDataset(d, size=cfg.data.size, train=True, min_scale=cfg.data.min_scale,
                               flip=cfg.data.flip, max_files=cfg.data.max_files) for d in cfg.data.train]
    for d, s in zip(cfg.data.train, sets):
        _scan(s, d, log)  # the image count below is of usable files
    ds = sets[0] if len(sets) == 1 else ConcatDataset(sets)
    if len(ds) < cfg.train.batch_size:
        raise DataError(f"{', '.join(cfg.data.train)}: {len(ds)} images, fewer than one batch "
                        f"({cfg.train.batch_size})")
    common = dict(num_workers=cfg.data.workers, persistent_workers=cfg.data.workers > 0,
                  pin_memory=torch.cuda.is_available(), drop_last=True)
    if not dist.enabled:
        g = torch.Generator().manual_seed(cfg.train.seed)
        loader = DataLoader(ds, batch_size=cfg.train.batch_size, shuffle=True, generator=g, **common)

        def forever():
            while True:
                yield from loader

        return TrainData(batches=forever(), num_images=len(ds))

    # Each rank reads a disjoint shard of every epoch's permutation (same seed on all ranks, a new
    # permutation per epoch through set_epoch). The loader's generator seeds the workers'
    # augmentation, so it differs per rank.
    sampler = DistributedSampler(ds, num_replicas=dist.world_size, rank=dist.rank, shuffle=True,
                                 seed=cfg.train.seed, drop_last=True)
    g = torch.Generator().manual_seed(distributed.rank_seed(cfg.train.seed, dist.rank, start_step))
    loader = DataLoader(ds, batch_size=distributed.per_rank_batch_size(cfg.train.batch_size, dist.world_size),
                        sampler=sampler, generator=g, **common)
    # A resumed run continues with the epoch it was in rather than replaying epoch 0's order.
    first_epoch = start_step // max(1, len(loader))

    def forever_sharded():
        epoch = first_epoch
        while True:
            sampler.set_epoch(epoch)
            yield from loader
            epoch += 1

    return TrainData(batches=forever_sharded(), num_images=len(ds), sampler=sampler)


def _pack_batches(cfg: RunConfig, device: torch.device, dist: DistInfo | None = None) -> TrainData:
    from lumachrome.data.pack import load_pack_tensor
    from lumachrome.data.tensor_batches import TensorBatcher

    tensors = [load_pack_tensor(p) for p in cfg.data.pack]
    sizes = {t.shape[-1] for t in tensors}
    if len(sizes) > 1:
        # Packs of different sizes are resized to the largest before concatenation.
        top = max(sizes)
        tensors = [t if t.shape[-1] == top else torch.nn.functional.interpolate(
            t.float(), size=(top, top), mode="bilinear", antialias=True, align_corners=False
        ).round().clamp(0, 255).to(torch.uint8) for t in tensors]
    images = torch.cat(tensors).to(device)
    if images.shape[0] < cfg.train.batch_size:
        raise DataError(f"{', '.join(cfg.data.pack)}: {images.shape[0]} images, fewer than one batch")
    dist = dist or DistInfo()
    distributed.per_rank_batch_size(cfg.train.batch_size, dist.world_size)  # ConfigError if uneven
    # Every rank holds the whole pack and draws the same global batch; it keeps its own slice.
    batcher = TensorBatcher(images, cfg.data.size, cfg.train.batch_size, min_scale=cfg.data.min_scale,
                            flip=cfg.data.flip, seed=cfg.train.seed, rank=dist.rank, world_size=dist.world_size)
    return TrainData(batches=batcher, num_images=len(batcher), state=batcher)


def make_train_data(cfg: RunConfig, device: torch.device, dist: DistInfo | None = None,
                    start_step: int = 0, log=None) -> TrainData:
    """The endless training batches of this process (``batch_size / world_size`` images each).
    Folders: unusable files are dropped first and ``log`` (if given) says how many and why."""
    if cfg.data.pack:
        return _pack_batches(cfg, device, dist)
    if cfg.data.train:
        return _folder_batches(cfg, dist, start_step, log)
    raise ConfigError("no training data: give --data DIR... (folders) or --pack FILE... (data packs)")


def load_val_set(cfg: RunConfig, log=None) -> dict[str, torch.Tensor] | None:
    """The first ``val_images`` validation images (evenly spaced over the folder), centre-cropped.
    Unusable files are dropped first (``log`` says how many and why)."""
    if not cfg.data.val:
        return None
    from lumachrome.data.photos import ColorFolderDataset

    ds = ColorFolderDataset(cfg.data.val, size=cfg.data.val_size, train=False)
    _scan(ds, cfg.data.val, log)
    n = min(cfg.data.val_images, len(ds))
    idx = np.linspace(0, len(ds) - 1, n).round().astype(int) if n > 0 else []
    items = [ds[int(i)] for i in idx]
    if not items:
        return None
    return {k: torch.stack([it[k] for it in items]) for k in ("L", "ab", "rgb")}


# ----------------------------------------------------------------------------------- validation
@torch.no_grad()
def predict_in_batches(model: torch.nn.Module, L: torch.Tensor, device: torch.device, bs: int = 32,
                       temperature: float | None = None) -> torch.Tensor:
    model.eval()
    outs = []
    for i in range(0, L.shape[0], bs):
        outs.append(model.predict_ab(L[i:i + bs].to(device), temperature=temperature).float().cpu())
    return torch.cat(outs)


def _to_uint8(rgb: torch.Tensor) -> np.ndarray:
    return (rgb.clamp(0, 1).permute(0, 2, 3, 1).numpy() * 255.0 + 0.5).astype(np.uint8)


def validate(model: torch.nn.Module, val: dict[str, torch.Tensor], device: torch.device,
             temperature: float | None = None) -> tuple[dict[str, float], torch.Tensor]:
    """PSNR, AuC and colourfulness of ``model`` on the validation tensors; returns (metrics, pred rgb)."""
    from lumachrome.metrics import ab_auc, colorfulness, psnr

    ab = predict_in_batches(model, val["L"], device, temperature=temperature)
    pred_rgb = lab_to_rgb(torch.cat([val["L"], ab], dim=1))
    p8, g8 = _to_uint8(pred_rgb), _to_uint8(val["rgb"])
    m = {
        "psnr": float(np.mean([psnr(p, g) for p, g in zip(p8, g8)])),
        "auc": float(np.mean([ab_auc(p, g) for p, g in zip(p8, g8)])),
        "cf": float(np.mean([colorfulness(p) for p in p8])),
        "cf_gt": float(np.mean([colorfulness(g) for g in g8])),
        "ab_l1": float((ab - val["ab"]).abs().mean()),
    }
    return m, pred_rgb


def sample_grid(val: dict[str, torch.Tensor], pred_rgb: torch.Tensor, n: int) -> np.ndarray:
    """Rows of (gray input | prediction | ground truth), float (H, W, 3) in [0, 1]."""
    n = min(n, pred_rgb.shape[0])
    gray = lab_to_rgb(torch.cat([val["L"][:n], torch.zeros_like(val["ab"][:n])], dim=1))
    rows = [torch.cat([gray[i], pred_rgb[i], val["rgb"][i]], dim=2) for i in range(n)]
    grid = torch.cat(rows, dim=1)
    return grid.permute(1, 2, 0).clamp(0, 1).numpy().astype(np.float32)


# ---------------------------------------------------------------------------------------- model
def build_model(cfg: RunConfig, train_data: TrainData | None, device: torch.device):
    """Create the network; for classification, estimate the ab prior and the rebalancing weights."""
    args = dict(cfg.model.args)
    args["head"] = cfg.model.head
    class_weights = None
    if cfg.model.head == "classification":
        from lumachrome.color.bins import ABGamut, empirical_prior, rebalance_weights

        centers = ABGamut.build().centers
        args["num_bins"] = int(centers.shape[0])
        model = create_model(cfg.model.architecture, **args)
        if train_data is not None:
            n_batches = max(1, cfg.model.prior_images // cfg.train.batch_size)
            batches = (next(train_data.batches)["ab"].cpu() for _ in range(n_batches))
            # Distributed: every rank counts its share of the same number of pixels, so the mean
            # of the rank distributions is the distribution of all of them (the smoothing is linear).
            prior = distributed.all_reduce_mean(empirical_prior(batches, centers))
        else:
            prior = torch.full((centers.shape[0],), 1.0 / centers.shape[0])
        class_weights = rebalance_weights(prior, cfg.model.rebalance_lambda)
        model.set_bins(centers, prior)
        model.default_temperature = cfg.model.temperature
    else:
        model = create_model(cfg.model.architecture, **args)
    if cfg.model.pretrained:
        load = getattr(model, "load_pretrained_encoder", None)
        if load is None:
            raise ConfigError(f"model.pretrained: architecture {cfg.model.architecture!r} has no pretrained encoder")
        load()
    if cfg.model.init:
        init_from(model, cfg.model.init, cfg.model.init_skip)
    return model, args, class_weights


def init_from(model: torch.nn.Module, source: str, skip: list[str]) -> list[str]:
    """Copy weights from a model folder (or a model ``.safetensors``) into ``model`` for fine-tuning.

    Every tensor outside the ``skip`` prefixes must be present with the same shape, and the source may
    hold nothing else outside them (a strict load of the shared part); tensors under ``skip`` keep
    their fresh initialisation (e.g. a classification head on a regression trunk). Returns the names
    left freshly initialised.
    """
    from safetensors.torch import load_file

    path = Path(source)
    if path.is_dir():
        path = path / "model.safetensors"
    if not path.is_file():
        raise ConfigError(f"model.init: {source}: no model.safetensors found")
    try:
        src = load_file(str(path))
    except Exception as e:  # noqa: BLE001 - corrupt file
        raise ConfigError(f"model.init: {path}: cannot read safetensors ({e})") from None
    own = model.state_dict()
    skipped = lambda k: any(k.startswith(p) for p in skip)  # noqa: E731
    missing = sorted(k for k in own if not skipped(k) and k not in src)
    extra = sorted(k for k in src if not skipped(k) and k not in own)
    shape = sorted(k for k in own if not skipped(k) and k in src and tuple(src[k].shape) != tuple(own[k].shape))
    if missing or extra or shape:
        parts = [f"{name}: {', '.join(keys[:4])}{' ...' if len(keys) > 4 else ''}"
                 for name, keys in (("missing", missing), ("unexpected", extra), ("shape mismatch", shape)) if keys]
        raise ConfigError(f"model.init: {path} does not match the model ({'; '.join(parts)})")
    fresh = sorted(k for k in own if skipped(k))
    with torch.no_grad():
        for k, v in own.items():
            if not skipped(k):
                v.copy_(src[k].to(v.dtype))
    return fresh


def model_spec(cfg: RunConfig, args: dict[str, Any]) -> dict[str, Any]:
    return {
        "architecture": cfg.model.architecture,
        "args": args,
        "preprocessing": {"size": cfg.data.val_size if cfg.data.val_size >= 64 else 256},
        "decoding": {"temperature": cfg.model.temperature} if cfg.model.head == "classification" else {},
    }


# ----------------------------------------------------------------------------------------- loop
def train(cfg: RunConfig, resume: str | None = None, *, overwrite: str | bool | None = None, log=print) -> Path:
    """Run a training; returns the run folder. Ctrl-C saves a checkpoint and stops cleanly.

    ``cfg.train.out`` must be new or empty, or the run folder of ``resume``; with ``overwrite``
    (``"move"``/True or ``"delete"``) an earlier run in it is moved aside or removed first.

    Started by ``torchrun`` (``WORLD_SIZE`` > 1), it joins the process group (NCCL on CUDA, gloo on
    the CPU), trains with DistributedDataParallel and leaves the group at the end.
    """
    cfg.validate()
    plan = plan_run_dir(cfg.train.out, resume=resume, overwrite=overwrite)  # every rank refuses alike
    dist = distributed.setup(cfg.train.device)
    try:
        return _train(cfg, resume, log, dist, plan)
    finally:
        distributed.cleanup(dist)


def _train(cfg: RunConfig, resume: str | None, log, dist: DistInfo, plan) -> Path:
    import yaml

    from lumachrome.imageio import save_image

    main = dist.is_main
    if not main:
        log = _quiet  # rank 0 speaks for the group
    per_rank = distributed.per_rank_batch_size(cfg.train.batch_size, dist.world_size)
    device = dist.device
    seed_everything(cfg.train.seed)  # the same on every rank: identical initial weights
    run_dir = Path(cfg.train.out)
    ckpt = None
    if resume:
        ckpt = load_checkpoint(resume)
        saved = RunConfig.from_dict(ckpt.state["config"], where=str(ckpt.path))
        # The architecture must match the checkpoint; the loop length/logging may change.
        if saved.model != cfg.model:
            log(f"resume: using the model configuration stored in {ckpt.path}")
            cfg.model = saved.model
    if main:
        prepare_run_dir(plan, resume_step=ckpt.step if ckpt is not None else None, log=log)
        (run_dir / "config.yaml").write_text(yaml.safe_dump(cfg.to_dict(), sort_keys=False))

    data = make_train_data(cfg, device, dist, start_step=ckpt.step if ckpt is not None else 0, log=log)
    val = load_val_set(cfg, log=log) if main else None
    model, args, class_weights = build_model(cfg, data if ckpt is None else None, device)
    if ckpt is not None and cfg.model.head == "classification":
        class_weights = _weights_from_state(ckpt.model, cfg)
    trainer = SupervisedTrainer(model, cfg, device, class_weights=class_weights)
    spec = model_spec(cfg, args)
    if dist.enabled and device.type != "cuda" and any(
            isinstance(m, torch.nn.modules.batchnorm._BatchNorm) for m in model.modules()):
        log("note: BatchNorm statistics are per rank on the CPU (PyTorch's SyncBatchNorm needs CUDA); "
            "use model.args.norm 'group' for results independent of the number of processes")

    start = 0
    if ckpt is not None:
        # The checkpoint state is global (weights, optimiser, step, pack batcher), so a run may resume
        # with another number of processes.
        trainer.load_state(ckpt.model, ckpt.optimizer_state(), ckpt.state.get("scheduler"), ckpt.ema)
        start = ckpt.step
        ckpt.restore_rng()
        if data.state is not None and "data" in ckpt.state.get("extra", {}):
            data.state.load_state_dict(ckpt.state["extra"]["data"])
        was = ckpt.state.get("extra", {}).get("world_size", 1)
        log(f"resumed from {ckpt.path} at step {start}"
            + (f" (saved by {was} processes, now {dist.world_size})" if was != dist.world_size else ""))
    if dist.enabled:
        # Per-rank randomness (folder augmentation in the main process, dropout); the weights were
        # initialised identically above and DDP broadcast rank 0's anyway.
        torch.manual_seed(distributed.rank_seed(cfg.train.seed, dist.rank, start))

    epoch_steps = cfg.train.epoch_steps or max(1, data.num_images // cfg.train.batch_size)
    writer = summary_writer(run_dir / "tb", purge_step=start if ckpt is not None else None) if main else NullWriter()
    procs = (f", {dist.world_size} processes ({dist.backend}) x {per_rank} images per step"
             if dist.enabled else "")
    log(f"training {cfg.model.architecture}/{cfg.model.head} on {data.num_images} images, device {device}{procs}, "
        f"{sum(p.numel() for p in model.parameters()) / 1e6:.2f}M parameters -> {run_dir}")

    def checkpoint(step: int) -> Path | None:
        if not main:
            return None
        extra = {"data": data.state.state_dict()} if data.state is not None else {}
        extra["world_size"] = dist.world_size
        return save_checkpoint(run_dir, step=step, epoch=step // epoch_steps, config=cfg.to_dict(),
                               model_spec=spec, extra=extra, keep=cfg.train.keep_checkpoints,
                               **trainer.state_for_checkpoint())

    def end_of_epoch(step: int) -> None:
        epoch = step // epoch_steps
        if val is not None:  # rank 0 only
            metrics, pred = validate(trainer.eval_model, val, device)
            for k, v in metrics.items():
                writer.add_scalar(f"val/{k}", v, step)
            with open(run_dir / "metrics.jsonl", "a") as f:
                f.write(json.dumps({"step": step, "epoch": epoch, **metrics}) + "\n")
            save_image(run_dir / "samples" / f"epoch-{epoch:03d}.png", sample_grid(val, pred, cfg.train.samples))
            log(f"epoch {epoch} (step {step}): " + ", ".join(f"{k} {v:.4g}" for k, v in metrics.items()))
        distributed.barrier()  # the other ranks wait for rank 0's validation

    return run_steps(cfg, data, trainer, start, dist=dist, writer=writer, epoch_steps=epoch_steps,
                     end_of_epoch=end_of_epoch, checkpoint=checkpoint, log=log, run_dir=run_dir,
                     postfix=loss_lr_postfix)


def loss_lr_postfix(logs: dict[str, float]) -> dict[str, str]:
    """Progress-bar fields of the supervised trainers (plain and hint): loss and learning rate."""
    return {"loss": f"{logs['loss']:.4f}", "lr": f"{logs['lr']:.2e}"}


def run_steps(cfg: RunConfig, data, trainer, start: int, *, dist: DistInfo, writer, epoch_steps: int,
              end_of_epoch, checkpoint, log, run_dir: Path, postfix, on_log=None) -> Path:
    """The step loop every trainer shares: ``trainer.step`` on each batch, progress bar, TensorBoard
    scalars every ``log_every`` steps (``postfix(logs)`` for the bar, ``on_log(step, logs)`` for
    extra logging), ``end_of_epoch`` / ``checkpoint`` on schedule, Ctrl-C and the end of the run
    (:func:`close_run`). Returns ``run_dir``."""
    from tqdm.auto import tqdm

    main = dist.is_main
    step = start
    bar = tqdm(total=cfg.train.steps, initial=start, disable=not (cfg.train.progress and main), unit="step",
               dynamic_ncols=True)
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
    distributed.barrier()  # when train() returns on any rank, rank 0's files are complete
    return run_dir


def close_run(step: int, checkpoint, bar, writer, *, main: bool, log, run_dir: Path, name: str,
              interrupted: bool = False) -> None:
    """End of a training loop (every trainer): close the bar, save the last checkpoint, close
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


def _weights_from_state(model_sd: dict[str, torch.Tensor], cfg: RunConfig) -> torch.Tensor | None:
    from lumachrome.color.bins import rebalance_weights

    prior = model_sd.get("prior")
    return rebalance_weights(prior, cfg.model.rebalance_lambda) if prior is not None else None


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
