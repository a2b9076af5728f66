"""Watch a model learn: a GIF of a training run (``lumachrome explain --checkpoints RUN_DIR``).

A run folder written by ``lumachrome train`` (:mod:`lumachrome.train.loop`) holds a sample grid per
epoch (``samples/epoch-NNN.png``: rows of gray input | prediction | ground truth on the same
validation images) and the last few checkpoints (``checkpoints/step-*``). :func:`checkpoints_gif`
animates the grids, one frame per epoch (tall grids rearranged into columns), with the epoch, step
and validation numbers from ``metrics.jsonl`` written above each frame. Given an ``image``, it instead re-renders that image with
every stored checkpoint (EMA weights when present) and the exported ``model/``, one frame each.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

import numpy as np

from lumachrome.atomic import atomic_open
from lumachrome.errors import ImageError, ModelError

__all__ = ["checkpoints_gif", "sample_grids"]

_EPOCH = re.compile(r"epoch-(\d+)\.png$")


def sample_grids(run_dir: str | os.PathLike[str]) -> list[tuple[int, Path]]:
    """``(epoch, path)`` of a run's sample grids, in epoch order."""
    folder = Path(run_dir) / "samples"
    found = []
    if folder.is_dir():
        for p in folder.iterdir():
            m = _EPOCH.search(p.name)
            if m and p.is_file():
                found.append((int(m.group(1)), p))
    return sorted(found)


def _metrics(run_dir: Path) -> dict[int, dict[str, Any]]:
    out: dict[int, dict[str, Any]] = {}
    path = run_dir / "metrics.jsonl"
    if not path.is_file():
        return out
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        try:
            rec = json.loads(line)
            out[int(rec["epoch"])] = rec
        except (ValueError, KeyError, TypeError):
            continue
    return out


def _font(size: int):
    from PIL import ImageFont

    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # pragma: no cover - Pillow < 10.1
        return ImageFont.load_default()


