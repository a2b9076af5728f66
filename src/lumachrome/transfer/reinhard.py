"""Global colour statistics transfer (Reinhard, Ashikhmin, Gooch & Shirley 2001).

Reinhard et al. move an image's colours toward a reference by matching the mean and standard
deviation of each channel of a decorrelated colour space (their ``l alpha beta``; here CIE Lab, as
most re-implementations do), Eqs. 10-11 of the paper::

    x* = x - <x_s>                          (remove the source mean)
    x' = (sigma_t / sigma_s) x* + <x_t>     (scale to the target spread, add the target mean)

For colorization only ``a`` and ``b`` are transferred: the lightness is the photo's own. Two
guards keep it stable on network outputs, which are often nearly gray: ``sigma_s`` is floored at
``min_std`` and the gain ``sigma_t / sigma_s`` is limited to ``[1 / max_gain, max_gain]``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["LabStats", "lab_stats", "reinhard_ab"]


@dataclass(frozen=True)
class LabStats:
    """Per-channel mean and standard deviation of Lab pixels.

    Attributes:
        mean: float64 ``(3,)`` (L, a, b).
        std: float64 ``(3,)``.
        count: number of pixels (sum of weights when weighted).
    """

    mean: np.ndarray
    std: np.ndarray
    count: float

    @staticmethod
    def pool(parts: "list[LabStats]") -> "LabStats":
        """Statistics of the union of the pixel sets (exact: pooled first and second moments)."""
        n = np.array([p.count for p in parts], np.float64)
        if n.sum() <= 0:
            raise ValueError("LabStats.pool: no pixels")
        mean = sum(p.mean * c for p, c in zip(parts, n)) / n.sum()
        second = sum((p.std**2 + p.mean**2) * c for p, c in zip(parts, n)) / n.sum()
        return LabStats(mean, np.sqrt(np.maximum(second - mean**2, 0.0)), float(n.sum()))


def lab_stats(lab: np.ndarray, weights: np.ndarray | None = None) -> LabStats:
    """Mean and standard deviation of Lab pixels ``(..., 3)``, optionally weighted (``(...)``)."""
    x = np.asarray(lab, np.float64).reshape(-1, 3)
    if x.shape[0] == 0:
        raise ValueError("lab_stats: no pixels")
    if weights is None:
        return LabStats(x.mean(axis=0), x.std(axis=0), float(x.shape[0]))
    w = np.asarray(weights, np.float64).reshape(-1)
    total = float(w.sum())
    if total <= 0:
        raise ValueError("lab_stats: weights sum to zero")
    mean = (w[:, None] * x).sum(axis=0) / total
    var = (w[:, None] * (x - mean) ** 2).sum(axis=0) / total
    return LabStats(mean, np.sqrt(var), total)


def reinhard_ab(
    L: np.ndarray,
    ab: np.ndarray,
    target: LabStats,
    *,
    source: LabStats | None = None,
    max_gain: float = 3.0,
    min_std: float = 2.0,
) -> np.ndarray:
    """Transfer the mean and spread of ``a`` and ``b`` from ``target`` (Reinhard et al. Eqs. 10-11).

    Args:
        L: float ``(H, W)`` raw lightness (only used to build the source statistics).
        ab: float ``(H, W, 2)`` raw ``ab`` to correct.
        target: statistics of the reference pixels (:func:`lab_stats`).
        source: statistics of the image (default: computed from ``L`` and ``ab``).
        max_gain: bound on ``sigma_t / sigma_s`` (and its inverse).
        min_std: floor of ``sigma_s`` (raw ab units), so a gray prediction is not blown up.

    Returns:
        float32 ``(H, W, 2)``.
    """
    ab = np.asarray(ab, np.float32)
    if ab.ndim != 3 or ab.shape[2] != 2:
        raise ValueError(f"reinhard_ab: expected ab of shape (H, W, 2), got {ab.shape}")
    if source is None:
        source = lab_stats(np.concatenate([np.asarray(L, np.float32)[..., None], ab], axis=2))
    gain = np.clip(target.std[1:] / np.maximum(source.std[1:], min_std), 1.0 / max_gain, max_gain)
    out = (ab - source.mean[1:].astype(np.float32)) * gain.astype(np.float32) + target.mean[1:].astype(np.float32)
    return out.astype(np.float32)
