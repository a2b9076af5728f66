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
scikit-image's ``rgb2lab``/``lab2rgb`` (same matrix and white point). The ``*_np`` functions are the
fast path for full-resolution images (OpenCV, float32); ``benchmarks/bench_color.py`` compares them.
"""

from __future__ import annotations

import numpy as np
import torch

__all__ = [
    "AB_SCALE",
    "L_CENTER",
    "L_SCALE",
    "denormalize_ab",
    "lab_to_rgb",
    "lab_to_rgb_np",
    "normalize_ab",
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


def rgb_to_lab_np(rgb: np.ndarray) -> np.ndarray:
    """Fast path: ``(H, W, 3)`` sRGB (float in ``[0, 1]`` or uint8/uint16) -> float32 Lab ``(H, W, 3)``.

    Uses OpenCV's float32 conversion (same D65 definition, agrees with :func:`rgb_to_lab` to
    about 0.01). Integer inputs are scaled by their type's maximum first.
    """
    import cv2

    if rgb.ndim != 3 or rgb.shape[2] != 3:
        raise ValueError(f"rgb_to_lab_np: expected shape (H, W, 3), got {rgb.shape}")
    if rgb.dtype == np.uint8:
        x = rgb.astype(np.float32) * (1.0 / 255.0)
    elif rgb.dtype == np.uint16:
        x = rgb.astype(np.float32) * (1.0 / 65535.0)
    else:
        x = np.clip(rgb, 0.0, 1.0).astype(np.float32, copy=False)
    return cv2.cvtColor(x, cv2.COLOR_RGB2Lab)


def lab_to_rgb_np(lab: np.ndarray) -> np.ndarray:
    """Fast path: float Lab ``(H, W, 3)`` -> float32 sRGB ``(H, W, 3)`` clipped to ``[0, 1]``."""
    import cv2

    if lab.ndim != 3 or lab.shape[2] != 3:
        raise ValueError(f"lab_to_rgb_np: expected shape (H, W, 3), got {lab.shape}")
    rgb = cv2.cvtColor(lab.astype(np.float32, copy=False), cv2.COLOR_Lab2RGB)
    return np.clip(rgb, 0.0, 1.0, out=rgb)
