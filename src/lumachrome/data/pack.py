"""Pre-decoded image packs: one file of small uint8 squares for fast (GPU) training.

Decoding thousands of JPEG/WebP files every epoch costs more than a small colorizer's step.
:func:`build_pack` decodes each image once, resizes its short side to ``size``, centre-crops a
square and stores all of them in one `safetensors <https://github.com/huggingface/safetensors>`_
file (no pickle, memory-mappable):

* tensor ``images``: uint8 ``(N, 3, S, S)`` sRGB, channels first (so :func:`load_pack_tensor`
  is a plain load, ready for GPU augmentation);
* header metadata ``format = "lumachrome-pack"``, ``format_version = "1"`` and ``info``: a JSON
  object with ``size``, ``count``, ``skipped_unreadable``, ``skipped_gray``, ``sources``
  (the source folders), ``root`` and ``files`` (each image's path relative to ``root``).

The file is written to a temporary name in the target folder and renamed, so an interrupted
build never leaves a broken pack.

:class:`PackDataset` reads a pack through ``numpy.memmap`` (opened lazily in each process, so
it works with DataLoader workers and costs no RAM per worker) and returns the same samples as
:class:`~lumachrome.data.photos.ColorFolderDataset`.
"""

from __future__ import annotations

import json
import math
import os
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from torch.utils.data import Dataset

from lumachrome.atomic import AtomicTarget
from lumachrome.data.photos import (
    center_square_box,
    crop_resize,
    random_resized_crop_box,
    rgb_uint8_to_sample,
    spread_indices,
)
from lumachrome.errors import DataError, ImageError
from lumachrome.imageio import find_images, read_rgb_uint8

__all__ = ["PACK_FORMAT", "PACK_FORMAT_VERSION", "PackDataset", "PackInfo", "build_pack", "load_pack_tensor", "read_pack_info"]

PACK_FORMAT = "lumachrome-pack"
PACK_FORMAT_VERSION = 1
_TENSOR = "images"


@dataclass
class PackInfo:
    """What a pack holds (stored as JSON in its header).

    ``size`` side S of the squares, ``count`` N images stored, ``skipped_unreadable`` and
    ``skipped_gray`` files left out, ``sources`` the input folders/files, ``root`` the common
    folder that ``files`` (one entry per stored image, in order) are relative to, ``seconds`` the
    build time, ``path`` the pack file.
    """

    size: int
    count: int
    skipped_unreadable: int = 0
    skipped_gray: int = 0
    sources: list[str] = field(default_factory=list)
    root: str = ""
    files: list[str] = field(default_factory=list, repr=False)
    seconds: float = 0.0
    path: Path | None = None

    @property
    def skipped(self) -> int:
        return self.skipped_unreadable + self.skipped_gray

    def to_json(self) -> str:
        d = asdict(self)
        d.pop("path")
        return json.dumps(d, separators=(",", ":"))


def _square(rgb: np.ndarray, size: int) -> np.ndarray:
    """Short side to ``size`` then centre crop (done as centre square crop, then resize)."""
    return crop_resize(rgb, center_square_box(*rgb.shape[:2]), size)


def _load_square(path: Path, size: int) -> tuple[np.ndarray | None, str | None]:
    try:
        rgb, was_gray = read_rgb_uint8(path, draft_size=size)
    except ImageError as exc:
        return None, "unreadable: " + str(exc)
    if was_gray:
        return None, "gray"
    return _square(rgb, size), None


