"""Evaluation of exported image-to-image (``"task": "translate"``) models on a hold-out domain pack.

``lumachrome evaluate --model DIR --pack PACK`` runs the generator on every ``A`` image of a paired
domain pack (whole stored images, or centre crops of ``--size``) and scores the result against ``B``
with :func:`lumachrome.metrics.image_metrics` (PSNR, SSIM, colourfulness, AuC of the ab error,
CIEDE2000), next to the **input** baseline: the A image itself shown as RGB (one channel as gray,
e.g. the NIR band or the line drawing), the analogue of the gray baseline of colorization.
The table is the colorization one (:func:`lumachrome.evaluate.format_table`), with its hue
concentration and ``fd_lite`` (Frechet distance of EfficientNet-Lite1 features, :mod:`lumachrome.fd_lite`;
not FID) of each row against ``B``.
"""

from __future__ import annotations

import math
import os
import time
from typing import Any

import numpy as np
import torch

from lumachrome.errors import ConfigError, DataError, ModelError
from lumachrome.evaluate import EvalResult
from lumachrome.precision import inference_autocast, resolve_device

__all__ = ["constant_input_std", "evaluate_translate", "gradient_energy", "load_translate_model"]

#: Inputs (in the model's [-1, 1] range) of the constant-input texture check.
CONSTANT_LEVELS = (-0.5, 0.0, 0.5)


def gradient_energy(rgb_u8: np.ndarray) -> float:
    """Mean squared finite-difference gradient of an image's gray level (mean of the channels), in
    grey levels^2: how much detail it carries. A blurred output has less than its input."""
    g = np.asarray(rgb_u8, dtype=np.float64)
    if g.ndim == 3:
        g = g.mean(axis=2)
    dx, dy = np.diff(g, axis=1), np.diff(g, axis=0)
    return float((dx ** 2).mean() + (dy ** 2).mean())


