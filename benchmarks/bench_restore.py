"""Speed of the old-print preparation steps (``lumachrome.restore.prepare``) at 1-24 megapixels.

A photo-like gray image (smooth fields + detail) is aged with ``lumachrome.restore.degrade``
(sepia, fading, grain, dust, scratches) at each size, then :func:`lumachrome.restore.prepare` runs
all steps; the table gives each step's time (one thread: ``cv2.setNumThreads(1)``), the total and
the fraction of pixels inpainted. Non-local means switches to a 5x5 patch / 11x11 search window
above 4 MP (``FAST_DENOISE_PIXELS``), which keeps the denoising at about 0.2 s/MP.

Usage: python benchmarks/bench_restore.py [--sizes 1 4 12 24] [--threads 1]
"""

from __future__ import annotations

import argparse
import sys
import time


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sizes", type=float, nargs="+", default=[1.0, 4.0, 12.0, 24.0], help="megapixels")
    p.add_argument("--threads", type=int, default=1, help="OpenCV threads")
    args = p.parse_args(argv)

    import cv2
    import numpy as np

    from lumachrome.restore import Aging, degrade, prepare

    cv2.setNumThreads(args.threads)
    print(f"OpenCV {cv2.__version__}, {args.threads} thread(s)\n")
    print("| MP | size | neutralise | levels | defects | denoise | contrast | total s | s/MP | inpainted |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for mp in args.sizes:
        h = int(round((mp * 1e6 / 1.5) ** 0.5))
        w = int(round(h * 1.5))
        rng = np.random.default_rng(0)
        coarse = rng.uniform(0.15, 0.85, (8, 12)).astype(np.float32)
        img = cv2.resize(coarse, (w, h), interpolation=cv2.INTER_CUBIC)
        img += cv2.resize(rng.uniform(-0.1, 0.1, (h // 16, w // 16)).astype(np.float32), (w, h))
        old = degrade(np.clip(img, 0, 1), rng, aging=Aging(grain=3.0, dust=30, scratches=6))
        del img
        t0 = time.perf_counter()
        res = prepare(old)
        total = time.perf_counter() - t0
        steps = {s.name: s.seconds for s in res.steps}
        cells = " | ".join(f"{steps.get(k, 0):.2f}" for k in ("neutralise", "levels", "defects", "denoise", "contrast"))
        print(f"| {mp:g} | {w}x{h} | {cells} | {total:.1f} | {total / mp:.2f} | {100 * res.defects.mean():.2f} % |",
              flush=True)  # fmt: skip
        del old, res
    return 0


if __name__ == "__main__":
    sys.exit(main())
