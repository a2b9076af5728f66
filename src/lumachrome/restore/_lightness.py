"""CIE lightness of sRGB images and back, without building full Lab arrays.

Same constants as :mod:`lumachrome.color.lab` (scikit-image's ``rgb2lab``: D65, ``Y_white = 1``):
``L = 116 f(Y) - 16`` with ``f(t) = t^(1/3)`` above ``0.008856``, else ``7.787 t + 16/116``, and
``Y = 0.212671 R + 0.715160 G + 0.072169 B`` on linear sRGB. For a gray pixel (``R = G = B``)
``Y`` is the linear value itself, so :func:`gray_from_lightness` inverts :func:`lightness` exactly:
gray sRGB with that lightness has ``a = b = 0``.
"""

from __future__ import annotations

import numpy as np

from lumachrome.color.lab import as_float_image

__all__ = ["as_float_image", "gray_from_lightness", "lightness"]

_Y_FROM_RGB = np.array([0.212671, 0.715160, 0.072169], dtype=np.float32)
_EPS = 0.008856
_KAPPA = 7.787


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
