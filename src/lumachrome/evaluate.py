"""Evaluation protocol for automatic colorization (as in the DDColor / CT2 papers' tables).

For every image of a folder tree (recursive, :data:`lumachrome.imageio.IMAGE_EXTENSIONS`):

1. read it with :func:`lumachrome.imageio.load_image`; unreadable files (``ImageError``) and
   grayscale *files* (single-channel or gray-palette modes) are skipped and counted;
2. centre-crop the largest square and resize it to ``size x size`` with Pillow's antialiased
   **bicubic** filter, giving the ground truth ``gt`` (uint8 RGB). Bicubic is what reproduces the
   reference numbers (``photos/val/imagenet``: GT CF 38.450 and PSNR 22.766 against 38.45 / 22.77;
   Lanczos gives 38.473, box 38.449 / SSIM 0.9315, OpenCV area 38.370);
3. the input is the raw ``L`` of ``gt`` (``rgb_to_lab_np``), the predictor returns raw ``ab``; the
   prediction is ``lab_to_rgb_np(L_gt, ab_pred)`` (clipped to the sRGB cube) rounded to uint8;
4. :func:`lumachrome.metrics.image_metrics` scores each ``(pred, gt)`` pair; the table reports the
   mean over images of each metric, and ``dCF = |mean CF(pred) - mean CF(gt)|``. The hue
   concentration ``hue_conc`` is NaN for achromatic images (mean chroma below 0.25 Lab units, e.g.
   every gray-baseline prediction): its mean skips them and they are counted (``n_achromatic``);
5. ``fd_lite`` (:mod:`lumachrome.fd_lite`) is one number per set: the Frechet distance (FID formula)
   between the EfficientNet-Lite1 ImageNet features of all predictions and of all ground-truth
   images. It is **not FID** (other network and resolution; hundreds of images: biased), only
   comparable between rows of the same table. Ground-truth features are cached per file and size,
   so every row after the first computes only its predictions' features.

Files whose pixels happen to be gray but are stored as RGB are *kept* (the reference numbers on
``photos/val``, 561 images, include one such file: ``sketchy/trumpet/n03110669_135803.jpg``).

Typical use (what ``lumachrome evaluate`` does)::

    results = {
        "photo": evaluate(colorizer.predict_ab_batch, "photos/val"),
        "gray": evaluate(gray_predictor, "photos/val"),
    }
    print(format_table(results))
"""

from __future__ import annotations

import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np
import torch
from PIL import Image

from lumachrome.color.lab import lab_to_rgb_np, rgb_to_lab_np
from lumachrome.errors import ConfigError, DataError, ImageError, ModelError
from lumachrome.imageio import IMAGE_EXTENSIONS, iter_image_files, load_image
from lumachrome.metrics import (
    AUC_MAX_THRESHOLD,
    HUE_HALF_WINDOW,
    HUE_MIN_CHROMA,
    METRIC_NAMES,
    NAN_METRICS,
    PSNR_CAP,
    image_metrics,
)
from lumachrome.progress import task_bar

__all__ = [
    "EvalResult",
    "PredictAB",
    "crop_resize_square",
    "eval_files",
    "evaluate",
    "format_table",
    "gray_predictor",
    "load_eval_images",
    "predict_rgb",
    "to_json",
]

#: ``predict_ab(L)``: raw ``L`` ``(B, 1, H, W)`` in ``[0, 100]`` -> raw ``ab`` ``(B, 2, H, W)``.
PredictAB = Callable[[torch.Tensor], torch.Tensor]

#: Pillow modes of single-channel sources: such files are grayscale and are skipped.
_GRAY_MODES = frozenset({"1", "L", "LA", "La", "I", "F"})

#: Resampling filter of the protocol (antialiased when shrinking).
_RESAMPLE = Image.Resampling.BICUBIC

#: Smallest evaluation size (SSIM needs 7x7).
_MIN_SIZE = 8

#: :class:`EvalResult` field counting the NaN (achromatic) images of each metric that can be NaN.
_NAN_COUNTS = {"hue_conc": "n_achromatic", "hue_conc_gt": "n_achromatic_gt"}


# --------------------------------------------------------------------------------------------
# images


