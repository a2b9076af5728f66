#!/usr/bin/env python3
"""Pin every shipped model's output on the sample photos (tests/data/output_checksums.json).

Two pins per output file:

* ``platforms``: the sha256 of its bytes, under the key of the machine that pinned it (:func:`platform_key`:
  torch version, the CPU kernel level torch dispatches to, the CPU's vendor and model). Float32 convolutions
  sum in a different order on another CPU (oneDNN picks other kernels on an AMD AVX-512 machine than on
  an Intel AMX one), which moves a few 8-bit pixels, so bytes can only be compared on the same kind of
  machine; there they prove a refactoring byte-identical.
* ``thumbnails``: the output shrunk to :data:`THUMB_SIDE` px on its long side (``INTER_AREA``, PNG in base64),
  compared everywhere within :data:`THUMB_MAX_DIFF` / :data:`THUMB_MEAN_DIFF` grey levels: kernel rounding
  averages away, a changed model or decoding does not.

``tests/test_output_checksums.py`` recomputes both and fails when one changes. When a model's output is
*meant* to change (a new ``photo`` or ``photo-hints`` model, a decoding change), re-pin and commit the JSON
with the change (re-pinning keeps the other platforms' hashes only when the thumbnails still match)::

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
#: Long side (px) of the stored thumbnails ...
THUMB_SIDE = 32
#: ... and how far (grey levels) a recomputed thumbnail may differ from the stored one: at most this at
#: any value ...
THUMB_MAX_DIFF = 2
#: ... and this on average over all values. Measured on the AMD EPYC (AVX-512) machine: oneDNN switched off
#: (other convolution kernels) and 2 threads instead of 1 change no thumbnail value at all, while
#: ``--saturation 1.02`` on ``photo`` (2 % more chroma) moves every photo's thumbnail by 0.12-0.42 on average
#: and up to 6 at most, so a 2 % change of the decoding is caught.
THUMB_MEAN_DIFF = 0.1


def platform_key() -> str:
    """Which machines give byte-identical outputs: torch's version, the CPU kernel level it dispatches to
    (``torch.backends.cpu.get_cpu_capability()``) and the CPU's vendor and model name."""
    import platform

    import torch

    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="replace") as f:
            info = {k.strip(): v for k, v in (line.split(":", 1) for line in f.read().split("\n\n")[0].splitlines() if ":" in line)}
        cpu = " ".join(info.get(k, "").strip() for k in ("vendor_id", "model name")).strip() or cpu
    except OSError:
        pass
    return f"torch {torch.__version__} | {torch.backends.cpu.get_cpu_capability()} | {cpu}"


def thumbnail(data: bytes) -> str:
    """An image file's pixels shrunk to :data:`THUMB_SIDE` px on the long side, as base64 of a PNG."""
    import base64

    import cv2
    import numpy as np

    img = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    h, w = img.shape[:2]
    s = THUMB_SIDE / max(h, w)
    small = cv2.resize(img, (max(1, round(w * s)), max(1, round(h * s))), interpolation=cv2.INTER_AREA)
    return base64.b64encode(cv2.imencode(".png", small)[1].tobytes()).decode("ascii")


def thumbnail_diff(a: str, b: str) -> tuple[float, float]:
    """(largest, mean) absolute difference in grey levels between two :func:`thumbnail` strings
    (``inf`` when their sizes differ)."""
    import base64

    import cv2
    import numpy as np

    x, y = (cv2.imdecode(np.frombuffer(base64.b64decode(t), np.uint8), cv2.IMREAD_COLOR).astype(np.int16) for t in (a, b))
    if x.shape != y.shape:
        return float("inf"), float("inf")
    d = np.abs(x - y)
    return float(d.max()), float(d.mean())


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
                      log: Callable[[str], None] | None = None) -> dict[str, dict[str, dict[str, str]]]:
    """``{case: {output file name: {"sha256": ..., "thumb": ...}}}``, each case run through ``lumachrome colorize``.

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
             log: Callable[[str], None] | None) -> dict[str, dict[str, dict[str, str]]]:
    from lumachrome.cli import main

    folders = write_inputs(work / "inputs")
    result: dict[str, dict[str, dict[str, str]]] = {}
    for case, (kind, args) in (cases or CASES).items():
        head, _, rest = kind.partition("/")
        src = folders[head] / rest if rest else folders[head]
        out = work / "out" / case
        out.mkdir(parents=True)
        code = main(["colorize", str(src), "-o", str(out), "--device", "cpu", "--quiet", *args])
        if code != 0:
            raise RuntimeError(f"{case}: lumachrome colorize exited with {code}")
        result[case] = {f.name: _pins(f.read_bytes()) for f in sorted(out.iterdir())}
        if log:
            log(f"{case}: {len(result[case])} output(s)")
    return result


def _pins(data: bytes) -> dict[str, str]:
    """An output file's two pins: the sha256 of its bytes and its :func:`thumbnail`."""
    return {"sha256": hashlib.sha256(data).hexdigest(), "thumb": thumbnail(data)}


