"""Make a photo look like an old print: the project's own aging function.

:func:`degrade` turns any photo into a plausible old black-and-white print: the colour is dropped
(lightness only), then, in the order a real print ages,

1. **blur** (soft optics, print contact), Gaussian, sigma in px at a 512 px long side;
2. **fading**: blacks lifted and whites dimmed, ``L' = black + (white - black) (L / 100)^gamma``;
3. **stains and vignetting**: a smooth multiplicative field (low-frequency noise) and a radial
   darkening ``1 - v r^2``;
4. **dust and scratches**: bright (mostly) or dark specks (ellipses of 0.5-3 px radius) and thin,
   slightly curved lines, anti-aliased, composited over the print;
5. **grain**: spatially correlated Gaussian noise in ``L`` units;
6. **toning**: a sepia / selenium / cyanotype / yellowed-paper tint, an ``ab`` offset stronger in
   the mid-tones than at the extremes.

It serves three purposes: test inputs for :mod:`lumachrome.restore.prepare` (the returned defect
mask is the ground truth of :func:`~lumachrome.restore.prepare.detect_defects`), the example images
of ``docs/historical.md`` (made from scikit-image's bundled photos), and **training augmentation**:
:func:`degrade_lightness` ages a lightness channel only, so a network can learn to predict the
clean photo's ``ab`` from an aged ``L``::

    rng = np.random.default_rng(seed)
    L_in, _ = degrade_lightness(L_clean, rng, random_aging(rng, strength=0.7))

Everything is numpy + OpenCV, about 10 ms for a 512x512 image.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import cv2
import numpy as np

from lumachrome.color.lab import as_float_image, lab_to_rgb_np, lightness

__all__ = ["TINTS", "Aging", "degrade", "degrade_lightness", "random_aging", "tone"]

#: Typical toner / paper colours as raw ``(a, b)`` at full strength (mid-tones).
TINTS: dict[str, tuple[float, float]] = {
    "sepia": (7.0, 20.0),
    "warm": (3.0, 12.0),  # yellowed paper, warm-tone developer
    "selenium": (4.0, -2.0),  # purple-brown
    "cyanotype": (-6.0, -22.0),
    "none": (0.0, 0.0),
}


@dataclass(frozen=True)
class Aging:
    """Parameters of one aging (all optional steps; zero disables a step).

    Attributes:
        tint_ab: raw ``(a, b)`` of the toner in the mid-tones (see :data:`TINTS`).
        tint: tint strength in ``[0, 1]`` (0: neutral gray print).
        fade: fading in ``[0, 1]``: blacks lifted to ``35 fade``, whites dimmed to ``100 - 20 fade``.
        gamma: exposure curve exponent applied with the fading (``< 1`` lighter, ``> 1`` darker).
        blur: Gaussian blur sigma in px at a 512 px long side (scaled with the image).
        stains: amplitude of the smooth multiplicative stain field (0.1 = +-10 %).
        vignette: radial darkening at the corners, in ``[0, 1]``.
        dust: number of dust specks per 512x512 px of image.
        scratches: number of scratches (independent of size).
        grain: grain standard deviation in ``L`` units.
    """

    tint_ab: tuple[float, float] = TINTS["sepia"]
    tint: float = 1.0
    fade: float = 0.3
    gamma: float = 1.0
    blur: float = 0.8
    stains: float = 0.05
    vignette: float = 0.3
    dust: int = 40
    scratches: int = 4
    grain: float = 3.0

    def replace(self, **changes) -> "Aging":
        """A copy with some fields changed."""
        return dataclasses.replace(self, **changes)


def random_aging(rng: np.random.Generator, strength: float = 1.0) -> Aging:
    """Random aging parameters; ``strength`` in ``[0, 1]`` scales every defect (0: none).

    The toner is sepia half of the time, then warm, selenium, none, cyanotype.
    """
    s = float(np.clip(strength, 0.0, 1.0))
    name = rng.choice(["sepia", "sepia", "sepia", "warm", "warm", "selenium", "none", "cyanotype"])
    return Aging(
        tint_ab=TINTS[str(name)],
        tint=s * float(rng.uniform(0.5, 1.2)),
        fade=s * float(rng.uniform(0.0, 0.7)),
        gamma=float(np.exp(s * rng.uniform(-0.35, 0.35))),
        blur=s * float(rng.uniform(0.0, 1.5)),
        stains=s * float(rng.uniform(0.0, 0.12)),
        vignette=s * float(rng.uniform(0.0, 0.5)),
        dust=int(round(s * rng.uniform(0, 80))),
        scratches=int(round(s * rng.uniform(0, 8))),
        grain=s * float(rng.uniform(0.5, 6.0)),
    )


def _smooth_field(rng: np.random.Generator, h: int, w: int, cells: int = 6) -> np.ndarray:
    """Low-frequency noise in about ``[-1, 1]``: a ``cells``-wide random grid, bicubic upsampled."""
    gh, gw = max(2, round(cells * h / max(h, w))), max(2, round(cells * w / max(h, w)))
    grid = rng.uniform(-1.0, 1.0, size=(gh, gw)).astype(np.float32)
    return cv2.resize(grid, (w, h), interpolation=cv2.INTER_CUBIC)


def _defects(rng: np.random.Generator, h: int, w: int, aging: Aging, scale: float) -> tuple[np.ndarray, np.ndarray]:
    """Defect layer: ``(alpha (H, W) float32 in [0, 1], value (H, W) float32 L)``."""
    alpha8 = np.zeros((h, w), np.uint8)  # anti-aliased coverage
    value = np.zeros((h, w), np.float32)  # the defect's own L, painted slightly wider
    n_dust = int(round(aging.dust * h * w / 512**2))
    for _ in range(n_dust):
        cx, cy = int(rng.integers(0, w)), int(rng.integers(0, h))
        r = float(np.clip(rng.lognormal(0.0, 0.5), 0.5, 3.0)) * scale
        ax = max(1, int(round(r))), max(1, int(round(r * rng.uniform(0.5, 1.0))))
        angle = float(rng.uniform(0, 180))
        v = float(rng.uniform(88, 100)) if rng.random() < 0.75 else float(rng.uniform(3, 15))
        cv2.ellipse(alpha8, (cx, cy), ax, angle, 0, 360, 255, -1, cv2.LINE_AA)
        cv2.ellipse(value, (cx, cy), ax, angle, 0, 360, v, -1, cv2.LINE_8)
    for _ in range(int(aging.scratches)):
        # mostly near-vertical (film transport, print handling), some at any angle
        theta = rng.normal(math.pi / 2, 0.15) if rng.random() < 0.7 else rng.uniform(0, math.pi)
        length = rng.uniform(0.2, 0.9) * max(h, w)
        x0, y0 = rng.uniform(0, w), rng.uniform(0, h)
        n = 6
        t = np.linspace(0.0, 1.0, n)
        bend = rng.normal(0.0, 0.02 * length) * np.sin(np.pi * t)  # a gentle arc
        xs = x0 + np.cos(theta) * length * t - np.sin(theta) * bend
        ys = y0 + np.sin(theta) * length * t + np.cos(theta) * bend
        pts = np.stack([xs, ys], axis=1).round().astype(np.int32)[None]
        thick = max(1, int(round(scale * rng.uniform(0.8, 1.6))))
        v = float(rng.uniform(85, 100)) if rng.random() < 0.8 else float(rng.uniform(5, 20))
        cv2.polylines(alpha8, pts, False, 255, thick, cv2.LINE_AA)
        cv2.polylines(value, pts, False, v, thick + 1, cv2.LINE_8)
    alpha = alpha8.astype(np.float32) * np.float32(1 / 255)
    alpha *= np.float32(0.9)  # defects are not perfectly opaque
    return alpha, value


def degrade_lightness(
    L: np.ndarray,
    rng: np.random.Generator,
    aging: Aging | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Age a lightness channel (steps 1-5 of the module docstring; no toning).

    Args:
        L: float ``(H, W)`` raw lightness in ``[0, 100]``.
        rng: random generator (all randomness comes from it: same seed, same result).
        aging: parameters (default :class:`Aging`). Toning needs colour: see :func:`tone`.

    Returns:
        ``(L_aged float32 (H, W) in [0, 100], defects bool (H, W))``: the mask marks the pixels
        covered by dust or scratches (alpha > 0.3).
    """
    aging = aging or Aging()
    L = np.asarray(L, dtype=np.float32)
    if L.ndim != 2 or min(L.shape) < 1:
        raise ValueError(f"degrade_lightness: expected L of shape (H, W), got {L.shape}")
    h, w = L.shape
    scale = max(h, w) / 512.0
    out = L.copy()
    if aging.blur > 0:  # 1. soft optics
        out = cv2.GaussianBlur(out, (0, 0), sigmaX=max(0.1, aging.blur * scale))
    if aging.fade > 0 or aging.gamma != 1.0:  # 2. fading: lifted blacks, dimmed whites, exposure
        black, white = 35.0 * aging.fade, 100.0 - 20.0 * aging.fade
        x = np.clip(out / np.float32(100), 0.0, 1.0) ** np.float32(aging.gamma)
        out = np.float32(black) + np.float32(white - black) * x
    if aging.stains > 0 or aging.vignette > 0:  # 3. stains, vignetting
        field = np.float32(1) + np.float32(aging.stains) * _smooth_field(rng, h, w)
        if aging.vignette > 0:
            yy, xx = np.ogrid[:h, :w]
            r2 = ((xx - (w - 1) / 2) / (w / 2)) ** 2 + ((yy - (h - 1) / 2) / (h / 2)) ** 2
            field *= (np.float32(1) - np.float32(aging.vignette / 2) * r2.astype(np.float32)).clip(0.2, 1.0)
        out = out * field
    mask = np.zeros((h, w), bool)
    if aging.dust > 0 or aging.scratches > 0:  # 4. dust and scratches
        alpha, value = _defects(rng, h, w, aging, max(1.0, scale))
        out = out + alpha * (value - out)
        mask = alpha > 0.3
    if aging.grain > 0:  # 5. grain: correlated over ~1 px at 512
        noise = rng.standard_normal((h, w), dtype=np.float32)
        sigma = 0.6 * max(1.0, scale)
        noise = cv2.GaussianBlur(noise, (0, 0), sigmaX=sigma)
        noise *= np.float32(aging.grain / max(1e-6, float(noise.std())))
        out = out + noise
    return np.clip(out, 0.0, 100.0).astype(np.float32), mask


