"""Film: colorize a frame folder or a video with temporal consistency, and measure flicker.

Colorizing each frame on its own gives colours that jump from frame to frame ("flicker"): the
network sees slightly different grain and framing every time. Here the colour is **propagated
along the optical flow** and blended with each new prediction (a recursive, flow-guided
exponential filter, in the spirit of Lai et al. 2018's short-term consistency term)::

    F_t      = flow(L_t -> L_{t-1})                      DIS optical flow (Kroeger et al. 2016)
    ab~_t-1  = warp(ab_{t-1}, F_t)                       previous *output*, moved onto frame t
    c_t      = exp(-((L_t - warp(L_{t-1}, F_t)) / s)^2)  confidence: 0 where the flow is wrong
                                                         (occlusions, new objects)
    ab_t     = ab^net_t + alpha c_t (ab~_t-1 - ab^net_t)

``alpha`` (0.85 by default) sets the memory (about ``1 / (1 - alpha)`` frames); ``c_t`` keeps
moving or newly visible things on the network's own colours. A shot cut (median ``|L_t -
warp(L_{t-1})|`` above ``cut``) resets the memory. The smoothing runs at a *flow resolution*
(long side ``flow_size``, 320 px by default; the network's ``ab`` is upsampled to it), then ``ab``
is joined with the full-resolution ``L`` of each frame as for photos.

**Flicker** (:class:`FlickerMeter`): for consecutive frames, the mean ``||ab_t - ab_{t-1}||``
(raw Lab units, of the output frames before 8-bit rounding) over *static* pixels: DIS flow between the gray
input frames below ``0.5`` px and ``|L_t - L_{t-1}| < 2``. The mask depends only on the input,
so two colorizations of the same clip are compared on the same pixels.

Frames are read from a folder (natural sort: ``f2`` before ``f10``) or any video OpenCV's FFmpeg
can decode (:func:`open_frames`), and written to a folder of images or a video (``.mp4`` mp4v,
``.avi`` MJPG, ``.mkv``) by :class:`FrameWriter`.
"""

from __future__ import annotations

import math
import os
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

import cv2
import numpy as np
import torch

from lumachrome.atomic import AtomicTarget
from lumachrome.color.lab import lightness, rgb_to_lab_np
from lumachrome.errors import ConfigError, ImageError
from lumachrome.metrics import colorfulness

# FFmpeg (inside OpenCV) logs its own errors on stderr ("[mov,mp4,...] moov atom not found") beside our
# one-line error. Quiet (AV_LOG_QUIET) unless the user set the level; read when OpenCV first opens a
# video with FFmpeg, i.e. after this import.
os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")

__all__ = [
    "VIDEO_EXTENSIONS",
    "FilmResult",
    "FlickerMeter",
    "FrameSource",
    "FrameWriter",
    "TemporalSmoother",
    "colorize_film",
    "compute_flow",
    "open_frames",
    "warp",
]

#: Extensions treated as video files (everything else with an image extension is a frame).
VIDEO_EXTENSIONS = frozenset({".mp4", ".avi", ".mkv", ".mov", ".m4v", ".webm", ".mpg", ".mpeg", ".wmv"})
_FOURCC = {".mp4": "mp4v", ".m4v": "mp4v", ".mov": "mp4v", ".avi": "MJPG", ".mkv": "MJPG"}


# --------------------------------------------------------------------------------------------
# reading and writing


def _natural_key(path: Path) -> list[Any]:
    return [int(t) if t.isdigit() else t.lower() for t in re.split(r"(\d+)", str(path))]


