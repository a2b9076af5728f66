"""Colour science: sRGB <-> CIE Lab (the one place Lab scaling lives) and quantised ab bins."""

from lumachrome.color.lab import (
    AB_SCALE,
    L_CENTER,
    L_SCALE,
    lab_to_rgb,
    lab_to_rgb_np,
    normalize_ab,
    normalize_l,
    denormalize_ab,
    rgb_to_lab,
    rgb_to_lab_np,
)

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
