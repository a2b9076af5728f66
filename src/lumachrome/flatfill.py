"""Flat colours for line art: one colour per closed region between the lines (style2paints' "flattening").

::

    from lumachrome.flatfill import flat_fill

    flat = flat_fill(line_gray, predicted_rgb)   # (H, W) drawing + (H, W, 3) colour -> (H, W, 3)

The sketch network's colours are soft and bleed across the lines; a user colouring line art wants
each closed region in one flat colour with the lines kept black. The steps (all vectorised: OpenCV
distance transforms and connected components, numpy ``bincount``; about 0.3 s for 2000 x 2000 on
one CPU thread):

1. **Lines**: pixels darker than ``line_threshold`` (default: Otsu's threshold of the drawing,
   clamped to [64, 192], so an almost blank page or a grey pencil drawing still gets a sensible
   cut).
2. **Gap closing**: the line mask is grown by ``ceil(gap / 2)`` px (a disc, through a distance
   transform), so an opening of up to ``gap`` px between two line ends is closed. ``gap=None``
   scales with the drawing: ``max(2, round(0.008 * long side))`` (2 px at 256, 16 px at 2000).
3. **Regions**: the 4-connected components of what is left (the *cores*). A region that the
   growing swallowed whole (a narrow closed shape, e.g. an eye) but that is closed by the original
   lines is kept as its own region (4-connected components of the non-line pixels that hold no core).
4. **One colour per region**: the per-channel median, in CIE Lab (OpenCV's 8-bit Lab), of the
   predicted colour over the region's core pixels (away from the lines, where the network's colour
   bleeds least). The median ignores a minority of bled colour, which a mean would not.
5. **Specks**: regions under ``min_region`` pixels (default ``max(8, 1e-4 * H * W)``) are too
   small for a colour of their own (hatching, gaps between crossing strokes): they take the colour
   of the nearest (Euclidean) larger region, as the pixels of the gap-closing band and of the
   lines do.
6. **Background**: the largest region touching the image border is the paper. ``background="auto"``
   (default) keeps it as the input (white paper stays white, as in the coloured line art we train
   on) when the network's median there is already light and grey (L* >= 80, chroma <= 12), and
   otherwise fills it like any region (a coloured sky or backdrop the network did paint);
   ``"white"`` always keeps the paper; ``"fill"`` always fills it (style2paints' behaviour). On the
   sketch hold-out ``auto`` scores as ``fill`` and better than ``white`` (docs/domains.md).
7. **Lines kept**: line pixels are the input's own grey value; every other pixel is its region's
   colour times ``gray / 255`` (so anti-aliased line edges darken smoothly, white paper is unchanged).

What it cannot do: an opening wider than ``gap`` lets a region leak into its neighbour (both get one
colour); a region the network coloured in two parts gets one of them (the median); shading and
gradients are gone by design; lines lighter than the threshold (pale pencil) are not lines.

**Is it line art at all?** An edge map of a photo (broken, noisy edges, as ``data sketchify`` makes
from photos and manga covers) closes few regions, and flat fill turns it into a mosaic of one or two
flat areas that scores worse than the network's own colours. :func:`line_art_clutter` measures how
cluttered a drawing is: the share of its paper pixels within :data:`CLUTTER_RADIUS` px of a line, with
the drawing shrunk so its short side is :data:`CLUTTER_SIDE` px (the sketch model's working size, so
the measure does not depend on the resolution). :func:`is_clean_line_art` compares it with
:data:`MAX_CLUTTER`, the threshold that separates the OpenMoji drawings from the sketchified
photos and manga covers of the sketch train pack best (balanced accuracy 0.92; docs/domains.md,
"Flat fill"); ``Translator.translate_array(flat=True)`` keeps the network's output for drawings above it
(``flat="always"`` fills anyway).
"""

from __future__ import annotations

import math

import cv2
import numpy as np