def crop_resize_square(rgb: np.ndarray, size: int) -> np.ndarray:
    """Centre-crop the largest square of ``rgb`` and resize it to ``(size, size, 3)``.

    Args:
        rgb: uint8 ``(H, W, 3)``.
        size: output side in pixels.

    Returns:
        uint8 ``(size, size, 3)``: Pillow bicubic (antialiased when shrinking, plain bicubic when
        enlarging); the crop itself when it is already ``size`` wide.
    """
    h, w = rgb.shape[:2]
    side = min(h, w)
    top, left = (h - side) // 2, (w - side) // 2
    crop = np.ascontiguousarray(rgb[top : top + side, left : left + side])
    if side == size:
        return crop
    return np.asarray(Image.fromarray(crop, "RGB").resize((size, size), _RESAMPLE))


def _is_gray_file(loaded: Any) -> bool:
    """A grayscale *file*: single-channel mode, or a palette whose colours are all gray."""
    mode = str(loaded.mode)
    single = mode in _GRAY_MODES or mode.startswith("I;16")
    return bool(loaded.was_gray) and (single or mode in ("P", "PA"))


def eval_files(data_dir: str | os.PathLike) -> list[Path]:
    """The image files of an evaluation folder (searched recursively, sorted) or the single file given
    (``DataError`` for a missing folder or one without images)."""
    root = Path(data_dir).expanduser()
    if root.is_file():
        return [root]
    if not root.exists():
        raise DataError(f"{root}: evaluation folder does not exist")
    if not root.is_dir():
        raise DataError(f"{root}: not a folder")
    files = iter_image_files(root, recursive=True)
    if not files:
        exts = " ".join(sorted(IMAGE_EXTENSIONS))
        raise DataError(f"{root}: no image files in evaluation folder (extensions: {exts})")
    return files


def _load_one(path: Path, size: int) -> tuple[np.ndarray | None, str | None]:
    """``(gt uint8 (size, size, 3), None)`` or ``(None, reason)`` for a skipped file."""
    try:
        loaded = load_image(path)
    except ImageError as exc:
        return None, str(exc)
    if _is_gray_file(loaded):
        return None, f"{path}: grayscale image (mode {loaded.mode})"
    # float32 in [0, 1] -> uint8: exact for 8-bit sources, rounded for 16-bit ones.
    rgb = np.rint(loaded.rgb * np.float32(255.0)).astype(np.uint8)
    return crop_resize_square(rgb, size), None


def _check_size(size: Any) -> int:
    if isinstance(size, bool) or not isinstance(size, (int, np.integer)) or int(size) < _MIN_SIZE:
        raise ConfigError(f"evaluation size must be an integer >= {_MIN_SIZE}, got {size!r}")
    return int(size)


def load_eval_images(
    data_dir: str | os.PathLike,
    size: int = 256,
    *,
    skipped: list[tuple[str, str]] | None = None,
) -> Iterator[tuple[Path, np.ndarray]]:
    """Ground-truth images of the protocol, in sorted path order.

    Args:
        data_dir: folder searched recursively (hidden files skipped), or a single image file.
        size: side of the centre-cropped square.
        skipped: if given, ``(path, reason)`` is appended for every skipped file
            (unreadable: any :class:`~lumachrome.errors.ImageError`; grayscale file).

    Yields:
        ``(path, gt)`` with ``gt`` uint8 ``(size, size, 3)`` sRGB.

    Raises:
        DataError: the folder is missing or holds no image files.
        ConfigError: ``size`` below 8.
    """
    size = _check_size(size)
    for path in eval_files(data_dir):
        gt, reason = _load_one(path, size)
        if gt is None:
            if skipped is not None:
                skipped.append((str(path), str(reason)))
            continue
        yield path, gt


# --------------------------------------------------------------------------------------------
# prediction


def gray_predictor(L: torch.Tensor) -> torch.Tensor:
    """The gray baseline: ``ab = 0`` everywhere. ``(B, 1, H, W)`` -> zeros ``(B, 2, H, W)``."""
    b, _, h, w = L.shape
    return L.new_zeros((b, 2, h, w))


