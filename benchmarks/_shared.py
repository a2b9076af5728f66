"""Helpers the benchmark scripts share: where ``../shared/data`` is, which model to time."""

from __future__ import annotations

import os
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def shared_dir() -> Path | None:
    """``../shared/data`` (``$LUMACHROME_SHARED`` first), or None."""
    for c in (os.environ.get("LUMACHROME_SHARED"), REPO.parent / "shared" / "data", "/work/shared/data"):
        if c and Path(c).is_dir():
            return Path(c)
    return None


def resolve_model(name: str | None, tmp: Path) -> tuple[str, str]:
    """(model argument for ``Colorizer.load``, label for the table).

    ``name`` when given; else the shipped ``photo`` model; else (a checkout without weights) a
    randomly initialised network of the same architecture and working size, saved under ``tmp``,
    so the timings still describe the shipped network's cost.
    """
    from lumachrome.colorizer import available_models

    if name is not None:
        return name, name
    if "photo" in available_models():
        return "photo", "photo (shipped)"
    import torch

    from lumachrome.models import create_model, save_model_dir

    torch.manual_seed(0)
    model = create_model("unet", widths=[32, 64, 128, 256], blocks=1)
    with torch.no_grad():
        for p in model.head.parameters():
            p.normal_(0.0, 0.1)
    folder = tmp / "photo_arch_random"
    save_model_dir(model, folder, architecture="unet", args=model.args, preprocessing={"size": 128},
                   extra={"name": "photo-architecture-random"})  # fmt: skip
    return str(folder), "U-Net widths 32-256, 1 block, size 128, RANDOM INIT (no shipped 'photo' model)"
