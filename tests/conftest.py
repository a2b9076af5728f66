"""Shared pytest fixtures."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]


def shared_data_dir() -> Path | None:
    """The shared data folder (``$LUMACHROME_SHARED``, else ``../shared/data`` beside the repo), or None."""
    candidates = []
    env = os.environ.get("LUMACHROME_SHARED")
    if env:
        candidates.append(Path(env))
    candidates.append(REPO_ROOT.parent / "shared" / "data")
    candidates.append(Path("/work/shared/data"))
    for c in candidates:
        if c.is_dir():
            return c.resolve()
    return None


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """Path to the shared data folder; skips the test when it is absent."""
    path = shared_data_dir()
    if path is None:
        pytest.skip("shared data folder not found (set LUMACHROME_SHARED or place it at ../shared/data)")
    return path
