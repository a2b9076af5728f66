"""Tests of lumachrome.colorizer: working resolution, L preservation, files (alpha, 16 bit), loading."""

from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from PIL import Image
from _stubs import RampAB, save_tiny_model
from torch import nn

from lumachrome import colorizer as colorizer_mod
from lumachrome.color.lab import rgb_to_lab_np
from lumachrome.colorizer import Colorizer, available_models, resolve_device, working_shape
from lumachrome.errors import ConfigError, ImageError, ModelError
from lumachrome.models import io as model_io


# ------------------------------------------------------------------------------------ fixtures
class ConstantAB(nn.Module):
    """Stub network: ab = (a, b) everywhere; records the inputs it sees."""

    def __init__(self, a: float = 0.0, b: float = 0.0) -> None:
        super().__init__()
        self.register_buffer("ab", torch.tensor([a, b]).view(1, 2, 1, 1))
        self.seen: list[tuple[int, ...]] = []

    def predict_ab(self, L: torch.Tensor, temperature: float | None = None) -> torch.Tensor:
        self.seen.append(tuple(L.shape))
        return self.ab.expand(L.shape[0], 2, L.shape[2], L.shape[3]).clone()


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save_tiny_model(tmp_path_factory.mktemp("models") / "tiny")


@pytest.fixture(scope="module")
def tiny(model_dir: Path) -> Colorizer:
    return Colorizer.load(model_dir, device="cpu")


def gray_gradient(h: int, w: int, lo: float = 0.25, hi: float = 0.75) -> np.ndarray:
    """(h, w) float32 gray with values in [lo, hi] (in gamut for moderate ab)."""
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    return (lo + (hi - lo) * (0.5 * xx / max(w - 1, 1) + 0.5 * yy / max(h - 1, 1))).astype(np.float32)


def colour_image(h: int, w: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    small = rng.uniform(0.1, 0.9, size=(4, 4, 3)).astype(np.float32)
    return cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR)


# ------------------------------------------------------------------------------------ working size
@pytest.mark.parametrize(
    "h, w, size, expected",
    [
        (4000, 6000, 256, (176, 256)),  # long side = size, short side keeps the aspect ratio
        (6000, 4000, 256, (256, 176)),
        (512, 512, 256, (256, 256)),
        (20, 30, 256, (176, 256)),  # small images are enlarged to the working size
        (8, 30000, 256, (16, 256)),  # extreme aspect ratio: at least one multiple
        (100, 100, 250, (256, 256)),  # size rounded to a multiple of 16
    ],
)
def test_working_shape(h: int, w: int, size: int, expected: tuple[int, int]) -> None:
    hs, ws = working_shape(h, w, size)
    assert (hs, ws) == expected
    assert hs % 16 == 0 and ws % 16 == 0


def test_working_shape_rejects_empty() -> None:
    with pytest.raises(ValueError):
        working_shape(0, 10, 256)


def test_network_runs_at_working_resolution() -> None:
    stub = ConstantAB()
    col = Colorizer(stub, {"preprocessing": {"size": 128}}, "cpu")
    col(np.full((300, 600), 0.5, np.float32))
    assert stub.seen[-1] == (1, 1, 64, 128)
    col(np.full((300, 600), 0.5, np.float32), size=64)
    assert stub.seen[-1] == (1, 1, 32, 64)


# ------------------------------------------------------------------------------------ arrays
@pytest.mark.parametrize("shape", [(64, 64), (37, 53), (9, 200), (1, 1), (50, 70, 3), (17, 5, 1)])
def test_colorize_array_shapes(tiny: Colorizer, shape: tuple[int, ...]) -> None:
    rng = np.random.default_rng(1)
    image = rng.random(shape, dtype=np.float32)
    out = tiny(image)
    assert out.shape == (shape[0], shape[1], 3)
    assert out.dtype == np.float32
    assert np.isfinite(out).all() and out.min() >= 0.0 and out.max() <= 1.0


def test_integer_inputs_are_scaled(tiny: Colorizer) -> None:
    g = gray_gradient(40, 60)
    ref = tiny(g)
    out8 = tiny(np.rint(g * 255).astype(np.uint8))
    out16 = tiny(np.rint(g * 65535).astype(np.uint16))
    assert np.abs(out8 - ref).max() < 0.02
    assert np.abs(out16 - ref).max() < 1e-3


