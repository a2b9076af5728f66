#!/usr/bin/env python3
"""Pin the sha256 of every shipped model's output on the sample photos (tests/data/output_checksums.json).

``tests/test_output_checksums.py`` recomputes these checksums and fails when one changes, so a refactoring
that is meant to leave behaviour alone can prove it did (outputs byte-identical). When a model's output is
*meant* to change (a new ``photo`` or ``photo-hints`` model, a decoding change), re-pin and commit the JSON
with the change::

    python scripts/pin_output_checksums.py            # rewrite the JSON for every case
    python scripts/pin_output_checksums.py --check    # only compare (exit 1 on a difference)

The inputs are those of ``make run`` (scripts/make_samples.py: scikit-image's bundled photos as gray),
shrunk to a long side of 256 px so the whole set runs in seconds, plus, for the image-to-image models,
inputs of their domain made from the same photos (a line drawing for ``sketch``, the gray photo as a
one-band NIR / thermal image). Every output is written by the real CLI (``lumachrome colorize``).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import tempfile
from pathlib import Path
from typing import Callable


REPO_ROOT = Path(__file__).resolve().parents[1]
CHECKSUMS = REPO_ROOT / "tests" / "data" / "output_checksums.json"
#: Long side of the sample inputs (px): small enough for a fast test, large enough to be upsampled/tiled.
LONG_SIDE = 256
#: The hint of the ``photo-hints`` case: pixel column, row and colour on the astronaut photo.
HINT = "120,60,#c03020"


def _make_samples_module():
    import importlib.util

    spec = importlib.util.spec_from_file_location("_make_samples", REPO_ROOT / "scripts" / "make_samples.py")
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def write_inputs(root: Path) -> dict[str, Path]:
    """The input folders, by kind: ``samples`` (make run's gray samples as they are), ``photos`` (the same,
    shrunk), ``sketch`` (line drawings
    of two of them), ``gray1`` (one-band versions for the NIR and thermal models)."""
    import cv2

    from lumachrome.data.sketchify import sketchify
    from lumachrome.imageio import load_image, save_image

    full = root / "full"
    names = _make_samples_module().write_samples(full / "samples", full / "originals")
    folders = {k: root / k for k in ("photos", "sketch", "gray1")}
    folders["samples"] = full / "samples"
    for f in folders.values():
        f.mkdir(parents=True, exist_ok=True)
    for name in names:
        rgb = load_image(full / "samples" / f"{name}.png").rgb
        h, w = rgb.shape[:2]
        scale = LONG_SIDE / max(h, w)
        small = cv2.resize(rgb, (round(w * scale), round(h * scale)), interpolation=cv2.INTER_AREA)
        save_image(folders["photos"] / f"{name}.png", small)
        save_image(folders["gray1"] / f"{name}.png", small[..., 0])
        if name in ("chelsea", "coffee"):
            save_image(folders["sketch"] / f"{name}.png", sketchify(small))
    return folders


#: case name -> (input kind, extra CLI arguments)
CASES: dict[str, tuple[str, list[str]]] = {
    "photo": ("photos", ["--model", "photo"]),
    "photo@make-run": ("samples", ["--model", "photo"]),
    "photo-hints": ("photos", ["--model", "photo-hints"]),
    "photo-hints+hint": ("photos/astronaut.png", ["--model", "photo-hints", "--hint", HINT]),
    "sketch": ("sketch", ["--model", "sketch"]),
    "nir": ("gray1", ["--model", "nir"]),
    "thermal": ("gray1", ["--model", "thermal"]),
}


def compute_checksums(work: Path, cases: dict[str, tuple[str, list[str]]] | None = None,
                      log: Callable[[str], None] | None = None) -> dict[str, dict[str, str]]:
    """``{case: {output file name: sha256 of its bytes}}``, each case run through ``lumachrome colorize``.

    Runs with one intra-op thread (restored afterwards): a convolution's sums split over more
    threads can round differently in the last bit, which moves a few 8-bit pixels, so checksums
    pinned with one thread count would fail with another (they did: 2 threads vs 1)."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return _compute(work, cases, log)
    finally:
        torch.set_num_threads(threads)


def _compute(work: Path, cases: dict[str, tuple[str, list[str]]] | None,
             log: Callable[[str], None] | None) -> dict[str, dict[str, str]]:
    from lumachrome.cli import main

    folders = write_inputs(work / "inputs")
    result: dict[str, dict[str, str]] = {}
    for case, (kind, args) in (cases or CASES).items():
        head, _, rest = kind.partition("/")
        src = folders[head] / rest if rest else folders[head]
        out = work / "out" / case
        out.mkdir(parents=True)
        code = main(["colorize", str(src), "-o", str(out), "--device", "cpu", "--quiet", *args])
        if code != 0:
            raise RuntimeError(f"{case}: lumachrome colorize exited with {code}")
        result[case] = {f.name: hashlib.sha256(f.read_bytes()).hexdigest() for f in sorted(out.iterdir())}
        if log:
            log(f"{case}: {len(result[case])} output(s)")
    return result


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--check", action="store_true", help="compare with the pinned JSON instead of rewriting it")
    p.add_argument("--out", type=Path, default=CHECKSUMS, help=f"the JSON file (default {CHECKSUMS})")
    args = p.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        sums = compute_checksums(Path(tmp), log=print)
    if args.check:
        pinned = json.loads(args.out.read_text())
        diff = sorted(k for k in set(pinned) | set(sums) if pinned.get(k) != sums.get(k))
        print("identical" if not diff else f"changed: {', '.join(diff)}")
        return 1 if diff else 0
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(sums, indent=2, sort_keys=True) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(REPO_ROOT / "src"))
    sys.exit(main())
