"""Where the benchmarks find ``../shared/data`` (``$LUMACHROME_SHARED`` first), or None."""

from __future__ import annotations

import os
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def shared_dir() -> Path | None:
    for c in (os.environ.get("LUMACHROME_SHARED"), REPO.parent / "shared" / "data", "/work/shared/data"):
        if c and Path(c).is_dir():
            return Path(c)
    return None
