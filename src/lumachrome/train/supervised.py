"""The supervised colorization trainer: regression (L1 / Huber / L2 on ab) and classification
(rebalanced soft cross-entropy over quantised ab bins, Zhang et al. 2016).

One :class:`SupervisedTrainer` owns the model, its optimiser, schedule and weight EMA, and exposes
an explicit ``step(batch) -> dict of floats``. The loop around it (data, validation, checkpoints,
logging) lives in :mod:`lumachrome.train.loop`.

Under ``torchrun`` (a ``torch.distributed`` process group of more than one rank) the trainer wraps
the model in :class:`~torch.nn.parallel.DistributedDataParallel`: each rank computes the loss on its
share of the global batch and DDP averages the gradients, so the update is the single-process update
on the global batch (the losses used here are means over equally sized rank batches). ``model``,
the EMA and the checkpointed state stay the unwrapped network (no ``module.`` key prefix).
"""

from __future__ import annotations

import copy
import math
from contextlib import nullcontext
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from lumachrome.color.lab import normalize_ab
from lumachrome.train import distributed
from lumachrome.train.config import RunConfig

__all__ = ["EMA", "SupervisedTrainer", "lr_lambda"]


class EMA(nn.Module):
    """Exponential moving average of a model's weights (buffers are copied).

    The decay ramps up as ``min(decay, (1 + n) / (10 + n))`` so short runs are not dominated by
    the initial weights.
    """

    def __init__(self, model: nn.Module, decay: float) -> None:
        super().__init__()
        self.module = copy.deepcopy(model).eval()
        for p in self.module.parameters():
            p.requires_grad_(False)
        self.decay = decay
        self.register_buffer("num_updates", torch.zeros((), dtype=torch.long))

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        n = int(self.num_updates)
        d = min(self.decay, (1 + n) / (10 + n))
        for e, p in zip(self.module.parameters(), model.parameters()):
            e.lerp_(p.detach(), 1.0 - d)
        for e, b in zip(self.module.buffers(), model.buffers()):
            e.copy_(b)
        self.num_updates += 1


def lr_lambda(step: int, *, total: int, warmup: int, schedule: str, min_ratio: float) -> float:
    """Learning-rate multiplier: linear warm-up, then constant, linear or cosine decay to ``min_ratio``."""
    if warmup > 0 and step < warmup:
        return (step + 1) / warmup
    if schedule == "constant":
        return 1.0
    progress = min(1.0, (step - warmup) / max(1, total - warmup))
    if schedule == "linear":
        return 1.0 - (1.0 - min_ratio) * progress
    return min_ratio + (1.0 - min_ratio) * 0.5 * (1.0 + math.cos(math.pi * progress))


