"""Tests for lumachrome.flatfill (one flat colour per closed line-art region) and ``colorize --flat``."""

from __future__ import annotations

import time

import cv2
import numpy as np
import pytest
from PIL import Image

from lumachrome.cli import main
from lumachrome.flatfill import MAX_CLUTTER, default_gap, flat_fill, flat_fill_info, is_clean_line_art, line_art_clutter


def drawing(size: int = 200, gap: int = 0, thickness: int = 2) -> np.ndarray:
    """White page: a closed circle (left), a rectangle (right) with a ``gap``-px opening in its top edge
    (none when 0), and a small closed square inside the circle."""
    img = np.full((size, size), 255, np.uint8)
    cv2.circle(img, (55, 100), 40, 0, thickness, lineType=cv2.LINE_AA)
    cv2.rectangle(img, (50, 90), (62, 102), 0, 1)
    cv2.rectangle(img, (110, 60), (180, 150), 0, thickness)
    if gap:
        img[60 - thickness : 60 + thickness + 1, 140 : 140 + gap] = 255
    return img


def bleeding_prediction(size: int = 200, seed: int = 0) -> np.ndarray:
    """A soft, noisy "network" colour: red around the circle, blue around the rectangle, each blurred
    far past its outline into the page and the other shape, plus per-pixel noise."""
    rng = np.random.default_rng(seed)
    c = np.full((size, size, 3), 0.93, np.float32)
    yy, xx = np.mgrid[:size, :size]
    red = np.exp(-(((xx - 55) ** 2 + (yy - 100) ** 2) / (2 * 38.0**2)))[..., None]
    blue = np.exp(-(((xx - 145) ** 2 + (yy - 105) ** 2) / (2 * 42.0**2)))[..., None]
    c = c * (1 - red) + np.array([0.85, 0.15, 0.1], np.float32) * red
    c = c * (1 - blue) + np.array([0.1, 0.25, 0.85], np.float32) * blue
    c += rng.normal(0, 0.06, c.shape).astype(np.float32)
    return np.clip(c, 0, 1).astype(np.float32)


def inside(img: np.ndarray, mask_fn) -> np.ndarray:
    yy, xx = np.mgrid[: img.shape[0], : img.shape[1]]
    return mask_fn(yy, xx)


def unique_colours(out: np.ndarray, mask: np.ndarray) -> np.ndarray:
    return np.unique(out[mask].reshape(-1, 3), axis=0)


def test_each_closed_region_is_one_colour_and_lines_stay_black():
    img = drawing()
    pred = bleeding_prediction()
    info = flat_fill_info(img, pred, gap=2, background="white")
    out = info.image
    assert out.shape == (200, 200, 3) and out.dtype == np.float32
    u8 = np.rint(out * 255).astype(np.uint8)
    # away from the (anti-aliased) lines, every region is exactly one colour
    far = cv2.distanceTransform((img >= 250).astype(np.uint8), cv2.DIST_L2, 5) > 2
    ring = inside(img, lambda y, x: ((x - 55) ** 2 + (y - 100) ** 2 < 37**2) & ~((x >= 49) & (x <= 63) & (y >= 89) & (y <= 103))) & far
    rect = inside(img, lambda y, x: (x > 112) & (x < 178) & (y > 62) & (y < 148)) & far
    square = inside(img, lambda y, x: (x > 50) & (x < 62) & (y > 90) & (y < 102)) & far
    page = inside(img, lambda y, x: ((x - 55) ** 2 + (y - 100) ** 2 > 43**2) & ~((x >= 107) & (x <= 183) & (y >= 57) & (y <= 153))) & far
    for m in (ring, rect, square, page):
        assert len(unique_colours(u8, m)) == 1
    ring_c, rect_c, page_c = u8[ring][0].astype(int), u8[rect][0].astype(int), u8[page][0]
    assert ring_c[0] > ring_c[2] + 60 and rect_c[2] > rect_c[0] + 60  # red circle, blue rectangle
    assert (page_c == 255).all()  # white paper stays white (background="white")
    # lines: exactly the input's grey value
    lines = info.lines
    assert lines.sum() > 500
    assert (u8[lines] == img[lines][:, None]).all()
    assert (u8[img == 0] == 0).all()


def test_gap_up_to_gap_px_is_closed_a_larger_one_leaks():
    pred = bleeding_prediction()
    rect = inside(np.zeros((200, 200)), lambda y, x: (x > 115) & (x < 175) & (y > 65) & (y < 145))
    for opening in (1, 2, 3, 4):
        info = flat_fill_info(drawing(gap=opening), pred, gap=4)
        assert info.labels[130, 145] != info.background, opening  # closed: not the paper
        out = np.rint(info.image * 255).astype(np.uint8)
        assert out[130, 145, 2] > out[130, 145, 0] + 60  # and blue
        assert len(unique_colours(out, rect)) == 1
    info = flat_fill_info(drawing(gap=12), pred, gap=4)
    assert info.labels[130, 145] == info.background  # 12 px > 4 px: the rectangle leaks into the page
    info = flat_fill_info(drawing(gap=3), pred, gap=2)
    assert info.labels[130, 145] == info.background  # 3 px > gap=2