@dataclass
class FrameSource:
    """Frames of a folder or a video, read lazily in order.

    Attributes:
        path: the folder or video file.
        kind: ``"folder"`` or ``"video"``.
        fps: frames per second (video: from the container; folder: 24).
        count: number of frames (video: the container's estimate, may be off by a few).
        files: the frame files (folder only).
        max_frames: stop after this many frames (None: all).
    """

    path: Path
    kind: str
    fps: float
    count: int
    files: list[Path] = field(default_factory=list)
    max_frames: int | None = None

    def __len__(self) -> int:
        return self.count if self.max_frames is None else min(self.count, self.max_frames)

    def __iter__(self) -> Iterator[tuple[str, np.ndarray]]:
        """``(name, rgb float32 (H, W, 3) in [0, 1])`` per frame; names are file stems or
        ``frame_000001`` for videos."""
        limit = self.max_frames if self.max_frames is not None else math.inf
        if self.kind == "folder":
            from lumachrome.imageio import load_image

            for i, f in enumerate(self.files):
                if i >= limit:
                    return
                yield f.stem, load_image(f).rgb
            return
        cap = cv2.VideoCapture(str(self.path))
        try:
            i = 0
            while i < limit:
                ok, bgr = cap.read()
                if not ok:
                    break
                i += 1
                rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB).astype(np.float32) * np.float32(1 / 255)
                yield f"frame_{i:06d}", rgb
        finally:
            cap.release()


