"""``explain_image``: one image through one colorizer -> an HTML report of how the colour was made."""

from __future__ import annotations

import math
import os
import time
from pathlib import Path
from typing import Any, Sequence

import cv2
import numpy as np
import torch
from torch import nn

from lumachrome.errors import ConfigError, ImageError
from lumachrome.explain import figures as F
from lumachrome.explain.analysis import (
    ABLATION_MODES,
    Network,
    entropy_bits,
    input_gradient,
    mass_radius,
    receptive_box,
    top_channels,
)
from lumachrome.explain.probes import PROBE_SIDE, colour_explained, load_or_fit_probes
from lumachrome.explain.report import write_report

__all__ = ["DISPLAY_SIDE", "explain_image", "load_colorizer", "load_input"]

#: Long side (px) of the images drawn in the figures (the input is shrunk to it, never enlarged
#: beyond its own size; the working resolution is the minimum).
DISPLAY_SIDE = 384
#: Feature maps shown per layer.
TOP_K = 6
#: A colour input counts as colour (and is shown for comparison) above this mean chroma.
_COLOUR_CHROMA = 2.0


def load_colorizer(colorizer_or_model: Any = "photo", device: str = "auto", size: int | None = None):
    """A :class:`~lumachrome.colorizer.Colorizer` from a Colorizer, a network, a shipped name or a folder."""
    from lumachrome.colorizer import Colorizer

    if isinstance(colorizer_or_model, Colorizer):
        return colorizer_or_model
    if isinstance(colorizer_or_model, nn.Module):
        return Colorizer(colorizer_or_model, {"name": type(colorizer_or_model).__name__}, device=device, size=size)
    from lumachrome.pipeline import load_pipeline

    return load_pipeline(colorizer_or_model, device, task="colorize", size=size)


def load_input(image: Any) -> tuple[np.ndarray, str]:
    """``(float image in [0, 1], where it came from)`` for an image path or an in-memory array."""
    from lumachrome.color.lab import as_float_image

    if isinstance(image, (str, os.PathLike)):
        from lumachrome.imageio import load_image

        return load_image(image).rgb, Path(image).name
    if not isinstance(image, np.ndarray):
        raise ImageError(f"explain: expected an image path or a numpy array, got {type(image).__name__}")
    try:
        return as_float_image(image, clip=False), "array"
    except (TypeError, ValueError) as e:
        raise ImageError(f"explain: {e}") from None


def _lab(x: np.ndarray) -> np.ndarray:
    from lumachrome.color.lab import image_to_lab_np

    return image_to_lab_np(np.clip(x, 0.0, 1.0))


def _resize_to(x: np.ndarray, h: int, w: int) -> np.ndarray:
    if x.shape[:2] == (h, w):
        return x
    shrink = h <= x.shape[0] and w <= x.shape[1]
    return cv2.resize(x, (w, h), interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR)


def _check_points(points: Sequence[Sequence[float]], height: int, width: int) -> list[tuple[int, int]]:
    """User points ``(x, y)`` in input pixels -> ``[(y, x)]`` ints; ConfigError when outside."""
    out = []
    for p in points:
        try:
            x, y = (float(v) for v in p)
        except (TypeError, ValueError):
            raise ConfigError(f"explain: point {p!r}: expected (x, y)") from None
        if not (0 <= x < width and 0 <= y < height):
            raise ConfigError(f"explain: point ({x:g}, {y:g}) is outside the {width}x{height} image")
        out.append((int(y), int(x)))
    if len(out) > 6:
        raise ConfigError(f"explain: at most 6 points, got {len(out)}")
    return out


def _pick(score: np.ndarray, taken: list[tuple[int, int]], valid: np.ndarray, radius: float) -> tuple[int, int] | None:
    s = np.where(valid, score, -np.inf).astype(np.float64)
    if taken:
        yy, xx = np.indices(s.shape)
        for ty, tx in taken:
            s[np.hypot(yy - ty, xx - tx) < radius] = -np.inf
    if not np.isfinite(s).any():
        return None
    i = int(np.argmax(s))
    return divmod(i, s.shape[1])


