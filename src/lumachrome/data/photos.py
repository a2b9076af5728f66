"""Training data from any folder tree of colour photographs.

:class:`ColorFolderDataset` decodes images on the fly (Pillow/OpenCV through
:mod:`lumachrome.imageio`), crops them and returns raw CIE Lab planes:

* training: random-resized crop (area fraction in ``[min_scale, 1]``, aspect ratio in
  ``[3/4, 4/3]``) and a random horizontal flip, all drawn from torch's RNG (so
  ``torch.manual_seed`` and DataLoader worker seeding make it reproducible);
* validation: deterministic centre square crop resized to ``size`` (the same pixels as
  "resize the short side to ``size``, then centre crop").

Unreadable files (any :class:`~lumachrome.errors.ImageError`) and greyscale images are skipped
and counted, never fatal: ``__getitem__`` then returns another image. Because DataLoader workers
each hold a copy of the dataset, their ``skipped`` counters do not reach the main process; call
:meth:`ColorFolderDataset.scan` once before building the DataLoader to find (and drop) bad files
up front and get the counts.

The helpers here (crop boxes, resizing, :func:`rgb_uint8_to_sample`) are shared with
:mod:`lumachrome.data.pack`.
"""

from __future__ import annotations

import math
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import cv2
import numpy as np
import torch
from torch.utils.data import Dataset

from lumachrome.color.lab import rgb_to_lab_np
from lumachrome.errors import DataError, ImageError
from lumachrome.imageio import find_images, probe_image, read_rgb_uint8

__all__ = [
    "ColorFolderDataset",
    "ScanReport",
    "center_square_box",
    "crop_resize",
    "random_resized_crop_box",
    "rgb_uint8_to_sample",
    "spread_indices",
]

_LOG_RATIO = (math.log(3.0 / 4.0), math.log(4.0 / 3.0))


# --------------------------------------------------------------------------------------------
# crops shared with data.pack


def random_resized_crop_box(
    height: int,
    width: int,
    min_scale: float,
    max_scale: float = 1.0,
    log_ratio: tuple[float, float] = _LOG_RATIO,
    generator: torch.Generator | None = None,
) -> tuple[int, int, int, int]:
    """Random crop box ``(top, left, h, w)``: area fraction in ``[min_scale, max_scale]``,
    aspect ratio ``w/h`` log-uniform in ``exp(log_ratio)`` (Inception-style crop).

    Tries 10 draws; falls back to the largest centred box with the ratio clamped to the range.
    Uses torch's RNG (``generator`` or the global one).
    """
    area = float(height * width)
    for _ in range(10):
        u = torch.rand(4, generator=generator).tolist()
        target = area * (min_scale + (max_scale - min_scale) * u[0])
        ratio = math.exp(log_ratio[0] + (log_ratio[1] - log_ratio[0]) * u[1])
        w = int(round(math.sqrt(target * ratio)))
        h = int(round(math.sqrt(target / ratio)))
        if 0 < w <= width and 0 < h <= height:
            top = min(int(u[2] * (height - h + 1)), height - h)
            left = min(int(u[3] * (width - w + 1)), width - w)
            return top, left, h, w
    # fallback: whole image, aspect ratio clamped into range, centred
    in_ratio = width / height
    lo, hi = math.exp(log_ratio[0]), math.exp(log_ratio[1])
    if in_ratio < lo:
        w, h = width, int(round(width / lo))
    elif in_ratio > hi:
        h, w = height, int(round(height * hi))
    else:
        w, h = width, height
    h, w = max(1, min(h, height)), max(1, min(w, width))
    return (height - h) // 2, (width - w) // 2, h, w


def center_square_box(height: int, width: int) -> tuple[int, int, int, int]:
    """Largest centred square ``(top, left, side, side)``."""
    side = min(height, width)
    return (height - side) // 2, (width - side) // 2, side, side


def crop_resize(img: np.ndarray, box: tuple[int, int, int, int], size: int) -> np.ndarray:
    """Crop ``box`` from an ``(H, W, 3)`` uint8 image and resize it to ``(size, size, 3)``.

    INTER_AREA when shrinking (anti-aliased), bilinear when enlarging.
    """
    top, left, h, w = box
    crop = img[top : top + h, left : left + w]
    if h == size and w == size:
        return np.ascontiguousarray(crop)
    interp = cv2.INTER_AREA if (h >= size and w >= size) else cv2.INTER_LINEAR
    return cv2.resize(np.ascontiguousarray(crop), (size, size), interpolation=interp)


