"""Contact sheet of a domain model on a paired pack: input | output(s) | truth, for evenly spaced samples.

    python scripts/domain_sheet.py --pack .packs/thermal-holdout.safetensors --model thermal \\
        --model runs/thermal-effgen-release -n 8 -o runs/thermal-sheet.png

Each ``--model`` (a shipped name or a model folder with ``"task": "translate"``) adds a column; images are
the pack's stored pairs, translated whole (as ``lumachrome evaluate --pack`` scores them), shown at
``--scale`` times their size. Samples ``round(i * (N - 1) / (n - 1))``, so the choice is fixed in advance.
The sheet shows the data's images: keep it out of the repository unless the data's terms allow it;
``--skip geolifeclef`` (repeatable) leaves out the samples whose id (from the pack's ``PACK.json``
sidecar) starts with that dataset, before the even spacing.
"""

from __future__ import annotations

import argparse
import sys

import numpy as np
import torch


def main(argv: list[str] | None = None) -> int:
    from lumachrome.data.domain_pack import read_domain_pack
    from lumachrome.data.domains import set_of
    from lumachrome.errors import LumachromeError
    from lumachrome.evaluate_translate import _u8, load_translate_model
    from lumachrome.imageio import save_image

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pack", required=True)
    ap.add_argument("--model", action="append", required=True)
    ap.add_argument("-n", type=int, default=8)
    ap.add_argument("--scale", type=int, default=2)
    ap.add_argument("--skip", action="append", default=[], help="leave out the samples of this dataset (id prefix)")
    ap.add_argument("-o", "--out", required=True)
    a = ap.parse_args(argv)
    try:
        dp = read_domain_pack(a.pack)
        if not dp.paired:
            raise LumachromeError(f"{a.pack}: not a paired pack")
        pool = list(range(len(dp)))
        if a.skip:
            import json
            from pathlib import Path

            side = Path(a.pack).with_suffix(".json")
            if not side.is_file():
                raise LumachromeError(f"--skip needs the sample ids: no sidecar {side}")
            ids = json.loads(side.read_text())["ids"]
            pool = [i for i in pool if set_of(ids[i]) not in a.skip]
        if not 1 <= a.n <= len(pool) or a.scale < 1:
            raise LumachromeError(f"-n {a.n} must be in [1, {len(pool)}] and --scale {a.scale} >= 1")
        idx = [pool[round(i * (len(pool) - 1) / max(1, a.n - 1))] for i in range(a.n)]
        A = dp.A[idx].float() / 127.5 - 1
        B = dp.B[idx].float() / 127.5 - 1
        cols = [_u8(A)]
        for m in a.model:
            net, _ = load_translate_model(m, device="cpu")
            with torch.no_grad():
                cols.append(_u8(net.eval()(A).float()))
        cols.append(_u8(B))
    except (LumachromeError, OSError, KeyError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    gap = 4
    rows = []
    for i in range(a.n):
        tiles = [np.kron(c[i], np.ones((a.scale, a.scale, 1), np.uint8)) for c in cols]
        row = []
        for t in tiles:
            row += [t, np.full((t.shape[0], gap, 3), 255, np.uint8)]
        rows += [np.concatenate(row[:-1], 1), np.full((gap, sum(t.shape[1] for t in tiles) + gap * (len(tiles) - 1), 3),
                                                       255, np.uint8)]
    save_image(a.out, np.concatenate(rows[:-1], 0))
    print(f"{a.out}: samples {idx}; columns input | {' | '.join(a.model)} | truth")
    return 0


if __name__ == "__main__":
    sys.exit(main())