def predict_rgb(predict_ab: PredictAB, gt: np.ndarray) -> np.ndarray:
    """Colorize a batch of ground-truth images from their lightness.

    Args:
        predict_ab: raw ``L`` ``(B, 1, H, W)`` float32 (CPU) -> raw ``ab`` ``(B, 2, H, W)`` (any device).
        gt: uint8 ``(B, H, W, 3)``.

    Returns:
        uint8 ``(B, H, W, 3)``: ``lab_to_rgb_np(L_gt, ab_pred)`` clipped to the sRGB cube and rounded.

    Raises:
        ModelError: the predictor returned something other than a finite ``(B, 2, H, W)`` tensor.
    """
    gt = np.asarray(gt)
    if gt.dtype != np.uint8 or gt.ndim != 4 or gt.shape[-1] != 3:
        raise ValueError(f"predict_rgb: expected uint8 (B, H, W, 3), got {gt.dtype} {gt.shape}")
    # OpenCV's float32 Lab (the fast path, also used for training data) rather than the torch
    # functions: ~10x less CPU at 256x256, same result after rounding to uint8.
    L_np = np.stack([rgb_to_lab_np(img)[:, :, 0] for img in gt])  # (B, H, W) float32
    L = torch.from_numpy(L_np).unsqueeze(1)
    with torch.no_grad():
        ab = predict_ab(L.clone())  # a clone: the predictor may modify its input in place
    if not isinstance(ab, torch.Tensor):
        raise ModelError(f"predictor returned {type(ab).__name__}, expected a torch.Tensor of raw ab")
    if tuple(ab.shape) != tuple(L.shape[:1]) + (2,) + tuple(L.shape[2:]):
        raise ModelError(f"predictor returned ab of shape {tuple(ab.shape)} for L of shape {tuple(L.shape)}")
    ab_np = ab.detach().to("cpu", torch.float32).permute(0, 2, 3, 1).numpy()
    if not np.isfinite(ab_np).all():
        raise ModelError("predictor returned non-finite ab values (NaN or inf)")
    out = np.empty(gt.shape, dtype=np.uint8)
    for i in range(gt.shape[0]):
        lab = np.concatenate([L_np[i, :, :, None], ab_np[i]], axis=2)
        rgb = lab_to_rgb_np(lab)  # clipped to [0, 1]
        np.rint(rgb * np.float32(255.0), out=rgb)
        out[i] = rgb.astype(np.uint8)
    return out


# --------------------------------------------------------------------------------------------
# results


@dataclass
class EvalResult:
    """Means over images of :func:`lumachrome.metrics.image_metrics`, plus bookkeeping.

    Attributes:
        psnr: mean PSNR in dB (each image capped at :data:`~lumachrome.metrics.PSNR_CAP`).
        ssim: mean SSIM in ``[-1, 1]``.
        cf: mean colourfulness of the predictions.
        cf_gt: mean colourfulness of the ground truth.
        dcf: ``|cf - cf_gt|``.
        auc: mean ab-error AuC in ``[0, 1]`` (thresholds 0..150).
        ciede2000: mean of the per-image mean CIEDE2000.
        n_images: images scored.
        n_skipped: files skipped (unreadable or grayscale).
        hue_conc: mean hue concentration of the predictions over the chromatic ones
            (:func:`lumachrome.metrics.hue_concentration`); NaN if every prediction is achromatic.
        hue_conc_gt: the same for the ground truth.
        n_achromatic: predictions left out of ``hue_conc`` (mean chroma below
            :data:`~lumachrome.metrics.HUE_MIN_CHROMA`).
        n_achromatic_gt: ground-truth images left out of ``hue_conc_gt``.
        fd_lite: Frechet distance between EfficientNet-Lite1 features of the predictions and of the
            ground truth (:mod:`lumachrome.fd_lite`; not FID); NaN when not computed (see ``notes``).
        rows: one dict per image: ``{"path", "psnr", "ssim", "cf", "cf_gt", "auc", "ciede2000",
            "hue_conc", "hue_conc_gt"}``.
        skipped: ``(path, reason)`` per skipped file.
        notes: one-line remarks on the result (e.g. why ``fd_lite`` is NaN).
        data_dir: the evaluated folder.
        size: evaluation side in pixels.
        seconds: wall time of the evaluation.
    """

    psnr: float
    ssim: float
    cf: float
    cf_gt: float
    dcf: float
    auc: float
    ciede2000: float
    n_images: int
    n_skipped: int
    hue_conc: float = math.nan
    hue_conc_gt: float = math.nan
    n_achromatic: int = 0
    n_achromatic_gt: int = 0
    fd_lite: float = math.nan
    rows: list[dict[str, Any]] = field(default_factory=list, repr=False)
    skipped: list[tuple[str, str]] = field(default_factory=list, repr=False)
    notes: list[str] = field(default_factory=list)
    data_dir: str = ""
    size: int = 256
    seconds: float = 0.0

    @classmethod
    def from_rows(cls, rows: list[dict[str, Any]], **extra: Any) -> EvalResult:
        """Average per-image rows (as produced by :func:`evaluate`).

        ``hue_conc``/``hue_conc_gt`` are averaged over the rows where they are finite and the others
        counted (``n_achromatic``/``n_achromatic_gt``); a row without them counts as achromatic.
        ``extra`` sets the other fields (``fd_lite``, ``notes``, ``skipped``, ``data_dir``...)."""
        if not rows:
            raise DataError("no images were scored: cannot average metrics over an empty set")
        means: dict[str, Any] = {}
        for k in METRIC_NAMES:
            values = np.array([r.get(k, math.nan) if k in NAN_METRICS else r[k] for r in rows], np.float64)
            if k in NAN_METRICS:
                finite = np.isfinite(values)
                means[k] = float(values[finite].mean()) if finite.any() else math.nan
                means[_NAN_COUNTS[k]] = int((~finite).sum())
            else:
                means[k] = float(values.mean())
        return cls(
            dcf=abs(means["cf"] - means["cf_gt"]),
            n_images=len(rows),
            n_skipped=len(extra.get("skipped", [])),
            rows=rows,
            **means,
            **extra,
        )

    def summary(self) -> dict[str, float | int]:
        """The means and counts (no per-image rows)."""
        keys = ("psnr", "ssim", "cf", "cf_gt", "dcf", "auc", "ciede2000", "hue_conc", "hue_conc_gt", "fd_lite",
                "n_images", "n_skipped", "n_achromatic", "n_achromatic_gt")
        return {k: getattr(self, k) for k in keys}


