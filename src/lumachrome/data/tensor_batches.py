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

__all__ = ["TensorBatcher", "crop_with_theta", "random_crop_theta", "random_resized_crop"]


def random_crop_theta(
    b: int,
    *,
    min_scale: float = 0.35,
    flip: bool = True,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Affine matrices of ``b`` random-resized crops (+ flips), for :func:`affine_grid`.

    Draws, in order, ``b`` areas, ``b`` log aspect ratios, ``b`` x- and ``b`` y-centres and ``b``
    flip coins from ``generator`` (CPU), so the same generator state always gives the same crops.

    Returns:
        ``(b, 2, 3)`` float32 CPU tensor in normalised ``[-1, 1]`` coordinates.
    """

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
    return theta


def crop_with_theta(images: torch.Tensor, theta: torch.Tensor, size: int) -> torch.Tensor:
    """Resample ``images`` ``(B, C, H, W)`` through the crops ``theta`` ``(B, 2, 3)`` to ``(B, C, size, size)``."""
    theta = theta.to(device=images.device, dtype=images.dtype)
    grid = F.affine_grid(theta, [images.shape[0], images.shape[1], size, size], align_corners=False)
    return F.grid_sample(images, grid, mode="bilinear", padding_mode="reflection", align_corners=False)


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
    theta = random_crop_theta(images.shape[0], min_scale=min_scale, flip=flip, generator=generator)
    return crop_with_theta(images, theta, size)


class TensorBatcher:
    """Endless random batches ``{"L", "ab", "rgb"}`` from a uint8 image tensor.

    In data-parallel training every rank builds the same batcher (same images, seed and *global*
    ``batch_size``) with its own ``rank``: all ranks draw the same global indices and crops from
    identically seeded generators and each returns its contiguous slice
    ``[rank * b, (rank + 1) * b)`` with ``b = batch_size // world_size``. The union of the rank
    batches is exactly the single-process batch, and :meth:`state_dict` is the same on every rank
    (so a run can resume with another number of processes).

    Args:
        images: ``(N, 3, S, S)`` uint8 tensor (any device).
        size: crop size of the batches.
        batch_size: images per (global) batch.
        min_scale, flip: augmentation (see :func:`random_resized_crop`).
        seed: seeds the sampling of indices and crops.
        rank, world_size: this process's share of each batch (default: the whole batch).
    """

    def __init__(self, images: torch.Tensor, size: int, batch_size: int, *, min_scale: float = 0.35,
                 flip: bool = True, seed: int = 0, rank: int = 0, world_size: int = 1) -> None:
        if images.dim() != 4 or images.shape[1] != 3 or images.dtype != torch.uint8:
            raise ValueError(f"TensorBatcher: expected a uint8 (N, 3, S, S) tensor, got {images.dtype} "
                             f"{tuple(images.shape)}")
        if world_size < 1 or not 0 <= rank < world_size:
            raise ValueError(f"TensorBatcher: rank {rank} is not in [0, world_size={world_size})")
        if batch_size % world_size:
            raise ValueError(f"TensorBatcher: batch_size {batch_size} is not divisible by world_size {world_size}")
        self.images = images
        self.size = size
        self.batch_size = batch_size
        self.rank = rank
        self.world_size = world_size
        self.min_scale = min_scale
        self.flip = flip
        self.generator = torch.Generator().manual_seed(seed)
        self._order = torch.empty(0, dtype=torch.long)
        self.epoch = 0

    def __len__(self) -> int:
        return self.images.shape[0]

    @property
    def local_batch_size(self) -> int:
        """Images per batch returned by this rank (``batch_size // world_size``)."""
        return self.batch_size // self.world_size

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
        # Indices and crops are drawn for the whole global batch (identically on every rank), then
        # this rank keeps its slice: only its own images are gathered and resampled.
        idx = self._next_indices()
        theta = random_crop_theta(self.batch_size, min_scale=self.min_scale, flip=self.flip,
                                  generator=self.generator)
        if self.world_size > 1:
            b = self.local_batch_size
            idx, theta = idx[self.rank * b:(self.rank + 1) * b], theta[self.rank * b:(self.rank + 1) * b]
        rgb = self.images.index_select(0, idx.to(self.images.device)).float().div_(255.0)
        rgb = crop_with_theta(rgb, theta, self.size).clamp_(0.0, 1.0)
        lab = rgb_to_lab(rgb)
        return {"L": lab[:, :1], "ab": lab[:, 1:], "rgb": rgb}
