"""Tests for lumachrome.imageio: every bad-input case, every supported mode, atomic saving."""

from __future__ import annotations

import io
import os
import struct
import time
import zlib
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image, ImageFile, ImageOps

from lumachrome.errors import ImageError, LumachromeError
from lumachrome.imageio import (
    DEFAULT_MAX_PIXELS,
    IMAGE_EXTENSIONS,
    apply_orientation,
    find_images,
    load_image,
    probe_image,
    read_rgb_uint8,
    save_image,
)


def colour(h: int = 48, w: int = 64, seed: int = 0) -> np.ndarray:
    """A smooth colourful uint8 (h, w, 3) test picture (compresses well, survives JPEG)."""
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    r = 127 + 120 * np.sin(x / 7.0 + seed)
    g = 127 + 120 * np.cos(y / 5.0)
    b = 127 + 120 * np.sin((x + y) / 9.0)
    return np.stack([r, g, b], axis=-1).round().astype(np.uint8)


def write(path: Path, arr: np.ndarray, mode: str | None = None, **kw) -> Path:
    im = Image.fromarray(arr)
    (im if mode is None else im.convert(mode)).save(path, **kw)
    return path


def patch_png_size(src: bytes, width: int, height: int) -> bytes:
    """Rewrite the IHDR width/height of a PNG (and its CRC): a header-only "huge" image."""
    b = bytearray(src)
    assert b[12:16] == b"IHDR"
    b[16:24] = struct.pack(">II", width, height)
    b[29:33] = struct.pack(">I", zlib.crc32(bytes(b[12:29])))
    return bytes(b)


def small_png_bytes() -> bytes:
    buf = io.BytesIO()
    Image.fromarray(colour(16, 16)).save(buf, format="PNG")
    return buf.getvalue()


def assert_one_line(exc: pytest.ExceptionInfo, path: Path | str, *words: str) -> None:
    msg = str(exc.value)
    assert "\n" not in msg
    assert str(path) in msg
    for w in words:
        assert w in msg, msg


# ------------------------------------------------------------------------------------------
# bad inputs


def test_missing_path(tmp_path):
    p = tmp_path / "nope.jpg"
    with pytest.raises(ImageError) as e:
        load_image(p)
    assert_one_line(e, p, "no such file")
    assert isinstance(e.value, LumachromeError)


def test_directory_is_not_an_image(tmp_path):
    with pytest.raises(ImageError) as e:
        load_image(tmp_path)
    assert_one_line(e, tmp_path, "directory")


def test_zero_byte_file(tmp_path):
    p = tmp_path / "empty.png"
    p.touch()
    with pytest.raises(ImageError) as e:
        load_image(p)
    assert_one_line(e, p, "empty")


def test_text_file_named_jpg(tmp_path):
    p = tmp_path / "notes.jpg"
    p.write_text("this is not a JPEG\n" * 10)
    with pytest.raises(ImageError) as e:
        load_image(p)
    assert_one_line(e, p, "not an image")


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "WEBP"])
@pytest.mark.parametrize("keep", [0.3, 0.9])
def test_truncated_files(tmp_path, fmt, keep):
    full = tmp_path / f"full.{fmt.lower()}"
    Image.fromarray(colour(96, 128)).save(full, format=fmt)
    data = full.read_bytes()
    p = tmp_path / f"cut.{fmt.lower()}"
    p.write_bytes(data[: int(len(data) * keep)])
    with pytest.raises(ImageError) as e:
        load_image(p)
    assert_one_line(e, p)
    assert "truncated" in str(e.value) or "corrupt" in str(e.value)


def test_truncated_raises_even_if_pillow_told_to_load_truncated(tmp_path, monkeypatch):
    full = tmp_path / "full.jpg"
    Image.fromarray(colour(96, 128)).save(full)
    p = tmp_path / "cut.jpg"
    p.write_bytes(full.read_bytes()[:-200])
    monkeypatch.setattr(ImageFile, "LOAD_TRUNCATED_IMAGES", True)
    with pytest.raises(ImageError, match="truncated"):
        load_image(p)
    assert ImageFile.LOAD_TRUNCATED_IMAGES is True  # restored for other code


