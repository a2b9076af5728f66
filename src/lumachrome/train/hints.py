"""Fine-tuning a colorizer into a hint-conditioned one (Zhang et al. 2017 style simulated hints).

``HintTrainer`` is :class:`~lumachrome.train.supervised.SupervisedTrainer` with one change: every
batch gets simulated user hints (:func:`lumachrome.hints.simulate_hints`: geometric number of points
with ``p = 1/8``, a share of hint-free images, patch sides 1-9, values = mean ground-truth ab of the
patch), passed to the network as its extra input. The loss is unchanged (on all pixels).

``widen_from(model, source)`` starts a hint model from a plain model folder: every tensor is copied;
what the model names through ``hint_inputs()`` gets zero hint weights (the U-Net's widened first-stage
convolutions) or keeps its zero-ending initialisation (``effunet``'s hint branches), so at step 0 the
hint model computes exactly what the source model computes, with or without hints.

:class:`HintsRegime` is the regime of the one training orchestrator (:func:`lumachrome.train.run.run`):
``lumachrome train --config C.yaml`` with ``train.regime: hints`` (and ``hints.init``, the plain model
folder to widen) runs it (the shipped ``photo-hints``: ``configs/photo5-hints-cpu.yaml``);
``train_hints(...)`` is the same run as a function (``scripts/train_hints.py``, v1's recipe): pack
batches, validation with 0 and 10 hints, resumable checkpoints, export to a model folder.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
from torch import nn

from lumachrome.errors import ConfigError
from lumachrome.hints import HINT_CHANNELS, sample_hints_from_ab, simulate_hints
from lumachrome.train.config import RunConfig
from lumachrome.train.distributed import DistInfo
from lumachrome.train.run import Built, Regime, model_spec, run
from lumachrome.train.supervised import SupervisedTrainer

__all__ = ["HintTrainer", "HintsRegime", "train_hints", "validate_hints", "widen_from"]


def widen_from(model: nn.Module, source: str | Path) -> None:
    """Copy a plain (``hint_channels=0``) model folder's weights into the hint model ``model``.

    The model names what hints change through ``hint_inputs()``: ``(widened, new)``, where
    ``widened`` are convolutions whose input channels grew by the hint channels (the source's weights
    go to the leading input slice, the hint slice is zero) and ``new`` are tensors of hint-only
    layers, which keep their initialisation (each hint path ends in zero weights). Every other tensor
    must match by name and shape, so at step 0 the hint model computes exactly what the source
    computes, with or without hints (checked on a random input).

    Raises:
        ConfigError: no weights at ``source``, or they do not fit ``model``.
    """
    from lumachrome.models.io import read_weights_file

    path = Path(source)
    if path.is_dir():
        path = path / "model.safetensors"
    if not path.is_file():
        raise ConfigError(f"hint fine-tuning: {source}: no model.safetensors found")
    widened, new = model.hint_inputs() if hasattr(model, "hint_inputs") else ((), ())
    src = read_weights_file(path)  # a model folder's: with its base model's tensors, if any
    own = model.state_dict()
    if set(src) != set(own) - set(new):
        diff = sorted(set(src) ^ (set(own) - set(new)))
        raise ConfigError(f"hint fine-tuning: {path} does not match the model (differing tensors: {', '.join(diff[:4])})")
    with torch.no_grad():
        for k, v in own.items():
            if k in new:  # hint-only layers keep their initialisation (each path ends in zeros)
                continue
            s = src[k].to(v.dtype)
            if k in widened and s.shape[1] < v.shape[1] and s.shape[0] == v.shape[0] and s.shape[2:] == v.shape[2:]:
                v.zero_()
                v[:, : s.shape[1]].copy_(s)
            elif tuple(s.shape) == tuple(v.shape):
                v.copy_(s)
            else:
                raise ConfigError(f"hint fine-tuning: {path}: {k} has shape {tuple(s.shape)}, model expects {tuple(v.shape)}")
    if new:  # the hint-only layers must leave the output alone: compare with and without hints
        was = model.training
        model.eval()
        g = torch.Generator().manual_seed(0)
        L = torch.rand(1, 1, 64, 64, generator=g) * 100
        hints = torch.zeros(1, model.hint_channels, 64, 64)
        hints[:, :, 20:23, 30:33] = torch.tensor([0.4, -0.3, 1.0])[: model.hint_channels].view(1, -1, 1, 1)
        with torch.no_grad():
            same = torch.equal(model(L), model(L, hints))  # a zero path adds exact zeros
        model.train(was)
        if not same:
            raise ConfigError("hint fine-tuning: the model's hint layers do not start at zero (hints change the output)")


class HintTrainer(SupervisedTrainer):
    """Supervised trainer whose batches get simulated hints (see :func:`lumachrome.hints.simulate_hints`).

    Args (besides :class:`SupervisedTrainer`'s): ``seed`` of the hint sampler, ``p`` geometric
    parameter, ``zero_share`` share of hint-free images, ``max_patch`` largest patch side.
    """

    def __init__(self, model: nn.Module, cfg: RunConfig, device: torch.device, *, seed: int = 0,
                 p: float = 1 / 8, zero_share: float = 0.2, max_patch: int = 9) -> None:
        if int(getattr(model, "hint_channels", 0) or 0) != HINT_CHANNELS:
            raise ConfigError(f"HintTrainer: the model must have hint_channels={HINT_CHANNELS}")
        super().__init__(model, cfg, device)
        self.hint_generator = torch.Generator().manual_seed(seed)
        self.p, self.zero_share, self.max_patch = p, zero_share, max_patch

    def compute_loss(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict[str, float]]:
        import torch.nn.functional as F

        from lumachrome.color.lab import normalize_ab

        L = batch["L"].to(self.device)
        ab = batch["ab"].to(self.device)
        hints = batch.get("hints")
        if hints is None:
            hints = simulate_hints(ab.cpu(), self.hint_generator, p=self.p, zero_share=self.zero_share,
                                   max_patch=self.max_patch)
        with self._autocast():
            out = self.net(L, hints.to(self.device)).float()
        pred_n, gt_n = normalize_ab(out), normalize_ab(ab)
        name = self.cfg.train.loss
        if name == "l1":
            loss = F.l1_loss(pred_n, gt_n)
        elif name == "huber":
            loss = F.huber_loss(pred_n, gt_n, delta=self.cfg.train.huber_delta)
        elif name == "l2":
            loss = F.mse_loss(pred_n, gt_n)
        else:
            raise ConfigError(f"HintTrainer: loss {name!r} is not supported (use l1, huber or l2)")
        return loss, {"loss": float(loss.detach())}


@torch.no_grad()
def validate_hints(model: nn.Module, val: dict[str, torch.Tensor], counts=(0, 10), seed: int = 0,
                   patch: int = 3) -> dict[str, float]:
    """Mean PSNR of ``model`` on validation tensors with ``n`` ground-truth hints (fixed seed) per image."""
    from lumachrome.color.lab import lab_to_rgb
    from lumachrome.metrics import psnr

    model.eval()
    dev = next(model.parameters()).device
    g8 = (val["rgb"].clamp(0, 1).permute(0, 2, 3, 1).numpy() * 255 + 0.5).astype(np.uint8)
    out = {}
    for n in counts:
        g = torch.Generator().manual_seed(seed)
        hints = torch.stack([sample_hints_from_ab(a, n, g, min_patch=patch, max_patch=patch) for a in val["ab"]])
        ab = torch.cat([model.predict_ab(val["L"][i:i + 32].to(dev), hints=hints[i:i + 32].to(dev)).cpu()
                        for i in range(0, val["L"].shape[0], 32)])
        p8 = (lab_to_rgb(torch.cat([val["L"], ab], 1)).permute(0, 2, 3, 1).numpy() * 255 + 0.5).astype(np.uint8)
        out[f"psnr_{n}"] = float(np.mean([psnr(p, q) for p, q in zip(p8, g8)]))
    return out


class HintsRegime(Regime):
    """The hint fine-tuning regime of :func:`lumachrome.train.run.run` (``train.regime hints``): a hint
    model (``hint_channels`` 3, regression) widened from the plain model folder ``init`` (:func:`widen_from`;
    None: from scratch), trained by :class:`HintTrainer`; validation is the PSNR with 0 and 10 hints per
    epoch (``metrics.jsonl``) and once at step 0 of a fresh run. Runs in one process."""

    names = ("hints",)
    #: The hint regime never restored the global RNG on resume (its sampler's state is in the checkpoint).
    restores_rng = False

    def __init__(self, init: str | None, *, hint_seed: int = 1, zero_share: float = 0.2) -> None:
        self.init, self.hint_seed, self.zero_share = init, hint_seed, zero_share
        self.t0 = time.perf_counter()

    def resume_config(self, cfg: RunConfig, saved: RunConfig, where: Path, log: Callable[[str], None]) -> None:
        """The configuration given is used as it is."""

    def build(self, cfg: RunConfig, dist: DistInfo, *, ckpt: Any, log: Callable[[str], None]) -> Built:
        from lumachrome.models import create_model
        from lumachrome.train.loop import load_val_set, make_train_data

        if dist.enabled:
            raise ConfigError("train.regime hints runs in one process (not under torchrun)")
        device = dist.device
        args = {**cfg.model.args, "head": "regression", "hint_channels": HINT_CHANNELS}
        model = create_model(cfg.model.architecture, **args)
        if self.init:
            widen_from(model, self.init)
        trainer = HintTrainer(model, cfg, device, seed=self.hint_seed, zero_share=self.zero_share)
        data = make_train_data(cfg, device, log=log)
        val = load_val_set(cfg, log=log)
        spec = model_spec(cfg, model.args, size=cfg.data.val_size, decoding={},
                          extra={"hints": {"init": self.init, "p": trainer.p, "zero_share": self.zero_share,
                                           "patch": [1, trainer.max_patch]}})
        return Built(trainer, spec, data, val)

    def restore(self, built: Built, ckpt: Any, step: int) -> None:
        extra = ckpt.state.get("extra", {})
        if "hint_generator" in extra:
            built.trainer.hint_generator.set_state(torch.tensor(extra["hint_generator"], dtype=torch.uint8))

    def started(self, built: Built, resumed: bool, log: Callable[[str], None]) -> None:
        if not resumed and built.val is not None:
            m = validate_hints(built.trainer.eval_model, built.val)
            log("step 0: " + ", ".join(f"{k} {v:.3f}" for k, v in m.items()))
        self.t0 = time.perf_counter()

    def extra_state(self, cfg: RunConfig, built: Built, dist: DistInfo) -> dict[str, Any]:
        return {"hint_generator": built.trainer.hint_generator.get_state().tolist()}

    def end_of_epoch(self, cfg: RunConfig, built: Built, step: int, epoch: int, *, device: torch.device,
                     writer: Any, run_dir: Path, log: Callable[[str], None]) -> None:
        if built.val is None:
            return
        metrics = {"step": step, **validate_hints(built.trainer.eval_model, built.val)}
        with open(run_dir / "metrics.jsonl", "a") as f:
            f.write(json.dumps(metrics) + "\n")
        log(f"step {step} ({time.perf_counter() - self.t0:.0f} s): "
            + ", ".join(f"{k} {v:.3f}" for k, v in metrics.items() if k != "step"))


def train_hints(cfg: RunConfig, init: str | None, *, hint_seed: int = 1, zero_share: float = 0.2,
                resume: bool = True, overwrite: str | bool | None = None, log: Callable[[str], None] = print) -> Path:
    """Fine-tune a hint model; returns the exported model folder ``<out>/model``.

    ``cfg.model.args`` describes the network (``hint_channels`` is set to 3), ``init`` a plain model
    folder to start from (:func:`widen_from`; None: from scratch). The run resumes from the last
    checkpoint in ``cfg.train.out`` when there is one and ``resume``; any other non-empty folder is
    refused unless ``overwrite`` (see :func:`lumachrome.train.checkpoint.plan_run_dir`). The run itself is
    :func:`lumachrome.train.run.run` with :class:`HintsRegime` (``lumachrome train`` with
    ``train.regime: hints`` and a ``hints`` section runs the same).
    """
    run_dir = Path(cfg.train.out)
    has_ckpt = any((run_dir / "checkpoints").glob("step-*/state.json"))
    since = run_dir if resume and has_ckpt and not overwrite else None
    regime = HintsRegime(init, hint_seed=hint_seed, zero_share=zero_share)
    return run(cfg, regime, since, overwrite=overwrite, log=log) / "model"
