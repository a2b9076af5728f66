"""Score the sketch model's flat-fill output beside its plain output on a paired domain pack.

The protocol of ``lumachrome evaluate --model sketch --pack PACK`` (the generator on every whole
stored ``A`` image, scored against ``B`` with :func:`lumachrome.metrics.image_metrics`), with three rows:

* ``plain``: the network's output as is (what ``evaluate --pack`` scores);
* ``lines``: the drawing's lines multiplied over it (what ``colorize --model sketch`` writes);
* ``flat``: :func:`lumachrome.flatfill.flat_fill` of the drawing and the network's output
  (``colorize --model sketch --flat-always``), with the default rules (``--background`` to change them);
* ``auto``: what ``colorize --model sketch --flat`` writes: ``flat`` for clean line art
  (:func:`lumachrome.flatfill.is_clean_line_art`), ``plain`` for a cluttered drawing (an edge map).

``--by-set`` adds the rows of each dataset of the pack (``openmoji``, ``manga``, ``photos``: the first part
of the sample ids in the pack's JSON sidecar).

::

    lumachrome data domain sketch --split holdout -o /tmp/ff/sketch-holdout.safetensors
    python scripts/eval_flatfill.py /tmp/ff/sketch-holdout.safetensors --sheet /tmp/ff/sheet.png

``--sheet`` writes a contact sheet (drawing | plain | lines | flat | truth) of ``--sheet-n`` samples
spread over the pack.
"""

from __future__ import annotations

import argparse

import numpy as np
import torch

from lumachrome.data.domain_pack import read_domain_pack
from lumachrome.flatfill import flat_fill, is_clean_line_art
from lumachrome.metrics import image_metrics
from lumachrome.translate import Translator


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("pack")
    ap.add_argument("--model", default="sketch")
    ap.add_argument("--limit", type=int, default=None)
    ap.add_argument("--background", default="auto", choices=["white", "fill", "auto"])
    ap.add_argument("--gap", type=int, default=None)
    ap.add_argument("--sheet", default=None, help="contact sheet PNG path")
    ap.add_argument("--sheet-n", type=int, default=8)
    ap.add_argument("--by-set", action="store_true", help="also the rows of each dataset of the pack")
    args = ap.parse_args()

    tr = Translator.load(args.model, device="cpu")
    dp = read_domain_pack(args.pack)
    n = len(dp) if args.limit is None else min(args.limit, len(dp))
    A = dp.A[:n].numpy()  # uint8 (N, 1, H, W)
    B = dp.B[:n].numpy()  # uint8 (N, 3, H, W)
    rows: dict[str, list[dict[str, float]]] = {"input": [], "plain": [], "lines": [], "flat": [], "auto": []}
    sets: list[str] = []
    if args.by_set:
        import json
        from pathlib import Path

        sets = [i.split("/")[0] for i in json.loads(Path(args.pack).with_suffix(".json").read_text())["ids"]]
    picks = set(np.linspace(0, n - 1, args.sheet_n).round().astype(int).tolist()) if args.sheet else set()
    tiles = []
    for i in range(0, n, 16):
        a = A[i : i + 16]
        y = tr.forward(a.astype(np.float32) / 127.5 - 1.0)  # (b, 3, H, W) in [0, 1]
        for j in range(len(a)):
            gray = a[j, 0]
            gt = np.ascontiguousarray(B[i + j].transpose(1, 2, 0))
            plain = np.clip(np.rint(y[j].transpose(1, 2, 0) * 255.0), 0, 255).astype(np.uint8)
            lines = ((plain.astype(np.uint16) * gray[:, :, None] + 127) // 255).astype(np.uint8)
            flat = flat_fill(gray, plain, gap=args.gap, background=args.background)
            auto = flat if is_clean_line_art(gray) else plain
            x = np.repeat(gray[:, :, None], 3, axis=2)
            for key, im in (("input", x), ("plain", plain), ("lines", lines), ("flat", flat), ("auto", auto)):
                rows[key].append(image_metrics(im, gt))
            if i + j in picks:
                tiles.append(np.concatenate([x, plain, lines, flat, gt], axis=1))
    print(f"{args.pack}: {n} pairs of {A.shape[2]}x{A.shape[3]}, model {args.model}, background={args.background}")
    print(f"{'set':<9} {'n':>4} {'row':<6} {'PSNR':>7} {'SSIM':>6} {'CIEDE2000':>9} {'CF':>6} {'CF gt':>6}")
    groups = [("all", np.arange(n))] + [(k, np.flatnonzero(np.array(sets[:n]) == k)) for k in dict.fromkeys(sets[:n])]
    for name, idx in groups:
        for key, r in rows.items():
            m = {k: float(np.nanmean([r[i][k] for i in idx])) for k in ("psnr", "ssim", "ciede2000", "cf", "cf_gt")}
            print(f"{name:<9} {len(idx):4d} {key:<6} {m['psnr']:7.2f} {m['ssim']:6.3f} {m['ciede2000']:9.2f} {m['cf']:6.1f} "
                  f"{m['cf_gt']:6.1f}")  # fmt: skip
    if args.sheet and tiles:
        import cv2

        sheet = np.concatenate(tiles, axis=0)
        sheet = cv2.resize(sheet, None, fx=2, fy=2, interpolation=cv2.INTER_NEAREST)
        cv2.imwrite(args.sheet, cv2.cvtColor(sheet, cv2.COLOR_RGB2BGR))
        print(f"contact sheet (drawing | plain | lines | flat | truth) -> {args.sheet}")


if __name__ == "__main__":
    torch.set_num_threads(1)
    main()
