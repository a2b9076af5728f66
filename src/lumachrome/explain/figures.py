"""The report's PNG figures (matplotlib, Agg, no pyplot state) and their captions.

Every function draws one figure from numbers computed in :mod:`lumachrome.explain.analysis` /
:mod:`lumachrome.explain.probes`, writes it atomically and returns a :class:`FigureInfo` whose
caption says what is shown and how to read it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import cv2
import numpy as np

from lumachrome.atomic import atomic_open
from lumachrome.color.lab import lab_to_rgb_np

__all__ = ["FigureInfo", "ab_on_l", "ab_only", "gamut_plane", "save_figure"]

#: Constant lightness used to show ``ab`` alone (colour without the photo's shading).
AB_VIEW_L = 65.0
_DPI = 100


@dataclass
class FigureInfo:
    """One figure of the report: ``file`` (relative to the report folder), a title and a caption."""

    id: str
    file: str
    title: str
    caption: str
    section: str


# -------------------------------------------------------------------------------------------
# drawing helpers
# -------------------------------------------------------------------------------------------
def _new_figure(width_px: float, height_px: float):
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width_px / _DPI, height_px / _DPI), dpi=_DPI)
    fig.patch.set_facecolor("white")
    return fig


def save_figure(fig, path: Path) -> Path:
    """Render ``fig`` to PNG at ``path`` through a temporary sibling + rename."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    FigureCanvasAgg(fig)
    with atomic_open(path, "wb", error=None, suffix=".png") as f:
        fig.savefig(f, format="png", dpi=_DPI, facecolor="white")
    return path


def _resize(a: np.ndarray, h: int, w: int, nearest: bool = False) -> np.ndarray:
    if a.shape[:2] == (h, w):
        return a
    interp = cv2.INTER_NEAREST if nearest else cv2.INTER_LINEAR
    out = cv2.resize(np.ascontiguousarray(a, dtype=np.float32), (w, h), interpolation=interp)
    return out[:, :, None] if a.ndim == 3 and out.ndim == 2 else out


def ab_on_l(L: np.ndarray, ab: np.ndarray) -> np.ndarray:
    """sRGB ``(H, W, 3)``: lightness ``L`` ``(H, W)`` joined with ``ab`` ``(h, w, 2)`` upsampled bilinearly."""
    lab = np.empty(L.shape + (3,), np.float32)
    lab[:, :, 0] = L
    lab[:, :, 1:] = _resize(ab, *L.shape)
    return lab_to_rgb_np(lab)


def ab_only(ab: np.ndarray, shape: tuple[int, int], lightness: float = AB_VIEW_L, gain: float = 1.0,
            nearest: bool = False) -> np.ndarray:
    """sRGB of ``ab * gain`` at a constant lightness (the colour decision without the shading);
    ``nearest`` keeps the cells of a coarse ``ab`` visible as blocks."""
    lab = np.empty(tuple(shape) + (3,), np.float32)
    lab[:, :, 0] = lightness
    lab[:, :, 1:] = _resize(ab, *shape, nearest=nearest) * np.float32(gain)
    return lab_to_rgb_np(lab)


def gamut_plane(lightness: float, extent: float = 115.0, n: int = 231) -> tuple[np.ndarray, np.ndarray]:
    """The ab plane at ``lightness``: sRGB ``(n, n, 3)`` (b up, a right) and an in-gamut mask."""
    import torch

    from lumachrome.color.lab import lab_to_rgb

    v = np.linspace(-extent, extent, n, dtype=np.float64)
    a, b = np.meshgrid(v, v[::-1])
    lab = torch.from_numpy(np.stack([np.full_like(a, lightness), a, b], 0))[None]
    rgb = lab_to_rgb(lab, clip=False)[0].permute(1, 2, 0).numpy()
    inside = np.all((rgb >= -1e-6) & (rgb <= 1 + 1e-6), axis=2)
    return np.clip(rgb, 0, 1).astype(np.float32), inside


