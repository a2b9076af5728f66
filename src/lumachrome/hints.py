"""User colour hints: parsing, encoding for the network, simulation for training.

A hint-conditioned colorizer (Zhang et al. 2017, "Real-Time User-Guided Image Colorization with
Learned Deep Priors", section 3.1) takes, besides ``L``, sparse ``ab`` values at a few pixels and a
mask saying where they are. In lumachrome the hint input is one ``(3, h, w)`` map at the network's
working resolution (``HINT_CHANNELS = 3``)::

    channel 0: a / 110   at hinted pixels, 0 elsewhere      (network scale, lumachrome.color.lab)
    channel 1: b / 110   at hinted pixels, 0 elsewhere
    channel 2: 1         at hinted pixels, 0 elsewhere      (the mask)

No hints is the all-zero map, so one model is both an automatic and an interactive colorizer.

Coordinates
-----------
Users place hints on the *full-resolution* image: pixel ``(x, y)`` with ``x`` the column and ``y``
the row, ``0 <= x < W``, ``0 <= y < H``. The network runs at the working shape ``(hs, ws)`` (see
:func:`lumachrome.colorizer.working_shape`), so pixel centres are mapped with
``xs = floor((x + 0.5) * ws / W)`` (and the same for rows): the working pixel whose footprint holds
the centre of the full-resolution pixel. A hint covers a square ``patch`` of working pixels centred
there (clipped at the borders).

Training (:func:`simulate_hints`): the number of hints per image is geometric with ``p = 1/8``
(Zhang et al. 2017, section 3.2), with a share of images getting none; locations are uniform over the
image; each patch side is uniform in ``1..9`` and its hint value is the mean ground-truth ``ab`` in
the patch.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Iterable, Sequence

import numpy as np
import torch

from lumachrome.color.lab import AB_SCALE, rgb_to_lab_np
from lumachrome.errors import ConfigError

__all__ = [
    "DEFAULT_PATCH",
    "HINT_CHANNELS",
    "Hint",
    "encode_hints",
    "hint_ab",
    "hints_from_ab_at",
    "parse_hint",
    "pin_ab",
    "pin_hints",
    "check_hints",
    "sample_hints_from_ab",
    "simulate_hints",
    "to_working",
]

#: Channels of the hint map: a/110, b/110, mask.
HINT_CHANNELS = 3
#: Side (working pixels) of the square a user hint covers.
DEFAULT_PATCH = 3
#: Spatial reach of hint pinning (:func:`pin_hints`): Gaussian sigma as a fraction of the working
#: long side (24 px at 128), and its lightness tolerance (L units). Chosen on 64 training photos
#: (docs/hints.md), not on the validation set.
PIN_SIGMA_FRACTION = 0.1875
PIN_SIGMA_L = 10.0
_HEX = re.compile(r"^#?([0-9a-fA-F]{6})$")


@dataclass(frozen=True)
class Hint:
    """One colour hint: pixel ``(x, y)`` of the full-resolution image and an sRGB colour.

    ``rgb`` holds floats in ``[0, 1]``. Only the colour's chroma (its Lab ``a``, ``b``) is used: the
    image keeps its own lightness, so a dark hint colour on a bright wall gives a bright wall of
    that hue.
    """

    x: float
    y: float
    rgb: tuple[float, float, float]

    @property
    def hex(self) -> str:
        return "#" + "".join(f"{int(round(min(1.0, max(0.0, c)) * 255)):02x}" for c in self.rgb)

    @classmethod
    def from_hex(cls, x: float, y: float, color: str) -> "Hint":
        m = _HEX.match(color.strip())
        if not m:
            raise ConfigError(f"hint colour {color!r}: expected #rrggbb")
        v = m.group(1)
        return cls(float(x), float(y), tuple(int(v[i:i + 2], 16) / 255.0 for i in (0, 2, 4)))  # type: ignore[arg-type]


def parse_hint(text: str) -> Hint:
    """``"x,y,#rrggbb"`` (pixel column, row of the input image; the ``#`` is optional) -> :class:`Hint`.

    Raises:
        ConfigError: one line naming the bad hint and what is wrong with it.
    """
    parts = [p.strip() for p in str(text).split(",")]
    if len(parts) != 3:
        raise ConfigError(f"--hint {text!r}: expected x,y,#rrggbb (e.g. 120,80,#3366cc)")
    try:
        x, y = float(parts[0]), float(parts[1])
    except ValueError:
        raise ConfigError(f"--hint {text!r}: x and y must be numbers (pixel column and row)") from None
    if not (math.isfinite(x) and math.isfinite(y)) or x < 0 or y < 0:
        raise ConfigError(f"--hint {text!r}: x and y must be pixel coordinates >= 0")
    if not _HEX.match(parts[2]):
        raise ConfigError(f"--hint {text!r}: colour {parts[2]!r} is not #rrggbb")
    return Hint.from_hex(x, y, parts[2])


def hint_ab(hint: Hint) -> tuple[float, float]:
    """Raw Lab ``(a, b)`` of the hint colour."""
    lab = rgb_to_lab_np(np.asarray(hint.rgb, dtype=np.float32).reshape(1, 1, 3))
    return float(lab[0, 0, 1]), float(lab[0, 0, 2])


def check_hints(hints: Sequence[Hint], height: int, width: int, where: str = "hint") -> None:
    """``ConfigError`` for a hint outside a ``height x width`` image."""
    for h in hints:
        if not (0 <= h.x < width and 0 <= h.y < height):
            raise ConfigError(f"{where} at ({h.x:g}, {h.y:g}) ({h.hex}): outside the {width}x{height} image")


def to_working(x: float, y: float, height: int, width: int, hs: int, ws: int) -> tuple[int, int]:
    """Full-resolution pixel ``(x, y)`` of an ``height x width`` image -> working pixel ``(xs, ys)``.

    Pixel centres are mapped (``(x + 0.5) * ws / width``) and the result is clamped into the working
    image, so the first and last pixels map to the first and last working pixels.
    """
    xs = int(math.floor((x + 0.5) * ws / width))
    ys = int(math.floor((y + 0.5) * hs / height))
    return min(max(xs, 0), ws - 1), min(max(ys, 0), hs - 1)


def encode_hints(hints: Iterable[Hint], height: int, width: int, hs: int, ws: int,
                 patch: int = DEFAULT_PATCH) -> np.ndarray:
    """The ``(3, hs, ws)`` float32 hint map of ``hints`` placed on an ``height x width`` image.

    Each hint fills a ``patch x patch`` square of working pixels around its mapped position with its
    ``a/110, b/110`` and sets the mask there. Later hints overwrite earlier ones where they overlap.
    """
    out = np.zeros((HINT_CHANNELS, hs, ws), dtype=np.float32)
    if patch < 1:
        raise ValueError(f"encode_hints: patch must be >= 1, got {patch}")
    lo = (patch - 1) // 2
    for h in hints:
        xs, ys = to_working(h.x, h.y, height, width, hs, ws)
        a, b = hint_ab(h)
        y0, x0 = max(0, ys - lo), max(0, xs - lo)
        y1, x1 = min(hs, ys - lo + patch), min(ws, xs - lo + patch)
        out[0, y0:y1, x0:x1] = a / AB_SCALE
        out[1, y0:y1, x0:x1] = b / AB_SCALE
        out[2, y0:y1, x0:x1] = 1.0
    return out


def pin_hints(ab: np.ndarray, hints: Sequence[Hint], height: int, width: int, L: np.ndarray | None = None,
              *, sigma: float | None = None, sigma_l: float = PIN_SIGMA_L) -> np.ndarray:
    """Make the working-resolution ``ab`` ``(hs, ws, 2)`` take each hint's colour at its position.

    The network propagates hints but only over its receptive field and not always exactly; a user
    who clicks a colour expects that colour there and over the surface it belongs to.
    :func:`pin_ab` with the hints mapped by :func:`to_working` and ``sigma`` (default
    ``PIN_SIGMA_FRACTION`` of the working long side) spreads the remaining difference along
    similar lightness. The result is then upsampled with the rest of ``ab`` and joined with the
    image's own full-resolution lightness, so the hint colour never blurs the photo's detail.
    """
    hs, ws = ab.shape[:2]
    if sigma is None:
        sigma = PIN_SIGMA_FRACTION * max(hs, ws)
    points = [(*to_working(h.x, h.y, height, width, hs, ws), *hint_ab(h)) for h in hints]
    return pin_ab(ab, points, L, sigma=sigma, sigma_l=sigma_l)


def pin_ab(ab: np.ndarray, points: Sequence[tuple[int, int, float, float]], L: np.ndarray | None = None,
           *, sigma: float = 16.0, sigma_l: float = PIN_SIGMA_L) -> np.ndarray:
    """``ab`` ``(h, w, 2)`` corrected to equal ``(a, b)`` at each working pixel ``(x, y, a, b)`` of ``points``.

    For each point the residual ``r = (a, b) - ab[y, x]`` is spread with a Gaussian of ``sigma``
    pixels (weight 1 at the point) and, when ``L`` ``(h, w)`` is given, also weighted by
    ``exp(-(L - L[y, x])**2 / (2 sigma_l**2))`` so it stops at lightness edges (a joint-bilateral
    weight). Overlapping corrections are averaged: ``ab + sum w_i r_i / max(1, sum w_i)``.
    """
    if not len(points):
        return ab
    hs, ws = ab.shape[:2]
    yy, xx = np.mgrid[0:hs, 0:ws].astype(np.float32)
    num = np.zeros((hs, ws, 2), dtype=np.float32)
    den = np.zeros((hs, ws), dtype=np.float32)
    for x, y, a, b in points:
        w = np.exp(-((xx - x) ** 2 + (yy - y) ** 2) / (2 * sigma**2))
        if L is not None:
            w = w * np.exp(-((L - L[y, x]) ** 2) / (2 * sigma_l**2))
        r = np.asarray((a, b), dtype=np.float32) - ab[y, x]
        num += w[:, :, None] * r
        den += w
    return (ab + num / np.maximum(1.0, den)[:, :, None]).astype(np.float32)


def _box_mean(ab: torch.Tensor, y0: torch.Tensor, x0: torch.Tensor, y1: torch.Tensor, x1: torch.Tensor) -> torch.Tensor:
    """Mean of ``ab`` ``(2, H, W)`` over boxes ``[y0, y1) x [x0, x1)`` (vectors of n) via an integral image."""
    c = ab.shape[0]
    ii = torch.zeros((c, ab.shape[1] + 1, ab.shape[2] + 1), dtype=torch.float64, device=ab.device)
    ii[:, 1:, 1:] = ab.double().cumsum(1).cumsum(2)
    s = ii[:, y1, x1] - ii[:, y0, x1] - ii[:, y1, x0] + ii[:, y0, x0]
    area = ((y1 - y0) * (x1 - x0)).clamp(min=1).double()
    return (s / area).float()  # (2, n)


def sample_hints_from_ab(ab: torch.Tensor, n: int, generator: torch.Generator, *, min_patch: int = 1,
                         max_patch: int = 9) -> torch.Tensor:
    """The ``(3, H, W)`` hint map of ``n`` random hints taken from one ground truth ``ab`` ``(2, H, W)``.

    Locations are uniform over the image; each patch side is uniform in ``[min_patch, max_patch]``
    (clipped at the borders) and carries the mean ground-truth ``ab`` of its pixels.
    """
    _, H, W = ab.shape
    if n <= 0:
        return torch.zeros((HINT_CHANNELS, H, W), dtype=torch.float32, device=ab.device)
    ys = torch.randint(0, H, (n,), generator=generator)
    xs = torch.randint(0, W, (n,), generator=generator)
    side = torch.randint(min_patch, max_patch + 1, (n,), generator=generator)
    return hints_from_ab_at(ab, ys, xs, side)


def hints_from_ab_at(ab: torch.Tensor, ys: torch.Tensor, xs: torch.Tensor, side: torch.Tensor | int) -> torch.Tensor:
    """The ``(3, H, W)`` hint map of patches centred at ``(ys[i], xs[i])`` with sides ``side``
    (clipped at the borders), each carrying the mean ground-truth ``ab`` ``(2, H, W)`` of its pixels."""
    _, H, W = ab.shape
    out = torch.zeros((HINT_CHANNELS, H, W), dtype=torch.float32, device=ab.device)
    n = int(ys.numel())
    if n == 0:
        return out
    side = torch.as_tensor(side).expand(n) if not isinstance(side, torch.Tensor) or side.dim() == 0 else side
    lo = (side - 1) // 2
    y0, x0 = (ys - lo).clamp(min=0), (xs - lo).clamp(min=0)
    y1, x1 = (ys - lo + side).clamp(max=H), (xs - lo + side).clamp(max=W)
    means = _box_mean(ab, y0.to(ab.device), x0.to(ab.device), y1.to(ab.device), x1.to(ab.device)) / AB_SCALE
    for i in range(n):
        out[0, y0[i]:y1[i], x0[i]:x1[i]] = means[0, i]
        out[1, y0[i]:y1[i], x0[i]:x1[i]] = means[1, i]
        out[2, y0[i]:y1[i], x0[i]:x1[i]] = 1.0
    return out


def simulate_hints(ab: torch.Tensor, generator: torch.Generator, *, p: float = 1 / 8, zero_share: float = 0.2,
                   max_points: int = 64, min_patch: int = 1, max_patch: int = 9) -> torch.Tensor:
    """Training hints for a batch of ground truth ``ab`` ``(B, 2, H, W)`` -> ``(B, 3, H, W)``.

    Per image: with probability ``zero_share`` no hints; otherwise ``n ~ Geometric(p)`` on
    ``{1, 2, ...}`` (mean ``1/p``; Zhang et al. 2017 use ``p = 1/8``), capped at ``max_points``,
    then :func:`sample_hints_from_ab`. All randomness comes from ``generator`` (CPU).
    """
    if ab.dim() != 4 or ab.shape[1] != 2:
        raise ValueError(f"simulate_hints: expected ab of shape (B, 2, H, W), got {tuple(ab.shape)}")
    B = ab.shape[0]
    u = torch.rand(B, generator=generator, dtype=torch.float64)
    # Inverse CDF of the geometric distribution on {1, 2, ...}: n = ceil(log(1 - v) / log(1 - p)).
    v = torch.rand(B, generator=generator, dtype=torch.float64)
    n = torch.ceil(torch.log1p(-v) / math.log1p(-p)).clamp(1, max_points).long()
    n = torch.where(u < zero_share, torch.zeros_like(n), n)
    return torch.stack([sample_hints_from_ab(ab[i], int(n[i]), generator, min_patch=min_patch,
                                             max_patch=max_patch) for i in range(B)])
