"""Tests for lumachrome.data.sketchify: XDoG (Winnemoeller et al. 2012) and Canny line art."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from lumachrome.cli import main
from lumachrome.data.sketchify import (
    CannyParams,
    XDoGParams,
    canny_lines,
    sketchify,
    sketchify_files,
    to_gray_float,
    xdog,
)
from lumachrome.errors import DataError, ImageError


def square_image(h: int = 64, w: int = 80, value: int = 128) -> np.ndarray:
    """White RGB image with a gray square (rows 16..47, cols 24..55)."""
    img = np.full((h, w, 3), 255, np.uint8)
    img[16:48, 24:56] = value
    return img


def test_to_gray_float_weights_and_alpha():
    rgb = np.zeros((2, 2, 3), np.uint8)
    rgb[0, 0] = (255, 0, 0)
    rgb[0, 1] = (0, 255, 0)
    rgb[1, 0] = (0, 0, 255)
    g = to_gray_float(rgb)
    assert g.dtype == np.float32
    np.testing.assert_allclose(g[0, 0], 0.299, atol=1e-6)
    np.testing.assert_allclose(g[0, 1], 0.587, atol=1e-6)
    np.testing.assert_allclose(g[1, 0], 0.114, atol=1e-6)
    rgba = np.zeros((1, 1, 4), np.uint8)  # transparent black -> white
    assert to_gray_float(rgba)[0, 0] == pytest.approx(1.0)
    with pytest.raises(ImageError):
        to_gray_float(np.zeros((4, 4, 2), np.uint8))


def test_xdog_flat_image_is_white_and_edges_are_dark():
    assert (xdog(np.full((32, 32, 3), 200, np.uint8)) == 255).all()
    img = square_image()
    img[56:, :10] = 0  # a black patch: the 1st percentile is black, the square stays mid-gray
    lines = xdog(img)
    assert lines[60, 4] < 80  # the darkest flat area is filled (below epsilon: 1 + tanh(-phi eps) = 0.24)
    assert lines.dtype == np.uint8 and lines.shape == (64, 80)
    # the gray square's inside and the white surround stay white; its border is drawn
    assert lines[32, 40] == 255 and lines[4, 4] == 255
    border = np.concatenate([lines[15:18, 24:56].ravel(), lines[46:49, 24:56].ravel(), lines[16:48, 23:26].ravel()])
    assert (border < 64).mean() > 0.3
    assert (lines < 128).mean() < 0.15  # line art: mostly white


def test_xdog_matches_the_paper_formula():
    """S = (1+p) G_sigma - p G_{k sigma}; T = 1 if S >= eps else 1 + tanh(phi (S - eps)) (eq. 6-7),
    computed independently with scikit-image's Gaussian (same +-3 sigma kernel, mirrored borders)."""
    from skimage.filters import gaussian

    rng = np.random.default_rng(0)
    img = rng.integers(0, 256, (40, 48), dtype=np.uint8)
    p = XDoGParams(sigma=1.0, k=1.6, p=20.0, epsilon=0.3, phi=5.0, stretch=(0.0, 100.0))
    gray = img.astype(np.float64) / 255.0
    gray = (gray - gray.min()) / (gray.max() - gray.min())
    g1 = gaussian(gray, sigma=p.sigma, mode="mirror", truncate=3.0 + 1e-9, preserve_range=True)
    # OpenCV's kernel size is 2*ceil(3 sigma)+1; match the truncation of the wider kernel explicitly
    ks = 2 * int(np.ceil(3.0 * p.sigma * p.k)) + 1
    g2 = gaussian(gray, sigma=p.sigma * p.k, mode="mirror", truncate=(ks // 2) / (p.sigma * p.k), preserve_range=True)
    s = (1 + p.p) * g1 - p.p * g2
    expected = np.where(s >= p.epsilon, 1.0, 1.0 + np.tanh(p.phi * (s - p.epsilon)))
    got = xdog(img, p).astype(np.float64) / 255.0
    assert np.abs(got - expected).mean() < 0.01
    assert np.abs(got - expected).max() < 0.08


def test_sketchify_is_deterministic():
    rng = np.random.default_rng(1)
    img = rng.integers(0, 256, (50, 70, 3), dtype=np.uint8)
    for method in ("xdog", "canny"):
        a, b = sketchify(img, method), sketchify(img.copy(), method)
        assert a.dtype == np.uint8 and np.array_equal(a, b)


def test_canny_one_pixel_lines_and_thickness():
    flat = canny_lines(np.full((32, 32, 3), 90, np.uint8))
    assert (flat == 255).all()
    thin = canny_lines(square_image(value=40))
    assert set(np.unique(thin)) <= {0, 255}
    assert thin[32, 40] == 255 and thin[4, 4] == 255
    assert (thin[10:22, 30:50] == 0).any()  # top edge of the square (row 16) is found
    thick = canny_lines(square_image(value=40), thickness=3)
    assert (thick == 0).sum() > 2 * (thin == 0).sum()
    # explicit thresholds above every gradient: no lines
    assert (canny_lines(square_image(value=40), CannyParams(low=5000, high=6000)) == 255).all()


def test_bad_parameters():
    img = square_image()
    with pytest.raises(DataError, match="unknown method"):
        sketchify(img, "pencil")
    with pytest.raises(DataError, match="unknown XDoGParams"):
        xdog(img, gamma=1.0)
    with pytest.raises(DataError, match="sigma"):
        xdog(img, sigma=0)
    with pytest.raises(DataError, match="thickness"):
        canny_lines(img, thickness=0)
    with pytest.raises(DataError, match="low threshold"):
        canny_lines(img, low=50, high=10)


def test_sketchify_files_and_cli(tmp_path, capsys):
    src = tmp_path / "in"
    (src / "sub").mkdir(parents=True)
    Image.fromarray(square_image()).save(src / "a.jpg")
    Image.fromarray(square_image(value=30)).save(src / "sub" / "b.png")
    (src / "broken.png").write_bytes(b"not a png")
    out = tmp_path / "out"
    written, skipped, errors = sketchify_files([src], out, "canny")
    assert (written, skipped) == (2, 0) and len(errors) == 1 and "broken.png" in errors[0]
    assert (out / "a.png").is_file() and (out / "sub" / "b.png").is_file()
    line = np.asarray(Image.open(out / "a.png"))
    assert line.ndim == 2 and np.array_equal(line, canny_lines(np.asarray(Image.open(src / "a.jpg").convert("RGB"))))
    # existing outputs are skipped
    assert sketchify_files([src / "a.jpg"], out, "xdog") == (0, 1, [])
    # the CLI: xdog, --max-side, --overwrite
    rc = main(["data", "sketchify", str(src / "a.jpg"), "-o", str(out), "--max-side", "40", "--overwrite"])
    assert rc == 0 and "1 image" in capsys.readouterr().out
    assert Image.open(out / "a.png").size == (40, 32)
    assert main(["data", "sketchify", str(src / "a.jpg"), "-o", str(out), "--method", "pencil"]) == 2
