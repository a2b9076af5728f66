"""Fitting the adaptive chroma gain (:class:`lumachrome.adaptive.AdaptiveGain`) on colour photos.

For each photo the network predicts ``ab`` at its working resolution exactly as ``colorize`` does, the
chroma is stretched, and every gain of :data:`~lumachrome.adaptive.GAIN_GRID` is scored (PSNR and
colourfulness, :func:`score_gains`); the gain maximising ``PSNR + cf_weight * colourfulness`` is each
photo's target, and a ridge regression on the features predicts its logarithm (:func:`fit_gain`).
``lumachrome calibrate MODEL --data PHOTOS`` runs :func:`calibrate` and stores the result in the model's
``config.json``. Applying the fitted gain is :mod:`lumachrome.adaptive` (no fitting code there).
"""

from __future__ import annotations

import itertools
import math
from typing import Any, Iterable

import numpy as np
import torch

from lumachrome.adaptive import FEATURES, GAIN_GRID, AdaptiveGain, centre_ab, image_features, stretch_chroma
from lumachrome.color.lab import lab_to_rgb, rgb_to_lab, rgb_to_lab_np
from lumachrome.colorizer import working_shape
from lumachrome.errors import ConfigError, DataError
from lumachrome.evaluate import eval_files, load_eval_images
from lumachrome.progress import task_bar

__all__ = ["calibrate", "collect_gain_scores", "colorfulness_torch", "fit_gain", "mean_ab", "parse_centre",
           "score_gains"]


def parse_centre(text: str) -> str | tuple[float, float]:
    """``--centre`` as given: ``"mean"`` or ``"A,B"`` (raw Lab a, b, each within +-60) -> ``"mean"`` or
    ``(a, b)``; :class:`ConfigError` (one line) otherwise."""
    if text.strip() == "mean":
        return "mean"
    try:
        ab = tuple(float(x) for x in text.split(","))
    except ValueError:
        ab = ()
    if len(ab) != 2 or not all(math.isfinite(x) and abs(x) <= 60 for x in ab):
        raise ConfigError(f"{text!r}: expected 'mean' or A,B with |A|, |B| <= 60 (e.g. 1.9,5.8)")
    return ab[0], ab[1]



def colorfulness_torch(rgb255: torch.Tensor) -> torch.Tensor:
    """Hasler & Suesstrunk colourfulness of each ``(B, 3, H, W)`` image on 0..255 values
    (the same formula as :func:`lumachrome.metrics.colorfulness`)."""
    r, g, b = rgb255[:, 0], rgb255[:, 1], rgb255[:, 2]
    rg = (r - g).abs().flatten(1)
    yb = (0.5 * (r + g) - b).abs().flatten(1)
    std = torch.sqrt(rg.var(1, unbiased=False) + yb.var(1, unbiased=False))
    mean = torch.sqrt(rg.mean(1) ** 2 + yb.mean(1) ** 2)
    return std + 0.3 * mean


