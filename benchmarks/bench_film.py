"""Film flicker: independent per-frame colorization vs flow-guided temporal consistency.

For each clip of ``../shared/data/historical/film/{v04,v05}`` (100 frames of 1940s-50s black and
white film, 640x360) the frames are colorized

* per frame (each on its own: ``temporal=False``), and
* with temporal consistency (``lumachrome.film.TemporalSmoother``: DIS flow, alpha 0.85),

both without and with colour correction toward the clip's own reference stills
(``film/<clip>/references``, ``bands`` transfer, ``source_momentum`` 0.9). Printed per row:
flicker (mean ``||delta ab||`` between consecutive frames over static pixels: input flow < 0.5 px
and ``|delta L| < 2``; lower is steadier), its ratio to per-frame, the mean colourfulness
(Hasler & Suesstrunk) and its change, and the time. The bar: flicker at most half of per-frame,
colourfulness at most 10 % lower.

Skips (exit 0) when ``../shared/data`` is absent.

Usage::

    python benchmarks/bench_film.py                       # shipped 'photo' model, both clips, all frames
    python benchmarks/bench_film.py --model out/demo_model --frames 40
"""

from __future__ import annotations

import argparse
import sys

from _shared import shared_dir  # benchmarks/ is on sys.path when run as a script


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="photo", help="model name or folder (default: the shipped 'photo')")
    p.add_argument("--clips", nargs="+", default=["v04", "v05"])
    p.add_argument("--frames", type=int, default=None, help="use only the first N frames of each clip")
    p.add_argument("--alpha", type=float, default=0.85, help="temporal smoothing weight")
    p.add_argument("--no-reference", action="store_true", help="skip the rows with reference correction")
    args = p.parse_args(argv)

    shared = shared_dir()
    if shared is None:
        print("skipped: ../shared/data not found (set LUMACHROME_SHARED)")
        return 0

    from lumachrome.colorizer import Colorizer
    from lumachrome.errors import LumachromeError
    from lumachrome.film import TemporalSmoother, colorize_film, open_frames
    from lumachrome.transfer import ColorCorrection

    try:
        col = Colorizer.load(args.model, device="cpu")
    except LumachromeError as e:
        print(f"error: {e}\n(train/export a model, or pass --model out/demo_model after `python scripts/make_demo_model.py`)")
        return 1
    print(f"model: {col.name} ({args.model}, working size {col.size}), temporal alpha {args.alpha}\n")
    print("| clip | colours | mode | frames | flicker | vs per-frame | colourfulness | CF change | s |")
    print("|---|---|---|---|---|---|---|---|---|")
    ok = True
    for clip in args.clips:
        base = shared / "historical" / "film" / clip
        variants = [("model", None)]
        if not args.no_reference and (base / "references").is_dir():
            variants.append(("model + clip references", base / "references"))
        for label, refs in variants:
            per = None
            for temporal in (False, True):
                corr = None
                if refs is not None:
                    corr = ColorCorrection.from_references(refs, method="bands", source_momentum=0.9)
                smoother = TemporalSmoother(alpha=args.alpha) if temporal else False
                r = colorize_film(col, open_frames(base / "frames", max_frames=args.frames), None,
                                  temporal=smoother, correction=corr)  # fmt: skip
                if per is None:
                    per = r
                    ratio, dcf = "1.00", "-"
                else:
                    ratio = f"{r.flicker / per.flicker:.2f}"
                    dcf = f"{100 * (r.colorfulness / per.colorfulness - 1):+.1f} %"
                    ok &= r.flicker <= 0.5 * per.flicker and r.colorfulness >= 0.9 * per.colorfulness
                mode = "temporal" if temporal else "per-frame"
                print(f"| {clip} | {label} | {mode} | {r.frames} | {r.flicker:.4f} | {ratio} | "
                      f"{r.colorfulness:.2f} | {dcf} | {r.seconds:.1f} |", flush=True)  # fmt: skip
    print(f"\nbar (flicker <= 0.5x per-frame, colourfulness >= 0.9x): {'met' if ok else 'NOT met'} on every row")
    return 0


if __name__ == "__main__":
    sys.exit(main())