def test_truncated_16bit_png(tmp_path):
    full = tmp_path / "full16.png"
    save_image(full, colour(64, 64) / 255.0, bit_depth=16)
    p = tmp_path / "cut16.png"
    p.write_bytes(full.read_bytes()[: full.stat().st_size // 2])
    with pytest.raises(ImageError) as e:
        load_image(p)
    assert_one_line(e, p, "16-bit")


def test_too_small(tmp_path):
    p = write(tmp_path / "dot.png", np.zeros((1, 1, 3), np.uint8))
    with pytest.raises(ImageError) as e:
        load_image(p)
    assert_one_line(e, p, "too small", "1x1")
    p7 = write(tmp_path / "thin.png", np.zeros((7, 100, 3), np.uint8))
    with pytest.raises(ImageError, match="too small"):
        load_image(p7)
    assert load_image(p7, min_side=4).rgb.shape == (7, 100, 3)


def test_decompression_bomb_rejected_from_header(tmp_path):
    p = tmp_path / "bomb.png"
    p.write_bytes(patch_png_size(small_png_bytes(), 30000, 30000))  # 900 MP declared, 100 bytes on disk
    t0 = time.perf_counter()
    with pytest.raises(ImageError) as e:
        load_image(p)
    assert time.perf_counter() - t0 < 0.5  # rejected before decoding / allocating 2.7 GB
    assert_one_line(e, p, "too large")
    with pytest.raises(ImageError, match="too large"):
        probe_image(p)


def test_size_limit_accepts_big_photos_and_scans(tmp_path):
    # 24 MP camera photo and a ~96 MP scan pass the header check; a custom limit rejects.
    for w, h in [(6000, 4000), (12000, 8000)]:
        p = tmp_path / f"{w}x{h}.png"
        p.write_bytes(patch_png_size(small_png_bytes(), w, h))
        assert probe_image(p).size == (w, h)
    assert 12000 * 8000 <= DEFAULT_MAX_PIXELS < 30000 * 30000
    p = tmp_path / "small.png"
    p.write_bytes(small_png_bytes())
    with pytest.raises(ImageError, match="too large"):
        load_image(p, max_pixels=100)
    assert load_image(p, max_pixels=None).rgb.shape == (16, 16, 3)


def test_load_never_modifies_input(tmp_path):
    p = tmp_path / "rot.jpg"
    im = Image.fromarray(colour(40, 60))
    exif = im.getexif()
    exif[0x0112] = 6
    im.save(p, exif=exif)
    before = (p.read_bytes(), p.stat().st_mtime_ns)
    load_image(p)
    read_rgb_uint8(p, draft_size=8)
    probe_image(p)
    assert (p.read_bytes(), p.stat().st_mtime_ns) == before


# ------------------------------------------------------------------------------------------
# modes


def test_rgb_png_exact_and_ranges(tmp_path):
    a = colour()
    img = load_image(write(tmp_path / "c.png", a))
    assert img.rgb.dtype == np.float32 and img.rgb.shape == (48, 64, 3)
    assert img.rgb.min() >= 0.0 and img.rgb.max() <= 1.0
    np.testing.assert_array_equal(np.rint(img.rgb * 255).astype(np.uint8), a)
    assert img.alpha is None and img.bit_depth == 8 and img.mode == "RGB" and not img.was_gray
    assert img.size == (64, 48) and img.path == tmp_path / "c.png"


def test_rgba_keeps_alpha(tmp_path):
    a = colour()
    alpha = np.tile(np.linspace(0, 255, 64).round().astype(np.uint8), (48, 1))
    p = tmp_path / "a.png"
    Image.fromarray(np.dstack([a, alpha]), "RGBA").save(p)
    img = load_image(p)
    assert img.mode == "RGBA" and img.alpha is not None and img.alpha.shape == (48, 64)
    np.testing.assert_allclose(img.alpha, alpha / 255.0, atol=1e-6)
    np.testing.assert_allclose(img.rgb, a / 255.0, atol=1e-6)


def test_gray_modes(tmp_path):
    g = colour()[..., 1]
    for mode in ["L", "1"]:
        p = tmp_path / f"g_{mode}.png"
        Image.fromarray(g).convert(mode).save(p)
        img = load_image(p)
        assert img.mode == mode and img.was_gray and img.rgb.shape == (48, 64, 3)
        np.testing.assert_array_equal(img.rgb[..., 0], img.rgb[..., 2])
    p = tmp_path / "la.png"
    Image.fromarray(np.dstack([g, 255 - g]), "LA").save(p)
    img = load_image(p)
    assert img.mode == "LA" and img.was_gray
    np.testing.assert_allclose(img.alpha, (255 - g) / 255.0, atol=1e-6)
    np.testing.assert_allclose(img.rgb[..., 1], g / 255.0, atol=1e-6)


def test_palette_with_and_without_transparency(tmp_path):
    a = colour()
    pal = Image.fromarray(a).quantize(16)
    p = tmp_path / "p.png"
    pal.save(p)
    img = load_image(p)
    assert img.mode == "P" and img.alpha is None and not img.was_gray
    np.testing.assert_allclose(img.rgb, np.asarray(pal.convert("RGB")) / 255.0, atol=1e-6)
    pt = tmp_path / "pt.png"
    pal.save(pt, transparency=0)
    img = load_image(pt)
    assert img.alpha is not None
    index = np.asarray(pal)
    np.testing.assert_array_equal(img.alpha == 0, index == 0)
    pa = tmp_path / "p.gif"
    pal.save(pa, transparency=3)
    assert load_image(pa).alpha is not None


def test_cmyk_jpeg(tmp_path):
    a = colour()
    p = tmp_path / "cmyk.jpg"
    Image.fromarray(a).convert("CMYK").save(p, quality=95)
    img = load_image(p)
    assert img.mode == "CMYK" and img.rgb.shape == (48, 64, 3)
    assert np.abs(img.rgb * 255 - a).mean() < 6


def test_16bit_gray_png(tmp_path):
    g = (np.arange(48 * 64).reshape(48, 64) * 21).astype(np.uint16)
    p = tmp_path / "g16.png"
    Image.fromarray(g).save(p)
    img = load_image(p)
    assert img.bit_depth == 16 and img.mode.startswith("I") and img.was_gray
    np.testing.assert_allclose(img.rgb[..., 0] * 65535.0, g, atol=0.02)
    # 16 bits survive: neighbouring values differ by 21/65535, far below one 8-bit step
    assert len(np.unique(img.rgb[..., 0])) == g.size


@pytest.mark.parametrize("ext", [".png", ".tif"])
def test_16bit_rgb_round_trip(tmp_path, ext):
    rng = np.random.default_rng(1)
    q = rng.integers(0, 65536, size=(40, 56, 3), dtype=np.uint16)
    alpha = rng.integers(0, 65536, size=(40, 56), dtype=np.uint16)
    p = save_image(tmp_path / f"c16{ext}", q / 65535.0, alpha=alpha / 65535.0, bit_depth=16)
    img = load_image(p)
    assert img.bit_depth == 16 and not img.was_gray
    np.testing.assert_array_equal(np.rint(img.rgb.astype(np.float64) * 65535).astype(np.uint16), q)
    np.testing.assert_array_equal(np.rint(img.alpha.astype(np.float64) * 65535).astype(np.uint16), alpha)
    # OpenCV (an independent reader) sees the same 16-bit values
    ref = cv2.imread(str(p), cv2.IMREAD_UNCHANGED)
    assert ref.dtype == np.uint16
    np.testing.assert_array_equal(ref[..., 2::-1], q)


def test_16bit_rgb_png_written_by_opencv(tmp_path):
    q = (np.random.default_rng(2).integers(0, 65536, size=(20, 30, 3))).astype(np.uint16)
    p = tmp_path / "cv16.png"
    cv2.imwrite(str(p), q[..., ::-1])
    img = load_image(p)
    assert img.bit_depth == 16 and img.mode == "RGB"
    np.testing.assert_allclose(img.rgb.astype(np.float64) * 65535, q, atol=0.02)
    u8, gray = read_rgb_uint8(p)
    assert u8.dtype == np.uint8 and not gray
    assert np.abs(u8.astype(int) - q / 257.0).max() <= 0.51


def test_float_tiff(tmp_path):
    f = np.linspace(0, 1, 48 * 64, dtype=np.float32).reshape(48, 64)
    p = tmp_path / "f.tif"
    Image.fromarray(f, "F").save(p)
    img = load_image(p)
    assert img.mode == "F" and img.was_gray
    np.testing.assert_allclose(img.rgb[..., 0], f, atol=1e-6)


def test_exif_orientation_6_rotates(tmp_path):
    a = colour(40, 60)
    a[:5, :5] = [255, 0, 0]  # red marker in the stored top-left corner
    p = tmp_path / "rot.jpg"
    im = Image.fromarray(a)
    exif = im.getexif()
    exif[0x0112] = 6  # "rotate 90 CW to display"
    im.save(p, exif=exif, quality=95)
    img = load_image(p)
    assert img.rgb.shape == (60, 40, 3)
    # stored top-left ends up at the displayed top-right
    assert img.rgb[1, -2, 0] > 0.8 and img.rgb[1, -2, 1] < 0.2
    assert read_rgb_uint8(p)[0].shape == (60, 40, 3)


@pytest.mark.parametrize("orientation", range(1, 9))
def test_apply_orientation_matches_pillow(orientation):
    a = colour(6, 10)
    im = Image.fromarray(a)
    exif = im.getexif()
    exif[0x0112] = orientation
    buf = io.BytesIO()
    im.save(buf, format="PNG", exif=exif)
    expected = np.asarray(ImageOps.exif_transpose(Image.open(io.BytesIO(buf.getvalue()))))
    np.testing.assert_array_equal(apply_orientation(a, orientation), expected)


def test_was_gray_detection(tmp_path):
    g = colour()[..., 0]
    rgb = np.stack([g, g, g], axis=-1)
    assert load_image(write(tmp_path / "g.png", rgb)).was_gray
    rgb2 = rgb.copy()
    rgb2[3, 5, 2] = (int(rgb2[3, 5, 2]) + 40) % 256  # one coloured pixel, off the sampling grid
    assert not load_image(write(tmp_path / "g2.png", rgb2)).was_gray
    # lossy WebP of a grey image adds +-1 channel noise (chroma subsampling): still grey
    noisy = np.random.default_rng(0).integers(0, 256, size=(64, 64), dtype=np.uint8)
    p = write(tmp_path / "g.webp", np.stack([noisy] * 3, axis=-1), quality=80)
    assert np.asarray(Image.open(p)).std(axis=-1).max() > 0  # the channels really differ
    assert load_image(p).was_gray
    assert load_image(write(tmp_path / "g.jpg", rgb)).was_gray
    assert not load_image(write(tmp_path / "c.webp", colour(), quality=80)).was_gray


def test_jpeg_draft_decodes_smaller(tmp_path):
    p = write(tmp_path / "big.jpg", colour(400, 640))
    full = read_rgb_uint8(p)[0]
    small = read_rgb_uint8(p, draft_size=90)[0]
    assert full.shape == (400, 640, 3)
    assert small.shape == (100, 160, 3)  # 1/4 scale: both sides stay >= 90
    assert load_image(p, draft_size=90).rgb.shape == (100, 160, 3)


# ------------------------------------------------------------------------------------------
# saving


@pytest.mark.parametrize("ext,tol", [(".png", 0), (".bmp", 0), (".tif", 0), (".tiff", 0), (".jpg", 8), (".jpeg", 8), (".webp", 10)])
def test_save_round_trip(tmp_path, ext, tol):
    a = colour()
    p = save_image(tmp_path / f"out{ext}", a / 255.0)
    img = load_image(p)
    assert img.rgb.shape == a.shape
    assert np.abs(img.rgb * 255 - a).mean() <= max(tol / 2, 0.01)
    assert np.abs(img.rgb * 255 - a).max() <= tol + 0.01 or tol > 0
    assert [f.name for f in tmp_path.iterdir()] == [f"out{ext}"]  # no temp file left
    assert p.stat().st_mode & 0o777 == 0o666 & ~_umask()


def _umask() -> int:
    old = os.umask(0)
    os.umask(old)
    return old


def test_save_alpha_by_format(tmp_path):
    a, alpha = colour() / 255.0, np.full((48, 64), 0.5, np.float32)
    for ext in [".png", ".webp", ".tif"]:
        img = load_image(save_image(tmp_path / f"a{ext}", a, alpha=alpha, quality=100))
        assert img.alpha is not None and abs(float(img.alpha.mean()) - 0.5) < 0.01
    for ext in [".jpg", ".bmp"]:  # documented: alpha is dropped
        assert load_image(save_image(tmp_path / f"a{ext}", a, alpha=alpha)).alpha is None


def test_save_clips_and_handles_nan_and_gray(tmp_path):
    a = np.full((10, 12, 3), 2.0, np.float32)
    a[0, 0] = np.nan
    a[1, 1] = -3
    img = load_image(save_image(tmp_path / "x.png", a))
    assert img.rgb[0, 0, 0] == 0.0 and img.rgb[1, 1, 0] == 0.0 and img.rgb[5, 5, 0] == 1.0
    g = np.linspace(0, 1, 120, dtype=np.float32).reshape(10, 12)
    img = load_image(save_image(tmp_path / "g.png", g))
    assert img.mode == "L" and img.was_gray


def test_save_jpeg_16bit_falls_back_to_8(tmp_path):
    img = load_image(save_image(tmp_path / "x.jpg", colour() / 255.0, bit_depth=16))
    assert img.bit_depth == 8


def test_save_creates_parent_folders(tmp_path):
    p = save_image(tmp_path / "a" / "b" / "c.png", colour() / 255.0)
    assert p.is_file()


def test_save_bad_arguments(tmp_path):
    with pytest.raises(ImageError, match="extension"):
        save_image(tmp_path / "x.gifx", colour() / 255.0)
    with pytest.raises(ImageError, match="extension"):
        save_image(tmp_path / "noext", colour() / 255.0)
    with pytest.raises(ImageError, match="shape"):
        save_image(tmp_path / "x.png", np.zeros((4, 4, 4)))
    with pytest.raises(ImageError, match="bit_depth"):
        save_image(tmp_path / "x.png", colour() / 255.0, bit_depth=12)
    with pytest.raises(ImageError, match="alpha"):
        save_image(tmp_path / "x.png", colour() / 255.0, alpha=np.zeros((3, 3)))
    assert list(tmp_path.iterdir()) == []


def test_save_unwritable_targets(tmp_path):
    # Works as root too: a parent that is an existing *file* cannot be created or written into.
    blocker = tmp_path / "file.txt"
    blocker.write_text("x")
    with pytest.raises(ImageError) as e:
        save_image(blocker / "out.png", colour() / 255.0)
    assert_one_line(e, blocker / "out.png", "cannot")
    folder = tmp_path / "folder.png"  # the target itself is a folder
    folder.mkdir()
    with pytest.raises(ImageError, match="directory"):
        save_image(folder, colour() / 255.0)
    assert blocker.read_text() == "x" and list(folder.iterdir()) == []


@pytest.mark.skipif(hasattr(os, "geteuid") and os.geteuid() == 0, reason="root ignores folder permissions")
def test_save_read_only_folder(tmp_path):
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    try:
        with pytest.raises(ImageError, match="cannot"):
            save_image(ro / "x.png", colour() / 255.0)
    finally:
        ro.chmod(0o700)


def test_failed_encode_keeps_existing_file_and_leaves_no_temp(tmp_path):
    target = tmp_path / "keep.webp"
    save_image(target, colour() / 255.0)
    before = target.read_bytes()
    too_wide = np.zeros((8, 16400, 3), np.float32)  # WebP's limit is 16383 px: the encoder fails
    with pytest.raises(ImageError) as e:
        save_image(target, too_wide)
    assert_one_line(e, target, "cannot save")
    assert target.read_bytes() == before
    assert [f.name for f in tmp_path.iterdir()] == ["keep.webp"]


def test_interrupted_save_leaves_no_partial_file(tmp_path, monkeypatch):
    target = tmp_path / "keep.png"
    save_image(target, colour() / 255.0)
    before = target.read_bytes()

    def half_write(self, fp, *args, **kwargs):
        fp.write(b"\x89PNG partial")
        raise KeyboardInterrupt

    monkeypatch.setattr(Image.Image, "save", half_write)
    with pytest.raises(KeyboardInterrupt):
        save_image(target, colour(seed=3) / 255.0)
    assert target.read_bytes() == before
    assert [f.name for f in tmp_path.iterdir()] == ["keep.png"]


def test_save_never_overwrites_input_on_failure(tmp_path):
    src = write(tmp_path / "in.png", colour())
    before = src.read_bytes()
    img = load_image(src)
    with pytest.raises(ImageError):
        save_image(src, img.rgb[..., :2])  # bad shape: nothing written
    assert src.read_bytes() == before


# ------------------------------------------------------------------------------------------
# find_images


@pytest.fixture()
def tree(tmp_path):
    a = colour(16, 16)
    for rel in ["b.png", "a.jpg", "sub/c.webp", "sub/deep/d.PNG", ".hidden.png", ".git/e.png", "notes.txt", "sub/f.tiff"]:
        p = tmp_path / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        if rel.endswith(".txt"):
            p.write_text("x")
        else:
            Image.fromarray(a).save(p, format={"jpg": "JPEG", "png": "PNG", "webp": "WEBP", "tiff": "TIFF"}[p.suffix[1:].lower()])
    return tmp_path


def test_find_images_folder_recursive_sorted_no_hidden(tree):
    found = [p.relative_to(tree).as_posix() for p in find_images([tree])]
    assert found == ["a.jpg", "b.png", "sub/c.webp", "sub/deep/d.PNG", "sub/f.tiff"]
    flat = [p.relative_to(tree).as_posix() for p in find_images([tree], recursive=False)]
    assert flat == ["a.jpg", "b.png"]
    assert {".bmp", ".jpg", ".jpeg", ".png", ".tif", ".tiff", ".webp"} <= IMAGE_EXTENSIONS


def test_find_images_files_and_globs(tree):
    # an explicit file is taken whatever its extension; duplicates are dropped; order follows inputs
    found = find_images([tree / "notes.txt", str(tree / "*.png"), str(tree / "**" / "*.webp"), tree / "b.png"])
    assert [p.name for p in found] == ["notes.txt", "b.png", "c.webp"]
    assert find_images(tree / "a.jpg") == [tree / "a.jpg"]


def test_find_images_errors(tree):
    with pytest.raises(ImageError) as e:
        find_images([tree / "missing"])
    assert_one_line(e, tree / "missing", "no such file or directory")
    empty = tree / "empty"
    empty.mkdir()
    (empty / "readme.txt").write_text("x")
    with pytest.raises(ImageError) as e:
        find_images([empty])
    assert_one_line(e, empty, "no images")
    with pytest.raises(ImageError, match="no images match"):
        find_images([str(tree / "*.gif")])


def test_16bit_gray_alpha_png(tmp_path):
    # hand-written PNG, colour type 4 (grey + alpha), 16 bits: Pillow would reduce it to 8 bits
    h, w = 10, 12
    g = (np.arange(h * w).reshape(h, w) * 500).astype(np.uint16)
    a = np.full((h, w), 40000, np.uint16)
    px = np.dstack([g, a]).astype(">u2")
    raw = b"".join(b"\x00" + px[y].tobytes() for y in range(h))

    def chunk(tag: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data))

    p = tmp_path / "la16.png"
    ihdr = struct.pack(">IIBBBBB", w, h, 16, 4, 0, 0, 0)
    p.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))
    img = load_image(p)
    assert img.bit_depth == 16 and img.was_gray
    np.testing.assert_allclose(img.rgb[..., 1].astype(np.float64) * 65535, g, atol=0.02)
    np.testing.assert_allclose(img.alpha.astype(np.float64) * 65535, a, atol=0.02)