def _off(ax) -> None:
    ax.set_xticks([])
    ax.set_yticks([])
    for s in ax.spines.values():
        s.set_visible(False)


def _mark_points(ax, points: Sequence[tuple[int, int]], scale_x: float, scale_y: float) -> None:
    for i, (y, x) in enumerate(points, 1):
        px, py = x * scale_x, y * scale_y
        ax.plot([px], [py], "o", ms=14, mfc="none", mec="black", mew=3.6)
        ax.plot([px], [py], "o", ms=14, mfc="none", mec="white", mew=1.6)
        ax.annotate(str(i), (px, py), xytext=(8, -8), textcoords="offset points", color="white", fontsize=10,
                    fontweight="bold", bbox=dict(boxstyle="round,pad=0.15", fc="black", ec="none", alpha=0.7))


def _panel_size(shape: tuple[int, int], side: float) -> tuple[float, float]:
    h, w = shape
    s = side / max(h, w)
    return w * s, h * s


def _fmt(v: float, spec: str = ".2f") -> str:
    return "n/a" if v is None or (isinstance(v, float) and math.isnan(v)) else format(v, spec)


# -------------------------------------------------------------------------------------------
# figures
# -------------------------------------------------------------------------------------------
def overview(out: Path, gray: np.ndarray, colour: np.ndarray, original: np.ndarray | None,
             points_disp: Sequence[tuple[int, int]], model_name: str, full_shape: tuple[int, int],
             work_shape: tuple[int, int]) -> FigureInfo:
    panels = [("input as the model sees it (L only)", gray), (f"colorized by {model_name}", colour)]
    if original is not None:
        panels.append(("original colours (not shown to the model)", original))
    pw, ph = _panel_size(gray.shape[:2], 380)
    fig = _new_figure(pw * len(panels) + 20, ph + 40)
    axes = fig.subplots(1, len(panels), squeeze=False)[0]
    for ax, (title, img) in zip(axes, panels):
        ax.imshow(np.clip(img, 0, 1), cmap="gray" if img.ndim == 2 else None, vmin=0, vmax=1, interpolation="lanczos")
        ax.set_title(title, fontsize=9)
        _off(ax)
    _mark_points(axes[1], points_disp, 1.0, 1.0)
    fig.subplots_adjust(left=0.01, right=0.99, top=0.92, bottom=0.01, wspace=0.03)
    save_figure(fig, out / "overview.png")
    cap = (
        f"Left: the lightness L of the {full_shape[1]}x{full_shape[0]} input, the only thing the network sees "
        f"(it runs at {work_shape[1]}x{work_shape[0]} px). Middle: the colorization, the predicted ab upsampled "
        "and joined with the full-resolution L. "
        + ("Right: the original colours, for comparison only. " if original is not None else "")
        + "The numbered circles are the points examined below (receptive field, ab distributions)."
    )
    return FigureInfo("overview", "overview.png", "Input and colorization", cap, "result")


def _probe_strip(out: Path, file: str, L_disp: np.ndarray, stages: Sequence[dict], output_ab: np.ndarray) -> None:
    """Probe columns then the output: the probe's ab joined with L (top) and alone at constant L (bottom)."""
    cols = list(stages) + [{"name": "output", "ab": output_ab, "stride": 1, "channels": None, "explained": 1.0}]
    pw, ph = _panel_size(L_disp.shape, 250)
    fig = _new_figure(pw * len(cols) + 20, 2 * ph + 70)
    axes = fig.subplots(2, len(cols), squeeze=False)
    for j, c in enumerate(cols):
        top, bottom = axes[0, j], axes[1, j]
        top.imshow(ab_on_l(L_disp, c["ab"]), interpolation="lanczos")
        bottom.imshow(ab_only(c["ab"], L_disp.shape, nearest=c["stride"] > 1), interpolation="nearest")
        if c["name"] == "output":
            title = "network output"
        else:
            share = c["explained"]
            pct = "n/a" if share is None or math.isnan(share) else f"{100 * share:.0f}%"
            title = f"{c['name']} probe (1/{c['stride']}, {c['channels']} ch)\nexplains {pct} of the colour"
        top.set_title(title, fontsize=8)
        _off(top)
        _off(bottom)
    axes[0, 0].set_ylabel("joined with L", fontsize=8)
    axes[1, 0].set_ylabel(f"ab alone (L = {AB_VIEW_L:.0f})", fontsize=8)
    fig.subplots_adjust(left=0.02, right=0.995, top=0.88, bottom=0.01, wspace=0.03, hspace=0.04)
    save_figure(fig, out / file)


