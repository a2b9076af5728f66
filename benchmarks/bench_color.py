"""Benchmark sRGB <-> Lab conversions for full-resolution images (numpy (H, W, 3) in and out).

Compares, for each direction and image size (megapixels):

* ``opencv``: ``cv2.cvtColor`` on float32 (interpolated gamma / cube-root tables);
* ``lumachrome-np``: :func:`lumachrome.color.lab.rgb_to_lab_np` / ``lab_to_rgb_np`` (row chunks,
  exact float32 formulas); ``lumachrome-np-u8`` feeds the uint8 image (lookup-table decoding);
* ``torch``: :func:`lumachrome.color.lab.rgb_to_lab` / ``lab_to_rgb`` on ``torch.from_numpy(x)
  .permute(2, 0, 1)`` (float32), result permuted back to a contiguous (H, W, 3) array;
* ``kornia``: ``kornia.color.rgb_to_lab`` / ``lab_to_rgb`` the same way (only when installed; not a
  lumachrome dependency);
* ``skimage``: ``skimage.color.rgb2lab`` / ``lab2rgb`` (float64, the reference; 1 MP only).

Each (method, direction, size) runs in a fresh subprocess so that its peak memory can be read:
"peak MB" is the growth of the process's peak RSS over the RSS after the input was created
(``/proc/self/clear_refs`` resets the high-water mark; Linux only). Time is the best of
``--repeat`` runs. "max err" is the largest absolute difference from scikit-image (float64) on a
1 MP image: Lab units for rgb->lab, RGB in [0, 1] for lab->rgb.

Usage::

    python benchmarks/bench_color.py                 # 1, 12, 24 MP, all methods
    python benchmarks/bench_color.py --sizes 1 --repeat 5
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

SIZES = {1: (1000, 1000), 12: (3000, 4000), 24: (4000, 6000)}
METHODS = ["opencv", "lumachrome-np", "lumachrome-np-u8", "torch", "kornia", "skimage"]
DIRECTIONS = ["rgb->lab", "lab->rgb"]


def _rss_mb(field: str) -> float:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024.0
    return float("nan")


def _reset_peak() -> bool:
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
        return True
    except OSError:
        return False


def _test_image(h: int, w: int):
    """float32 (h, w, 3) in [0, 1] with continuous values (astronaut, bicubic resize)."""
    import cv2
    import numpy as np
    from skimage import data

    img = data.astronaut().astype(np.float32) / 255.0
    out = cv2.resize(img, (w, h), interpolation=cv2.INTER_CUBIC)
    return np.clip(out, 0.0, 1.0, out=out)


def _converter(method: str, direction: str):
    """Return f(numpy (H, W, 3)) -> numpy (H, W, 3), or None when unavailable."""
    import numpy as np

    if method == "opencv":
        import cv2

        code = cv2.COLOR_RGB2Lab if direction == "rgb->lab" else cv2.COLOR_Lab2RGB
        return lambda a: cv2.cvtColor(a, code)
    if method.startswith("lumachrome-np"):
        from lumachrome.color.lab import lab_to_rgb_np, rgb_to_lab_np

        if method == "lumachrome-np-u8" and direction != "rgb->lab":
            return None
        return rgb_to_lab_np if direction == "rgb->lab" else lab_to_rgb_np
    if method in ("torch", "kornia"):
        import torch

        if method == "torch":
            from lumachrome.color.lab import lab_to_rgb, rgb_to_lab

            fn = rgb_to_lab if direction == "rgb->lab" else lab_to_rgb
        else:
            try:
                import kornia.color as kc
            except ImportError:
                return None
            fn = kc.rgb_to_lab if direction == "rgb->lab" else kc.lab_to_rgb

        def run(a):
            with torch.no_grad():
                out = fn(torch.from_numpy(a).permute(2, 0, 1))
            return out.permute(1, 2, 0).contiguous().numpy()

        return run
    if method == "skimage":
        from skimage import color

        f = color.rgb2lab if direction == "rgb->lab" else color.lab2rgb
        return lambda a: f(a.astype(np.float64)).astype(np.float32)
    raise ValueError(f"bench_color: unknown method {method}")


def _one(method: str, direction: str, mp: int, repeat: int) -> dict:
    """Run in a fresh process: time, peak memory and (at 1 MP) the error vs scikit-image."""
    import numpy as np

    fn = _converter(method, direction)
    if fn is None:
        return {"skip": "not available"}
    h, w = SIZES[mp]
    rgb = _test_image(h, w)
    if direction == "rgb->lab":
        x = (rgb * 255.0 + 0.5).astype(np.uint8) if method == "lumachrome-np-u8" else rgb
    else:
        from lumachrome.color.lab import rgb_to_lab_np

        x = rgb_to_lab_np(rgb)
    fn(x[:16, :16])  # warm-up: imports, lookup tables, thread pools
    base = _rss_mb("VmRSS")
    can_peak = _reset_peak()
    times = []
    out = None
    for i in range(repeat):
        t0 = time.perf_counter()
        out = fn(x)
        times.append(time.perf_counter() - t0)
        if i == 0:
            peak = _rss_mb("VmHWM") - base if can_peak else float("nan")
        del out
    res = {"seconds": min(times), "peak_mb": peak}
    if mp == 1:
        from skimage import color

        if direction == "rgb->lab":
            ref = color.rgb2lab(x if x.dtype == np.uint8 else x.astype(np.float64))
        else:
            ref = color.lab2rgb(color.rgb2lab(rgb.astype(np.float64)))
            x = color.rgb2lab(rgb.astype(np.float64)).astype(np.float32)
        res["max_err"] = float(np.abs(fn(x).astype(np.float64) - ref).max())
    return res


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[1, 12, 24], choices=sorted(SIZES))
    ap.add_argument("--methods", nargs="+", default=METHODS, choices=METHODS)
    ap.add_argument("--directions", nargs="+", default=DIRECTIONS, choices=DIRECTIONS)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--one", nargs=3, metavar=("METHOD", "DIRECTION", "MP"), help=argparse.SUPPRESS)
    args = ap.parse_args(argv)

    if args.one:
        method, direction, mp = args.one
        print(json.dumps(_one(method, direction, int(mp), args.repeat)))
        return 0

    import torch

    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(
        f"# cpus={os.cpu_count()} torch_threads={torch.get_num_threads()} load1={load:.1f} "
        f"repeat={args.repeat} (time: best of repeats; peak MB: extra peak RSS over the input)"
    )
    header = f"{'direction':9s} {'method':17s} {'MP':>3s} {'seconds':>8s} {'peak MB':>8s} {'max err vs skimage':>19s}"
    print(header)
    print("-" * len(header))
    for direction in args.directions:
        for method in args.methods:
            for mp in args.sizes:
                if method == "skimage" and mp != 1:
                    continue  # float64 reference: slow and several GB at 24 MP
                if method == "lumachrome-np-u8" and direction != "rgb->lab":
                    continue
                cmd = [sys.executable, __file__, "--repeat", str(args.repeat), "--one", method, direction, str(mp)]
                proc = subprocess.run(cmd, capture_output=True, text=True)
                if proc.returncode != 0:
                    tail = (proc.stderr.strip().splitlines() or ["?"])[-1]
                    print(f"{direction:9s} {method:17s} {mp:3d}  failed: {tail}")
                    continue
                res = json.loads(proc.stdout.strip().splitlines()[-1])
                if "skip" in res:
                    if mp == args.sizes[0]:
                        print(f"{direction:9s} {method:17s}   -  skipped: {res['skip']}")
                    continue
                err = f"{res['max_err']:.2e}" if "max_err" in res else ""
                print(f"{direction:9s} {method:17s} {mp:3d} {res['seconds']:8.3f} {res['peak_mb']:8.0f} {err:>19s}")
                sys.stdout.flush()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
