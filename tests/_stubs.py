"""Small stand-ins shared by several test modules: a stub network and a tiny saved model folder."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn


class RampAB(nn.Module):
    """Stub network: a smooth, spatially varying ab (a ramps along x, b along y), in gamut."""

    def predict_ab(self, L: torch.Tensor, temperature: float | None = None) -> torch.Tensor:
        b, _, h, w = L.shape
        ys = torch.linspace(-15, 15, h).view(1, 1, h, 1).expand(b, 1, h, w)
        xs = torch.linspace(-15, 15, w).view(1, 1, 1, w).expand(b, 1, h, w)
        return torch.cat([xs, ys], dim=1)


def save_tiny_model(folder: Path, size: int = 64, **save_args: Any) -> Path:
    """A randomly initialised (seed 0) ``unet_tiny`` saved as a model folder with working size ``size``;
    ``save_args`` go to :func:`lumachrome.models.save_model_dir` (``decoding``, ``extra``, ...)."""
    from lumachrome.models import create_model, save_model_dir

    torch.manual_seed(0)
    model = create_model("unet_tiny")
    save_model_dir(model, folder, architecture="unet", args=model.args, preprocessing={"size": size}, **save_args)
    return folder