def _probe_method(probe_images: Sequence[str], from_cache: bool) -> str:
    """The caption's account of how the probes were fitted and how their share is measured."""
    return (
        "Each column is a linear probe: a per-pixel linear map from that stage's features to ab, fitted "
        "after training on the model's own output for other images (scikit-image's "
        + ", ".join(probe_images)
        + ", each also mirrored and zoomed; never this image"
        + ("; loaded from the cache" if from_cache else "")
        + "). Top row: the probe's ab joined with the photo's L; bottom row: the same ab at constant lightness, "
        "drawn at the stage's own resolution (blocks = one feature cell). 'Explains x% of the colour' is measured on "
        "this image: 1 - sum|probe ab - output ab|\u00b2 / sum|output ab|\u00b2, so a gray probe scores 0%, the output "
        "100%, and a probe that paints colour the output does not have scores below 0."
    )


def coarse_to_fine(out: Path, L_disp: np.ndarray, stages: Sequence[dict], output_ab: np.ndarray,
                   probe_images: Sequence[str], from_cache: bool) -> FigureInfo:
    """``stages``: dicts with ``name``, ``ab`` (h, w, 2), ``stride``, ``channels``, ``explained``."""
    _probe_strip(out, "coarse_to_fine.png", L_disp, stages, output_ab)
    cap = (
        "The colour each decoder stage would predict, from the bottleneck (left, coarsest) to the network output "
        "(right). " + _probe_method(probe_images, from_cache) + " A stage that already "
        "explains most of the colour has made the colour decision; later stages only refine where it goes."
    )
    return FigureInfo("coarse_to_fine", "coarse_to_fine.png", "Coarse to fine: colour per decoder stage", cap, "stages")


def encoder_probes(out: Path, L_disp: np.ndarray, stages: Sequence[dict], output_ab: np.ndarray,
                   probe_images: Sequence[str], from_cache: bool) -> FigureInfo:
    """Probes of the encoder stages, shallow to deep (``stages`` as for :func:`coarse_to_fine`)."""
    _probe_strip(out, "encoder_probes.png", L_disp, stages, output_ab)
    cap = (
        "How much of the painted colour the encoder's features already carry, stage by stage from the finest "
        "(left) to the coarsest (1/" + str(stages[-1]["stride"]) + "), before any decoder layer. "
        + _probe_method(probe_images, from_cache)
        + " The encoder starts from ImageNet classification weights, learnt without colour (a fine-tuned model "
        "has adapted them since): a stage whose probe explains much of the colour already encodes what a region is "
        "(sky, foliage, skin) well enough for a linear map to colour it; the decoder probes (above) show how much "
        "the decoder adds."
    )
    return FigureInfo("encoder_probes", "encoder_probes.png", "Encoder stages: colour in the pretrained features",
                      cap, "stages")


