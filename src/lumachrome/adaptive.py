"""Adaptive chroma gain: how much to amplify a regression model's colour, decided per image.

A regression colorizer predicts something close to the mean of the plausible colours, which is
dull wherever several colours are plausible. Multiplying ``ab`` by one fixed gain (``saturation``)
buys colourfulness at a price in fidelity that differs a lot between images: on a photo the
network already colours almost right, extra chroma is mostly error; on one whose truth is far
more colourful than the prediction, the same chroma costs little. Per-image PSNR punishes the
first kind much more than it rewards the second.

:class:`AdaptiveGain` predicts each image's gain from 15 statistics of the prediction and the
lightness (:data:`FEATURES`, computed at the working resolution) with a linear model on the log
gain, fitted by :func:`fit_gain` on training photos: for each photo, the gain of a grid
(:data:`GAIN_GRID`) that maximises ``PSNR + cf_weight * colourfulness`` is the target, and a
ridge regression learns to predict its logarithm from the features. Before the gain, a *chroma
stretch* widens the spread of chroma inside the image around its mean
(``c -> max(0, c + stretch * (c - mean c))``): colourfulness (Hasler & Suesstrunk) rewards
that spread, and it costs less fidelity than lifting every pixel alike.

Stored in a model folder's ``config.json`` as ``decoding.adaptive_gain`` (see
:meth:`AdaptiveGain.to_config`); :class:`lumachrome.colorizer.Colorizer` applies it to every
prediction before ``saturation``, which then scales the result (1 = as fitted).
``lumachrome calibrate MODEL --data PHOTOS`` fits and stores it.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping

import numpy as np
import torch

from lumachrome.errors import ConfigError

__all__ = [
    "FEATURES",
    "GAIN_GRID",
    "AdaptiveGain",
    "calibrate",
    "collect_gain_scores",
    "colorfulness_torch",
    "fit_gain",
    "image_features",
    "centre_ab",
    "mean_ab",
    "score_gains",
    "stretch_chroma",
]

#: Names of the per-image features, in order (``L`` raw 0..100, ``ab`` raw, chroma ``c = |ab|``).
FEATURES = (
    "log1p chroma q10", "log1p chroma q50", "log1p chroma q90", "log1p chroma q99", "log1p chroma mean",
    "mean a / 20", "mean b / 20", "std a / 20", "std b / 20",
    "L q05 / 100", "L q50 / 100", "L q95 / 100", "std L / 100", "mean |dL/dx| / 10",
    "mean |dL/dy| / 10",
)

#: Gains scored per image when fitting (the target is the best one of these).
GAIN_GRID = (0.8, 1.0, 1.2, 1.4, 1.6, 1.8, 2.0, 2.3, 2.6, 3.0, 3.5)

_CHROMA_Q = (0.1, 0.5, 0.9, 0.99)
_L_Q = (0.05, 0.5, 0.95)


def image_features(L: torch.Tensor, ab: torch.Tensor) -> torch.Tensor:
    """Per-image features :data:`FEATURES`: ``(B, 1, H, W)`` raw L, ``(B, 2, H, W)`` raw ab -> ``(B, 15)``."""
    L = L.float()
    ab = ab.float()
    b = L.shape[0]
    c = ab.norm(dim=1).reshape(b, -1)
    cq = torch.quantile(c, torch.tensor(_CHROMA_Q, device=c.device), dim=1).T
    Lf = L.reshape(b, -1) / 100
    lq = torch.quantile(Lf, torch.tensor(_L_Q, device=L.device), dim=1).T
    dx = (L[..., :, 1:] - L[..., :, :-1]).abs().reshape(b, -1).mean(1, keepdim=True) / 10
    dy = (L[..., 1:, :] - L[..., :-1, :]).abs().reshape(b, -1).mean(1, keepdim=True) / 10
    return torch.cat([
        torch.log1p(cq), torch.log1p(c.mean(1, keepdim=True)),
        ab.mean((2, 3)) / 20, ab.std((2, 3)) / 20,
        lq, Lf.std(1, keepdim=True), dx, dy,
    ], 1)


def centre_ab(ab: torch.Tensor, centre: Iterable[float], inverse: bool = False) -> torch.Tensor:
    """``ab - centre`` (``inverse``: ``ab + centre``) for ``(B, 2, H, W)`` raw ``ab``; a zero centre
    returns ``ab`` itself."""
    a, b = (float(x) for x in centre)
    if a == 0 and b == 0:
        return ab
    c = torch.tensor((a, b), dtype=ab.dtype, device=ab.device).view(1, 2, 1, 1)
    return ab + c if inverse else ab - c


def stretch_chroma(ab: torch.Tensor, stretch: float) -> torch.Tensor:
    """Widen each image's chroma around its mean: ``c -> max(0, c + stretch * (c - mean c))``, hue kept."""
    if stretch == 0:
        return ab
    c = ab.norm(dim=1, keepdim=True)
    mean = c.mean(dim=(2, 3), keepdim=True)
    target = (c + stretch * (c - mean)).clamp_min(0)
    return ab * (target / c.clamp_min(1e-6))


