"""Tests for lumachrome.translate: image-to-image inference (tiling, working size, GeoTIFF in/out, CLI)."""

from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np
import pytest
import rasterio
import torch
from PIL import Image
from rasterio.crs import CRS
from rasterio.transform import from_origin
from torch import nn

from lumachrome.cli import main
from lumachrome.errors import ConfigError, ImageError, ModelError
from lumachrome.models.io import save_model_dir
from lumachrome.models.registry import register_model
from lumachrome.translate import Translator, _ramp, estimate_line_width, is_translate_model


class PointwiseGen(nn.Module):
    """A 1x1-convolution "generator": output pixel depends on its input pixel only, so a tiled run
    must equal a whole-image run exactly (up to blending of equal values)."""

    def __init__(self, in_channels: int = 1, out_channels: int = 3) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, 1)
        with torch.no_grad():
            self.conv.weight.copy_(torch.linspace(-0.9, 0.9, out_channels * in_channels).reshape(out_channels, in_channels, 1, 1))
            self.conv.bias.copy_(torch.linspace(-0.2, 0.2, out_channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.conv(x))


class Boom(PointwiseGen):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        raise RuntimeError("boom")


@register_model("test_pointwise_gen")
def _pointwise(**args) -> nn.Module:
    return PointwiseGen(**args)


@register_model("test_boom_gen")
def _boom(**args) -> nn.Module:
    return Boom(**args)


CRS_UTM = CRS.from_epsg(32633)
TRANSFORM = from_origin(404400.0, 5342400.0, 10.0, 10.0)


def model_dir(tmp_path: Path, domain: str, arch: str = "test_pointwise_gen", size: int = 32, **extra) -> Path:
    torch.manual_seed(0)
    if arch == "resnet_gen":
        from lumachrome.models.gan import ResnetGenerator

        net = ResnetGenerator(in_channels=1, out_channels=3, width=4, n_blocks=1)
        args = net.args
    else:
        net = PointwiseGen() if arch == "test_pointwise_gen" else Boom()
        args = {"in_channels": 1, "out_channels": 3}
    config = {"task": "translate", "domain": domain, "input": {"channels": [domain], "range": [-1, 1]},
              "output": {"space": "rgb", "range": [-1, 1]}, **extra}  # fmt: skip
    folder = tmp_path / f"{domain}-{arch}"
    return save_model_dir(net, folder, architecture=arch, args=args, preprocessing={"size": size}, extra=config)


def geotiff(path: Path, data: np.ndarray, nodata=None, descriptions=None) -> Path:
    c, h, w = data.shape
    with rasterio.open(path, "w", driver="GTiff", count=c, height=h, width=w, dtype=data.dtype, crs=CRS_UTM,
                       transform=TRANSFORM, nodata=nodata) as ds:  # fmt: skip
        ds.write(data)
        for i, d in enumerate(descriptions or [], start=1):
            ds.set_band_description(i, d)
    return path


def smooth(h: int, w: int, seed: int = 0) -> np.ndarray:
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    return (0.5 + 0.4 * np.sin(x / 7.0 + seed) * np.cos(y / 5.0)).astype(np.float32)


# --------------------------------------------------------------------------------------------
# loading


def test_load_and_refuse_colorizers(tmp_path):
    folder = model_dir(tmp_path, "nir")
    tr = Translator.load(folder)
    assert tr.domain == "nir" and tr.options["mode"] == "tile" and tr.options["tile"] == 32 and tr.options["overlap"] == 8
    assert is_translate_model(folder) and not is_translate_model(tmp_path / "nothing")
    from lumachrome.models.unet import UNetColorizer

    col = UNetColorizer(widths=(4, 8))
    save_model_dir(col, tmp_path / "col", architecture="unet", args=col.args, preprocessing={"size": 64})
    assert not is_translate_model(tmp_path / "col")
    with pytest.raises(ModelError, match="not an image-to-image model"):
        Translator.load(tmp_path / "col")
    from lumachrome.colorizer import Colorizer

    with pytest.raises(ModelError, match="image-to-image model"):  # and the other way round
        Colorizer.load(folder)
    with pytest.raises(ModelError, match="unknown model"):
        Translator.load(tmp_path / "missing")
    with pytest.raises(ConfigError, match="mode"):
        Translator.load(folder, mode="warp")
    with pytest.raises(ConfigError, match="overlap"):
        Translator.load(folder, overlap=32)


# --------------------------------------------------------------------------------------------
# tiling


def test_ramp_weights():
    w = _ramp(10, 4, True, True)
    assert (w > 0).all() and w[0] == pytest.approx(0.125) and w[5] == 1.0 and w[-1] == pytest.approx(0.125)
    assert (_ramp(10, 4, False, False) == 1).all() and _ramp(10, 0, True, True).min() == 1


@pytest.mark.parametrize("shape,tile,overlap", [((70, 45), 32, 8), ((33, 100), 16, 4), ((20, 20), 32, 8), ((64, 64), 32, 0)])
def test_tiled_equals_whole_for_a_pointwise_model(tmp_path, shape, tile, overlap):
    folder = model_dir(tmp_path, "nir")
    x = smooth(*shape)
    whole = Translator.load(folder, tile=512, overlap=0).translate_array(x)
    tiled = Translator.load(folder, tile=tile, overlap=overlap).translate_array(x)
    assert tiled.shape == (*shape, 3) and tiled.dtype == np.uint8
    assert np.abs(whole.astype(int) - tiled.astype(int)).max() <= 1


def test_tiled_rows_are_bounded_and_seams_are_blended(tmp_path):
    """A translator with a position-dependent model: reads are whole rows of one tile row (memory
    O(tile x width)) and the output has no hard seam where tiles meet."""
    tr = Translator.load(model_dir(tmp_path, "nir", arch="resnet_gen"), tile=32, overlap=16)
    H, W = 150, 90
    x = smooth(H, W)
    requested: list[tuple[int, int]] = []

    def read(r0: int, r1: int) -> np.ndarray:
        requested.append((r0, r1))
        return x[None, r0:r1]

    out = np.zeros((H, W, 3), np.uint8)
    filled = np.zeros(H, int)

    def write(r0: int, rows: np.ndarray) -> None:
        out[r0 : r0 + len(rows)] = rows
        filled[r0 : r0 + len(rows)] += 1

    tr._run_tiled(read, H, W, write)
    assert (filled == 1).all()  # every row written exactly once, top to bottom
    assert max(r1 - r0 for r0, r1 in requested) == 32
    same = tr.translate_array(x, stretch=False)
    np.testing.assert_array_equal(out, same)
    # rows at a tile boundary (row 32: the second tile row starts at 16) change no more than elsewhere
    d = np.abs(np.diff(out.astype(int), axis=0)).mean(axis=(1, 2))
    assert d[31] < 4 * np.median(d) + 1


def test_nir_stretch_makes_the_input_scale_irrelevant(tmp_path):
    tr = Translator.load(model_dir(tmp_path, "nir"))
    x = smooth(40, 50)
    a = tr.translate_array(x)
    b = tr.translate_array((x * 3000 + 200).astype(np.uint16))
    assert np.abs(a.astype(int) - b.astype(int)).max() <= 2
    rgb_in = tr.translate_array(np.repeat((x * 255).astype(np.uint8)[:, :, None], 3, axis=2))
    assert rgb_in.shape == (40, 50, 3)  # RGB -> luminance for 1-channel models


# --------------------------------------------------------------------------------------------
# working size


def test_estimate_line_width():
    for width in (2, 3, 5, 8):
        img = np.full((200, 200), 255, np.uint8)
        for k in range(5):  # horizontal and vertical strokes exactly `width` px wide
            img[20 + 35 * k : 20 + 35 * k + width, 10:190] = 0
            img[10:190, 15 + 35 * k : 15 + 35 * k + width] = 0
        est = estimate_line_width(img)
        assert est == pytest.approx(width, rel=0.15)
    assert estimate_line_width(np.full((50, 50), 255, np.uint8)) is None


def test_resize_mode_scales(tmp_path):
    th = Translator.load(model_dir(tmp_path, "thermal", size=32))
    assert th.options["mode"] == "resize" and th._working_shape(300, 500, None) == (32, 53)
    sk = Translator.load(model_dir(tmp_path, "sketch", size=32))
    img = np.full((400, 600), 255, np.uint8)
    for k in range(8):
        cv2.line(img, (20, 30 + 45 * k), (580, 40 + 45 * k), 0, 9)
    h, w = sk._working_shape(400, 600, img)
    assert abs(w / 600 - 3.0 / estimate_line_width(img)) < 0.02  # lines become ~3 px wide
    assert sk._working_shape(400, 600, np.full((400, 600), 255, np.uint8)) == (43, 64)  # no lines: 2 x size
    assert Translator.load(model_dir(tmp_path, "sketch", size=32), size=100)._working_shape(400, 600, img) == (67, 100)
    assert Translator.load(model_dir(tmp_path, "sketch", size=32), max_side=50)._working_shape(4000, 6000, img)[1] == 50


def test_resize_mode_full_resolution_and_line_overlay(tmp_path):
    sk = Translator.load(model_dir(tmp_path, "sketch", arch="resnet_gen"))
    img = np.full((301, 203), 255, np.uint8)
    cv2.rectangle(img, (40, 50), (160, 250), 0, 2)
    out = sk.translate_array(img)
    assert out.shape == (301, 203, 3) and out.dtype == np.uint8
    assert (out[img == 0] == 0).all()  # the drawing's lines stay black at full resolution
    plain = Translator.load(model_dir(tmp_path, "sketch", arch="resnet_gen"), overlay_lines=False).translate_array(img)
    assert (plain[img == 0] > 0).any()


# --------------------------------------------------------------------------------------------
# files


def test_geotiff_in_geotiff_out(tmp_path):
    tr = Translator.load(model_dir(tmp_path, "nir"), tile=32, overlap=8)
    rng = np.random.default_rng(0)
    data = (rng.random((4, 70, 90)) * 4000 + 100).astype(np.uint16)
    data[:, :6, :6] = 0
    src = geotiff(tmp_path / "scene.tif", data, nodata=0, descriptions=["blue", "green", "red", "nir"])
    dst = tr.translate_file(src, tmp_path / "out" / "scene_rgb.tif", bands=["nir"])
    with rasterio.open(dst) as ds:
        assert ds.crs == CRS_UTM and ds.transform == TRANSFORM and ds.count == 3 and ds.nodata == 0
        assert ds.dtypes == ("uint8",) * 3 and ds.shape == (70, 90)
        out = ds.read()
    assert (out[:, :6, :6] == 0).all() and (out[:, 6:, :] >= 1).all() and (out[:, :, 6:] >= 1).all()
    assert sorted(os.listdir(dst.parent)) == ["scene_rgb.tif"]
    # the same by index, and as a PNG (no georeferencing), identical pixels
    png = tr.translate_file(src, tmp_path / "scene.png", bands=[4])
    np.testing.assert_array_equal(np.asarray(Image.open(png)), out.transpose(1, 2, 0))
    # the band can be found by its name without being asked
    auto = tr.translate_file(src, tmp_path / "auto.tif")
    with rasterio.open(auto) as ds:
        np.testing.assert_array_equal(ds.read(), out)


def test_file_errors_leave_nothing_behind(tmp_path):
    tr = Translator.load(model_dir(tmp_path, "nir"))
    rng = np.random.default_rng(1)
    src = geotiff(tmp_path / "six.tif", rng.integers(1, 255, (6, 40, 40)).astype(np.uint8))
    with pytest.raises(ImageError, match="6 bands.*--bands"):
        tr.translate_file(src, tmp_path / "o.tif")
    with pytest.raises(ImageError, match="band 9 out of range"):
        tr.translate_file(src, tmp_path / "o.tif", bands=[9])
    with pytest.raises(ImageError, match="2 band"):
        tr.translate_file(src, tmp_path / "o.tif", bands=[4, 3])
    with pytest.raises(ImageError, match="refusing to overwrite the input"):
        tr.translate_file(src, src, bands=[4])
    tr.translate_file(src, tmp_path / "o.tif", bands=[4])
    with pytest.raises(ImageError, match="exists"):
        tr.translate_file(src, tmp_path / "o.tif", bands=[4])
    tr.translate_file(src, tmp_path / "o.tif", bands=[4], overwrite=True)
    boom = Translator.load(model_dir(tmp_path, "nir", arch="test_boom_gen"))
    with pytest.raises(RuntimeError):
        boom.translate_file(src, tmp_path / "never.tif", bands=[4])
    assert not [p for p in os.listdir(tmp_path) if p.startswith(".") or p == "never.tif"]


def test_plain_images(tmp_path):
    th = Translator.load(model_dir(tmp_path, "thermal", arch="resnet_gen"))
    ir = (smooth(45, 70) * 255).astype(np.uint8)
    Image.fromarray(ir).save(tmp_path / "ir.jpg")
    out = th.translate_file(tmp_path / "ir.jpg", tmp_path / "ir_rgb.png")
    assert np.asarray(Image.open(out)).shape == (45, 70, 3)
    with pytest.raises(ImageError, match="band selection"):
        th.translate_file(tmp_path / "ir.jpg", tmp_path / "x.png", bands=[1])


def test_cli_colorize_with_a_translation_model(tmp_path, capsys):
    folder = model_dir(tmp_path, "nir", tile=32)
    rng = np.random.default_rng(2)
    src = geotiff(tmp_path / "scene.tif", rng.integers(1, 255, (4, 50, 60)).astype(np.uint8))
    out_dir = tmp_path / "out"
    assert main(["colorize", "--model", str(folder), str(src), "--bands", "4", "-o", str(out_dir)]) == 0
    assert "translated 1 image(s)" in capsys.readouterr().out
    with rasterio.open(out_dir / "scene.tif") as ds:
        assert ds.crs == CRS_UTM and ds.transform == TRANSFORM
    assert main(["colorize", "--model", str(folder), str(src), "-o", str(out_dir)]) == 0  # exists: skipped
    assert "skipped" in capsys.readouterr().err
    assert main(["colorize", "--model", str(folder), str(src), "-o", str(tmp_path / "o2")]) == 1
    assert "choose the input band" in capsys.readouterr().err
    assert main(["colorize", "--model", str(folder), str(src), "--bands", "x", "-o", str(out_dir)]) == 2
    assert main(["colorize", "--model", str(folder), str(src), "--bands", "4", "--band-name", "nir"]) == 2
    assert main(["colorize", "--model", str(folder), str(src), "--restore"]) == 2
    Image.fromarray(np.zeros((20, 20), np.uint8)).save(tmp_path / "g.png")
    assert main(["colorize", str(tmp_path / "g.png"), "--bands", "1", "-o", str(tmp_path / "o3")]) == 2
