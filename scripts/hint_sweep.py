"""PSNR of a hint model against the number of colour hints, on the evaluation protocol.

    OMP_NUM_THREADS=1 .venv/bin/python scripts/hint_sweep.py --data ../shared/data/photos/val \\
        --model photo-hints --plot docs/img/hint-sweep.png

Protocol: the 256x256 centre crops of ``lumachrome evaluate`` (same files, same order). Per image,
50 hint positions are drawn uniformly over the working-resolution grid (128x128 for photo-hints)
with a generator seeded by ``--seed`` and the image index; ``n`` hints are the first ``n`` of them
(so the hint sets are nested), each a 3x3 working-pixel patch (the size of a click in the app and
CLI) carrying the mean ground-truth ab of the patch (ground truth area-resized to the working size).
Two columns: the network alone (its ab upsampled and joined with L, as ``evaluate`` scores models),
and the network plus hint pinning (``lumachrome.hints.pin_ab``), which is what ``colorize --hint``
and the web app do. The shipped photo model (no hint input) is the automatic reference.
Prints a Markdown table; ``--plot`` saves a figure, ``--json`` the numbers.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from lumachrome.color.lab import lab_to_rgb_np, rgb_to_lab_np
from lumachrome.colorizer import Colorizer, working_shape
from lumachrome.evaluate import load_eval_images
from lumachrome.hints import DEFAULT_PATCH, PIN_SIGMA_FRACTION, PIN_SIGMA_L, hints_from_ab_at, pin_ab
from lumachrome.metrics import psnr

COUNTS = (0, 1, 2, 5, 10, 20, 50)


def _to_uint8(L: np.ndarray, ab: np.ndarray) -> np.ndarray:
    rgb = lab_to_rgb_np(np.concatenate([L[:, :, None], ab], axis=2))
    return np.rint(rgb * 255.0).astype(np.uint8)


def sweep(col: Colorizer, images: list[np.ndarray], counts=COUNTS, seed: int = 0, patch: int = DEFAULT_PATCH,
          batch: int = 16, plain: Colorizer | None = None, pin_fraction: float = PIN_SIGMA_FRACTION,
          pin_l: float = PIN_SIGMA_L) -> dict:
    max_n = max(counts)
    scores = {n: {"net": [], "pinned": []} for n in counts}
    auto = []
    plain_net = []  # 0 hints, the network's ab before the adaptive chroma gain (hinted rows have no gain)
    for b0 in range(0, len(images), batch):
        gts = images[b0:b0 + batch]
        labs = [rgb_to_lab_np(g) for g in gts]
        L = torch.from_numpy(np.stack([x[:, :, 0] for x in labs]))[:, None]
        ab_gt = torch.from_numpy(np.stack([x[:, :, 1:] for x in labs])).permute(0, 3, 1, 2)
        H, W = L.shape[-2:]
        hs, ws = working_shape(H, W, col.size, col.multiple)
        L_work = F.interpolate(L, size=(hs, ws), mode="area")
        ab_work = F.interpolate(ab_gt, size=(hs, ws), mode="area")
        pos = []
        for i in range(len(gts)):
            g = torch.Generator().manual_seed(seed * 100003 + b0 + i)
            pos.append((torch.randint(0, hs, (max_n,), generator=g), torch.randint(0, ws, (max_n,), generator=g)))
        if plain is not None:
            ab = plain.predict_ab_working(L)
            for i in range(len(gts)):
                auto.append(psnr(_to_uint8(labs[i][:, :, 0], ab[i].permute(1, 2, 0).numpy()), gts[i]))
        if col.adaptive is not None:
            ab0 = col.network_ab(L_work).float()
            for i in range(len(gts)):
                up = F.interpolate(ab0[i:i + 1].cpu(), size=(H, W), mode="bilinear", align_corners=False)[0]
                plain_net.append(psnr(_to_uint8(labs[i][:, :, 0], up.permute(1, 2, 0).numpy()), gts[i]))
        for n in counts:
            hints = torch.stack([hints_from_ab_at(ab_work[i], ys[:n], xs[:n], patch) for i, (ys, xs) in enumerate(pos)])
            ab_small = col.predict_ab_batch(L_work, hints if n else None)
            for i in range(len(gts)):
                small = ab_small[i].permute(1, 2, 0).contiguous().numpy()
                ys, xs = pos[i][0][:n].tolist(), pos[i][1][:n].tolist()
                hm = hints[i]
                points = [(x, y, float(hm[0, y, x]) * 110.0, float(hm[1, y, x]) * 110.0) for y, x in zip(ys, xs)]
                for key, ab_s in (("net", small), ("pinned", pin_ab(small, points, L_work[i, 0].numpy(),
                                                                           sigma=pin_fraction * max(hs, ws), sigma_l=pin_l))):
                    up = F.interpolate(torch.from_numpy(ab_s).permute(2, 0, 1)[None], size=(H, W), mode="bilinear",
                                       align_corners=False)[0].permute(1, 2, 0).numpy()
                    scores[n][key].append(psnr(_to_uint8(labs[i][:, :, 0], up), gts[i]))
        print(f"\r{min(b0 + batch, len(images))}/{len(images)} images", end="", file=sys.stderr, flush=True)
    print(file=sys.stderr)
    return {"counts": list(counts), "images": len(images), "seed": seed, "patch": patch,
            "pin_sigma_fraction": pin_fraction, "pin_sigma_l": pin_l,
            "psnr_net": [float(np.mean(scores[n]["net"])) for n in counts],
            "psnr_pinned": [float(np.mean(scores[n]["pinned"])) for n in counts],
            "psnr_automatic": float(np.mean(auto)) if auto else None,
            "psnr_zero_no_gain": float(np.mean(plain_net)) if plain_net else None}


def table(res: dict, model: str) -> str:
    """The sweep as Markdown. With an adaptive chroma gain (applied without hints only, as colorize
    does), a second gain column compares with the 0-hint network *before* that gain, so the hints are
    not credited with the fidelity the gain gives away."""
    base = res["psnr_pinned"][0]
    ng = res.get("psnr_zero_no_gain")
    head = "| hints | PSNR network only (dB) | PSNR as `colorize --hint` (dB) | gain vs 0 hints (dB) |"
    rule = "|---:|---:|---:|---:|"
    if ng is not None:
        head += " gain vs 0 hints without the chroma gain (dB) |"
        rule += "---:|"
    lines = [head, rule]
    for n, a, b in zip(res["counts"], res["psnr_net"], res["psnr_pinned"]):
        lines.append(f"| {n} | {a:.2f} | {b:.2f} | {b - base:+.2f} |" + ("" if ng is None else f" {b - ng:+.2f} |"))
    if ng is not None:
        lines.append(f"| 0, network before its adaptive chroma gain | {ng:.2f} | | | |")
    if res.get("psnr_automatic") is not None:
        lines.append(f"| (`photo`, no hint input) | {res['psnr_automatic']:.2f} | | |")
    return "\n".join(lines)


def plot(res: dict, path: Path, model: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    x = np.array(res["counts"], dtype=float)
    xp = np.where(x == 0, 0.5, x)  # log axis: 0 hints drawn at 0.5
    fig, ax = plt.subplots(figsize=(6, 4), dpi=120)
    ax.plot(xp, res["psnr_pinned"], "o-", label=f"{model} as colorize --hint (pinned)")
    ax.plot(xp, res["psnr_net"], "s--", label=f"{model}, network only")
    if res.get("psnr_automatic") is not None:
        ax.axhline(res["psnr_automatic"], color="gray", ls=":", label="photo (automatic)")
    ax.set_xscale("log")
    ax.set_xticks(xp)
    ax.set_xticklabels([str(int(v)) for v in x])
    ax.set_xlabel("number of hints (3x3 patches from the ground truth)")
    ax.set_ylabel("PSNR (dB)")
    ax.set_title(f"Hint sweep on photos/val ({res['images']} images, 256x256)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp.png")
    fig.savefig(tmp)
    tmp.replace(path)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default="../shared/data/photos/val")
    ap.add_argument("--model", default="photo-hints")
    ap.add_argument("--reference", default="photo", help="automatic model for the reference row ('' for none)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--limit", type=int, default=None, help="use N images, evenly spaced over the sorted files")
    ap.add_argument("--pin-sigma", type=float, default=PIN_SIGMA_FRACTION,
                    help="pinning sigma as a fraction of the working long side")
    ap.add_argument("--counts", default=",".join(map(str, COUNTS)))
    ap.add_argument("--plot", type=Path, default=None)
    ap.add_argument("--json", type=Path, default=None)
    a = ap.parse_args()
    t0 = time.perf_counter()
    col = Colorizer.load(a.model, device="cpu")
    if not col.accepts_hints:
        print(f"hint_sweep: model {a.model!r} takes no hints", file=sys.stderr)
        return 1
    plain = Colorizer.load(a.reference, device="cpu") if a.reference else None
    images = [gt for _path, gt in load_eval_images(a.data, 256)]
    if a.limit and a.limit < len(images):
        images = [images[int(i)] for i in np.linspace(0, len(images) - 1, a.limit).round()]
    counts = tuple(int(c) for c in a.counts.split(","))
    res = sweep(col, images, counts=counts, seed=a.seed, plain=plain, pin_fraction=a.pin_sigma)
    res["model"], res["seconds"] = a.model, round(time.perf_counter() - t0, 1)
    print(table(res, a.model))
    print(f"\n{res['images']} images, seed {a.seed}, {res['seconds']} s")
    if a.plot:
        plot(res, a.plot, a.model)
    if a.json:
        a.json.write_text(json.dumps(res, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