def score_gains(L: torch.Tensor, ab: torch.Tensor, gt_rgb: torch.Tensor,
                gains: Iterable[float] = GAIN_GRID,
                centre: Iterable[float] = (0.0, 0.0)) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-image PSNR and colourfulness of ``lab(L, centre + g * ab)`` for each gain ``g``.

    Args:
        L: ``(B, 1, H, W)`` raw L of the ground truth; ab: ``(B, 2, H, W)`` raw predicted ab (already
            centred and stretched); gt_rgb: ``(B, 3, H, W)`` ground truth in ``[0, 1]``.

    Returns:
        ``(psnr, cf)``, each ``(B, len(gains))``; predictions are rounded to 8 bits as saved images
        are, and PSNR is capped as :func:`lumachrome.metrics.psnr` caps it (MSE floored at 1).
    """
    gt255 = torch.round(gt_rgb.float() * 255)
    ps, cs = [], []
    for g in gains:
        rgb = torch.round(lab_to_rgb(torch.cat([L.float(), centre_ab(ab.float() * float(g), centre, inverse=True)], 1))
                          * 255)
        mse = ((rgb - gt255) ** 2).flatten(1).mean(1)
        ps.append(10 * torch.log10(255.0**2 / mse.clamp_min(1.0)))
        cs.append(colorfulness_torch(rgb))
    return torch.stack(ps, 1), torch.stack(cs, 1)


def fit_gain(features: np.ndarray, psnr: np.ndarray, cf: np.ndarray, *, cf_weight: float,
             stretch: float = 0.0, ridge: float = 10.0, gains: Iterable[float] = GAIN_GRID,
             centre: Iterable[float] = (0.0, 0.0), fitted: dict[str, Any] | None = None) -> AdaptiveGain:
    """Fit :class:`AdaptiveGain` from per-image features and per-gain scores (:func:`score_gains`).

    Each image's target is ``log`` of the gain maximising ``psnr + cf_weight * cf``; a ridge
    regression (penalty ``ridge`` on standardised features) predicts it.
    """
    x = np.asarray(features, dtype=np.float64)
    g = np.asarray(list(gains), dtype=np.float64)
    psnr, cf = np.asarray(psnr, dtype=np.float64), np.asarray(cf, dtype=np.float64)
    if x.ndim != 2 or x.shape[1] != len(FEATURES) or psnr.shape != (len(x), len(g)) or cf.shape != psnr.shape:
        raise ValueError(f"fit_gain: features {x.shape}, psnr {psnr.shape}, cf {cf.shape} do not match {len(g)} gains")
    if len(x) < 2 * len(FEATURES):
        raise ValueError(f"fit_gain: {len(x)} images are too few to fit {len(FEATURES)} weights")
    target = np.log(g[np.argmax(psnr + cf_weight * cf, axis=1)])
    mean = x.mean(0)
    scale = x.std(0)
    scale[scale < 1e-6] = 1.0  # a constant feature: weight ~0 anyway
    z = (x - mean) / scale
    w = np.linalg.solve(z.T @ z + ridge * np.eye(z.shape[1]), z.T @ (target - target.mean()))
    return AdaptiveGain(mean=mean.tolist(), scale=scale.tolist(), weights=w.tolist(), bias=float(target.mean()),
                        stretch=stretch, min_gain=float(g.min()), max_gain=float(g.max()),
                        centre=tuple(float(x) for x in centre),
                        fitted={**(fitted or {}), "images": len(x), "cf_weight": cf_weight, "ridge": ridge,
                                "mean_target_gain": float(np.exp(target).mean())})


def calibrate(colorizer: Any, data_dir: Any, *, cf_weight: float, stretch: float = 0.0, ridge: float = 10.0,
              centre: str | Iterable[float] = (0.0, 0.0), size: int = 256, batch_size: int = 32,
              limit: int | None = None, progress: bool = True) -> AdaptiveGain:
    """Fit an :class:`AdaptiveGain` for ``colorizer`` on the colour photos of ``data_dir``.

    Every photo is prepared as :func:`lumachrome.evaluate.evaluate` prepares it (``size`` x ``size``
    centre crop); the network predicts ``ab`` at its working resolution exactly as ``colorize``
    does (the colorizer's own flip setting, no gain), the chroma is stretched, and each gain of
    :data:`GAIN_GRID` is scored at ``size`` (bilinear ``ab``, the photo's own ``L``).

    ``centre``: the colour gain and stretch work around, raw ``(a, b)``, or ``"mean"`` for the mean
    ``ab`` of these photos (:func:`mean_ab`): the colour a regression network falls back to where it
    cannot tell, so amplifying the departure from it, not from gray, undoes that shrinkage without
    pushing every image further towards the mean's (warm) hue.
    """
    if isinstance(centre, str):
        if centre != "mean":
            raise ConfigError(f"centre must be 'mean' or two numbers a, b; got {centre!r}")
        centre = mean_ab(data_dir, size=size, limit=limit)
    centre = tuple(float(x) for x in centre)
    feats, psnrs, cfs = collect_gain_scores(colorizer, data_dir, stretch=stretch, centre=centre, size=size,
                                            batch_size=batch_size, limit=limit, progress=progress)
    return fit_gain(feats, psnrs, cfs, cf_weight=cf_weight, stretch=stretch, ridge=ridge, centre=centre,
                    fitted={"data": str(data_dir), "size": size})


def mean_ab(data_dir: Any, *, size: int = 256, limit: int | None = None) -> tuple[float, float]:
    """Mean raw ``(a, b)`` over all pixels of the ``size`` x ``size`` centre crops of the colour photos
    in ``data_dir`` (prepared as :func:`lumachrome.evaluate.evaluate` prepares them)."""
    total, n = np.zeros(2), 0
    for _, gt in itertools.islice(load_eval_images(data_dir, size), limit):
        ab = rgb_to_lab_np(gt)[..., 1:].reshape(-1, 2)
        total += ab.astype(np.float64).sum(0)
        n += len(ab)
    if n == 0:
        raise DataError(f"{data_dir}: no colour photos to take the mean colour of")
    a, b = total / n
    return round(float(a), 3), round(float(b), 3)


def collect_gain_scores(colorizer: Any, data_dir: Any, *, stretch: float = 0.0,
                        centre: Iterable[float] = (0.0, 0.0), size: int = 256,
                        batch_size: int = 32, limit: int | None = None,
                        progress: bool = True) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The data :func:`fit_gain` needs, from one pass of the network over ``data_dir``: per-image
    features ``(N, F)`` and the PSNR and colourfulness of every gain of :data:`GAIN_GRID` ``(N, G)``
    (see :func:`calibrate`). Fitting several ``cf_weight`` values from one pass is then cheap."""
    feats, psnrs, cfs = [], [], []

    def flush(gts: list[np.ndarray]) -> None:
        gt = torch.from_numpy(np.stack(gts)).permute(0, 3, 1, 2).float() / 255
        L = rgb_to_lab(gt)[:, :1]
        hs, ws = working_shape(size, size, colorizer.size, colorizer.multiple)
        Lw = torch.nn.functional.interpolate(L, size=(hs, ws), mode="area")
        ab = stretch_chroma(centre_ab(colorizer.network_ab(Lw).float().cpu(), centre), stretch)
        feats.append(image_features(Lw, ab))
        ab = torch.nn.functional.interpolate(ab, size=(size, size), mode="bilinear", align_corners=False)
        p, c = score_gains(L, ab, gt, centre=centre)
        psnrs.append(p)
        cfs.append(c)

    total = len(eval_files(data_dir))
    made = task_bar(progress, total if limit is None else min(total, limit), "calibrating")
    bar, task = made if made is not None else (None, None)
    if bar is not None:
        bar.start()
    try:
        pending: list[np.ndarray] = []
        for _, gt in itertools.islice(load_eval_images(data_dir, size), limit):
            pending.append(gt)
            if len(pending) == batch_size:
                flush(pending)
                pending = []
            if bar is not None:
                bar.update(task, advance=1)
        if pending:
            flush(pending)
    finally:
        if bar is not None:
            bar.stop()
    n = sum(len(f) for f in feats)
    if n < 2 * len(FEATURES):
        raise DataError(f"{data_dir}: {n} colour photos; calibrating needs at least {2 * len(FEATURES)}")
    return torch.cat(feats).numpy(), torch.cat(psnrs).numpy(), torch.cat(cfs).numpy()
