"""Line art synthesised from colour images: XDoG and Canny (``lumachrome data sketchify``).

The ``sketch`` domain learns line art -> colour art. Real pairs are few (OpenMoji), so more are made
by turning colour images (manga covers, photos) into line drawings. Both methods are deterministic
(no random numbers; same input -> same bytes) and return **uint8 (H, W)** images with black lines on
white (255), like ``../shared/data/sketch/openmoji/line``.

XDoG (Winnemoeller, Kyprianidis & Olsen 2012, "XDoG: An eXtended difference-of-Gaussians
compendium including advanced image stylization", Computers & Graphics 36(6)) on the luminance
``I`` in ``[0, 1]``:

* eq. (7), the sharpened image: ``S = (1 + p) * G_sigma(I) - p * G_{k sigma}(I)``
  (``= G_sigma + p * (G_sigma - G_{k sigma})``: a flat area keeps its intensity, the dark side of
  an edge dips far below it);
* eq. (6)/(8), soft thresholding: ``T(u) = 1`` if ``u >= epsilon`` else ``1 + tanh(phi * (u - epsilon))``.

Defaults (chosen by looking at manga covers, OpenMoji and photos at 200-256 px): ``sigma = 0.8`` px,
``k = 1.6`` (the DoG ~ LoG ratio of Marr & Hildreth, as in the paper), ``p = 20``,
``epsilon = 0.1``, ``phi = 10``. Before XDoG the luminance is stretched so its 1st/99th
percentiles map to 0/1 (dim and bright images give similar line density). A flat area keeps
its intensity in ``S``, so only the darkest flat areas (below ``epsilon``) come out as black
fills (pupils, black hair), the rest is white with black edge lines. ``epsilon`` around 0.5
gives the toned "manga screen" look of the paper instead.

Canny (Canny 1986, OpenCV's implementation with the L2 gradient norm): Gaussian blur
``sigma = 1.0`` px, then hysteresis thresholds. Unless given, they are set per image from the
Sobel gradient magnitude: ``high`` = its ``high_percentile``-th percentile (default 90),
``low = 0.4 * high``. Edges are 1 px wide; ``thickness > 1`` dilates them with a square kernel.

Parameters are in pixels of the image given: line width follows the image's resolution, so
resize first to the scale you train at.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Sequence

import cv2
import numpy as np

from lumachrome.constants import REC601_LUMA
from lumachrome.errors import DataError, ImageError

__all__ = [
    "METHODS",
    "CannyParams",
    "XDoGParams",
    "canny_lines",
    "sketchify",
    "sketchify_files",
    "to_gray_float",
    "xdog",
]

METHODS = ("xdog", "canny")


@dataclass(frozen=True)
class XDoGParams:
    """XDoG parameters (Winnemoeller et al. 2012, eq. 6-8); lengths in pixels."""

    sigma: float = 0.8
    k: float = 1.6
    p: float = 20.0
    epsilon: float = 0.1
    phi: float = 10.0
    stretch: tuple[float, float] = (1.0, 99.0)


@dataclass(frozen=True)
class CannyParams:
    """Canny parameters; ``low``/``high`` None: from the gradient magnitude's percentiles."""

    sigma: float = 1.0
    low: float | None = None
    high: float | None = None
    high_percentile: float = 90.0
    low_ratio: float = 0.4
    thickness: int = 1


def to_gray_float(image: np.ndarray) -> np.ndarray:
    """Luminance in ``[0, 1]`` float32 of a uint8/uint16/float ``(H, W)`` or ``(H, W, 3|4)`` image.

    RGB uses Rec. 601 luma weights (0.299, 0.587, 0.114) on the gamma-encoded values, as OpenCV's
    ``COLOR_RGB2GRAY``; an alpha channel is composited on white.
    """
    a = np.asarray(image)
    if a.ndim not in (2, 3) or (a.ndim == 3 and a.shape[2] not in (1, 3, 4)):
        raise ImageError(f"sketchify: expected an (H, W) or (H, W, 1|3|4) image, got shape {a.shape}")
    if a.dtype == np.uint8:
        x = a.astype(np.float32) / 255.0
    elif a.dtype == np.uint16:
        x = a.astype(np.float32) / 65535.0
    elif a.dtype.kind == "f":
        x = np.clip(np.nan_to_num(a.astype(np.float32)), 0.0, 1.0)
    else:
        raise ImageError(f"sketchify: unsupported dtype {a.dtype}")
    if x.ndim == 3:
        if x.shape[2] == 4:
            alpha = x[:, :, 3:4]
            x = x[:, :, :3] * alpha + (1.0 - alpha)
        if x.shape[2] == 1:
            x = x[:, :, 0]
        else:
            x = x[:, :, 0] * REC601_LUMA[0] + x[:, :, 1] * REC601_LUMA[1] + x[:, :, 2] * REC601_LUMA[2]
    return np.ascontiguousarray(x, dtype=np.float32)


def _blur(x: np.ndarray, sigma: float) -> np.ndarray:
    # kernel +-3 sigma (odd size); reflect-101 borders (no dark frame at the image edge)
    ksize = max(3, 2 * int(np.ceil(3.0 * sigma)) + 1)
    return cv2.GaussianBlur(x, (ksize, ksize), sigmaX=sigma, sigmaY=sigma, borderType=cv2.BORDER_REFLECT_101)


def _check_positive(name: str, value: float) -> None:
    if not (isinstance(value, (int, float)) and np.isfinite(value) and value > 0):
        raise DataError(f"sketchify: {name} must be a positive number, got {value!r}")