def test_background_fill_and_auto_and_uint8_io():
    img = drawing()
    pred = bleeding_prediction()
    pred_u8 = np.rint(pred * 255).astype(np.uint8)
    out = flat_fill(img, pred_u8, gap=2, background="fill")
    assert out.dtype == np.uint8
    assert not (out[5, 5] == 255).all()  # the paper got its (light grey) median
    assert 180 < int(out[5, 5, 0]) < 250  # the page median: light, pulled a little by the bleed
    auto = flat_fill(img, np.full_like(pred_u8, 240), gap=2)  # the default: auto
    assert (auto[5, 5] == 255).all()  # predicted light grey: the paper stays white
    tinted = pred_u8.copy()
    tinted[..., 2] = 40  # a strongly yellow page: filled
    assert not (flat_fill(img, tinted, gap=2)[5, 5] == 255).all()
    with pytest.raises(ValueError):
        flat_fill(img, pred, background="green")
    with pytest.raises(ValueError):
        flat_fill(img, pred[:10])


def test_specks_take_the_nearest_region_colour_and_thin_shapes_survive_the_gap_closing():
    img = np.full((120, 120), 255, np.uint8)
    cv2.rectangle(img, (10, 10), (110, 110), 0, 1)
    cv2.rectangle(img, (30, 30), (33, 33), 0, 1)  # a 2x2 speck region inside
    cv2.rectangle(img, (60, 40), (63, 100), 0, 1)  # a 2 px wide, 59 px tall closed strip
    pred = np.full((120, 120, 3), 0.2, np.float32)
    pred[..., 0] = 0.9  # red everywhere ...
    pred[31:33, 31:33] = (0.0, 0.9, 0.0)  # ... the speck predicted green
    pred[41:100, 61:63] = (0.0, 0.0, 0.9)  # the strip predicted blue
    out = flat_fill(img, pred, gap=6)
    assert (np.abs(out[31:33, 31:33] - out[50, 20]) < 1e-6).all()  # the speck: its neighbour's red
    assert out[70, 61, 2] > 0.8 and out[70, 61, 0] < 0.1  # the strip: its own (blue), not swallowed


def test_default_gap_scales_with_size_and_2000px_is_fast():
    assert default_gap((256, 256)) == 2 and default_gap((2000, 1500)) == 16
    rng = np.random.default_rng(1)
    img = np.full((2000, 2000), 255, np.uint8)
    for _ in range(40):
        cv2.circle(img, tuple(int(v) for v in rng.integers(0, 2000, 2)), int(rng.integers(30, 400)), 0, 4)
    pred = rng.random((2000, 2000, 3), dtype=np.float32)
    flat_fill(img[:200, :200], pred[:200, :200])  # warm-up
    t = time.perf_counter()
    out = flat_fill(img, pred)
    took = time.perf_counter() - t
    assert out.shape == (2000, 2000, 3)
    assert took < 3.0, took  # ~0.4 s on one thread; generous for a shared CI machine


def test_cli_flat_with_the_shipped_sketch_model(tmp_path, capsys):
    src = tmp_path / "draw.png"
    Image.fromarray(drawing(160)).save(src)
    out = tmp_path / "flat.png"
    assert main(["colorize", "--model", "sketch", "--flat", str(src), "-o", str(out), "--device", "cpu", "-q"]) == 0
    res = np.asarray(Image.open(out).convert("RGB"))
    assert res.shape == (160, 160, 3)
    img = drawing(160)
    assert (res[img == 0] == 0).all()  # lines black
    far = cv2.distanceTransform((img >= 250).astype(np.uint8), cv2.DIST_L2, 5) > 3
    rect = inside(img, lambda y, x: (x > 112) & (x < 178) & (y > 62) & (y < 148))[:160, :160] & far
    assert len(unique_colours(res, rect)) == 1
    assert (res[3, 3] == 255).all()  # white paper
    # plain output differs (soft colours), and a folder works too
    folder = tmp_path / "in"
    folder.mkdir()
    Image.fromarray(drawing(128, gap=1)).save(folder / "a.png")
    Image.fromarray(drawing(128)).save(folder / "b.png")
    assert main(["colorize", "--model", "sketch", "--flat", str(folder), "-o", str(tmp_path / "outs"), "--device", "cpu", "-q"]) == 0
    assert sorted(p.name for p in (tmp_path / "outs").iterdir()) == ["a.png", "b.png"]


def test_cli_flat_with_a_non_sketch_model_is_a_usage_error(tmp_path, capsys):
    src = tmp_path / "draw.png"
    Image.fromarray(drawing(64)).save(src)
    capsys.readouterr()
    for model in ("photo", "thermal"):
        assert main(["colorize", "--model", model, "--flat", str(src), "-o", str(tmp_path / f"{model}.png")]) == 2
        err = capsys.readouterr().err
        assert "flat fill is for line-art (sketch) models" in err and "Traceback" not in err
        assert len(err.strip().splitlines()) <= 2
    assert not any(tmp_path.glob("photo*")) and not any(tmp_path.glob("thermal*"))