def feature_maps(out: Path, layers: Sequence[dict], k: int) -> FigureInfo:
    """``layers``: dicts with ``name``, ``shape`` (C, h, w), ``maps`` list of (channel, mean, (h, w) array)."""
    rows = len(layers)
    side = 150
    fig = _new_figure(k * side + 120, rows * (side + 26) + 20)
    axes = fig.subplots(rows, k, squeeze=False)
    for r, layer in enumerate(layers):
        for j in range(k):
            ax = axes[r, j]
            _off(ax)
            if j >= len(layer["maps"]):
                ax.set_visible(False)
                continue
            ch, mean, m = layer["maps"][j]
            lo = min(0.0, float(m.min()))  # 0 after a ReLU; the minimum for layers with negative values (head)
            ax.imshow(m, cmap="magma", vmin=lo, vmax=max(float(m.max()), lo + 1e-6), interpolation="nearest")
            ax.set_title(f"ch {ch}  mean {mean:.2f}", fontsize=7)
        c, h, w = layer["shape"]
        axes[r, 0].set_ylabel(f"{layer['name']}\n{c} ch, {w}x{h}", fontsize=8)
    fig.subplots_adjust(left=0.08, right=0.995, top=0.96, bottom=0.01, wspace=0.05, hspace=0.25)
    save_figure(fig, out / "feature_maps.png")
    cap = (
        f"The {k} most active feature maps (highest mean activation over the image) of each chosen layer, one layer "
        "per row, in the order given. Each map is drawn with its own scale (black = 0, or the minimum for layers "
        "with negative values such as the head; bright = that channel's maximum) at the layer's resolution. Early layers usually respond to edges and brightness, deeper ones to "
        "larger regions and textures (one bottleneck cell covers a block of the image); decoder maps show where "
        "colour is being painted. A channel that is bright over one kind of region (skin, sky, foliage) is a "
        "detector the decoder can turn into that region's colour."
    )
    return FigureInfo("feature_maps", "feature_maps.png", "Inside the layers: most active feature maps", cap, "layers")


def receptive_field(out: Path, L_work: np.ndarray, point: tuple[int, int], point_full: tuple[int, int],
                    targets: Sequence[dict]) -> FigureInfo:
    """``targets``: dicts with ``name``, ``grad`` (h, w), ``box`` (y0, x0, y1, x1) or None, ``r90``."""
    from matplotlib.patches import Rectangle

    pw, ph = _panel_size(L_work.shape, 300)
    fig = _new_figure(pw * len(targets) + 20, ph + 60)
    axes = fig.subplots(1, len(targets), squeeze=False)[0]
    y, x = point
    gray = np.clip(L_work / 100.0, 0, 1)
    for ax, t in zip(axes, targets):
        g = t["grad"]
        heat = np.sqrt(g / g.max()) if g.max() > 0 else g
        ax.imshow(gray, cmap="gray", vmin=0, vmax=1, interpolation="nearest")
        rgba = np.zeros(g.shape + (4,), np.float32)
        rgba[..., 0] = 1.0
        rgba[..., 1] = 0.25
        rgba[..., 3] = 0.85 * heat
        ax.imshow(rgba, interpolation="nearest")
        box = t["box"]
        if box is not None:
            y0, x0, y1, x1 = box
            ax.add_patch(Rectangle((x0 - 0.5, y0 - 0.5), x1 - x0, y1 - y0, fill=False, ec="cyan", lw=1.2, ls="--"))
            size = f"{x1 - x0}x{y1 - y0}"
        else:
            size = "none"
        ax.plot([x], [y], "+", color="cyan", ms=12, mew=2)
        ax.set_title(f"{t['label']}\nRF {size} px, 90% of influence within {_fmt(t['r90'], '.0f')} px", fontsize=8)
        _off(ax)
    fig.subplots_adjust(left=0.01, right=0.99, top=0.86, bottom=0.01, wspace=0.04)
    save_figure(fig, out / "receptive_field.png")
    cap = (
        f"What the network looks at to decide point 1 (x={point_full[1]}, y={point_full[0]} in the input; the cyan "
        f"cross, at {L_work.shape[1]}x{L_work.shape[0]} working resolution). Red: how strongly each input pixel's "
        "lightness changes that stage's feature vector (or the output ab) at this point, the gradient magnitude "
        "(square-root scaled; the effective receptive field, Luo et al. 2016). The dashed box is where the gradient is "
        "non-zero: the theoretical receptive field clipped to the image. The radius that holds 90% of the gradient "
        "says how local the decision really is."
    )
    return FigureInfo("receptive_field", "receptive_field.png", "Inside the layers: receptive field of a pixel", cap, "layers")


