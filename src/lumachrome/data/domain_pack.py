"""Domain packs: pre-decoded image-to-image data (A -> B) in one safetensors file.

A domain pack holds uint8 pixels, channels first, of one or both sides of a translation task:

* tensor ``"A"``: uint8 ``(N, Ca, H, W)``, the input domain (e.g. ``Ca = 1`` near-infrared or line
  art, ``Ca = 3`` for RGB inputs);
* tensor ``"B"``: uint8 ``(N, 3, H, W)``, the RGB target domain.

A **paired** pack holds both with the same ``N``, ``H`` and ``W`` (image ``i`` of A goes with image
``i`` of B: pix2pix). An **unpaired** pack holds one side only; a CycleGAN training reads an
A-pack and a B-pack (see :func:`load_sides`).

String metadata in the safetensors header: ``format`` (``"lumachrome-domain-pack"``),
``format_version`` (``"1"``), ``domain``, ``split``, ``a_channels`` (JSON list of channel names,
``[]`` without A), ``b_channels`` (``'["r","g","b"]'``), ``source`` (free text).

Networks see the pixels as float in ``[-1, 1]`` (:func:`to_unit`, ``x / 127.5 - 1``); the batchers
here return them so:

* :class:`PairedBatcher`: endless random batches ``{"A", "B"}`` with the *same* crop and flip for
  both sides (a plain random crop, or a random-resized crop), resumable through ``state_dict``;
* :class:`UnpairedBatcher`: independent random images and crops for A and B (CycleGAN);
* :func:`center_batch`: fixed centre crops of evenly spaced images, for evaluation and samples.

:func:`build_domain_pack` (``lumachrome data domain-pack``) decodes image folders into a pack: paired
(files matched by name) or one side (unpaired folders A and B for CycleGAN).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from lumachrome.atomic import AtomicTarget
from lumachrome.errors import DataError

__all__ = [
    "DOMAIN_PACK_FORMAT",
    "DOMAIN_PACK_FORMAT_VERSION",
    "DomainPack",
    "PairedBatcher",
    "UnpairedBatcher",
    "build_domain_pack",
    "center_batch",
    "from_unit",
    "load_sides",
    "read_domain_pack",
    "to_unit",
    "write_domain_pack",
]

DOMAIN_PACK_FORMAT = "lumachrome-domain-pack"
DOMAIN_PACK_FORMAT_VERSION = "1"
B_CHANNELS = ["r", "g", "b"]
_META_KEYS = ("domain", "split", "a_channels", "b_channels", "source", "format_version")
_MIN_SIDE = 8
_A_AUG_SEED_OFFSET = 7919  # the A-side augmentation's generator: seed + this


# --------------------------------------------------------------------------------------- values
def to_unit(x: torch.Tensor) -> torch.Tensor:
    """uint8 pixels ``[0, 255]`` -> float32 ``[-1, 1]`` (the networks' range)."""
    return x.float().div(127.5).sub_(1.0)


def from_unit(x: torch.Tensor) -> torch.Tensor:
    """float ``[-1, 1]`` -> float ``[0, 1]`` (clamped), e.g. for sample grids and metrics."""
    return ((x.float() + 1.0) * 0.5).clamp(0.0, 1.0)


# ------------------------------------------------------------------------------------ the file
@dataclass
class DomainPack:
    """The contents of a domain pack (tensors on the CPU).

    ``A`` uint8 ``(N, Ca, H, W)`` or None, ``B`` uint8 ``(N, 3, H, W)`` or None, the metadata, and the
    file it came from.
    """

    A: torch.Tensor | None
    B: torch.Tensor | None
    domain: str
    split: str
    a_channels: list[str] = field(default_factory=list)
    b_channels: list[str] = field(default_factory=lambda: list(B_CHANNELS))
    source: str = ""
    format_version: str = DOMAIN_PACK_FORMAT_VERSION
    path: Path | None = None

    @property
    def paired(self) -> bool:
        return self.A is not None and self.B is not None

    def __len__(self) -> int:
        t = self.A if self.A is not None else self.B
        return 0 if t is None else int(t.shape[0])

    @property
    def hw(self) -> tuple[int, int]:
        """``(H, W)`` of the stored images (of A when both sides differ, which only unpaired packs may)."""
        t = self.A if self.A is not None else self.B
        return int(t.shape[-2]), int(t.shape[-1])


def _as_uint8_tensor(x: Any, name: str, where: str) -> torch.Tensor:
    if isinstance(x, np.ndarray):
        x = torch.from_numpy(np.ascontiguousarray(x))
    if not isinstance(x, torch.Tensor):
        raise DataError(f"{where}: {name} must be a uint8 tensor or array, got {type(x).__name__}")
    if x.dtype != torch.uint8 or x.dim() != 4:
        raise DataError(f"{where}: {name} must be uint8 (N, C, H, W), got {x.dtype} {list(x.shape)}")
    if x.shape[0] < 1 or min(x.shape[-2:]) < _MIN_SIDE:
        raise DataError(f"{where}: {name} must hold at least one image of >= {_MIN_SIDE} px, got {list(x.shape)}")
    return x.detach().to("cpu").contiguous()


def _check_sides(A: torch.Tensor | None, B: torch.Tensor | None, a_channels: list[str], where: str) -> None:
    if A is None and B is None:
        raise DataError(f"{where}: a domain pack needs A, B or both")
    if B is not None and B.shape[1] != 3:
        raise DataError(f"{where}: B must be RGB (N, 3, H, W), got {list(B.shape)}")
    if A is not None and len(a_channels) != A.shape[1]:
        raise DataError(f"{where}: a_channels {a_channels} do not match the {A.shape[1]} channels of A")
    if A is not None and B is not None and (A.shape[0] != B.shape[0] or A.shape[-2:] != B.shape[-2:]):
        raise DataError(f"{where}: paired A {list(A.shape)} and B {list(B.shape)} differ in N, H or W")


def _default_channels(c: int) -> list[str]:
    if c == 1:
        return ["gray"]
    if c == 3:
        return list(B_CHANNELS)
    return [f"c{i}" for i in range(c)]


def write_domain_pack(
    path: str | os.PathLike,
    *,
    A: torch.Tensor | np.ndarray | None = None,
    B: torch.Tensor | np.ndarray | None = None,
    domain: str,
    split: str,
    a_channels: Sequence[str] | None = None,
    source: str = "",
) -> Path:
    """Write a domain pack atomically (temporary file in the same folder, then rename); returns ``path``.

    Args:
        A: uint8 ``(N, Ca, H, W)`` input-domain images, or None (an unpaired B-pack).
        B: uint8 ``(N, 3, H, W)`` RGB target images, or None (an unpaired A-pack).
        domain: the domain's name (``"nir"``, ``"lineart"``, ...).
        split: ``"train"``, ``"holdout"``, ...
        a_channels: names of A's channels (default ``["gray"]`` for one channel, r/g/b for three).
        source: free text: where the images come from, licence notes.

    Raises:
        DataError: wrong dtypes/shapes, paired sides that differ, or the file cannot be written.
    """
    out = Path(path)
    where = str(out)
    A_t = _as_uint8_tensor(A, "A", where) if A is not None else None
    B_t = _as_uint8_tensor(B, "B", where) if B is not None else None
    if a_channels is None:
        names = _default_channels(int(A_t.shape[1])) if A_t is not None else []
    else:
        if isinstance(a_channels, str):
            raise DataError(f"{where}: a_channels must be a list of names, got the string {a_channels!r}")
        names = [str(c) for c in a_channels]
    if A_t is None and names:
        names = []  # no A: nothing to name
    _check_sides(A_t, B_t, names, where)
    if not isinstance(domain, str) or not domain or not isinstance(split, str) or not split:
        raise DataError(f"{where}: domain and split must be non-empty strings")
    metadata = {
        "format": DOMAIN_PACK_FORMAT,
        "format_version": DOMAIN_PACK_FORMAT_VERSION,
        "domain": domain,
        "split": split,
        "a_channels": json.dumps(names),
        "b_channels": json.dumps(B_CHANNELS),
        "source": str(source),
    }
    tensors = {k: v for k, v in (("A", A_t), ("B", B_t)) if v is not None}
    from safetensors.torch import save_file

    if out.is_dir():
        raise DataError(f"{out}: is a folder; give the pack file name (e.g. {out / 'train.safetensors'})")
    try:
        target = AtomicTarget(out)
    except OSError as exc:
        raise DataError(f"{out}: cannot write domain pack: {' '.join(str(exc).split())}") from None
    try:
        save_file(tensors, str(target.tmp), metadata=metadata)
        target.commit()
    except BaseException as exc:
        target.abort()
        if isinstance(exc, Exception):
            raise DataError(f"{out}: cannot write domain pack: {' '.join(str(exc).split())}") from None
        raise
    return out


def _read_header(path: Path) -> dict[str, Any]:
    try:
        with open(path, "rb") as fh:
            raw = fh.read(8)
            if len(raw) != 8:
                raise DataError(f"{path}: not a domain pack (file too short)")
            n = int.from_bytes(raw, "little")
            if n <= 0 or n > 100_000_000:
                raise DataError(f"{path}: not a domain pack (no safetensors header)")
            header = json.loads(fh.read(n))
    except (OSError, ValueError) as exc:
        raise DataError(f"{path}: cannot read domain pack header: {' '.join(str(exc).split())}") from None
    if not isinstance(header, dict):
        raise DataError(f"{path}: not a domain pack (malformed safetensors header)")
    return header


def read_domain_pack(path: str | os.PathLike) -> DomainPack:
    """Load a domain pack written by :func:`write_domain_pack` (tensors on the CPU).

    Raises:
        DataError (one line naming the file): missing file, not a safetensors file, another kind of
        pack, missing metadata keys, tensors other than uint8 ``A``/``B`` of the documented shapes.
    """
    p = Path(path)
    if not p.is_file():
        raise DataError(f"{p}: no such domain pack" if not p.exists() else f"{p}: not a file")
    header = _read_header(p)
    meta = header.get("__metadata__") or {}
    fmt = meta.get("format")
    if fmt is not None and fmt != DOMAIN_PACK_FORMAT:
        raise DataError(f"{p}: not a domain pack (format {fmt!r}, expected {DOMAIN_PACK_FORMAT!r})")
    missing = [k for k in _META_KEYS if k not in meta]
    if missing:
        raise DataError(f"{p}: not a domain pack (metadata {', '.join(missing)} missing)")
    if meta["format_version"] != DOMAIN_PACK_FORMAT_VERSION:
        raise DataError(f"{p}: unsupported domain pack format_version {meta['format_version']!r} "
                        f"(expected {DOMAIN_PACK_FORMAT_VERSION})")
    try:
        a_channels = json.loads(meta["a_channels"])
        b_channels = json.loads(meta["b_channels"])
    except ValueError:
        raise DataError(f"{p}: a_channels/b_channels metadata are not JSON lists") from None
    if not isinstance(a_channels, list) or not isinstance(b_channels, list):
        raise DataError(f"{p}: a_channels/b_channels metadata are not JSON lists")
    names = [k for k in header if k != "__metadata__"]
    unknown = sorted(set(names) - {"A", "B"})
    if unknown:
        raise DataError(f"{p}: unexpected tensors {unknown} (a domain pack holds A and/or B)")
    for k in names:
        entry = header[k]
        if not isinstance(entry, dict) or entry.get("dtype") != "U8" or len(entry.get("shape", [])) != 4:
            got = f"{entry.get('dtype')} {entry.get('shape')}" if isinstance(entry, dict) else "?"
            raise DataError(f"{p}: tensor {k} must be uint8 (N, C, H, W), got {got}")
    from safetensors.torch import load_file

    try:
        tensors = load_file(str(p))
    except Exception as exc:  # safetensors raises its own error types (truncated files, ...)
        raise DataError(f"{p}: cannot load domain pack: {' '.join(str(exc).split())}") from None
    A, B = tensors.get("A"), tensors.get("B")
    _check_sides(A, B, [str(c) for c in a_channels] if A is not None else [], str(p))
    return DomainPack(A=A, B=B, domain=meta["domain"], split=meta["split"], a_channels=[str(c) for c in a_channels],
                      b_channels=[str(c) for c in b_channels], source=meta["source"],
                      format_version=meta["format_version"], path=p)


def _cat_resized(tensors: list[torch.Tensor]) -> torch.Tensor:
    """Concatenate uint8 image tensors; ones of another size are resized to the first one's."""
    h, w = tensors[0].shape[-2:]
    out = [t if t.shape[-2:] == (h, w) else F.interpolate(
        t.float(), size=(h, w), mode="bilinear", antialias=True, align_corners=False
    ).round().clamp(0, 255).to(torch.uint8) for t in tensors]
    return torch.cat(out)


def load_sides(paths: Sequence[str | os.PathLike], *, paired: bool) -> tuple[torch.Tensor | None,
                                                                          torch.Tensor | None, DomainPack]:
    """The A and B images of several packs, concatenated: ``(A, B, first pack's metadata)``.

    ``paired=True`` (pix2pix): every pack must be paired. ``paired=False`` (CycleGAN): each side is the
    concatenation of the packs that hold it (A-packs, B-packs, or paired packs used as unpaired);
    both sides must be present somewhere. Within a side, packs of another image size are resized to
    the first one's (paired packs: both sides of a pack to the first paired pack's size).
    """
    if not paths:
        raise DataError("no domain pack given (data.pack)")
    packs = [read_domain_pack(p) for p in paths]
    if paired:
        bad = [str(pk.path) for pk in packs if not pk.paired]
        if bad:
            raise DataError(f"{bad[0]}: not a paired pack (pix2pix needs A and B of the same images)")
    chans = {len(pk.a_channels) for pk in packs if pk.A is not None}
    if len(chans) > 1:
        raise DataError(f"{', '.join(map(str, paths))}: packs have different numbers of A channels {sorted(chans)}")
    As = [pk.A for pk in packs if pk.A is not None]
    Bs = [pk.B for pk in packs if pk.B is not None]
    if not As or not Bs:
        side = "A" if not As else "B"
        raise DataError(f"{', '.join(map(str, paths))}: no pack holds side {side}")
    if paired:
        # Keep pairs aligned: resize both sides of each pack to the first pack's size.
        return _cat_resized(As), _cat_resized(Bs), next(pk for pk in packs if pk.A is not None)
    meta = next(pk for pk in packs if pk.A is not None)
    return _cat_resized(As), _cat_resized(Bs), meta


# ------------------------------------------------------------------------------ from image folders
def _folder_squares(folder: Path, size: int, files: list[Path]) -> tuple[list[np.ndarray], list[bool], list[Path]]:
    from lumachrome.data.photos import center_square_box, crop_resize
    from lumachrome.errors import ImageError
    from lumachrome.imageio import read_rgb_uint8

    out, gray, kept = [], [], []
    for f in files:
        try:
            rgb, was_gray = read_rgb_uint8(f, draft_size=size)
        except ImageError:
            continue  # unreadable files are skipped (counted by the caller)
        out.append(crop_resize(rgb, center_square_box(*rgb.shape[:2]), size))
        gray.append(was_gray)
        kept.append(f)
    return out, gray, kept


def build_domain_pack(
    out: str | os.PathLike,
    *,
    a_dir: str | os.PathLike | None = None,
    b_dir: str | os.PathLike | None = None,
    size: int = 128,
    domain: str,
    split: str,
    a_mode: str = "auto",
    source: str = "",
    max_images: int | None = None,
) -> tuple[Path, dict[str, int]]:
    """Decode image folders into a domain pack (short side to ``size``, centre square crop).

    With both folders the pack is **paired**: files are matched by their path relative to the folder
    without the extension (``a_dir/x/1.png`` with ``b_dir/x/1.jpg``); unmatched files are skipped.
    With one folder it is an unpaired one-side pack (CycleGAN: build an A-pack and a B-pack).
    ``a_mode``: ``"gray"`` (A as one luminance channel, named ``gray``), ``"rgb"``, or ``"auto"``
    (gray when every A file is a grayscale image). Returns ``(path, counts)`` with ``pairs``/``images``,
    ``unmatched`` and ``unreadable``.
    """
    from lumachrome.errors import ImageError
    from lumachrome.imageio import find_images

    if a_dir is None and b_dir is None:
        raise DataError("build_domain_pack: give an A folder, a B folder or both")
    if a_mode not in ("auto", "gray", "rgb"):
        raise DataError(f"build_domain_pack: a_mode {a_mode!r} must be auto, gray or rgb")

    def listing(d) -> dict[str, Path]:
        root = Path(d)
        try:
            files = find_images([root])
        except ImageError as exc:
            raise DataError(str(exc)) from None
        return {str(f.relative_to(root).with_suffix("")): f for f in files}

    la = listing(a_dir) if a_dir is not None else {}
    lb = listing(b_dir) if b_dir is not None else {}
    keys = sorted(set(la) & set(lb)) if la and lb else sorted(la or lb)
    unmatched = (len(la) + len(lb) - 2 * len(keys)) if la and lb else 0
    if not keys:
        raise DataError(f"{a_dir} / {b_dir}: no file names in common (paired packs match files by name)")
    if max_images is not None:
        keys = keys[:max_images]
    A = B = None
    n_bad = 0
    if la and lb:
        sa, ga, ka = _folder_squares(Path(a_dir), size, [la[k] for k in keys])
        sb, _, kb = _folder_squares(Path(b_dir), size, [lb[k] for k in keys])
        both = {str(p.relative_to(a_dir).with_suffix("")) for p in ka} & {
            str(p.relative_to(b_dir).with_suffix("")) for p in kb}
        n_bad = len(keys) - len(both)
        ia = [i for i, p in enumerate(ka) if str(p.relative_to(a_dir).with_suffix("")) in both]
        ib = [i for i, p in enumerate(kb) if str(p.relative_to(b_dir).with_suffix("")) in both]
        sa, ga, sb = [sa[i] for i in ia], [ga[i] for i in ia], [sb[i] for i in ib]
    elif la:
        sa, ga, _ = _folder_squares(Path(a_dir), size, [la[k] for k in keys])
        n_bad = len(keys) - len(sa)
    else:
        sb, _, _ = _folder_squares(Path(b_dir), size, [lb[k] for k in keys])
        n_bad = len(keys) - len(sb)
    names = None
    if la:
        if not sa:
            raise DataError(f"{a_dir}: no readable image")
        gray = a_mode == "gray" or (a_mode == "auto" and all(ga))
        arr = np.stack(sa).transpose(0, 3, 1, 2)  # (N, 3, S, S)
        if gray:
            import cv2

            arr = np.stack([cv2.cvtColor(x, cv2.COLOR_RGB2GRAY) for x in sa])[:, None]
        A, names = torch.from_numpy(np.ascontiguousarray(arr)), (["gray"] if gray else list(B_CHANNELS))
    if lb:
        if not sb:
            raise DataError(f"{b_dir}: no readable image")
        B = torch.from_numpy(np.ascontiguousarray(np.stack(sb).transpose(0, 3, 1, 2)))
    path = write_domain_pack(out, A=A, B=B, domain=domain, split=split, a_channels=names, source=source)
    n = int((A if A is not None else B).shape[0])
    return path, {"pairs" if la and lb else "images": n, "unmatched": unmatched, "unreadable": n_bad}


# ------------------------------------------------------------------------------------- batches
def _crop_offsets(n: int, h: int, w: int, size: int, g: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    top = torch.randint(0, h - size + 1, (n,), generator=g)
    left = torch.randint(0, w - size + 1, (n,), generator=g)
    return top, left


def _gather_crops(images: torch.Tensor, idx: torch.Tensor, top: torch.Tensor, left: torch.Tensor,
                  size: int) -> torch.Tensor:
    """Integer crops ``images[idx[i], :, top[i]:top[i]+size, left[i]:left[i]+size]`` as one tensor."""
    ar = torch.arange(size, device=images.device)
    rows = (top.to(images.device)[:, None] + ar)[:, None, :, None]  # (b, 1, s, 1)
    cols = (left.to(images.device)[:, None] + ar)[:, None, None, :]  # (b, 1, 1, s)
    sel = images.index_select(0, idx.to(images.device))  # (b, C, H, W)
    b, c = sel.shape[:2]
    bi = torch.arange(b, device=images.device)[:, None, None, None]
    ci = torch.arange(c, device=images.device)[None, :, None, None]
    return sel[bi, ci, rows, cols]


def _flip(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    if bool(mask.any()):
        m = mask.to(x.device)
        x = torch.where(m[:, None, None, None], x.flip(-1), x)
    return x


class _Order:
    """Sampling without replacement within an epoch, a new permutation per epoch (resumable)."""

    def __init__(self, n: int, generator: torch.Generator) -> None:
        self.n = n
        self.g = generator
        self.order = torch.empty(0, dtype=torch.long)
        self.epoch = 0

    def take(self, k: int) -> torch.Tensor:
        while self.order.numel() < k:
            self.order = torch.cat([self.order, torch.randperm(self.n, generator=self.g)])
            self.epoch += 1
        idx, self.order = self.order[:k], self.order[k:]
        return idx

    def state_dict(self) -> dict:
        return {"epoch": self.epoch, "order": self.order.tolist()}

    def load_state_dict(self, s: dict) -> None:
        self.epoch = int(s["epoch"])
        self.order = torch.tensor(s["order"], dtype=torch.long)


class _BatcherBase:
    def __init__(self, size: int, batch_size: int, *, crop: str, min_scale: float, flip: bool, seed: int,
                 rank: int, world_size: int) -> None:
        if crop not in ("random", "resized"):
            raise DataError(f"crop mode {crop!r} must be 'random' or 'resized'")
        if size < _MIN_SIDE:
            raise DataError(f"crop size {size} is below {_MIN_SIDE} px")
        if world_size < 1 or not 0 <= rank < world_size or batch_size % world_size:
            raise DataError(f"batch_size {batch_size} / rank {rank} / world_size {world_size} do not fit")
        if not 0 < min_scale <= 1:
            raise DataError(f"min_scale must be in (0, 1], got {min_scale}")
        self.size, self.batch_size = int(size), int(batch_size)
        self.crop, self.min_scale, self.flip = crop, float(min_scale), bool(flip)
        self.rank, self.world_size = rank, world_size
        self.generator = torch.Generator().manual_seed(seed)

    @property
    def local_batch_size(self) -> int:
        return self.batch_size // self.world_size

    def _mine(self, *xs: torch.Tensor) -> list[torch.Tensor]:
        if self.world_size == 1:
            return list(xs)
        b = self.local_batch_size
        return [x[self.rank * b:(self.rank + 1) * b] for x in xs]

    def _cut(self, images: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
        """Crops (same draw order on every rank) of the images ``idx``; float [-1, 1]."""
        n = self.batch_size
        h, w = images.shape[-2:]
        if self.crop == "resized":
            from lumachrome.data.tensor_batches import crop_with_theta, random_crop_theta

            theta = random_crop_theta(n, min_scale=self.min_scale, flip=self.flip, generator=self.generator)
            idx, theta = self._mine(idx, theta)
            x = to_unit(images.index_select(0, idx.to(images.device)))
            return crop_with_theta(x, theta, self.size).clamp_(-1.0, 1.0)
        top, left = _crop_offsets(n, h, w, self.size, self.generator)
        flips = torch.rand(n, generator=self.generator) < 0.5 if self.flip else torch.zeros(n, dtype=torch.bool)
        idx, top, left, flips = self._mine(idx, top, left, flips)
        return _flip(to_unit(_gather_crops(images, idx, top, left, self.size)), flips)

    def __iter__(self):
        return self


class PairedBatcher(_BatcherBase):
    """Endless batches ``{"A": (b, Ca, s, s), "B": (b, 3, s, s)}`` float in ``[-1, 1]`` from a paired pack.

    A and B of an image get the same crop and flip (they are cut together from the channel
    concatenation). ``crop="random"``: an ``s x s`` window at a random integer offset (no
    resampling; the stored images must be at least ``s`` px); ``crop="resized"``: a random-resized
    crop (area in ``[min_scale, 1]``, aspect 3/4..4/3) resampled bilinearly to ``s``.

    Distributed runs: every rank builds the same batcher with its ``rank``; all draw the same global
    batch and keep their slice (as :class:`~lumachrome.data.tensor_batches.TensorBatcher`).

    ``a_augment`` (e.g. :class:`~lumachrome.data.line_aug.LineAugment`: ``draw(n, generator)`` and
    ``apply(A, params)``) changes the A side of each batch after the crop, with its own generator
    (seed ``seed + 7919``, saved in ``state_dict``); None (default) gives exactly the batches of
    before, and B is the same with or without it.
    """

    def __init__(self, A: torch.Tensor, B: torch.Tensor, size: int, batch_size: int, *, crop: str = "random",
                 min_scale: float = 0.5, flip: bool = True, seed: int = 0, rank: int = 0,
                 world_size: int = 1, a_augment: Any = None) -> None:
        super().__init__(size, batch_size, crop=crop, min_scale=min_scale, flip=flip, seed=seed, rank=rank,
                         world_size=world_size)
        # A-side augmentation (e.g. lumachrome.data.line_aug.LineAugment): its own generator, so crops,
        # flips and the image order are the same draws as without it, and B is never touched.
        self.a_augment = a_augment
        self.a_generator = torch.Generator().manual_seed(seed + _A_AUG_SEED_OFFSET) if a_augment is not None else None
        if A.shape[0] != B.shape[0] or A.shape[-2:] != B.shape[-2:]:
            raise DataError(f"PairedBatcher: A {list(A.shape)} and B {list(B.shape)} are not paired")
        if crop == "random" and min(A.shape[-2:]) < size:
            raise DataError(f"images of {list(A.shape[-2:])} px are smaller than the crop size {size}")
        self.ca = int(A.shape[1])
        self.images = torch.cat([A, B], dim=1)
        self.order = _Order(int(A.shape[0]), self.generator)

    def __len__(self) -> int:
        return int(self.images.shape[0])

    def __next__(self) -> dict[str, torch.Tensor]:
        idx = self.order.take(self.batch_size)
        x = self._cut(self.images, idx)
        a, b = x[:, :self.ca], x[:, self.ca:]
        if self.a_augment is not None:
            params = self.a_augment.draw(self.batch_size, self.a_generator)  # the global batch, every rank alike
            keys = sorted(params)
            params = dict(zip(keys, self._mine(*(params[k] for k in keys))))
            a = self.a_augment.apply(a, params)
        return {"A": a, "B": b}

    def state_dict(self) -> dict:
        s = {"generator": self.generator.get_state().tolist(), **self.order.state_dict()}
        if self.a_generator is not None:
            s["a_generator"] = self.a_generator.get_state().tolist()
        return s

    def load_state_dict(self, s: dict) -> None:
        self.generator.set_state(torch.tensor(s["generator"], dtype=torch.uint8))
        self.order.load_state_dict(s)
        if self.a_generator is not None and "a_generator" in s:
            self.a_generator.set_state(torch.tensor(s["a_generator"], dtype=torch.uint8))


class UnpairedBatcher(_BatcherBase):
    """Endless batches ``{"A", "B"}`` of independently drawn A and B images (CycleGAN), float ``[-1, 1]``."""

    def __init__(self, A: torch.Tensor, B: torch.Tensor, size: int, batch_size: int, *, crop: str = "random",
                 min_scale: float = 0.5, flip: bool = True, seed: int = 0, rank: int = 0,
                 world_size: int = 1) -> None:
        super().__init__(size, batch_size, crop=crop, min_scale=min_scale, flip=flip, seed=seed, rank=rank,
                         world_size=world_size)
        for name, t in (("A", A), ("B", B)):
            if crop == "random" and min(t.shape[-2:]) < size:
                raise DataError(f"{name} images of {list(t.shape[-2:])} px are smaller than the crop size {size}")
        self.A, self.B = A, B
        self.order_a = _Order(int(A.shape[0]), self.generator)
        self.order_b = _Order(int(B.shape[0]), self.generator)

    def __len__(self) -> int:
        return max(int(self.A.shape[0]), int(self.B.shape[0]))

    def __next__(self) -> dict[str, torch.Tensor]:
        ia = self.order_a.take(self.batch_size)
        ib = self.order_b.take(self.batch_size)
        return {"A": self._cut(self.A, ia), "B": self._cut(self.B, ib)}

    def state_dict(self) -> dict:
        return {"generator": self.generator.get_state().tolist(), "a": self.order_a.state_dict(),
                "b": self.order_b.state_dict()}

    def load_state_dict(self, s: dict) -> None:
        self.generator.set_state(torch.tensor(s["generator"], dtype=torch.uint8))
        self.order_a.load_state_dict(s["a"])
        self.order_b.load_state_dict(s["b"])


def center_batch(images: torch.Tensor, size: int | None = None, n: int | None = None) -> torch.Tensor:
    """Fixed evaluation crops: ``n`` evenly spaced images (all by default), centre-cropped to ``size``
    (default: the largest centred square), float ``[-1, 1]`` ``(n, C, s, s)``. Deterministic."""
    N, _, h, w = images.shape
    s = min(h, w) if size is None else int(size)
    if s > min(h, w):
        raise DataError(f"centre crop {s} is larger than the images ({h}x{w})")
    k = N if n is None else max(1, min(int(n), N))
    idx = torch.from_numpy(np.linspace(0, N - 1, k).round().astype(np.int64)) if k < N else torch.arange(N)
    top, left = (h - s) // 2, (w - s) // 2
    return to_unit(images.index_select(0, idx.to(images.device))[:, :, top:top + s, left:left + s])
