"""Luminance-band aware colour transfer: statistics and ab histogram matching per lightness band.

A global transfer (:mod:`.reinhard`) gives every pixel the same shift. In photos colour depends on
lightness (dark foliage and bright sky, shadowed skin and highlights), so here the statistics are
taken per **lightness band**: ``K`` soft bands with centres ``c_k`` over ``L`` and Gaussian
memberships ``w_k(L) = exp(-(L - c_k)^2 / (2 width^2))``, normalised to sum to one per pixel. Each
band gets its own

* ``mean`` / ``std`` of ``a`` and ``b`` (method ``"bands"``: Reinhard's Eq. 11 per band), or
* quantiles of ``a`` and ``b`` (method ``"histogram"``: per-band, per-channel histogram matching;
  the quantile map's slope is limited to ``max_gain``),

and a pixel's corrected ``ab`` is the membership-weighted mix of the band transforms, so there are
no seams between bands. Bands that the reference barely covers are shrunk toward the reference's
global statistics (prior weight ``prior`` pixels' worth), so a reference without dark pixels still
gives dark pixels a sensible colour.

:class:`BandStats` (the per-band statistics and a coarse 2-D ab histogram) is also what an era
palette stores (:mod:`.palette`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = [
    "DEFAULT_CENTERS",
    "DEFAULT_WIDTH",
    "BandStats",
    "band_transfer",
    "band_weights",
]

#: Band centres over ``L`` and the Gaussian membership width.
DEFAULT_CENTERS = (10.0, 30.0, 50.0, 70.0, 90.0)
DEFAULT_WIDTH = 12.0
#: Probabilities of the stored quantiles (1 % .. 99 %).
QUANTILE_PROBS = np.linspace(0.01, 0.99, 49)
#: 2-D ab histogram: ``HIST_BINS x HIST_BINS`` cells over ``[-HIST_RANGE, HIST_RANGE]^2``.
HIST_BINS, HIST_RANGE = 22, 110.0


def band_weights(L: np.ndarray, centers: np.ndarray, width: float) -> np.ndarray:
    """Soft band memberships ``(N, K)`` of lightness values ``(N,)``; rows sum to one."""
    L = np.asarray(L, np.float32).reshape(-1, 1)
    c = np.asarray(centers, np.float32).reshape(1, -1)
    w = np.exp(-0.5 * ((L - c) / np.float32(width)) ** 2)
    w /= np.maximum(w.sum(axis=1, keepdims=True), np.float32(1e-12))
    return w


def _weighted_quantiles(v: np.ndarray, w: np.ndarray, probs: np.ndarray) -> np.ndarray:
    """Quantiles ``(len(probs),)`` of *sorted* values ``v (N,)`` with non-negative weights ``w (N,)``."""
    cum = np.cumsum(w, dtype=np.float64)
    total = cum[-1]
    if total <= 0:
        return np.full(len(probs), float(np.median(v)))
    # midpoint rule: the i-th sorted sample sits at (cum_i - w_i / 2) / total
    pos = (cum - 0.5 * w) / total
    return np.interp(probs, pos, v)


@dataclass
class BandStats:
    """Colour statistics of a set of pixels per lightness band.

    Attributes (``K`` bands, ``Q`` quantiles):
        centers: ``(K,)`` band centres over ``L``; width: membership width.
        mass: ``(K,)`` fraction of the pixels in each band (soft counts / N).
        mean: ``(K, 2)`` mean ``a, b``; std: ``(K, 2)``; cov: ``(K, 2, 2)``.
        quantiles: ``(K, Q, 2)`` quantiles of ``a`` and ``b`` at :data:`QUANTILE_PROBS`.
        hist: ``(K, HIST_BINS, HIST_BINS)`` normalised 2-D ab histogram per band (for display).
        global_mean, global_std: ``(2,)`` over all pixels.
        count: number of pixels the statistics come from.
    """

    centers: np.ndarray
    width: float
    mass: np.ndarray
    mean: np.ndarray
    std: np.ndarray
    cov: np.ndarray
    quantiles: np.ndarray
    hist: np.ndarray
    global_mean: np.ndarray
    global_std: np.ndarray
    count: int

    @property
    def bands(self) -> int:
        return int(len(self.centers))

    @classmethod
    def from_lab(
        cls,
        L: np.ndarray,
        ab: np.ndarray,
        centers=DEFAULT_CENTERS,
        width: float = DEFAULT_WIDTH,
        prior: float = 0.02,
        max_samples: int = 200_000,
    ) -> "BandStats":
        """Statistics of Lab pixels (``L (...)``, ``ab (..., 2)``), at most ``max_samples`` used.

        ``prior``: each band's mean/std/quantiles are mixed with the global ones with weight
        ``prior * N`` pixels (a band with few pixels takes the global colour).
        """
        L = np.asarray(L, np.float32).reshape(-1)
        ab = np.asarray(ab, np.float32).reshape(-1, 2)
        if L.shape[0] != ab.shape[0] or L.shape[0] == 0:
            raise ValueError(f"BandStats.from_lab: {L.shape[0]} L values for {ab.shape[0]} ab pairs")
        step = max(1, int(np.ceil(L.shape[0] / max_samples)))
        L, ab = L[::step], ab[::step]
        n = L.shape[0]
        centers = np.asarray(centers, np.float64)
        w = band_weights(L, centers, width).astype(np.float64)  # (N, K)
        soft = w.sum(axis=0)  # (K,)
        g_mean = ab.mean(axis=0, dtype=np.float64)
        g_cov = np.cov(ab.T.astype(np.float64), bias=True).reshape(2, 2)
        g_q = np.stack([np.quantile(ab[:, c], QUANTILE_PROBS) for c in range(2)], axis=1)
        m0 = prior * n
        means, covs, quants, hists = [], [], [], []
        # sort each channel once; the per-band quantiles reuse the order
        orders = [np.argsort(ab[:, c], kind="stable") for c in range(2)]
        sorted_ab = [ab[orders[c], c].astype(np.float64) for c in range(2)]
        # 2-D histogram cell of every pixel, once
        cell = np.clip(((ab + HIST_RANGE) * (HIST_BINS / (2 * HIST_RANGE))).astype(np.int64), 0, HIST_BINS - 1)
        cell = cell[:, 0] * HIST_BINS + cell[:, 1]
        for k in range(len(centers)):
            wk = w[:, k]
            tot = soft[k] + m0
            mk = ((wk[:, None] * ab).sum(axis=0) + m0 * g_mean) / tot
            d = ab - mk
            ck = ((d * wk[:, None]).T @ d + m0 * (g_cov + np.outer(g_mean - mk, g_mean - mk))) / tot
            qk = np.stack([_weighted_quantiles(sorted_ab[c], wk[orders[c]], QUANTILE_PROBS) for c in range(2)], 1)
            alpha = soft[k] / tot
            quants.append(alpha * qk + (1 - alpha) * g_q)
            means.append(mk)
            covs.append(ck)
            hk = np.bincount(cell, weights=wk, minlength=HIST_BINS * HIST_BINS).reshape(HIST_BINS, HIST_BINS)
            hists.append(hk / max(hk.sum(), 1e-12))
        cov = np.stack(covs)
        return cls(
            centers=centers,
            width=float(width),
            mass=soft / n,
            mean=np.stack(means),
            std=np.sqrt(np.maximum(np.stack([cov[:, 0, 0], cov[:, 1, 1]], axis=1), 0.0)),
            cov=cov,
            quantiles=np.stack(quants),
            hist=np.stack(hists),
            global_mean=g_mean,
            global_std=np.sqrt(np.maximum(np.diag(g_cov), 0.0)),
            count=int(n),
        )

    @classmethod
    def from_samples(cls, lab: np.ndarray, **kwargs: Any) -> "BandStats":
        """Statistics of Lab samples ``(N, 3)`` (e.g. :func:`~.references.pooled_samples`)."""
        lab = np.asarray(lab, np.float32).reshape(-1, 3)
        return cls.from_lab(lab[:, 0], lab[:, 1:], **kwargs)

    # ---------------------------------------------------------------- JSON
    def to_dict(self) -> dict[str, Any]:
        """Plain lists and floats (JSON-serialisable, rounded to 0.001)."""

        def r(x: np.ndarray) -> Any:
            return np.round(np.asarray(x, np.float64), 3).tolist()

        return {
            "centers": r(self.centers),
            "width": round(self.width, 3),
            "mass": np.round(self.mass, 6).tolist(),
            "mean": r(self.mean),
            "std": r(self.std),
            "cov": r(self.cov),
            "quantile_probs": np.round(QUANTILE_PROBS, 6).tolist(),
            "quantiles": r(self.quantiles),
            "hist_bins": HIST_BINS,
            "hist_range": HIST_RANGE,
            "hist": np.round(self.hist, 6).tolist(),
            "global_mean": r(self.global_mean),
            "global_std": r(self.global_std),
            "count": int(self.count),
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "BandStats":
        """Inverse of :meth:`to_dict`; raises ``ValueError``/``KeyError`` on malformed data."""
        centers = np.asarray(d["centers"], np.float64)
        k = len(centers)
        if centers.ndim != 1 or k < 1:
            raise ValueError("centers must be a non-empty list")
        probs = np.asarray(d.get("quantile_probs", QUANTILE_PROBS.tolist()), np.float64)
        if probs.shape != QUANTILE_PROBS.shape or not np.allclose(probs, QUANTILE_PROBS, atol=1e-5):
            raise ValueError("quantile_probs differ from this version's")
        shapes = {"mass": (k,), "mean": (k, 2), "std": (k, 2), "cov": (k, 2, 2), "quantiles": (k, len(probs), 2)}
        arrays = {}
        for key, shape in shapes.items():
            a = np.asarray(d[key], np.float64)
            if a.shape != shape or not np.all(np.isfinite(a)):
                raise ValueError(f"{key} must be finite with shape {shape}, got {a.shape}")
            arrays[key] = a
        hist = np.asarray(d.get("hist", np.zeros((k, HIST_BINS, HIST_BINS))), np.float64)
        width = float(d["width"])
        if not width > 0:
            raise ValueError(f"width must be > 0, got {width}")
        return cls(
            centers=centers,
            width=width,
            hist=hist,
            global_mean=np.asarray(d["global_mean"], np.float64).reshape(2),
            global_std=np.asarray(d["global_std"], np.float64).reshape(2),
            count=int(d.get("count", 0)),
            **arrays,
        )


def _monotone_map(x: np.ndarray, y: np.ndarray, max_gain: float) -> np.ndarray:
    """Source quantiles ``x (Q,)`` spread out so the map ``x -> y`` has slope <= ``max_gain``.

    Walking outward from the median, each step ``x_j - x_{j-1}`` is made at least
    ``(y_j - y_{j-1}) / max_gain`` (and at least 1e-4: strictly increasing for ``np.interp``).
    """
    x = np.asarray(x, np.float64).copy()
    dy = np.diff(y)
    m = len(x) // 2
    for j in range(m + 1, len(x)):
        x[j] = max(x[j], x[j - 1] + max(dy[j - 1] / max_gain, 1e-4))
    for j in range(m - 1, -1, -1):
        x[j] = min(x[j], x[j + 1] - max(dy[j] / max_gain, 1e-4))
    return x


def band_transfer(
    L: np.ndarray,
    ab: np.ndarray,
    target: BandStats,
    *,
    method: str = "bands",
    source: BandStats | None = None,
    max_gain: float = 3.0,
    min_std: float = 2.0,
) -> np.ndarray:
    """Move ``ab`` toward ``target`` band by band (see the module docstring).

    Args:
        L: float ``(H, W)`` raw lightness; ab: float ``(H, W, 2)`` raw ab (e.g. a network's).
        target: reference statistics (:meth:`BandStats.from_samples` or an era palette's).
        method: ``"bands"`` (per-band mean/std, Reinhard Eq. 11) or ``"histogram"`` (per-band
            quantile matching of ``a`` and ``b``).
        source: the image's statistics with the same bands (default: computed from ``L``, ``ab``).
        max_gain: largest spread gain / quantile-map slope.
        min_std: floor of the source's per-band std (raw ab units).

    Returns:
        float32 ``(H, W, 2)``.
    """
    if method not in ("bands", "histogram"):
        raise ValueError(f"band_transfer: method must be 'bands' or 'histogram', got {method!r}")
    L = np.asarray(L, np.float32)
    ab = np.asarray(ab, np.float32)
    if ab.ndim != 3 or ab.shape[2] != 2 or L.shape != ab.shape[:2]:
        raise ValueError(f"band_transfer: expected L (H, W) and ab (H, W, 2), got {L.shape} and {ab.shape}")
    if source is None:
        source = BandStats.from_lab(L, ab, centers=target.centers, width=target.width)
    elif not np.allclose(source.centers, target.centers) or source.width != target.width:
        raise ValueError("band_transfer: source and target statistics use different bands")
    h, w = L.shape
    flat = ab.reshape(-1, 2)
    weights = band_weights(L.reshape(-1), target.centers, target.width)  # (N, K)
    out = np.zeros_like(flat)
    for k in range(target.bands):
        if method == "bands":
            gain = np.clip(target.std[k] / np.maximum(source.std[k], min_std), 1.0 / max_gain, max_gain)
            mapped = (flat - source.mean[k].astype(np.float32)) * gain.astype(np.float32) + target.mean[k].astype(
                np.float32
            )
        else:
            mapped = np.empty_like(flat)
            for c in range(2):
                ys = target.quantiles[k, :, c]
                xs = _monotone_map(source.quantiles[k, :, c], ys, max_gain)
                # beyond the outer quantiles, continue with slope 1 (no clamping of outliers)
                v = flat[:, c].astype(np.float64)
                inner = np.interp(v, xs, ys)
                inner += np.where(v < xs[0], v - xs[0], 0.0) + np.where(v > xs[-1], v - xs[-1], 0.0)
                mapped[:, c] = inner
        out += weights[:, k : k + 1] * mapped
    return out.reshape(h, w, 2)