@torch.no_grad()
def constant_input_std(model: torch.nn.Module, channels: int, size: int, device: torch.device,
                       levels: tuple[float, ...] = CONSTANT_LEVELS) -> float:
    """The generator's output on flat inputs: the largest (over ``levels`` and channels) standard
    deviation of the output, in 8-bit grey levels, away from a border of ``size // 8``. A flat input
    has nothing to draw, so any structure here is the network's own: transposed-convolution
    checkerboards, stripes, blotches. Issue 18's bar for ``thermal``: below 1 grey level.

    Computed in float64 on the CPU (a copy of the model): on a perfectly flat image an instance norm
    divides float32 rounding noise (~1e-7) by ``sqrt(eps)`` and later layers grow it into a visible
    pattern that no real image, never exactly flat, would show (14.7 grey levels in float32 against
    0.00 in float64 for a resize-conv U-Net with reflection padding); float64 leaves only what the
    network itself draws."""
    import copy

    net = copy.deepcopy(model).to(device="cpu", dtype=torch.float64).eval()
    m = max(1, size // 8)
    worst = 0.0
    for v in levels:
        y = net(torch.full((1, channels, size, size), float(v), dtype=torch.float64))
        y = (y.clamp(-1, 1) + 1) * 127.5
        worst = max(worst, float(y[0, :, m:-m, m:-m].flatten(1).std(dim=1).max()))
    return worst


def load_translate_model(model_dir: str | os.PathLike, device: str = "cpu") -> tuple[torch.nn.Module, dict[str, Any]]:
    """The network and config of an image-to-image model (``"task": "translate"``), loaded through
    :func:`lumachrome.pipeline.load_pipeline` (its config read once)."""
    from lumachrome.models.io import open_model
    from lumachrome.pipeline import load_pipeline

    folder = open_model(model_dir)
    if folder.task != "translate":
        raise ModelError(f"{model_dir}: not an image-to-image model (config task {folder.config.get('task')!r}, "
                         "expected 'translate'); score colorizers with --data FOLDER")
    translator = load_pipeline(folder, device)
    return translator.model, translator.config


def _u8(x: torch.Tensor) -> np.ndarray:
    """``[-1, 1]`` ``(B, C, H, W)`` -> uint8 RGB ``(B, H, W, 3)`` (one channel shown as gray)."""
    from lumachrome.data.domain_pack import from_unit

    x = from_unit(x)
    if x.shape[1] == 1:
        x = x.expand(-1, 3, -1, -1)
    elif x.shape[1] != 3:
        x = x[:, :1].expand(-1, 3, -1, -1)
    return (x.permute(0, 2, 3, 1).numpy() * 255.0 + 0.5).astype(np.uint8)


def evaluate_translate(
    model_dir: str | os.PathLike,
    pack: str | os.PathLike,
    *,
    size: int | None = None,
    batch_size: int = 8,
    limit: int | None = None,
    device: str = "auto",
    baseline: bool = True,
    fd_lite: bool = True,
) -> dict[str, EvalResult]:
    """Score a translate model on a paired domain pack.

    Args:
        model_dir: an exported model folder (``lumachrome export RUN -o DIR`` of a pix2pix/CycleGAN run).
        pack: a paired domain pack (``A`` and ``B``), e.g. the domain's hold-out split.
        size: centre-crop side (default: the whole stored images).
        batch_size: images per generator call.
        limit: score only the first ``limit`` images.
        device: ``auto``, ``cpu``, ``cuda``...
        baseline: also score the input itself (``"input"`` row).
        fd_lite: also compute ``fd_lite`` of each row (NaN with a note when off, when the weight
            package is missing or for fewer than 2 images).

    Returns:
        ``{model name: EvalResult, "input": EvalResult}`` (per-image rows named ``pack[i]``).

    Raises:
        ModelError: not a translate model; DataError: the pack is not paired or its A channels differ
        from the model's input; ConfigError: bad size / batch size / limit.
    """
    from lumachrome.data.domain_pack import center_batch, read_domain_pack
    from lumachrome.metrics import image_metrics

    if batch_size < 1 or (limit is not None and limit < 1) or (size is not None and size < 8):
        raise ConfigError(f"evaluate: batch size {batch_size}, limit {limit}, size {size} out of range")
    dev = resolve_device(device)
    model, config = load_translate_model(model_dir, device=str(dev))
    dp = read_domain_pack(pack)
    if not dp.paired:
        raise DataError(f"{pack}: not a paired domain pack (scoring needs A and B of the same images)")
    want = int((config.get("args") or {}).get("in_channels", dp.A.shape[1]))
    if dp.A.shape[1] != want:
        raise DataError(f"{pack}: A has {dp.A.shape[1]} channels, the model {model_dir} takes {want}")
    n = len(dp) if limit is None else min(limit, len(dp))
    s = min(dp.hw) if size is None else int(size)
    if s > min(dp.hw):
        raise ConfigError(f"evaluate: --size {s} is larger than the pack's {dp.hw[0]}x{dp.hw[1]} images")
    A_all, B_all = dp.A[:n], dp.B[:n]
    name = str(config.get("name") or os.path.basename(os.path.normpath(str(model_dir))))
    rows: dict[str, list[dict[str, Any]]] = {name: [], "input": []}
    notes: list[str] = []
    feats: dict[str, list[np.ndarray]] | None = {name: [], "input": []} if fd_lite else None
    gt_list: list[np.ndarray] = []
    if feats is None:
        notes.append("fd_lite not computed (fd_lite=False)")
    else:
        from lumachrome import fd_lite as fdl

        if (why := fdl.available()) is not None:
            notes.append(f"fd_lite not computed: {why}")
            feats = None
    t0 = time.perf_counter()
    energy_out = energy_in = 0.0
    with torch.no_grad():
        for i in range(0, n, batch_size):
            a = center_batch(A_all[i:i + batch_size], s)
            b = center_batch(B_all[i:i + batch_size], s)
            with inference_autocast(dev):
                fake = model(a.to(dev)).float().cpu()
            if not torch.isfinite(fake).all():
                raise ModelError(f"{model_dir}: the generator returned non-finite values")
            P, G, X = _u8(fake), _u8(b), _u8(a)
            if feats is not None:
                feats[name].append(fdl.lite_features(P))
                gt_list.append(fdl.lite_features(G))
                if baseline:
                    feats["input"].append(fdl.lite_features(X))
            for j, (p, g, x) in enumerate(zip(P, G, X)):
                where = f"{pack}[{i + j}]"
                energy_out += gradient_energy(p)
                energy_in += gradient_energy(x)
                rows[name].append({"path": where, **image_metrics(p, g)})
                if baseline:
                    rows["input"].append({"path": where, **image_metrics(x, g)})
    fd = {name: math.nan, "input": math.nan}
    row_notes = {name: list(notes), "input": list(notes)}
    std = constant_input_std(model, want, s, dev)
    row_notes[name].append(f"texture check: output std on flat inputs {std:.2f} grey levels "
                           f"(largest over inputs {', '.join(f'{v:g}' for v in CONSTANT_LEVELS)} and channels; "
                           "checkerboards and other patterns of the network's own show here)")
    if energy_in > 0:
        row_notes[name].append(f"sharpness: output gradient energy {energy_out / energy_in:.0%} of the input's "
                               "(gray level, all images together)")
    if feats is not None:
        gt_feats = np.concatenate(gt_list)
        for key in (name, "input") if baseline else (name,):
            fd[key], why = fdl.fd_lite(np.concatenate(feats[key]), gt_feats)
            if why is not None:
                row_notes[key].append(why)
    seconds = time.perf_counter() - t0
    out = {name: EvalResult.from_rows(rows[name], data_dir=str(pack), size=s, seconds=seconds,
                                      fd_lite=fd[name], notes=row_notes[name])}
    if baseline:
        out["input"] = EvalResult.from_rows(rows["input"], data_dir=str(pack), size=s, seconds=0.0,
                                            fd_lite=fd["input"], notes=row_notes["input"])
    return out