def test_bad_arrays_raise(tiny: Colorizer) -> None:
    with pytest.raises(ValueError):
        tiny(np.zeros((10, 10, 4), np.float32))
    with pytest.raises(ValueError):
        tiny(np.zeros((10, 10), np.int64))
    with pytest.raises(TypeError):
        tiny([[0.5]])  # type: ignore[arg-type]


def test_output_keeps_input_lightness() -> None:
    col = Colorizer(ConstantAB(12.0, -8.0), {}, "cpu")
    g = gray_gradient(123, 321)
    out = col(g)
    lab_in = rgb_to_lab_np(np.repeat(g[:, :, None], 3, axis=2))
    lab_out = rgb_to_lab_np(out)
    assert np.abs(lab_out[..., 0] - lab_in[..., 0]).max() < 0.3
    # the network's ab reaches the output
    assert np.abs(lab_out[..., 1] - 12.0).max() < 0.5
    assert np.abs(lab_out[..., 2] + 8.0).max() < 0.5


def test_colour_inputs_use_their_own_lightness() -> None:
    col = Colorizer(ConstantAB(0.0, 0.0), {}, "cpu")
    rgb = colour_image(90, 70)
    out = col(rgb)
    lab_in, lab_out = rgb_to_lab_np(rgb), rgb_to_lab_np(out)
    # ab = 0: the output is the gray with the input's L (not, e.g., the channel mean)
    assert np.abs(lab_out[..., 0] - lab_in[..., 0]).max() < 0.3
    assert np.abs(lab_out[..., 1:]).max() < 0.5
    assert np.abs(out[..., 0] - out[..., 1]).max() < 2e-3
    # the colour input and the gray image with the same L give the same result
    gray_same_l = col(out[..., 0].copy())
    assert np.abs(gray_same_l - out).max() < 2e-3


def test_ab_upsampling_is_bilinear() -> None:
    """ab at full resolution equals cv2.resize(INTER_LINEAR) of the working-size prediction."""
    col = Colorizer(RampAB(), {"preprocessing": {"size": 64}}, "cpu")
    h, w = 200, 300
    out = col(np.full((h, w), 0.55, np.float32))
    hs, ws = working_shape(h, w, 64)
    ab_small = RampAB().predict_ab(torch.zeros(1, 1, hs, ws))[0].permute(1, 2, 0).numpy()
    expected = cv2.resize(ab_small, (w, h), interpolation=cv2.INTER_LINEAR)
    got = rgb_to_lab_np(out)[..., 1:]
    assert np.abs(got - expected).max() < 0.3


def test_row_chunks_and_in_place_give_the_same_result(monkeypatch: pytest.MonkeyPatch) -> None:
    col = Colorizer(RampAB(), {"preprocessing": {"size": 64}}, "cpu")
    rgb = colour_image(97, 131, seed=3)
    whole = col(rgb)
    monkeypatch.setattr(colorizer_mod, "_CHUNK_PIXELS", 131 * 7 + 5)  # 7-row chunks, ragged end
    chunked = col(rgb)
    buf = rgb.copy()
    in_place = col.colorize_array(buf, out=buf)
    assert in_place is buf
    # equal up to float32 rounding (OpenCV's SIMD paths depend on the chunk's memory layout)
    np.testing.assert_allclose(chunked, whole, rtol=0, atol=1e-5)
    np.testing.assert_allclose(in_place, whole, rtol=0, atol=1e-5)
    assert not np.array_equal(rgb, buf)  # the caller's array was really overwritten


def test_predict_ab_batch(tiny: Colorizer) -> None:
    L = torch.linspace(0, 100, 2 * 32 * 48).view(2, 1, 32, 48)
    ab = tiny.predict_ab_batch(L)
    assert ab.shape == (2, 2, 32, 48) and ab.dtype == torch.float32
    assert not ab.requires_grad
    assert ab.abs().max() < 121
    with pytest.raises(ValueError):
        tiny.predict_ab_batch(torch.zeros(2, 3, 8, 8))


