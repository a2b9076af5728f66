"""Adversarial training regimes: pix2pix (conditional GAN) and CycleGAN.

``lumachrome train --train.regime pix2pix|cyclegan`` (or ``train: {regime: ...}`` in the config file)
runs :func:`train_gan` instead of the supervised loop. Both share the foundation's pieces: the
configuration (:class:`~lumachrome.train.config.RunConfig`, the ``gan`` section holds the regime's
options), data (photo packs / folders through :mod:`lumachrome.train.loop`, domain packs through
:mod:`lumachrome.data.domain_pack`), models (the registry), atomic checkpoints
(:mod:`lumachrome.train.checkpoint`), torchrun/DDP (:mod:`lumachrome.train.distributed`), and export
(``lumachrome export RUN -o DIR`` writes the generator as a model folder).

pix2pix (Isola et al. 2017)
---------------------------
``G* = arg min_G max_D  lambda_gan * L_cGAN(G, D) + lambda_l1 * L_L1(G)`` (Eq. 4, ``lambda_l1 = 100``,
``lambda_gan = 1``). ``D`` is a PatchGAN that sees the input concatenated with the real or generated
output. Two tasks, chosen by ``model.architecture``:

* **colorization** (``unet`` and its presets, i.e. :class:`~lumachrome.models.unet.UNetColorizer`):
  ``L -> ab`` on photo packs/folders; D sees ``(L/50 - 1, ab/110)``; L1 on ``ab/110`` as the supervised
  trainer. ``model.init`` starts from a model folder (e.g. the shipped ``photo`` model). The export
  is a normal colorization model folder (loads with ``Colorizer.load``).
* **image-to-image** (``unet_gen`` / ``resnet_gen`` / ``effunet_gen``): ``A -> B`` on paired domain
  packs (``data.pack``); values in ``[-1, 1]``; the export carries ``"task": "translate"``.
  ``effunet_gen`` (:class:`~lumachrome.models.effnet.EffUNetGenerator`) starts from the ImageNet
  encoder (``model.pretrained``) or from a colorizer folder (``model.init`` = the shipped ``photo``
  model, ``model.init_skip: [head.]``).

``gan.lambda_gan 0`` is the **L1-only baseline** (no discriminator is built).

CycleGAN (Zhu et al. 2017)
--------------------------
Generators ``G: A -> B`` and ``F: B -> A``, discriminators ``D_B`` (real B vs G(A)) and ``D_A``.
``L = L_GAN(G, D_B) + L_GAN(F, D_A) + lambda_cycle (|F(G(a)) - a|_1 + |G(F(b)) - b|_1)
+ lambda_identity * lambda_cycle (|G(b) - b|_1 + |F(a) - a|_1)`` (Eq. 3 and section 5.2; the identity
term needs A and B to have the same channel count and is skipped otherwise). The discriminators are
trained on a history of 50 generated images (Shrivastava et al. 2017, :class:`ImagePool`); the
adversarial loss is least squares (``gan.gan_loss lsgan``, as the paper) in the shipped recipe.

Both: Adam(W) with one parameter group per network side, a constant learning rate for the first
``gan.decay_start`` of the steps then a linear decay to 0 (CycleGAN's schedule); ``vanilla``
(non-saturating BCE), ``lsgan`` or ``hinge`` losses; bf16 autocast and channels-last on CUDA and on
CPUs with native bf16 (``train.amp``, ``train.channels_last``; :mod:`lumachrome.precision`).

Failure modes are made visible: every ``train.log_every`` steps the loss terms (adversarial, L1,
cycle, identity, the discriminators' mean logits on real and fake) go to TensorBoard and to
``losses.jsonl``; each epoch writes validation metrics (``metrics.jsonl``) including two guards:
``lum_corr`` (correlation between the input's and the output's lightness: negative means colour /
tone inversion) and ``diversity`` (mean standard deviation across images: near 0 means collapse),
and a sample grid ``samples/epoch-*.png`` (input | generated | target, and the cycle
reconstruction for CycleGAN). A non-finite loss stops the run with an error.

The checkpoint's model is a container of all the networks (``G.``, ``D.``, ``F.``, ``D_A.``, ``D_B.``
prefixes) with one optimiser; a resumed run continues with an empty image pool (as the reference code).
"""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from lumachrome.constants import REC601_LUMA
from lumachrome.errors import ConfigError, DataError
from lumachrome.precision import autocast, bf16_autocast_device
from lumachrome.train import distributed
from lumachrome.train.config import GAN_LOSSES, GENERATORS, RunConfig, validate_gan_config
from lumachrome.train.loop import sample_grid, validate
from lumachrome.train.run import Built, Regime, model_spec, run

