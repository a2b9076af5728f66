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
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from lumachrome.color.lab import normalize_ab
from lumachrome.precision import autocast, bf16_autocast_device
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


_BATCHNORMS = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d, nn.SyncBatchNorm)


def frozen_batchnorm_to_eval(model: nn.Module) -> None:
    """Put the BatchNorm layers whose affine parameters are all frozen (``optim.freeze``) in eval mode:
    frozen means frozen, running statistics included (a frozen layer in train mode would still
    normalise with batch statistics and move its running averages)."""
    for m in model.modules():
        if isinstance(m, _BATCHNORMS) and m.affine and not any(
                p.requires_grad for p in m.parameters(recurse=False)):
            m.eval()


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
        class_weights: ``(Q,)`` rebalancing weights (Zhang Eq. 4) for the ``ce`` loss, or, with
            ``train.rebalance``, for a regression loss (then ``rebalance_centers`` are the bins' ab).
        rebalance_centers: ``(Q, 2)`` ab bin centres of ``class_weights`` for a rebalanced regression.
        ddp: wrap the model in DistributedDataParallel; default (None): when a process group of
            more than one rank is initialised. BatchNorm layers become SyncBatchNorm on CUDA
            (PyTorch's SyncBatchNorm does not run on CPU tensors: on gloo/CPU each rank keeps
            per-rank batch statistics).
    """

    def __init__(self, model: nn.Module, cfg: RunConfig, device: torch.device,
                 class_weights: torch.Tensor | None = None, *, ddp: bool | None = None,
                 rebalance_centers: torch.Tensor | None = None) -> None:
        self.cfg = cfg
        self.device = device
        self.world_size = distributed.get_world_size()
        use_ddp = self.world_size > 1 if ddp is None else ddp
        self.model = model.to(device)
        #: bf16 autocast on CUDA and on CPUs with native bf16 (lumachrome.precision), else float32.
        self.autocast_device = bf16_autocast_device(device, cfg.train.amp)
        self.channels_last = self.autocast_device is not None and cfg.train.channels_last
        if self.channels_last:
            self.model = self.model.to(memory_format=torch.channels_last)
        if use_ddp and device.type == "cuda":
            # Same parameters and buffers (and state_dict keys) as BatchNorm2d; batch statistics are
            # computed over the global batch, as in a single-process run.
            self.model = nn.SyncBatchNorm.convert_sync_batchnorm(self.model)
        oc = cfg.optim
        self.optimizer = torch.optim.AdamW(param_groups(self.model, oc), lr=oc.lr, betas=tuple(oc.betas),
                                           fused=device.type == "cuda")
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(
            self.optimizer,
            lambda s: lr_lambda(s, total=cfg.train.steps, warmup=oc.warmup_steps, schedule=oc.schedule,
                                min_ratio=oc.min_lr_ratio),
        )
        self.ema = EMA(self.model, oc.ema) if oc.ema > 0 else None
        self.class_weights = class_weights.to(device) if class_weights is not None else None
        self.rebalance_centers = rebalance_centers.to(device) if rebalance_centers is not None else None
        if cfg.train.rebalance and cfg.train.loss != "ce" and (self.class_weights is None or self.rebalance_centers is None):
            raise ValueError("SupervisedTrainer: train.rebalance needs class_weights and rebalance_centers")
        self.perceptual = FeatureLoss().to(device) if cfg.train.perceptual > 0 else None
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
        return autocast(self.autocast_device)

    def compute_loss(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict[str, float]]:
        """The training loss on one batch (``L`` ``(B,1,H,W)`` and ``ab`` ``(B,2,H,W)``, raw)."""
        L = batch["L"].to(self.device, non_blocking=True)
        ab = batch["ab"].to(self.device, non_blocking=True)
        if self.channels_last:
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
            per_pixel = F.l1_loss(pred_n, gt_n, reduction="none")
        elif loss_name == "huber":
            per_pixel = F.huber_loss(pred_n, gt_n, delta=self.cfg.train.huber_delta, reduction="none")
        else:
            per_pixel = F.mse_loss(pred_n, gt_n, reduction="none")
        if self.cfg.train.rebalance:
            # Zhang et al.'s rebalancing applied to regression: each pixel's error counts with the weight
            # of its true colour's bin (E[w] = 1 over the training prior), so rare, saturated colours
            # pull the prediction as much as the common desaturated ones.
            from lumachrome.color.bins import hard_encode

            w = self.class_weights[hard_encode(ab.float(), self.rebalance_centers)]
            loss = (per_pixel * w.unsqueeze(1)).mean()
        else:
            loss = per_pixel.mean()
        logs = {"loss": float(loss.detach())}
        if self.perceptual is not None:
            with self._autocast():
                feat = self.perceptual(L.float(), out, ab)
            loss = loss + self.cfg.train.perceptual * feat
            logs = {"loss": float(loss.detach()), "feature_loss": float(feat.detach())}
        return loss, logs

    def step(self, batch: dict[str, torch.Tensor]) -> dict[str, float]:
        """One optimisation step; returns ``{"loss", "lr", "grad_norm"}``.

        In a distributed run ``loss`` is the mean over the ranks (the loss of the global batch) and
        every rank raises together when it is not finite.
        """
        self.net.train()
        frozen_batchnorm_to_eval(self.model)
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


class FeatureLoss(nn.Module):
    """Perceptual loss (Johnson et al. 2016) with ImageNet features: the mean L1 distance between the
    EfficientNet-Lite0 features (strides 4, 8 and 16, each divided by its channel RMS on the truth) of
    the colorized RGB and of the true RGB. The network is frozen, its BatchNorm in eval mode; it is a
    separate copy of the ImageNet weights (RGB input), not the colorizer's own encoder.

    ``L (B, 1, H, W)``, ``ab_pred``, ``ab_true`` ``(B, 2, H, W)`` raw -> scalar.
    """

    def __init__(self, variant: str = "lite0") -> None:
        super().__init__()
        from lumachrome.models.effnet import EfficientNetLite, pretrained_state_dict

        self.net = EfficientNetLite(variant)
        self.net.load_state_dict(pretrained_state_dict(variant), strict=True)
        self.net.eval()
        for p in self.net.parameters():
            p.requires_grad_(False)

    def train(self, mode: bool = True) -> "FeatureLoss":
        return super().train(False)

    def forward(self, L: torch.Tensor, ab_pred: torch.Tensor, ab_true: torch.Tensor) -> torch.Tensor:
        from lumachrome.color.lab import lab_to_rgb

        B = L.shape[0]
        rgb = lab_to_rgb(torch.cat((torch.cat((L, L)), torch.cat((ab_pred, ab_true))), dim=1), clip=False)
        pad_h, pad_w = (-rgb.shape[-2]) % 32, (-rgb.shape[-1]) % 32
        x = F.pad((rgb.clamp(0, 1) - 0.5) / 0.5, (0, pad_w, 0, pad_h), mode="replicate")
        feats, _ = self.net.features(x)
        total = 0.0
        for f in feats[1:4]:
            f = f.float()
            fp, ft = f[:B], f[B:].detach()
            scale = ft.pow(2).mean(dim=(0, 2, 3), keepdim=True).sqrt().clamp_min(1e-3)
            total = total + ((fp - ft) / scale).abs().mean()
        return total / 3


def param_groups(model: nn.Module, oc) -> list[dict[str, Any]]:
    """AdamW parameter groups: weight decay on weights only (not biases/norms), ``oc.freeze`` prefixes
    left out (``requires_grad`` False), ``oc.lr_mult`` prefixes at ``lr * mult`` (the longest matching
    prefix wins; the scheduler scales every group alike)."""
    groups: dict[tuple[float, bool], list[nn.Parameter]] = {}
    for name, p in model.named_parameters():
        if any(name.startswith(f) for f in oc.freeze):
            p.requires_grad_(False)
            continue
        prefixes = [k for k in oc.lr_mult if name.startswith(k)]
        mult = float(oc.lr_mult[max(prefixes, key=len)]) if prefixes else 1.0
        if mult == 0.0:
            p.requires_grad_(False)
            continue
        groups.setdefault((mult, p.ndim > 1), []).append(p)
    if not groups:
        from lumachrome.errors import ConfigError

        raise ConfigError("optim.freeze / optim.lr_mult leave no parameter to train")
    return [{"params": ps, "lr": oc.lr * mult, "weight_decay": oc.weight_decay if decays else 0.0}
            for (mult, decays), ps in sorted(groups.items(), key=lambda kv: (-kv[0][0], not kv[0][1]))]


def _strip_ddp_prefix(sd: dict[str, torch.Tensor], model: nn.Module) -> dict[str, torch.Tensor]:
    """Drop a ``module.`` prefix that a DDP-wrapped ``state_dict()`` (saved elsewhere) puts on every key."""
    if sd and all(k.startswith("module.") for k in sd) and not any(k.startswith("module.") for k in model.state_dict()):
        return {k[len("module."):]: v for k, v in sd.items()}
    return sd