def rgb_uint8_to_sample(rgb: np.ndarray) -> dict[str, torch.Tensor]:
    """``(S, S, 3)`` uint8 sRGB -> ``{"L": (1,S,S), "ab": (2,S,S), "rgb": (3,S,S)}`` float32.

    ``L`` is raw CIE L in ``[0, 100]``, ``ab`` raw a/b, ``rgb`` in ``[0, 1]``
    (conversion by :func:`lumachrome.color.lab.rgb_to_lab_np`).
    """
    # numpy only: tiny torch ops cost milliseconds each when torch's and OpenCV's thread pools
    # compete for the cores of a DataLoader worker.
    lab = rgb_to_lab_np(rgb)  # (S, S, 3) float32
    L = np.ascontiguousarray(lab[:, :, 0][None])
    ab = np.ascontiguousarray(lab[:, :, 1:].transpose(2, 0, 1))
    rgb_f = np.empty((3,) + rgb.shape[:2], dtype=np.float32)
    np.multiply(rgb.transpose(2, 0, 1), np.float32(1.0 / 255.0), out=rgb_f)
    return {"L": torch.from_numpy(L), "ab": torch.from_numpy(ab), "rgb": torch.from_numpy(rgb_f)}


# --------------------------------------------------------------------------------------------
# dataset


@dataclass
class ScanReport:
    """Result of :meth:`ColorFolderDataset.scan`.

    ``total`` files examined, ``usable`` kept, ``unreadable`` (ImageError: truncated, not an
    image, too small/large...), ``gray`` (single-channel or equal channels); ``problems`` lists
    ``(path, reason)`` for every skipped file.
    """

    total: int
    usable: int
    unreadable: int
    gray: int
    problems: list[tuple[Path, str]] = field(default_factory=list)

    @property
    def skipped(self) -> int:
        return self.unreadable + self.gray


def _roots(root: str | os.PathLike | Sequence[str | os.PathLike]) -> list[Path]:
    if isinstance(root, (str, os.PathLike)):
        return [Path(root)]
    return [Path(r) for r in root]


def spread_indices(n_total: int, n_keep: int) -> np.ndarray:
    """``n_keep`` evenly spaced indices into ``range(n_total)`` (deterministic subset)."""
    return np.unique(np.linspace(0, n_total - 1, n_keep).round().astype(np.int64))


