"""Preparation of old prints before colorization: a clean lightness channel from a damaged scan.

Old photographs are rarely clean gray images: they are toned (sepia, selenium), faded (lifted
blacks, dimmed whites), under- or over-exposed, grainy, dusty and scratched. :func:`prepare` runs
these optional steps, each visible in :attr:`Prepared.steps`:

1. **neutralise** (:func:`detect_tint`): the tint is measured (median ``ab`` of the mid-tones and
   how far the pixels stray from one hue line) and dropped: only CIE ``L`` is kept. A photo that is
   really in colour is reported as such (``monochrome=False``); its ``L`` is used all the same.
2. **levels** (:func:`normalize_levels`): a percentile stretch of ``L`` (0.5 / 99.5 % -> 2 / 98,
   gain at most 4) and a gamma that brings a very dark or very bright median towards the middle.
3. **defects** (:func:`remove_defects` = :func:`detect_defects` + :func:`inpaint`, on a 4 MP copy
   for larger scans): dust and scratches are the pixels that
   differ strongly from a median-filtered copy (a morphological-median "top-hat"), kept when their
   connected component is small (dust) or long and thin (scratch); they are filled with
   ``cv2.inpaint`` (Telea 2004).
4. **denoise** (:func:`denoise`): the grain level is estimated (Immerkaer 1996, median form) and
   removed with ``cv2.fastNlMeansDenoising`` (Buades et al. 2005), ``h`` proportional to it;
   above 4 MP a smaller search window keeps it at ~0.2 s/MP on one core.
5. **contrast** (CLAHE, Zuiderveld 1994): local contrast equalisation of ``L``
   (``cv2.createCLAHE``, clip limit 1.5, 8x8 tiles).

OpenCV works in 8 bits for steps 4-5: the *change* it makes is added to the float ``L``
(``L + (f(L8) - L8) / 2.55``), so smooth gradients do not get 8-bit banding.
:func:`before_after` builds the side-by-side view (input | prepared | colorized).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Sequence

import cv2
import numpy as np

from lumachrome.color.lab import as_float_image, gray_from_lightness, lab_to_rgb_np, lightness, rgb_to_lab_np
from lumachrome.errors import ConfigError

__all__ = [
    "PrepareOptions",
    "Prepared",
    "Step",
    "Tint",
    "before_after",
    "denoise",
    "detect_defects",
    "detect_tint",
    "estimate_noise",
    "inpaint",
    "local_contrast",
    "normalize_levels",
    "prepare",
    "remove_defects",
]

#: ``L`` units per 8-bit level when OpenCV works on ``uint8(L * 2.55)``.
_TO8 = np.float32(2.55)
#: Above this many pixels, non-local means uses a 5x5 patch / 11x11 search window.
FAST_DENOISE_PIXELS = 4_000_000
#: Above this many pixels, dust and scratches are found and filled on a copy of this size.
DEFECT_MAX_PIXELS = 4_000_000
#: Median radius, largest dust area and widest scratch (px at a 1024 px long side) of detect_defects.
KERNEL_RADIUS, DUST_AREA, SCRATCH_WIDTH, TEXTURE_WEIGHT = 5, 30.0, 1.5, 3.0
#: Smallest defect contrast (8-bit levels) and the extra factor for dark defects.
FLOOR, DARK_FACTOR, LINE_FACTOR, SPREAD_FACTOR, MIN_DUST_AREA = 40.0, 2.0, 0.6, 3.5, 3


def _to8(L: np.ndarray) -> np.ndarray:
    return np.clip(L * _TO8 + np.float32(0.5), 0, 255).astype(np.uint8)


def _check_L(L: np.ndarray, name: str) -> np.ndarray:
    if not isinstance(L, np.ndarray) or L.ndim != 2 or min(L.shape) < 1:
        shape = getattr(L, "shape", type(L).__name__)
        raise ValueError(f"{name}: expected L of shape (H, W), got {shape}")
    return np.asarray(L, dtype=np.float32)


# --------------------------------------------------------------------------------------------
# 1. tint


@dataclass(frozen=True)
class Tint:
    """What :func:`detect_tint` found.

    Attributes:
        a, b: median raw ``a, b`` of the mid-tones (the tint colour).
        chroma: ``hypot(a, b)``.
        spread: 90th percentile of the distance of each pixel's ``ab`` from the tint's hue line
            (0 for a perfectly toned print, tens for a colour photo).
        monochrome: the image has one hue at most (a gray or toned print).
        tinted: monochrome with a visible tint (``chroma`` above the threshold).
    """

    a: float
    b: float
    chroma: float
    spread: float
    monochrome: bool
    tinted: bool

    @property
    def hue(self) -> float:
        """Hue angle of the tint in degrees (``atan2(b, a)``, 0..360)."""
        return math.degrees(math.atan2(self.b, self.a)) % 360.0

    def describe(self) -> str:
        if not self.monochrome:
            return f"colour image (hue spread {self.spread:.1f}): lightness used"
        if not self.tinted:
            return f"neutral gray (chroma {self.chroma:.1f})"
        return f"tint a={self.a:+.1f} b={self.b:+.1f} (chroma {self.chroma:.1f}, hue {self.hue:.0f} deg) removed"


def detect_tint(image: np.ndarray, *, chroma_threshold: float = 2.0, spread_threshold: float = 6.0) -> Tint:
    """Measure the tint of a scan (sepia, selenium, cyanotype, yellowed paper).

    On a copy whose long side is at most 512 px, pixels with ``10 < L < 95`` give the median
    ``ab`` (the tint) and the hue *spread*: the 90th percentile of each pixel's distance to the line
    through 0 and the tint in the ab plane. A toned print has all its ``ab`` on that line (the
    toner's hue, stronger or weaker), a colour photo has many hues.

    Args:
        image: ``(H, W)`` or ``(H, W, 3)`` sRGB (float [0, 1], uint8, uint16).
        chroma_threshold: median chroma above which a monochrome image counts as tinted.
        spread_threshold: largest hue spread of a monochrome image.

    Returns:
        :class:`Tint`; a 2-D (gray) input gives a neutral monochrome result.
    """
    x = as_float_image(image)
    if x.ndim == 2:
        return Tint(0.0, 0.0, 0.0, 0.0, True, False)
    h, w = x.shape[:2]
    if max(h, w) > 512:
        s = 512 / max(h, w)
        x = cv2.resize(x, (max(1, round(w * s)), max(1, round(h * s))), interpolation=cv2.INTER_AREA)
    lab = rgb_to_lab_np(np.ascontiguousarray(x)).reshape(-1, 3)
    sel = (lab[:, 0] > 10) & (lab[:, 0] < 95)
    ab = lab[sel, 1:] if sel.sum() >= 16 else lab[:, 1:]
    a, b = (float(v) for v in np.median(ab, axis=0))
    chroma = math.hypot(a, b)
    if chroma > 1.0:
        u = np.array([-b, a], np.float32) / np.float32(chroma)  # normal of the hue line
        dist = np.abs(ab @ u)
    else:
        dist = np.hypot(ab[:, 0], ab[:, 1])
    spread = float(np.percentile(dist, 90))
    monochrome = spread <= spread_threshold
    return Tint(a, b, chroma, spread, monochrome, monochrome and chroma > chroma_threshold)


# --------------------------------------------------------------------------------------------
# 2. levels and 5. contrast


def normalize_levels(
    L: np.ndarray,
    *,
    low: float = 0.5,
    high: float = 99.5,
    target: tuple[float, float] = (2.0, 98.0),
    max_gain: float = 4.0,
    dark_median: float = 35.0,
    bright_median: float = 75.0,
) -> np.ndarray:
    """Undo fading and bad exposure: percentile stretch, then a gamma on a dark/bright median.

    1. ``L' = target_lo + (L - p_low) * gain`` with ``gain = (target_hi - target_lo) /
       (p_high - p_low)``, applied only when it expands the range, at most ``max_gain``
       (a flat image is not blown up into noise).
    2. If the median of ``L'`` is below ``dark_median`` (or above ``bright_median``),
       ``L'' = 100 (L' / 100)^gamma`` with gamma in ``[0.45, 2]`` bringing it to 45 (resp. 65).

    Args:
        L: float ``(H, W)`` raw lightness in ``[0, 100]``.

    Returns:
        float32 ``(H, W)`` in ``[0, 100]``.
    """
    L = _check_L(L, "normalize_levels")
    step = max(1, int(math.sqrt(L.size / 250_000)))
    sample = L[::step, ::step]
    lo, hi = (float(v) for v in np.percentile(sample, [low, high]))
    out = L
    if hi - lo > 1e-3:
        gain = min(max_gain, (target[1] - target[0]) / (hi - lo))
        if gain > 1.0 or lo > target[0] + 1 or hi < target[1] - 1:
            gain = max(gain, 1.0)
            # centre the stretched range on the target's middle when the gain is capped
            offset = (target[0] + target[1]) / 2 - gain * (lo + hi) / 2
            out = np.clip(L * np.float32(gain) + np.float32(offset), 0.0, 100.0)
    med = float(np.median(out[::step, ::step]))
    if 1.0 < med < dark_median or bright_median < med < 99.0:
        goal = 45.0 if med < dark_median else 65.0
        gamma = float(np.clip(math.log(goal / 100) / math.log(med / 100), 0.45, 2.0))
        out = np.float32(100) * np.power(np.clip(out / np.float32(100), 0.0, 1.0), np.float32(gamma))
    return np.asarray(out, dtype=np.float32)


def local_contrast(L: np.ndarray, clip_limit: float = 1.5, tiles: int = 8) -> np.ndarray:
    """CLAHE (Zuiderveld 1994) on ``L``: ``cv2.createCLAHE(clip_limit, (tiles, tiles))``.

    The 8-bit change is added to the float ``L`` (no banding). ``clip_limit <= 0`` returns ``L``.
    """
    L = _check_L(L, "local_contrast")
    if clip_limit <= 0:
        return L.copy()
    L8 = _to8(L)
    eq = cv2.createCLAHE(clipLimit=float(clip_limit), tileGridSize=(int(tiles), int(tiles))).apply(L8)
    delta = (eq.astype(np.float32) - L8.astype(np.float32)) / _TO8
    return np.clip(L + delta, 0.0, 100.0)


# --------------------------------------------------------------------------------------------
# 3. dust and scratches


def estimate_noise(L: np.ndarray) -> float:
    """Standard deviation of the grain in ``L`` (``L`` units), robust to edges and texture.

    Two estimates, the larger one wins:

    * Immerkaer (1996): the 3x3 mask ``N = [[1,-2,1],[-2,4,-2],[1,-2,1]]`` cancels smooth image
      structure; on white noise of std ``s``, ``L * N`` has std ``6 s`` (``sum N^2 = 36``). The median
      absolute response (``0.6745 std`` for Gaussians) replaces the paper's mean so that edges do
      not inflate it. Film grain is correlated over a pixel or two, which this under-reads.
    * flat patches: the 10th percentile of the 7x7 local standard deviation, divided by 0.87 (the
      10th percentile of a 49-sample std of white noise): grain measured where the photo is flat
      (sky, walls, skin), whatever its correlation.

    Computed on a copy of at most ~4 MP.
    """
    L = _check_L(L, "estimate_noise")
    if min(L.shape) < 9:
        return 0.0
    step = max(1, int(math.sqrt(L.size / 4_000_000)))
    x = np.ascontiguousarray(L[::step, ::step]) if step > 1 else L
    kernel = np.array([[1, -2, 1], [-2, 4, -2], [1, -2, 1]], np.float32)
    r = cv2.filter2D(x, cv2.CV_32F, kernel, borderType=cv2.BORDER_REFLECT)[1:-1, 1:-1]
    immerkaer = float(np.median(np.abs(r)) / (0.6745 * 6.0))
    mean = cv2.blur(x, (7, 7))
    var = np.maximum(cv2.blur(x * x, (7, 7)) - mean * mean, 0.0)[3:-3:2, 3:-3:2]
    flat = float(np.sqrt(np.percentile(var, 10))) / 0.87
    return max(immerkaer, flat)


def detect_defects(
    L: np.ndarray,
    *,
    sensitivity: float = 1.0,
    noise: float | None = None,
    scale: float | None = None,
) -> np.ndarray:
    """Dust specks and scratches of a scan: a bool ``(H, W)`` mask.

    A defect is a small or thin structure much brighter or darker than its surroundings:

    1. ``d = L - median_k(L)`` (``k = 11`` px at a 1024 px long side, scaled): a median filter of
       that size removes specks and lines narrower than ~5 px, so ``d`` is the residue (a
       "top-hat" of the median) that holds them.
    2. Candidates: ``d > t`` (bright) or ``d < -2 t`` (dark: dark thin lines are more often real -
       wires, branches, pupils) with, in 8-bit levels,
       ``t = (max(40, 3.5 noise, 3.5 spread) + 3 texture) / sensitivity``; ``spread`` = 1.4826 median
       ``|d|`` (the residue's robust std: grain and fine detail), ``texture`` = the local mean of
       ``|d|`` over the *quiet* pixels of a ``2k+1`` window (busy in foliage or fabric, near 0
       around an isolated speck or scratch).
    3. Connected components of the candidates (joined by a 3x3 closing) are kept when they are
       *dust* (3 to ``30 scale^2`` px: single pixels are grain) or *scratches*: long (``sqrt(12)`` times the std of
       their pixels along the main axis, i.e. the length of a segment, at least ``25 scale`` px)
       and thin across it (std across the axis at most ``1.5 scale`` px), from the components'
       second moments. Curved outlines, corners and blobs are neither.
       Faint or broken straight scratches are also found with oriented line filters: the mean
       of ``d`` along 25-px segments at 12 angles (noise averages out, a scratch does not); a
       pixel joins when that mean exceeds ``0.6 t`` and its own ``d`` exceeds ``0.3 t``.
    4. The mask is dilated by ``scale`` px to cover the anti-aliased rims.

    On clean, detailed photos about 1-2 % of the pixels are flagged (catchlights, stars on a
    flag, specular glints): inpainting them softens such details slightly. The step can be
    skipped (``PrepareOptions(defects=False)``, ``--restore-skip defects``).

    Args:
        L: float ``(H, W)`` raw lightness.
        sensitivity: > 1 finds fainter defects (and more false ones).
        noise: grain std in ``L`` units (default :func:`estimate_noise`).
        scale: size factor (default ``max(1, long side / 1024)``).

    Returns:
        bool ``(H, W)``.
    """
    L = _check_L(L, "detect_defects")
    if sensitivity <= 0:
        raise ConfigError(f"defect sensitivity must be > 0, got {sensitivity}")
    h, w = L.shape
    s = float(scale) if scale is not None else max(1.0, max(h, w) / 1024.0)
    noise8 = float(noise if noise is not None else estimate_noise(L)) * float(_TO8)
    k = 2 * int(round(KERNEL_RADIUS * s)) + 1
    L8 = _to8(L)
    med = cv2.medianBlur(L8, k)
    d = L8.astype(np.int16) - med.astype(np.int16)
    # spread of the residue itself: grain (correlated grain included, which the Immerkaer
    # estimate under-reads) and fine texture; 1.4826 MAD = std for Gaussian residues
    step = max(1, int(math.sqrt(d.size / 1_000_000)))
    spread = 1.4826 * float(np.median(np.abs(d[::step, ::step])))
    base = max(FLOOR, SPREAD_FACTOR * noise8, SPREAD_FACTOR * spread)
    # texture: the local mean of |d| *around* the strong outliers (foliage, fabric and detailed
    # areas are busy everywhere; around an isolated speck or scratch the residue is quiet)
    absd = np.abs(d).astype(np.float32)
    quiet = (absd <= base).astype(np.float32)
    win = (2 * k + 1, 2 * k + 1)
    texture = cv2.blur(absd * quiet, win) / np.maximum(cv2.blur(quiet, win), np.float32(1e-3))
    t = (base + np.float32(TEXTURE_WEIGHT) * texture) / float(sensitivity)
    cand = ((d > t) | (d < -DARK_FACTOR * t)).astype(np.uint8)
    if not cand.any():
        return np.zeros((h, w), bool)
    joined = cv2.morphologyEx(cand, cv2.MORPH_CLOSE, np.ones((3, 3), np.uint8))
    n, labels, stats, _ = cv2.connectedComponentsWithStats(joined, connectivity=8)
    area = stats[:, cv2.CC_STAT_AREA].astype(np.float64)
    # principal axes of every component from its pixel moments (one bincount pass per moment)
    ys, xs = np.nonzero(labels)
    lab = labels[ys, xs]
    cnt = np.maximum(np.bincount(lab, minlength=n).astype(np.float64), 1.0)
    xs, ys = xs.astype(np.float64), ys.astype(np.float64)
    mx, my = np.bincount(lab, xs, n) / cnt, np.bincount(lab, ys, n) / cnt
    cxx = np.bincount(lab, xs * xs, n) / cnt - mx * mx
    cyy = np.bincount(lab, ys * ys, n) / cnt - my * my
    cxy = np.bincount(lab, xs * ys, n) / cnt - mx * my
    half = np.sqrt(np.maximum(((cxx - cyy) / 2) ** 2 + cxy**2, 0.0))
    major = np.sqrt(np.maximum((cxx + cyy) / 2 + half, 0.0))  # std along the main axis
    minor = np.sqrt(np.maximum((cxx + cyy) / 2 - half, 0.0))  # std across it
    dust = (area <= DUST_AREA * s * s) & (area >= MIN_DUST_AREA)  # single pixels: grain
    # a scratch: long (a uniform segment of length l has std l / sqrt(12)) and straight-ish thin
    # (small spread across its axis: curved object outlines and corners fail this)
    scratch = (major * math.sqrt(12.0) >= 25.0 * s) & (minor <= SCRATCH_WIDTH * s)
    keep = dust | scratch
    keep[0] = False  # background
    mask = (keep[labels] & (cand > 0)).astype(np.uint8)
    # faint or broken straight scratches: the mean of d along line segments (12 orientations,
    # 25 scale px long) averages grain and texture away (noise / sqrt(length)) while a straight
    # scratch keeps its contrast; pixels on a strong line response that are themselves clearly
    # off the median join the mask
    if LINE_FACTOR > 0:
        n_len = max(9, int(round(25.0 * s)) | 1)
        c = n_len // 2
        df = d.astype(np.float32)
        bright = np.full(d.shape, -np.inf, np.float32)
        dark = np.full(d.shape, np.inf, np.float32)
        for i in range(12):
            ang = np.pi * i / 12
            dx, dy = np.cos(ang) * c, np.sin(ang) * c
            kern = np.zeros((n_len, n_len), np.float32)
            p0 = (int(round(c - dx)), int(round(c - dy)))
            p1 = (int(round(c + dx)), int(round(c + dy)))
            cv2.line(kern, p0, p1, 1.0, 1)
            resp = cv2.filter2D(df, -1, kern / kern.sum(), borderType=cv2.BORDER_REFLECT)
            np.maximum(bright, resp, out=bright)
            np.minimum(dark, resp, out=dark)
        tl = np.float32(LINE_FACTOR) * t
        lines = ((bright > tl) & (d > 0.5 * tl)) | ((dark < -DARK_FACTOR * tl) & (d < -0.5 * DARK_FACTOR * tl))
        mask |= lines.astype(np.uint8)
    r = max(1, int(round(s)))
    mask = cv2.dilate(mask, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * r + 1, 2 * r + 1)))
    return mask.astype(bool)


def inpaint(L: np.ndarray, mask: np.ndarray, radius: float | None = None) -> np.ndarray:
    """Fill the ``mask`` pixels of ``L`` from their surroundings (``cv2.inpaint``, Telea 2004).

    Args:
        L: float ``(H, W)``; mask: bool ``(H, W)``; radius: neighbourhood in px (default
            ``3 max(1, long side / 1024)``).

    Returns:
        float32 ``(H, W)``; unmasked pixels unchanged.
    """
    L = _check_L(L, "inpaint")
    mask = np.asarray(mask)
    if mask.shape != L.shape:
        raise ValueError(f"inpaint: mask shape {mask.shape} differs from L shape {L.shape}")
    if not mask.any():
        return L.copy()
    r = float(radius) if radius is not None else 3.0 * max(1.0, max(L.shape) / 1024.0)
    m8 = mask.astype(np.uint8)
    # only the bounding box of the mask (plus the radius) goes through OpenCV
    ys, xs = np.nonzero(m8)
    pad = int(math.ceil(r)) + 2
    y0, y1 = max(0, ys.min() - pad), min(L.shape[0], ys.max() + pad + 1)
    x0, x1 = max(0, xs.min() - pad), min(L.shape[1], xs.max() + pad + 1)
    out = L.copy()
    out[y0:y1, x0:x1] = cv2.inpaint(
        np.ascontiguousarray(L[y0:y1, x0:x1]), np.ascontiguousarray(m8[y0:y1, x0:x1]), r, cv2.INPAINT_TELEA
    )
    return out


def remove_defects(
    L: np.ndarray, *, sensitivity: float = 1.0, noise: float | None = None, max_pixels: int | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """:func:`detect_defects` + :func:`inpaint`, at reduced resolution for large scans.

    Above ``max_pixels`` (default :data:`DEFECT_MAX_PIXELS`, 4 MP) both run on a copy shrunk to
    that size (``cv2.INTER_AREA``); the inpainted copy is upsampled (bilinear) and pasted into the
    full-resolution ``L`` only on the (upsampled, slightly dilated) mask, so the rest of the
    photo keeps its full detail and the cost stays that of a 4 MP image (inpainting cost grows
    with the masked area times the radius squared: ~40 s at 24 MP without this).

    Returns:
        ``(L float32 (H, W), mask bool (H, W))``.
    """
    L = _check_L(L, "remove_defects")
    limit = DEFECT_MAX_PIXELS if max_pixels is None else int(max_pixels)
    h, w = L.shape
    if L.size <= limit:
        mask = detect_defects(L, sensitivity=sensitivity, noise=noise)
        return inpaint(L, mask), mask
    f = math.sqrt(limit / L.size)
    hs, ws = max(8, round(h * f)), max(8, round(w * f))
    small = cv2.resize(L, (ws, hs), interpolation=cv2.INTER_AREA)
    # grain is averaged away by the shrink: estimate it again on the copy
    mask_s = detect_defects(small, sensitivity=sensitivity)
    if not mask_s.any():
        return L.copy(), np.zeros(L.shape, bool)
    fill = cv2.resize(inpaint(small, mask_s), (w, h), interpolation=cv2.INTER_LINEAR)
    mask = cv2.resize(mask_s.astype(np.uint8), (w, h), interpolation=cv2.INTER_NEAREST)
    r = max(1, int(math.ceil(1 / f)))
    mask = cv2.dilate(mask, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * r + 1, 2 * r + 1))).astype(bool)
    out = L.copy()
    out[mask] = fill[mask]
    return out, mask


# --------------------------------------------------------------------------------------------
# 4. grain


def denoise(L: np.ndarray, strength: float = 1.0, noise: float | None = None, min_noise: float = 0.6) -> np.ndarray:
    """Remove grain with non-local means (``cv2.fastNlMeansDenoising``, Buades et al. 2005).

    The filter strength is ``h = 0.9 strength noise`` in 8-bit units (``noise`` from
    :func:`estimate_noise` when not given); nothing is done when ``noise < min_noise`` ``L`` units
    (a clean scan). Patch 7 / search 21 px up to 4 MP; patch 5 / search 11 above (about 0.2 s/MP on
    one core instead of 0.45; see ``benchmarks/bench_restore.py``).

    Returns:
        float32 ``(H, W)``.
    """
    L = _check_L(L, "denoise")
    sigma = float(noise if noise is not None else estimate_noise(L))
    if strength <= 0 or sigma < min_noise:
        return L.copy()
    h = float(np.clip(0.9 * strength * sigma * float(_TO8), 1.0, 40.0))
    template, search = (7, 21) if L.size <= FAST_DENOISE_PIXELS else (5, 11)
    L8 = _to8(L)
    den = cv2.fastNlMeansDenoising(L8, None, h=h, templateWindowSize=template, searchWindowSize=search)
    # the 8-bit change is added to the float input: sub-level detail is kept where NLM did not
    # change anything
    delta = (den.astype(np.float32) - L8.astype(np.float32)) / _TO8
    return np.clip(L + delta, 0.0, 100.0)


# --------------------------------------------------------------------------------------------
# the pipeline


@dataclass
class PrepareOptions:
    """Which preparation steps run and how strongly (every step can be turned off).

    Attributes:
        neutralize: drop the tint. The colorizer always works from ``L`` alone; this flag only
            decides whether :meth:`Prepared.image` (the restored print, e.g. for ``--before-after``)
            is neutral gray (True) or keeps the measured tint (False).
        levels: percentile stretch + gamma (:func:`normalize_levels`).
        defects: dust/scratch detection and inpainting; ``defect_sensitivity`` > 1 finds more.
        denoise: grain removal; ``denoise_strength`` scales ``h``.
        contrast: CLAHE clip limit (0 disables).
    """

    neutralize: bool = True
    levels: bool = True
    defects: bool = True
    defect_sensitivity: float = 1.0
    denoise: bool = True
    denoise_strength: float = 1.0
    contrast: float = 1.5

    def validate(self) -> "PrepareOptions":
        if not (self.defect_sensitivity > 0):
            raise ConfigError(f"defect sensitivity must be > 0, got {self.defect_sensitivity}")
        if not (self.denoise_strength >= 0):
            raise ConfigError(f"denoise strength must be >= 0, got {self.denoise_strength}")
        if not (0 <= self.contrast <= 40):
            raise ConfigError(f"contrast (CLAHE clip limit) must be in [0, 40], got {self.contrast}")
        return self


@dataclass
class Step:
    """One preparation step: ``name``, whether it changed anything, a one-line detail, time."""

    name: str
    applied: bool
    detail: str
    seconds: float

    def __str__(self) -> str:
        mark = "+" if self.applied else "-"
        return f"{mark} {self.name}: {self.detail} ({self.seconds * 1000:.0f} ms)"


@dataclass
class Prepared:
    """Result of :func:`prepare`.

    Attributes:
        L: float32 ``(H, W)`` prepared lightness in ``[0, 100]``.
        tint: the detected :class:`Tint`.
        defects: bool ``(H, W)`` mask of inpainted pixels (all False when the step was off).
        noise: estimated grain std before denoising (``L`` units).
        steps: what each step did, in order.
    """

    L: np.ndarray
    tint: Tint
    defects: np.ndarray
    noise: float
    steps: list[Step] = field(default_factory=list)
    neutralized: bool = True

    def gray(self) -> np.ndarray:
        """float32 ``(H, W)`` gray sRGB in ``[0, 1]`` with lightness :attr:`L`."""
        return gray_from_lightness(self.L)

    def image(self) -> np.ndarray:
        """The restored print: :meth:`gray` when neutralised, else ``(H, W, 3)`` with the tint's ``ab``."""
        if self.neutralized or not self.tint.tinted:
            return self.gray()
        lab = np.empty(self.L.shape + (3,), np.float32)
        lab[:, :, 0] = self.L
        lab[:, :, 1] = self.tint.a
        lab[:, :, 2] = self.tint.b
        return lab_to_rgb_np(lab)

    def report(self) -> str:
        """The steps, one per line."""
        return "\n".join(str(s) for s in self.steps)


def prepare(image: np.ndarray, options: PrepareOptions | None = None, **overrides) -> Prepared:
    """Prepare an old print for colorization (see the module docstring for the steps).

    Args:
        image: ``(H, W)`` or ``(H, W, 3)`` sRGB (float [0, 1], uint8, uint16).
        options: :class:`PrepareOptions` (default: all steps on); ``overrides`` change single
            fields, e.g. ``prepare(img, denoise=False)``.

    Returns:
        :class:`Prepared`. Its ``L`` is what the colorizer should see (``Prepared.gray()``).
    """
    opts = options or PrepareOptions()
    if overrides:
        unknown = set(overrides) - set(PrepareOptions.__dataclass_fields__)
        if unknown:
            raise ConfigError(f"prepare: unknown option(s) {', '.join(sorted(unknown))}")
        opts = PrepareOptions(**{**opts.__dict__, **overrides})
    opts.validate()
    x = as_float_image(image)
    steps: list[Step] = []

    t0 = time.perf_counter()
    tint = detect_tint(x)
    L = lightness(x)
    steps.append(Step("neutralise", bool(opts.neutralize and tint.tinted), tint.describe(), time.perf_counter() - t0))

    if opts.levels:
        t0 = time.perf_counter()
        before = np.percentile(L[:: max(1, L.shape[0] // 256), :: max(1, L.shape[1] // 256)], [0.5, 50, 99.5])
        L = normalize_levels(L)
        after = np.percentile(L[:: max(1, L.shape[0] // 256), :: max(1, L.shape[1] // 256)], [0.5, 50, 99.5])
        changed = bool(np.abs(after - before).max() > 0.5)
        detail = "L 0.5/50/99.5%: {:.0f}/{:.0f}/{:.0f} -> {:.0f}/{:.0f}/{:.0f}".format(*before, *after)
        steps.append(Step("levels", changed, detail, time.perf_counter() - t0))

    t0 = time.perf_counter()
    noise = estimate_noise(L)
    mask = np.zeros(L.shape, bool)
    if opts.defects:
        L, mask = remove_defects(L, sensitivity=opts.defect_sensitivity, noise=noise)
        frac = float(mask.mean())
        steps.append(Step("defects", bool(mask.any()), f"{frac * 100:.2f}% of pixels inpainted", time.perf_counter() - t0))

    if opts.denoise:
        t0 = time.perf_counter()
        L2 = denoise(L, strength=opts.denoise_strength, noise=noise)
        applied = not np.array_equal(L2, L)
        L = L2
        detail = f"grain std {noise:.2f} L" + (" removed" if applied else " (clean, skipped)")
        steps.append(Step("denoise", applied, detail, time.perf_counter() - t0))

    if opts.contrast > 0:
        t0 = time.perf_counter()
        L = local_contrast(L, opts.contrast)
        steps.append(Step("contrast", True, f"CLAHE clip {opts.contrast:g}", time.perf_counter() - t0))
    return Prepared(
        L=np.asarray(L, np.float32), tint=tint, defects=mask, noise=noise, steps=steps, neutralized=opts.neutralize
    )


# --------------------------------------------------------------------------------------------
# before / after


def before_after(
    panels: Sequence[np.ndarray], labels: Sequence[str] | None = None, height: int = 512, gap: int = 6
) -> np.ndarray:
    """Side-by-side view of several versions of one image (e.g. input | prepared | colorized).

    Args:
        panels: images ``(H, W)`` or ``(H, W, 3)`` (float [0, 1], uint8, uint16), any sizes.
        labels: one caption per panel (drawn top-left on a dark band) or None.
        height: panel height in px (each panel keeps its aspect ratio).
        gap: white gap between panels in px.

    Returns:
        uint8 ``(height, W_total, 3)``.
    """
    if not panels:
        raise ValueError("before_after: no panels given")
    if labels is not None and len(labels) != len(panels):
        raise ValueError(f"before_after: {len(labels)} labels for {len(panels)} panels")
    row: list[np.ndarray] = []
    for i, p in enumerate(panels):
        x = as_float_image(p, f"before_after panel {i}")
        if x.ndim == 2:
            x = np.repeat(x[:, :, None], 3, axis=2)
        s = height / x.shape[0]
        w = max(1, int(round(x.shape[1] * s)))
        interp = cv2.INTER_AREA if s < 1 else cv2.INTER_LINEAR
        img = (np.clip(cv2.resize(x, (w, height), interpolation=interp), 0, 1) * 255 + 0.5).astype(np.uint8)
        if labels is not None and labels[i]:
            fs = max(0.4, height / 900)
            (tw, th), base = cv2.getTextSize(labels[i], cv2.FONT_HERSHEY_SIMPLEX, fs, 1)
            img[: th + base + 8, : tw + 10] //= 3
            cv2.putText(img, labels[i], (5, th + 4), cv2.FONT_HERSHEY_SIMPLEX, fs, (255, 255, 255), 1, cv2.LINE_AA)
        if row:
            row.append(np.full((height, gap, 3), 255, np.uint8))
        row.append(img)
    return np.concatenate(row, axis=1)
