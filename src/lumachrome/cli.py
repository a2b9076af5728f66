"""``lumachrome`` command line: colorize, evaluate, train, export, data pack, models.

Every user error (a bad path, an unreadable image, an unknown model) is one line on stderr,
``lumachrome: error: <what and where>``, and a non-zero exit code: 1 for errors, 2 for usage
errors, 130 when interrupted. Tracebacks are only shown for bugs.

Heavy modules (torch, the models) are imported inside the commands so ``--help`` and
``--version`` are quick.
"""

from __future__ import annotations

import dataclasses
import json
import os
import sys
import tempfile
from pathlib import Path
from typing import Any, Iterator, List, Optional

import typer

from lumachrome import __version__
from lumachrome.errors import LumachromeError

try:  # typer >= 0.20 vendors click; older releases use click itself
    from typer._click import exceptions as _click_exc
except ImportError:  # pragma: no cover - depends on the installed typer
    from click import exceptions as _click_exc  # type: ignore[no-redef]

__all__ = ["app", "main", "plan_outputs"]

DEFAULT_OUTPUT_DIR = Path("out")

app = typer.Typer(
    name="lumachrome",
    help="Automatic colorization of grayscale images (CIE Lab, U-Net colorizers).",
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)
data_app = typer.Typer(help="Prepare training data.", no_args_is_help=True)
app.add_typer(data_app, name="data")
palette_app = typer.Typer(help="Era palettes: the colour distribution of a set of period references.", no_args_is_help=True)
app.add_typer(palette_app, name="palette")


# --------------------------------------------------------------------------------------------
# output helpers
# --------------------------------------------------------------------------------------------
def _error(message: str) -> None:
    """One line on stderr (newlines in messages are flattened)."""
    print(f"lumachrome: error: {' '.join(str(message).split())}", file=sys.stderr, flush=True)


def _note(message: str) -> None:
    print(f"lumachrome: {' '.join(str(message).split())}", file=sys.stderr, flush=True)


def _stderr_is_tty() -> bool:
    try:
        return sys.stderr.isatty()
    except (AttributeError, ValueError):
        return False


def _writable_extensions() -> tuple[str, ...]:
    """Lower-case extensions (with the dot) that :func:`lumachrome.imageio.save_image` can write."""
    from lumachrome.imageio import SAVE_EXTENSIONS

    return tuple(SAVE_EXTENSIONS)