def _default_points(L: np.ndarray, ab: np.ndarray, entropy: np.ndarray | None) -> tuple[list[tuple[int, int]], list[str]]:
    """Three spread working-resolution points and why each was picked."""
    h, w = L.shape
    valid = np.zeros((h, w), bool)
    my, mx = max(1, h // 10), max(1, w // 10)
    valid[my : h - my, mx : w - mx] = True
    chroma = cv2.blur(np.hypot(ab[..., 0], ab[..., 1]).astype(np.float32), (5, 5))
    radius = 0.18 * math.hypot(h, w)
    picks: list[tuple[int, int]] = []
    why: list[str] = []
    if entropy is not None:
        ent = cv2.blur(entropy.astype(np.float32), (5, 5))
        plan = [(ent, "most uncertain"), (-ent, "most confident"), (chroma, "most colourful")]
    else:
        centre = -np.hypot(*np.indices((h, w)) - np.array([h / 2, w / 2])[:, None, None])
        mid = valid & (L > 25) & (L < 85)
        plan = [(chroma, "most colourful"), (centre, "image centre"), (np.where(mid, -chroma, -np.inf), "least colourful mid-tone")]
    for score, reason in plan:
        p = _pick(score, picks, valid, radius)
        if p is not None:
            picks.append(p)
            why.append(reason)
    return picks, why


def _nan_to_none(v: Any) -> Any:
    if isinstance(v, float) and not math.isfinite(v):
        return None
    if isinstance(v, dict):
        return {k: _nan_to_none(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_nan_to_none(x) for x in v]
    return v


def explain_image(
    image: Any,
    colorizer_or_model: Any = "photo",
    out_dir: str | os.PathLike[str] = Path("out") / "explain",
    *,
    points: Sequence[Sequence[float]] | None = None,
    layers: Sequence[str] | None = None,
    size: int | None = None,
    device: str = "auto",
    ablation_mode: str = "mean",
    top_k: int = TOP_K,
    probe_cache: Any = None,
) -> Path:
    """Explain how a colorizer colours ``image``: write ``out_dir/index.html`` (+ PNG figures,
    ``report.json``, ``colorized.png``) and return the HTML path.

    Args:
        image: an image path, or an ``(H, W)`` gray / ``(H, W, 3)`` RGB array (float in [0, 1],
            uint8 or uint16). A colour image is colorized from its L; its colours are shown for
            comparison and as the "true colour" at the chosen points.
        colorizer_or_model: a :class:`~lumachrome.colorizer.Colorizer`, a colorizer network (``unet``,
            ``effunet``: anything :class:`~lumachrome.explain.analysis.Network` reads), a shipped
            model name or a model folder.
        out_dir: the report folder (created; existing figures are replaced).
        points: up to 6 ``(x, y)`` input pixels to examine (default: three picked automatically:
            most uncertain / most confident / most colourful, or for regression models most
            colourful / centre / least colourful).
        layers: submodule names whose most active feature maps are shown (default: the first
            encoder stage (``enc.0`` of a U-Net, ``encoder.blocks.0`` of an effunet), ``bottleneck``,
            ``dec.0`` and the last decoder stage).
        size: working resolution (long side) of the network (default: the model's).
        device: ``auto``, ``cpu``, ``cuda`` ... (used when a model is loaded here).
        ablation_mode: ``mean`` (a path replaced by its per-channel spatial mean) or ``zero``.
        top_k: feature maps per layer.
        probe_cache: folder for the fitted probes (default: the user cache, see
            :func:`lumachrome.explain.probes.cache_dir`), or False for no cache.

    Raises:
        ImageError: unreadable image. ModelError: not a colorizer with a stage layout. ConfigError: bad points,
            layers, size or ablation mode.
    """
    t_start = time.perf_counter()
    timings: dict[str, float] = {}

    def lap(name: str, t0: float) -> float:
        now = time.perf_counter()
        timings[name] = round(now - t0, 3)
        return now

    if ablation_mode not in ABLATION_MODES:
        raise ConfigError(f"explain: ablation mode {ablation_mode!r}: use one of {', '.join(ABLATION_MODES)}")
    if not isinstance(top_k, int) or not 1 <= top_k <= 16:
        raise ConfigError(f"explain: top_k must be an integer in [1, 16], got {top_k!r}")
    x, source = load_input(image)
    col = load_colorizer(colorizer_or_model, device=device, size=None)
    work = col._check_size(size) if size is not None else col.size
    net = Network(col.model, col.temperature)
    layers = net.check_layers(list(layers) if layers else net.default_layers())
    user_points = _check_points(points, *x.shape[:2]) if points else None
    out = Path(out_dir)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise ImageError(f"{out}: cannot create the report folder: {e.strerror or e}") from None
    t = lap("load", t_start)

    # --- the image at full, working and display resolution
    H, W = x.shape[:2]
    L_work = col.network_input(x, work)
    hs, ws = L_work.shape
    scale = DISPLAY_SIDE / max(H, W)
    hd, wd = (H, W) if scale >= 1 else (max(1, round(H * scale)), max(1, round(W * scale)))
    if max(hd, wd) < max(hs, ws):
        hd, wd = hs, ws
    x_disp = _resize_to(x, hd, wd)
    lab_disp = _lab(x_disp)
    L_disp = lab_disp[:, :, 0]
    chroma_in = float(np.hypot(lab_disp[..., 1], lab_disp[..., 2]).mean())
    has_colour = x.ndim == 3 and chroma_in > _COLOUR_CHROMA
    ab_true_work = _lab(_resize_to(x, hs, ws))[:, :, 1:] if has_colour else None

    # --- the main pass: output, stage features, chosen layers
    L_t = torch.from_numpy(L_work)[None, None]
    stages = net.decoder_stages()
    main = net.run(L_t, list(dict.fromkeys(net.probe_stages() + layers)))
    ab_work = main.ab[0].permute(1, 2, 0).cpu().numpy()
    # colorized.png is what `colorize` writes: the colorizer's own decoding (flip averaging, chroma
    # gain) of this L, one more pass at the working size; the figures explain the network's output.
    ab_net = col.network_ab(L_t)
    adaptive_gain = None if col.adaptive is None else float(col.adaptive.gains(L_t, ab_net)[0])
    ab_decoded = col.decode_ab(L_t, ab_net)[0].permute(1, 2, 0).cpu().numpy()
    del ab_net
    rgb_full = col.join_ab(x, ab_decoded)
    del ab_decoded
    from lumachrome.imageio import save_image

    save_image(out / "colorized.png", rgb_full)
    del rgb_full
    t = lap("colorize", t)

    entropy = entropy_bits(main.logits) if main.logits is not None else None
    if user_points is not None:
        pts_work = [(min(hs - 1, int(y * hs / H)), min(ws - 1, int(px * ws / W))) for y, px in user_points]
        pts_full = user_points
        reasons = ["given"] * len(pts_work)
    else:
        pts_work, reasons = _default_points(L_work, ab_work, entropy)
        pts_full = [(min(H - 1, int((y + 0.5) * H / hs)), min(W - 1, int((px + 0.5) * W / ws))) for y, px in pts_work]
    pts_disp = [((y + 0.5) * hd / H - 0.5, (px + 0.5) * wd / W - 0.5) for y, px in pts_full]

    figs: list[F.FigureInfo] = []
    numbers: dict[str, Any] = {}
    notes: dict[str, list[str]] = {}
    gray_disp = np.clip(L_disp / 100.0, 0, 1)
    colour_disp = F.ab_on_l(L_disp, ab_work)
    figs.append(F.overview(out, gray_disp, colour_disp, x_disp if has_colour else None, pts_disp, col.name,
                           (H, W), (hs, ws)))
    t = lap("overview", t)

    # --- coarse to fine: linear probes per decoder stage (and per encoder stage when asked for)
    probe_side = min(work, PROBE_SIDE)
    probes = load_or_fit_probes(net, lambda img: col.network_input(img, probe_side), size=probe_side, exclude=x,
                                cache=probe_cache)

    def probe_rows(names: Sequence[str]) -> list[dict[str, Any]]:
        rows = []
        for s in names:
            f = main.features[s]
            pred = probes.probes[s].predict(f)
            target = cv2.resize(ab_work, (f.shape[-1], f.shape[-2]), interpolation=cv2.INTER_AREA) if f.shape[-2:] != (hs, ws) else ab_work
            rows.append({"name": s, "ab": pred, "stride": net.stride(s), "channels": int(f.shape[1]),
                         "explained": colour_explained(pred, target)})
        return rows

    stage_rows = probe_rows(stages)
    numbers["probe_colour_explained"] = {r["name"]: r["explained"] for r in stage_rows}
    figs.append(F.coarse_to_fine(out, L_disp, stage_rows, ab_work, probes.images, probes.from_cache))
    encoder_stages = [s for s in net.probe_stages() if s not in stages]
    if encoder_stages:
        enc_rows = probe_rows(encoder_stages)
        numbers["encoder_probe_colour_explained"] = {r["name"]: r["explained"] for r in enc_rows}
        figs.append(F.encoder_probes(out, L_disp, enc_rows, ab_work, probes.images, probes.from_cache))
    t = lap("coarse_to_fine", t)

    # --- inside the layers: feature maps and the receptive field of point 1
    layer_rows = []
    for name in layers:
        f = main.features.get(name)
        if f is None or f.dim() != 4:
            continue
        top = top_channels(f, top_k)
        layer_rows.append({"name": name, "shape": tuple(int(v) for v in f.shape[1:]),
                           "maps": [(c, m, f[0, c].cpu().numpy()) for c, m in top]})
    if layer_rows:
        figs.append(F.feature_maps(out, layer_rows, top_k))
    t = lap("feature_maps", t)

    py, px = pts_work[0]
    rf_targets = []
    for name in stages[:2] + ["output"]:  # the bottleneck, the first decoder stage, the output
        label = "output ab" if name == "output" else f"{name} feature"
        g = input_gradient(net, L_t, name, py, px)
        rf_targets.append({"name": name, "label": label, "grad": g, "box": receptive_box(g), "r90": mass_radius(g, py, px)})
    numbers["receptive_field"] = {
        r["name"]: {"box": r["box"], "r90_px": r["r90"]} for r in rf_targets
    }
    figs.append(F.receptive_field(out, L_work, (py, px), pts_full[0], rf_targets))
    t = lap("receptive_field", t)

    # --- uncertainty
    point_rows = []
    for (y, xw), (yf, xf) in zip(pts_work, pts_full):
        row = {"xy": (xf, yf), "L": float(L_work[y, xw]), "ab": ab_work[y, xw].astype(float).tolist(),
               "true_ab": None if ab_true_work is None else ab_true_work[y, xw].astype(float).tolist()}
        if main.logits is not None:
            p = torch.softmax(main.logits[0, :, y, xw], dim=0).cpu().numpy()
            row.update(p=p, mean_ab=row["ab"], entropy=float(entropy[y, xw]))
        point_rows.append(row)
    if net.is_classification:
        max_bits = math.log2(net.num_bins)
        figs.append(F.entropy_map(out, L_disp, entropy, max_bits, pts_disp, net.num_bins))
        centers = net.centers.cpu().numpy()
        figs.append(F.ab_distributions(out, point_rows, centers, _grid_of(centers), net.temperature))
        numbers["entropy_bits"] = {"mean": float(entropy.mean()), "max_possible": max_bits,
                                   "points": [r["entropy"] for r in point_rows]}
    else:
        notes["uncertainty"] = [
            "This model has a regression head: it predicts one ab value per pixel, not a distribution over ab bins, "
            "so it has no per-pixel entropy and no ab distribution to plot. Uncertainty maps need a classification "
            "model (lumachrome train --model.head classification)."
        ]
        figs.append(F.regression_points(out, point_rows))
    numbers["points"] = [{k: v for k, v in r.items() if k != "p"} | {"why": w} for r, w in zip(point_rows, reasons)]
    t = lap("uncertainty", t)

    # --- ablation
    base_chroma = float(np.hypot(ab_work[..., 0], ab_work[..., 1]).mean())
    abl_rows = []
    for name in net.ablations():
        ab_off = net.run(L_t, ablate=name, mode=ablation_mode).ab[0].permute(1, 2, 0).cpu().numpy()
        d = ab_off - ab_work
        chroma = float(np.hypot(ab_off[..., 0], ab_off[..., 1]).mean())
        abl_rows.append({
            "name": name, "label": "global context" if name == "glob" else name.replace("skip:", "skip "), "ab": ab_off,
            "delta": float(np.hypot(d[..., 0], d[..., 1]).mean()),
            "chroma_change": (chroma - base_chroma) / base_chroma if base_chroma > 1e-6 else 0.0,
        })  # fmt: skip
    if abl_rows:
        figs.append(F.ablation(out, L_disp, ab_work, abl_rows, ablation_mode,
                               [(s, net.stride(s)) for s, _ in net.skips()]))
    numbers["ablation"] = {r["name"]: {"mean_abs_dab": r["delta"], "chroma_change": r["chroma_change"]} for r in abl_rows}
    numbers["mean_chroma"] = base_chroma
    t = lap("ablation", t)

    # --- the report
    timings["total_before_html"] = round(time.perf_counter() - t_start, 3)
    head = f"classification over {net.num_bins} ab bins (annealed mean, T = {net.temperature:g})" if net.is_classification \
        else "regression (one ab per pixel)"
    params = sum(p.numel() for p in col.model.parameters())
    facts = [
        ("image", f"{source}, {W}x{H} px" + (" (colour input: its L was used)" if has_colour else "")),
        ("model", f"{col.name}: {net.layout.summary or type(col.model).__name__}, {params / 1e6:.2f}M parameters"),
        ("head", head),
        ("working resolution", f"{ws}x{hs} px"),
        ("points", "; ".join(f"{i}: x={xf}, y={yf} ({w})" for i, ((yf, xf), w) in enumerate(zip(pts_full, reasons), 1))),
        ("probes", "ridge on standardised features, strength per stage by leave-one-image-out validation ("
                   + ", ".join(f"{k} {v:g}" for k, v in probes.ridges.items()) + f"), fitted on {', '.join(probes.images)} "
                   "(each also mirrored and zoomed)"
                   + (f", cached at {probes.cache_path}" if probes.cache_path else "")
                   + ("; " + "; ".join(probes.notes) if probes.notes else "")),
        ("ablation", f"mode '{ablation_mode}'"),
        ("full-resolution output", "colorized.png" + _decoding_note(col, adaptive_gain)),
        ("time", ", ".join(f"{k} {v:.2f} s" for k, v in timings.items())),
    ]
    data = {
        "image": {"source": source, "width": W, "height": H, "colour_input": has_colour},
        "model": {"name": col.name, "head": net.head_type, "depth": net.depth, "parameters": params,
                  "working_size": [ws, hs], "num_bins": net.num_bins, "temperature": net.temperature,
                  "saturation": col.saturation,
                  "adaptive_gain": adaptive_gain},
        "layers": [{"name": r["name"], "shape": list(r["shape"]), "top_channels": [[c, m] for c, m, _ in r["maps"]]}
                   for r in layer_rows],
        "numbers": _nan_to_none(numbers),
        "probes": {"images": probes.images, "ridges": probes.ridges, "from_cache": probes.from_cache},
        "timings_s": timings,
        "outputs": {"colorized": "colorized.png"},
    }
    return write_report(
        out, figs, title=f"How {col.name} colours {source}",
        subtitle=f"lumachrome explain: {head}; working resolution {ws}x{hs}", notes=notes, facts=facts, data=data,
    )


def _grid_of(centers: np.ndarray) -> float:
    """The bin lattice step (10 for :class:`lumachrome.color.bins.ABGamut` defaults)."""
    a = np.unique(np.round(centers[:, 0], 4))
    d = np.diff(a)
    d = d[d > 1e-6]
    return float(d.min()) if d.size else 10.0


def _decoding_note(col: Any, gain: float | None) -> str:
    """How colorize decodes the network's ab (empty when it uses it as it is)."""
    parts = []
    if col.flip:
        parts.append("flip averaging")
    if col.adaptive is not None and gain is not None:
        around = "" if not any(col.adaptive.centre) else (
            f" around a {col.adaptive.centre[0]:g}, b {col.adaptive.centre[1]:g}")
        parts.append(f"adaptive chroma gain x{gain:.2f} after a chroma stretch of {col.adaptive.stretch:g}{around}")
    if col.saturation != 1:
        parts.append(f"chroma gain x{col.saturation:g}")
    if not parts:
        return ""
    return f" (decoded as colorize does: {', '.join(parts)}; the figures show the network's output before that)"
