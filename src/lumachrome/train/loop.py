"""The supervised regime around :class:`SupervisedTrainer`: training data, the validation set, sample grids.

The run itself (folder rules, resume, checkpoints, the step loop, the export) is the one orchestrator,
:func:`lumachrome.train.run.run`; :class:`SupervisedRegime` is what it needs from this regime.
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

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from lumachrome.color.lab import lab_to_rgb
from lumachrome.errors import ConfigError, DataError
from lumachrome.models import create_model
from lumachrome.models.io import state_differences
from lumachrome.train import distributed
from lumachrome.train.config import RunConfig
from lumachrome.train.distributed import DistInfo
from lumachrome.train.run import Built, Regime, model_spec, run
from lumachrome.train.supervised import SupervisedTrainer

__all__ = ["SupervisedRegime", "train", "validate"]


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


def _resize_uint8(images: torch.Tensor, size: int, chunk: int = 256) -> torch.Tensor:
    """uint8 ``(N, C, h, w)`` -> uint8 ``(N, C, size, size)`` (bilinear, antialiased), ``chunk`` images at a time."""
    out = torch.empty((images.shape[0], images.shape[1], size, size), dtype=torch.uint8)
    for i in range(0, images.shape[0], chunk):
        out[i:i + chunk] = torch.nn.functional.interpolate(
            images[i:i + chunk].float(), size=(size, size), mode="bilinear", antialias=True, align_corners=False
        ).round().clamp(0, 255).to(torch.uint8)
    return out


def _pack_batches(cfg: RunConfig, device: torch.device, dist: DistInfo | None = None) -> TrainData:
    from lumachrome.data.pack import load_pack_tensor
    from lumachrome.data.tensor_batches import TensorBatcher

    tensors = [load_pack_tensor(p) for p in cfg.data.pack]
    sizes = {t.shape[-1] for t in tensors}
    if len(sizes) > 1:
        # Packs of different sizes are resized to the largest before concatenation, in chunks: a whole
        # pack in float32 at the larger size would need 4 bytes per value (17k images at 256 px: 13.6 GB).
        top = max(sizes)
        tensors = [t if t.shape[-1] == top else _resize_uint8(t, top) for t in tensors]
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
    from lumachrome.models.io import read_weights_file

    path = Path(source)
    if path.is_dir():
        path = path / "model.safetensors"
    if not path.is_file():
        raise ConfigError(f"model.init: {source}: no model.safetensors found")
    try:
        src = read_weights_file(path)  # a model folder's: with its base model's tensors, if any
    except Exception as e:  # noqa: BLE001 - corrupt file, missing or changed base
        raise ConfigError(f"model.init: {path}: cannot read safetensors ({' '.join(str(e).split())})") from None
    own = model.state_dict()
    skipped = lambda k: any(k.startswith(p) for p in skip)  # noqa: E731
    missing, extra, shape = state_differences({k: tuple(v.shape) for k, v in own.items() if not skipped(k)},
                                              {k: tuple(v.shape) for k, v in src.items() if not skipped(k)})
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


# ----------------------------------------------------------------------------------------- the regime
class SupervisedRegime(Regime):
    """The supervised regime of :func:`lumachrome.train.run.run`: :class:`SupervisedTrainer` on photos
    (folders or packs), validation on ``data.val`` (metrics and a sample grid per epoch)."""

    names = ("supervised",)

    def check(self, cfg: RunConfig, dist: DistInfo) -> None:
        distributed.per_rank_batch_size(cfg.train.batch_size, dist.world_size)  # ConfigError if uneven

    def build(self, cfg: RunConfig, dist: DistInfo, *, ckpt: Any, log) -> Built:
        device = dist.device
        data = make_train_data(cfg, device, dist, start_step=ckpt.step if ckpt is not None else 0, log=log)
        val = load_val_set(cfg, log=log) if dist.is_main else None
        model, args, class_weights = build_model(cfg, data if ckpt is None else None, device)
        if ckpt is not None and cfg.model.head == "classification":
            class_weights = _weights_from_state(ckpt.model, cfg)
        centers = None
        if cfg.train.rebalance and cfg.model.head != "classification":
            from lumachrome.color.bins import ABGamut, empirical_prior, rebalance_weights

            centers = ABGamut.build().centers
            saved = ckpt.state.get("extra", {}).get("rebalance_prior") if ckpt is not None else None
            if saved is not None:  # resumed: the prior of the run's start, not a new estimate
                prior = torch.tensor(saved, dtype=torch.float32)
            else:
                n_batches = max(1, cfg.model.prior_images // cfg.train.batch_size)
                batches = (next(data.batches)["ab"].cpu() for _ in range(n_batches))
                prior = distributed.all_reduce_mean(empirical_prior(batches, centers))
            self._rebalance_prior = prior
            class_weights = rebalance_weights(prior, cfg.model.rebalance_lambda)
        trainer = SupervisedTrainer(model, cfg, device, class_weights=class_weights, rebalance_centers=centers)
        return Built(trainer, model_spec(cfg, args), data, val)

    def extra_state(self, cfg: RunConfig, built: Built, dist: DistInfo) -> dict[str, Any]:
        extra = super().extra_state(cfg, built, dist)
        prior = getattr(self, "_rebalance_prior", None)
        if prior is not None:
            extra["rebalance_prior"] = [float(v) for v in prior]
        return extra

    def resumed(self, ckpt: Any, step: int, dist: DistInfo) -> str:
        was = ckpt.state.get("extra", {}).get("world_size", 1)
        return (f"resumed from {ckpt.path} at step {step}"
                + (f" (saved by {was} processes, now {dist.world_size})" if was != dist.world_size else ""))

    def distributed_note(self, built: Built, dist: DistInfo) -> str | None:
        if dist.device.type != "cuda" and any(
                isinstance(m, torch.nn.modules.batchnorm._BatchNorm) for m in built.trainer.model.modules()):
            return ("note: BatchNorm statistics are per rank on the CPU (PyTorch's SyncBatchNorm needs CUDA); "
                    "use model.args.norm 'group' for results independent of the number of processes")
        return None

    def describe(self, cfg: RunConfig, built: Built, dist: DistInfo, run_dir: Path) -> str:
        per_rank = distributed.per_rank_batch_size(cfg.train.batch_size, dist.world_size)
        procs = (f", {dist.world_size} processes ({dist.backend}) x {per_rank} images per step"
                 if dist.enabled else "")
        n = sum(p.numel() for p in built.trainer.model.parameters()) / 1e6
        return (f"training {cfg.model.architecture}/{cfg.model.head} on {built.data.num_images} images, device "
                f"{dist.device}{procs}, {n:.2f}M parameters -> {run_dir}")

    def validate(self, cfg: RunConfig, built: Built, device: torch.device) -> tuple[dict[str, float], np.ndarray]:
        metrics, pred = validate(built.trainer.eval_model, built.val, device)
        return metrics, sample_grid(built.val, pred, cfg.train.samples)


def train(cfg: RunConfig, resume: str | None = None, *, overwrite: str | bool | None = None, log=print) -> Path:
    """Run a supervised training (:func:`lumachrome.train.run.run` with :class:`SupervisedRegime`); returns
    the run folder. Ctrl-C saves a checkpoint and stops cleanly.

    ``cfg.train.out`` must be new or empty, or the run folder of ``resume``; with ``overwrite``
    (``"move"``/True or ``"delete"``) an earlier run in it is moved aside or removed first.

    Started by ``torchrun`` (``WORLD_SIZE`` > 1), it joins the process group (NCCL on CUDA, gloo on
    the CPU), trains with DistributedDataParallel and leaves the group at the end.
    """
    return run(cfg, SupervisedRegime(), resume, overwrite=overwrite, log=log)


def _weights_from_state(model_sd: dict[str, torch.Tensor], cfg: RunConfig) -> torch.Tensor | None:
    from lumachrome.color.bins import rebalance_weights

    prior = model_sd.get("prior")
    return rebalance_weights(prior, cfg.model.rebalance_lambda) if prior is not None else None