def build_pack(
    src_dirs: Sequence[str | os.PathLike] | str | os.PathLike,
    out_file: str | os.PathLike,
    size: int = 128,
    max_images: int | None = None,
    progress: bool = True,
    workers: int | None = None,
) -> PackInfo:
    """Decode images once into a pack file.

    Args:
        src_dirs: folders (scanned recursively, sorted), image files or glob patterns.
        out_file: the pack to write (``.safetensors`` recommended); parent folders are created,
            an existing file is replaced atomically only when the build succeeds.
        size: side S of the stored squares (short side resized to S, centre crop).
        max_images: use an evenly spaced subset of at most this many source files (skipped
            files are not replaced, so the pack may hold fewer).
        progress: show a progress bar on stderr (:func:`lumachrome.progress.log_bar`).
        workers: decoding threads (default: CPU count, at most 8). Pillow and OpenCV release
            the GIL while decoding/resizing, so threads scale.

    Returns:
        :class:`PackInfo` (also stored in the file).

    Raises:
        DataError: missing sources, no images, no usable image, or the file cannot be written.
    """
    t0 = time.perf_counter()
    if isinstance(src_dirs, (str, os.PathLike)):
        src_dirs = [src_dirs]
    if not src_dirs:
        raise DataError("build_pack: no source folders given")
    if not 8 <= int(size) <= 4096:
        raise DataError(f"build_pack: size must be in 8..4096, got {size}")
    size = int(size)
    out_file = Path(out_file)
    if out_file.is_dir():
        raise DataError(f"{out_file}: is a folder; give the pack file name (e.g. {out_file / 'train.safetensors'})")
    try:
        files = find_images(list(src_dirs))
    except ImageError as exc:
        raise DataError(str(exc)) from None
    if max_images is not None:
        if max_images < 1:
            raise DataError(f"build_pack: max_images must be >= 1, got {max_images}")
        if len(files) > max_images:
            files = [files[i] for i in spread_indices(len(files), max_images)]

    images = np.empty((len(files), 3, size, size), dtype=np.uint8)
    kept: list[Path] = []
    unreadable = gray = 0
    n_workers = workers or min(8, os.cpu_count() or 1)
    bar = None
    if progress:
        from lumachrome.progress import log_bar

        bar = log_bar(len(files), desc=f"pack {out_file.name}", unit="img")
    try:
        with ThreadPoolExecutor(max_workers=n_workers) as pool:
            # map keeps the input order: the pack is deterministic whatever the thread timing.
            for path, (square, reason) in zip(files, pool.map(lambda p: _load_square(p, size), files)):
                if square is None:
                    if reason == "gray":
                        gray += 1
                    else:
                        unreadable += 1
                else:
                    images[len(kept)] = square.transpose(2, 0, 1)
                    kept.append(path)
                if bar is not None:
                    bar.update(1)
                    bar.set_postfix(skipped=unreadable + gray, refresh=False)
    finally:
        if bar is not None:
            bar.close()
    if not kept:
        raise DataError(
            f"{', '.join(map(str, src_dirs))}: no usable colour image ({unreadable} unreadable, {gray} greyscale)"
        )

    root = Path(os.path.commonpath([str(p.resolve().parent) for p in kept]))
    info = PackInfo(
        size=size,
        count=len(kept),
        skipped_unreadable=unreadable,
        skipped_gray=gray,
        sources=[str(Path(s)) for s in src_dirs],
        root=str(root),
        files=[p.resolve().relative_to(root).as_posix() for p in kept],
    )
    info.seconds = round(time.perf_counter() - t0, 3)
    _write_atomic(out_file, images[: len(kept)], info)
    info.path = out_file
    return info


def _write_atomic(out_file: Path, images: np.ndarray, info: PackInfo) -> None:
    from safetensors.numpy import save_file

    try:
        target = AtomicTarget(out_file)
    except OSError as exc:
        raise DataError(f"{out_file}: cannot write pack: {' '.join(str(exc).split())}") from None
    try:
        metadata = {"format": PACK_FORMAT, "format_version": str(PACK_FORMAT_VERSION), "info": info.to_json()}
        save_file({_TENSOR: np.ascontiguousarray(images)}, str(target.tmp), metadata=metadata)
        target.commit()
    except BaseException as exc:
        target.abort()
        if isinstance(exc, Exception) and not isinstance(exc, DataError):
            raise DataError(f"{out_file}: cannot write pack: {' '.join(str(exc).split())}") from None
        raise


# --------------------------------------------------------------------------------------------
# reading


@dataclass
class _Layout:
    info: PackInfo
    offset: int  # byte offset of the images tensor in the file
    shape: tuple[int, int, int, int]


def _read_layout(pack_file: str | os.PathLike) -> _Layout:
    """Parse and validate the safetensors header (8-byte little-endian length + JSON)."""
    path = Path(pack_file)
    if not path.is_file():
        raise DataError(f"{path}: no such pack file" if not path.exists() else f"{path}: not a file")
    try:
        with open(path, "rb") as fh:
            raw = fh.read(8)
            if len(raw) != 8:
                raise DataError(f"{path}: not a lumachrome pack (file too short)")
            n = int.from_bytes(raw, "little")
            if n <= 0 or n > 100_000_000:
                raise DataError(f"{path}: not a lumachrome pack (bad safetensors header)")
            header = json.loads(fh.read(n))
        file_size = path.stat().st_size
    except (OSError, ValueError) as exc:
        raise DataError(f"{path}: cannot read pack header: {' '.join(str(exc).split())}") from None
    meta = header.get("__metadata__") or {}
    if meta.get("format") != PACK_FORMAT:
        raise DataError(f"{path}: not a lumachrome pack (metadata format is {meta.get('format')!r})")
    if meta.get("format_version") != str(PACK_FORMAT_VERSION):
        raise DataError(f"{path}: unsupported pack format_version {meta.get('format_version')!r} (expected {PACK_FORMAT_VERSION})")
    entry = header.get(_TENSOR)
    try:
        info_d = json.loads(meta["info"])
        info = PackInfo(**{k: v for k, v in info_d.items() if k in PackInfo.__dataclass_fields__ and k != "path"})
        shape = tuple(int(s) for s in entry["shape"])
        begin, end = (int(x) for x in entry["data_offsets"])
        dtype = entry["dtype"]
    except (KeyError, TypeError, ValueError) as exc:
        raise DataError(f"{path}: malformed pack header ({type(exc).__name__}: {exc})") from None
    if dtype != "U8" or len(shape) != 4 or shape[1] != 3 or shape[2] != shape[3]:
        raise DataError(f"{path}: pack images must be uint8 (N, 3, S, S), got {dtype} {list(shape)}")
    if shape[0] != info.count or shape[2] != info.size:
        raise DataError(f"{path}: pack header says {info.count} images of {info.size}px, tensor is {list(shape)}")
    offset = 8 + n + begin
    if end - begin != math.prod(shape) or offset + (end - begin) > file_size:
        raise DataError(f"{path}: pack file is truncated ({file_size} bytes, needs {offset + end - begin})")
    info.path = path
    return _Layout(info=info, offset=offset, shape=shape)  # type: ignore[arg-type]


