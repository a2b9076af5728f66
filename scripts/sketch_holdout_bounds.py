"""What issue 18's sketch bars (hold-out PSNR >= 18.0, CIEDE2000 <= 9.0) ask of a model, set by set.

The fixed sketch hold-out (298 pairs, whole 96 px images; ``evaluate --pack`` averages the per-image
scores) mixes three kinds of input. This script measures, without any model, how well *any* output
can do on the parts whose colour the drawing does not hold, and from that the score the rest would need:

* ``openmoji-twin``: hold-out drawings whose line art is (to < 1 grey level rms) the line art of training
  drawings with other colours; nearly all are flags, whose OpenMoji outline is the same rectangle for every
  country. The best any deterministic model can do is one output for all of them; the score of the
  per-pixel mean of the twins' colour images (the MSE-optimal output) is reported.
* ``manga`` / ``photos``: sketchified manga covers and photos (edge maps): the colour *and* the lightness
  are gone. Reported: a flat mid-grey, the mean training colour, and a least-squares fit of each RGB
  channel on the blurred ink density of the drawing (fitted on the training edge maps of the same set).
* ``openmoji-other``: the rest, where a model can learn colours from the drawing.

With the twins at their best possible score and the edge maps at the best baseline (and, as a generous
case, a model beating that baseline by the margins of ``--generous``), it prints what ``openmoji-other``
must reach for the overall bars::

    lumachrome data domain sketch --split holdout -o .packs/sketch-holdout.safetensors
    lumachrome data domain sketch --split train --no-limit -o .packs/sketch-train-full.safetensors
    python scripts/sketch_holdout_bounds.py .packs/sketch-holdout.safetensors .packs/sketch-train-full.safetensors

``--model DIR`` adds a model's plain and flat-fill scores per group (``scripts/eval_flatfill.py`` protocol).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import cv2
import numpy as np
import torch

from lumachrome.data.domain_pack import read_domain_pack
from lumachrome.metrics import ciede2000, psnr

#: rms line-art difference (grey levels) under which two drawings count as the same drawing.
TWIN_RMS = 1.0


def _ids(pack: str) -> list[str]:
    return json.loads(Path(pack).with_suffix(".json").read_text())["ids"]


def _score(out: np.ndarray, gt: np.ndarray) -> tuple[float, float]:
    return psnr(out, gt), ciede2000(out, gt)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("holdout")
    ap.add_argument("train")
    ap.add_argument("--model", default=None, help="also score this sketch model per group (plain and flat fill)")
    ap.add_argument("--psnr-bar", type=float, default=18.0)
    ap.add_argument("--ciede-bar", type=float, default=9.0)
    ap.add_argument("--generous", type=float, nargs=2, default=(1.0, 3.0), metavar=("DB", "DE"),
                    help="margins granted to a model over the edge-map baseline (+dB, -CIEDE2000) for the generous case")
    args = ap.parse_args(argv)

    ho, tr = read_domain_pack(args.holdout), read_domain_pack(args.train)
    hid, tid = _ids(args.holdout), _ids(args.train)
    hA, hB = ho.A.numpy(), ho.B.numpy()
    tA, tB = tr.A.numpy(), tr.B.numpy()
    # rms distance of every hold-out drawing to every training drawing
    d = torch.cdist(torch.from_numpy(hA[:, 0].reshape(len(hA), -1)).float(),
                    torch.from_numpy(tA[:, 0].reshape(len(tA), -1)).float()) / np.sqrt(hA.shape[2] * hA.shape[3])  # fmt: skip
    d = d.numpy()

    def group(i: int) -> str:
        s = hid[i].split("/")[0]
        if s == "openmoji":
            return "openmoji-twin" if d[i].min() < TWIN_RMS else "openmoji-other"
        return s

    groups = [group(i) for i in range(len(hid))]
    names = list(dict.fromkeys(["openmoji-other", "openmoji-twin", "manga", "photos"] + groups))
    rows: dict[str, dict[str, list[tuple[float, float]]]] = {g: {} for g in names}

    def add(g: str, key: str, val: tuple[float, float]) -> None:
        rows[g].setdefault(key, []).append(val)

    fits = {}
    for s in ("manga", "photos"):
        ti = [i for i, x in enumerate(tid) if x.startswith(s + "/")]
        if not ti:
            continue
        X = np.concatenate([cv2.GaussianBlur(tA[i, 0].astype(np.float32), (0, 0), 3).ravel() / 255.0 for i in ti])
        Y = np.concatenate([tB[i].reshape(3, -1).T.astype(np.float32) for i in ti])
        coef = np.linalg.lstsq(np.stack([X, np.ones_like(X)], 1), Y, rcond=None)[0]
        fits[s] = (coef, tB[ti].astype(np.float32).mean((0, 2, 3)))
    tw_twins = []
    for i, g in enumerate(groups):
        gt = np.ascontiguousarray(hB[i].transpose(1, 2, 0))
        line = np.repeat(hA[i].transpose(1, 2, 0), 3, axis=2)
        add(g, "the drawing itself", _score(line, gt))
        if g == "openmoji-twin":
            js = np.flatnonzero(d[i] < TWIN_RMS)
            tw_twins.append(len(js))
            mean = np.rint(tB[js].astype(np.float32).mean(0)).astype(np.uint8).transpose(1, 2, 0)
            add(g, "best possible: mean of its training twins", _score(mean, gt))
        if g in fits:
            coef, mcol = fits[g]
            add(g, "mid-grey 128", _score(np.full_like(gt, 128), gt))
            add(g, "mean training colour", _score(np.broadcast_to(np.rint(mcol).astype(np.uint8), gt.shape).copy(), gt))
            dens = cv2.GaussianBlur(hA[i, 0].astype(np.float32), (0, 0), 3).ravel() / 255.0
            lin = np.stack([dens, np.ones_like(dens)], 1) @ coef
            add(g, "baseline: RGB fitted on blurred ink", _score(np.clip(np.rint(lin), 0, 255).astype(np.uint8).reshape(gt.shape), gt))

    if args.model:
        from lumachrome.flatfill import flat_fill
        from lumachrome.translate import Translator

        tl = Translator.load(args.model, device="cpu")
        for i0 in range(0, len(hA), 16):
            y = tl.forward(hA[i0 : i0 + 16].astype(np.float32) / 127.5 - 1.0)
            for j in range(len(y)):
                i = i0 + j
                gt = np.ascontiguousarray(hB[i].transpose(1, 2, 0))
                plain = np.clip(np.rint(y[j].transpose(1, 2, 0) * 255.0), 0, 255).astype(np.uint8)
                add(groups[i], f"model {args.model}: plain", _score(plain, gt))
                add(groups[i], f"model {args.model}: flat fill", _score(flat_fill(hA[i, 0], plain), gt))

    n = {g: groups.count(g) for g in names}
    print(f"{args.holdout}: {len(hid)} pairs; twins: {n.get('openmoji-twin', 0)} OpenMoji drawings with "
          f"{np.mean(tw_twins) if tw_twins else 0:.0f} training twins each (rms < {TWIN_RMS:g} grey level)")
    print("| group | n | output | PSNR | CIEDE2000 |\n|---|---:|---|---:|---:|")
    floors = {}
    for g in names:
        for key, v in rows[g].items():
            a = np.array(v)
            print(f"| {g} | {n[g]} | {key} | {a[:, 0].mean():.2f} | {a[:, 1].mean():.2f} |")
            if key.startswith(("best possible", "baseline")):
                floors[g] = (a[:, 0].mean(), a[:, 1].mean())
    total = len(hid)
    other = n.get("openmoji-other", 0)
    for label, (dp, de) in (("twins at their best, edge maps at the baseline", (0.0, 0.0)),
                            (f"edge maps {args.generous[0]:g} dB / {args.generous[1]:g} CIEDE2000 better than the baseline",
                             tuple(args.generous))):  # fmt: skip
        p_rest = sum(n[g] * (floors[g][0] + (dp if g in fits else 0.0)) for g in floors)
        e_rest = sum(n[g] * (floors[g][1] - (de if g in fits else 0.0)) for g in floors)
        need_p = (args.psnr_bar * total - p_rest) / other
        need_e = (args.ciede_bar * total - e_rest) / other
        print(f"bars {args.psnr_bar:g} / {args.ciede_bar:g}, {label}: openmoji-other ({other}) needs "
              f"PSNR >= {need_p:.2f} and CIEDE2000 <= {need_e:.2f}")
    return 0


if __name__ == "__main__":
    torch.set_num_threads(2)
    raise SystemExit(main())