def _atomic_write_text(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary sibling + rename (``ImageError``-free: OSError
    is reported as a ``LumachromeError``)."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as e:
        raise LumachromeError(f"{path}: cannot write: {e.strerror or e}") from None
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as e:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise LumachromeError(f"{path}: cannot write: {e.strerror or e}") from None


# --------------------------------------------------------------------------------------------
# root: --version
# --------------------------------------------------------------------------------------------
def _version_callback(value: bool) -> None:
    if value:
        print(f"lumachrome {__version__}")
        raise typer.Exit(0)


@app.callback()
def _root(
    version: bool = typer.Option(
        False, "--version", callback=_version_callback, is_eager=True, help="Print the version and exit."
    ),
) -> None:
    """Automatic colorization of grayscale images (CIE Lab, U-Net colorizers)."""


# --------------------------------------------------------------------------------------------
# colorize
# --------------------------------------------------------------------------------------------
@dataclasses.dataclass
class Job:
    """One image to colorize: ``src`` -> ``dst``."""

    src: Path
    dst: Path


@dataclasses.dataclass
class Plan:
    """What ``colorize`` will do: the jobs, and the inputs that already failed (``(name, message)``)."""

    jobs: list[Job]
    errors: list[tuple[str, str]]


def _is_image_path(path: Path, writable: tuple[str, ...]) -> bool:
    return path.suffix.lower() in writable and not path.is_dir()


def plan_outputs(
    inputs: list[str], output: Path | None, ext: str | None, writable: tuple[str, ...] | None = None
) -> Plan:
    """Expand ``inputs`` and decide every output path (the ``colorize`` naming rules).

    * One input **file** and ``-o`` ending in a writable image extension: write exactly there.
    * Otherwise ``-o`` (default ``out/``) is a folder. An input file (or a glob match) keeps its
      file name: ``out/<name>``. The images of an input **folder** keep their path relative to
      that folder: ``photos/a/b.jpg`` -> ``out/a/b.jpg``.
    * The extension is ``--ext`` when given, else the input's when it can be written, else ``.png``
      (e.g. for ``.gif``).
    * An input listed twice is done once; two inputs mapping to the same output are an error for
      the second one.

    Raises:
        typer.BadParameter: ``-o`` names a file but there are several inputs, or a bad ``--ext``.
    """
    from lumachrome.imageio import find_images

    writable = tuple(writable) if writable is not None else _writable_extensions()
    if ext is not None:
        ext = "." + ext.lower().lstrip(".")
        if ext not in writable:
            raise typer.BadParameter(f"{ext!r} cannot be written (use one of {', '.join(writable)})", param_hint="--ext")

    single_file_target = output is not None and _is_image_path(output, writable)
    if single_file_target:
        if len(inputs) != 1 or not Path(inputs[0]).is_file():
            raise typer.BadParameter(
                f"{output} is an image file name, but it can only be used with exactly one input file "
                "(give a folder to -o for several images)",
                param_hint="-o",
            )
        if ext is not None and output.suffix.lower() != ext:
            raise typer.BadParameter(f"--ext {ext} contradicts the extension of {output}", param_hint="--ext")

    out_dir = output if output is not None else DEFAULT_OUTPUT_DIR
    jobs: list[Job] = []
    errors: list[tuple[str, str]] = []
    seen_src: set[Path] = set()
    seen_dst: dict[Path, Path] = {}
    for item in inputs:
        try:
            found = find_images([item])
        except LumachromeError as e:
            errors.append((item, str(e)))
            continue
        base = Path(item).expanduser() if Path(item).expanduser().is_dir() else None
        for src in found:
            key = src.resolve()
            if key in seen_src:
                continue
            seen_src.add(key)
            if single_file_target:
                dst = output
            else:
                rel = src.relative_to(base) if base is not None else Path(src.name)
                suffix = ext or (src.suffix.lower() if src.suffix.lower() in writable else ".png")
                dst = out_dir / rel.with_suffix(suffix)
            dkey = dst.resolve()
            if dkey in seen_dst:
                errors.append((str(src), f"{src}: output {dst} would also be written from {seen_dst[dkey]}"))
                continue
            seen_dst[dkey] = src
            jobs.append(Job(src, dst))
    return Plan(jobs, errors)


def _output_problem(dst: Path) -> str | None:
    """Why ``dst`` cannot be written (a folder in the way, a parent that is a file), or None."""
    if dst.is_dir():
        return f"{dst}: output is a folder, expected an image file name"
    parent = dst.parent
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    if parent.exists() and not parent.is_dir():
        return f"{dst}: cannot create the output: {parent} is a file, not a folder"
    if parent.is_dir() and not os.access(parent, os.W_OK | os.X_OK):
        return f"{dst}: cannot write into {parent}: permission denied"
    return None


_COLORIZE_HELP = (
    "Colorize images: files, folders or globs -> colour images.\n\n"
    "Outputs keep their names (images found in a folder keep their sub-folders) under -o (default out/). "
    "Existing outputs are skipped unless --overwrite; an input is never overwritten. A bad file is reported "
    "on one line and the batch goes on; the exit code is 1 if any image failed."
)


@app.command(help=_COLORIZE_HELP)
def colorize(
    inputs: List[str] = typer.Argument(
        ..., metavar="IN", help="Image files, folders (searched recursively) or quoted glob patterns."
    ),
    output: Optional[Path] = typer.Option(
        None,
        "-o",
        "--output",
        help="Output folder (default: out/), or an image file name when there is one input file.",
    ),
    model: str = typer.Option("photo", "--model", "-m", help="Shipped model name or model folder."),
    size: Optional[int] = typer.Option(
        None, "--size", help="Working resolution of the network (long side, px; default from the model)."
    ),
    ext: Optional[str] = typer.Option(
        None, "--ext", help="Output format: png, jpg, tif, webp, bmp (default: the input's, or png)."
    ),
    device: str = typer.Option("auto", "--device", help="auto, cpu, cuda or cuda:N."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace existing outputs (inputs never)."),
    quality: int = typer.Option(95, "--quality", min=1, max=100, help="JPEG/WebP quality."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar and no summary."),
    backend: str = typer.Option(
        "torch", "--backend", help="Network runtime: torch (eager PyTorch) or onnx (ONNX Runtime: the network ~3x faster on CPU)."
    ),
    archive: bool = typer.Option(
        False,
        "--archive",
        help="Archive mode for one folder tree of any size: streamed, batched, resumable, with a JSONL manifest "
        "(automatic under torchrun, which splits the tree across processes).",
    ),
    manifest: Optional[Path] = typer.Option(
        None, "--manifest", help="Archive mode: manifest file (default OUT/manifest.jsonl); implies --archive."
    ),
    batch_size: Optional[int] = typer.Option(
        None, "--batch-size", min=1, help="Archive mode: images per network call (default 4 on the CPU, 16 on CUDA)."
    ),
    workers: Optional[int] = typer.Option(
        None, "--workers", min=1, help="Archive mode: decode and encode threads (default: the cores per process)."
    ),
    restore: bool = typer.Option(
        False, "--restore", help="Old prints: neutralise tint, levels, dust/scratch inpainting, denoise, CLAHE first."
    ),
    restore_skip: Optional[str] = typer.Option(
        None, "--restore-skip", metavar="STEPS", help="Comma-separated --restore steps to skip: levels,defects,denoise,contrast."
    ),
    reference: Optional[List[str]] = typer.Option(
        None, "--reference", "-r", metavar="IMG", help="Colour reference photo(s), file/folder/glob; repeat for several."
    ),
    strength: float = typer.Option(1.0, "--strength", min=0.0, max=1.0, help="Reference/palette correction strength."),
    transfer: Optional[str] = typer.Option(
        None, "--transfer", help="reinhard, bands (default with --reference), histogram (default with --palette), exemplar."
    ),
    palette: Optional[Path] = typer.Option(None, "--palette", help="Era palette JSON (lumachrome palette build)."),
    before_after: bool = typer.Option(
        False, "--before-after", help="Also write OUT.before_after.jpg: input | restored | colorized."
    ),
    video: bool = typer.Option(
        False, "--video", help="Film mode: IN is a video file or a folder of frames; -o a video (.mp4/.avi) or a folder."
    ),
    temporal: bool = typer.Option(True, "--temporal/--no-temporal", help="Film mode: flow-guided temporal smoothing."),
    max_frames: Optional[int] = typer.Option(None, "--max-frames", min=1, help="Film mode: stop after N frames."),
) -> int:
    """See ``_COLORIZE_HELP`` and :func:`plan_outputs` for the naming rules."""
    from lumachrome.imageio import probe_image

    if backend not in ("torch", "onnx"):
        raise typer.BadParameter(f"{backend!r}: use torch or onnx", param_hint="--backend")
    historical = restore or bool(reference) or palette is not None or before_after or video
    if historical and (archive or manifest is not None or _torchrun_world_size() > 1):
        raise typer.BadParameter(
            "--restore/--reference/--palette/--video do not combine with --archive (nor with torchrun)",
            param_hint="--archive",
        )
    restorer, correction = _historical_hooks(restore, restore_skip, reference, palette, transfer, strength, video)
    if before_after and restorer is None:
        from lumachrome.restore.pipeline import Restorer
        from lumachrome.restore.prepare import PrepareOptions

        # a view of the input beside the result: no preparation step runs
        restorer = Restorer(PrepareOptions(levels=False, defects=False, denoise=False, contrast=0.0))
    if video:
        return _colorize_film(
            inputs, output, model=model, size=size, device=device, backend=backend, ext=ext, overwrite=overwrite,
            quality=quality, quiet=quiet, restorer=restorer, correction=correction, temporal=temporal,
            max_frames=max_frames,
        )  # fmt: skip
    if archive or manifest is not None or _torchrun_world_size() > 1:
        return _colorize_archive(
            inputs, output, model=model, size=size, ext=ext, device=device, overwrite=overwrite, quality=quality,
            quiet=quiet, backend=backend, manifest=manifest, batch_size=batch_size, workers=workers,
        )  # fmt: skip

    plan = plan_outputs(inputs, output, ext)
    failed = 0
    for _name, message in plan.errors:
        _error(message)
        failed += 1
    # Cheap checks first (headers, output folders), so bad inputs fail fast, before the model loads.
    candidates: list[Job] = []
    for job in plan.jobs:
        problem = _output_problem(job.dst)
        if problem is None:
            try:
                probe_image(job.src)
            except LumachromeError as e:
                problem = str(e)
        if problem is not None:
            _error(problem)
            failed += 1
        else:
            candidates.append(job)
    if not candidates:
        return 1 if failed else 0

    from lumachrome.colorizer import Colorizer, is_same_file

    todo: list[Job] = []
    skipped = 0
    for job in candidates:
        if is_same_file(job.src, job.dst):
            _error(f"{job.src}: refusing to overwrite the input image (choose another -o)")
            failed += 1
        elif job.dst.exists() and not overwrite:
            _note(f"skipped {job.src}: {job.dst} exists (use --overwrite to replace it)")
            skipped += 1
        else:
            todo.append(job)
    if not todo:
        if not quiet and skipped:
            print(f"nothing to do: {skipped} output(s) already exist")
        return 1 if failed else 0

    colorizer = Colorizer.load(model, device=device, size=size, backend=backend)
    done = 0
    with _progress(len(todo), enabled=not quiet and len(todo) > 1 and _stderr_is_tty()) as advance:
        for job in todo:
            try:
                colorizer.colorize_file(
                    job.src, job.dst, overwrite=overwrite, quality=quality, preprocess=restorer, ab_transform=correction
                )
                if restorer is not None and restorer.last is not None and not quiet and restore:
                    _note(f"{job.src.name}: " + "; ".join(str(st) for st in restorer.last.steps))
                if before_after and restorer is not None:
                    _write_before_after(restorer, job.dst, quality)
                done += 1
            except LumachromeError as e:
                message = str(e)
                if str(job.src) not in message and job.src.name not in message:
                    message = f"{job.src}: {message}"
                advance.error(message)
                failed += 1
            except MemoryError:
                advance.error(f"{job.src}: out of memory")
                failed += 1
            advance(job.src.name)
    if not quiet:
        where = plan.jobs[0].dst if len(plan.jobs) == 1 else (output or DEFAULT_OUTPUT_DIR)
        parts = [f"colorized {done} image(s) -> {where}"]
        if skipped:
            parts.append(f"{skipped} skipped")
        if failed:
            parts.append(f"{failed} failed")
        print(", ".join(parts))
    return 1 if failed else 0


def _torchrun_world_size() -> int:
    """``WORLD_SIZE`` set by torchrun (1 without it, or when it is not a number)."""
    try:
        return int(os.environ.get("WORLD_SIZE", "1") or 1)
    except ValueError:
        return 1


def _colorize_archive(inputs: list[str], output: Path | None, **options: Any) -> int:
    """``colorize --archive`` / under torchrun: one folder tree -> mirrored tree (:mod:`lumachrome.batch`)."""
    from lumachrome.batch import run_archive

    world = _torchrun_world_size()
    why = "under torchrun" if world > 1 else "in archive mode"
    if len(inputs) != 1 or not Path(inputs[0]).expanduser().is_dir():
        raise typer.BadParameter(f"{why}, colorize takes exactly one input folder (got {' '.join(inputs)})", param_hint="IN")
    out_dir = output if output is not None else DEFAULT_OUTPUT_DIR
    if out_dir.suffix.lower() in _writable_extensions() and not out_dir.is_dir():
        raise typer.BadParameter(f"{out_dir}: {why}, -o is an output folder, not an image file", param_hint="-o")
    return run_archive(Path(inputs[0]).expanduser(), out_dir, progress=_stderr_is_tty(), **options)


class _Advance:
    """Progress callback: ``advance(name)`` after each image, ``advance.error(msg)`` for failures."""

    def __init__(self, progress: Any = None, task: Any = None) -> None:
        self.progress, self.task = progress, task

    def __call__(self, name: str) -> None:
        if self.progress is not None:
            self.progress.update(self.task, advance=1, description=name[:40])

    def error(self, message: str) -> None:
        if self.progress is not None:
            text = f"lumachrome: error: {' '.join(message.split())}"
            self.progress.console.print(text, markup=False, highlight=False, soft_wrap=True)
        else:
            _error(message)


class _progress:
    """Context manager yielding an :class:`_Advance`; a rich bar on stderr when ``enabled``."""

    def __init__(self, total: int, enabled: bool) -> None:
        self.total, self.enabled, self._bar = total, enabled, None

    def __enter__(self) -> _Advance:
        if not self.enabled:
            return _Advance()
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        self._bar = Progress(
            TextColumn("[bold]colorize"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeRemainingColumn(),
            TextColumn("{task.description}"),
            console=Console(stderr=True),
            transient=True,
        )
        self._bar.__enter__()
        return _Advance(self._bar, self._bar.add_task("", total=self.total))

    def __exit__(self, *exc: Any) -> None:
        if self._bar is not None:
            self._bar.__exit__(*exc)


# --------------------------------------------------------------------------------------------
# evaluate
# --------------------------------------------------------------------------------------------
@app.command()
def evaluate(
    data: Path = typer.Option(..., "--data", help="Folder of colour images (searched recursively)."),
    model: str = typer.Option("photo", "--model", "-m", help="Shipped model name or model folder."),
    json_out: Optional[Path] = typer.Option(None, "--json", help="Also write the results to this JSON file."),
    size: int = typer.Option(256, "--size", help="Centre-crop side the metrics are computed at."),
    limit: Optional[int] = typer.Option(None, "--limit", min=1, help="Use only the first N images."),
    batch_size: int = typer.Option(16, "--batch-size", min=1, help="Images per network call."),
    device: str = typer.Option("auto", "--device", help="auto, cpu, cuda or cuda:N."),
) -> int:
    """Score a model on a folder of colour photos, next to the gray baseline (ab = 0)."""
    from lumachrome.colorizer import Colorizer
    from lumachrome.evaluate import evaluate as run_evaluation
    from lumachrome.evaluate import format_table, gray_predictor, to_json

    colorizer = Colorizer.load(model, device=device)
    progress = _stderr_is_tty()
    common = dict(size=size, batch_size=batch_size, limit=limit, progress=progress)
    results = {
        colorizer.name: run_evaluation(colorizer.predict_ab_working, data, **common),
        "gray": run_evaluation(gray_predictor, data, **common),
    }
    print(format_table(results))
    if json_out is not None:
        _atomic_write_text(json_out, json.dumps(to_json(results), indent=2) + "\n")
        print(f"results written to {json_out}")
    return 0


# --------------------------------------------------------------------------------------------
# train / export
# --------------------------------------------------------------------------------------------
@app.command(
    context_settings={"allow_extra_args": True, "ignore_unknown_options": True, "help_option_names": []},
    add_help_option=False,
)
def train(ctx: typer.Context) -> int:
    """Train a colorizer (all arguments go to the trainer: lumachrome train --help)."""
    from lumachrome.train.cli import train_main

    try:
        return int(train_main(list(ctx.args)) or 0)
    except SystemExit as e:  # argparse: --help (0) and usage errors (2)
        code = e.code
        return code if isinstance(code, int) else (0 if code is None else 1)


@app.command()
def export(
    checkpoint: Path = typer.Argument(
        ...,
        metavar="CKPT",
        help="Checkpoint folder, run folder or checkpoints/; with --format onnx also a model folder or shipped name.",
    ),
    output: Optional[Path] = typer.Option(
        None, "-o", "--output", help="Model folder to write (for a model folder with --format onnx: a .onnx file)."
    ),
    name: Optional[str] = typer.Option(None, "--name", help="Model name (default: the run's name)."),
    fmt: str = typer.Option(
        "safetensors", "--format", help="safetensors (a model folder) or onnx (also MODEL/model.onnx, opset 17)."
    ),
    opset: int = typer.Option(17, "--opset", min=13, help="ONNX opset (--format onnx)."),
) -> int:
    """Export a training checkpoint to a model folder (config.json, model.safetensors, README.md),
    and/or a model folder's network to ONNX (model.onnx, for colorize --backend onnx)."""
    fmt = fmt.lower()
    if fmt not in ("safetensors", "onnx"):
        raise typer.BadParameter(f"{fmt!r}: use safetensors or onnx", param_hint="--format")
    from lumachrome.models.io import CONFIG_NAME

    text = str(checkpoint)
    is_model = (checkpoint / CONFIG_NAME).is_file()
    if not is_model and fmt == "onnx" and "/" not in text and os.sep not in text and not checkpoint.exists():
        from lumachrome.colorizer import available_models

        is_model = text in available_models()  # a shipped model name
    if fmt == "onnx" and is_model:
        from lumachrome.onnx_export import export_onnx

        if output is not None and output.suffix.lower() != ".onnx":
            raise typer.BadParameter(f"{output}: for a model folder, -o is the .onnx file to write", param_hint="-o")
        target = export_onnx(text if not checkpoint.exists() else checkpoint, output, opset=opset)
        print(f"ONNX model written to {target} (opset {opset}; use it with --backend onnx)")
        return 0
    if output is None:
        raise typer.BadParameter("the model folder to write is required for a checkpoint", param_hint="-o")
    from lumachrome.train.export import export_checkpoint

    out = export_checkpoint(checkpoint, output, name=name)
    print(f"model written to {out} (use it with --model {out})")
    if fmt == "onnx":
        from lumachrome.onnx_export import export_onnx

        target = export_onnx(out, opset=opset)
        print(f"ONNX model written to {target} (opset {opset}; use it with --backend onnx)")
    return 0


# --------------------------------------------------------------------------------------------
# data pack
# --------------------------------------------------------------------------------------------
@data_app.command("pack")
def data_pack(
    folders: List[Path] = typer.Argument(..., metavar="DIR", help="Folders of colour images."),
    output: Path = typer.Option(..., "-o", "--output", help="Pack file to write."),
    size: int = typer.Option(128, "--size", min=8, help="Side of the stored square images (px)."),
    max_images: Optional[int] = typer.Option(None, "--max-images", min=1, help="Stop after N images."),
) -> int:
    """Decode, centre-crop and resize folders of images once into a pack file for fast training."""
    from lumachrome.data.pack import build_pack

    info = build_pack(folders, output, size=size, max_images=max_images, progress=_stderr_is_tty())
    count, side = getattr(info, "count", "?"), getattr(info, "size", size)
    unreadable, gray = getattr(info, "skipped_unreadable", 0), getattr(info, "skipped_gray", 0)
    seconds = float(getattr(info, "seconds", 0.0))
    print(
        f"pack written to {output}: {count} images of {side}x{side} "
        f"(skipped {unreadable} unreadable, {gray} grayscale) in {seconds:.1f} s"
    )
    return 0


# --------------------------------------------------------------------------------------------
# old photos and film (colorize --restore / --reference / --palette / --video), palette build
# --------------------------------------------------------------------------------------------
_RESTORE_STEPS = {"levels": "levels", "defects": "defects", "denoise": "denoise", "contrast": "contrast"}


def _historical_hooks(
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
        from lumachrome.restore.pipeline import Restorer
        from lumachrome.restore.prepare import PrepareOptions

        skip = [t.strip() for t in (restore_skip or "").split(",") if t.strip()]
        bad = [t for t in skip if t not in _RESTORE_STEPS]
        if bad:
            raise typer.BadParameter(f"unknown step(s) {', '.join(bad)} (use {', '.join(_RESTORE_STEPS)})", param_hint="--restore-skip")
        opts = PrepareOptions()
        for t in skip:
            setattr(opts, _RESTORE_STEPS[t], 0.0 if t == "contrast" else False)
        restorer = Restorer(opts)
    correction = None
    if reference or palette is not None:
        from lumachrome.restore.pipeline import build_correction

        correction = build_correction(
            reference, palette, method=transfer, strength=strength, source_momentum=0.9 if video else 0.0
        )
    return restorer, correction


def _write_before_after(restorer: Any, dst: Path, quality: int) -> None:
    """``<dst stem>.before_after.jpg`` beside ``dst``: input | restored | colorized."""
    from lumachrome.imageio import load_image, save_image

    view = restorer.before_after(load_image(dst).rgb)
    target = dst.with_name(f"{dst.stem}.before_after.jpg")
    save_image(target, view, quality=quality)
    _note(f"before/after view: {target}")


def _colorize_film(inputs: list[str], output: Path | None, **o: Any) -> int:
    """``colorize --video``: one video file or frame folder -> a video or a frame folder."""
    from lumachrome.colorizer import Colorizer
    from lumachrome.film import VIDEO_EXTENSIONS, FrameWriter, TemporalSmoother, colorize_film, open_frames

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
    elif output.suffix.lower() in _writable_extensions():
        raise typer.BadParameter(f"{output}: in film mode -o is a video file or a folder", param_hint="-o")
    elif output.is_dir() and any(output.iterdir()) and not o["overwrite"]:
        raise LumachromeError(f"{output}: output folder is not empty (use --overwrite to replace its frames)")
    if output.resolve() == src.resolve():
        raise LumachromeError(f"{output}: refusing to write over the input")
    colorizer = Colorizer.load(o["model"], device=o["device"], size=o["size"], backend=o["backend"])
    writer = FrameWriter(output, fps=frames.fps, ext=ext, quality=o["quality"])
    smoother = TemporalSmoother() if o["temporal"] else False
    show = not o["quiet"] and _stderr_is_tty()
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


@palette_app.command("build")
def palette_build(
    references: List[str] = typer.Argument(..., metavar="REFS", help="Colour reference images, folders or globs."),
    output: Path = typer.Option(..., "-o", "--output", help="Palette file to write (JSON)."),
    name: Optional[str] = typer.Option(None, "--name", help="Palette name (default: the output file's stem)."),
) -> int:
    """Learn an era palette (ab distribution per lightness band) from period colour references."""
    from lumachrome.transfer import build_palette

    pal = build_palette(references, name=name or output.stem)
    pal.save(output)
    print(pal.describe())
    print(f"palette written to {output} (use it with colorize --palette {output})")
    return 0


@palette_app.command("show")
def palette_show(path: Path = typer.Argument(..., metavar="PALETTE", help="Palette JSON file.")) -> int:
    """Print a palette's sources and mean colour per lightness band."""
    from lumachrome.transfer import Palette

    print(Palette.load(path).describe())
    return 0


# --------------------------------------------------------------------------------------------
# models
# --------------------------------------------------------------------------------------------
def _describe_models() -> Iterator[str]:
    from lumachrome.colorizer import _weights_root, available_models

    root = _weights_root()
    for name in available_models():
        assert root is not None
        folder = root / name
        try:
            config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
        except (OSError, ValueError) as e:
            yield f"{name}\t(unreadable config.json: {e})"
            continue
        args = config.get("args") or {}
        head = args.get("head", "regression")
        widths = args.get("widths")
        size = (config.get("preprocessing") or {}).get("size", 256)
        arch = config.get("architecture", "?") + (f" widths={widths}" if widths else "")
        yield f"{name}\t{arch}, {head} head, working size {size}\t{folder}"


@app.command("models")
def models_command() -> int:
    """List the shipped models (use them with --model NAME)."""
    lines = list(_describe_models())
    if not lines:
        print("no shipped models in lumachrome/weights/ (train one: lumachrome train, then lumachrome export)")
        return 0
    for line in lines:
        print(line)
    return 0


# --------------------------------------------------------------------------------------------
# entry point
# --------------------------------------------------------------------------------------------
def main(argv: list[str] | None = None) -> int:
    """Run the CLI and return its exit code (``python -m lumachrome`` and the console script)."""
    command = typer.main.get_command(app)
    try:
        rv = command.main(args=argv, prog_name="lumachrome", standalone_mode=False)
    except LumachromeError as e:
        _error(str(e))
        return 1
    except KeyboardInterrupt:
        print("lumachrome: interrupted", file=sys.stderr)
        return 130
    except _click_exc.ClickException as e:
        try:
            from typer import rich_utils

            rich_utils.rich_format_error(e)
        except Exception:  # pragma: no cover - fall back to click's plain format
            e.show()
        return e.exit_code
    except typer.Abort:
        print("lumachrome: aborted", file=sys.stderr)
        return 1
    except BrokenPipeError:
        return 1
    if rv == 130:  # typer turns KeyboardInterrupt into Exit(130)
        print("lumachrome: interrupted", file=sys.stderr)
    if isinstance(rv, bool) or not isinstance(rv, int):
        return 0
    return rv


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
