"""sRGB <-> CIE Lab: torch functions and the numpy fast path against scikit-image."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from skimage import color, data

from lumachrome.color.lab import (
    AB_SCALE,
    L_CENTER,
    L_SCALE,
    denormalize_ab,
    lab_to_rgb,
    lab_to_rgb_np,
    normalize_ab,
    normalize_l,
    rgb_to_lab,
    rgb_to_lab_np,
)

# scikit-image 0.26 rgb2lab of the sRGB primaries (float64), also the usual published values.
PRIMARIES = {
    "red": ((1.0, 0.0, 0.0), (53.2405879, 80.0923082, 67.2027510)),
    "green": ((0.0, 1.0, 0.0), (87.7350995, -86.1830297, 83.1797032)),
    "blue": ((0.0, 0.0, 1.0), (32.2956726, 79.1855909, -107.8573003)),
}
# float32 conversions against float64 references
ATOL32 = {torch.float32: 2e-3, torch.float64: 1e-8}


def to_chw(a: np.ndarray, dtype=torch.float64) -> torch.Tensor:
    """(H, W, 3) numpy -> (1, 3, H, W) tensor."""
    return torch.from_numpy(np.ascontiguousarray(a)).permute(2, 0, 1)[None].to(dtype)


def to_hwc(t: torch.Tensor) -> np.ndarray:
    """(1, 3, H, W) tensor -> (H, W, 3) float64 numpy."""
    return t[0].permute(1, 2, 0).double().cpu().numpy()


@pytest.fixture(scope="module")
def astronaut() -> np.ndarray:
    return data.astronaut()  # (512, 512, 3) uint8


@pytest.fixture(scope="module")
def random_rgb() -> np.ndarray:
    rng = np.random.default_rng(1234)
    rgb = rng.random((48, 40, 3))
    rgb[:4] = rng.random((4, 40, 3)) * 0.05  # plenty of pixels on the linear (dark) branch
    rgb[4, :3] = 0.0
    rgb[5, :3] = 1.0
    return rgb


# ----------------------------------------------------------------------------- torch vs skimage
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_rgb_to_lab_matches_skimage_random(random_rgb, dtype):
    ref = color.rgb2lab(random_rgb)
    out = rgb_to_lab(to_chw(random_rgb, dtype))
    assert out.dtype == dtype and out.shape == (1, 3, 48, 40)
    np.testing.assert_allclose(to_hwc(out), ref, rtol=0, atol=ATOL32[dtype])


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_rgb_to_lab_matches_skimage_astronaut(astronaut, dtype):
    ref = color.rgb2lab(astronaut)
    out = rgb_to_lab(to_chw(astronaut / 255.0, dtype))
    np.testing.assert_allclose(to_hwc(out), ref, rtol=0, atol=ATOL32[dtype])


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_lab_to_rgb_matches_skimage(astronaut, random_rgb, dtype):
    for rgb in (random_rgb, astronaut / 255.0):
        lab = color.rgb2lab(rgb)
        ref = color.lab2rgb(lab)
        out = lab_to_rgb(to_chw(lab, dtype))
        np.testing.assert_allclose(to_hwc(out), ref, rtol=0, atol=1e-5 if dtype == torch.float32 else 1e-10)


def test_lab_to_rgb_random_lab_matches_skimage():
    # random Lab, mostly out of gamut: both clip to [0, 1]. Keep Z >= 0 (fz >= 0), where
    # scikit-image clips Z before converting (and warns) while lumachrome does not.
    rng = np.random.default_rng(7)
    lab = np.stack(
        [rng.uniform(0, 100, (64, 64)), rng.uniform(-110, 110, (64, 64)), rng.uniform(-110, 110, (64, 64))], -1
    )
    fz = (lab[..., 0] + 16) / 116 - lab[..., 2] / 200
    lab[..., 2] = np.where(fz < 0, -lab[..., 2], lab[..., 2])
    ref = color.lab2rgb(lab)
    out = to_hwc(lab_to_rgb(to_chw(lab)))
    np.testing.assert_allclose(out, ref, rtol=0, atol=1e-10)
    assert out.min() >= 0.0 and out.max() <= 1.0
    raw = to_hwc(lab_to_rgb(to_chw(lab), clip=False))
    assert raw.min() < -0.1 and raw.max() > 1.1  # clip=False really keeps out-of-gamut values
    np.testing.assert_allclose(np.clip(raw, 0, 1), out, atol=1e-12)


@pytest.mark.parametrize("name", sorted(PRIMARIES))
def test_primaries(name):
    rgb, lab_ref = PRIMARIES[name]
    lab = rgb_to_lab(torch.tensor(rgb, dtype=torch.float64).view(1, 3, 1, 1)).view(3)
    np.testing.assert_allclose(lab.numpy(), lab_ref, atol=1e-6)
    np.testing.assert_allclose(lab.numpy(), color.rgb2lab(np.array([[rgb]]))[0, 0], atol=1e-9)
    back = lab_to_rgb(torch.tensor(lab_ref, dtype=torch.float64).view(1, 3, 1, 1)).view(3)
    np.testing.assert_allclose(back.numpy(), rgb, atol=1e-6)


def test_black_and_white():
    rgb = torch.tensor([[0.0, 0.0, 0.0], [1.0, 1.0, 1.0]], dtype=torch.float64).T.reshape(3, 1, 2)
    lab = rgb_to_lab(rgb)  # (3, H, W) works too
    np.testing.assert_allclose(lab[:, 0, 0].numpy(), [0.0, 0.0, 0.0], atol=1e-9)
    np.testing.assert_allclose(lab[:, 0, 1].numpy(), [100.0, 0.0, 0.0], atol=1e-2)  # matrix rounding
    back = lab_to_rgb(torch.tensor([[0.0, 100.0], [0.0, 0.0], [0.0, 0.0]], dtype=torch.float64).view(3, 1, 2))
    np.testing.assert_allclose(back[:, 0, 0].numpy(), 0.0, atol=1e-9)
    np.testing.assert_allclose(back[:, 0, 1].numpy(), 1.0, atol=1e-4)


# ------------------------------------------------------------------------------ shapes, round trip
@pytest.mark.parametrize("shape", [(3, 5, 7), (2, 3, 5, 7), (2, 4, 3, 5, 7)])
def test_batched_shapes_match_per_image(shape):
    rgb = torch.rand(shape, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    lab = rgb_to_lab(rgb)
    assert lab.shape == rgb.shape
    flat = rgb.reshape(-1, 3, 5, 7)
    for i, img in enumerate(flat):
        ref = color.rgb2lab(img.permute(1, 2, 0).numpy())
        np.testing.assert_allclose(lab.reshape(-1, 3, 5, 7)[i].permute(1, 2, 0).numpy(), ref, atol=1e-8)
    back = lab_to_rgb(lab)
    assert back.shape == rgb.shape


@pytest.mark.parametrize("dtype,atol", [(torch.float32, 2e-5), (torch.float64, 1e-12)])
def test_round_trip(dtype, atol):
    rgb = torch.rand(2, 2, 3, 16, 16, dtype=dtype, generator=torch.Generator().manual_seed(3))
    back = lab_to_rgb(rgb_to_lab(rgb))
    assert back.dtype == dtype
    torch.testing.assert_close(back, rgb, atol=atol, rtol=0)


def test_non_contiguous_input(astronaut):
    rgb = torch.from_numpy(astronaut[:64, :64] / 255.0).permute(2, 0, 1)  # a permuted view
    assert not rgb.is_contiguous()
    torch.testing.assert_close(rgb_to_lab(rgb), rgb_to_lab(rgb.contiguous()))


@pytest.mark.parametrize("fn", [rgb_to_lab, lab_to_rgb])
@pytest.mark.parametrize("shape", [(3, 4), (4, 4, 4), (1, 2, 4, 4), (8, 8, 3)])
def test_bad_shape_raises(fn, shape):
    with pytest.raises(ValueError, match=fn.__name__):
        fn(torch.zeros(shape))


def test_bad_types_raise():
    with pytest.raises(ValueError, match="floating"):
        rgb_to_lab(torch.zeros(1, 3, 2, 2, dtype=torch.uint8))
    with pytest.raises(TypeError):
        rgb_to_lab(np.zeros((1, 3, 2, 2)))


# ------------------------------------------------------------------------------------ gradients
def test_gradcheck_rgb_to_lab_upper_branches():
    gen = torch.Generator().manual_seed(0)
    rgb = (0.1 + 0.8 * torch.rand(1, 3, 3, 3, generator=gen, dtype=torch.float64)).requires_grad_()
    assert torch.autograd.gradcheck(rgb_to_lab, (rgb,))


def test_gradcheck_rgb_to_lab_linear_branches():
    # rgb < 0.04045 (linear sRGB segment) and X/Xn < 0.008856 (linear CIE f segment)
    gen = torch.Generator().manual_seed(1)
    rgb = (0.005 + 0.03 * torch.rand(1, 3, 3, 3, generator=gen, dtype=torch.float64)).requires_grad_()
    assert torch.autograd.gradcheck(rgb_to_lab, (rgb,))


def test_gradcheck_lab_to_rgb():
    gen = torch.Generator().manual_seed(2)
    lab = torch.rand(2, 3, 3, 3, generator=gen, dtype=torch.float64)
    lab = lab * torch.tensor([40.0, 40.0, 40.0], dtype=torch.float64).view(3, 1, 1)
    lab = lab + torch.tensor([30.0, -20.0, -20.0], dtype=torch.float64).view(3, 1, 1)  # L 30..70, |ab| <= 20
    assert torch.autograd.gradcheck(lambda x: lab_to_rgb(x, clip=False), (lab.requires_grad_(),))
    # dark colours: the linear segments of f^-1 and of the sRGB encoding
    dark = torch.tensor([1.0, 1.5, 2.0], dtype=torch.float64).view(1, 3, 1, 1).repeat(1, 1, 2, 2)
    dark[:, 1:] = 0.2
    assert torch.autograd.gradcheck(lambda x: lab_to_rgb(x, clip=False), (dark.requires_grad_(),))


def test_gradients_finite_at_extremes():
    rgb = torch.tensor([0.0, 1.0, 0.04045, 0.5], dtype=torch.float64).view(1, 1, 2, 2).repeat(1, 3, 1, 1)
    rgb.requires_grad_()
    lab_to_rgb(rgb_to_lab(rgb), clip=False).sum().backward()
    assert torch.isfinite(rgb.grad).all()


# ----------------------------------------------------------------------------------- devices
@pytest.mark.skipif(not torch.cuda.is_available(), reason="CUDA not available")
def test_cuda_matches_cpu():
    rgb = torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(5))
    lab_cpu = rgb_to_lab(rgb)
    lab_gpu = rgb_to_lab(rgb.cuda())
    assert lab_gpu.is_cuda
    torch.testing.assert_close(lab_gpu.cpu(), lab_cpu, atol=1e-3, rtol=0)
    torch.testing.assert_close(lab_to_rgb(lab_gpu).cpu(), lab_to_rgb(lab_cpu), atol=1e-5, rtol=0)


# ---------------------------------------------------------------------------------- scaling
def test_normalize_denormalize():
    assert L_CENTER == 50.0 and L_SCALE == 50.0 and AB_SCALE == 110.0
    L = torch.tensor([0.0, 50.0, 100.0])
    torch.testing.assert_close(normalize_l(L), torch.tensor([-1.0, 0.0, 1.0]))
    ab = torch.linspace(-110, 110, 23)
    torch.testing.assert_close(normalize_ab(ab), ab / 110.0)
    torch.testing.assert_close(denormalize_ab(normalize_ab(ab)), ab)
    assert normalize_ab(ab).abs().max() == 1.0


# ------------------------------------------------------------------------------ numpy fast path
# Measured on astronaut: max |Lab - skimage| ~1e-4 (float32 rounding); OpenCV's own float32
# cvtColor is off by ~0.6 (benchmarks/bench_color.py).
NP_LAB_ATOL = 1e-3
NP_RGB_ATOL = 1e-5


def test_np_rgb_to_lab_uint8_uint16_float(astronaut):
    ref = color.rgb2lab(astronaut)
    for img in (astronaut, astronaut.astype(np.uint16) * 257, astronaut / 255.0, (astronaut / 255.0).astype(np.float32)):
        out = rgb_to_lab_np(img)
        assert out.dtype == np.float32 and out.shape == astronaut.shape
        np.testing.assert_allclose(out, ref, rtol=0, atol=NP_LAB_ATOL, err_msg=str(img.dtype))


def test_np_rgb_to_lab_random_matches_skimage(random_rgb):
    np.testing.assert_allclose(rgb_to_lab_np(random_rgb), color.rgb2lab(random_rgb), rtol=0, atol=NP_LAB_ATOL)


def test_np_rgb_to_lab_clips_input():
    rgb = np.array([[[-0.5, 0.5, 1.5], [0.0, 0.5, 1.0]]])
    out = rgb_to_lab_np(rgb)
    np.testing.assert_allclose(out[0, 0], out[0, 1], atol=1e-5)


def test_np_lab_to_rgb_matches_skimage(astronaut, random_rgb):
    for rgb in (random_rgb, astronaut / 255.0):
        lab = color.rgb2lab(rgb)
        for arr in (lab, lab.astype(np.float32)):
            out = lab_to_rgb_np(arr)
            assert out.dtype == np.float32
            np.testing.assert_allclose(out, color.lab2rgb(lab), rtol=0, atol=NP_RGB_ATOL + (arr.dtype == np.float32) * 2e-5)


def test_np_lab_to_rgb_matches_torch_out_of_gamut():
    rng = np.random.default_rng(11)
    lab = np.stack(
        [rng.uniform(0, 100, (50, 70)), rng.uniform(-128, 128, (50, 70)), rng.uniform(-128, 128, (50, 70))], -1
    )
    ref = to_hwc(lab_to_rgb(to_chw(lab), clip=True))
    out = lab_to_rgb_np(lab)
    assert out.min() >= 0.0 and out.max() <= 1.0
    np.testing.assert_allclose(out, ref, rtol=0, atol=1e-4)


def test_np_round_trip_and_in_place(astronaut):
    rgb = (astronaut / 255.0).astype(np.float32)
    lab = rgb_to_lab_np(rgb)
    np.testing.assert_allclose(lab_to_rgb_np(lab), rgb, atol=2e-5)
    buf = rgb.copy()
    assert rgb_to_lab_np(buf, out=buf) is buf
    np.testing.assert_array_equal(buf, lab)
    assert lab_to_rgb_np(buf, out=buf) is buf
    np.testing.assert_allclose(buf, rgb, atol=2e-5)


def test_np_chunking_consistent(astronaut, monkeypatch):
    import lumachrome.color.lab as lab_mod

    rgb = astronaut[:100, :77] / 255.0  # odd width: ragged last chunk
    full = rgb_to_lab_np(rgb)
    back = lab_to_rgb_np(full)
    monkeypatch.setattr(lab_mod, "_CHUNK_PIXELS", 77 * 3)
    # SIMD loop tails may round differently, hence allclose and not equality
    np.testing.assert_allclose(rgb_to_lab_np(rgb), full, rtol=0, atol=1e-4)
    np.testing.assert_allclose(lab_to_rgb_np(full), back, rtol=0, atol=1e-6)


def test_np_non_contiguous_and_empty(astronaut):
    view = astronaut[::2, ::3]
    np.testing.assert_array_equal(rgb_to_lab_np(view), rgb_to_lab_np(np.ascontiguousarray(view)))
    assert rgb_to_lab_np(np.zeros((0, 5, 3), np.uint8)).shape == (0, 5, 3)
    assert lab_to_rgb_np(np.zeros((4, 0, 3))).shape == (4, 0, 3)


@pytest.mark.parametrize("fn", [rgb_to_lab_np, lab_to_rgb_np])
def test_np_bad_input_raises(fn):
    for shape in [(4, 4), (4, 4, 4), (3, 4, 4)]:
        with pytest.raises(ValueError, match=fn.__name__):
            fn(np.zeros(shape, np.float32))
    with pytest.raises(ValueError, match=fn.__name__):
        fn(np.zeros((4, 4, 3), np.int32))
    with pytest.raises(ValueError, match="out"):
        fn(np.zeros((4, 4, 3), np.float32), out=np.zeros((4, 4, 3), np.float64))