def entropy_map(out: Path, L_disp: np.ndarray, entropy: np.ndarray, max_bits: float,
                points_disp: Sequence[tuple[int, int]], num_bins: int) -> FigureInfo:
    pw, ph = _panel_size(L_disp.shape, 380)
    fig = _new_figure(2 * pw + 110, ph + 40)
    axes = fig.subplots(1, 2, squeeze=False)[0]
    axes[0].imshow(np.clip(L_disp / 100, 0, 1), cmap="gray", vmin=0, vmax=1)
    axes[0].set_title("lightness", fontsize=9)
    e = _resize(entropy, *L_disp.shape)
    im = axes[1].imshow(e, cmap="inferno", vmin=0, vmax=max_bits, interpolation="bilinear")
    axes[1].set_title(f"entropy of p(ab) (bits), image mean {float(entropy.mean()):.2f}", fontsize=9)
    for ax in axes:
        _off(ax)
    _mark_points(axes[1], points_disp, 1.0, 1.0)
    fig.colorbar(im, ax=axes[1], fraction=0.046, pad=0.02).ax.tick_params(labelsize=7)
    fig.subplots_adjust(left=0.01, right=0.93, top=0.92, bottom=0.01, wspace=0.03)
    save_figure(fig, out / "entropy.png")
    cap = (
        f"Per-pixel uncertainty: the entropy of the predicted distribution over the {num_bins} ab bins "
        f"(softmax of the logits, T = 1), from 0 bits (all probability in one bin: the model is sure of the colour) "
        f"to {max_bits:.2f} bits (uniform: no idea). Bright regions are where the colour is ambiguous from lightness "
        "alone (clothes, cars, painted objects); the annealed mean then averages several colours there, which is "
        "why such regions tend to come out dull or brownish."
    )
    return FigureInfo("entropy", "entropy.png", "Uncertainty: entropy of the ab distribution", cap, "uncertainty")


def ab_distributions(out: Path, points: Sequence[dict], centers: np.ndarray, grid: float, temperature: float) -> FigureInfo:
    """``points``: dicts with ``L``, ``p`` (Q,), ``mean_ab`` (2,), ``true_ab`` (2,) or None, ``entropy``, ``xy``."""
    n = len(points)
    side = 300
    fig = _new_figure(n * side + 20, side + 50)
    axes = fig.subplots(1, n, squeeze=False)[0]
    ext = 115.0
    for i, (ax, pt) in enumerate(zip(axes, points), 1):
        rgb, inside = gamut_plane(pt["L"], ext)
        bg = np.where(inside[..., None], 0.35 * rgb + 0.65, 0.93).astype(np.float32)
        ax.imshow(bg, extent=(-ext, ext, -ext, ext), interpolation="nearest")
        p = pt["p"]
        pmax = float(p.max())
        half = grid / 2
        from matplotlib.patches import Rectangle

        order = np.argsort(p)
        for q in order:
            w = float(p[q]) / pmax if pmax > 0 else 0.0
            if w < 0.02:
                continue
            a, b = centers[q]
            col = lab_to_rgb_np(np.array([[[pt["L"], a, b]]], np.float32))[0, 0]
            s = half * math.sqrt(w)
            ax.add_patch(Rectangle((a - s, b - s), 2 * s, 2 * s, fc=col, ec="black", lw=0.4))
        ma, mb = pt["mean_ab"]
        ax.plot([ma], [mb], "P", color="white", mec="black", ms=10, mew=1.0, label=f"annealed mean (T={temperature:g})")
        if pt["true_ab"] is not None:
            ta, tb = pt["true_ab"]
            ax.plot([ta], [tb], "*", color="white", mec="black", ms=13, mew=1.0, label="true colour")
        ax.axhline(0, color="0.6", lw=0.5)
        ax.axvline(0, color="0.6", lw=0.5)
        ax.set_xlim(-ext, ext)
        ax.set_ylim(-ext, ext)
        ax.set_xlabel("a (green \u2192 red)", fontsize=7)
        ax.set_ylabel("b (blue \u2192 yellow)", fontsize=7)
        ax.tick_params(labelsize=6)
        ax.set_title(f"point {i} (x={pt['xy'][0]}, y={pt['xy'][1]}), L={pt['L']:.0f}\n"
                     f"entropy {pt['entropy']:.2f} bits, top bin p={pmax:.2f}", fontsize=8)
        if i == 1:
            ax.legend(fontsize=6, loc="lower left", framealpha=0.8)
    fig.subplots_adjust(left=0.05, right=0.99, top=0.86, bottom=0.12, wspace=0.3)
    save_figure(fig, out / "ab_distributions.png")
    cap = (
        "The predicted ab distribution at the numbered points, on the ab plane at that pixel's lightness (the pale "
        "background is the sRGB gamut at that L, gray outside it). Each square is one ab bin, drawn in its colour, "
        "its side proportional to the square root of its probability (the largest bin fills its cell; bins under 2% "
        "of the largest are hidden). The white cross is the annealed mean the colorizer paints; the star, when "
        "present, is the true colour of the original. A single tight cluster means a confident colour; several "
        "separated clusters mean the model hesitates between colours, and the mean falls between them."
    )
    return FigureInfo("ab_distributions", "ab_distributions.png", "Uncertainty: ab distribution at chosen points", cap, "uncertainty")