def reflow_grid(grid: np.ndarray, gap: int = 8) -> np.ndarray:
    """A tall sample grid (rows of 3 squares: gray | prediction | truth) rearranged into 2 or 3 columns
    of rows, so it fits a screen; other images are returned as they are."""
    h, w = grid.shape[:2]
    side = w // 3
    if side < 1 or w % 3 or h % side:
        return grid
    n = h // side
    cols = 3 if n >= 12 else 2 if n >= 4 else 1
    if cols == 1:
        return grid
    per = -(-n // cols)
    out = np.full((per * side, cols * w + (cols - 1) * gap) + grid.shape[2:], 24 if grid.dtype == np.uint8 else 0.1,
                  dtype=grid.dtype)
    for i in range(n):
        c, r = divmod(i, per)
        out[r * side : (r + 1) * side, c * (w + gap) : c * (w + gap) + w] = grid[i * side : (i + 1) * side]
    return out


def _frame(rgb: np.ndarray, label: str, max_height: int, width: int | None = None):
    """uint8/float RGB -> a PIL frame with a label strip (one or two lines) on top, at most ``max_height`` tall."""
    from PIL import Image, ImageDraw

    a = np.asarray(rgb)
    if a.dtype != np.uint8:
        a = (np.clip(a, 0, 1) * 255 + 0.5).astype(np.uint8)
    im = Image.fromarray(a)
    strip = 22 * (label.count("\n") + 1) + 4
    if im.height + strip > max_height:
        s = (max_height - strip) / im.height
        im = im.resize((max(1, round(im.width * s)), max(1, round(im.height * s))), Image.LANCZOS)
    w = max(width or im.width, im.width)
    canvas = Image.new("RGB", (w, im.height + strip), (24, 24, 24))
    canvas.paste(im, ((w - im.width) // 2, strip))
    ImageDraw.Draw(canvas).text((8, 4), label, fill=(235, 235, 235), font=_font(15))
    return canvas


def _write_gif(frames: list, durations: list[int], out_path: Path) -> Path:
    if out_path.suffix.lower() != ".gif":
        raise ImageError(f"{out_path}: the animation is written as a .gif file")
    with atomic_open(out_path, "wb", error=ImageError, suffix=".gif") as f:
        frames[0].save(f, format="GIF", save_all=True, append_images=frames[1:], duration=durations, loop=0)
    return out_path


def _checkpoint_colorizers(run_dir: Path):
    """``(label, Colorizer)`` for every stored checkpoint (oldest first) and the exported model."""
    from lumachrome.colorizer import Colorizer
    from lumachrome.models import create_model
    from lumachrome.train.checkpoint import load_checkpoint

    steps = sorted(p for p in (run_dir / "checkpoints").glob("step-*") if (p / "state.json").is_file())
    for path in steps:
        c = load_checkpoint(path)
        spec = c.state.get("model") or {}
        if "architecture" not in spec:
            raise ModelError(f"{path}: checkpoint has no model description")
        model = create_model(spec["architecture"], **spec["args"])
        sd = c.model
        if c.ema is not None:
            sd = {k[len("module."):]: v for k, v in c.ema.items() if k.startswith("module.")} or c.model
        try:
            model.load_state_dict(sd, strict=True)
        except RuntimeError as e:
            raise ModelError(f"{path}: weights do not match the stored architecture ({str(e).splitlines()[0]})") from None
        config = {"preprocessing": spec.get("preprocessing") or {}, "decoding": spec.get("decoding") or {},
                  "name": f"step {c.step}"}
        if config["decoding"].get("temperature"):
            model.default_temperature = float(config["decoding"]["temperature"])
        yield f"step {c.step} (epoch {c.state.get('epoch', '?')})", Colorizer(model, config, device="cpu")
    if (run_dir / "model" / "config.json").is_file():
        from lumachrome.pipeline import load_pipeline

        yield "exported model (EMA, end of training)", load_pipeline(run_dir / "model", "cpu", task="colorize")


def checkpoints_gif(
    run_dir: str | os.PathLike[str],
    out_path: str | os.PathLike[str],
    *,
    image: Any = None,
    max_height: int = 720,
    frame_ms: int = 700,
    last_ms: int = 2000,
) -> Path:
    """Animate a training run into ``out_path`` (a ``.gif``); returns it.

    Args:
        run_dir: a ``lumachrome train`` run folder.
        out_path: the GIF to write (atomically).
        image: optional image (path or array): re-render it with every stored checkpoint instead of
            animating the sample grids (the frames then show gray | checkpoint's colours).
        max_height: frames are shrunk to at most this height (px).
        frame_ms, last_ms: duration of each frame and of the last one.

    Raises:
        ModelError: not a run folder, or a run with nothing to animate.
        ImageError: the GIF cannot be written.
    """
    run = Path(run_dir)
    out = Path(out_path)
    if not run.is_dir():
        raise ModelError(f"{run}: no such run folder")
    frames = []
    if image is None:
        grids = sample_grids(run)
        if not grids:
            raise ModelError(f"{run}: no sample grids (samples/epoch-NNN.png); is it a lumachrome train run folder?")
        from lumachrome.imageio import load_image

        metrics = _metrics(run)
        for epoch, path in grids:
            rec = metrics.get(epoch, {})
            label = f"epoch {epoch}" + (f", step {rec['step']}" if "step" in rec else "")
            label += "   (gray | prediction | truth)"
            nums = [f"{name} {rec[key]:.3g}" for key, name in (("psnr", "PSNR"), ("auc", "AuC"), ("cf", "colourfulness"))
                    if isinstance(rec.get(key), (int, float))]
            if nums:
                label += "\nvalidation: " + ", ".join(nums)
            frames.append(_frame(reflow_grid(load_image(path).rgb), label, max_height))
    else:
        from lumachrome.explain.core import load_input

        x, _ = load_input(image)
        if x.ndim == 2:
            x = np.repeat(x[:, :, None], 3, axis=2)
        if max(x.shape[:2]) > 512:  # frames are small anyway
            import cv2

            s = 512 / max(x.shape[:2])
            x = cv2.resize(x, (max(1, round(x.shape[1] * s)), max(1, round(x.shape[0] * s))), interpolation=cv2.INTER_AREA)
        gray = np.repeat(np.clip(_lab_L(x) / 100.0, 0, 1)[:, :, None], 3, axis=2)
        for label, col in _checkpoint_colorizers(run):
            rgb = col.colorize_array(x)
            frames.append(_frame(np.concatenate([gray, rgb], axis=1), f"{label}   (gray | colorized)", max_height))
        if not frames:
            raise ModelError(f"{run}: no checkpoints (checkpoints/step-*) and no exported model/ to re-render the image with")
    width, height = max(f.width for f in frames), max(f.height for f in frames)
    if any((f.width, f.height) != (width, height) for f in frames):
        from PIL import Image

        padded = []
        for f in frames:
            c = Image.new("RGB", (width, height), (24, 24, 24))
            c.paste(f, ((width - f.width) // 2, 0))
            padded.append(c)
        frames = padded
    durations = [frame_ms] * (len(frames) - 1) + [last_ms]
    return _write_gif(frames, durations, out)


def _lab_L(x: np.ndarray) -> np.ndarray:
    from lumachrome.color.lab import image_to_lab_np

    return image_to_lab_np(np.clip(x, 0.0, 1.0))[:, :, 0]