class SupervisedTrainer:
    """Regression or classification training of an ``L -> ab`` network.

    Args:
        model: a colorizer (takes raw L ``(B,1,H,W)``; returns raw ab or bin logits).
        cfg: the run configuration (loss, optimiser, schedule, EMA).
        device: where to train (this rank's device in a distributed run).
        class_weights: ``(Q,)`` rebalancing weights for the ``ce`` loss (Zhang Eq. 4).
        ddp: wrap the model in DistributedDataParallel; default (None): when a process group of
            more than one rank is initialised. BatchNorm layers become SyncBatchNorm on CUDA
            (PyTorch's SyncBatchNorm does not run on CPU tensors: on gloo/CPU each rank keeps
            per-rank batch statistics).
    """

    def __init__(self, model: nn.Module, cfg: RunConfig, device: torch.device,
                 class_weights: torch.Tensor | None = None, *, ddp: bool | None = None) -> None:
        self.cfg = cfg
        self.device = device
        self.world_size = distributed.get_world_size()
        use_ddp = self.world_size > 1 if ddp is None else ddp
        self.model = model.to(device)
        if device.type == "cuda" and cfg.train.channels_last:
            self.model = self.model.to(memory_format=torch.channels_last)
        if use_ddp and device.type == "cuda":
            # Same parameters and buffers (and state_dict keys) as BatchNorm2d; batch statistics are
            # computed over the global batch, as in a single-process run.
            self.model = nn.SyncBatchNorm.convert_sync_batchnorm(self.model)
        decay, no_decay = [], []
        for name, p in self.model.named_parameters():
            (no_decay if p.ndim <= 1 else decay).append(p)
        oc = cfg.optim
        self.optimizer = torch.optim.AdamW(
            [{"params": decay, "weight_decay": oc.weight_decay}, {"params": no_decay, "weight_decay": 0.0}],
            lr=oc.lr, betas=tuple(oc.betas), fused=device.type == "cuda",
        )
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(
            self.optimizer,
            lambda s: lr_lambda(s, total=cfg.train.steps, warmup=oc.warmup_steps, schedule=oc.schedule,
                                min_ratio=oc.min_lr_ratio),
        )
        self.ema = EMA(self.model, oc.ema) if oc.ema > 0 else None
        self.class_weights = class_weights.to(device) if class_weights is not None else None
        self.amp = cfg.train.amp and device.type == "cuda"
        # The module that runs the training forward: DDP's wrapper (its backward hooks all-reduce the
        # gradients into the shared parameters) or the model itself. DDP broadcasts rank 0's
        # parameters and buffers at construction, so every rank starts from the same weights.
        self.net: nn.Module = self.model
        if use_ddp:
            from torch.nn.parallel import DistributedDataParallel

            # Buffers (BatchNorm running statistics, bin centres) are synchronised from rank 0.
            self.net = DistributedDataParallel(
                self.model, device_ids=[device.index] if device.type == "cuda" else None)

    # The model used for validation and export: the EMA when there is one.
    @property
    def eval_model(self) -> nn.Module:
        return self.ema.module if self.ema is not None else self.model

    def _autocast(self):
        return torch.autocast("cuda", dtype=torch.bfloat16) if self.amp else nullcontext()

    def compute_loss(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict[str, float]]:
        """The training loss on one batch (``L`` ``(B,1,H,W)`` and ``ab`` ``(B,2,H,W)``, raw)."""
        L = batch["L"].to(self.device, non_blocking=True)
        ab = batch["ab"].to(self.device, non_blocking=True)
        if self.device.type == "cuda" and self.cfg.train.channels_last:
            L = L.contiguous(memory_format=torch.channels_last)
        loss_name = self.cfg.train.loss
        with self._autocast():
            out = self.net(L)
        out = out.float()
        if loss_name == "ce":
            from lumachrome.color.bins import pixel_weights, soft_encode, weighted_soft_cross_entropy

            centers = self.model.ab_centers
            target = soft_encode(ab, centers)
            weights = pixel_weights(target, self.class_weights) if self.class_weights is not None else None
            loss = weighted_soft_cross_entropy(out, target, weights)
            return loss, {"loss": float(loss.detach())}
        pred_n, gt_n = normalize_ab(out), normalize_ab(ab)
        if loss_name == "l1":
            loss = F.l1_loss(pred_n, gt_n)
        elif loss_name == "huber":
            loss = F.huber_loss(pred_n, gt_n, delta=self.cfg.train.huber_delta)
        else:
            loss = F.mse_loss(pred_n, gt_n)
        return loss, {"loss": float(loss.detach())}

    def step(self, batch: dict[str, torch.Tensor]) -> dict[str, float]:
        """One optimisation step; returns ``{"loss", "lr", "grad_norm"}``.

        In a distributed run ``loss`` is the mean over the ranks (the loss of the global batch) and
        every rank raises together when it is not finite.
        """
        self.net.train()
        loss, logs = self.compute_loss(batch)
        if self.world_size > 1:
            global_loss = distributed.all_reduce_mean(loss.detach())
            logs["loss"] = float(global_loss)
            finite = bool(torch.isfinite(global_loss))
        else:
            finite = bool(torch.isfinite(loss))
        if not finite:
            raise FloatingPointError(f"non-finite loss {logs['loss']}")
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        clip = self.cfg.optim.grad_clip
        # DDP has already averaged the gradients in the shared parameters: the norm is global.
        gn = torch.nn.utils.clip_grad_norm_(self.model.parameters(), clip if clip > 0 else float("inf"))
        self.optimizer.step()
        self.scheduler.step()
        if self.ema is not None:
            self.ema.update(self.model)
        logs["lr"] = self.optimizer.param_groups[0]["lr"]
        logs["grad_norm"] = float(gn)
        return logs

    def state_for_checkpoint(self) -> dict[str, Any]:
        return {"model": self.model, "optimizer": self.optimizer, "scheduler": self.scheduler, "ema": self.ema}

    def load_state(self, model_sd: dict, optim_sd: dict, sched_sd: dict | None, ema_sd: dict | None) -> None:
        self.model.load_state_dict(_strip_ddp_prefix(model_sd, self.model), strict=True)
        self.optimizer.load_state_dict(optim_sd)
        if sched_sd is not None:
            self.scheduler.load_state_dict(sched_sd)
        if self.ema is not None and ema_sd is not None:
            self.ema.load_state_dict(ema_sd, strict=True)


def _strip_ddp_prefix(sd: dict[str, torch.Tensor], model: nn.Module) -> dict[str, torch.Tensor]:
    """Drop a ``module.`` prefix that a DDP-wrapped ``state_dict()`` (saved elsewhere) puts on every key."""
    if sd and all(k.startswith("module.") for k in sd) and not any(k.startswith("module.") for k in model.state_dict()):
        return {k[len("module."):]: v for k, v in sd.items()}
    return sd
