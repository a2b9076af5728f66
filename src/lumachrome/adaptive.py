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
This module *applies* the gain; fitting it is :mod:`lumachrome.calibrate`
(``lumachrome calibrate MODEL --data PHOTOS`` fits and stores it).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping

import torch

from lumachrome.errors import ConfigError

__all__ = [
    "FEATURES",
    "GAIN_GRID",
    "AdaptiveGain",
    "centre_ab",
    "image_features",
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
        return self._gains(L, self._prepare(ab))

    def _prepare(self, ab: torch.Tensor) -> torch.Tensor:
        """The network's ``ab`` centred on :attr:`centre` and chroma-stretched: what the gain scales."""
        return stretch_chroma(centre_ab(ab.float(), self.centre), self.stretch)

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
        ab = self._prepare(ab)
        g = self._gains(L, ab)
        return centre_ab(ab * g.view(-1, 1, 1, 1), self.centre, inverse=True).to(dtype)
