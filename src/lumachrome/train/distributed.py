"""Distributed data-parallel training (PyTorch DDP) under ``torchrun``.

``torchrun --nproc_per_node N -m lumachrome train ...`` starts N copies of the trainer and sets
``RANK``, ``WORLD_SIZE`` and ``LOCAL_RANK`` (plus ``MASTER_ADDR``/``MASTER_PORT``) in each. This
module turns those variables into an initialised ``torch.distributed`` process group:

* backend ``nccl`` when the rank trains on CUDA (one GPU per process, ``cuda:LOCAL_RANK``),
  ``gloo`` on the CPU;
* without those variables (or with ``WORLD_SIZE=1``) nothing is initialised and every helper
  here is a no-op, so the single-process trainer is unchanged.

The loop (:mod:`lumachrome.train.loop`) keeps ``train.batch_size`` as the *global* batch: each rank
trains on ``batch_size / world_size`` images, DDP averages the gradients, so one step equals a
single-process step on the whole global batch. Rank 0 alone writes checkpoints, logs and samples.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.distributed as dist

from lumachrome.errors import ConfigError
from lumachrome.precision import env_ranks, resolve_device

__all__ = [
    "DistInfo",
    "all_reduce_mean",
    "barrier",
    "cleanup",
    "env_ranks",
    "get_rank",
    "get_world_size",
    "is_main",
    "per_rank_batch_size",
    "rank_seed",
    "setup",
]


@dataclass(frozen=True)
class DistInfo:
    """Where this process stands in a (possibly single-process) training.

    Attributes:
        rank: global rank in ``[0, world_size)``; rank 0 is the one that writes files.
        world_size: number of processes (1: no process group).
        local_rank: rank on this machine (selects ``cuda:LOCAL_RANK``).
        device: the device this rank trains on.
        backend: ``"nccl"``, ``"gloo"`` or None (single process).
        owns_group: True when :func:`setup` created the process group (so :func:`cleanup` destroys it).
    """

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))
    backend: str | None = None
    owns_group: bool = False

    @property
    def enabled(self) -> bool:
        """True when gradients are synchronised across more than one process."""
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def _device(name: str, local_rank: int | None = None) -> torch.device:
    return resolve_device(name, local_rank=local_rank, setting="train.device")


def setup(device: str = "auto") -> DistInfo:
    """Initialise the process group from the torchrun environment and pick this rank's device.

    Returns a single-process :class:`DistInfo` (nothing initialised) when ``WORLD_SIZE`` is absent
    or 1. When a process group already exists (initialised by the caller), it is used as is.
    """
    if dist.is_available() and dist.is_initialized():
        _, _, local = env_ranks()
        world = dist.get_world_size()
        return DistInfo(rank=dist.get_rank(), world_size=world, local_rank=local,
                        device=_device(device, local if world > 1 else None),
                        backend=str(dist.get_backend()), owns_group=False)
    rank, world, local = env_ranks()
    if world == 1:
        return DistInfo(device=_device(device))
    if not dist.is_available():
        raise ConfigError(f"WORLD_SIZE={world}: this PyTorch build has no torch.distributed support")
    dev = _device(device, local)
    backend = "nccl" if dev.type == "cuda" else "gloo"
    if dev.type == "cuda":
        torch.cuda.set_device(dev)
    # init_method env:// reads MASTER_ADDR / MASTER_PORT (set by torchrun).
    dist.init_process_group(backend=backend, init_method="env://", rank=rank, world_size=world)
    return DistInfo(rank=rank, world_size=world, local_rank=local, device=dev, backend=backend, owns_group=True)


def cleanup(info: DistInfo | None = None) -> None:
    """Destroy the process group if :func:`setup` created it (call once at the end of training)."""
    if info is not None and not info.owns_group:
        return
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def get_rank() -> int:
    return dist.get_rank() if dist.is_available() and dist.is_initialized() else 0


def get_world_size() -> int:
    return dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1


def is_main() -> bool:
    """True on rank 0 (and in a single-process run): the process that writes files and logs."""
    return get_rank() == 0


def barrier() -> None:
    """Wait for every rank (no-op in a single process)."""
    if get_world_size() <= 1:
        return
    if dist.get_backend() == "nccl":
        dist.barrier(device_ids=[torch.cuda.current_device()])
    else:
        dist.barrier()


def all_reduce_mean(t: torch.Tensor) -> torch.Tensor:
    """Mean of ``t`` over the ranks (a new tensor on ``t``'s device; ``t`` itself when single-process).

    NCCL reduces CUDA tensors only, so CPU tensors make a round trip through this rank's GPU.
    """
    world = get_world_size()
    if world <= 1:
        return t
    comm_dev = torch.device("cuda", torch.cuda.current_device()) if dist.get_backend() == "nccl" else t.device
    buf = t.detach().to(comm_dev, copy=True)
    dist.all_reduce(buf, op=dist.ReduceOp.SUM)  # gloo has no AVG: sum, then divide
    return buf.div_(world).to(t.device)


def per_rank_batch_size(global_batch: int, world_size: int) -> int:
    """Images per rank for a global batch; ConfigError when it does not divide evenly."""
    if global_batch % world_size:
        raise ConfigError(f"train.batch_size: the global batch {global_batch} is not divisible by the "
                          f"{world_size} processes (WORLD_SIZE); use a multiple of {world_size}")
    return global_batch // world_size


def rank_seed(seed: int, rank: int, step: int = 0) -> int:
    """A seed distinct per (run seed, rank, start step), for per-rank randomness (augmentation, dropout)."""
    return (seed * 1_000_003 + rank * 7_919 + step * 104_729 + 1) % (2**63)
