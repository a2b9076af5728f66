"""sRGB <-> CIE Lab (D65, 2-degree observer): the one place where Lab and its scaling live.

Conventions used everywhere in lumachrome
-----------------------------------------
* RGB is gamma-encoded sRGB in ``[0, 1]`` (float), channels first for tensors ``(*, 3, H, W)``
  and channels last for numpy arrays ``(H, W, 3)``.
* Lab is *raw* CIE Lab: ``L`` in ``[0, 100]``, ``a`` and ``b`` roughly in ``[-128, 128]``
  (the sRGB gamut spans about a in [-86, 98], b in [-108, 95]).
* Networks take raw ``L`` and return raw ``ab``; they normalise internally with
  :func:`normalize_l` / :func:`normalize_ab` / :func:`denormalize_ab` (``L_CENTER``,
  ``L_SCALE``, ``AB_SCALE``), so no other module ever scales Lab by hand.

The torch functions are differentiable, work for float32/float64 on any device and follow
scikit-image's ``rgb2lab``/``lab2rgb`` (same matrix, white point and piecewise constants). The
``*_np`` functions are the fast path for full-resolution images: the same formulas in float32,
evaluated in row chunks (flat memory at 24 MP), with ``cv2.transform`` for the matrix products and
exact numpy powers/cube roots; they agree with scikit-image to about 2e-4 in Lab (OpenCV's own
``cvtColor`` float32 interpolates the gamma curve and is off by up to ~0.6).
``benchmarks/bench_color.py`` compares the options.
"""

from __future__ import annotations

import functools

import cv2
import numpy as np
import torch

__all__ = [
    "AB_SCALE",
    "L_CENTER",
    "L_SCALE",
    "as_float_image",
    "denormalize_ab",
    "gray_from_lightness",
    "image_to_lab_np",
    "lab_to_rgb",
    "lab_to_rgb_np",
    "normalize_ab",
    "lightness",
    "normalize_l",
    "rgb_to_lab",
    "rgb_to_lab_np",
]

#: ``L`` is mapped to ``(L - L_CENTER) / L_SCALE`` in ``[-1, 1]`` inside networks.
L_CENTER = 50.0
L_SCALE = 50.0
#: ``ab`` is mapped to ``ab / AB_SCALE`` inside networks (Zhang et al. use 110).
AB_SCALE = 110.0

# sRGB (linear) -> XYZ, D65, as in scikit-image / IEC 61966-2-1.
_XYZ_FROM_RGB = (
    (0.412453, 0.357580, 0.180423),
    (0.212671, 0.715160, 0.072169),
    (0.019334, 0.119193, 0.950227),
)
_RGB_FROM_XYZ = tuple(map(tuple, np.linalg.inv(np.array(_XYZ_FROM_RGB, dtype=np.float64)).tolist()))
# Reference white D65, 2-degree observer (scikit-image's illuminant "D65", observer "2").
_WHITE_D65 = (0.95047, 1.0, 1.08883)
# CIE constants: f(t) = t^(1/3) above (6/29)^3, else t * (29/6)^2 / 3 + 4/29.
_EPS = 0.008856
_KAPPA = 7.787  # (29/6)^2 / 3 rounded as in scikit-image


def _check_channels(x: torch.Tensor, name: str) -> None:
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{name}: expected a torch.Tensor, got {type(x).__name__}")
    if x.dim() < 3 or x.shape[-3] != 3:
        raise ValueError(f"{name}: expected shape (*, 3, H, W), got {tuple(x.shape)}")
    if not x.is_floating_point():
        raise ValueError(f"{name}: expected a floating point tensor, got {x.dtype}")


def _matrix(m, like: torch.Tensor) -> torch.Tensor:
    return torch.tensor(m, dtype=like.dtype, device=like.device)