def test_translator_flat_refuses_other_domains(tmp_path):
    from lumachrome.errors import ConfigError
    from lumachrome.translate import Translator

    tr = Translator.load("thermal", device="cpu")
    assert not tr.supports_flat
    with pytest.raises(ConfigError):
        tr.translate_array(np.zeros((32, 32), np.uint8), flat=True)
    sk = Translator.load("sketch", device="cpu")
    assert sk.supports_flat
    out = sk.translate_array(drawing(96), flat=True)
    assert out.dtype == np.uint8 and out.shape == (96, 96, 3)


def edge_map(name: str = "astronaut", method: str = "canny") -> np.ndarray:
    """A scikit-image photo as line art, the way ``data sketchify`` makes the sketch packs' photo pairs."""
    import skimage.data

    from lumachrome.data.sketchify import sketchify

    return sketchify(getattr(skimage.data, name)(), method)


def test_clutter_tells_line_art_from_edge_maps_at_any_resolution():
    clean = drawing(200)
    assert line_art_clutter(clean) < MAX_CLUTTER and is_clean_line_art(clean)
    # measured at the model's working size: the same drawing 4x larger measures the same
    big = cv2.resize(clean, (800, 800), interpolation=cv2.INTER_LINEAR)
    assert abs(line_art_clutter(big) - line_art_clutter(clean)) < 0.01
    for name in ("astronaut", "coffee", "chelsea"):
        for method in ("xdog", "canny"):
            e = edge_map(name, method)
            assert line_art_clutter(e) > MAX_CLUTTER + 0.05, (name, method)
            assert not is_clean_line_art(e)
    # degenerate pages: blank (no line) and all ink
    assert line_art_clutter(np.full((50, 50), 255, np.uint8)) == 0.0
    assert line_art_clutter(np.zeros((50, 50), np.uint8)) == 1.0


def test_translator_flat_falls_back_on_edge_maps(recwarn):
    from lumachrome.errors import LumachromeWarning
    from lumachrome.translate import Translator

    sk = Translator.load("sketch", device="cpu")
    e = cv2.resize(edge_map(), (192, 192), interpolation=cv2.INTER_AREA)
    plain = sk.translate_array(e)  # the network's colours times the drawing's lines
    with pytest.warns(LumachromeWarning, match=r"page\.png: flat fill skipped.*edge map"):
        auto = sk.translate_array(e, flat=True, where="page.png")
    raw = Translator.load("sketch", device="cpu", overlay_lines=False).translate_array(e)
    assert np.array_equal(auto, raw)  # the network's own colours, no lines multiplied over them
    assert not np.array_equal(auto, plain)
    notes: list[str] = []
    assert np.array_equal(sk.translate_array(e, flat=True, notes=notes), raw) and "flat fill skipped" in notes[0]
    forced = sk.translate_array(e, flat="always")
    assert not np.array_equal(forced, plain)
    lines = e < 128
    assert (forced[lines] == e[lines][:, None]).all()  # flat fill keeps the drawing's own lines
    recwarn.clear()
    clean = sk.translate_array(drawing(96), flat=True)  # clean line art: filled, no warning
    assert np.array_equal(clean, sk.translate_array(drawing(96), flat="always"))
    assert not [w for w in recwarn if issubclass(w.category, LumachromeWarning)]
    from lumachrome.errors import ConfigError

    with pytest.raises(ConfigError, match="flat"):
        sk.translate_array(drawing(96), flat="sometimes")


def test_cli_flat_warns_and_keeps_colours_on_edge_maps(tmp_path, capsys):
    src = tmp_path / "photo_edges.png"
    Image.fromarray(edge_map("coffee", "xdog")).save(src)
    capsys.readouterr()
    assert main(["colorize", "--model", "sketch", "--flat", str(src), "-o", str(tmp_path / "a.png"), "--device", "cpu", "-q"]) == 0
    err = capsys.readouterr().err
    assert "warning" in err and "flat fill skipped" in err and str(src) in err and "Traceback" not in err
    assert main(["colorize", "--model", "sketch", str(src), "-o", str(tmp_path / "plain.png"), "--device", "cpu", "-q"]) == 0
    assert not np.array_equal(np.asarray(Image.open(tmp_path / "a.png")), np.asarray(Image.open(tmp_path / "plain.png")))
    assert main(["colorize", "--model", "sketch", "--flat-always", str(src), "-o", str(tmp_path / "b.png"), "--device", "cpu",
                 "-q"]) == 0  # fmt: skip
    assert "flat fill skipped" not in capsys.readouterr().err
    assert not np.array_equal(np.asarray(Image.open(tmp_path / "b.png")), np.asarray(Image.open(tmp_path / "plain.png")))