def test_temperature_reaches_classification_models() -> None:
    class Recorder(ConstantAB):
        def predict_ab(self, L, temperature=None):
            self.t = temperature
            return super().predict_ab(L)

    stub = Recorder()
    Colorizer(stub, {"decoding": {"temperature": 0.2}}, "cpu")(np.full((16, 16), 0.5, np.float32))
    assert stub.t == pytest.approx(0.2)
    Colorizer(stub, {"decoding": {"temperature": 0.2}}, "cpu", temperature=0.7)(np.full((16, 16), 0.5, np.float32))
    assert stub.t == pytest.approx(0.7)


def test_saturation_scales_ab_and_flip_averages_the_mirror_prediction() -> None:
    L = torch.linspace(0, 100, 2 * 16 * 24).view(2, 1, 16, 24)
    plain = Colorizer(RampAB(), {}, "cpu")
    base = plain.predict_ab_batch(L)
    assert plain.saturation == 1.0 and not plain.flip
    torch.testing.assert_close(Colorizer(RampAB(), {}, "cpu", saturation=1.5).predict_ab_batch(L), 1.5 * base)
    assert Colorizer(RampAB(), {}, "cpu", saturation=0).predict_ab_batch(L).abs().max() == 0
    from_config = Colorizer(RampAB(), {"decoding": {"saturation": 1.25, "flip": True}}, "cpu")
    assert from_config.saturation == 1.25 and from_config.flip
    assert Colorizer(RampAB(), {"decoding": {"saturation": 1.25}}, "cpu", saturation=1.0).saturation == 1.0
    # RampAB's a ramps along x: the mirror image's prediction, mirrored back, has a ramping the other
    # way, so their mean cancels a exactly; b (along y) is unchanged.
    flipped = Colorizer(RampAB(), {}, "cpu", flip=True).predict_ab_batch(L)
    torch.testing.assert_close(flipped[:, 0], torch.zeros_like(flipped[:, 0]))
    torch.testing.assert_close(flipped[:, 1], base[:, 1])
    for bad in (-0.1, 5, "x"):
        with pytest.raises(ConfigError, match="saturation"):
            Colorizer(RampAB(), {}, "cpu", saturation=bad)


# ------------------------------------------------------------------------------------ files
def test_colorize_file_png_rgba_keeps_alpha(tiny: Colorizer, tmp_path: Path) -> None:
    g = (gray_gradient(40, 50) * 255).astype(np.uint8)
    alpha = np.tile(np.linspace(0, 255, 50).astype(np.uint8), (40, 1))
    src = tmp_path / "in.png"
    Image.fromarray(np.dstack([g, g, g, alpha]), "RGBA").save(src)
    dst = tiny.colorize_file(src, tmp_path / "out" / "in.png")
    with Image.open(dst) as im:
        assert im.mode == "RGBA" and im.size == (50, 40)
        np.testing.assert_array_equal(np.asarray(im)[..., 3], alpha)


def test_colorize_file_16_bit_in_16_bit_out(tiny: Colorizer, tmp_path: Path) -> None:
    g16 = (gray_gradient(48, 40) * 65535).astype(np.uint16)
    src = tmp_path / "in16.png"
    assert cv2.imwrite(str(src), np.dstack([g16, g16, g16]))
    out16 = cv2.imread(str(tiny.colorize_file(src, tmp_path / "o16.png")), cv2.IMREAD_UNCHANGED)
    assert out16.dtype == np.uint16 and out16.shape == (48, 40, 3)
    # 16 bits really used (an 8-bit image scaled up would only hold multiples of 257)
    assert np.any(out16 % 257 != 0)
    out8 = np.asarray(Image.open(tiny.colorize_file(src, tmp_path / "o16.jpg")))
    assert out8.dtype == np.uint8 and out8.shape == (48, 40, 3)


def test_colorize_file_gray_jpeg_keeps_lightness(tmp_path: Path) -> None:
    col = Colorizer(ConstantAB(15.0, 20.0), {}, "cpu")
    g = (gray_gradient(64, 96) * 255).astype(np.uint8)
    src = tmp_path / "g.png"
    Image.fromarray(g, "L").save(src)
    out = np.asarray(Image.open(col.colorize_file(src, tmp_path / "c.png"))).astype(np.float32) / 255
    lab_in = rgb_to_lab_np(np.repeat(g[:, :, None], 3, axis=2))
    lab_out = rgb_to_lab_np(out)
    assert np.abs(lab_out[..., 0] - lab_in[..., 0]).max() < 0.8  # 8-bit rounding of the output
    assert np.abs(lab_out[..., 1] - 15.0).mean() < 1.0