def _apply_matrix(m: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    # x: (*, 3, H, W); out[..., i, h, w] = sum_j m[i, j] x[..., j, h, w]
    return torch.einsum("ij,...jhw->...ihw", m, x)


def rgb_to_lab(rgb: torch.Tensor) -> torch.Tensor:
    """Convert sRGB to CIE Lab (D65).

    Args:
        rgb: ``(*, 3, H, W)`` float tensor, gamma-encoded sRGB in ``[0, 1]``.

    Returns:
        ``(*, 3, H, W)`` tensor of the same dtype/device: ``L`` in ``[0, 100]``, ``a, b`` raw.
    """
    _check_channels(rgb, "rgb_to_lab")
    # sRGB companding (IEC 61966-2-1); clamp inside pow keeps gradients finite.
    lin = torch.where(
        rgb > 0.04045,
        ((rgb.clamp(min=0.04045) + 0.055) / 1.055) ** 2.4,
        rgb / 12.92,
    )
    xyz = _apply_matrix(_matrix(_XYZ_FROM_RGB, rgb), lin)
    white = torch.tensor(_WHITE_D65, dtype=rgb.dtype, device=rgb.device).view(3, 1, 1)
    t = xyz / white
    f = torch.where(t > _EPS, t.clamp(min=_EPS) ** (1.0 / 3.0), _KAPPA * t + 16.0 / 116.0)
    fx, fy, fz = f.unbind(dim=-3)
    L = 116.0 * fy - 16.0
    a = 500.0 * (fx - fy)
    b = 200.0 * (fy - fz)
    return torch.stack((L, a, b), dim=-3)


def lab_to_rgb(lab: torch.Tensor, clip: bool = True) -> torch.Tensor:
    """Convert CIE Lab (D65) to sRGB.

    Args:
        lab: ``(*, 3, H, W)`` float tensor, ``L`` in ``[0, 100]``, raw ``a, b``.
        clip: clamp the result to ``[0, 1]`` (colours outside the sRGB gamut are clipped).

    Returns:
        ``(*, 3, H, W)`` gamma-encoded sRGB, in ``[0, 1]`` when ``clip``.

    Matches scikit-image's ``lab2rgb`` except for very out-of-gamut input with
    ``b > 200 (L + 16) / 116`` (negative Z), which scikit-image clips to ``Z = 0`` (with a warning)
    before converting and this function does not.
    """
    _check_channels(lab, "lab_to_rgb")
    L, a, b = lab.unbind(dim=-3)
    fy = (L + 16.0) / 116.0
    fx = fy + a / 500.0
    fz = fy - b / 200.0
    f = torch.stack((fx, fy, fz), dim=-3)
    # Inverse of f: t = f^3 above 6/29 (f^3 > eps), else (f - 16/116) / kappa.
    t = torch.where(f > 0.2068966, f**3, (f - 16.0 / 116.0) / _KAPPA)
    white = torch.tensor(_WHITE_D65, dtype=lab.dtype, device=lab.device).view(3, 1, 1)
    xyz = t * white
    lin = _apply_matrix(_matrix(_RGB_FROM_XYZ, lab), xyz)
    rgb = torch.where(
        lin > 0.0031308,
        1.055 * lin.clamp(min=0.0031308) ** (1.0 / 2.4) - 0.055,
        12.92 * lin,
    )
    return rgb.clamp(0.0, 1.0) if clip else rgb


def normalize_l(L: torch.Tensor) -> torch.Tensor:
    """Raw ``L`` in ``[0, 100]`` -> network input in ``[-1, 1]``."""
    return (L - L_CENTER) / L_SCALE


def normalize_ab(ab: torch.Tensor) -> torch.Tensor:
    """Raw ``ab`` -> network scale (``ab / AB_SCALE``, about ``[-1, 1]``)."""
    return ab / AB_SCALE


def denormalize_ab(ab_n: torch.Tensor) -> torch.Tensor:
    """Network-scale ``ab`` -> raw ``ab``."""
    return ab_n * AB_SCALE


# --- numpy fast path ---------------------------------------------------------------------------
# Same formulas as the torch functions above, evaluated in float32 on row chunks of about
# ``_CHUNK_PIXELS`` pixels so that the temporaries stay in cache and memory stays flat at 24 MP
# (only the output array is full size). The two 3x3 (3x4 with offset) matrix products run through
# ``cv2.transform``; powers and cube roots are exact numpy ufuncs, not OpenCV's interpolated gamma
# tables (``cv2.cvtColor`` float32 differs from scikit-image by up to ~0.6 in a/b).
_CHUNK_PIXELS = 1 << 16

_XYZ_FROM_RGB_NP = np.array(_XYZ_FROM_RGB, dtype=np.float64)
_WHITE_NP = np.array(_WHITE_D65, dtype=np.float64)
# linear RGB -> XYZ / white (the white point division folded into the matrix)
_M_RGB_TO_T = (_XYZ_FROM_RGB_NP / _WHITE_NP[:, None]).astype(np.float32)
# f = (fx, fy, fz) -> (L, a, b) = (116 fy - 16, 500 (fx - fy), 200 (fy - fz)); last column: offset
_M_F_TO_LAB = np.array(
    [[0.0, 116.0, 0.0, -16.0], [500.0, -500.0, 0.0, 0.0], [0.0, 200.0, -200.0, 0.0]], dtype=np.float32
)
# (L, a, b) -> f = (fx, fy, fz) with fy = (L + 16) / 116, fx = fy + a / 500, fz = fy - b / 200
_M_LAB_TO_F = np.array(
    [
        [1.0 / 116.0, 1.0 / 500.0, 0.0, 16.0 / 116.0],
        [1.0 / 116.0, 0.0, 0.0, 16.0 / 116.0],
        [1.0 / 116.0, 0.0, -1.0 / 200.0, 16.0 / 116.0],
    ],
    dtype=np.float32,
)
# XYZ / white -> linear RGB (the white point multiplication folded into the matrix)
_M_T_TO_RGB = (np.array(_RGB_FROM_XYZ, dtype=np.float64) * _WHITE_NP[None, :]).astype(np.float32)


def _srgb_to_linear64(v: np.ndarray) -> np.ndarray:
    """Exact sRGB decoding in float64 (used to build the integer lookup tables)."""
    return np.where(v > 0.04045, ((v + 0.055) / 1.055) ** 2.4, v / 12.92)


@functools.lru_cache(maxsize=2)
def _linear_lut(bits: int) -> np.ndarray:
    """float32 table: integer code (uint8 / uint16) -> linear sRGB, exact in float64."""
    n = (1 << bits) - 1
    return _srgb_to_linear64(np.arange(n + 1, dtype=np.float64) / n).astype(np.float32)


def _check_hw3(a: np.ndarray, name: str) -> None:
    if not isinstance(a, np.ndarray):
        raise TypeError(f"{name}: expected a numpy array, got {type(a).__name__}")
    if a.ndim != 3 or a.shape[2] != 3:
        raise ValueError(f"{name}: expected shape (H, W, 3), got {a.shape}")


def _prepare_out(out: np.ndarray | None, shape: tuple[int, ...], name: str) -> np.ndarray:
    if out is None:
        return np.empty(shape, dtype=np.float32)
    if (
        not isinstance(out, np.ndarray)
        or out.shape != shape
        or out.dtype != np.float32
        or not out.flags.c_contiguous
    ):
        raise ValueError(f"{name}: out must be a C-contiguous float32 array of shape {shape}")
    return out


def _row_chunks(h: int, w: int):
    """Row slices of about ``_CHUNK_PIXELS`` pixels (none for an empty image)."""
    if h == 0 or w == 0:
        return
    rows = max(1, _CHUNK_PIXELS // w)
    for r0 in range(0, h, rows):
        yield slice(r0, min(h, r0 + rows))


def rgb_to_lab_np(rgb: np.ndarray, *, out: np.ndarray | None = None) -> np.ndarray:
    """Fast path: sRGB ``(H, W, 3)`` -> float32 CIE Lab ``(H, W, 3)`` (D65, as :func:`rgb_to_lab`).

    Args:
        rgb: ``(H, W, 3)`` gamma-encoded sRGB: float (any precision, clipped to ``[0, 1]``),
            ``uint8`` (``/ 255``) or ``uint16`` (``/ 65535``). Integer inputs are decoded through
            an exact lookup table.
        out: optional C-contiguous float32 ``(H, W, 3)`` array to write into; it may be ``rgb``
            itself (in-place conversion of a float32 image).

    Returns:
        float32 ``(H, W, 3)``: ``L`` in ``[0, 100]``, raw ``a, b``. Agrees with scikit-image's
        ``rgb2lab`` (float64) to about 2e-4 (float32 rounding); see ``benchmarks/bench_color.py``.

    Works in row chunks of about 65k pixels: besides ``out`` it needs only a few MB.
    """
    _check_hw3(rgb, "rgb_to_lab_np")
    lut = None
    if rgb.dtype == np.uint8:
        lut = _linear_lut(8)
    elif rgb.dtype == np.uint16:
        lut = _linear_lut(16)
    elif not np.issubdtype(rgb.dtype, np.floating):
        raise ValueError(f"rgb_to_lab_np: unsupported dtype {rgb.dtype} (use float, uint8 or uint16)")
    h, w, _ = rgb.shape
    out = _prepare_out(out, (h, w, 3), "rgb_to_lab_np")
    for rows in _row_chunks(h, w):
        if lut is not None:
            lin = np.take(lut, rgb[rows])
        else:
            c = rgb[rows].astype(np.float32)  # always a copy: safe when out is rgb
            np.clip(c, 0.0, 1.0, out=c)
            # sRGB decoding (IEC 61966-2-1)
            lin = c + np.float32(0.055)
            lin *= np.float32(1.0 / 1.055)
            np.power(lin, np.float32(2.4), out=lin)
            small = c <= np.float32(0.04045)
            np.multiply(c, np.float32(1.0 / 12.92), out=c)
            np.copyto(lin, c, where=small)
        t = cv2.transform(lin, _M_RGB_TO_T)  # XYZ / white
        # CIE f(t): cube root above eps, linear below
        f = np.cbrt(t)
        small = t <= np.float32(_EPS)
        t *= np.float32(_KAPPA)
        t += np.float32(16.0 / 116.0)
        np.copyto(f, t, where=small)
        cv2.transform(f, _M_F_TO_LAB, dst=out[rows])
    return out


def lab_to_rgb_np(lab: np.ndarray, *, out: np.ndarray | None = None) -> np.ndarray:
    """Fast path: CIE Lab ``(H, W, 3)`` -> float32 sRGB ``(H, W, 3)`` clipped to ``[0, 1]``.

    Args:
        lab: float ``(H, W, 3)``, ``L`` in ``[0, 100]``, raw ``a, b`` (any float precision).
        out: optional C-contiguous float32 ``(H, W, 3)`` array to write into; it may be ``lab``
            itself (in-place conversion of a float32 Lab image).

    Returns:
        float32 ``(H, W, 3)`` gamma-encoded sRGB in ``[0, 1]``. Same formulas as
        :func:`lab_to_rgb` with ``clip=True`` (out-of-gamut colours are clipped in linear RGB,
        which gives the same result as clipping after encoding); agrees with scikit-image's
        ``lab2rgb`` on in-gamut colours to about 1e-5.
    """
    _check_hw3(lab, "lab_to_rgb_np")
    if not np.issubdtype(lab.dtype, np.floating):
        raise ValueError(f"lab_to_rgb_np: expected a float array, got {lab.dtype}")
    h, w, _ = lab.shape
    out = _prepare_out(out, (h, w, 3), "lab_to_rgb_np")
    for rows in _row_chunks(h, w):
        c = lab[rows]
        if c.dtype != np.float32:
            c = c.astype(np.float32)
        f = cv2.transform(c, _M_LAB_TO_F)  # a new array: safe when out is lab
        # inverse of f: f^3 above 6/29, else (f - 16/116) / kappa
        t = f * f
        t *= f
        small = f <= np.float32(0.2068966)
        f -= np.float32(16.0 / 116.0)
        f *= np.float32(1.0 / _KAPPA)
        np.copyto(t, f, where=small)
        lin = cv2.transform(t, _M_T_TO_RGB)
        np.clip(lin, 0.0, 1.0, out=lin)
        # sRGB encoding
        enc = np.power(lin, np.float32(1.0 / 2.4))
        enc *= np.float32(1.055)
        enc -= np.float32(0.055)
        small = lin <= np.float32(0.0031308)
        lin *= np.float32(12.92)
        np.copyto(enc, lin, where=small)
        out[rows] = enc
    return out


def as_float_image(image: np.ndarray, name: str = "image", clip: bool = True) -> np.ndarray:
    """Validate an ``(H, W)`` / ``(H, W, 1)`` / ``(H, W, 3)`` image and return float32 in [0, 1].

    uint8 / uint16 are scaled by their maximum. Floats are taken as [0, 1]: with ``clip`` they are
    clipped (NaN -> 0, inf -> 0 or 1, a copy); without, a float32 array is returned as it is (no copy,
    for the full-resolution colorizer path). Errors start with ``name``.

    Raises:
        TypeError: not a numpy array.  ValueError: wrong shape, empty or unsupported dtype.
    """
    if not isinstance(image, np.ndarray):
        raise TypeError(f"{name}: expected a numpy array, got {type(image).__name__}")
    if image.ndim == 3 and image.shape[2] == 1:
        image = image[:, :, 0]
    if not (image.ndim == 2 or (image.ndim == 3 and image.shape[2] == 3)):
        raise ValueError(f"{name}: expected an (H, W) or (H, W, 3) image, got shape {image.shape}")
    if min(image.shape[:2]) < 1:
        raise ValueError(f"{name}: expected a non-empty image, got shape {image.shape}")
    if image.dtype == np.uint8:
        return image.astype(np.float32) * np.float32(1 / 255)
    if image.dtype == np.uint16:
        return image.astype(np.float32) * np.float32(1 / 65535)
    if not np.issubdtype(image.dtype, np.floating):
        raise ValueError(f"{name}: expected a float image in [0, 1] (or uint8/uint16), got dtype {image.dtype}")
    x = np.asarray(image, dtype=np.float32)
    if not clip:
        return x
    return np.clip(np.nan_to_num(x, nan=0.0, posinf=1.0, neginf=0.0), 0.0, 1.0)


# --------------------------------------------------------------------------------------------
# lightness only (numpy): CIE L of sRGB images and back, without building full Lab arrays.
# For a gray pixel (R = G = B) Y is the linear value itself, so gray_from_lightness inverts lightness
# exactly: gray sRGB with that lightness has a = b = 0.
# --------------------------------------------------------------------------------------------
_Y_FROM_RGB = np.array(_XYZ_FROM_RGB[1], dtype=np.float32)


def _linear(v: np.ndarray) -> np.ndarray:
    return np.where(v > 0.04045, ((v + 0.055) / 1.055) ** 2.4, v / 12.92).astype(np.float32)


def lightness(image: np.ndarray) -> np.ndarray:
    """CIE ``L`` in ``[0, 100]`` of an sRGB image.

    Args:
        image: ``(H, W)`` gray or ``(H, W, 3)`` sRGB (float in [0, 1], uint8 or uint16).

    Returns:
        float32 ``(H, W)``; equals ``rgb_to_lab_np(image)[..., 0]`` to about 1e-4.
    """
    x = as_float_image(image)
    if x.ndim == 2:
        y = _linear(x)
    else:
        y = _linear(x) @ _Y_FROM_RGB
    f = np.where(y > _EPS, np.cbrt(y), _KAPPA * y + np.float32(16 / 116))
    return (np.float32(116) * f - np.float32(16)).astype(np.float32)


def gray_from_lightness(L: np.ndarray, channels: int = 1) -> np.ndarray:
    """Gray sRGB with lightness ``L``: the inverse of :func:`lightness` for ``a = b = 0``.

    Args:
        L: ``(H, W)`` raw lightness (clipped to ``[0, 100]``).
        channels: 1 -> ``(H, W)``; 3 -> ``(H, W, 3)`` (three equal channels).

    Returns:
        float32 gray sRGB in ``[0, 1]``.
    """
    L = np.clip(np.asarray(L, dtype=np.float32), 0.0, 100.0)
    f = (L + np.float32(16)) / np.float32(116)
    y = np.where(f > 0.2068966, f * f * f, (f - np.float32(16 / 116)) / np.float32(_KAPPA))
    y = np.clip(y, 0.0, 1.0)
    v = np.where(y > 0.0031308, 1.055 * np.power(y, 1 / 2.4) - 0.055, 12.92 * y)
    v = np.clip(v, 0.0, 1.0).astype(np.float32)
    if channels == 3:
        return np.repeat(v[:, :, None], 3, axis=2)
    if channels != 1:
        raise ValueError(f"gray_from_lightness: channels must be 1 or 3, got {channels}")
    return v


def image_to_lab_np(image: np.ndarray) -> np.ndarray:
    """float32 ``(h, w, 3)`` Lab of an RGB ``(h, w, 3)`` or gray ``(h, w)`` sRGB float image in [0, 1]."""
    if image.ndim == 2:
        image = np.repeat(image[:, :, None], 3, axis=2)
    return rgb_to_lab_np(image)
