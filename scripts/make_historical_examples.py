#!/usr/bin/env python3
"""Example images of docs/historical.md, made from scikit-image's bundled photos (BSD/CC0/public
domain) aged with the project's own ``lumachrome.restore.degrade``. No shared data is used.

Writes docs/img/historical/*.jpg (each <= 100 KB) and prints the numbers quoted in the page.

Usage: python scripts/make_historical_examples.py [--model photo] [--out docs/img/historical]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def save_small(path: Path, rgb, max_kb: int = 100) -> None:
    """JPEG at the highest quality (<= 85) that fits ``max_kb``."""
    import io

    import numpy as np
    from PIL import Image

    img = Image.fromarray(rgb if rgb.dtype == np.uint8 else (np.clip(rgb, 0, 1) * 255 + 0.5).astype(np.uint8))
    for q in (85, 80, 75, 70, 65, 60, 50, 40):
        buf = io.BytesIO()
        img.save(buf, "JPEG", quality=q, optimize=True)
        if buf.tell() <= max_kb * 1024:
            break
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(buf.getvalue())
    print(f"{path.relative_to(REPO)}: {img.width}x{img.height}, {buf.tell() / 1024:.0f} KB (q{q})")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="photo", help="model name or folder (default: the shipped 'photo')")
    p.add_argument("--out", type=Path, default=REPO / "docs" / "img" / "historical")
    args = p.parse_args(argv)

    import cv2
    import numpy as np
    from skimage import data

    from lumachrome.color.lab import lab_to_rgb_np, rgb_to_lab_np
    from lumachrome.colorizer import Colorizer
    from lumachrome.film import colorize_film
    from lumachrome.restore import TINTS, Aging, before_after, degrade, gray_from_lightness, lightness, prepare
    from lumachrome.transfer import ColorCorrection, build_palette

    col = Colorizer.load(args.model, device="cpu")
    print(f"model: {col.name} ({args.model})")

    def f32(x):
        return x.astype(np.float32) / 255

    # 1. restoration: astronaut, aged with sepia, fading, dust, scratches, grain
    astro = cv2.resize(f32(data.astronaut()), (384, 384), interpolation=cv2.INTER_AREA)
    aging = Aging(tint_ab=TINTS["sepia"], tint=1.0, fade=0.45, gamma=1.1, blur=0.6, stains=0.08, vignette=0.4,
                  dust=50, scratches=6, grain=3.0)  # fmt: skip
    old, truth = degrade(astro, np.random.default_rng(11), aging=aging, return_mask=True)
    prep = prepare(old)
    print(prep.report())
    found = prep.defects
    print(f"defects: recall {(found & truth).sum() / truth.sum():.2f}, {found.mean() * 100:.1f}% of pixels inpainted")
    mask_view = gray_from_lightness(prep.L, 3) * 0.6
    mask_view[found] = (1.0, 0.2, 0.2)
    colorized = col(prep.gray())
    save_small(args.out / "restore.jpg", before_after(
        [astro, old, mask_view, prep.gray(), colorized],
        ["original", "aged: degrade()", "found defects", "prepared (--restore)", "colorized"], height=240))  # fmt: skip

    # 2. reference transfer: cat, own colour version as reference vs a wrong-era reference
    cat = cv2.resize(f32(data.chelsea()), (300, 200), interpolation=cv2.INTER_AREA)
    old_cat = degrade(cat, np.random.default_rng(5), aging=aging.replace(dust=20, scratches=2, grain=2.0))
    gray_cat = prepare(old_cat).gray()
    plain = col(gray_cat)
    panels, labels = [old_cat, plain], ["aged input", "model"]
    L_cat = lightness(cat)

    def ciede(rgb):
        from lumachrome.metrics import ciede2000

        # against the original, on the original's lightness (colour only)
        lab = rgb_to_lab_np(rgb)
        lab[..., 0] = L_cat
        return ciede2000((np.clip(lab_to_rgb_np(lab), 0, 1) * 255 + .5).astype(np.uint8), (cat * 255 + .5).astype(np.uint8))

    print(f"cat: plain model CIEDE2000 {ciede(plain):.2f}")
    for method in ("reinhard", "bands", "histogram"):
        out = col.colorize_array(gray_cat, ab_transform=ColorCorrection.from_references([cat], method=method))
        print(f"cat: own reference, {method}: CIEDE2000 {ciede(out):.2f}")
        panels.append(out)
        labels.append(f"own ref: {method}")
    rocket = f32(data.rocket())
    wrong = col.colorize_array(gray_cat, ab_transform=ColorCorrection.from_references([rocket], method="bands"))
    print(f"cat: wrong reference (rocket launch, bands): CIEDE2000 {ciede(wrong):.2f}")
    panels.append(wrong)
    labels.append("wrong ref: rocket")
    save_small(args.out / "transfer.jpg", before_after(panels, labels, height=170))

    # 3. exemplar (Welsh et al. 2002): coffee, reference = another crop of the same scene
    coffee = f32(data.coffee())  # 400 x 600
    ref_crop = coffee[:, :380]
    target = coffee[:, 220:]
    gray_t = gray_from_lightness(lightness(target))
    ex = col.colorize_array(gray_t, ab_transform=ColorCorrection.from_references([ref_crop], method="exemplar"))
    model_t = col(gray_t)
    save_small(args.out / "exemplar.jpg", before_after(
        [ref_crop, gray_t, model_t, ex, target], ["reference", "gray target", "model", "exemplar (Welsh)", "truth"],
        height=200))  # fmt: skip

    # 4. era palettes: the same gray photo under two palettes
    warm = build_palette([f32(data.coffee()), f32(data.chelsea())], name="warm")
    cool = build_palette([f32(data.rocket()), f32(data.hubble_deep_field())], name="cool")
    gray_a = prepare(old, defects=True).gray()
    outs = [col(gray_a)]
    for pal in (warm, cool):
        outs.append(col.colorize_array(gray_a, ab_transform=ColorCorrection.from_palette(pal)))
        print(pal.describe().splitlines()[0])
    save_small(args.out / "palettes.jpg", before_after(outs, ["model", "palette: warm", "palette: cool"], height=260))

    # 5. film: a static shot of the rocket photo, fresh grain, dust and exposure stains per frame
    rk = f32(data.rocket())[40:360, 40:520]  # 320 x 480
    rng = np.random.default_rng(0)
    frames = []
    film_aging = aging.replace(dust=15, scratches=1, grain=3.0, tint=0.6, stains=0.03, vignette=0.2)
    for t in range(24):
        frames.append((f"{t:02d}", degrade(rk, rng, aging=film_aging)))
    res = {}
    views = {}
    for temporal in (False, True):
        outs = []

        class Keep:
            def __init__(self):
                self.n = 0

            def write(self, name, rgb8):
                outs.append(rgb8)

            def close(self):
                pass

        r = colorize_film(col, frames, Keep(), temporal=temporal, preprocess=lambda x: prepare(x, contrast=0.0).gray())
        res[temporal] = r
        # flicker map: mean |delta ab| between consecutive frames at each pixel (a static shot)
        ab = np.stack([rgb_to_lab_np(o)[..., 1:] for o in outs])
        d = np.linalg.norm(np.diff(ab, axis=0), axis=-1).mean(0)
        views[temporal] = (outs[12], d)
        print(f"film pan: {r.summary()}")
    vmax = float(np.percentile(views[False][1], 99))
    heat = [cv2.applyColorMap((np.clip(views[k][1] / vmax, 0, 1) * 255).astype(np.uint8), cv2.COLORMAP_INFERNO)[..., ::-1]
            for k in (False, True)]  # fmt: skip
    save_small(args.out / "film.jpg", before_after(
        [frames[12][1], views[False][0], heat[0], views[True][0], heat[1]],
        ["aged frame 12", "per-frame", f"flicker {res[False].flicker:.2f}", "temporal", f"flicker {res[True].flicker:.2f}"],
        height=200))  # fmt: skip
    total = sum(f.stat().st_size for f in args.out.glob("*.jpg"))
    print(f"total {total / 1024:.0f} KB in {args.out.relative_to(REPO)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
