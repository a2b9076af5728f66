"""Colour reference photos, loaded once as small Lab images.

Every transfer method needs the references only as colour statistics (or, for exemplar-based
colorization, as a small image), so each one is decoded, shrunk so that its long side is at most
``max_side`` (512 px by default, ``cv2.INTER_AREA``) and kept in CIE Lab.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence, Union

import cv2
import numpy as np

from lumachrome.color.lab import as_float_image, rgb_to_lab_np
from lumachrome.errors import ConfigError, ImageError

__all__ = ["Reference", "ReferenceLike", "load_references", "pooled_samples"]

#: A reference: an image file path or an sRGB array ``(H, W, 3)`` (float [0, 1], uint8, uint16).
ReferenceLike = Union[str, os.PathLike, np.ndarray, "Reference"]


@dataclass(frozen=True)
class Reference:
    """One colour reference.

    Attributes:
        lab: float32 ``(h, w, 3)`` raw CIE Lab, long side at most ``max_side``.
        name: file name (or ``"array<i>"``).
    """

    lab: np.ndarray
    name: str

    @property
    def colourful(self) -> bool:
        """True unless the reference is (nearly) gray: 90th percentile chroma above 3."""
        chroma = np.hypot(self.lab[..., 1], self.lab[..., 2])
        return bool(np.percentile(chroma, 90) > 3.0)


def _shrink(rgb: np.ndarray, max_side: int) -> np.ndarray:
    h, w = rgb.shape[:2]
    if max(h, w) <= max_side:
        return rgb
    s = max_side / max(h, w)
    return cv2.resize(rgb, (max(1, round(w * s)), max(1, round(h * s))), interpolation=cv2.INTER_AREA)


def load_references(refs: Sequence[ReferenceLike] | ReferenceLike, max_side: int = 512) -> list[Reference]:
    """Load colour references (files, folders, globs or arrays) as :class:`Reference` objects.

    Args:
        refs: one or several image paths, folders (searched recursively), glob patterns, sRGB
            arrays or :class:`Reference` objects.
        max_side: long side of the stored Lab images.

    Returns:
        One :class:`Reference` per image, in the given order (folders sorted).

    Raises:
        ImageError: a missing or unreadable file, or a gray reference (it holds no colour).
        ConfigError: no reference given.
    """
    from lumachrome.imageio import find_images, load_image

    if isinstance(refs, (str, os.PathLike, np.ndarray, Reference)):
        refs = [refs]
    out: list[Reference] = []
    for i, ref in enumerate(refs):
        if isinstance(ref, Reference):
            out.append(ref)
            continue
        if isinstance(ref, np.ndarray):
            x = as_float_image(ref, f"reference {i}")
            if x.ndim == 2:
                raise ImageError(f"reference array {i}: a gray image holds no colour to transfer")
            out.append(Reference(rgb_to_lab_np(np.ascontiguousarray(_shrink(x, max_side))), f"array{i}"))
            continue
        for path in find_images([ref]):
            loaded = load_image(path)
            if loaded.was_gray:
                raise ImageError(f"{path}: reference is a grayscale image (it holds no colour to transfer)")
            lab = rgb_to_lab_np(np.ascontiguousarray(_shrink(loaded.rgb, max_side)))
            out.append(Reference(lab, Path(path).name))
    if not out:
        raise ConfigError("no colour reference given")
    return out


def pooled_samples(refs: Sequence[Reference], per_reference: int = 65_536) -> np.ndarray:
    """Lab pixels of all references, each contributing (at most) the same number.

    A regular stride (deterministic) picks at most ``per_reference`` pixels of each reference, so
    that a large reference does not outweigh a small one.

    Returns:
        float32 ``(N, 3)`` raw Lab.
    """
    parts = []
    for ref in refs:
        flat = ref.lab.reshape(-1, 3)
        step = max(1, int(np.ceil(flat.shape[0] / per_reference)))
        parts.append(flat[::step])
    if not parts:
        raise ConfigError("no colour reference given")
    return np.ascontiguousarray(np.concatenate(parts, axis=0), dtype=np.float32)