class ColorFolderDataset(Dataset):
    """Colour photos from a folder tree, as raw Lab training samples.

    Args:
        root: a folder (or a list of folders) scanned recursively for image files
            (:data:`lumachrome.imageio.IMAGE_EXTENSIONS`, hidden files skipped); sorted, so the
            index is deterministic.
        size: output side ``S`` in pixels.
        train: random-resized crop + flip when True, centre crop when False.
        min_scale: smallest crop area fraction for the training crop.
        flip: random horizontal flip (training only).
        max_files: keep an evenly spaced subset of at most this many files.

    Each item is ``{"L": (1,S,S), "ab": (2,S,S), "rgb": (3,S,S)}`` float32: raw L in [0, 100],
    raw ab, sRGB in [0, 1].

    Attributes:
        files: the indexed image paths.
        skipped: number of distinct files this process found unusable while sampling.
        bad: ``{index: reason}`` for those files (they are not decoded again).

    Raises:
        DataError: a root does not exist or no images were found.
    """

    def __init__(
        self,
        root: str | os.PathLike | Sequence[str | os.PathLike],
        size: int = 256,
        train: bool = True,
        min_scale: float = 0.5,
        flip: bool = True,
        max_files: int | None = None,
    ) -> None:
        if size < 8:
            raise DataError(f"ColorFolderDataset: size must be at least 8, got {size}")
        if not 0.0 < min_scale <= 1.0:
            raise DataError(f"ColorFolderDataset: min_scale must be in (0, 1], got {min_scale}")
        self.roots = _roots(root)
        files: list[Path] = []
        for r in self.roots:
            if not r.is_dir():
                raise DataError(f"{r}: dataset folder does not exist" if not r.exists() else f"{r}: not a folder")
            try:
                files.extend(find_images([r]))
            except ImageError as exc:
                raise DataError(str(exc)) from None
        if max_files is not None and len(files) > max_files:
            if max_files < 1:
                raise DataError(f"ColorFolderDataset: max_files must be >= 1, got {max_files}")
            files = [files[i] for i in spread_indices(len(files), max_files)]
        self.files = files
        self.size = int(size)
        self.train = bool(train)
        self.min_scale = float(min_scale)
        self.flip = bool(flip)
        self.skipped = 0
        self.bad: dict[int, str] = {}
        # JPEGs are decoded at a reduced scale while the short side stays large enough that the
        # smallest training crop (sqrt(min_scale) of each side) still has >= size pixels.
        self._draft = self.size if not self.train else int(math.ceil(self.size / math.sqrt(self.min_scale)))
        self._step = self._coprime_step(len(files))

    @staticmethod
    def _coprime_step(n: int) -> int:
        # Retry order after a bad file: a golden-ratio stride coprime with n visits every index
        # once and jumps away from the bad file's folder (which may hold more bad files).
        step = max(1, int(n * 0.618)) | 1
        while math.gcd(step, n) != 1:
            step += 1
        return step

    def __len__(self) -> int:
        return len(self.files)

    def _mark_bad(self, index: int, reason: str) -> None:
        if index not in self.bad:
            self.bad[index] = reason
            self.skipped += 1

    def load_rgb(self, index: int) -> np.ndarray:
        """Decode file ``index`` to uint8 ``(H, W, 3)``; raises ImageError (also for grey images)."""
        rgb, was_gray = read_rgb_uint8(self.files[index], draft_size=self._draft)
        if was_gray:
            raise ImageError(f"{self.files[index]}: greyscale image (no colour to learn)")
        return rgb

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        n = len(self.files)
        if not -n <= index < n:
            raise IndexError(f"ColorFolderDataset index {index} out of range for {n} files")
        index %= n
        for attempt in range(n):
            j = (index + attempt * self._step) % n
            if j in self.bad:
                continue
            try:
                rgb = self.load_rgb(j)
            except ImageError as exc:
                self._mark_bad(j, str(exc))
                continue
            return rgb_uint8_to_sample(self._crop(rgb))
        raise DataError(f"{self.roots[0]}: none of the {n} images is a readable colour image")

    def _crop(self, rgb: np.ndarray) -> np.ndarray:
        h, w = rgb.shape[:2]
        if not self.train:
            return crop_resize(rgb, center_square_box(h, w), self.size)
        out = crop_resize(rgb, random_resized_crop_box(h, w, self.min_scale), self.size)
        if self.flip and torch.rand(()).item() < 0.5:
            out = np.ascontiguousarray(out[:, ::-1])
        return out

    def scan(self, validate: bool = True, decode: bool = False, workers: int | None = None) -> ScanReport:
        """Check every file up front and count the ones that would be skipped.

        Args:
            validate: drop unusable files from the index (so DataLoader workers created
                afterwards never meet them). With False, only count.
            decode: False checks headers only (fast, ~0.1 ms/file: missing/empty/non-image
                files, bad sizes, single-channel modes). True decodes every image (also catches
                truncated files and RGB files whose channels are equal; JPEGs use draft decoding).
            workers: threads for ``decode=True`` (default: CPU count, at most 8).

        Returns:
            :class:`ScanReport` with counts and ``(path, reason)`` for each problem.

        Raises:
            DataError: with ``validate=True``, when no usable file remains.
        """

        def check(path: Path) -> str | None:
            try:
                if decode:
                    _, was_gray = read_rgb_uint8(path, draft_size=self._draft)
                else:
                    was_gray = probe_image(path).single_channel
            except ImageError as exc:
                return "unreadable: " + str(exc)
            return "gray: greyscale image" if was_gray else None

        if decode:
            n_workers = workers or min(8, os.cpu_count() or 1)
            with ThreadPoolExecutor(max_workers=n_workers) as pool:
                reasons = list(pool.map(check, self.files))
        else:
            reasons = [check(p) for p in self.files]
        problems = [(p, r) for p, r in zip(self.files, reasons) if r is not None]
        report = ScanReport(
            total=len(self.files),
            usable=len(self.files) - len(problems),
            unreadable=sum(r.startswith("unreadable") for _, r in problems),
            gray=sum(r.startswith("gray") for _, r in problems),
            problems=problems,
        )
        if validate and problems:
            keep = [p for p, r in zip(self.files, reasons) if r is None]
            if not keep:
                raise DataError(f"{self.roots[0]}: no usable colour images ({report.total} files, all skipped)")
            self.files = keep
            self.bad = {}
            self._step = self._coprime_step(len(keep))
        return report
