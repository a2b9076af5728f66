"""The device and precision policy: which device a ``device`` setting means, and where bf16 autocast pays.

:func:`resolve_device` is the one place where ``"auto"``, ``"cpu"``, ``"cuda"``, ``"cuda:N"`` become a
``torch.device`` (inference, training, the web app, evaluation: all of them), checked against the
machine; :func:`env_ranks` reads the process's place in a torchrun launch (one GPU per process),
for training and for the archive engine alike.

bf16 autocast pays on CUDA, and on CPUs with native bf16 matrix units.

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

from lumachrome.errors import ConfigError

__all__ = ["autocast", "bf16_autocast_device", "cpu_bf16_supported", "env_ranks", "inference_autocast",
           "resolve_device"]


def resolve_device(device: str | torch.device | None = "auto", *, local_rank: int | None = None,
                   setting: str | None = None) -> torch.device:
    """``"auto"`` (or None, ``""``) -> ``cuda`` when available, else ``cpu``; other values are checked.

    Args:
        device: ``"auto"``, ``"cpu"``, ``"cuda"``, ``"cuda:N"`` or a ``torch.device``.
        local_rank: a distributed training process's local rank: a CUDA device becomes
            ``cuda:LOCAL_RANK`` (one GPU per process, the mapping set by ``CUDA_VISIBLE_DEVICES``).
        setting: the configuration key the value came from (``"train.device"``); messages name it.

    Raises:
        ConfigError: an unparsable device string, or CUDA asked for but not available.
    """
    if setting is not None:
        return _resolve_setting(str(device), local_rank, setting)
    if isinstance(device, torch.device):
        dev = device
    elif device in (None, "", "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    else:
        try:
            dev = torch.device(str(device))
        except (RuntimeError, ValueError):
            raise ConfigError(f"device {device!r}: not a torch device (use auto, cpu, cuda or cuda:N)") from None
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise ConfigError(f"device {str(device)!r}: CUDA is not available on this machine")
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise ConfigError(f"device {str(device)!r}: only {torch.cuda.device_count()} CUDA device(s)")
    return dev


def _env_int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise ConfigError(f"environment variable {name}: expected an integer, got {raw!r}") from None


def env_ranks() -> tuple[int, int, int]:
    """``(RANK, WORLD_SIZE, LOCAL_RANK)`` from the environment set by torchrun; ``(0, 1, 0)`` without it."""
    rank, world, local = _env_int("RANK", 0), _env_int("WORLD_SIZE", 1), _env_int("LOCAL_RANK", 0)
    if world < 1 or not 0 <= rank < world or local < 0:
        raise ConfigError(f"environment: RANK={rank}, WORLD_SIZE={world}, LOCAL_RANK={local} are inconsistent")
    return rank, world, local


def _resolve_setting(name: str, local_rank: int | None, setting: str) -> torch.device:
    """:func:`resolve_device` for a value read from a config file (messages name ``setting``)."""
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(f"{setting}: '{name}' requested but CUDA is not available")
    try:
        dev = torch.device(name)
    except RuntimeError as e:
        raise ConfigError(f"{setting}: '{name}' is not a device ({str(e).splitlines()[0]})") from None
    if local_rank is not None and dev.type == "cuda":
        if local_rank >= torch.cuda.device_count():
            raise ConfigError(f"LOCAL_RANK {local_rank}: only {torch.cuda.device_count()} CUDA device(s) visible "
                              f"(use at most that many processes per node)")
        dev = torch.device("cuda", local_rank)
    return dev


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


def inference_autocast(device: torch.device):
    """The precision of inference, for every inference object and evaluation: bf16 autocast on CUDA,
    float32 on the CPU (whatever the CPU: the shipped models' CPU outputs are pinned in float32)."""
    return autocast("cuda" if device.type == "cuda" else None)


def autocast(device_type: str | None):
    """``torch.autocast(device_type, bfloat16)``, or a no-op context for ``None``."""
    return torch.autocast(device_type, dtype=torch.bfloat16) if device_type else nullcontext()
