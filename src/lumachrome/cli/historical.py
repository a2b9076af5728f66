"""Old photos and film for ``lumachrome colorize`` (``--restore``, ``--reference``, ``--palette``,
``--before-after``, ``--video``)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import typer

from lumachrome.cli.common import DEFAULT_OUTPUT_DIR, note, stderr_is_tty, writable_extensions
from lumachrome.errors import LumachromeError


def historical_hooks(
    restore: bool,
    restore_skip: str | None,
    reference: list[str] | None,
    palette: Path | None,
    transfer: str | None,
    strength: float,
    video: bool,
) -> tuple[Any, Any]:
    """``(preprocess, ab_transform)`` for colorize: a Restorer and a ColorCorrection (or None)."""
    from lumachrome.transfer import METHODS

    if transfer is not None and transfer not in METHODS:
        raise typer.BadParameter(f"{transfer!r}: use one of {', '.join(METHODS)}", param_hint="--transfer")
    if transfer is not None and not reference and palette is None:
        raise typer.BadParameter("--transfer needs --reference or --palette", param_hint="--transfer")
    if transfer == "exemplar" and not reference:
        raise typer.BadParameter("the exemplar method needs --reference images", param_hint="--transfer")
    if restore_skip and not restore:
        raise typer.BadParameter("--restore-skip needs --restore", param_hint="--restore-skip")
    restorer = None
    if restore:
        from lumachrome.restore.pipeline import RESTORE_STEPS, restorer_without

        skip = [t.strip() for t in (restore_skip or "").split(",") if t.strip()]
        bad = [t for t in skip if t not in RESTORE_STEPS]
        if bad:
            raise typer.BadParameter(f"unknown step(s) {', '.join(bad)} (use {', '.join(RESTORE_STEPS)})", param_hint="--restore-skip")
        restorer = restorer_without(skip)
    correction = None
    if reference or palette is not None:
        from lumachrome.restore.pipeline import build_correction

        correction = build_correction(
            reference, palette, method=transfer, strength=strength, source_momentum=0.9 if video else 0.0
        )
    return restorer, correction


def write_before_after(restorer: Any, dst: Path, quality: int) -> None:
    """``<dst stem>.before_after.jpg`` beside ``dst``: input | restored | colorized."""
    from lumachrome.imageio import load_image, save_image

    view = restorer.before_after(load_image(dst).rgb)
    target = dst.with_name(f"{dst.stem}.before_after.jpg")
    save_image(target, view, quality=quality)
    note(f"before/after view: {target}")


def run_film(inputs: list[str], output: Path | None, **o: Any) -> int:
    """``colorize --video``: one video file or frame folder -> a video or a frame folder."""
    from lumachrome.film import (
        VIDEO_EXTENSIONS,
        FrameWriter,
        TemporalSmoother,
        colorize_film,
        open_frames,
    )
    from lumachrome.pipeline import load_pipeline

    if len(inputs) != 1:
        raise typer.BadParameter(f"film mode takes one video file or frame folder (got {len(inputs)} inputs)", param_hint="IN")
    src = Path(inputs[0]).expanduser()
    frames = open_frames(src, max_frames=o["max_frames"])
    if output is None:
        output = DEFAULT_OUTPUT_DIR / (f"{src.stem}_color.mp4" if frames.kind == "video" else src.name)
    ext = o["ext"] or (frames.files[0].suffix.lower() if frames.files else ".png")
    ext = ext if ext.startswith(".") else f".{ext}"
    if output.suffix.lower() in VIDEO_EXTENSIONS:
        if output.exists() and not o["overwrite"]:
            raise LumachromeError(f"{output}: output exists (use --overwrite to replace it)")
    elif output.suffix.lower() in writable_extensions():
        raise typer.BadParameter(f"{output}: in film mode -o is a video file or a folder", param_hint="-o")
    elif output.is_dir() and any(output.iterdir()) and not o["overwrite"]:
        raise LumachromeError(f"{output}: output folder is not empty (use --overwrite to replace its frames)")
    if output.resolve() == src.resolve():
        raise LumachromeError(f"{output}: refusing to write over the input")
    colorizer = load_pipeline(o["model"], o["device"], task="colorize", size=o["size"], backend=o["backend"],
                              saturation=o["saturation"])
    writer = FrameWriter(output, fps=frames.fps, ext=ext, quality=o["quality"])
    smoother = TemporalSmoother() if o["temporal"] else False
    show = not o["quiet"] and stderr_is_tty()
    try:
        result = colorize_film(
            colorizer, frames, writer, temporal=smoother, correction=o["correction"], preprocess=o["restorer"],
            progress=(lambda n: print(f"\rlumachrome: {n}/{len(frames)} frames", end="", file=sys.stderr)) if show else None,
        )  # fmt: skip
    except BaseException:
        writer.abort()
        raise
    if show:
        print(file=sys.stderr)
    if not o["quiet"]:
        print(f"colorized {result.summary()} -> {output}")
    return 0