__all__ = [
    "FlatFillInfo",
    "flat_fill",
    "flat_fill_info",
    "default_gap",
    "line_threshold_otsu",
    "line_art_clutter",
    "is_clean_line_art",
    "MAX_CLUTTER",
]

#: Otsu's threshold is clamped to this range (grey levels).
OTSU_CLAMP = (64, 192)
#: ``background="auto"`` keeps the paper white when its predicted median has L* >= this ...
AUTO_WHITE_L = 80.0
#: ... and a chroma (Lab a*, b*) <= this.
AUTO_WHITE_CHROMA = 12.0


#: :func:`line_art_clutter` measures on the drawing shrunk to this short side (px) ...
CLUTTER_SIDE = 96
#: ... counting the paper pixels within this distance (px) of a line.
CLUTTER_RADIUS = 2.0
#: Above this clutter a drawing is taken for an edge map, not closed line art. Chosen on the sketch train
#: pack (2,218 OpenMoji drawings against 466 sketchified photos and manga covers): the threshold with the
#: best balanced accuracy, 0.921 (8.8 % of the OpenMoji drawings above it, 7.1 % of the edge maps below).
MAX_CLUTTER = 0.2165


def line_art_clutter(line_gray: np.ndarray) -> float:
    """Share of a drawing's paper (non-line) pixels within :data:`CLUTTER_RADIUS` px of a line, measured with
    the drawing shrunk (``INTER_AREA``) so that its short side is :data:`CLUTTER_SIDE` px (smaller drawings as
    they are); lines as :func:`flat_fill` finds them (clamped Otsu). Clean line art: about 0.09-0.21
    (OpenMoji, 10th-90th percentile); edge maps of photos and manga covers: 0.23-0.68."""
    gray = _as_gray_u8(line_gray)
    H, W = gray.shape
    s = CLUTTER_SIDE / min(H, W)
    if s < 1.0:
        gray = cv2.resize(gray, (max(1, round(W * s)), max(1, round(H * s))), interpolation=cv2.INTER_AREA)
    lines = gray < line_threshold_otsu(gray)
    free = ~lines
    if not lines.any() or not free.any():
        return 0.0 if not lines.any() else 1.0
    dist = cv2.distanceTransform(free.astype(np.uint8), cv2.DIST_L2, 5)
    return float(((dist <= CLUTTER_RADIUS) & free).sum() / free.sum())


def is_clean_line_art(line_gray: np.ndarray, max_clutter: float = MAX_CLUTTER) -> bool:
    """Whether flat fill suits this drawing: :func:`line_art_clutter` at most ``max_clutter``."""
    return line_art_clutter(line_gray) <= max_clutter


def default_gap(shape: tuple[int, ...]) -> int:
    """The largest line opening (px) closed by default: ``max(2, round(0.008 * long side))``."""
    return max(2, int(round(0.008 * max(shape[0], shape[1]))))