__all__ = [
    "GAN_LOSSES",
    "GENERATORS",
    "CycleGANTrainer",
    "GANLoss",
    "GanRegime",
    "ImagePool",
    "Pix2PixTrainer",
    "gan_lr_lambda",
    "train_gan",
    "validate_gan_config",
]

def gan_lr_lambda(step: int, *, total: int, warmup: int = 0, decay_start: float = 0.5) -> float:
    """LR multiplier: linear warm-up, constant until ``decay_start * total``, then linear to 0 at ``total``
    (CycleGAN: 100 epochs constant + 100 epochs of linear decay = ``decay_start`` 0.5)."""
    if warmup > 0 and step < warmup:
        return (step + 1) / warmup
    start = max(warmup, int(round(decay_start * total)))
    if step < start or total <= start:
        return 1.0
    return max(0.0, 1.0 - (step - start) / (total - start))


# ------------------------------------------------------------------------------------- losses
class GANLoss:
    """Adversarial losses on discriminator logits.

    * ``vanilla``: binary cross-entropy (Goodfellow et al. 2014); the generator uses the
      non-saturating form ``-log D(G(x))``.
    * ``lsgan``: least squares, targets 1 (real) / 0 (fake) (Mao et al. 2017), as CycleGAN.
    * ``hinge``: ``D: relu(1 - real) + relu(1 + fake)``; ``G: -fake`` (Lim & Ye 2017; Miyato et al. 2018).

    The discriminator loss is halved as in the pix2pix/CycleGAN code (D learns slower than G).
    """

    def __init__(self, kind: str = "vanilla") -> None:
        if kind not in GAN_LOSSES:
            raise ConfigError(f"GAN loss '{kind}' is not one of {', '.join(GAN_LOSSES)}")
        self.kind = kind

    def d_loss(self, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
        real, fake = real.float(), fake.float()
        if self.kind == "vanilla":
            lr = F.binary_cross_entropy_with_logits(real, torch.ones_like(real))
            lf = F.binary_cross_entropy_with_logits(fake, torch.zeros_like(fake))
        elif self.kind == "lsgan":
            lr, lf = F.mse_loss(real, torch.ones_like(real)), F.mse_loss(fake, torch.zeros_like(fake))
        else:
            lr, lf = F.relu(1.0 - real).mean(), F.relu(1.0 + fake).mean()
        return 0.5 * (lr + lf)

    def g_loss(self, fake: torch.Tensor) -> torch.Tensor:
        fake = fake.float()
        if self.kind == "vanilla":
            return F.binary_cross_entropy_with_logits(fake, torch.ones_like(fake))
        if self.kind == "lsgan":
            return F.mse_loss(fake, torch.ones_like(fake))
        return -fake.mean()


class ImagePool:
    """History of generated images for the discriminator (Shrivastava et al. 2017; CycleGAN section 4).

    Until ``size`` images are stored, every query image is stored and returned. Then each image is,
    with probability 1/2, returned as is, or swapped with a random stored one (which is returned and
    replaced by the new image). ``size = 0`` returns the query unchanged. Draws come from a seeded
    generator, so runs are reproducible.
    """

    def __init__(self, size: int = 50, seed: int = 0) -> None:
        self.size = int(size)
        self.images: list[torch.Tensor] = []
        self.rng = random.Random(seed)

    def query(self, images: torch.Tensor) -> torch.Tensor:
        if self.size <= 0:
            return images
        out = []
        for img in images.detach():
            img = img.unsqueeze(0)
            if len(self.images) < self.size:
                self.images.append(img.clone())
                out.append(img)
            elif self.rng.random() < 0.5:
                i = self.rng.randrange(self.size)
                out.append(self.images[i].clone())
                self.images[i] = img.clone()
            else:
                out.append(img)
        return torch.cat(out, 0)


def set_requires_grad(nets: list[nn.Module | None], flag: bool) -> None:
    for net in nets:
        if net is not None:
            for p in net.parameters():
                p.requires_grad_(flag)


# -------------------------------------------------------------------------------- containers
class _CycleGenerators(nn.Module):
    """Runs both generators for one CycleGAN step in one forward (one DDP forward per backward)."""

    def __init__(self, G: nn.Module, F_: nn.Module, identity: bool) -> None:
        super().__init__()
        self.G, self.F = G, F_
        self.identity = identity

    def forward(self, A: torch.Tensor, B: torch.Tensor) -> dict[str, torch.Tensor]:
        fake_B = self.G(A)
        fake_A = self.F(B)
        out = {"fake_B": fake_B, "rec_A": self.F(fake_B), "fake_A": fake_A, "rec_B": self.G(fake_A)}
        if self.identity:
            out["idt_B"] = self.G(B)  # G should leave a B image unchanged
            out["idt_A"] = self.F(A)
        return out


class _PairDiscriminators(nn.Module):
    """``D_A`` and ``D_B`` on real and (pooled) fake images, each in one batched call."""

    def __init__(self, D_A: nn.Module, D_B: nn.Module) -> None:
        super().__init__()
        self.D_A, self.D_B = D_A, D_B

    def forward(self, real_A, fake_A, real_B, fake_B) -> tuple[torch.Tensor, ...]:
        la = self.D_A(torch.cat([real_A, fake_A], 0))
        lb = self.D_B(torch.cat([real_B, fake_B], 0))
        na, nb = real_A.shape[0], real_B.shape[0]
        return la[:na], la[na:], lb[:nb], lb[nb:]


def _ddp(module: nn.Module, device: torch.device, enabled: bool) -> nn.Module:
    if not enabled:
        return module
    from torch.nn.parallel import DistributedDataParallel

    return DistributedDataParallel(module, device_ids=[device.index] if device.type == "cuda" else None)


# ------------------------------------------------------------------------------------ trainers
class _GanTrainerBase:
    """What both trainers share: optimiser (one param group per side), schedule, EMA, autocast."""

    def __init__(self, cfg: RunConfig, device: torch.device, nets: nn.ModuleDict, g_names: list[str],
                 d_names: list[str], ddp: bool | None) -> None:
        from lumachrome.train.supervised import EMA

        self.cfg, self.device = cfg, device
        self.world_size = distributed.get_world_size()
        self.use_ddp = self.world_size > 1 if ddp is None else ddp
        self.nets = nets.to(device)
        #: bf16 autocast on CUDA and on CPUs with native bf16 (AMX, AVX512-BF16: lumachrome.precision), with
        #: channels-last tensors there, as the supervised trainer; float32 elsewhere.
        self.autocast_device = bf16_autocast_device(device, cfg.train.amp)
        self.channels_last = self.autocast_device is not None and cfg.train.channels_last
        if self.channels_last:
            self.nets = self.nets.to(memory_format=torch.channels_last)
        if self.use_ddp and device.type == "cuda":
            self.nets = nn.SyncBatchNorm.convert_sync_batchnorm(self.nets)
        oc, gc = cfg.optim, cfg.gan
        groups = [{"params": [p for n in g_names for p in self.nets[n].parameters()], "lr": oc.lr, "name": "G"}]
        d_params = [p for n in d_names for p in self.nets[n].parameters()]
        if d_params:
            groups.append({"params": d_params, "lr": gc.d_lr or oc.lr, "name": "D"})
        self.optimizer = torch.optim.AdamW(groups, lr=oc.lr, betas=tuple(oc.betas), weight_decay=oc.weight_decay)
        total, warm = cfg.train.steps, oc.warmup_steps
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(
            self.optimizer, lambda s: gan_lr_lambda(s, total=total, warmup=warm, decay_start=gc.decay_start))
        self.ema = EMA(self.nets["G"], oc.ema) if oc.ema > 0 else None
        self.loss = GANLoss(gc.gan_loss)
        self.steps_done = 0

    @property
    def G(self) -> nn.Module:
        return self.nets["G"]

    @property
    def eval_model(self) -> nn.Module:
        """The generator used for validation and export (its EMA when there is one)."""
        return self.ema.module if self.ema is not None else self.nets["G"]

    def _autocast(self):
        return autocast(self.autocast_device)

    def _to(self, x: torch.Tensor) -> torch.Tensor:
        x = x.to(self.device, non_blocking=True)
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        return x

    def _backward_step(self, loss: torch.Tensor, group: str) -> float:
        loss.backward()
        clip = self.cfg.optim.grad_clip
        params = [p for g in self.optimizer.param_groups if g.get("name") == group for p in g["params"]
                  if p.grad is not None]
        gn = torch.nn.utils.clip_grad_norm_(params, clip if clip > 0 else float("inf")) if params else torch.zeros(())
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        return float(gn)

    def _finish(self, logs: dict[str, float]) -> dict[str, float]:
        """Global (rank-mean) logs, finiteness check, schedule and EMA after both phases."""
        keys = sorted(logs)
        vals = torch.tensor([logs[k] for k in keys], dtype=torch.float64)
        if self.world_size > 1:
            vals = distributed.all_reduce_mean(vals.to(self.device)).cpu()
        out = dict(zip(keys, vals.tolist()))
        bad = [k for k, v in out.items() if not np.isfinite(v)]
        if bad:
            raise FloatingPointError(f"non-finite loss at step {self.steps_done + 1}: "
                                     + ", ".join(f"{k} {out[k]}" for k in bad))
        self.scheduler.step()
        if self.ema is not None:
            self.ema.update(self.nets["G"])
        self.steps_done += 1
        out["lr"] = self.optimizer.param_groups[0]["lr"]
        return out

    def state_for_checkpoint(self) -> dict[str, Any]:
        return {"model": self.nets, "optimizer": self.optimizer, "scheduler": self.scheduler, "ema": self.ema}

    def load_state(self, model_sd: dict, optim_sd: dict, sched_sd: dict | None, ema_sd: dict | None) -> None:
        self.nets.load_state_dict(model_sd, strict=True)
        self.optimizer.load_state_dict(optim_sd)
        if sched_sd is not None:
            self.scheduler.load_state_dict(sched_sd)
        if self.ema is not None and ema_sd is not None:
            self.ema.load_state_dict(ema_sd, strict=True)


class Pix2PixTrainer(_GanTrainerBase):
    """pix2pix: ``step(batch)`` updates D (if any) then G on one batch; returns the loss terms.

    ``batch``: ``{"L", "ab"}`` raw Lab (colorization: ``G`` is a colorizer taking raw L) or ``{"A", "B"}``
    in ``[-1, 1]`` (image-to-image). ``D`` is None for the L1-only baseline (``lambda_gan = 0``).
    """

    def __init__(self, G: nn.Module, D: nn.Module | None, cfg: RunConfig, device: torch.device, *,
                 colorize: bool, ddp: bool | None = None) -> None:
        nets = nn.ModuleDict({"G": G} if D is None else {"G": G, "D": D})
        super().__init__(cfg, device, nets, ["G"], ["D"] if D is not None else [], ddp)
        self.colorize = colorize
        self.g_net = _ddp(self.nets["G"], device, self.use_ddp)
        self.d_net = _ddp(self.nets["D"], device, self.use_ddp) if D is not None else None

    @property
    def D(self) -> nn.Module | None:
        return self.nets["D"] if "D" in self.nets else None

    def _inputs(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(network input, condition shown to D, real target), targets in the network's scale."""
        if self.colorize:
            from lumachrome.color.lab import normalize_ab, normalize_l

            L = self._to(batch["L"])
            return L, normalize_l(L), normalize_ab(self._to(batch["ab"]))
        A = self._to(batch["A"])
        return A, A, self._to(batch["B"])

    def _fake(self, x: torch.Tensor) -> torch.Tensor:
        from lumachrome.color.lab import normalize_ab

        with self._autocast():
            out = self.g_net(x)
        out = out.float()
        return normalize_ab(out) if self.colorize else out

    def step(self, batch: dict[str, torch.Tensor]) -> dict[str, float]:
        gc = self.cfg.gan
        self.nets.train()
        x, cond, real = self._inputs(batch)
        fake = self._fake(x)
        logs: dict[str, float] = {}
        adversarial = self.D is not None and gc.lambda_gan > 0
        if adversarial:
            # D: real pairs vs generated pairs, one batched call (Isola et al. Eq. 1).
            set_requires_grad([self.D], True)
            self.optimizer.zero_grad(set_to_none=True)
            with self._autocast():
                logits = self.d_net(torch.cat([torch.cat([cond, real], 1), torch.cat([cond, fake.detach()], 1)], 0))
            d_real, d_fake = logits.float().chunk(2, 0)
            loss_d = self.loss.d_loss(d_real, d_fake)
            logs.update(D=float(loss_d.detach()), d_real=float(d_real.detach().mean()),
                        d_fake=float(d_fake.detach().mean()))
            logs["grad_norm_d"] = self._backward_step(loss_d, "D")
            set_requires_grad([self.D], False)
        # G: L1 to the target + the adversarial term (not during the discriminator's warm-up).
        self.optimizer.zero_grad(set_to_none=True)
        loss_l1 = F.l1_loss(fake, real)
        loss_g = gc.lambda_l1 * loss_l1
        logs["G_l1"] = float(loss_l1.detach())
        if adversarial and self.steps_done >= gc.d_warmup:
            with self._autocast():
                g_logits = self.D(torch.cat([cond, fake], 1))
            loss_gan = self.loss.g_loss(g_logits)
            loss_g = loss_g + gc.lambda_gan * loss_gan
            logs["G_gan"] = float(loss_gan.detach())
        logs["G"] = float(loss_g.detach())
        logs["grad_norm_g"] = self._backward_step(loss_g, "G")
        if self.D is not None:
            set_requires_grad([self.D], True)
        return self._finish(logs)


class CycleGANTrainer(_GanTrainerBase):
    """CycleGAN: ``step({"A", "B"})`` updates G and F, then D_A and D_B on pooled fakes; returns the loss terms."""

    def __init__(self, G: nn.Module, F_: nn.Module, D_A: nn.Module, D_B: nn.Module, cfg: RunConfig,
                 device: torch.device, *, identity: bool, ddp: bool | None = None) -> None:
        nets = nn.ModuleDict({"G": G, "F": F_, "D_A": D_A, "D_B": D_B})
        super().__init__(cfg, device, nets, ["G", "F"], ["D_A", "D_B"], ddp)
        self.identity = identity and cfg.gan.lambda_identity > 0
        self.gens = _ddp(_CycleGenerators(self.nets["G"], self.nets["F"], self.identity), device, self.use_ddp)
        self.discs = _ddp(_PairDiscriminators(self.nets["D_A"], self.nets["D_B"]), device, self.use_ddp)
        seed = cfg.train.seed * 1000 + distributed.get_rank()
        self.pool_A = ImagePool(cfg.gan.pool_size, seed)
        self.pool_B = ImagePool(cfg.gan.pool_size, seed + 1)

    def step(self, batch: dict[str, torch.Tensor]) -> dict[str, float]:
        gc = self.cfg.gan
        self.nets.train()
        A, B = self._to(batch["A"]), self._to(batch["B"])
        D_A, D_B = self.nets["D_A"], self.nets["D_B"]
        # Generators (Zhu et al. Eq. 3 + identity), discriminators frozen.
        set_requires_grad([D_A, D_B], False)
        self.optimizer.zero_grad(set_to_none=True)
        with self._autocast():
            out = {k: v.float() for k, v in self.gens(A, B).items()}
            adv = self.steps_done >= gc.d_warmup
            g_gan_b = self.loss.g_loss(D_B(out["fake_B"])) if adv else torch.zeros((), device=self.device)
            g_gan_a = self.loss.g_loss(D_A(out["fake_A"])) if adv else torch.zeros((), device=self.device)
        cyc_a, cyc_b = F.l1_loss(out["rec_A"], A), F.l1_loss(out["rec_B"], B)
        loss_g = gc.lambda_gan * (g_gan_a + g_gan_b) + gc.lambda_cycle * (cyc_a + cyc_b)
        logs = {"G_gan_A": float(g_gan_a.detach()), "G_gan_B": float(g_gan_b.detach()),
                "cycle_A": float(cyc_a.detach()), "cycle_B": float(cyc_b.detach())}
        if self.identity:
            idt_a, idt_b = F.l1_loss(out["idt_A"], A), F.l1_loss(out["idt_B"], B)
            loss_g = loss_g + gc.lambda_cycle * gc.lambda_identity * (idt_a + idt_b)
            logs.update(idt_A=float(idt_a.detach()), idt_B=float(idt_b.detach()))
        logs["G"] = float(loss_g.detach())
        logs["grad_norm_g"] = self._backward_step(loss_g, "G")
        # Discriminators on real images and the history pool of fakes.
        set_requires_grad([D_A, D_B], True)
        fake_A = self.pool_A.query(out["fake_A"].detach())
        fake_B = self.pool_B.query(out["fake_B"].detach())
        with self._autocast():
            ra, fa, rb, fb = (t.float() for t in self.discs(A, fake_A, B, fake_B))
        loss_da, loss_db = self.loss.d_loss(ra, fa), self.loss.d_loss(rb, fb)
        logs.update(D_A=float(loss_da.detach()), D_B=float(loss_db.detach()),
                    d_real_B=float(rb.detach().mean()), d_fake_B=float(fb.detach().mean()))
        logs["grad_norm_d"] = self._backward_step(loss_da + loss_db, "D")
        return self._finish(logs)


# ---------------------------------------------------------------------------------------- data
class _Data:
    """Training batches, validation data and what the export needs to know about the domains."""

    def __init__(self) -> None:
        self.batches: Any = None
        self.state: Any = None  # object with state_dict()/load_state_dict(), or None
        self.num_images = 0
        self.val: dict[str, torch.Tensor] | None = None  # colorize: L/ab/rgb; translate: A (and B)
        self.in_channels = 1
        self.domain = ""
        self.a_channels: list[str] = []


def _translate_data(cfg: RunConfig, device: torch.device, dist, main: bool) -> _Data:
    from lumachrome.data.domain_pack import (PairedBatcher, UnpairedBatcher, center_batch, load_sides,
                                             read_domain_pack)

    if not cfg.data.pack:
        raise ConfigError("no training data: image-to-image regimes read domain packs (--data.pack FILE...)")
    paired = cfg.train.regime == "pix2pix"
    A, B, meta = load_sides(cfg.data.pack, paired=paired)
    d = _Data()
    d.in_channels, d.domain, d.a_channels = int(A.shape[1]), meta.domain, list(meta.a_channels)
    kind = PairedBatcher if paired else UnpairedBatcher
    extra = {"a_augment": line_augment(cfg, meta.a_channels, cfg.data.pack)} if paired and cfg.data.line_aug else {}
    n = int(A.shape[0])
    if n < cfg.train.batch_size or int(B.shape[0]) < cfg.train.batch_size:
        raise DataError(f"{', '.join(cfg.data.pack)}: {n} A / {int(B.shape[0])} B images, fewer than one batch "
                        f"({cfg.train.batch_size})")
    distributed.per_rank_batch_size(cfg.train.batch_size, dist.world_size)
    batcher = kind(A.to(device), B.to(device), cfg.data.size, cfg.train.batch_size, crop=cfg.gan.crop,
                   min_scale=cfg.data.min_scale, flip=cfg.data.flip, seed=cfg.train.seed, rank=dist.rank,
                   world_size=dist.world_size, **extra)
    d.batches, d.state, d.num_images = batcher, batcher, len(batcher)
    if main:
        if cfg.data.val_pack:
            vp = read_domain_pack(cfg.data.val_pack)
            if vp.A is None:
                raise DataError(f"{cfg.data.val_pack}: a validation pack needs side A")
            if vp.A.shape[1] != d.in_channels:
                raise DataError(f"{cfg.data.val_pack}: A has {vp.A.shape[1]} channels, the training packs "
                                f"{d.in_channels}")
            va, vb = vp.A, vp.B if vp.paired else None
        else:  # no hold-out: sample grids of training images (no metrics without pairs)
            va, vb = A, (B if paired else None)
        s = min(cfg.data.val_size, *va.shape[-2:])
        d.val = {"A": center_batch(va, s, cfg.data.val_images)}
        if vb is not None:
            d.val["B"] = center_batch(vb, s, cfg.data.val_images)
    return d


def line_augment(cfg: RunConfig, a_channels: list[str], packs: list[str]):
    """The :class:`~lumachrome.data.line_aug.LineAugment` of ``cfg.data`` (``data.line_aug``); a
    ConfigError unless the packs' A side is line art (``a_channels`` ``["line"]``)."""
    from lumachrome.data.line_aug import LineAugment

    if list(a_channels) != ["line"]:
        raise ConfigError(f"data.line_aug: {', '.join(map(str, packs))}: side A is {a_channels or '?'}, not line art "
                          f"(['line']); line augmentation is for sketch packs")
    dc = cfg.data
    return LineAugment(thickness=dc.line_thickness, shift=dc.line_shift, elastic=dc.line_elastic,
                       darkness=dc.line_darkness, gamma=dc.line_gamma)


def _colorize_data(cfg: RunConfig, device: torch.device, dist, main: bool, start_step: int, log=None) -> _Data:
    from lumachrome.train.loop import load_val_set, make_train_data

    td = make_train_data(cfg, device, dist, start_step=start_step, log=log)
    d = _Data()
    d.batches, d.state, d.num_images = td.batches, td.state, td.num_images
    d.val = load_val_set(cfg, log=log) if main else None
    return d


# ---------------------------------------------------------------------------------- validation
def _rgb_of(x: torch.Tensor) -> torch.Tensor:
    """``[-1, 1]`` images of any channel count as RGB ``[0, 1]`` for grids (1 channel: gray; else the first 3)."""
    from lumachrome.data.domain_pack import from_unit

    x = from_unit(x)
    if x.shape[1] == 3:
        return x
    return x[:, :1].expand(-1, 3, -1, -1) if x.shape[1] < 3 else x[:, :3]


def _luma(rgb01: torch.Tensor) -> torch.Tensor:
    w = torch.tensor(REC601_LUMA).view(1, 3, 1, 1)
    return (rgb01 * w).sum(1)


@torch.no_grad()
def _generate(model: nn.Module, x: torch.Tensor, device: torch.device, bs: int = 8) -> torch.Tensor:
    model.eval()
    return torch.cat([model(x[i:i + bs].to(device)).float().cpu() for i in range(0, x.shape[0], bs)])


def translate_guards(inp: torch.Tensor, out: torch.Tensor) -> dict[str, float]:
    """Collapse / inversion guards on a batch: ``lum_corr`` (Pearson correlation of the input's and the
    output's lightness over all pixels; negative = inverted tones) and ``diversity`` (mean over
    pixels of the standard deviation across images, in ``[0, 1]`` units; ~0 = collapse)."""
    li, lo = _luma(_rgb_of(inp)).flatten(), _luma(_rgb_of(out)).flatten()
    li, lo = li - li.mean(), lo - lo.mean()
    corr = float((li * lo).sum() / (li.norm() * lo.norm()).clamp_min(1e-8))
    div = float(_rgb_of(out).std(0).mean()) if out.shape[0] > 1 else 0.0
    return {"lum_corr": corr, "diversity": div}


def validate_translate(G: nn.Module, val: dict[str, torch.Tensor], device: torch.device,
                       F_: nn.Module | None = None) -> tuple[dict[str, float], np.ndarray]:
    """Metrics (PSNR, SSIM, CF, CIEDE2000 when the val data has B) + guards, and the sample grid rows."""
    from lumachrome.metrics import image_metrics

    A = val["A"]
    fake = _generate(G, A, device)
    m = translate_guards(A, fake)
    cols = [_rgb_of(A), _rgb_of(fake)]
    if F_ is not None:
        cols.append(_rgb_of(_generate(F_, fake, device)))  # the cycle F(G(a))
    if "B" in val:
        def u8(x):
            return (_rgb_of(x).permute(0, 2, 3, 1).numpy() * 255.0 + 0.5).astype(np.uint8)

        rows = [image_metrics(p, g) for p, g in zip(u8(fake), u8(val["B"]))]
        for k in ("psnr", "ssim", "cf", "cf_gt", "auc", "ciede2000"):
            m[k] = float(np.mean([r[k] for r in rows]))
        cols.append(_rgb_of(val["B"]))
    grid = torch.cat([torch.cat([c[i] for c in cols], dim=2) for i in range(A.shape[0])], dim=1)
    return m, grid.permute(1, 2, 0).clamp(0, 1).numpy().astype(np.float32)


# ---------------------------------------------------------------------------------------- loop
def _build(cfg: RunConfig, data: _Data, device: torch.device, fresh: bool, log=print):
    """(trainer, model_spec for the checkpoint/export)."""
    from lumachrome.models import create_model
    from lumachrome.train.loop import build_model

    gc = cfg.gan
    translate = cfg.model.architecture in GENERATORS

    def disc(cin: int) -> nn.Module:
        return create_model("patchgan", in_channels=cin, width=gc.d_width, n_layers=gc.d_layers, norm=gc.d_norm)

    if not translate:
        # The colorizer exactly as the supervised trainer builds it (model.init: fine-tuning).
        G, args, _ = build_model(_without_init(cfg), None, device)
        _init_generator(G, cfg, fresh, log)
        D = disc(3) if gc.lambda_gan > 0 else None  # (L, ab) pairs
        spec = model_spec(cfg, args, prefix="G.")
        return Pix2PixTrainer(G, D, cfg, device, colorize=True), spec
    args = dict(cfg.model.args)
    for key, want in (("in_channels", data.in_channels), ("out_channels", 3)):
        if args.setdefault(key, want) != want:
            raise ConfigError(f"model.args.{key} is {args[key]} but the domain packs have {want} channels")
    G = create_model(cfg.model.architecture, **args)
    _init_generator(G, cfg, fresh, log)
    args = G.args
    spec = model_spec(cfg, args, size=cfg.data.size, decoding={}, prefix="G.",
                      extra={"task": "translate", "domain": data.domain,
                             "input": {"channels": data.a_channels, "range": [-1, 1]},
                             "output": {"space": "rgb", "range": [-1, 1]}, "regime": cfg.train.regime})
    if cfg.train.regime == "pix2pix":
        D = disc(data.in_channels + 3) if gc.lambda_gan > 0 else None
        return Pix2PixTrainer(G, D, cfg, device, colorize=False), spec
    F_ = create_model(cfg.model.architecture, **{**args, "in_channels": 3, "out_channels": data.in_channels})
    trainer = CycleGANTrainer(G, F_, disc(data.in_channels), disc(3), cfg, device,
                              identity=data.in_channels == 3)
    return trainer, spec


def _init_generator(G: nn.Module, cfg: RunConfig, fresh: bool, log) -> None:
    """``model.pretrained`` / ``model.init`` of a fresh run: the generator starts from its architecture's
    pretrained encoder, then from those weights (a resumed run has its own)."""
    from lumachrome.train.loop import init_from

    if cfg.model.pretrained and fresh:
        load = getattr(G, "load_pretrained_encoder", None)
        if load is None:
            raise ConfigError(f"model.pretrained: architecture {cfg.model.architecture!r} has no pretrained encoder")
        load()
        log("model.pretrained: the encoder starts from its ImageNet weights")
    if cfg.model.init and fresh:
        left = init_from(G, cfg.model.init, cfg.model.init_skip)
        log(f"model.init: weights from {cfg.model.init}"
            + (f"; left freshly initialised (model.init_skip): {', '.join(left)}" if left else ""))


def _without_init(cfg: RunConfig) -> RunConfig:
    """The configuration without model.init and model.pretrained (:func:`_init_generator` applies them
    to a fresh run; a resumed run loads its own weights)."""
    import dataclasses

    return dataclasses.replace(cfg, model=dataclasses.replace(cfg.model, init=None, pretrained=False))


class GanRegime(Regime):
    """The adversarial regimes of :func:`lumachrome.train.run.run` (``train.regime`` pix2pix / cyclegan):
    :class:`Pix2PixTrainer` / :class:`CycleGANTrainer` on photos (L -> ab) or domain packs (A -> B);
    validation with the translation guards; the loss terms also go to ``losses.jsonl``."""

    names = ("pix2pix", "cyclegan")

    def resume_config(self, cfg: RunConfig, saved: RunConfig, where: Path, log) -> None:
        if saved.model != cfg.model or saved.gan != cfg.gan or saved.train.regime != cfg.train.regime:
            log(f"resume: using the model/gan configuration stored in {where}")
            cfg.model, cfg.gan, cfg.train.regime = saved.model, saved.gan, saved.train.regime

    def build(self, cfg: RunConfig, dist, *, ckpt: Any, log) -> Built:
        translate = cfg.model.architecture in GENERATORS
        start_step = ckpt.step if ckpt is not None else 0
        data = (_translate_data(cfg, dist.device, dist, dist.is_main) if translate
                else _colorize_data(cfg, dist.device, dist, dist.is_main, start_step, log))
        trainer, spec = _build(cfg, data, dist.device, fresh=ckpt is None, log=log)
        return Built(trainer, spec, data, data.val)

    def restore(self, built: Built, ckpt: Any, step: int) -> None:
        built.trainer.steps_done = step

    def distributed_note(self, built: Built, dist) -> str | None:
        if dist.device.type != "cuda" and any(isinstance(m, nn.modules.batchnorm._BatchNorm)
                                              for m in built.trainer.nets.modules()):
            return "note: BatchNorm statistics are per rank on the CPU (SyncBatchNorm needs CUDA)"
        return None

    def describe(self, cfg: RunConfig, built: Built, dist, run_dir: Path) -> str:
        trainer = built.trainer
        translate = cfg.model.architecture in GENERATORS
        n_g = sum(p.numel() for p in trainer.G.parameters()) / 1e6
        n_d = sum(p.numel() for n, m in trainer.nets.items() if n != "G" for p in m.parameters()) / 1e6
        what = f"{cfg.train.regime} ({'L -> ab' if not translate else 'A -> B'}, {cfg.gan.gan_loss} loss)"
        if cfg.train.regime == "pix2pix" and "D" not in trainer.nets:
            what = "pix2pix L1-only baseline (lambda_gan 0, no discriminator)"
        return (f"training {what}: {cfg.model.architecture} {n_g:.2f}M + {n_d:.2f}M other parameters on "
                f"{built.data.num_images} images, device {dist.device}"
                + (f", {dist.world_size} processes" if dist.enabled else "") + f" -> {run_dir}")

    def extra_state(self, cfg: RunConfig, built: Built, dist) -> dict[str, Any]:
        return {"world_size": dist.world_size, "regime": cfg.train.regime}

    def validate(self, cfg: RunConfig, built: Built, device: torch.device) -> tuple[dict[str, float], np.ndarray]:
        trainer = built.trainer
        if cfg.model.architecture in GENERATORS:
            F_ = trainer.nets["F"] if "F" in trainer.nets else None
            return validate_translate(trainer.eval_model, built.val, device, F_)
        metrics, pred = validate(trainer.eval_model, built.val, device)
        return metrics, sample_grid(built.val, pred, cfg.train.samples)

    def warnings(self, cfg: RunConfig, metrics: dict[str, float]) -> list[str]:
        translate = cfg.model.architecture in GENERATORS
        lines = []
        if translate and metrics.get("lum_corr", 1.0) < 0:
            lines.append(f"warning: lum_corr {metrics['lum_corr']:.3f} < 0: the generator may be inverting tones")
        if translate and metrics.get("diversity", 1.0) < 0.01:
            lines.append(f"warning: diversity {metrics['diversity']:.4f}: the outputs barely differ (collapse?)")
        return lines

    def postfix(self, logs: dict[str, float]) -> dict[str, str]:
        return {k: f"{v:.3f}" for k, v in logs.items() if k in ("G", "D", "D_A", "D_B", "G_l1", "cycle_A")}

    def on_log(self, run_dir: Path, step: int, logs: dict[str, float], main: bool) -> None:
        if main:
            with open(run_dir / "losses.jsonl", "a") as f:
                f.write(json.dumps({"step": step, **{k: round(v, 6) for k, v in logs.items()}}) + "\n")


def train_gan(cfg: RunConfig, resume: str | None = None, *, overwrite: str | bool | None = None, log=print) -> Path:
    """Run a pix2pix or CycleGAN training (``cfg.train.regime``; :func:`lumachrome.train.run.run` with
    :class:`GanRegime`); returns the run folder.

    The run folder is laid out as the supervised one (``config.yaml``, ``checkpoints/``, ``samples/``,
    ``tb/``, ``metrics.jsonl``, ``model/``) plus ``losses.jsonl`` (the loss terms every ``log_every``
    steps). Ctrl-C saves a checkpoint. Under torchrun each rank trains on its share of the global batch.
    The run folder rules (``resume``, ``overwrite``) are those of :func:`lumachrome.train.loop.train`.
    """
    cfg.validate()
    if cfg.train.regime not in GanRegime.names:
        raise ConfigError(f"train_gan: train.regime must be pix2pix or cyclegan, got '{cfg.train.regime}'")
    return run(cfg, GanRegime(), resume, overwrite=overwrite, log=log)
