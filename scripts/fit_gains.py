#!/usr/bin/env python3
"""Choose a model's colour amount: fit its adaptive chroma gain for several colourfulness weights and
score each on one fixed half of a validation folder (the issue-15 protocol: choose on half a, confirm
the choice on half b, report both).

The network runs once over the training photos (``lumachrome.calibrate.collect_gain_scores``, cached
in ``--cache``); each ``--cf-weights`` value is then a ridge fit (milliseconds) and one evaluation.

    python scripts/fit_gains.py --model runs/photo5-release --train ../shared/data/photos/train \\
        --val ../shared/data/photos/val --half a --cf-weights 0.05 0.1 0.15 0.2 --stretch 0.3
    # around the mean colour of the training photos, fitted on every third one:
    python scripts/fit_gains.py --model runs/photo5-release --train ../shared/data/photos/train \
        --val ../shared/data/photos/val --half a --cf-weights 0.045 0.06 0.07 0.085 0.1 --centre mean --every 3
    # then store the chosen one: lumachrome calibrate runs/photo5-release --data ... --cf-weight W [--centre mean]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from sweep_decoding import half_folder  # noqa: E402

from lumachrome.calibrate import collect_gain_scores, fit_gain, mean_ab, parse_centre  # noqa: E402
from lumachrome.colorizer import Colorizer  # noqa: E402
from lumachrome.evaluate import evaluate, format_table, gray_predictor  # noqa: E402


def every_nth_folder(data: str, n: int) -> str:
    """A temporary folder of symlinks to every ``n``-th image of ``data`` (sorted relative paths)."""
    import tempfile

    from lumachrome.imageio import find_images

    root = Path(data)
    out = Path(tempfile.mkdtemp(prefix=f"lumachrome-every{n}-"))
    for f in sorted(find_images(root), key=lambda f: str(f.relative_to(root)))[::n]:
        dst = out / f.relative_to(root)
        dst.parent.mkdir(parents=True, exist_ok=True)
        dst.symlink_to(f.resolve())
    return str(out)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", required=True, help="model folder (its stored decoding: size, flip)")
    p.add_argument("--train", required=True, help="colour photos the gain is fitted on")
    p.add_argument("--val", required=True, help="validation folder (one fixed half is scored)")
    p.add_argument("--half", choices=["a", "b"], required=True)
    p.add_argument("--cf-weights", type=float, nargs="+", required=True)
    p.add_argument("--stretch", type=float, default=0.3)
    p.add_argument("--ridge", type=float, default=10.0)
    p.add_argument("--centre", default="0,0",
                   help="colour the gain works around: A,B (raw Lab) or 'mean' (of the --train photos' crops)")
    p.add_argument("--every", type=int, default=1, help="fit on every N-th training photo (sorted paths)")
    p.add_argument("--cache", default=None, help="npz file for the training scores (default: MODEL/gain-scores-sS.npz)")
    p.add_argument("--no-gray", action="store_true", help="skip the gray row")
    a = p.parse_args()
    col = Colorizer.load(a.model, device="cpu", adaptive=False)
    train = a.train if a.every == 1 else every_nth_folder(a.train, a.every)
    centre = parse_centre(a.centre)
    centre = mean_ab(train) if centre == "mean" else centre
    tag = f"s{a.stretch:g}" + (f"-c{centre[0]:g},{centre[1]:g}" if any(centre) else "") + (
        f"-every{a.every}" if a.every > 1 else "")
    cache = Path(a.cache or Path(a.model) / f"gain-scores-{tag}.npz")
    if cache.is_file():
        z = np.load(cache)
        feats, psnr, cf = z["features"], z["psnr"], z["cf"]
        print(f"training scores from {cache} ({len(feats)} photos)", flush=True)
    else:
        feats, psnr, cf = collect_gain_scores(col, train, stretch=a.stretch, centre=centre, progress=False)
        np.savez(cache, features=feats, psnr=psnr, cf=cf)
        print(f"training scores of {len(feats)} photos -> {cache}", flush=True)
    data = half_folder(a.val, a.half)
    results = {} if a.no_gray else {"gray": evaluate(gray_predictor, data, progress=False)}
    results[f"{a.model} no gain"] = evaluate(col.predict_ab_working, data, progress=False)
    for w in a.cf_weights:
        col.adaptive = fit_gain(feats, psnr, cf, cf_weight=w, stretch=a.stretch, ridge=a.ridge, centre=centre)
        results[f"cf weight {w:g} (mean train gain {col.adaptive.fitted['mean_target_gain']:.2f})"] = evaluate(
            col.predict_ab_working, data, progress=False)
        print(f"done: cf weight {w:g}", flush=True)
    print(f"\nhalf {a.half} of {a.val}; gain fitted around a {centre[0]:g}, b {centre[1]:g}\n")
    print(format_table(results))


if __name__ == "__main__":
    main()