def test_colorize_file_never_overwrites_input(tiny: Colorizer, tmp_path: Path) -> None:
    src = tmp_path / "a.png"
    Image.fromarray((gray_gradient(20, 20) * 255).astype(np.uint8), "L").save(src)
    before = src.read_bytes()
    with pytest.raises(ImageError, match="input"):
        tiny.colorize_file(src, src, overwrite=True)
    with pytest.raises(ImageError, match="input"):
        tiny.colorize_file(src, tmp_path / "." / "a.png", overwrite=True)
    os.link(src, tmp_path / "hard.png")
    with pytest.raises(ImageError, match="input"):
        tiny.colorize_file(src, tmp_path / "hard.png", overwrite=True)
    (tmp_path / "sym.png").symlink_to(src)
    with pytest.raises(ImageError, match="input"):
        tiny.colorize_file(src, tmp_path / "sym.png", overwrite=True)
    assert src.read_bytes() == before


def test_colorize_file_existing_output_needs_overwrite(tiny: Colorizer, tmp_path: Path) -> None:
    src = tmp_path / "a.png"
    Image.fromarray((gray_gradient(20, 20) * 255).astype(np.uint8), "L").save(src)
    dst = tmp_path / "b.png"
    dst.write_bytes(b"old")
    with pytest.raises(ImageError, match="exists"):
        tiny.colorize_file(src, dst)
    assert dst.read_bytes() == b"old"
    tiny.colorize_file(src, dst, overwrite=True)
    assert Image.open(dst).size == (20, 20)


def test_colorize_file_bad_input_leaves_nothing(tiny: Colorizer, tmp_path: Path) -> None:
    src = tmp_path / "bad.png"
    src.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 20)
    with pytest.raises(ImageError, match="bad.png"):
        tiny.colorize_file(src, tmp_path / "out" / "bad.png")
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


# ------------------------------------------------------------------------------------ loading
def test_load_folder_and_settings(model_dir: Path) -> None:
    col = Colorizer.load(model_dir, device="auto")
    assert col.device == resolve_device("auto")
    assert col.size == 64  # from config.json preprocessing.size
    assert col.name == "tiny"
    assert Colorizer.load(str(model_dir), size=128, device="cpu").size == 128
    with pytest.raises(ConfigError):
        Colorizer.load(model_dir, size=7, device="cpu")
    with pytest.raises(ConfigError):
        Colorizer.load(model_dir, device="nonsense")
    if not torch.cuda.is_available():
        with pytest.raises(ConfigError, match="CUDA"):
            Colorizer.load(model_dir, device="cuda")


def test_load_unknown_name_lists_shipped(tmp_path: Path, model_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    weights = tmp_path / "weights"
    (weights / "demo").mkdir(parents=True)
    for f in model_dir.iterdir():
        (weights / "demo" / f.name).write_bytes(f.read_bytes())
    (weights / "not_a_model").mkdir()
    monkeypatch.setattr(model_io, "weights_root", lambda: weights)
    assert available_models() == ["demo"]
    assert Colorizer.load("demo", device="cpu").name == "demo"
    with pytest.raises(ModelError, match=r"nosuch.*demo"):
        Colorizer.load("nosuch")
    with pytest.raises(ModelError):
        Colorizer.load(tmp_path / "missing_folder")


def test_load_rejects_mismatched_weights(tmp_path: Path, model_dir: Path) -> None:
    import json

    bad = tmp_path / "bad"
    bad.mkdir()
    for f in model_dir.iterdir():
        (bad / f.name).write_bytes(f.read_bytes())
    config = json.loads((bad / "config.json").read_text())
    config["args"]["widths"] = [8, 16, 32, 64]
    (bad / "config.json").write_text(json.dumps(config))
    with pytest.raises(ModelError):
        Colorizer.load(bad, device="cpu")
