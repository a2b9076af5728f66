"""Quantised ab bins, soft encoding, class rebalancing and annealed-mean decoding (Zhang et al. 2016)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from skimage import color

from lumachrome.color import bins as bins_mod
from lumachrome.color.bins import (
    DEFAULT_LAMBDA,
    DEFAULT_SIGMA,
    DEFAULT_TEMPERATURE,
    ABGamut,
    annealed_mean,
    empirical_prior,
    hard_encode,
    pixel_weights,
    rebalance_weights,
    smooth_prior,
    soft_encode,
    weighted_soft_cross_entropy,
)
from lumachrome.color.lab import lab_to_rgb, rgb_to_lab


@pytest.fixture(scope="module")
def gamut() -> ABGamut:
    return ABGamut.build()


@pytest.fixture(scope="module")
def centers(gamut) -> torch.Tensor:
    return gamut.centers


def gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def in_gamut_ab(n_images: int = 4, size: int = 32, seed: int = 0) -> torch.Tensor:
    """Raw ab (B, 2, H, W) of random sRGB images (in gamut by construction)."""
    return rgb_to_lab(torch.rand(n_images, 3, size, size, generator=gen(seed)))[:, 1:]


def reference_soft_encode(ab, centers, sigma, k):
    """Brute force: all distances, k nearest, Gaussian weights."""
    x = ab.permute(0, 2, 3, 1).reshape(-1, 2).double()
    d2 = ((x[:, None, :] - centers.double()[None]) ** 2).sum(-1)
    dk, ik = d2.topk(k, dim=1, largest=False)
    w = torch.exp(-(dk - dk[:, :1]) / (2 * sigma**2))
    w = w / w.sum(1, keepdim=True)
    z = torch.zeros(x.shape[0], centers.shape[0], dtype=torch.float64).scatter_(1, ik, w)
    b, _, h, wd = ab.shape
    return z.view(b, h, wd, -1).permute(0, 3, 1, 2)


# ------------------------------------------------------------------------------------- gamut
def test_constants():
    assert DEFAULT_TEMPERATURE == 0.38 and DEFAULT_SIGMA == 5.0 and DEFAULT_LAMBDA == 0.5


def test_gamut_size_and_lattice(gamut):
    c = gamut.centers
    assert c.dtype == torch.float32 and c.dim() == 2 and c.shape[1] == 2
    assert 240 <= gamut.num_bins <= 320 and len(gamut) == gamut.num_bins
    assert gamut.num_bins == 262  # deterministic (Zhang et al. report 313, beyond the sRGB gamut)
    assert gamut.grid == 10.0
    assert torch.equal(c, torch.round(c / 10) * 10)  # multiples of the grid
    assert c.abs().max() <= 110
    assert len({tuple(p) for p in c.tolist()}) == gamut.num_bins  # no duplicates
    # sorted by a then b
    key = c[:, 0] * 1000 + c[:, 1]
    assert torch.all(key[1:] > key[:-1])
    assert (c[:, 0].min(), c[:, 0].max(), c[:, 1].min(), c[:, 1].max()) == (-90, 100, -110, 90)


def test_gamut_deterministic_and_not_shared(gamut):
    again = ABGamut.build()
    assert torch.equal(again.centers, gamut.centers)
    again.centers.add_(1.0)  # the cache must not hand out the same tensor
    assert torch.equal(ABGamut.build().centers, gamut.centers)


def test_gamut_cells_match_srgb_colours(gamut):
    """Every sRGB colour falls in a kept cell, and (up to a sliver) every kept cell holds one.

    Independent check with scikit-image: the ab projection of the gamut is the projection of the
    RGB cube's surface; quantise the ab of a dense sampling of the six faces to the 10-unit lattice.
    """
    v = np.linspace(0, 1, 129)
    ga, gb = np.meshgrid(v, v, indexing="ij")
    faces = []
    for ch in range(3):
        others = [k for k in range(3) if k != ch]
        for val in (0.0, 1.0):
            f = np.empty(ga.shape + (3,))
            f[..., ch], f[..., others[0]], f[..., others[1]] = val, ga, gb
            faces.append(f.reshape(-1, 3))
    ab = color.rgb2lab(np.concatenate(faces)[None])[0, :, 1:]
    seen = {tuple(p) for p in (np.round(ab / 10) * 10).tolist()}
    kept = {tuple(p) for p in gamut.centers.double().tolist()}
    assert seen <= kept  # complete: no sRGB colour is left without its own bin
    assert len(kept - seen) <= 2  # tight: only slivers thinner than the sampling may remain


def test_gamut_centres_in_gamut(centers):
    """Interior centres are sRGB colours for some L; border cells only overlap the gamut."""
    L = torch.linspace(0.5, 99.5, 200, dtype=torch.float64)
    c = centers.double()
    lab = torch.cat([L.view(1, -1, 1).expand(1, -1, len(c)), c.T[:, None, :].expand(2, len(L), -1)], 0)
    rgb = lab_to_rgb(lab, clip=False)
    ok = ((rgb >= 0) & (rgb <= 1)).all(0).any(0)
    assert ok.float().mean() > 0.85
    # the others are within half a cell diagonal of a centre that is in gamut
    d = torch.cdist(c[~ok], c[ok])
    assert d.min(dim=1).values.max() <= 10 * math.sqrt(2) + 1e-6
    # a blatantly out-of-gamut centre is not kept
    assert not ((c[:, 0] == -90) & (c[:, 1] == 90)).any()


def test_gamut_other_grids_and_errors():
    coarse = ABGamut.build(grid=20)
    assert 50 <= coarse.num_bins <= 90 and torch.equal(coarse.centers % 20, torch.zeros_like(coarse.centers))
    with pytest.raises(ValueError, match="ABGamut.build"):
        ABGamut.build(grid=0)


def test_from_centers(centers):
    g = ABGamut.from_centers(centers.double())
    assert g.centers.dtype == torch.float32 and torch.equal(g.centers, centers)
    assert ABGamut.from_centers(centers.tolist()).num_bins == centers.shape[0]
    for bad in (torch.zeros(5), torch.zeros(5, 3), torch.zeros(0, 2)):
        with pytest.raises(ValueError, match="from_centers"):
            ABGamut.from_centers(bad)


# ---------------------------------------------------------------------------------- encoding
def test_soft_encode_distribution(centers):
    ab = in_gamut_ab()
    z = soft_encode(ab, centers)
    assert z.shape == (4, centers.shape[0], 32, 32) and z.dtype == torch.float32
    torch.testing.assert_close(z.sum(dim=1), torch.ones(4, 32, 32))
    assert (z >= 0).all()
    assert ((z > 0).sum(dim=1) == 5).all()  # exactly k bins per pixel


def test_soft_encode_top_bin_is_nearest(centers):
    ab = torch.cat([in_gamut_ab(2, 16, seed=1), torch.randn(2, 2, 16, 16, generator=gen(2)) * 60])
    z = soft_encode(ab, centers)
    x = ab.permute(0, 2, 3, 1).reshape(-1, 2)
    nearest = torch.cdist(x.double(), centers.double()).argmin(dim=1).view(4, 16, 16)
    assert torch.equal(z.argmax(dim=1), nearest)
    assert torch.equal(hard_encode(ab, centers), nearest)


def test_soft_encode_matches_brute_force(centers):
    # in gamut, far outside the candidate table, and a float64 batch
    ab = torch.cat([in_gamut_ab(2, 16, seed=3), torch.randn(2, 2, 16, 16, generator=gen(4)) * 150])
    for sigma, k in [(5.0, 5), (10.0, 8), (2.0, 1)]:
        ref = reference_soft_encode(ab, centers, sigma, k)
        torch.testing.assert_close(soft_encode(ab, centers, sigma=sigma, k=k).double(), ref, atol=2e-4, rtol=0)
    z64 = soft_encode(ab.double(), centers)
    assert z64.dtype == torch.float64
    torch.testing.assert_close(z64, reference_soft_encode(ab, centers, 5.0, 5), atol=1e-9, rtol=0)


def test_soft_encode_exact_centre(centers):
    ab = centers.T.reshape(1, 2, 1, -1)
    z = soft_encode(ab, centers)[0, :, 0, :]  # (Q, Q): column j encodes centre j
    q = torch.arange(centers.shape[0])
    assert torch.equal(z.argmax(dim=0), q)
    assert (z[q, q] > 0.5).all()  # most weight on the centre itself
    # an interior centre: 4 neighbours at distance 10 share the rest, exp(-100 / 50) each
    i = int(((centers[:, 0] == 0) & (centers[:, 1] == 0)).nonzero())
    expected = 1.0 / (1.0 + 4.0 * math.exp(-2.0))
    assert z[i, i].item() == pytest.approx(expected, abs=1e-6)


def test_soft_encode_small_codebook_and_far_pixels():
    c = torch.tensor([[0.0, 0.0], [10.0, 0.0], [0.0, 10.0]])
    ab = torch.tensor([[1e4, 0.0], [1.0, 1.0]]).T.reshape(1, 2, 1, 2)
    z = soft_encode(ab, c, k=3)
    torch.testing.assert_close(z.sum(1), torch.ones(1, 1, 2))
    assert torch.isfinite(z).all() and z[0, 1, 0, 0] > 0.999  # far away: all on the nearest


def test_soft_encode_speed_batch(centers):
    ab = torch.randn(16, 2, 64, 64, generator=gen(5)) * 40
    z = soft_encode(ab, centers)  # must be fast; timing is in the report, not asserted
    assert z.shape == (16, centers.shape[0], 64, 64)


def test_soft_encode_errors(centers):
    ab = in_gamut_ab(1, 4)
    with pytest.raises(ValueError, match="soft_encode"):
        soft_encode(ab, centers, k=0)
    with pytest.raises(ValueError, match="soft_encode"):
        soft_encode(ab, centers, k=centers.shape[0] + 1)
    with pytest.raises(ValueError, match="soft_encode"):
        soft_encode(ab, centers, sigma=0.0)
    with pytest.raises(ValueError, match="soft_encode"):
        soft_encode(ab[:, :1], centers)
    with pytest.raises(ValueError, match="soft_encode"):
        soft_encode(ab[0], centers)
    with pytest.raises(ValueError, match="soft_encode"):
        soft_encode(ab, centers[:, :1])


# ------------------------------------------------------------------------------ prior, weights
def synthetic_batches(centers, i1, i2, n1=700, n2=300):
    """Pixels exactly on centres i1 (n1 of them) and i2 (n2), as two batches."""
    a = centers[i1].view(1, 2, 1, 1).expand(1, 2, 1, n1)
    b = centers[i2].view(1, 2, 1, 1).expand(1, 2, 1, n2)
    return [a.clone(), b.clone()]


def test_empirical_prior_hard_counts(centers):
    i1, i2 = 100, 200
    p = empirical_prior(iter(synthetic_batches(centers, i1, i2)), centers, sigma=0.0)
    assert p.shape == (centers.shape[0],) and p.dtype == torch.float32
    assert p[i1].item() == pytest.approx(0.7) and p[i2].item() == pytest.approx(0.3)
    assert p.sum().item() == pytest.approx(1.0)


def test_empirical_prior_smoothed_reflects_distribution(centers):
    i1, i2 = 100, 200
    p = empirical_prior(synthetic_batches(centers, i1, i2), centers)  # default sigma 5
    assert p.sum().item() == pytest.approx(1.0, abs=1e-6)
    assert p.argmax().item() == i1 and p[i1] > p[i2] > 0.05
    d1 = (centers - centers[i1]).norm(dim=1)
    assert (p[(d1 > 0) & (d1 <= 10)] > 0).all()  # mass spread to neighbours
    assert p[i1] < 0.7 and p[i1] > 0.3
    # a Gaussian's mass falls with distance
    near = p[(d1 - 10).abs() < 1e-3].mean()
    far = p[(d1 - 20).abs() < 1e-3].mean()
    assert near > far


def test_empirical_prior_soft_and_errors(centers):
    ab = in_gamut_ab(2, 16)
    p = empirical_prior([ab], centers, soft=True)
    assert p.sum().item() == pytest.approx(1.0, abs=1e-6) and (p > 0).all()
    ph = empirical_prior([ab], centers)
    assert (p - ph).abs().sum() < 0.5  # similar distributions
    with pytest.raises(ValueError, match="empirical_prior"):
        empirical_prior([], centers)
    with pytest.raises(ValueError, match="empirical_prior"):
        empirical_prior([ab[:, :1]], centers)


def test_smooth_prior(centers):
    q = centers.shape[0]
    p = torch.zeros(q)
    p[7] = 3.0
    assert torch.equal(smooth_prior(p, centers, 0.0), p / 3)
    s = smooth_prior(p, centers, 5.0)
    assert s.sum().item() == pytest.approx(1.0, abs=1e-6) and s.argmax().item() == 7
    with pytest.raises(ValueError, match="smooth_prior"):
        smooth_prior(p[:-1], centers)
    with pytest.raises(ValueError, match="smooth_prior"):
        smooth_prior(-p, centers)


def test_rebalance_weights_eq4():
    p = torch.tensor([0.6, 0.25, 0.1, 0.05, 0.0])
    w = rebalance_weights(p, lam=0.5)
    assert w.shape == p.shape and w.dtype == torch.float32
    assert (p * w).sum().item() == pytest.approx(1.0, abs=1e-6)  # E_p[w] = 1
    assert torch.all(w[1:] > w[:-1])  # rarer bins get larger weights
    raw = 1.0 / (0.5 * p.double() + 0.5 / 5)
    torch.testing.assert_close(w.double(), raw / (p.double() * raw).sum(), atol=1e-6, rtol=0)


def test_rebalance_weights_lambda_limits():
    p = torch.tensor([0.5, 0.3, 0.2])
    torch.testing.assert_close(rebalance_weights(p, lam=1.0), torch.ones(3))
    w0 = rebalance_weights(p, lam=0.0)  # 1 / p, normalised: E_p[w] = 1 -> w = 1 / (Q p)
    torch.testing.assert_close(w0, 1.0 / (3 * p))
    torch.testing.assert_close(rebalance_weights(p * 10), rebalance_weights(p))  # normalises p
    with pytest.raises(ValueError, match="rebalance_weights"):
        rebalance_weights(torch.tensor([1.0, 0.0]), lam=0.0)
    for lam in (-0.1, 1.5):
        with pytest.raises(ValueError, match="rebalance_weights"):
            rebalance_weights(p, lam=lam)
    for bad in (torch.zeros(3), torch.tensor([1.0, -1.0, 1.0]), torch.ones(2, 2)):
        with pytest.raises(ValueError, match="rebalance_weights"):
            rebalance_weights(bad)


def test_pixel_weights(centers):
    z = soft_encode(in_gamut_ab(2, 8), centers)
    w = torch.rand(centers.shape[0], generator=gen(6))
    v = pixel_weights(z, w)
    assert v.shape == (2, 8, 8)
    torch.testing.assert_close(v, w[z.argmax(1)])
    with pytest.raises(ValueError, match="pixel_weights"):
        pixel_weights(z, w[:-1])


# --------------------------------------------------------------------------------------- loss
def test_cross_entropy_matches_torch_and_weights(centers):
    z = soft_encode(in_gamut_ab(2, 8), centers)
    logits = torch.randn(z.shape, generator=gen(7))
    ce = weighted_soft_cross_entropy(logits, z)
    torch.testing.assert_close(ce, torch.nn.functional.cross_entropy(logits, z))
    v = torch.rand(2, 8, 8, generator=gen(8)) * 3
    per_pixel = -(z * torch.log_softmax(logits, 1)).sum(1)
    torch.testing.assert_close(weighted_soft_cross_entropy(logits, z, v), (v * per_pixel).mean())
    # the loss is smallest when the prediction equals the target (cross-entropy >= entropy)
    perfect = weighted_soft_cross_entropy(torch.log(z.clamp_min(1e-20)), z)
    entropy = -(z * torch.log(z.clamp_min(1e-20))).sum(1).mean()
    torch.testing.assert_close(perfect, entropy, atol=1e-5, rtol=0)
    assert ce > perfect


def test_cross_entropy_gradients_flow(centers):
    ab = in_gamut_ab(2, 8)
    z = soft_encode(ab, centers)
    prior = empirical_prior([ab], centers)
    v = pixel_weights(z, rebalance_weights(prior))
    logits = torch.zeros(z.shape, requires_grad=True)
    loss = weighted_soft_cross_entropy(logits, z, v)
    loss.backward()
    assert logits.grad is not None and torch.isfinite(logits.grad).all() and logits.grad.abs().sum() > 0
    # d loss / d logits = v (softmax - z) / (B H W)
    expected = v[:, None] * (torch.softmax(logits.detach(), 1) - z) / (2 * 8 * 8)
    torch.testing.assert_close(logits.grad, expected, atol=1e-7, rtol=1e-4)
    small = torch.randn(1, 4, 2, 2, dtype=torch.float64, requires_grad=True)
    tgt = torch.softmax(torch.randn(1, 4, 2, 2, dtype=torch.float64), 1)
    wts = torch.rand(1, 2, 2, dtype=torch.float64)
    assert torch.autograd.gradcheck(lambda x: weighted_soft_cross_entropy(x, tgt, wts), (small,))


def test_cross_entropy_shape_errors():
    with pytest.raises(ValueError, match="weighted_soft_cross_entropy"):
        weighted_soft_cross_entropy(torch.zeros(1, 3, 2, 2), torch.zeros(1, 4, 2, 2))
    with pytest.raises(ValueError, match="weighted_soft_cross_entropy"):
        weighted_soft_cross_entropy(torch.zeros(1, 3, 2, 2), torch.zeros(1, 3, 2, 2), torch.ones(1, 3, 3))


# ------------------------------------------------------------------------------------ decoding
def test_annealed_mean_t1_is_mean(centers):
    logits = torch.randn(2, centers.shape[0], 4, 5, generator=gen(9)) * 3
    ab = annealed_mean(logits, centers, 1.0)
    expected = torch.einsum("bqhw,qc->bchw", torch.softmax(logits, 1), centers)
    assert ab.shape == (2, 2, 4, 5)
    torch.testing.assert_close(ab, expected)
    # Eq. 5 literally: exp(log z / T) renormalised
    t, l64, c64 = 0.38, logits.double(), centers.double()
    z = torch.softmax(l64, 1)
    f = torch.exp(torch.log(z) / t)
    f = f / f.sum(1, keepdim=True)
    torch.testing.assert_close(annealed_mean(l64, c64), torch.einsum("bqhw,qc->bchw", f, c64))


def test_annealed_mean_small_t_is_mode(centers):
    logits = torch.randn(2, centers.shape[0], 3, 3, generator=gen(10))
    mode = centers[logits.argmax(1)].permute(0, 3, 1, 2)
    torch.testing.assert_close(annealed_mean(logits, centers, 1e-3), mode, atol=1e-3, rtol=0)
    # lower temperature moves the estimate toward the mode
    d = [(annealed_mean(logits, centers, t) - mode).abs().mean() for t in (1.0, 0.38, 0.1)]
    assert d[0] > d[1] > d[2]


def test_annealed_mean_errors_and_grad(centers):
    logits = torch.randn(1, centers.shape[0], 2, 2, requires_grad=True)
    for t in (0.0, -1.0, float("nan"), float("inf")):
        with pytest.raises(ValueError, match="temperature"):
            annealed_mean(logits, centers, t)
    with pytest.raises(ValueError, match="annealed_mean"):
        annealed_mean(logits[:, :-1], centers)
    annealed_mean(logits, centers).sum().backward()
    assert torch.isfinite(logits.grad).all() and logits.grad.abs().sum() > 0


def test_encode_decode_round_trip(centers):
    ab = in_gamut_ab(4, 32, seed=11)
    z = soft_encode(ab, centers)
    logits = torch.log(z.clamp_min(1e-30))
    err = (annealed_mean(logits, centers, 1.0) - ab).norm(dim=1)  # Euclidean ab error
    assert err.mean() < 1.0 and err.max() < 5.0
    err = (annealed_mean(logits, centers) - ab).norm(dim=1)  # default T: pulled toward the mode
    assert err.mean() < 3.0 and err.max() < 10 / math.sqrt(2) + 1e-3
    # hard decoding: the nearest centre is within half a cell diagonal
    hard = centers[hard_encode(ab, centers)].permute(0, 3, 1, 2)
    assert (hard - ab).norm(dim=1).max() <= 5 * math.sqrt(2) + 1e-4


def test_module_exports():
    import lumachrome.color as color_pkg

    for name in bins_mod.__all__:
        assert getattr(color_pkg, name) is getattr(bins_mod, name)