def regression_points(out: Path, points: Sequence[dict]) -> FigureInfo:
    """``points``: dicts with ``L``, ``ab`` (2,), ``true_ab`` or None, ``xy``."""
    side = 380
    fig = _new_figure(side + 20, side + 30)
    ax = fig.subplots(1, 1)
    ext = 115.0
    rgb, inside = gamut_plane(60.0, ext)
    ax.imshow(np.where(inside[..., None], 0.35 * rgb + 0.65, 0.93), extent=(-ext, ext, -ext, ext), interpolation="nearest")
    for i, pt in enumerate(points, 1):
        a, b = pt["ab"]
        col = lab_to_rgb_np(np.array([[[pt["L"], a, b]]], np.float32))[0, 0]
        ax.plot([a], [b], "o", color=col, mec="black", ms=11)
        dx, dy = ((7, 7), (7, -15), (-15, 7), (-15, -15), (0, 12), (0, -18))[(i - 1) % 6]
        ax.annotate(str(i), (a, b), xytext=(dx, dy), textcoords="offset points", fontsize=9, fontweight="bold")
        if pt["true_ab"] is not None:
            ta, tb = pt["true_ab"]
            ax.plot([ta], [tb], "*", color="white", mec="black", ms=12)
            ax.plot([a, ta], [b, tb], color="0.3", lw=0.8, ls=":")
    ax.axhline(0, color="0.6", lw=0.5)
    ax.axvline(0, color="0.6", lw=0.5)
    ax.set_xlim(-ext, ext)
    ax.set_ylim(-ext, ext)
    ax.set_xlabel("a (green \u2192 red)", fontsize=8)
    ax.set_ylabel("b (blue \u2192 yellow)", fontsize=8)
    ax.tick_params(labelsize=7)
    ax.set_title("regression model: one ab per pixel, no distribution", fontsize=9)
    fig.subplots_adjust(left=0.14, right=0.98, top=0.93, bottom=0.11)
    save_figure(fig, out / "ab_points.png")
    cap = (
        "This is a regression model: it predicts a single ab value per pixel and no probability distribution, so "
        "there is no entropy map and no per-point distribution to show. Instead: the ab predicted at the numbered "
        "points (dots, in their colour) on the ab plane (pale background: the sRGB gamut at L = 60). A star marks "
        "the true colour of the original when the input had colour, joined by a dotted line. Regression losses "
        "(L1, L2) pull a prediction toward the middle of the plausible colours, so when the colour is ambiguous "
        "the dot sits close to the gray centre."
    )
    return FigureInfo("ab_points", "ab_points.png", "Uncertainty: not available for a regression model", cap, "uncertainty")


