"""Where bf16 autocast pays: CUDA, and CPUs with native bf16 matrix units.

On a CPU with AMX (Sapphire Rapids and later) or AVX512-BF16, ``torch.autocast("cpu",
dtype=torch.bfloat16)`` with channels-last tensors runs convolutions through oneDNN's bf16 kernels:
2.5-3x the float32 training speed of the colorizers measured here (``benchmarks/bench_train_cpu.py``).
On other CPUs bf16 is emulated and slower than float32, so :func:`bf16_autocast_device` says no and
training stays float32. ``LUMACHROME_CPU_BF16=0`` (or ``1``) overrides the detection.
"""

from __future__ import annotations

import os
from contextlib import nullcontext
from functools import lru_cache

import torch

__all__ = ["autocast", "bf16_autocast_device", "cpu_bf16_supported"]


@lru_cache(maxsize=1)
def cpu_bf16_supported() -> bool:
    """True when this CPU computes bf16 natively (AMX tiles or AVX512-BF16), or when
    ``LUMACHROME_CPU_BF16`` says so."""
    env = os.environ.get("LUMACHROME_CPU_BF16")
    if env is not None and env.strip() != "":
        return env.strip().lower() not in ("0", "false", "no", "off")
    for name in ("_is_amx_tile_supported", "_is_avx512_bf16_supported"):
        fn = getattr(torch.cpu, name, None)
        try:
            if fn is not None and fn():
                return True
        except Exception:  # noqa: BLE001 - a private probe that changed: ask /proc/cpuinfo instead
            pass
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="replace") as f:
            flags = f.read().split()
    except OSError:
        return False
    return "amx_bf16" in flags or "avx512_bf16" in flags


def bf16_autocast_device(device: torch.device, enabled: bool = True) -> str | None:
    """The autocast device type (``"cuda"`` / ``"cpu"``) when bf16 autocast should run on ``device``."""
    if not enabled:
        return None
    if device.type == "cuda":
        return "cuda"
    if device.type == "cpu" and cpu_bf16_supported():
        return "cpu"
    return None


def autocast(device_type: str | None):
    """``torch.autocast(device_type, bfloat16)``, or a no-op context for ``None``."""
    return torch.autocast(device_type, dtype=torch.bfloat16) if device_type else nullcontext()
