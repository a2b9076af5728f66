#!/usr/bin/env python3
"""Sweep inference-time choices of a model on an evaluation folder (the issue-3 experiments).

For each working size, chroma gain (ab multiplied by it, replacing the model's own `saturation`; for a
model with an adaptive chroma gain, on top of that) and, for
classification models, annealed-mean temperature, runs the evaluation protocol (256x256 centre
crops) and prints one Markdown table, gray row first (the columns of ``lumachrome evaluate``, hue_conc
and fd_lite included; fd_lite is not FID and compares only rows of this table; ``--no-fd-lite`` skips
its feature network).

    python scripts/sweep_decoding.py --model photo --data ../shared/data/photos/val \
        --sizes 128 256 --gains 1.0 1.2 1.4
    python scripts/sweep_decoding.py --model runs/photo-class/model --data ../shared/data/photos/val \
        --temperatures 0.2 0.3 0.38 0.5 --half a

``--half a|b`` scores one of two fixed halves of the folder (split by a hash of the file path), so
a decoding choice can be tuned on one half and confirmed on the other.
"""

from __future__ import annotations

import argparse

from lumachrome.calibrate import parse_centre
from lumachrome.colorizer import Colorizer
from lumachrome.evaluate import evaluate, format_table, gray_predictor


def working_size_predictor(colorizer: Colorizer, size: int, gain: float, flip: bool = False,
                           centre: tuple[float, float] = (0.0, 0.0)):
    """ab predicted the way ``colorize`` does it at working size ``size``, with chroma gain ``gain``
    (absolute, as ``colorize --saturation``: it replaces the model's own) and optional flip averaging.
    A non-zero ``centre`` (raw a, b) applies the gain around that colour instead of around gray:
    ``centre + gain * (ab - centre)``."""
    if centre == (0.0, 0.0):
        colorizer.saturation, colorizer.flip = gain, flip
        return lambda L: colorizer.predict_ab_working(L, size)
    from lumachrome.adaptive import centre_ab

    colorizer.saturation, colorizer.flip = 1.0, flip
    return lambda L: centre_ab(centre_ab(colorizer.predict_ab_working(L, size), centre) * gain, centre, inverse=True)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default="photo")
    p.add_argument("--data", required=True)
    p.add_argument("--sizes", type=int, nargs="+", default=[128, 256])
    p.add_argument("--gains", type=float, nargs="+", default=[1.0])
    p.add_argument("--flip", action="store_true", help="also try flip test-time augmentation")
    p.add_argument("--temperatures", type=float, nargs="+", default=[None],
                   help="annealed-mean temperatures (classification models)")
    p.add_argument("--half", choices=["a", "b"], default=None, help="score one fixed half of the folder")
    p.add_argument("--centre", default="0,0",
                   help="apply the gains around this colour (raw a,b, e.g. 1.86,5.82, the training photos' mean) "
                        "instead of around gray")
    p.add_argument("--limit", type=int, default=None)
    p.add_argument("--no-fd-lite", dest="fd_lite", action="store_false", help="skip the fd_lite column")
    a = p.parse_args()
    data = a.data if a.half is None else half_folder(a.data, a.half)
    col = Colorizer.load(a.model, device="cpu")
    centre = parse_centre(a.centre)
    if centre == "mean":
        p.error("--centre: give the colour as A,B (e.g. the mean that lumachrome calibrate --centre mean reports)")
    results = {"gray": evaluate(gray_predictor, data, limit=a.limit, progress=False, fd_lite=a.fd_lite)}
    for size in a.sizes:
        for gain in a.gains:
            for t in a.temperatures:
                col.temperature = t
                for flip in ([False, True] if a.flip else [False]):
                    name = (f"{a.model} size {size} gain {gain:g}" + (f" T {t:g}" if t is not None else "")
                            + (" flip" if flip else "") + (f" around {a.centre}" if centre != (0.0, 0.0) else ""))
                    results[name] = evaluate(working_size_predictor(col, size, gain, flip, centre), data,
                                             limit=a.limit, progress=False, fd_lite=a.fd_lite)
                    print(f"done: {name}", flush=True)
    print(format_table(results))


def half_folder(data: str, half: str) -> str:
    """A temporary folder of symlinks to one fixed half of ``data`` (by a CRC32 of the relative path)."""
    import tempfile
    import zlib
    from pathlib import Path

    from lumachrome.imageio import find_images

    root = Path(data)
    out = Path(tempfile.mkdtemp(prefix=f"lumachrome-half-{half}-"))
    for f in find_images(root):
        rel = f.relative_to(root)
        if (zlib.crc32(str(rel).encode()) % 2 == 0) == (half == "a"):
            dst = out / rel
            dst.parent.mkdir(parents=True, exist_ok=True)
            dst.symlink_to(f.resolve())
    return str(out)


if __name__ == "__main__":
    main()
