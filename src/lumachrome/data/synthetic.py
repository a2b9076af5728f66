"""Generated colour images for tests, demos and benchmarks (no external data needed).

The colours are a learnable function of the luminance structure: a scene is a smooth background
gradient ("sky" blue on top, "ground" green/brown below) with a few blobs whose hue depends on their
brightness. A colorizer trained on these can beat the gray baseline within a few dozen steps,
which is what the end-to-end tests check.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

__all__ = ["synthetic_photo", "write_synthetic_folder"]


def synthetic_photo(height: int, width: int, seed: int = 0) -> np.ndarray:
    """One generated photo-like image, float32 ``(H, W, 3)`` sRGB in ``[0, 1]``."""
    rng = np.random.default_rng(seed)
    y = np.linspace(0.0, 1.0, height, dtype=np.float32)[:, None]
    x = np.linspace(0.0, 1.0, width, dtype=np.float32)[None, :]
    horizon = rng.uniform(0.35, 0.65)
    sky = np.stack([0.35 + 0.3 * y, 0.55 + 0.3 * y, 0.95 - 0.1 * y], axis=-1) * np.ones((1, width, 1), np.float32)
    ground = np.stack([0.25 + 0.2 * y, 0.45 + 0.1 * y, 0.15 + 0.0 * y], axis=-1) * np.ones((1, width, 1), np.float32)
    wave = horizon + 0.05 * np.sin(2 * np.pi * (x * rng.uniform(0.5, 2.0) + rng.uniform()))
    img = np.where((y < wave)[..., None], sky, ground).astype(np.float32)
    for _ in range(int(rng.integers(2, 5))):
        cy, cx = rng.uniform(0.2, 0.9), rng.uniform(0.1, 0.9)
        r = rng.uniform(0.06, 0.18)
        mask = ((y - cy) ** 2 + (x - cx) ** 2) < r * r
        # Bright blobs are red/orange, dark blobs purple: colour follows from luminance and shape.
        color = np.array([0.95, 0.45, 0.15], np.float32) if rng.uniform() < 0.5 else np.array([0.35, 0.1, 0.45], np.float32)
        img[mask] = color
    img += rng.normal(0.0, 0.01, img.shape).astype(np.float32)
    return np.clip(img, 0.0, 1.0)


def write_synthetic_folder(folder: str | Path, n: int, size: int = 64, seed: int = 0, ext: str = ".png") -> list[Path]:
    """Write ``n`` generated images of ``size x size`` into ``folder`` (created); returns the paths."""
    from lumachrome.imageio import save_image

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(n):
        p = folder / f"synthetic_{i:04d}{ext}"
        save_image(p, synthetic_photo(size, size, seed=seed * 100003 + i))
        paths.append(p)
    return paths