def tone(L: np.ndarray, tint_ab: tuple[float, float], amount: float = 1.0) -> np.ndarray:
    """Toned print: sRGB ``(H, W, 3)`` float32 whose lightness is ``L`` and whose ``ab`` is the tint.

    The tint is strongest in the mid-tones: ``ab = amount * tint_ab * (0.4 + 2.4 l (1 - l))`` with
    ``l = L / 100`` (0.4 at black and white, 1.0 at ``L = 50``).
    """
    L = np.asarray(L, dtype=np.float32)
    l = np.clip(L / np.float32(100), 0.0, 1.0)
    weight = np.float32(amount) * (np.float32(0.4) + np.float32(2.4) * l * (1 - l))
    lab = np.empty(L.shape + (3,), np.float32)
    lab[:, :, 0] = L
    lab[:, :, 1] = weight * np.float32(tint_ab[0])
    lab[:, :, 2] = weight * np.float32(tint_ab[1])
    return lab_to_rgb_np(lab)


def degrade(
    image: np.ndarray,
    rng: np.random.Generator | None = None,
    *,
    aging: Aging | None = None,
    strength: float = 1.0,
    return_mask: bool = False,
) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
    """Age a photo into an old toned print (see the module docstring).

    Args:
        image: ``(H, W)`` gray or ``(H, W, 3)`` sRGB (float in [0, 1], uint8 or uint16).
        rng: random generator (default: a fresh unseeded one).
        aging: explicit parameters; default :func:`random_aging` ``(rng, strength)``.
        strength: used only when ``aging`` is None.
        return_mask: also return the dust/scratch mask.

    Returns:
        float32 ``(H, W, 3)`` sRGB in ``[0, 1]`` (and the bool ``(H, W)`` defect mask).
    """
    rng = rng if rng is not None else np.random.default_rng()
    aging = aging if aging is not None else random_aging(rng, strength)
    L_aged, mask = degrade_lightness(lightness(as_float_image(image)), rng, aging)
    rgb = tone(L_aged, aging.tint_ab, aging.tint)
    return (rgb, mask) if return_mask else rgb
