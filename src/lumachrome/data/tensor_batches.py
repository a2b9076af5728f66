"""Batched augmentation of an in-memory image tensor, on whatever device it lives on.

For fast training, a data pack (``lumachrome data pack``) is loaded once as a uint8 tensor
``(N, 3, S, S)`` (on the GPU when there is one) and every batch is cut out of it with one
``grid_sample`` call: a random-resized crop (area fraction in ``[min_scale, 1]``, aspect ratio in
``[3/4, 4/3]``) and a horizontal flip per image. No Python work per image, no DataLoader workers.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from lumachrome.color.lab import rgb_to_lab

__all__ = ["TensorBatcher", "random_resized_crop"]


def random_resized_crop(
    images: torch.Tensor,
    size: int,
    *,
    min_scale: float = 0.35,
    flip: bool = True,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Random-resized crops of a batch.

    Args:
        images: ``(B, C, H, W)`` float tensor.
        size: output side (square crops).
        min_scale: smallest crop area as a fraction of the image.
        flip: mirror half of the crops horizontally.
        generator: a CPU ``torch.Generator`` for reproducible crops.

    Returns:
        ``(B, C, size, size)`` tensor on the same device (bilinear resampling).
    """
    b = images.shape[0]

    def rand(n: int) -> torch.Tensor:
        return torch.rand(n, generator=generator)

    area = min_scale + (1.0 - min_scale) * rand(b)
    log_ratio = (rand(b) * 2 - 1) * math.log(4 / 3)
    ratio = torch.exp(log_ratio)
    w = torch.sqrt(area * ratio).clamp(max=1.0)  # fraction of the width
    h = torch.sqrt(area / ratio).clamp(max=1.0)
    cx = (rand(b) * 2 - 1) * (1 - w)  # centre in normalised [-1, 1] coordinates
    cy = (rand(b) * 2 - 1) * (1 - h)
    sign = torch.where(rand(b) < 0.5, -1.0, 1.0) if flip else torch.ones(b)
    theta = torch.zeros(b, 2, 3)
    theta[:, 0, 0] = w * sign
    theta[:, 0, 2] = cx
    theta[:, 1, 1] = h
    theta[:, 1, 2] = cy
    theta = theta.to(device=images.device, dtype=images.dtype)
    grid = F.affine_grid(theta, [b, images.shape[1], size, size], align_corners=False)
    return F.grid_sample(images, grid, mode="bilinear", padding_mode="reflection", align_corners=False)


class TensorBatcher:
    """Endless random batches ``{"L", "ab", "rgb"}`` from a uint8 image tensor.

    Args:
        images: ``(N, 3, S, S)`` uint8 tensor (any device).
        size: crop size of the batches.
        batch_size: images per batch.
        min_scale, flip: augmentation (see :func:`random_resized_crop`).
        seed: seeds the sampling of indices and crops.
    """

    def __init__(self, images: torch.Tensor, size: int, batch_size: int, *, min_scale: float = 0.35,
                 flip: bool = True, seed: int = 0) -> None:
        if images.dim() != 4 or images.shape[1] != 3 or images.dtype != torch.uint8:
            raise ValueError(f"TensorBatcher: expected a uint8 (N, 3, S, S) tensor, got {images.dtype} "
                             f"{tuple(images.shape)}")
        self.images = images
        self.size = size
        self.batch_size = batch_size
        self.min_scale = min_scale
        self.flip = flip
        self.generator = torch.Generator().manual_seed(seed)
        self._order = torch.empty(0, dtype=torch.long)
        self.epoch = 0

    def __len__(self) -> int:
        return self.images.shape[0]

    def _next_indices(self) -> torch.Tensor:
        # Sampling without replacement within an epoch; a new permutation each epoch.
        if self._order.numel() < self.batch_size:
            perm = torch.randperm(len(self), generator=self.generator)
            self._order = torch.cat([self._order, perm])
            self.epoch += 1
        idx, self._order = self._order[: self.batch_size], self._order[self.batch_size:]
        return idx

    def state_dict(self) -> dict:
        return {"epoch": self.epoch, "generator": self.generator.get_state().tolist(),
                "order": self._order.tolist()}

    def load_state_dict(self, state: dict) -> None:
        self.epoch = int(state["epoch"])
        self.generator.set_state(torch.tensor(state["generator"], dtype=torch.uint8))
        self._order = torch.tensor(state["order"], dtype=torch.long)

    def __iter__(self):
        return self

    def __next__(self) -> dict[str, torch.Tensor]:
        idx = self._next_indices().to(self.images.device)
        rgb = self.images.index_select(0, idx).float().div_(255.0)
        rgb = random_resized_crop(rgb, self.size, min_scale=self.min_scale, flip=self.flip,
                                  generator=self.generator).clamp_(0.0, 1.0)
        lab = rgb_to_lab(rgb)
        return {"L": lab[:, :1], "ab": lab[:, 1:], "rgb": rgb}
