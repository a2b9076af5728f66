"""Run every ``benchmarks/bench_*.py`` in turn (``make bench``); each prints Markdown tables.

Usage: python benchmarks/run_all.py [NAME ...]   (e.g. ``colorize`` for bench_colorize.py only)
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main(argv: list[str]) -> int:
    scripts = sorted(HERE.glob("bench_*.py"))
    if argv:
        scripts = [s for s in scripts if s.stem.removeprefix("bench_") in argv or s.stem in argv]
    failed = []
    for script in scripts:
        print(f"\n## {script.name}\n", flush=True)
        t0 = time.perf_counter()
        code = subprocess.call([sys.executable, str(script)], stdin=subprocess.DEVNULL)
        print(f"\n({script.name}: {time.perf_counter() - t0:.0f} s, exit {code})", flush=True)
        if code:
            failed.append(script.name)
    if failed:
        print(f"failed: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