def hashes(sums: dict[str, dict[str, dict[str, str]]]) -> dict[str, dict[str, str]]:
    """``{case: {file: sha256}}`` of :func:`compute_checksums`' result."""
    return {case: {f: v["sha256"] for f, v in files.items()} for case, files in sums.items()}


def thumbnails(sums: dict[str, dict[str, dict[str, str]]]) -> dict[str, dict[str, str]]:
    """``{case: {file: thumbnail}}`` of :func:`compute_checksums`' result."""
    return {case: {f: v["thumb"] for f, v in files.items()} for case, files in sums.items()}


def thumbnail_changes(pinned: dict[str, dict[str, str]], now: dict[str, dict[str, str]]) -> list[str]:
    """The outputs whose thumbnails moved beyond the tolerance (or appeared / went away), one line each."""
    bad = []
    for case in sorted(set(pinned) | set(now)):
        a, b = pinned.get(case, {}), now.get(case, {})
        for f in sorted(set(a) | set(b)):
            if f not in a or f not in b:
                bad.append(f"{case}/{f}: {'new' if f in b else 'gone'}")
                continue
            mx, mean = thumbnail_diff(a[f], b[f])
            if mx > THUMB_MAX_DIFF or mean > THUMB_MEAN_DIFF:
                bad.append(f"{case}/{f}: thumbnail differs by up to {mx:g} grey levels, {mean:.2f} on average "
                           f"(tolerance {THUMB_MAX_DIFF} / {THUMB_MEAN_DIFF})")
    return bad


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--check", action="store_true", help="compare with the pinned JSON instead of rewriting it")
    p.add_argument("--out", type=Path, default=CHECKSUMS, help=f"the JSON file (default {CHECKSUMS})")
    args = p.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        sums = compute_checksums(Path(tmp), log=print)
    key = platform_key()
    pinned = json.loads(args.out.read_text()) if args.out.is_file() else {}
    if "platforms" not in pinned:  # the old format: hashes of one unnamed machine, no thumbnails
        pinned = {}
    changed = thumbnail_changes(pinned.get("thumbnails", {}), thumbnails(sums)) if pinned else ["nothing pinned"]
    if args.check:
        exact, now = pinned.get("platforms", {}).get(key), hashes(sums)
        diff = [] if exact is None else sorted(k for k in set(exact) | set(now) if exact.get(k) != now.get(k))
        print(f"platform: {key} ({'no hashes pinned for it' if exact is None else 'hashes ' + ('identical' if not diff else 'changed: ' + ', '.join(diff))})")
        print("thumbnails within tolerance" if not changed else "thumbnails changed:\n  " + "\n  ".join(changed))
        return 1 if diff or changed else 0
    # the other machines' hashes stay valid only for the same outputs
    platforms = {k: v for k, v in pinned.get("platforms", {}).items() if k != key} if not changed else {}
    platforms[key] = hashes(sums)
    doc = {"platforms": dict(sorted(platforms.items())), "thumbnails": thumbnails(sums)}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    tmp_out = args.out.with_suffix(".json.tmp")
    tmp_out.write_text(json.dumps(doc, indent=2, sort_keys=True) + "\n")
    tmp_out.replace(args.out)
    kept = len(platforms) - 1
    print(f"wrote {args.out} (hashes for {key}; {kept} other platform(s) kept)")
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(REPO_ROOT / "src"))
    sys.exit(main())