def evaluate(
    predict_ab: PredictAB,
    data_dir: str | os.PathLike,
    size: int = 256,
    batch_size: int = 16,
    limit: int | None = None,
    progress: bool = True,
    fd_lite: bool = True,
) -> EvalResult:
    """Score a colorizer on a folder of colour photos (see the module docstring for the protocol).

    Args:
        predict_ab: raw ``L`` ``(B, 1, size, size)`` float32 CPU tensor in ``[0, 100]`` -> raw
            ``ab`` ``(B, 2, size, size)`` on any device; called under ``torch.no_grad``.
            E.g. ``Colorizer.predict_ab_batch`` or :func:`gray_predictor`.
        data_dir: folder searched recursively (or one image file).
        size: side of the centre-cropped square the metrics are computed at (>= 8; models
            usually want a multiple of 16).
        batch_size: images per ``predict_ab`` call.
        limit: score at most this many images (the first ones in sorted path order).
        progress: show a rich progress bar on stderr.
        fd_lite: also compute ``fd_lite`` (EfficientNet-Lite1 features of every prediction and
            ground-truth image, ~0.05 s per 256 px image on one core; ground-truth features are
            cached across calls). ``False``, a missing weight package or fewer than 2 images give
            NaN with a note in :attr:`EvalResult.notes`.

    Returns:
        :class:`EvalResult` with the means, counts and per-image rows.

    Raises:
        DataError: missing folder, no image files, or no usable image.
        ConfigError: invalid ``size``, ``batch_size`` or ``limit``.
        ModelError: the predictor returned a wrong shape or non-finite values.
    """
    size = _check_size(size)
    if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
        raise ConfigError(f"batch_size must be a positive integer, got {batch_size!r}")
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, (int, np.integer)) or limit < 1):
        raise ConfigError(f"limit must be a positive integer or None, got {limit!r}")

    start = time.perf_counter()
    files = eval_files(data_dir)
    total = len(files) if limit is None else min(len(files), int(limit))
    skipped: list[tuple[str, str]] = []
    rows: list[dict[str, Any]] = []
    paths: list[Path] = []
    gts: list[np.ndarray] = []
    notes: list[str] = []
    features = _FeatureSets(size) if fd_lite else None
    if features is None:
        notes.append("fd_lite not computed (fd_lite=False)")
    elif (why := _fd_lite_unavailable()) is not None:
        notes.append(f"fd_lite not computed: {why}")
        features = None

    bar = task_bar(progress, total, f"evaluating {Path(data_dir).name or data_dir}")

    def flush() -> None:
        batch = np.stack(gts)
        preds = predict_rgb(predict_ab, batch)
        if features is not None:
            features.add(preds, batch, paths)
        for path, pred, gt in zip(paths, preds, gts):
            rows.append({"path": str(path), **image_metrics(pred, gt)})
            if bar is not None:
                bar[0].advance(bar[1])
        paths.clear()
        gts.clear()

    if bar is not None:
        bar[0].start()
    try:
        for path in files:
            if limit is not None and len(rows) + len(paths) >= limit:
                break
            gt, reason = _load_one(path, size)
            if gt is None:
                skipped.append((str(path), str(reason)))
                continue
            paths.append(path)
            gts.append(gt)
            if len(gts) == batch_size:
                flush()
        if gts:
            flush()
    finally:
        if bar is not None:
            bar[0].stop()

    if not rows:
        raise DataError(f"{data_dir}: no usable colour images ({len(skipped)} files skipped as unreadable or gray)")
    fd = math.nan
    if features is not None:
        fd, why = features.distance()
        if why is not None:
            notes.append(why)
    return EvalResult.from_rows(
        rows, skipped=skipped, data_dir=str(data_dir), size=size, seconds=time.perf_counter() - start,
        fd_lite=fd, notes=notes,
    )