def line_threshold_otsu(gray_u8: np.ndarray) -> int:
    """Otsu's threshold of a uint8 drawing, clamped to :data:`OTSU_CLAMP`."""
    t, _ = cv2.threshold(gray_u8, 0, 255, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
    return int(min(max(t, OTSU_CLAMP[0]), OTSU_CLAMP[1]))


def _as_gray_u8(line_gray: np.ndarray) -> np.ndarray:
    g = np.asarray(line_gray)
    if g.ndim == 3:
        g = g[:, :, 0] if g.shape[2] == 1 else cv2.cvtColor(np.ascontiguousarray(g[:, :, :3]), cv2.COLOR_RGB2GRAY)
    if g.dtype == np.uint8:
        return np.ascontiguousarray(g)
    if g.dtype.kind == "f":
        return np.clip(np.rint(g * 255.0), 0, 255).astype(np.uint8)
    raise TypeError(f"flat_fill: line drawing dtype {g.dtype}: use uint8 or float in [0, 1]")


def _nearest_label(seed_labels: np.ndarray) -> np.ndarray:
    """Every pixel's label of the nearest (L2, 5x5 mask) pixel whose ``seed_labels`` is > 0."""
    seeds = seed_labels > 0
    if seeds.all():
        return seed_labels
    if not seeds.any():
        return seed_labels
    # DIST_LABEL_PIXEL numbers the zero pixels of the source 1, 2, ... in raster order
    _, idx = cv2.distanceTransformWithLabels((~seeds).astype(np.uint8), cv2.DIST_L2, 5, labelType=cv2.DIST_LABEL_PIXEL)
    lut = np.concatenate([np.zeros(1, seed_labels.dtype), seed_labels[seeds]])
    return lut[idx]


def _median_per_label(values_u8: np.ndarray, labels: np.ndarray, n: int) -> np.ndarray:
    """Per-label median of uint8 ``values_u8`` (``(k,)``) for labels ``0..n-1`` (``(k,)``) -> ``(n,)`` uint8
    (0 for an empty label), through one histogram per label (``bincount``)."""
    hist = np.bincount(labels.astype(np.int64) * 256 + values_u8, minlength=n * 256).reshape(n, 256)
    cum = np.cumsum(hist, axis=1)
    half = (cum[:, -1:] + 1) // 2
    return np.argmax(cum >= np.maximum(half, 1), axis=1).astype(np.uint8)


class FlatFillInfo:
    """What :func:`flat_fill_info` found: the output and the region bookkeeping (for tests and tuning)."""

    def __init__(self, image: np.ndarray, labels: np.ndarray, lines: np.ndarray, background: int,
                 threshold: int, gap: int, colours_lab: np.ndarray) -> None:  # fmt: skip
        self.image = image  #: the flat-filled image (see :func:`flat_fill`)
        self.labels = labels  #: int32 (H, W): region of every pixel (lines: the nearest region), 1..n
        self.lines = lines  #: bool (H, W): line pixels
        self.background = background  #: label of the paper (0: none)
        self.threshold = threshold  #: line threshold used (grey level)
        self.gap = gap  #: largest closed opening (px)
        self.colours_lab = colours_lab  #: uint8 (n + 1, 3): each label's 8-bit Lab colour


def flat_fill(
    line_gray: np.ndarray,
    colour_rgb: np.ndarray,
    *,
    line_threshold: int | None = None,
    gap: int | None = None,
    min_region: int | None = None,
    background: str = "auto",
) -> np.ndarray:
    """One flat colour per closed region of a line drawing (see the module doc for the rules).

    Args:
        line_gray: the drawing, ``(H, W)`` (or ``(H, W, 3)`` RGB) uint8, or float in ``[0, 1]``; dark lines on light paper.
        colour_rgb: the network's colour at the same size, ``(H, W, 3)`` float in ``[0, 1]`` or uint8.
        line_threshold: grey level (0-255) below which a pixel is a line (default: clamped Otsu).
        gap: largest opening in a line (px) that still closes a region (default :func:`default_gap`).
        min_region: regions smaller than this (px) take the nearest larger region's colour.
        background: ``"auto"``, ``"white"`` or ``"fill"`` (the paper region; see the module doc).

    Returns:
        ``(H, W, 3)``: float32 in ``[0, 1]`` for a float ``colour_rgb``, uint8 for a uint8 one.
    """
    return flat_fill_info(line_gray, colour_rgb, line_threshold=line_threshold, gap=gap, min_region=min_region,
                          background=background).image  # fmt: skip


def flat_fill_info(
    line_gray: np.ndarray,
    colour_rgb: np.ndarray,
    *,
    line_threshold: int | None = None,
    gap: int | None = None,
    min_region: int | None = None,
    background: str = "auto",
) -> FlatFillInfo:
    """:func:`flat_fill` with its regions, line mask and parameters (a :class:`FlatFillInfo`)."""
    if background not in ("white", "fill", "auto"):
        raise ValueError(f"flat_fill: background must be 'white', 'fill' or 'auto', got {background!r}")
    gray = _as_gray_u8(line_gray)
    c = np.asarray(colour_rgb)
    if c.ndim != 3 or c.shape[2] != 3 or c.shape[:2] != gray.shape:
        raise ValueError(f"flat_fill: colour {c.shape} must be (H, W, 3) with the drawing's size {gray.shape}")
    float_out = c.dtype != np.uint8
    rgb_u8 = c if not float_out else np.clip(np.rint(c * 255.0), 0, 255).astype(np.uint8)
    H, W = gray.shape
    thr = line_threshold_otsu(gray) if line_threshold is None else int(line_threshold)
    g = default_gap(gray.shape) if gap is None else max(0, int(gap))
    area_min = max(8, int(round(1e-4 * H * W))) if min_region is None else max(1, int(min_region))

    lines = gray < thr
    free = ~lines
    if g > 0 and lines.any():
        # distance of each non-line pixel to the nearest line pixel; growing by r closes openings <= 2r
        dist = cv2.distanceTransform(free.astype(np.uint8), cv2.DIST_L2, 5)
        core = dist > math.ceil(g / 2)
    else:
        core = free
    n_core, lab = cv2.connectedComponents(core.astype(np.uint8), connectivity=4, ltype=cv2.CV_32S)
    # regions closed by the original lines but swallowed whole by the growing: their own labels
    n_free, lab_free = cv2.connectedComponents(free.astype(np.uint8), connectivity=4, ltype=cv2.CV_32S)
    has_core = np.bincount(lab_free[core], minlength=n_free) > 0
    orphan = free & ~core & ~has_core[lab_free]
    if orphan.any():
        ids, inv = np.unique(lab_free[orphan], return_inverse=True)
        lab[orphan] = n_core + inv.reshape(-1).astype(np.int32)
        n = n_core + len(ids)
    else:
        n = n_core
    # stats pixels: the cores (and the orphans); label 0 = lines and the growing band
    area = np.bincount(lab.ravel(), minlength=n)
    area[0] = 0
    lab_img = cv2.cvtColor(np.ascontiguousarray(rgb_u8), cv2.COLOR_RGB2LAB)
    sel = lab > 0
    li = lab[sel]
    colours = np.zeros((n, 3), np.uint8)
    if n > 1:
        for ch in range(3):
            colours[:, ch] = _median_per_label(lab_img[:, :, ch][sel], li, n)
    # the paper: the largest region touching the border (by its whole area, band included)
    border = np.concatenate([lab[0], lab[-1], lab[:, 0], lab[:, -1]])
    border_ids = np.unique(border[border > 0])
    bg = int(border_ids[np.argmax(area[border_ids])]) if len(border_ids) else 0
    # specks, lines and the band: the nearest kept region
    kept = area >= area_min
    kept[0] = False
    seeds = np.where(kept[lab], lab, 0).astype(np.int32)
    full = _nearest_label(seeds) if kept.any() else lab
    if bg and not kept[bg]:
        bg = 0
    white_bg = False
    if bg:
        L, a, b = (float(v) for v in colours[bg])
        chroma = math.hypot(a - 128.0, b - 128.0)
        white_bg = background == "white" or (background == "auto" and L * 100 / 255 >= AUTO_WHITE_L and chroma <= AUTO_WHITE_CHROMA)
    flat_rgb = cv2.cvtColor(colours[None], cv2.COLOR_LAB2RGB)[0].astype(np.float32)
    if white_bg:
        flat_rgb[bg] = 255.0
    out = flat_rgb[full] * (gray.astype(np.float32)[:, :, None] * np.float32(1 / 255))
    out[lines] = gray[lines, None]
    out_u8 = np.clip(np.rint(out), 0, 255).astype(np.uint8)
    image = out_u8.astype(np.float32) * np.float32(1 / 255) if float_out else out_u8
    return FlatFillInfo(image, full, lines, bg, thr, g, colours)