def open_frames(path: str | os.PathLike, max_frames: int | None = None) -> FrameSource:
    """A video file or a folder of frame images as a :class:`FrameSource`.

    Raises:
        ImageError: missing path, a folder without images, a video OpenCV cannot open.
    """
    from lumachrome.imageio import IMAGE_EXTENSIONS, iter_image_files

    p = Path(path).expanduser()
    if p.is_dir():
        files = sorted((f for f in iter_image_files(p, recursive=False) if f.suffix.lower() in IMAGE_EXTENSIONS), key=_natural_key)
        if not files:
            raise ImageError(f"{p}: no frame images in this folder")
        return FrameSource(p, "folder", 24.0, len(files), files, max_frames)
    if not p.exists():
        raise ImageError(f"{p}: no such video file or frame folder")
    cap = cv2.VideoCapture(str(p))
    try:
        if not cap.isOpened():
            raise ImageError(f"{p}: cannot open as a video (OpenCV/FFmpeg could not decode it)")
        fps = float(cap.get(cv2.CAP_PROP_FPS) or 0.0) or 24.0
        count = int(cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
        ok, _ = cap.read()
        if not ok:
            raise ImageError(f"{p}: video has no readable frame")
    finally:
        cap.release()
    return FrameSource(p, "video", fps, max(count, 1), [], max_frames)


class FrameWriter:
    """Write frames to a video file (by extension, see :data:`VIDEO_EXTENSIONS`) or a folder.

    Folder output: ``<folder>/<name><ext>`` per frame (``ext`` default ``.png``); video output:
    ``cv2.VideoWriter`` (mp4v for .mp4/.mov, MJPG for .avi/.mkv), written to a temporary name and
    renamed on :meth:`close` (no half-written video under the final name).
    """

    def __init__(self, path: str | os.PathLike, fps: float = 24.0, ext: str = ".png", quality: int = 95) -> None:
        self.path = Path(path)
        self.fps, self.quality = float(fps), int(quality)
        self.ext = ext if ext.startswith(".") else f".{ext}"
        self.is_video = self.path.suffix.lower() in VIDEO_EXTENSIONS
        self._writer: cv2.VideoWriter | None = None
        self._target: AtomicTarget | None = None
        self._tmp: Path | None = None
        self.count = 0
        if self.is_video and self.path.suffix.lower() not in _FOURCC:
            raise ImageError(f"{self.path}: cannot write this video format (use .mp4, .avi, .mkv or .mov)")

    def write(self, name: str, rgb8: np.ndarray) -> None:
        """Append one uint8 ``(H, W, 3)`` RGB frame."""
        from lumachrome.imageio import save_image

        if not self.is_video:
            save_image(self.path / f"{name}{self.ext}", rgb8, quality=self.quality)
            self.count += 1
            return
        if self._writer is None:
            self._target = AtomicTarget(self.path)
            self._tmp = self._target.tmp
            fourcc = cv2.VideoWriter_fourcc(*_FOURCC[self.path.suffix.lower()])
            h, w = rgb8.shape[:2]
            self._writer = cv2.VideoWriter(str(self._tmp), fourcc, self.fps, (w, h))
            if not self._writer.isOpened():
                raise ImageError(f"{self.path}: OpenCV cannot write this video")
        self._writer.write(cv2.cvtColor(rgb8, cv2.COLOR_RGB2BGR))
        self.count += 1

    def close(self) -> None:
        if self._writer is not None:
            self._writer.release()
            self._writer = None
            assert self._target is not None
            self._target.commit()

    def abort(self) -> None:
        """Drop a partly written video."""
        if self._writer is not None:
            self._writer.release()
            self._writer = None
        if self._target is not None:
            self._target.abort()


# --------------------------------------------------------------------------------------------
# flow


_DIS_PRESETS = {"ultrafast": 0, "fast": 1, "medium": 2}


def compute_flow(src_L: np.ndarray, dst_L: np.ndarray, preset: str = "fast") -> np.ndarray:
    """DIS optical flow (``cv2.DISOpticalFlow``) from ``src`` to ``dst`` lightness images.

    Returns float32 ``(H, W, 2)`` ``F`` with ``src(x) ~ dst(x + F(x))`` (``(dx, dy)`` in px).
    """
    dis = cv2.DISOpticalFlow_create(_DIS_PRESETS[preset])
    a = np.clip(src_L * 2.55 + 0.5, 0, 255).astype(np.uint8)
    b = np.clip(dst_L * 2.55 + 0.5, 0, 255).astype(np.uint8)
    return dis.calc(a, b, None)


def warp(image: np.ndarray, flow: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Sample ``image`` at ``x + flow(x)`` (bilinear): ``(warped, valid)`` with ``valid`` False
    where the source point falls outside the image."""
    h, w = flow.shape[:2]
    gx, gy = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
    mx, my = gx + flow[..., 0], gy + flow[..., 1]
    out = cv2.remap(image, mx, my, interpolation=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    valid = (mx >= 0) & (mx <= w - 1) & (my >= 0) & (my <= h - 1)
    return out, valid


# --------------------------------------------------------------------------------------------
# temporal consistency


@dataclass
class TemporalSmoother:
    """Flow-guided propagation of the previous frame's colours (see the module docstring).

    Call it once per frame, in order, with the frame's lightness and predicted ``ab`` at the same
    resolution; it returns the smoothed ``ab`` and remembers it. Usable as a colorizer
    ``ab_transform`` hook. :meth:`reset` at a new clip.

    Attributes:
        alpha: weight of the propagated colour in ``[0, 1)`` (0: no smoothing).
        sigma_l: lightness tolerance ``s`` of the confidence (``L`` units).
        cut: median warped lightness difference above which a shot cut is assumed.
        preset: DIS preset (``ultrafast``, ``fast``, ``medium``).
    """

    alpha: float = 0.85
    sigma_l: float = 4.0
    cut: float = 12.0
    preset: str = "fast"
    cuts: int = 0
    _prev_L: np.ndarray | None = field(default=None, repr=False)
    _prev_ab: np.ndarray | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if not (0.0 <= self.alpha < 1.0):
            raise ConfigError(f"temporal alpha must be in [0, 1), got {self.alpha}")
        if self.preset not in _DIS_PRESETS:
            raise ConfigError(f"flow preset must be one of {', '.join(_DIS_PRESETS)}, got {self.preset!r}")

    def reset(self) -> None:
        self._prev_L = self._prev_ab = None
        self.cuts = 0

    def __call__(self, L: np.ndarray, ab: np.ndarray) -> np.ndarray:
        L = np.asarray(L, np.float32)
        ab = np.asarray(ab, np.float32)
        out = ab
        if self._prev_L is not None and self._prev_L.shape == L.shape and self.alpha > 0:
            flow = compute_flow(L, self._prev_L, self.preset)
            prev_L, valid = warp(self._prev_L, flow)
            diff = np.abs(L - prev_L)
            if float(np.median(diff)) > self.cut:
                self.cuts += 1  # shot cut: start over from the network's colours
            else:
                prev_ab, _ = warp(self._prev_ab, flow)
                conf = np.exp(-((diff / np.float32(self.sigma_l)) ** 2)) * valid
                k = (np.float32(self.alpha) * conf)[..., None]
                out = ab + k * (prev_ab - ab)
        self._prev_L, self._prev_ab = L, out.astype(np.float32)
        return self._prev_ab


# --------------------------------------------------------------------------------------------
# flicker


class FlickerMeter:
    """Mean ``ab`` change between consecutive frames over static pixels (see the module docstring).

    ``update(L_in, rgb_out)`` per frame, in order: ``L_in`` float ``(H, W)`` lightness of the
    *input* frame, ``rgb_out`` the colorized frame (float in [0, 1] before 8-bit rounding, so
    that rounding noise does not count as flicker; uint8 accepted). :attr:`value` is the mean over frame
    pairs of the per-pair mean ``||delta ab||`` (pairs with fewer than 1 % static pixels skipped).
    Also tracks the mean colourfulness (Hasler & Suesstrunk) of the outputs.
    """

    def __init__(self, max_flow: float = 0.5, max_dl: float = 2.0, size: int = 640) -> None:
        self.max_flow, self.max_dl, self.size = max_flow, max_dl, size
        self._prev: tuple[np.ndarray, np.ndarray] | None = None
        self.pairs: list[float] = []
        self.static_fraction: list[float] = []
        self.cf: list[float] = []

    def _small(self, x: np.ndarray) -> np.ndarray:
        h, w = x.shape[:2]
        if max(h, w) <= self.size:
            return x
        s = self.size / max(h, w)
        return cv2.resize(x, (round(w * s), round(h * s)), interpolation=cv2.INTER_AREA)

    def update(self, L_in: np.ndarray, rgb_out: np.ndarray) -> None:
        rgb8 = rgb_out if rgb_out.dtype == np.uint8 else (np.clip(rgb_out, 0, 1) * 255 + 0.5).astype(np.uint8)
        self.cf.append(colorfulness(rgb8))
        L = self._small(np.asarray(L_in, np.float32))
        ab = self._small(rgb_to_lab_np(np.ascontiguousarray(rgb_out))[:, :, 1:])
        if self._prev is not None and self._prev[0].shape == L.shape:
            pL, pab = self._prev
            flow = compute_flow(L, pL, "medium")
            static = (np.hypot(flow[..., 0], flow[..., 1]) < self.max_flow) & (np.abs(L - pL) < self.max_dl)
            frac = float(static.mean())
            self.static_fraction.append(frac)
            if frac >= 0.01:
                d = np.hypot(ab[..., 0] - pab[..., 0], ab[..., 1] - pab[..., 1])
                self.pairs.append(float(d[static].mean()))
        self._prev = (L, ab)

    @property
    def value(self) -> float:
        """Mean static-region ab change (raw Lab units); NaN before two usable frames."""
        return float(np.mean(self.pairs)) if self.pairs else float("nan")

    @property
    def colorfulness(self) -> float:
        return float(np.mean(self.cf)) if self.cf else float("nan")


# --------------------------------------------------------------------------------------------
# the film loop


@dataclass
class FilmResult:
    """Summary of :func:`colorize_film`."""

    frames: int
    seconds: float
    flicker: float
    colorfulness: float
    static_fraction: float
    cuts: int
    temporal: bool

    def summary(self) -> str:
        mode = "temporal" if self.temporal else "per-frame"
        return (
            f"{self.frames} frames ({mode}) in {self.seconds:.1f} s: flicker {self.flicker:.3f} "
            f"(mean static-region ab change), colourfulness {self.colorfulness:.2f}"
        )


def _resize_to(x: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    h, w = shape
    if x.shape[:2] == (h, w):
        return x
    return cv2.resize(x, (w, h), interpolation=cv2.INTER_LINEAR)


def colorize_film(
    colorizer: Any,
    frames: FrameSource | Any,
    writer: FrameWriter | None = None,
    *,
    temporal: bool | TemporalSmoother = True,
    correction: Callable[[np.ndarray, np.ndarray], np.ndarray] | None = None,
    preprocess: Callable[[np.ndarray], np.ndarray] | None = None,
    flow_size: int = 320,
    batch_size: int = 8,
    measure: bool = True,
    progress: Callable[[int], None] | None = None,
) -> FilmResult:
    """Colorize a sequence of frames (see the module docstring).

    Args:
        colorizer: a :class:`lumachrome.colorizer.Colorizer`.
        frames: a :class:`FrameSource` or any iterable of ``(name, rgb)``.
        writer: where the frames go (None: not written, e.g. for measurements).
        temporal: True (default smoother), False (independent per-frame colorization) or a
            configured :class:`TemporalSmoother`.
        correction: optional ``(L, ab) -> ab`` applied to each frame's prediction at the working
            resolution before smoothing (e.g. a :class:`~lumachrome.transfer.ColorCorrection`
            toward the clip's references, with ``source_momentum`` > 0).
        preprocess: optional ``rgb -> gray/rgb`` per frame (e.g. restoration).
        flow_size: long side of the resolution the smoothing runs at.
        batch_size: frames per network call.
        measure: compute flicker and colourfulness (one extra DIS flow per frame).
        progress: called with the number of frames done after each batch.

    Returns:
        :class:`FilmResult`.
    """
    smoother: TemporalSmoother | None
    if isinstance(temporal, TemporalSmoother):
        smoother = temporal
    else:
        smoother = TemporalSmoother() if temporal else None
    if smoother is not None:
        smoother.reset()
    meter = FlickerMeter() if measure else None
    t0 = time.perf_counter()
    n = 0

    def flush(batch: list[tuple[str, np.ndarray]]) -> None:
        nonlocal n
        Ls = [colorizer.network_input(x) for _, x in batch]
        groups: dict[tuple[int, int], list[int]] = {}
        for i, L_small in enumerate(Ls):
            groups.setdefault(L_small.shape, []).append(i)
        abs_: list[np.ndarray | None] = [None] * len(batch)
        for idx in groups.values():
            L_t = torch.from_numpy(np.stack([Ls[i] for i in idx]))[:, None]
            ab = colorizer.predict_ab_batch(L_t).permute(0, 2, 3, 1).contiguous().numpy()
            for j, i in enumerate(idx):
                abs_[i] = ab[j]
        for (name, x), L_small, ab_small in zip(batch, Ls, abs_):
            assert ab_small is not None
            if correction is not None:
                ab_small = np.asarray(correction(L_small, ab_small), np.float32)
            h, w = x.shape[:2]
            s = min(1.0, flow_size / max(h, w))
            fshape = (max(8, round(h * s)), max(8, round(w * s)))
            ab_f = _resize_to(ab_small, fshape)
            if smoother is not None:
                L_full = lightness(x)
                L_f = cv2.resize(L_full, fshape[::-1], interpolation=cv2.INTER_AREA) if fshape != (h, w) else L_full
                ab_f = smoother(L_f, ab_f)
            rgb = colorizer.join_ab(x, np.ascontiguousarray(ab_f, np.float32))
            rgb8 = (np.clip(rgb, 0.0, 1.0) * 255 + 0.5).astype(np.uint8)
            if writer is not None:
                writer.write(name, rgb8)
            if meter is not None:
                meter.update(lightness(x), rgb)
            n += 1
        if progress is not None:
            progress(n)

    batch: list[tuple[str, np.ndarray]] = []
    for name, rgb in frames:
        x = rgb if preprocess is None else preprocess(rgb)
        batch.append((name, x))
        if len(batch) == batch_size:
            flush(batch)
            batch = []
    if batch:
        flush(batch)
    if writer is not None:
        writer.close()
    if n == 0:
        raise ImageError(f"{getattr(frames, 'path', 'frames')}: no frames to colorize")
    return FilmResult(
        frames=n,
        seconds=time.perf_counter() - t0,
        flicker=meter.value if meter else float("nan"),
        colorfulness=meter.colorfulness if meter else float("nan"),
        static_fraction=float(np.mean(meter.static_fraction)) if meter and meter.static_fraction else float("nan"),
        cuts=smoother.cuts if smoother is not None else 0,
        temporal=smoother is not None,
    )