def _fd_lite_unavailable() -> str | None:
    from lumachrome import fd_lite

    return fd_lite.available()


class _FeatureSets:
    """EfficientNet-Lite1 features of the predictions and the ground truth of one evaluation
    (ground-truth features through :data:`lumachrome.fd_lite.GT_CACHE` when the image is a file)."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.pred: list[np.ndarray] = []
        self.gt: list[np.ndarray] = []

    def add(self, preds: np.ndarray, gts: np.ndarray, paths: list[Path] | None = None) -> None:
        from lumachrome.fd_lite import GT_CACHE, lite_features

        self.pred.append(lite_features(preds))
        keys: list[tuple | None] = [None] * len(gts)
        if paths is not None:
            for i, p in enumerate(paths):
                try:
                    keys[i] = GT_CACHE.key(p, self.size)
                except OSError:
                    pass
        cached = [GT_CACHE.get(k) if k is not None else None for k in keys]
        todo = [i for i, c in enumerate(cached) if c is None]
        if todo:
            fresh = lite_features(gts[todo])
            for i, f in zip(todo, fresh):
                cached[i] = f
                if keys[i] is not None:
                    GT_CACHE.put(keys[i], f)
        self.gt.append(np.stack(cached))

    def distance(self) -> tuple[float, str | None]:
        from lumachrome.fd_lite import fd_lite

        if not self.pred:
            return math.nan, "fd_lite: no images"
        return fd_lite(np.concatenate(self.pred), np.concatenate(self.gt))


# --------------------------------------------------------------------------------------------
# reporting

_COLUMNS = (
    # header, attribute, format
    ("PSNR", "psnr", "{:.2f}"),
    ("SSIM", "ssim", "{:.3f}"),
    ("CF", "cf", "{:.2f}"),
    ("dCF", "dcf", "{:.2f}"),
    ("AuC", "auc", "{:.3f}"),
    ("CIEDE2000", "ciede2000", "{:.2f}"),
    ("hue_conc", "hue_conc", "{:.3f}"),
    ("fd_lite", "fd_lite", "{:.2f}"),
)


def _fmt(value: float, spec: str) -> str:
    if math.isnan(value):
        return "n/a"
    return spec.format(value) if math.isfinite(value) else str(value)


def format_table(results: dict[str, EvalResult]) -> str:
    """A Markdown table, one row per method, with a footer for the ground truth and the definitions.

    Columns: ``method | PSNR | SSIM | CF | dCF | AuC | CIEDE2000 | hue_conc | fd_lite | n`` (CF =
    mean colourfulness of the predictions; hue_conc = their mean hue concentration; fd_lite =
    Frechet distance of Lite1 features, not FID; ``n`` = images scored). Better: PSNR, SSIM, AuC
    higher; dCF, CIEDE2000, fd_lite lower; hue_conc close to the ground truth's (footer). NaN shows
    as ``n/a``: ``hue_conc`` when every prediction is achromatic (the gray baseline), ``fd_lite``
    when it was not computed (the reason is in the footer).
    """
    if not results:
        raise ValueError("format_table: no results to show")
    head = "| method | " + " | ".join(c[0] for c in _COLUMNS) + " | n |"
    rule = "|---|" + "---:|" * (len(_COLUMNS) + 1)
    lines = [head, rule]
    for name, r in results.items():
        cells = [_fmt(getattr(r, attr), spec) for _, attr, spec in _COLUMNS]
        lines.append(f"| {name} | " + " | ".join(cells) + f" | {r.n_images} |")
    lines.append("")
    # One footer line per distinct (folder, n, GT CF, GT hue_conc): usually all methods share it.
    seen: dict[tuple[str, int, str, str], list[str]] = {}
    for name, r in results.items():
        key = (r.data_dir, r.n_images, f"{r.cf_gt:.2f}", _fmt(r.hue_conc_gt, "{:.3f}"))
        seen.setdefault(key, []).append(name)
    for (data_dir, n, cf_gt, hc_gt), names in seen.items():
        r = results[names[0]]
        who = "" if len(seen) == 1 else f" ({', '.join(names)})"
        achromatic = f", {r.n_achromatic_gt} achromatic" if r.n_achromatic_gt else ""
        lines.append(
            f"Ground-truth CF{who}: {cf_gt}, hue_conc {hc_gt}{achromatic} on {data_dir} "
            f"({n} images, {r.n_skipped} skipped), {r.size}x{r.size} centre crops."
        )
    lines.append(
        f"PSNR dB on 8-bit RGB (capped at {PSNR_CAP:.2f}); SSIM RGB 7x7; CF Hasler-Suesstrunk of the "
        f"prediction, dCF = |CF - CF_gt|; AuC of ab error over thresholds 0..{AUC_MAX_THRESHOLD}; "
        "CIEDE2000 mean Delta E 2000."
    )
    lines.append(
        f"hue_conc: share of the chroma-weighted Lab hue mass within +-{HUE_HALF_WINDOW} degrees of each "
        f"prediction's dominant hue (1 = one tint, e.g. sepia; 1/6 = uniform hues), mean over images "
        f"with mean chroma >= {HUE_MIN_CHROMA:g}; n/a when all are achromatic."
    )
    achromatic = [f"{name} {r.n_achromatic}/{r.n_images}" for name, r in results.items() if r.n_achromatic]
    if achromatic:
        lines.append(f"Achromatic predictions left out of hue_conc: {', '.join(achromatic)}.")
    lines.append(
        "fd_lite: Frechet distance (FID formula) between EfficientNet-Lite1 ImageNet features of the "
        "predictions and of the ground truth, lower is closer. Not FID: another network and small "
        "sets (biased upward), comparable only between rows of one table (same images, same n)."
    )
    for name, r in results.items():
        for note in r.notes:
            lines.append(f"Note ({name}): {note}.")
    return "\n".join(lines)


def to_json(results: dict[str, EvalResult], per_image: bool = True) -> dict[str, Any]:
    """JSON-ready dict: the protocol, then per method the means, counts, skipped files and
    (if ``per_image``) the per-image rows. Non-finite numbers become ``None``."""

    def clean(v: Any) -> Any:
        if isinstance(v, float) and not math.isfinite(v):
            return None
        return v

    out: dict[str, Any] = {
        "protocol": {
            "crop": "centre square",
            "resize": "PIL bicubic (antialiased)",
            "psnr_cap_db": PSNR_CAP,
            "ssim": "skimage structural_similarity, channel_axis=-1, data_range=255, 7x7 uniform window",
            "auc_thresholds": [0, AUC_MAX_THRESHOLD],
            "lab_from": "uint8 images",
            "hue_conc": f"chroma-weighted share of Lab hue mass within +-{HUE_HALF_WINDOW} deg of the dominant "
                        f"hue (360 one-degree bins); null for images with mean chroma < {HUE_MIN_CHROMA:g}, "
                        "excluded from the mean and counted in n_achromatic",
            "fd_lite": "Frechet distance of pooled 1280-d EfficientNet-Lite1 ImageNet features (RGB, "
                       "evaluation size), predictions vs ground truth; not FID, biased for small sets, "
                       "comparable only within one table",
        },
        "results": {},
    }
    for name, r in results.items():
        entry: dict[str, Any] = {k: clean(v) for k, v in r.summary().items()}
        entry.update(data_dir=r.data_dir, size=r.size, seconds=round(r.seconds, 3))
        entry["notes"] = list(r.notes)
        entry["skipped"] = [{"path": p, "reason": why} for p, why in r.skipped]
        if per_image:
            entry["per_image"] = [{k: clean(v) for k, v in row.items()} for row in r.rows]
        out["results"][name] = entry
    return out