def xdog(image: np.ndarray, params: XDoGParams | None = None, **overrides: Any) -> np.ndarray:
    """XDoG line art: uint8 ``(H, W)``, black lines on white (see the module docstring).

    Args:
        image: ``(H, W)`` or ``(H, W, 3|4)`` uint8/uint16/float in ``[0, 1]``.
        params: :class:`XDoGParams`; keyword ``overrides`` replace single fields.
    """
    p = _params(XDoGParams, params, overrides)
    for name in ("sigma", "k", "phi"):
        _check_positive(name, getattr(p, name))
    gray = to_gray_float(image)
    lo_q, hi_q = p.stretch
    lo, hi = np.percentile(gray, [lo_q, hi_q]) if gray.size else (0.0, 1.0)
    if hi - lo > 1e-3:  # a flat image stays as it is
        gray = np.clip((gray - lo) / (hi - lo), 0.0, 1.0)
    g1 = _blur(gray, p.sigma)
    g2 = _blur(gray, p.sigma * p.k)
    s = (1.0 + p.p) * g1 - p.p * g2  # eq. (7)
    out = np.where(s >= p.epsilon, 1.0, 1.0 + np.tanh(p.phi * (s - p.epsilon)))  # eq. (6)
    return np.clip(np.rint(out * 255.0), 0, 255).astype(np.uint8)


def canny_lines(image: np.ndarray, params: CannyParams | None = None, **overrides: Any) -> np.ndarray:
    """Canny edges as line art: uint8 ``(H, W)``, black 1 px (or ``thickness`` px) lines on white."""
    p = _params(CannyParams, params, overrides)
    _check_positive("sigma", p.sigma)
    if not isinstance(p.thickness, int) or p.thickness < 1:
        raise DataError(f"sketchify: thickness must be an integer >= 1, got {p.thickness!r}")
    gray = np.clip(np.rint(to_gray_float(image) * 255.0), 0, 255).astype(np.uint8)
    blurred = _blur(gray, p.sigma)
    high, low = p.high, p.low
    if high is None:
        gx = cv2.Sobel(blurred, cv2.CV_32F, 1, 0, ksize=3)
        gy = cv2.Sobel(blurred, cv2.CV_32F, 0, 1, ksize=3)
        mag = np.sqrt(gx * gx + gy * gy)
        high = float(np.percentile(mag, p.high_percentile)) if mag.size else 0.0
        high = max(high, 20.0)  # flat images: no edges from noise
    if low is None:
        low = p.low_ratio * high
    if low > high:
        raise DataError(f"sketchify: canny low threshold {low} is above high {high}")
    edges = cv2.Canny(blurred, float(low), float(high), L2gradient=True)
    if p.thickness > 1:
        edges = cv2.dilate(edges, np.ones((p.thickness, p.thickness), np.uint8))
    return (255 - edges).astype(np.uint8)


def _params(cls: type, params: Any, overrides: dict[str, Any]) -> Any:
    base = asdict(params if params is not None else cls())
    unknown = sorted(set(overrides) - set(base))
    if unknown:
        raise DataError(f"sketchify: unknown {cls.__name__} field(s) {unknown} (known: {sorted(base)})")
    base.update({k: v for k, v in overrides.items() if v is not None})
    if "stretch" in base:
        base["stretch"] = tuple(base["stretch"])
    return cls(**base)


def sketchify(image: np.ndarray, method: str = "xdog", **params: Any) -> np.ndarray:
    """Line art of ``image`` with ``method`` ``"xdog"`` or ``"canny"``; ``params`` as in
    :class:`XDoGParams` / :class:`CannyParams`. Returns uint8 ``(H, W)``, lines black on white."""
    if method == "xdog":
        return xdog(image, **params)
    if method == "canny":
        return canny_lines(image, **params)
    raise DataError(f"sketchify: unknown method {method!r} (use {' or '.join(METHODS)})")


def sketchify_files(
    inputs: Sequence[str | os.PathLike],
    out_dir: str | os.PathLike,
    method: str = "xdog",
    *,
    max_side: int | None = None,
    overwrite: bool = False,
    **params: Any,
) -> tuple[int, int, list[str]]:
    """Write the line art of every image in ``inputs`` (files, folders, globs) as PNG under ``out_dir``.

    Outputs keep the input's name (``.png``); images found in a folder keep their path relative to
    it. ``max_side`` resizes larger images (long side, ``INTER_AREA``) before line extraction.

    Returns:
        ``(written, skipped_existing, errors)``; errors are one-line messages (a bad file does not
        stop the run).
    """
    from lumachrome.imageio import find_images, read_rgb_uint8, save_image

    if method not in METHODS:
        raise DataError(f"sketchify: unknown method {method!r} (use {' or '.join(METHODS)})")
    out_dir = Path(out_dir)
    written = skipped = 0
    errors: list[str] = []
    for item in inputs:
        try:
            files = find_images([item])
        except ImageError as e:
            errors.append(str(e))
            continue
        base = Path(item).expanduser() if Path(item).expanduser().is_dir() else None
        for src in files:
            rel = src.relative_to(base) if base is not None else Path(src.name)
            dst = out_dir / rel.with_suffix(".png")
            if dst.exists() and not overwrite:
                skipped += 1
                continue
            try:
                rgb, _ = read_rgb_uint8(src)
                if max_side is not None and max(rgb.shape[:2]) > max_side:
                    scale = max_side / max(rgb.shape[:2])
                    h, w = (max(1, round(n * scale)) for n in rgb.shape[:2])
                    rgb = cv2.resize(rgb, (w, h), interpolation=cv2.INTER_AREA)
                save_image(dst, sketchify(rgb, method, **params))
                written += 1
            except ImageError as e:
                errors.append(str(e))
    return written, skipped, errors
