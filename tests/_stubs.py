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


def tiny_effunet(seed: int = 0, **args: Any) -> nn.Module:
    """A small randomly initialised ``effunet`` (EfficientNet-Lite0 encoder, decoder 16/16/8/8, scene
    FiLM of width 8; no package weights needed) in eval mode, with non-trivial BatchNorm statistics, a
    random head and a random FiLM, so its colours vary and every path matters. ``args`` override the
    constructor's (``head``, ``num_bins`` ...)."""
    from lumachrome.models import create_model

    torch.manual_seed(seed)
    model = create_model("effunet", **{"decoder": [16, 16, 8, 8], "global_context": 8, **args})
    g = torch.Generator().manual_seed(seed + 1)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.copy_(torch.randn(m.num_features, generator=g) * 0.1)
                m.running_var.copy_(torch.rand(m.num_features, generator=g) + 0.5)
        model.head.weight.copy_(torch.randn(model.head.weight.shape, generator=g) * 0.5)
        model.head.bias.zero_()
        if model.glob is not None:
            model.glob.mlp[2].weight.copy_(torch.randn(model.glob.mlp[2].weight.shape, generator=g) * 0.5)
    return model.eval()


def save_tiny_effunet(folder: Path, size: int = 64, seed: int = 0, **save_args: Any) -> Path:
    """:func:`tiny_effunet` saved as a model folder (``architecture: effunet``) with working size ``size``;
    ``save_args`` go to :func:`lumachrome.models.save_model_dir` (``decoding``, ``extra``, ...)."""
    from lumachrome.models import save_model_dir

    model = tiny_effunet(seed)
    save_args.setdefault("extra", {"name": "tiny-effunet"})
    save_model_dir(model, folder, architecture="effunet", args=model.args, preprocessing={"size": size}, **save_args)
    return folder
