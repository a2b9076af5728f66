"""Quantised ab space for classification colorizers, after Zhang, Isola & Efros,
"Colorful Image Colorization" (ECCV 2016), Sec. 2.1-2.3.

* :class:`ABGamut`: the ``Q`` bin centres ``(Q, 2)`` (raw ab) of a ``grid``-unit lattice, keeping the
  cells that contain an sRGB colour for at least one ``L``.
* :func:`soft_encode`: ab -> soft target distribution ``Z`` over the bins (k nearest centres, Gaussian
  weights, Sec. 2.1).
* :func:`empirical_prior` / :func:`rebalance_weights`: smoothed empirical bin distribution and the
  class-rebalancing weights of Eq. 4; :func:`pixel_weights` picks ``w[argmax Z]`` per pixel (Eq. 3).
* :func:`weighted_soft_cross_entropy`: the multinomial loss of Eq. 2 with the weights of Eq. 3.
* :func:`annealed_mean`: logits -> ab by the annealed mean of Eq. 5.

All ab values are *raw* CIE Lab (about ``[-110, 110]``, see :mod:`lumachrome.color.lab`). Invalid
arguments raise ``ValueError`` with a one-line message naming the function.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Iterable
from dataclasses import dataclass

import torch

from lumachrome.color.lab import lab_to_rgb
from lumachrome.constants import ANNEALED_MEAN_TEMPERATURE

__all__ = [
    "ABGamut",
    "DEFAULT_LAMBDA",
    "DEFAULT_SIGMA",
    "DEFAULT_TEMPERATURE",
    "annealed_mean",
    "empirical_prior",
    "hard_encode",
    "pixel_weights",
    "rebalance_weights",
    "smooth_prior",
    "soft_encode",
    "weighted_soft_cross_entropy",
]

#: Annealed-mean temperature (Zhang et al. Sec. 2.3: T = 0.38).
DEFAULT_TEMPERATURE = ANNEALED_MEAN_TEMPERATURE
#: Gaussian kernel width in ab units, for soft encoding and prior smoothing (Sec. 2.1 / 2.2).
DEFAULT_SIGMA = 5.0
#: Mixing weight of the uniform distribution in the rebalancing weights (Eq. 4: lambda = 1/2).
DEFAULT_LAMBDA = 0.5

# Pixels per distance block: a (block, Q) float32 matrix is about 80 MB for Q ~ 300.
_BLOCK = 1 << 16


# --------------------------------------------------------------------------------------- gamut
def _in_gamut_any_l(ab: torch.Tensor, l_values: torch.Tensor) -> torch.Tensor:
    """``ab (P, 2)`` float64 -> bool ``(P,)``: in the sRGB gamut for at least one of ``l_values``."""
    out = torch.zeros(ab.shape[0], dtype=torch.bool)
    n_l = l_values.numel()
    step = max(1, (1 << 19) // n_l)  # about 0.5M Lab points (12 MB float64) per conversion
    for s in range(0, ab.shape[0], step):
        p = ab[s : s + step]
        lab = torch.empty(3, n_l, p.shape[0], dtype=torch.float64)
        lab[0] = l_values[:, None]
        lab[1:] = p.T[:, None, :]
        rgb = lab_to_rgb(lab, clip=False)  # (3, n_l, P) gamma-encoded sRGB, not clipped
        ok = ((rgb >= 0.0) & (rgb <= 1.0)).all(dim=0).any(dim=0)
        out[s : s + step] = ok
    return out


def _cell_offsets(samples: int, grid: float) -> torch.Tensor:
    """``(samples**2, 2)`` points spread over the open cell ``(-grid/2, grid/2)^2``."""
    if samples == 1:
        o = torch.zeros(1, dtype=torch.float64)
    else:
        o = torch.linspace(-0.495 * grid, 0.495 * grid, samples, dtype=torch.float64)
    oa, ob = torch.meshgrid(o, o, indexing="ij")
    return torch.stack((oa.reshape(-1), ob.reshape(-1)), dim=1)


@functools.lru_cache(maxsize=8)
def _build_centers(grid: float, ab_range: float, l_samples: int, cell_samples: int) -> tuple:
    m = math.floor(ab_range / grid + 1e-9)
    g = torch.arange(-m, m + 1, dtype=torch.float64) * grid  # multiples of grid in [-range, range]
    n = g.numel()
    ga, gb = torch.meshgrid(g, g, indexing="ij")
    cells = torch.stack((ga.reshape(-1), gb.reshape(-1)), dim=1)  # (n*n, 2)

    # Stage 1 (coarse): cell centres, 64 L values -> the cells clearly inside the gamut.
    l_coarse = torch.linspace(0.0, 100.0, 66, dtype=torch.float64)[1:-1]
    keep = _in_gamut_any_l(cells, l_coarse)

    # Stage 2 (dense): the cells next to a kept cell (8-neighbourhood), with cell_samples^2 points
    # over the open cell and l_samples L values in (0, 100): catches slivers at the gamut edge.
    k2 = keep.view(1, 1, n, n).to(torch.float32)
    ring = torch.nn.functional.max_pool2d(k2, kernel_size=3, stride=1, padding=1).view(-1) > 0
    cand = (ring & ~keep).nonzero().view(-1)
    if cand.numel():
        off = _cell_offsets(cell_samples, grid)
        l_dense = torch.linspace(0.0, 100.0, l_samples + 2, dtype=torch.float64)[1:-1]
        pts = (cells[cand][:, None, :] + off[None]).reshape(-1, 2)
        hit = _in_gamut_any_l(pts, l_dense).view(cand.numel(), -1).any(dim=1)
        keep[cand[hit]] = True
    return tuple(map(tuple, cells[keep].tolist()))


@dataclass(eq=False)
class ABGamut:
    """Bin centres of the quantised ab space.

    Attributes:
        centers: ``(Q, 2)`` float32 raw ab bin centres, ordered by a then b (ascending).
        grid: lattice step in ab units (``None`` when built from arbitrary centres).
    """

    centers: torch.Tensor
    grid: float | None = None

    @property
    def num_bins(self) -> int:
        """``Q``, the number of bins."""
        return int(self.centers.shape[0])

    def __len__(self) -> int:
        return self.num_bins

    @classmethod
    def build(
        cls,
        grid: int = 10,
        ab_range: float = 110,
        *,
        l_samples: int = 256,
        cell_samples: int = 7,
    ) -> "ABGamut":
        """Keep the ``grid``-unit cells (centres at multiples of ``grid`` in ``[-ab_range, ab_range]``)
        that contain an sRGB colour for at least one ``L`` in ``(0, 100)``.

        Membership is decided by sampling: ``cell_samples x cell_samples`` points over each (open)
        cell and ``l_samples`` L values in ``(0, 100)``, converted with
        :func:`lumachrome.color.lab.lab_to_rgb` (``clip=False``, float64) and checked to lie in
        ``[0, 1]``. A coarse pass (cell centres, 64 L values) finds the interior; the dense pass runs
        only on the cells next to it. Deterministic (float64 on the CPU, cached per argument set).

        The defaults give ``Q = 262``, the same cells as a brute force with 1000 L values and
        11 x 11 points per cell, spanning a in [-90, 100], b in [-110, 90]. Zhang et al. report
        ``Q = 313``: their published bins also cover cells outside the sRGB gamut. Border cells may
        have their centre slightly out of gamut; every kept cell holds in-gamut colours.
        """
        if grid <= 0 or ab_range <= 0:
            raise ValueError(f"ABGamut.build: grid and ab_range must be > 0, got {grid}, {ab_range}")
        if l_samples < 1 or cell_samples < 1:
            raise ValueError("ABGamut.build: l_samples and cell_samples must be >= 1")
        centers = _build_centers(float(grid), float(ab_range), int(l_samples), int(cell_samples))
        return cls(torch.tensor(centers, dtype=torch.float32), float(grid))

    @classmethod
    def from_centers(cls, centers, grid: float | None = None) -> "ABGamut":
        """Wrap existing centres (e.g. a model's ``ab_centers`` buffer): ``(Q, 2)`` raw ab."""
        t = torch.as_tensor(centers).detach()
        _check_centers(t, "ABGamut.from_centers")
        return cls(t.to(torch.float32).contiguous(), None if grid is None else float(grid))


# ------------------------------------------------------------------------------------ encoding
def _check_ab(ab: torch.Tensor, name: str) -> None:
    if not isinstance(ab, torch.Tensor):
        raise TypeError(f"{name}: expected a torch.Tensor for ab, got {type(ab).__name__}")
    if ab.dim() != 4 or ab.shape[1] != 2:
        raise ValueError(f"{name}: expected ab of shape (B, 2, H, W), got {tuple(ab.shape)}")
    if not ab.is_floating_point():
        raise ValueError(f"{name}: expected a floating point ab tensor, got {ab.dtype}")


def _check_centers(centers: torch.Tensor, name: str) -> None:
    if not isinstance(centers, torch.Tensor):
        raise TypeError(f"{name}: expected a torch.Tensor for centers, got {type(centers).__name__}")
    if centers.dim() != 2 or centers.shape[1] != 2 or centers.shape[0] < 1:
        raise ValueError(f"{name}: expected centers of shape (Q, 2), got {tuple(centers.shape)}")


def _pixels(ab: torch.Tensor) -> torch.Tensor:
    """``(B, 2, H, W)`` -> ``(B*H*W, 2)`` (pixel order b, h, w)."""
    return ab.permute(0, 2, 3, 1).reshape(-1, 2)


def _nearest_brute(x: torch.Tensor, centers: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``x (n, 2)`` against all centres: (squared distances, indices) of the k nearest, ``(n, k)``."""
    # exact |x - c|, not the |x|^2 + |c|^2 - 2 x.c expansion: a centre hit exactly gives 0.
    d = torch.cdist(x, centers, compute_mode="donot_use_mm_for_euclid_dist")
    dk, ik = d.topk(k, dim=1, largest=False)  # sorted, nearest first
    return dk.square(), ik


# Candidate tables: the ab plane is cut into square tiles of _TILE units; each tile lists every
# centre that can be among the k nearest of *some* point in the tile (all centres within
# d_k(tile centre) + tile diagonal, by the triangle inequality), so that each pixel is compared
# with ~10-20 centres instead of all Q. The result is the same as the brute force.
_TILE = 2.5


@functools.lru_cache(maxsize=8)
def _candidate_table(key: bytes, q: int, k: int, device: str):
    c = torch.frombuffer(bytearray(key), dtype=torch.float64).view(q, 2)
    lo = c.min(dim=0).values - 2 * _TILE
    n = int(torch.ceil((c.max(dim=0).values + 2 * _TILE - lo).max() / _TILE).item())
    t = torch.arange(n, dtype=torch.float64) * _TILE + _TILE / 2
    ta, tb = torch.meshgrid(lo[0] + t, lo[1] + t, indexing="ij")
    d = torch.cdist(torch.stack((ta.reshape(-1), tb.reshape(-1)), 1), c)  # (n*n, q)
    dk = d.kthvalue(k, dim=1, keepdim=True).values
    ok = d <= dk + _TILE * math.sqrt(2.0) + 1e-6
    m = int(ok.sum(dim=1).max().item())
    # pad each row with index q: a sentinel centre far away (never among the k nearest)
    order = torch.argsort((~ok).to(torch.int8), dim=1, stable=True)[:, :m]
    table = torch.where(ok.gather(1, order), order, torch.full_like(order, q))
    ext = torch.cat((c, torch.full((1, 2), 1e6, dtype=torch.float64)))
    return lo.to(device), n, table.to(device), ext.to(device)


def _nearest(x: torch.Tensor, centers: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``x (N, 2)`` -> (squared distances, indices) of the ``k`` nearest centres, each ``(N, k)``,
    nearest first. Exact; uses the candidate table for pixels inside it, the brute force else."""
    n_pix, q = x.shape[0], centers.shape[0]
    d2 = x.new_empty(n_pix, k)
    idx = torch.empty(n_pix, k, dtype=torch.long, device=x.device)
    if q <= 32:  # small codebooks: the brute force is as cheap
        for s in range(0, n_pix, _BLOCK):
            d2[s : s + _BLOCK], idx[s : s + _BLOCK] = _nearest_brute(x[s : s + _BLOCK], centers, k)
        return d2, idx
    key = centers.detach().to("cpu", torch.float64).contiguous().numpy().tobytes()
    lo, n, table, ext = _candidate_table(key, q, k, str(x.device))
    lo, ext = lo.to(x.dtype), ext.to(x.dtype)
    for s in range(0, n_pix, _BLOCK):
        xb = x[s : s + _BLOCK]
        tile = torch.floor((xb - lo) / _TILE)
        inside = ((tile >= 0) & (tile < n)).all(dim=1)  # False for NaN too
        tile = tile.clamp(0, n - 1).long()
        cand = table[tile[:, 0] * n + tile[:, 1]]  # (b, m)
        dc = (xb[:, None, :] - ext[cand]).square().sum(dim=2)  # (b, m)
        dk, pos = dc.topk(k, dim=1, largest=False)
        ik = cand.gather(1, pos)
        if not bool(inside.all()):
            out = (~inside).nonzero().view(-1)
            dk[out], ik[out] = _nearest_brute(xb[out], centers, k)
        d2[s : s + _BLOCK], idx[s : s + _BLOCK] = dk, ik
    return d2, idx


def hard_encode(ab: torch.Tensor, centers: torch.Tensor) -> torch.Tensor:
    """Index of the nearest bin centre per pixel.

    Args:
        ab: ``(B, 2, H, W)`` raw ab.
        centers: ``(Q, 2)`` raw ab bin centres.

    Returns:
        ``(B, H, W)`` int64 in ``[0, Q)``.
    """
    _check_ab(ab, "hard_encode")
    _check_centers(centers, "hard_encode")
    b, _, h, w = ab.shape
    with torch.no_grad():
        _, idx = _nearest(_pixels(ab), centers.to(ab), 1)
    return idx.view(b, h, w)


def soft_encode(
    ab: torch.Tensor, centers: torch.Tensor, sigma: float = DEFAULT_SIGMA, k: int = 5
) -> torch.Tensor:
    """Soft-encode ab into a distribution over the bins (Zhang et al. Sec. 2.1).

    Each pixel puts weight on its ``k`` nearest centres, proportional to a Gaussian kernel
    ``exp(-|ab - c|^2 / (2 sigma^2))``, normalised to sum to 1 (computed relative to the nearest
    centre, so pixels far from every centre still get a valid distribution). Targets only: no
    gradient. Exact nearest centres from a per-centre-set candidate table (cached): about 10x
    faster than comparing every pixel with all Q centres.

    Args:
        ab: ``(B, 2, H, W)`` raw ab (float).
        centers: ``(Q, 2)`` raw ab bin centres.
        sigma: kernel width in ab units (> 0).
        k: number of nearest centres (``1 <= k <= Q``).

    Returns:
        ``(B, Q, H, W)`` probabilities in ab's dtype/device, summing to 1 over ``Q``.
    """
    _check_ab(ab, "soft_encode")
    _check_centers(centers, "soft_encode")
    q = centers.shape[0]
    if not 1 <= k <= q:
        raise ValueError(f"soft_encode: k must be in [1, {q}], got {k}")
    if not sigma > 0:
        raise ValueError(f"soft_encode: sigma must be > 0, got {sigma}")
    b, _, h, w = ab.shape
    with torch.no_grad():
        d2, idx = _nearest(_pixels(ab), centers.to(ab), k)
        # Gaussian kernel relative to the nearest centre (d2 is sorted): never 0/0 far from the gamut
        wts = torch.exp((d2 - d2[:, :1]) * (-0.5 / sigma**2))  # (N, k)
        wts /= wts.sum(dim=1, keepdim=True)
        out = ab.new_zeros(b, q, h * w)
        # (N, k) with N = (b, hw) -> (B, k, HW) to scatter along the bin axis
        out.scatter_(1, idx.view(b, h * w, k).transpose(1, 2), wts.view(b, h * w, k).transpose(1, 2))
    return out.view(b, q, h, w)


# ------------------------------------------------------------------------- prior and weights
def smooth_prior(prior: torch.Tensor, centers: torch.Tensor, sigma: float = DEFAULT_SIGMA) -> torch.Tensor:
    """Smooth a bin distribution with a Gaussian kernel in ab space (Zhang et al. Sec. 2.2).

    Each bin's mass is spread over all bins with weights ``exp(-|c_i - c_j|^2 / (2 sigma^2))``
    normalised per source bin (so no mass leaves the gamut); ``sigma = 0`` returns the input
    normalised.

    Args:
        prior: ``(Q,)`` non-negative masses.
        centers: ``(Q, 2)`` raw ab bin centres.
        sigma: kernel width in ab units (>= 0).

    Returns:
        ``(Q,)`` float32 distribution summing to 1.
    """
    _check_centers(centers, "smooth_prior")
    p = _as_distribution(prior, "smooth_prior")
    if p.numel() != centers.shape[0]:
        raise ValueError(f"smooth_prior: prior has {p.numel()} bins, centers has {centers.shape[0]}")
    if not sigma >= 0:
        raise ValueError(f"smooth_prior: sigma must be >= 0, got {sigma}")
    if sigma > 0:
        c = centers.detach().to(device=p.device, dtype=torch.float64)
        kern = torch.exp(torch.cdist(c, c).square() * (-0.5 / sigma**2))  # (Q, Q), symmetric
        kern = kern / kern.sum(dim=0, keepdim=True)  # column j: where bin j's mass goes
        p = kern @ p
        p = p / p.sum()
    return p.to(torch.float32)


def _as_distribution(prior: torch.Tensor, name: str) -> torch.Tensor:
    if not isinstance(prior, torch.Tensor) or prior.dim() != 1 or prior.numel() < 1:
        shape = tuple(prior.shape) if isinstance(prior, torch.Tensor) else type(prior).__name__
        raise ValueError(f"{name}: expected a 1-D prior tensor (Q,), got {shape}")
    p = prior.detach().to(torch.float64)
    if not torch.isfinite(p).all() or (p < 0).any() or not p.sum() > 0:
        raise ValueError(f"{name}: prior must be finite, non-negative and not all zero")
    return p / p.sum()


def empirical_prior(
    ab_batches: Iterable[torch.Tensor],
    centers: torch.Tensor,
    sigma: float = DEFAULT_SIGMA,
    *,
    soft: bool = False,
) -> torch.Tensor:
    """Empirical distribution of ab over the bins, smoothed in ab space (Zhang et al. Sec. 2.2).

    Args:
        ab_batches: iterable of ``(B, 2, H, W)`` raw ab tensors (e.g. from a data loader); read once.
        centers: ``(Q, 2)`` raw ab bin centres.
        sigma: width of the Gaussian smoothing across bins, ab units (0: no smoothing).
        soft: count soft encodings (:func:`soft_encode`, k=5, sigma 5) instead of nearest bins.

    Returns:
        ``(Q,)`` float32 distribution ``p~`` summing to 1.
    """
    _check_centers(centers, "empirical_prior")
    q = centers.shape[0]
    counts = torch.zeros(q, dtype=torch.float64)
    seen = 0
    for ab in ab_batches:
        _check_ab(ab, "empirical_prior")
        if soft:
            c = soft_encode(ab, centers).sum(dim=(0, 2, 3))
        else:
            c = torch.bincount(hard_encode(ab, centers).reshape(-1), minlength=q)
        counts += c.detach().to(device="cpu", dtype=torch.float64)
        seen += ab.shape[0] * ab.shape[2] * ab.shape[3]
    if seen == 0:
        raise ValueError("empirical_prior: ab_batches yielded no pixels")
    return smooth_prior(counts, centers.cpu(), sigma)


def rebalance_weights(prior: torch.Tensor, lam: float = DEFAULT_LAMBDA) -> torch.Tensor:
    """Class-rebalancing weights (Zhang et al. Eq. 4).

    ``w ∝ ((1 - lam) * p + lam / Q)^-1``, scaled so that ``E_p[w] = sum_q p_q w_q = 1``.

    Args:
        prior: ``(Q,)`` smoothed empirical distribution (normalised here if it does not sum to 1).
        lam: weight of the uniform distribution in ``[0, 1]``; ``1`` gives uniform weights,
            ``0`` requires every ``p_q > 0``.

    Returns:
        ``(Q,)`` float32 positive weights; rarer bins get larger weights.
    """
    p = _as_distribution(prior, "rebalance_weights")
    if not 0.0 <= lam <= 1.0:
        raise ValueError(f"rebalance_weights: lam must be in [0, 1], got {lam}")
    q = p.numel()
    mix = (1.0 - lam) * p + lam / q
    if not (mix > 0).all():
        raise ValueError("rebalance_weights: lam = 0 needs a prior without empty bins")
    w = 1.0 / mix
    w = w / (p * w).sum()  # Eq. 4: E_p[w] = 1
    return w.to(device=prior.device, dtype=torch.float32)


def pixel_weights(target_probs: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """Per-pixel rebalancing weight ``v(Z_hw) = w[argmax_q Z_hwq]`` (Zhang et al. Eq. 3).

    Args:
        target_probs: ``(B, Q, H, W)`` soft targets.
        weights: ``(Q,)`` from :func:`rebalance_weights`.

    Returns:
        ``(B, H, W)`` weights in ``weights``' dtype, on target_probs' device.
    """
    if target_probs.dim() != 4:
        raise ValueError(f"pixel_weights: expected target_probs (B, Q, H, W), got {tuple(target_probs.shape)}")
    if weights.dim() != 1 or weights.numel() != target_probs.shape[1]:
        raise ValueError(
            f"pixel_weights: weights must be ({target_probs.shape[1]},), got {tuple(weights.shape)}"
        )
    return weights.to(target_probs.device)[target_probs.argmax(dim=1)]


# ------------------------------------------------------------------------------ loss, decoding
def weighted_soft_cross_entropy(
    logits: torch.Tensor, target_probs: torch.Tensor, pixel_weights: torch.Tensor | None = None
) -> torch.Tensor:
    """Rebalanced multinomial cross-entropy (Zhang et al. Eq. 2 with the weights of Eq. 3).

    ``loss = mean_{b,h,w} v_bhw * ( - sum_q Z_bqhw log softmax(logits)_bqhw )``. Zhang et al. sum
    over pixels; the mean keeps the scale independent of batch and image size.

    Args:
        logits: ``(B, Q, H, W)`` unnormalised scores.
        target_probs: ``(B, Q, H, W)`` soft targets (e.g. :func:`soft_encode`), summing to 1 over Q.
        pixel_weights: ``(B, H, W)`` per-pixel weights (:func:`pixel_weights`) or ``None`` (all 1).

    Returns:
        Scalar tensor, differentiable with respect to ``logits``.
    """
    if logits.dim() != 4 or logits.shape != target_probs.shape:
        raise ValueError(
            "weighted_soft_cross_entropy: logits and target_probs must both be (B, Q, H, W), got "
            f"{tuple(logits.shape)} and {tuple(target_probs.shape)}"
        )
    ce = -(target_probs * torch.log_softmax(logits, dim=1)).sum(dim=1)  # (B, H, W)
    if pixel_weights is not None:
        b, _, h, w = logits.shape
        if tuple(pixel_weights.shape) != (b, h, w):
            raise ValueError(
                f"weighted_soft_cross_entropy: pixel_weights must be {(b, h, w)}, got {tuple(pixel_weights.shape)}"
            )
        ce = ce * pixel_weights
    return ce.mean()


def annealed_mean(
    logits: torch.Tensor, centers: torch.Tensor, temperature: float = DEFAULT_TEMPERATURE
) -> torch.Tensor:
    """Decode bin logits to ab with the annealed mean (Zhang et al. Eq. 5).

    ``f_T(z) = exp(log z / T) / sum_q exp(log z_q / T)`` with ``z = softmax(logits)``, then
    ``ab = sum_q f_T(z)_q c_q``. Since ``log z = logits - logsumexp(logits)`` and the constant
    cancels, ``f_T(z) = softmax(logits / T)``. ``T = 1`` is the mean of ``z``; ``T -> 0`` the mode.

    Args:
        logits: ``(B, Q, H, W)`` scores.
        centers: ``(Q, 2)`` raw ab bin centres.
        temperature: ``T > 0`` (default 0.38).

    Returns:
        ``(B, 2, H, W)`` raw ab, in logits' dtype/device (differentiable).
    """
    if not (isinstance(temperature, (int, float)) and math.isfinite(temperature) and temperature > 0):
        raise ValueError(f"annealed_mean: temperature must be a finite number > 0, got {temperature!r}")
    _check_centers(centers, "annealed_mean")
    if logits.dim() != 4 or logits.shape[1] != centers.shape[0]:
        raise ValueError(
            f"annealed_mean: expected logits (B, {centers.shape[0]}, H, W), got {tuple(logits.shape)}"
        )
    p = torch.softmax(logits / temperature, dim=1)
    return torch.einsum("bqhw,qc->bchw", p, centers.to(p))
