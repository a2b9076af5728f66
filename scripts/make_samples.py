#!/usr/bin/env python3
"""`make run`: colorize a few grayscale photos end to end and show where the results are.

1. Writes grayscale versions of photos bundled with scikit-image (astronaut, coffee, chelsea,
   rocket; BSD-licensed) and its genuinely black-and-white ``camera`` photo to ``out/samples/``,
   and the colour originals to ``out/originals/``.
2. Picks the shipped model ``photo``; if the package has none, trains a tiny DEMO model on
   generated images first (``scripts/make_demo_model.py``) and says so.
3. Runs ``lumachrome colorize out/samples -o out/colorized --model ...`` (the real CLI).
4. Writes ``out/comparison.png``: grayscale input | colorized | original, one row per photo.

Usage: python scripts/make_samples.py [--model NAME_OR_DIR] [--out out]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

import numpy as np

REPO_ROOT = Path(__file__).resolve().parents[1]
COLOUR_PHOTOS = ("astronaut", "coffee", "chelsea", "rocket")
GRAY_PHOTOS = ("camera",)
BANNER = "=" * 78


def write_samples(samples: Path, originals: Path) -> list[str]:
    """Grayscale inputs (PNG) into ``samples``, colour originals into ``originals``; returns the names."""
    from skimage import data

    from lumachrome.color.lab import lab_to_rgb_np, rgb_to_lab_np
    from lumachrome.imageio import save_image

    names = []
    for name in COLOUR_PHOTOS:
        rgb = getattr(data, name)()[..., :3].astype(np.float32) / 255.0
        save_image(originals / f"{name}.png", rgb)
        # Gray = the photo's CIE L shown as a neutral gray (a = b = 0): what the colorizer sees.
        lab = rgb_to_lab_np(rgb)
        lab[..., 1:] = 0.0
        save_image(samples / f"{name}.png", lab_to_rgb_np(lab)[..., 0])
        names.append(name)
    for name in GRAY_PHOTOS:
        save_image(samples / f"{name}.png", getattr(data, name)().astype(np.float32) / 255.0)
        names.append(name)
    return names


def comparison_sheet(names: list[str], samples: Path, colorized: Path, originals: Path, out_file: Path) -> None:
    """One row per photo: gray | colorized | original (when there is one), rows 192 px high."""
    import cv2

    from lumachrome.imageio import load_image, save_image

    rows, height, gap = [], 192, 4
    for name in names:
        tiles = []
        for folder in (samples, colorized, originals):
            f = folder / f"{name}.png"
            if f.is_file():
                img = load_image(f).rgb
                w = max(1, round(img.shape[1] * height / img.shape[0]))
                tiles.append(cv2.resize(img, (w, height), interpolation=cv2.INTER_AREA))
        pad = np.ones((height, gap, 3), np.float32)
        rows.append(np.concatenate([t for tile in tiles for t in (tile, pad)][:-1], axis=1))
    width = max(r.shape[1] for r in rows)
    rows = [np.pad(r, ((0, gap), (0, width - r.shape[1]), (0, 0)), constant_values=1.0) for r in rows]
    save_image(out_file, np.concatenate(rows, axis=0))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", help="model name or folder (default: the shipped 'photo', else a demo model)")
    p.add_argument("--out", type=Path, default=REPO_ROOT / "out", help="output folder")
    args = p.parse_args(argv)

    from lumachrome.colorizer import available_models

    out: Path = args.out
    samples, originals, colorized = out / "samples", out / "originals", out / "colorized"
    names = write_samples(samples, originals)
    print(f"wrote {len(names)} grayscale samples to {samples}")

    model = args.model
    demo = False
    if model is None:
        if "photo" in available_models():
            model = "photo"
        else:
            demo = True
            print(BANNER)
            print("NOTE: no shipped model 'photo' in src/lumachrome/weights/ yet.")
            print("Using a tiny DEMO model trained on generated images instead (scripts/make_demo_model.py,")
            print("trained now unless out/demo_model already holds one: 2-5 minutes on 2 CPU cores).")
            print("Its colours on real photos are crude: it only shows that the pipeline works.")
            print(BANNER, flush=True)
            demo_dir = out / "demo_model"
            code = subprocess.call(
                [sys.executable, str(REPO_ROOT / "scripts" / "make_demo_model.py"), "--out", str(demo_dir),
                 "--work", str(out / "demo_work")],
                stdin=subprocess.DEVNULL,
            )  # fmt: skip
            if code:
                print(f"make_samples: training the demo model failed (exit {code})", file=sys.stderr)
                return code
            model = str(demo_dir)

    cmd = [sys.executable, "-m", "lumachrome", "colorize", str(samples), "-o", str(colorized),
           "--model", model, "--overwrite"]  # fmt: skip
    print("$ lumachrome " + " ".join(cmd[3:]), flush=True)
    code = subprocess.call(cmd, stdin=subprocess.DEVNULL)
    if code:
        return code
    sheet = out / "comparison.png"
    comparison_sheet(names, samples, colorized, originals, sheet)
    print(BANNER)
    print(f"model:      {model}" + ("   (DEMO model trained on generated images, not the photo model)" if demo else ""))
    print(f"inputs:     {samples}/  (grayscale)")
    print(f"results:    {colorized}/")
    print(f"originals:  {originals}/")
    print(f"side by side (gray | colorized | original): {sheet}")
    print(BANNER)
    return 0


if __name__ == "__main__":
    sys.exit(main())