def ablation(out: Path, L_disp: np.ndarray, full_ab: np.ndarray, rows: Sequence[dict], mode: str,
             skips: Sequence[tuple[str, int]] = ()) -> FigureInfo:
    """``rows``: dicts with ``label``, ``ab`` (h, w, 2), ``delta`` mean |dab|, ``chroma_change`` (fraction);
    ``skips``: ``(encoder stage, stride)`` of the skip connections, for the caption."""
    diffs = [r["ab"] - full_ab for r in rows]
    mags = np.concatenate([np.hypot(d[..., 0], d[..., 1]).ravel() for d in diffs]) if diffs else np.zeros(1)
    p99 = float(np.percentile(mags, 99)) if mags.size else 0.0
    gain = float(np.clip(50.0 / p99, 1.0, 4.0)) if p99 > 0 else 1.0
    pw, ph = _panel_size(L_disp.shape, 230)
    n = len(rows) + 1
    fig = _new_figure(pw * n + 20, 2 * ph + 80)
    axes = fig.subplots(2, n, squeeze=False)
    axes[0, 0].imshow(ab_on_l(L_disp, full_ab), interpolation="lanczos")
    axes[0, 0].set_title("nothing off\n(the output)", fontsize=8)
    axes[1, 0].imshow(ab_only(full_ab, L_disp.shape), interpolation="lanczos")
    axes[1, 0].set_title("its colour (ab at constant L)", fontsize=7)
    for j, (r, d) in enumerate(zip(rows, diffs), 1):
        axes[0, j].imshow(ab_on_l(L_disp, r["ab"]), interpolation="lanczos")
        axes[0, j].set_title(f"{r['label']} off\nmean |\u0394ab| {r['delta']:.1f}, chroma {100 * r['chroma_change']:+.0f}%",
                             fontsize=8)
        axes[1, j].imshow(ab_only(-d, L_disp.shape, gain=gain), interpolation="lanczos")
        axes[1, j].set_title(f"colour lost (\u00d7{gain:.1f})", fontsize=7)
    for ax in axes.ravel():
        _off(ax)
    fig.subplots_adjust(left=0.01, right=0.99, top=0.88, bottom=0.01, wspace=0.04, hspace=0.16)
    save_figure(fig, out / "ablation.png")
    how = "its per-channel spatial mean (its statistics survive, its spatial information does not)" if mode == "mean" \
        else "zeros"
    if all(name == f"enc.{i}" and stride == 2**i for i, (name, stride) in enumerate(skips)):
        which = f"'skip enc.i' replaces the skip connection from encoder stage i (resolution 1/2^i) with {how}"
    else:  # stage names that do not say their resolution
        which = ("'skip <stage>' replaces the skip connection from that encoder stage ("
                 + ", ".join(f"{name} at 1/{stride}" for name, stride in skips) + f") with {how}")
        if any(r["label"] == "global context" for r in rows):
            which += "; 'global context' switches the scene-context branch off (its FiLM made the identity)"
    cap = (
        f"Ablation: one path of the U-Net switched off at a time, the rest unchanged. {which}; 'bottleneck' does the "
        "same to the deepest stage, the one with the widest view. Top row: the colorization without that path, with "
        "the mean ab change and the change of mean chroma. Bottom row: the colour that path contributes, i.e. the "
        f"output's ab minus the ablated ab at constant lightness, amplified \u00d7{gain:.1f} to be visible (gray = "
        "nothing lost). The path whose removal drains the most colour is where the colour comes from."
    )
    return FigureInfo("ablation", "ablation.png", "Ablation: which colour each path carries", cap, "ablation")
