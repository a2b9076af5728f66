"""Reference colour transfer on ``photos/val``: CIEDE2000 of the plain model vs reference-corrected.

Protocol: the evaluation protocol of ``lumachrome evaluate`` (256x256 centre crops, bicubic, the
network sees the crop's ``L``; see ``lumachrome.evaluate``). For every image:

* **plain**: the model's ``ab``;
* **own reference**: the model's ``ab`` corrected toward the image's own colour version (the
  ground truth used as the reference photo, ``strength`` 1) with each transfer method:
  ``reinhard`` (global mean/std), ``bands`` (per lightness band), ``histogram`` (per-band ab
  quantile matching), ``exemplar`` (Welsh et al. 2002: the model's colours are replaced);
* **wrong era**: corrected toward a reference from another era/scene (``--wrong``: by default the
  colour reference stills of the 1940s-50s film clip ``historical/film/v04/references``), to show
  that the palette moves: its mean ab shift from the plain output and its CIEDE2000.

Prints a Markdown table (mean CIEDE2000, lower is better; colourfulness; mean |ab shift| from plain).
Skips (exit 0) when ``../shared/data`` is absent. ``--limit N`` uses the first N images.

Usage::

    python benchmarks/bench_reference.py                      # shipped 'photo' model, all 561 images
    python benchmarks/bench_reference.py --model out/demo_model --limit 100
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from _shared import shared_dir  # benchmarks/ is on sys.path when run as a script


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="photo", help="model name or folder (default: the shipped 'photo')")
    p.add_argument("--data", default=None, help="folder of colour photos (default: ../shared/data/photos/val)")
    p.add_argument("--wrong", default=None, help="wrong-era reference(s) (default: historical/film/v04/references)")
    p.add_argument("--limit", type=int, default=None, help="use only the first N images")
    p.add_argument("--size", type=int, default=256, help="evaluation crop side")
    p.add_argument("--methods", nargs="+", default=["reinhard", "bands", "histogram", "exemplar"])
    args = p.parse_args(argv)

    shared = shared_dir()
    if args.data is None and shared is None:
        print("skipped: ../shared/data not found (set LUMACHROME_SHARED)")
        return 0
    data = Path(args.data) if args.data else shared / "photos" / "val"
    wrong = args.wrong or (str(shared / "historical" / "film" / "v04" / "references") if shared else None)

    import numpy as np
    import torch

    from lumachrome.color.lab import lab_to_rgb_np, rgb_to_lab_np
    from lumachrome.colorizer import Colorizer
    from lumachrome.errors import LumachromeError
    from lumachrome.evaluate import load_eval_images
    from lumachrome.metrics import ciede2000, colorfulness
    from lumachrome.transfer import BandStats, ColorCorrection, load_references, pooled_samples

    try:
        col = Colorizer.load(args.model, device="cpu")
    except LumachromeError as e:
        print(f"error: {e}\n(train/export a model, or pass --model out/demo_model after `python scripts/make_demo_model.py`)")
        return 1
    wrong_corr = None
    if wrong:
        wrong_corr = ColorCorrection.from_references(wrong, method="bands")
    rows: dict[str, list[float]] = {}
    cfs: dict[str, list[float]] = {}
    shifts: dict[str, list[float]] = {}
    t0 = time.perf_counter()
    times: dict[str, float] = {}

    def record(name: str, L: np.ndarray, ab: np.ndarray, gt: np.ndarray, ab_plain: np.ndarray) -> None:
        lab = np.concatenate([L[..., None], ab], axis=2)
        pred = (np.clip(lab_to_rgb_np(lab), 0, 1) * 255 + 0.5).astype(np.uint8)
        rows.setdefault(name, []).append(ciede2000(pred, gt))
        cfs.setdefault(name, []).append(colorfulness(pred))
        shifts.setdefault(name, []).append(float(np.abs(ab - ab_plain).mean()))

    n = 0
    for _path, gt in load_eval_images(data, args.size):
        if args.limit is not None and n >= args.limit:
            break
        n += 1
        L = rgb_to_lab_np(gt)[:, :, 0]
        ab_plain = col.predict_ab_working(torch.from_numpy(L)[None, None])[0].permute(1, 2, 0).numpy()
        record("plain model", L, ab_plain, gt, ab_plain)
        ref = load_references([gt])  # the photo's own colour version
        target = BandStats.from_samples(pooled_samples(ref))
        for method in args.methods:
            t = time.perf_counter()
            corr = ColorCorrection(target=target, references=ref, method=method, strength=1.0)
            ab = corr(L, ab_plain)
            times[method] = times.get(method, 0.0) + time.perf_counter() - t
            record(f"own reference, {method}", L, ab, gt, ab_plain)
        if wrong_corr is not None:
            record("wrong-era reference, bands", L, wrong_corr(L, ab_plain), gt, ab_plain)
        rows.setdefault("gray (ab = 0)", []).append(
            ciede2000((np.clip(lab_to_rgb_np(np.dstack([L, 0 * ab_plain])), 0, 1) * 255 + 0.5).astype(np.uint8), gt)
        )
    if n == 0:
        print(f"no images in {data}")
        return 1
    print(f"model: {col.name} ({args.model}), data: {data} ({n} images, {args.size}x{args.size} centre crops), "
          f"{time.perf_counter() - t0:.0f} s")
    if wrong:
        print(f"wrong-era reference: {wrong}")
    print()
    print("| colours | CIEDE2000 (lower = better) | colourfulness | mean abs ab shift vs plain | ms/image |")
    print("|---|---|---|---|---|")
    for name, vals in rows.items():
        cf = f"{np.mean(cfs[name]):.2f}" if name in cfs else "-"
        sh = f"{np.mean(shifts[name]):.2f}" if name in shifts else "-"
        method = name.split(", ")[-1] if name.startswith("own") else None
        ms = f"{1000 * times[method] / n:.1f}" if method in times else "-"
        print(f"| {name} | {np.mean(vals):.3f} | {cf} | {sh} | {ms} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