@dataclass
class AdaptiveGain:
    """A fitted per-image chroma gain (see the module docstring).

    ``log gain = bias + weights . (features - mean) / scale``, clamped to ``[min_gain, max_gain]``.
    """

    mean: list[float]
    scale: list[float]
    weights: list[float]
    bias: float
    stretch: float = 0.0
    min_gain: float = GAIN_GRID[0]
    max_gain: float = GAIN_GRID[-1]
    #: The colour the gain and the stretch are applied around (raw ``a, b``; ``(0, 0)``: around gray).
    centre: tuple[float, float] = (0.0, 0.0)
    #: How it was fitted (data, images, cf_weight, ridge): informational.
    fitted: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        n = len(FEATURES)
        for name in ("mean", "scale", "weights"):
            v = getattr(self, name)
            if len(v) != n or not all(math.isfinite(float(x)) for x in v):
                raise ConfigError(f"adaptive_gain.{name}: expected {n} finite numbers, got {v!r}")
        if not all(float(s) > 0 for s in self.scale):
            raise ConfigError("adaptive_gain.scale: every entry must be > 0")
        if not math.isfinite(float(self.bias)):
            raise ConfigError(f"adaptive_gain.bias must be finite, got {self.bias!r}")
        if not 0 <= float(self.stretch) <= 4:
            raise ConfigError(f"adaptive_gain.stretch must be in [0, 4], got {self.stretch!r}")
        if len(self.centre) != 2 or not all(math.isfinite(float(x)) and abs(float(x)) <= 60 for x in self.centre):
            raise ConfigError(f"adaptive_gain.centre must be two numbers in [-60, 60] (a, b), got {self.centre!r}")
        self.centre = (float(self.centre[0]), float(self.centre[1]))
        if not 0 < float(self.min_gain) <= float(self.max_gain) <= 8:
            raise ConfigError(f"adaptive_gain: need 0 < min_gain <= max_gain <= 8, got {self.min_gain}, {self.max_gain}")

    @classmethod
    def from_config(cls, cfg: Mapping[str, Any]) -> AdaptiveGain:
        """From ``config.json``'s ``decoding.adaptive_gain``; :class:`ConfigError` when malformed."""
        if not isinstance(cfg, Mapping):
            raise ConfigError(f"decoding.adaptive_gain must be a mapping, got {type(cfg).__name__}")
        known = {"mean", "scale", "weights", "bias", "stretch", "min_gain", "max_gain", "fitted", "features",
                 "centre"}
        unknown = sorted(set(cfg) - known)
        if unknown:
            raise ConfigError(f"decoding.adaptive_gain: unknown keys {unknown}")
        features = cfg.get("features", list(FEATURES))
        if list(features) != list(FEATURES):
            raise ConfigError("decoding.adaptive_gain.features do not match this version of lumachrome's features")
        try:
            return cls(
                mean=[float(x) for x in cfg["mean"]], scale=[float(x) for x in cfg["scale"]],
                weights=[float(x) for x in cfg["weights"]], bias=float(cfg["bias"]),
                stretch=float(cfg.get("stretch", 0.0)), min_gain=float(cfg.get("min_gain", GAIN_GRID[0])),
                max_gain=float(cfg.get("max_gain", GAIN_GRID[-1])), fitted=dict(cfg.get("fitted") or {}),
                centre=tuple(float(x) for x in cfg.get("centre", (0.0, 0.0))),
            )
        except KeyError as exc:
            raise ConfigError(f"decoding.adaptive_gain: missing {exc.args[0]!r}") from None
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"decoding.adaptive_gain: {exc}") from None

    def to_config(self) -> dict[str, Any]:
        """The JSON-able mapping stored as ``decoding.adaptive_gain``."""
        out = {
            "features": list(FEATURES), "mean": [float(x) for x in self.mean],
            "scale": [float(x) for x in self.scale], "weights": [float(x) for x in self.weights],
            "bias": float(self.bias), "stretch": float(self.stretch),
            "min_gain": float(self.min_gain), "max_gain": float(self.max_gain), "fitted": self.fitted,
        }
        if any(self.centre):  # only written when used: earlier model folders stay byte-identical
            out["centre"] = [float(x) for x in self.centre]
        return out

    def gains(self, L: torch.Tensor, ab: torch.Tensor) -> torch.Tensor:
        """``(B,)`` gain of each image for the network's ``ab`` (its features are those of the centred,
        stretched ``ab``)."""
        return self._gains(L, stretch_chroma(centre_ab(ab.float(), self.centre), self.stretch))

    def _gains(self, L: torch.Tensor, ab_stretched: torch.Tensor) -> torch.Tensor:
        f = image_features(L.to(ab_stretched.device), ab_stretched)
        mean = torch.tensor(self.mean, device=f.device)
        scale = torch.tensor(self.scale, device=f.device)
        w = torch.tensor(self.weights, device=f.device)
        log_gain = ((f - mean) / scale) @ w + self.bias
        return log_gain.exp().clamp(self.min_gain, self.max_gain)

    def apply(self, L: torch.Tensor, ab: torch.Tensor) -> torch.Tensor:
        """Stretched and amplified ``ab``: ``(B, 1, H, W)`` raw L and ``(B, 2, H, W)`` raw ab (same size)."""
        if L.shape[0] != ab.shape[0] or L.shape[-2:] != ab.shape[-2:]:
            raise ValueError(f"AdaptiveGain.apply: L {tuple(L.shape)} and ab {tuple(ab.shape)} do not match")
        dtype = ab.dtype
        ab = stretch_chroma(centre_ab(ab.float(), self.centre), self.stretch)
        g = self._gains(L, ab)
        return centre_ab(ab * g.view(-1, 1, 1, 1), self.centre, inverse=True).to(dtype)


# --------------------------------------------------------------------------------------------
# fitting


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
    from lumachrome.color.lab import lab_to_rgb

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
    from lumachrome.color.lab import rgb_to_lab_np
    from lumachrome.evaluate import load_eval_images

    total, n = np.zeros(2), 0
    for _, gt in itertools.islice(load_eval_images(data_dir, size), limit):
        ab = rgb_to_lab_np(gt)[..., 1:].reshape(-1, 2)
        total += ab.astype(np.float64).sum(0)
        n += len(ab)
    if n == 0:
        from lumachrome.errors import DataError

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
    from lumachrome.color.lab import rgb_to_lab
    from lumachrome.colorizer import working_shape
    from lumachrome.evaluate import _list_files, _progress_bar, load_eval_images

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

    total = len(_list_files(data_dir))
    made = _progress_bar(progress, total if limit is None else min(total, limit), "calibrating")
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
        from lumachrome.errors import DataError

        raise DataError(f"{data_dir}: {n} colour photos; calibrating needs at least {2 * len(FEATURES)}")
    return torch.cat(feats).numpy(), torch.cat(psnrs).numpy(), torch.cat(cfs).numpy()