def read_pack_info(pack_file: str | os.PathLike) -> PackInfo:
    """The :class:`PackInfo` stored in a pack (header only). Raises DataError if malformed."""
    return _read_layout(pack_file).info


def load_pack_tensor(pack_file: str | os.PathLike) -> torch.Tensor:
    """All images of a pack as one uint8 tensor ``(N, 3, S, S)`` in RAM (for GPU augmentation:
    ``load_pack_tensor(f).to("cuda")``). Raises DataError if the file is not a valid pack."""
    layout = _read_layout(pack_file)
    from safetensors.torch import load_file

    try:
        t = load_file(str(pack_file))[_TENSOR]
    except Exception as exc:  # safetensors raises its own error types
        raise DataError(f"{pack_file}: cannot load pack: {' '.join(str(exc).split())}") from None
    if tuple(t.shape) != layout.shape or t.dtype != torch.uint8:
        raise DataError(f"{pack_file}: unexpected pack tensor {t.dtype} {list(t.shape)}")
    return t


class PackDataset(Dataset):
    """Training samples from a pack built by :func:`build_pack`.

    Args:
        pack_file: the pack.
        size: output side (default: the pack's size).
        train: random-resized crop (area in ``[min_scale, 1]``, aspect 3/4..4/3) + flip, resized
            to ``size``; when False, the whole stored square resized to ``size`` (deterministic).
        flip: random horizontal flip in training.
        min_scale: smallest crop area fraction.

    Items are ``{"L": (1,S,S), "ab": (2,S,S), "rgb": (3,S,S)}`` float32 as in
    :class:`~lumachrome.data.photos.ColorFolderDataset`. The pixels are read through a
    ``numpy.memmap`` opened lazily per process (pickling the dataset for workers drops it).
    """

    def __init__(
        self,
        pack_file: str | os.PathLike,
        size: int | None = None,
        train: bool = True,
        flip: bool = True,
        min_scale: float = 0.6,
    ) -> None:
        layout = _read_layout(pack_file)
        self.pack_file = Path(pack_file)
        self.info = layout.info
        self._offset = layout.offset
        self._shape = layout.shape
        self.size = int(size) if size is not None else layout.info.size
        if self.size < 8:
            raise DataError(f"PackDataset: size must be at least 8, got {self.size}")
        if not 0.0 < min_scale <= 1.0:
            raise DataError(f"PackDataset: min_scale must be in (0, 1], got {min_scale}")
        self.train = bool(train)
        self.flip = bool(flip)
        self.min_scale = float(min_scale)
        self._images: np.ndarray | None = None

    def __len__(self) -> int:
        return self._shape[0]

    @property
    def images(self) -> np.ndarray:
        """Read-only memory map of the uint8 ``(N, 3, S, S)`` images."""
        if self._images is None:
            self._images = np.memmap(self.pack_file, dtype=np.uint8, mode="r", offset=self._offset, shape=self._shape)
        return self._images

    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        state["_images"] = None  # reopened in each worker
        return state

    def image(self, index: int) -> np.ndarray:
        """Stored square ``index`` as uint8 ``(S, S, 3)``."""
        return np.ascontiguousarray(self.images[index].transpose(1, 2, 0))

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        n = len(self)
        if not -n <= index < n:
            raise IndexError(f"PackDataset index {index} out of range for {n} images")
        rgb = self.image(index % n)
        s = rgb.shape[0]
        if self.train:
            out = crop_resize(rgb, random_resized_crop_box(s, s, self.min_scale), self.size)
            if self.flip and torch.rand(()).item() < 0.5:
                out = np.ascontiguousarray(out[:, ::-1])
        else:
            out = crop_resize(rgb, (0, 0, s, s), self.size)
        return rgb_uint8_to_sample(out)
