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
import math
import os
import sys
import warnings
from pathlib import Path
from typing import Any, Callable, Iterator, List, Optional

import typer

from lumachrome import __version__
from lumachrome.atomic import atomic_write_text
from lumachrome.errors import LumachromeError, LumachromeWarning, UsageError

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


def _show_warning(message: Any, category: type, filename: str, lineno: int, file: Any = None, line: Any = None) -> None:
    """``warnings.showwarning`` while the CLI runs: a :class:`LumachromeWarning` (an input problem
    that was worked around) is one ``lumachrome: warning: ...`` line; library warnings (numpy's
    RuntimeWarning, torch's UserWarnings) are not for users and stay silent unless Python was asked
    for them (``-W`` / ``PYTHONWARNINGS``)."""
    if issubclass(category, LumachromeWarning):
        print(f"lumachrome: warning: {' '.join(str(message).split())}", file=sys.stderr, flush=True)
    elif sys.warnoptions:
        print(warnings.formatwarning(message, category, filename, lineno, line), file=sys.stderr, end="", flush=True)


def _note(message: str) -> None:
    print(f"lumachrome: {' '.join(str(message).split())}", file=sys.stderr, flush=True)


def _stderr_is_tty() -> bool:
    try:
        return sys.stderr.isatty()
    except (AttributeError, ValueError):
        return False


def _finite(value: Optional[float]) -> Optional[float]:
    """Option callback of every float option: ``nan`` and ``inf`` are usage errors (exit code 2), as
    out-of-range values are (a one-sided range such as ``min=0`` lets ``inf`` through)."""
    if value is not None and not math.isfinite(value):
        raise typer.BadParameter(f"{value!r} is not a finite number")
    return value


def _writable_extensions() -> tuple[str, ...]:
    """Lower-case extensions (with the dot) that :func:`lumachrome.imageio.save_image` can write."""
    from lumachrome.imageio import SAVE_EXTENSIONS

    return tuple(SAVE_EXTENSIONS)


def _atomic_write_text(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary sibling + rename (``ImageError``-free: OSError
    is reported as a ``LumachromeError``)."""
    atomic_write_text(path, text, error=LumachromeError, fsync=True)


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
    from lumachrome.imageio import find_images, path_key

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
            key = path_key(src)
            if key in seen_src:
                continue
            seen_src.add(key)
            if single_file_target:
                dst = output
            else:
                rel = src.relative_to(base) if base is not None else Path(src.name)
                suffix = ext or (src.suffix.lower() if src.suffix.lower() in writable else ".png")
                dst = out_dir / rel.with_suffix(suffix)
            dkey = path_key(dst)
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
        None, "--size", min=16, max=4096, help="Working resolution of the network (long side, px; default from the model)."
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
    saturation: Optional[float] = typer.Option(
        None, "--saturation", callback=_finite, min=0.0, max=4.0, help="Chroma gain: 1 = the model's colour (default: the model's "
        "setting), 0 = gray, 1.3 = 30% more colourful. Hints keep their exact colour.",
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
    strength: float = typer.Option(1.0, "--strength", callback=_finite, min=0.0, max=1.0, help="Reference/palette correction strength."),
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
    hint: Optional[List[str]] = typer.Option(
        None, "--hint", metavar="X,Y,#RRGGBB", help="Colour hint at pixel column X, row Y of the input; repeat for "
        "several (one input image; the default model becomes photo-hints).",
    ),
    bands: Optional[str] = typer.Option(
        None, "--bands", metavar="N[,N]", help="Translation models (nir): 1-based band index(es) of a multi-band GeoTIFF input."
    ),
    band_name: Optional[str] = typer.Option(
        None, "--band-name", metavar="NAME", help="Translation models (nir): pick the GeoTIFF band by its description, e.g. nir."
    ),
) -> int:
    """See ``_COLORIZE_HELP`` and :func:`plan_outputs` for the naming rules."""
    hints = None
    if hint:
        from lumachrome.errors import ConfigError
        from lumachrome.hints import parse_hint

        hints = [parse_hint(h) for h in hint]  # ConfigError: one line naming the bad hint
        if video or archive or manifest is not None or _torchrun_world_size() > 1:
            raise ConfigError("--hint: colour hints are for single images (not --video nor --archive)")
        if model == "photo":  # the default: its hint-conditioned fine-tune
            model = "photo-hints"

    if backend not in ("torch", "onnx"):
        raise typer.BadParameter(f"{backend!r}: use torch or onnx", param_hint="--backend")
    from lumachrome.translate import is_translate_model

    if is_translate_model(model):  # sketch / nir / thermal: image-to-image models (lumachrome.translate)
        others = {"--restore": restore, "--reference": reference, "--palette": palette, "--before-after": before_after,
                  "--video": video, "--archive": archive or manifest is not None, "--hint": hint,
                  "--backend onnx": backend != "torch", "--saturation": saturation is not None}  # fmt: skip
        bad = [k for k, v in others.items() if v]
        if bad:
            raise typer.BadParameter(f"{', '.join(bad)}: not available with translation model {model!r}", param_hint="--model")
        return _colorize_translate(
            inputs, output, model=model, size=size, ext=ext, device=device, overwrite=overwrite, quality=quality,
            quiet=quiet, bands=bands, band_name=band_name,
        )  # fmt: skip
    if bands is not None or band_name is not None:
        raise typer.BadParameter("--bands/--band-name are for translation models (e.g. --model nir)", param_hint="--bands")
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
            inputs, output, model=model, size=size, device=device, backend=backend, saturation=saturation, ext=ext,
            overwrite=overwrite,
            quality=quality, quiet=quiet, restorer=restorer, correction=correction, temporal=temporal,
            max_frames=max_frames,
        )  # fmt: skip
    if archive or manifest is not None or _torchrun_world_size() > 1:
        return _colorize_archive(
            inputs, output, model=model, size=size, ext=ext, device=device, overwrite=overwrite, quality=quality,
            quiet=quiet, backend=backend, saturation=saturation, manifest=manifest, batch_size=batch_size,
            workers=workers,
        )  # fmt: skip

    plan = plan_outputs(inputs, output, ext)
    if hints and len(plan.jobs) + len(plan.errors) > 1:
        raise ConfigError("--hint: hints are pixel positions of one image: give one input image")
    # Cheap checks first (headers, output folders), so bad inputs fail fast, before the model loads.
    todo, failed, skipped = _triage(plan, overwrite, probe=True)
    from lumachrome.colorizer import Colorizer

    if not todo:
        if not quiet and skipped:
            print(f"nothing to do: {skipped} output(s) already exist")
        return 1 if failed else 0

    colorizer = Colorizer.load(model, device=device, size=size, backend=backend, saturation=saturation)
    if hints and not colorizer.accepts_hints:
        raise ConfigError(f"--hint: model {model!r} takes no colour hints (use --model photo-hints)")

    def colorize_one(job: Any) -> None:
        colorizer.colorize_file(
            job.src, job.dst, overwrite=overwrite, quality=quality, preprocess=restorer, ab_transform=correction,
            hints=hints,
        )
        if restorer is not None and restorer.last is not None and not quiet and restore:
            _note(f"{job.src.name}: " + "; ".join(str(st) for st in restorer.last.steps))
        if before_after and restorer is not None:
            _write_before_after(restorer, job.dst, quality)

    done, errors = _run_jobs(todo, colorize_one, quiet)
    failed += errors
    if not quiet:
        _print_summary("colorized", plan, output, done, skipped, failed)
    return 1 if failed else 0


def _print_summary(verb: str, plan: Any, output: Path | None, done: int, skipped: int, failed: int) -> None:
    """The last line of a colorize/translate run: ``<verb> N image(s) -> WHERE[, k skipped][, m failed]``."""
    where = plan.jobs[0].dst if len(plan.jobs) == 1 else (output or DEFAULT_OUTPUT_DIR)
    parts = [f"{verb} {done} image(s) -> {where}"]
    if skipped:
        parts.append(f"{skipped} skipped")
    if failed:
        parts.append(f"{failed} failed")
    print(", ".join(parts))


def _triage(plan: Any, overwrite: bool, probe: bool) -> tuple[list[Job], int, int]:
    """Report the plan's errors and the jobs that cannot run (unwritable output, unreadable header
    when ``probe``, output == input), skip existing outputs unless ``overwrite``.

    Returns ``(todo, failed, skipped)``."""
    from lumachrome.colorizer import is_same_file
    from lumachrome.imageio import probe_image

    failed = skipped = 0
    for _name, message in plan.errors:
        _error(message)
        failed += 1
    todo: list[Job] = []
    for job in plan.jobs:
        problem = _output_problem(job.dst)
        if problem is None and probe:
            try:
                probe_image(job.src)
            except LumachromeError as e:
                problem = str(e)
        if problem is None and is_same_file(job.src, job.dst):
            problem = f"{job.src}: refusing to overwrite the input image (choose another -o)"
        if problem is not None:
            _error(problem)
            failed += 1
        elif job.dst.exists() and not overwrite:
            _note(f"skipped {job.src}: {job.dst} exists (use --overwrite to replace it)")
            skipped += 1
        else:
            todo.append(job)
    return todo, failed, skipped


def _run_jobs(todo: list[Any], work: Callable[[Any], None], quiet: bool) -> tuple[int, int]:
    """Run ``work(job)`` for each planned job under a progress bar; a bad file is reported on one
    line and the batch goes on. Returns ``(done, failed)``."""
    done = failed = 0
    with _progress(len(todo), enabled=not quiet and len(todo) > 1 and _stderr_is_tty()) as advance:
        for job in todo:
            try:
                work(job)
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
    return done, failed


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


def _colorize_translate(inputs: list[str], output: Path | None, **o: Any) -> int:
    """``colorize --model sketch|nir|thermal``: image-to-image models (:mod:`lumachrome.translate`).
    Same naming rules as colorize; a GeoTIFF written to .tif keeps its georeferencing."""
    from lumachrome.translate import Translator

    if o["bands"] is not None and o["band_name"] is not None:
        raise typer.BadParameter("give --bands or --band-name, not both", param_hint="--bands")
    band_sel: list[int | str] | None = None
    if o["bands"] is not None:
        try:
            band_sel = [int(t) for t in o["bands"].split(",") if t.strip()]
        except ValueError:
            raise typer.BadParameter(f"{o['bands']!r}: use 1-based band numbers, e.g. 4 or 4,3,2", param_hint="--bands") from None
        if not band_sel or min(band_sel) < 1:
            raise typer.BadParameter(f"{o['bands']!r}: band numbers start at 1", param_hint="--bands")
    elif o["band_name"] is not None:
        band_sel = [o["band_name"]]
    plan = plan_outputs(inputs, output, o["ext"])
    todo, failed, skipped = _triage(plan, o["overwrite"], probe=False)
    done = 0
    if todo:
        translator = Translator.load(o["model"], device=o["device"], size=o["size"])
        done, errors = _run_jobs(todo, lambda job: translator.translate_file(
            job.src, job.dst, bands=band_sel, overwrite=o["overwrite"], quality=o["quality"]), o["quiet"])
        failed += errors
    if not o["quiet"]:
        _print_summary("translated", plan, output, done, skipped, failed)
    return 1 if failed else 0


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
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeRemainingColumn,
        )

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
    data: Optional[Path] = typer.Option(None, "--data", help="Folder of colour images (searched recursively)."),
    model: str = typer.Option("photo", "--model", "-m", help="Shipped model name or model folder."),
    json_out: Optional[Path] = typer.Option(None, "--json", help="Also write the results to this JSON file."),
    size: Optional[int] = typer.Option(
        None, "--size", min=8, max=4096, help="Centre-crop side the metrics are computed at (default 256; --pack: whole images)."
    ),
    limit: Optional[int] = typer.Option(None, "--limit", min=1, help="Use only the first N images."),
    batch_size: int = typer.Option(16, "--batch-size", min=1, help="Images per network call."),
    device: str = typer.Option("auto", "--device", help="auto, cpu, cuda or cuda:N."),
    pack: Optional[Path] = typer.Option(
        None, "--pack", help="Paired domain pack: score an image-to-image (translate) model on it instead of --data."
    ),
    saturation: Optional[float] = typer.Option(
        None, "--saturation", callback=_finite, min=0.0, max=4.0, help="Chroma gain to score (default: the model's setting, as colorize)."
    ),
    flip: Optional[bool] = typer.Option(
        None, "--flip/--no-flip", help="Test-time flip averaging on/off (default: the model's setting, as colorize)."
    ),
    adaptive: bool = typer.Option(
        True, "--adaptive/--no-adaptive", help="Use the model's adaptive chroma gain when it has one (as colorize)."
    ),
    fd_lite: bool = typer.Option(
        True, "--fd-lite/--no-fd-lite",
        help="Compute the fd_lite column (EfficientNet-Lite1 features of every image, ~0.05 s each on one core).",
    ),
) -> int:
    """Score a model on a folder of colour photos, next to the gray baseline (ab = 0);
    or an image-to-image model on a paired domain pack (--pack), next to the input itself.

    Columns: PSNR, SSIM, CF (colourfulness), dCF (|CF - CF of the ground truth|), AuC of the ab
    error, CIEDE2000, hue_conc (share of the chroma-weighted hue mass within +-30 degrees of each
    image's dominant hue, mean over images; 1 = one tint, n/a when every image is achromatic, as
    for the gray row) and fd_lite: a Frechet distance between EfficientNet-Lite1 ImageNet features
    of the predictions and of the ground truth. fd_lite is NOT FID (another network, small sets:
    biased upward); compare it only between rows of the same table."""
    from lumachrome.evaluate import format_table, to_json

    if (data is None) == (pack is None):
        raise typer.BadParameter("give either --data FOLDER (colorizers) or --pack PACK (image-to-image models)",
                                 param_hint="--data/--pack")
    if pack is not None:
        from lumachrome.evaluate_translate import evaluate_translate

        if saturation is not None or flip is not None or not adaptive:
            raise typer.BadParameter("--saturation/--flip/--no-adaptive are for colorizers (--data), not --pack",
                                     param_hint="--pack")

        results = evaluate_translate(model, pack, size=size, batch_size=batch_size, limit=limit, device=device,
                                     fd_lite=fd_lite)
    else:
        from lumachrome.colorizer import Colorizer
        from lumachrome.evaluate import evaluate as run_evaluation
        from lumachrome.evaluate import gray_predictor

        colorizer = Colorizer.load(model, device=device, saturation=saturation, flip=flip, adaptive=adaptive)
        progress = _stderr_is_tty()
        common = dict(size=size or 256, batch_size=batch_size, limit=limit, progress=progress, fd_lite=fd_lite)
        results = {
            colorizer.name: run_evaluation(colorizer.predict_ab_working, data, **common),
            "gray": run_evaluation(gray_predictor, data, **common),
        }
    print(format_table(results))
    if json_out is not None:
        _atomic_write_text(json_out, json.dumps(to_json(results), indent=2) + "\n")
        print(f"results written to {json_out}")
    return 0


@app.command()
def calibrate(
    model: Path = typer.Argument(..., metavar="MODEL", help="Model folder (its config.json is updated in place)."),
    data: Path = typer.Option(..., "--data", help="Folder of colour training photos (searched recursively)."),
    cf_weight: float = typer.Option(
        0.05, "--cf-weight", callback=_finite, min=0.0, help="Colourfulness points worth one dB of PSNR when picking each photo's gain."
    ),
    stretch: float = typer.Option(0.3, "--stretch", callback=_finite, min=0.0, max=4.0, help="Chroma stretch around each image's mean."),
    ridge: float = typer.Option(10.0, "--ridge", callback=_finite, min=0.0, help="Ridge penalty of the gain regression."),
    centre: str = typer.Option(
        "0,0", "--centre", help="Colour the gain works around: 'mean' (the mean ab of the --data photos) or A,B (raw Lab a, b; 0,0 = gray)."
    ),
    limit: Optional[int] = typer.Option(None, "--limit", min=1, help="Use only the first N photos."),
    device: str = typer.Option("auto", "--device", help="auto, cpu, cuda or cuda:N."),
) -> int:
    """Fit a model's adaptive chroma gain on colour photos and store it in its config.json
    (decoding.adaptive_gain; colorize and evaluate then use it). Not for the photos you score it on."""
    from lumachrome.adaptive import calibrate as fit
    from lumachrome.colorizer import Colorizer
    from lumachrome.models.io import CONFIG_NAME, read_config

    if centre.strip() == "mean":
        centre_ab: str | tuple[float, ...] = "mean"
    else:
        try:
            centre_ab = tuple(float(x) for x in centre.split(","))
        except ValueError:
            centre_ab = ()
        if len(centre_ab) != 2 or not all(math.isfinite(x) and abs(x) <= 60 for x in centre_ab):
            raise typer.BadParameter(f"{centre!r}: expected 'mean' or A,B with |A|, |B| <= 60 (e.g. 1.9,5.8)",
                                     param_hint="'--centre'")
    config = read_config(model)  # a folder, not a shipped name: the package is not rewritten
    colorizer = Colorizer.load(model, device=device, adaptive=False)  # a stored gain is replaced, not read
    gain = fit(colorizer, data, cf_weight=cf_weight, stretch=stretch, ridge=ridge, centre=centre_ab, limit=limit,
               progress=_stderr_is_tty())
    config["decoding"] = {k: v for k, v in config["decoding"].items() if k != "saturation"}
    config["decoding"]["adaptive_gain"] = gain.to_config()
    _atomic_write_text(model / CONFIG_NAME, json.dumps(config, indent=2) + "\n")
    f = gain.fitted
    print(f"adaptive chroma gain fitted on {f['images']} photos of {data} (cf weight {cf_weight:g}, stretch "
          f"{stretch:g}, centre a {gain.centre[0]:g} b {gain.centre[1]:g}; mean best gain "
          f"{f['mean_target_gain']:.2f}) and stored in {model / CONFIG_NAME}")
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
    saturation: Optional[float] = typer.Option(
        None, "--saturation", callback=_finite, min=0.0, max=4.0, help="Store this chroma gain as the model's default (decoding.saturation)."
    ),
    flip: Optional[bool] = typer.Option(
        None, "--flip/--no-flip", help="Store test-time flip averaging on/off as the model's default (decoding.flip)."
    ),
    size: Optional[int] = typer.Option(
        None, "--size", min=16, max=4096, help="Store this working resolution (long side, px; a multiple of 16) "
        "as the model's default (preprocessing.size; default: the run's validation size).",
    ),
    inference: Optional[List[str]] = typer.Option(
        None, "--inference", metavar="KEY=VALUE", help="Image-to-image models: store an inference setting "
        "(config.json 'inference'; VALUE is JSON or a bare word: tile=128, scale=short_side); repeat for several.",
    ),
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

        if saturation is not None or flip is not None or size is not None or inference:
            raise typer.BadParameter("--saturation/--flip/--size/--inference are stored when exporting a checkpoint, "
                                     "not a model folder", param_hint="--saturation")

        if output is not None and output.suffix.lower() != ".onnx":
            raise typer.BadParameter(f"{output}: for a model folder, -o is the .onnx file to write", param_hint="-o")
        target = export_onnx(text if not checkpoint.exists() else checkpoint, output, opset=opset)
        print(f"ONNX model written to {target} (opset {opset}; use it with --backend onnx)")
        return 0
    if output is None:
        raise typer.BadParameter("the model folder to write is required for a checkpoint", param_hint="-o")
    from lumachrome.colorizer import SIZE_MULTIPLE
    from lumachrome.train.export import export_checkpoint

    decoding = {k: v for k, v in (("saturation", saturation), ("flip", flip)) if v is not None}
    settings: dict[str, Any] = {}
    for item in inference or []:
        key, eq, value = item.partition("=")
        if not eq or not key.strip():
            raise typer.BadParameter(f"{item!r}: expected KEY=VALUE", param_hint="--inference")
        try:
            settings[key.strip()] = json.loads(value)
        except ValueError:
            settings[key.strip()] = value  # a bare word is a string: scale=short_side
    if size is not None and size % SIZE_MULTIPLE:
        raise typer.BadParameter(f"{size}: the working resolution must be a multiple of {SIZE_MULTIPLE}",
                                 param_hint="--size")
    out = export_checkpoint(checkpoint, output, name=name, decoding=decoding, inference=settings or None,
                            preprocessing=None if size is None else {"size": size})
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


@data_app.command("domain")
def data_domain(
    domain: str = typer.Argument(..., metavar="DOMAIN", help="sketch, nir or thermal."),
    output: Path = typer.Option(..., "-o", "--output", help="Domain pack to write (.safetensors; a .json sidecar lists the ids)."),
    split: str = typer.Option("train", "--split", help="train or holdout (fixed 10 % hash split, docs/domains.md)."),
    size: Optional[int] = typer.Option(None, "--size", min=16, help="Side of the stored squares (default: sketch 96, nir/thermal 128)."),
    limit: Optional[int] = typer.Option(
        None, "--limit", min=1, help="At most N pairs (default: sketch train 1000, else all); --no-limit keeps all."
    ),
    no_limit: bool = typer.Option(False, "--no-limit", help="Keep every pair (no default cap)."),
    unpaired: bool = typer.Option(
        False, "--unpaired", help="CycleGAN packs OUT-A / OUT-B (sketch: Sketchy sketches vs photos; nir/thermal: shuffled sides)."
    ),
    root: Optional[Path] = typer.Option(None, "--root", help="Shared data folder (default $LUMACHROME_SHARED or ../shared/data)."),
) -> int:
    """Build a domain pack (A: line art / NIR / thermal, B: RGB) for pix2pix / CycleGAN training."""
    from lumachrome.data.domains import DOMAINS, SPLITS, build_domain_pack, default_root

    if domain not in DOMAINS:
        raise typer.BadParameter(f"{domain!r}: use one of {', '.join(DOMAINS)}", param_hint="DOMAIN")
    if split not in SPLITS:
        raise typer.BadParameter(f"{split!r}: use train or holdout", param_hint="--split")
    if no_limit and limit is not None:
        raise typer.BadParameter("give --limit or --no-limit, not both", param_hint="--limit")
    report = build_domain_pack(
        domain, split, output, root=root or default_root(), size=size, limit=None if no_limit else (limit or -1),
        unpaired=unpaired, progress=_stderr_is_tty(),
    )  # fmt: skip
    print(report.summary())
    return 0


@data_app.command("sketchify")
def data_sketchify(
    inputs: List[str] = typer.Argument(..., metavar="IN", help="Colour images, folders or globs."),
    output: Path = typer.Option(..., "-o", "--output", help="Output folder (PNG line art, same names)."),
    method: str = typer.Option("xdog", "--method", help="xdog (Winnemoeller et al. 2012) or canny."),
    max_side: Optional[int] = typer.Option(None, "--max-side", min=16, help="Shrink larger images to this long side first."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace existing outputs."),
) -> int:
    """Synthesise line art (black lines on white) from colour images (docs/domains.md)."""
    from lumachrome.data.sketchify import METHODS, sketchify_files

    if method not in METHODS:
        raise typer.BadParameter(f"{method!r}: use {' or '.join(METHODS)}", param_hint="--method")
    written, skipped, errors = sketchify_files(inputs, output, method, max_side=max_side, overwrite=overwrite)
    for e in errors:
        _error(e)
    print(f"line art ({method}) written for {written} image(s) -> {output}" + (f", {skipped} existing skipped" if skipped else "")
          + (f", {len(errors)} failed" if errors else ""))  # fmt: skip
    return 1 if errors else 0


@data_app.command("domain-pack")
def data_domain_pack(
    output: Path = typer.Option(..., "-o", "--output", help="Domain pack file to write (.safetensors)."),
    a_dir: Optional[Path] = typer.Option(None, "--a", help="Folder of input-domain (A) images."),
    b_dir: Optional[Path] = typer.Option(None, "--b", help="Folder of RGB target (B) images."),
    size: int = typer.Option(128, "--size", min=8, help="Side of the stored squares (short side, centre crop)."),
    domain: str = typer.Option(..., "--domain", help="Domain name stored in the pack (e.g. lineart)."),
    split: str = typer.Option("train", "--split", help="Split name stored in the pack (train, holdout, ...)."),
    a_mode: str = typer.Option("auto", "--a-mode", help="A as gray (1 channel), rgb, or auto (gray if all A are gray)."),
    max_images: Optional[int] = typer.Option(None, "--max-images", min=1, help="Stop after N images (pairs)."),
) -> int:
    """Image folders -> a domain pack for pix2pix / CycleGAN: --a and --b together make a paired pack
    (files matched by name); one of them makes an unpaired one-side pack (docs/gan.md)."""
    from lumachrome.data.domain_pack import build_domain_pack

    path, counts = build_domain_pack(output, a_dir=a_dir, b_dir=b_dir, size=size, domain=domain, split=split,
                                     a_mode=a_mode, max_images=max_images,
                                     source=f"lumachrome data domain-pack --a {a_dir} --b {b_dir}")
    print(f"domain pack written to {path}: " + ", ".join(f"{v} {k}" for k, v in counts.items()))
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
    from lumachrome.film import (
        VIDEO_EXTENSIONS,
        FrameWriter,
        TemporalSmoother,
        colorize_film,
        open_frames,
    )

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
    colorizer = Colorizer.load(o["model"], device=o["device"], size=o["size"], backend=o["backend"],
                               saturation=o["saturation"])
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
# explain (lumachrome.explain, docs/explain.md)
# --------------------------------------------------------------------------------------------
def _parse_point(text: str) -> tuple[float, float]:
    try:
        x, y = (float(v) for v in text.replace(" ", "").split(","))
    except ValueError:
        raise typer.BadParameter(f"{text!r}: expected X,Y (input pixels)", param_hint="--point") from None
    return x, y


@app.command("explain")
def explain_command(
    image: Optional[Path] = typer.Argument(
        None, metavar="IMG", help="Image to explain (with --checkpoints: re-render it with every checkpoint)."
    ),
    model: str = typer.Option("photo", "--model", "-m", help="Shipped model name or model folder."),
    output: Optional[Path] = typer.Option(
        None, "-o", "--output", help="Report folder (default out/explain/<image name>); with --checkpoints a .gif or a folder."
    ),
    point: Optional[List[str]] = typer.Option(
        None, "--point", "-p", metavar="X,Y", help="A pixel to examine (repeat, at most 6; default: picked automatically)."
    ),
    layer: Optional[List[str]] = typer.Option(
        None, "--layer", metavar="NAME",
        help="Layer whose feature maps are shown (repeat; e.g. enc.0, bottleneck, dec.0; effunet: encoder.blocks.4).",
    ),
    size: Optional[int] = typer.Option(None, "--size", min=16, max=4096, help="Working resolution of the network (default from the model)."),
    ablation: str = typer.Option("mean", "--ablation", help="How a path is switched off: mean (its spatial mean) or zero."),
    checkpoints: Optional[Path] = typer.Option(
        None, "--checkpoints", metavar="RUN_DIR", help="Animate a training run (sample grid per epoch) into a GIF instead."
    ),
    device: str = typer.Option("auto", "--device", help="auto, cpu, cuda or cuda:N."),
) -> int:
    """Explain how a model colours an image: an offline HTML report with figures (stages, feature maps,
    receptive field, uncertainty, ablations); or a GIF of a training run (--checkpoints)."""
    if checkpoints is not None:
        from lumachrome.explain import checkpoints_gif

        if output is None:
            target = DEFAULT_OUTPUT_DIR / (f"{checkpoints.resolve().name}-learning.gif")
        elif output.suffix.lower() == ".gif":
            target = output
        else:
            target = output / "learning.gif"
        path = checkpoints_gif(checkpoints, target, image=image)
        print(f"training animation written to {path}")
        return 0
    if image is None:
        raise typer.BadParameter("an image to explain is required (or --checkpoints RUN_DIR)", param_hint="IMG")
    from lumachrome.explain import explain_image
    from lumachrome.imageio import probe_image

    probe_image(image)  # a bad file fails here, before the model loads
    out_dir = output if output is not None else DEFAULT_OUTPUT_DIR / "explain" / image.stem
    points = [_parse_point(p) for p in point] if point else None
    index = explain_image(
        image, model, out_dir, points=points, layers=layer or None, size=size, device=device, ablation_mode=ablation
    )
    print(f"report written to {index} (open it in a browser; it works offline)")
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
        if config.get("task") == "translate":  # cross-domain (docs/domains.md)
            regime = config.get("regime", "?")
            gan = ((config.get("training") or {}).get("config") or {}).get("gan") or {}
            if regime == "pix2pix" and gan.get("lambda_gan") == 0:
                regime = "L1-only"
            what = f"{config.get('domain', '?')} -> rgb image-to-image ({regime})"
            yield f"{name}\t{arch} width={args.get('width', '?')}, {what}, training size {size}\t{folder}"
            continue
        hints = ", colour hints (--hint)" if args.get("hint_channels") else ""
        yield f"{name}\t{arch}, {head} head{hints}, working size {size}\t{folder}"


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


@app.command("serve")
def serve_command(
    host: str = typer.Option("127.0.0.1", "--host", help="Address to listen on (default: this machine only; "
                             "0.0.0.0 makes the app reachable from other machines)."),
    port: int = typer.Option(7860, "--port", min=1, max=65535, help="Port."),
    max_upload_mb: float = typer.Option(25.0, "--max-upload-mb", callback=_finite, min=0.1, help="Largest upload (MB)."),
    max_megapixels: float = typer.Option(50.0, "--max-megapixels", callback=_finite, min=0.01, help="Largest image (megapixels)."),
    workers: int = typer.Option(1, "--workers", min=1, help="Images processed at once (the others wait in a queue)."),
    queue_size: int = typer.Option(32, "--queue", min=0, help="Requests allowed to wait; more are refused (503)."),
    device: str = typer.Option("cpu", "--device", help="auto, cpu, cuda or cuda:N."),
    open_browser: bool = typer.Option(False, "--open", help="Open the page in the default browser."),
    allowed_host: Optional[List[str]] = typer.Option(
        None, "--allowed-host", metavar="NAME",
        help="Another host name the server answers to (repeatable; '*': any). Requests whose Host or Origin "
             "names something else are refused (protection against other web pages and DNS rebinding)."),
) -> int:
    """Web app: upload, colour hints, restoration, before/after, download (http://127.0.0.1:7860/)."""
    import socket

    from lumachrome.app.engine import AppConfig
    from lumachrome.app.server import serve
    from lumachrome.colorizer import resolve_device
    from lumachrome.errors import ConfigError

    resolve_device(device)  # ConfigError now rather than at the first request
    try:  # a clear message for a busy port instead of uvicorn's traceback-like log
        with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as s:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.bind((host, port))
    except OSError as e:
        raise ConfigError(f"serve: cannot listen on {host}:{port} ({e.strerror or e})") from None
    cfg = AppConfig(max_upload_mb=max_upload_mb, max_pixels=int(max_megapixels * 1e6), workers=workers,
                    queue_size=queue_size, device=device, host=host, allowed_hosts=list(allowed_host or []))
    serve(host, port, cfg, open_browser=open_browser)
    return 0


# --------------------------------------------------------------------------------------------
# entry point
# --------------------------------------------------------------------------------------------
def _click_message(e: Any) -> str:
    """A click/typer error as one line: what is wrong, then where to read how to use the command."""
    message = " ".join(e.format_message().split())
    ctx = getattr(e, "ctx", None)
    if isinstance(e, _click_exc.UsageError) and ctx is not None:
        message += f" (see {ctx.command_path} --help)"
    return message


def main(argv: list[str] | None = None) -> int:
    """Run the CLI and return its exit code (``python -m lumachrome`` and the console script)."""
    with warnings.catch_warnings():
        warnings.showwarning = _show_warning
        warnings.filterwarnings("always", category=LumachromeWarning)  # one per file, not once per run
        return _main(argv)


def _main(argv: list[str] | None) -> int:
    command = typer.main.get_command(app)
    try:
        rv = command.main(args=argv, prog_name="lumachrome", standalone_mode=False)
    except UsageError as e:  # a bad `train` option value: a usage error like any other
        _error(str(e))
        return 2
    except LumachromeError as e:
        _error(str(e))
        return 1
    except KeyboardInterrupt:
        print("lumachrome: interrupted", file=sys.stderr)
        return 130
    except _click_exc.ClickException as e:
        if type(e).__name__ == "NoArgsIsHelpError":  # `lumachrome data`: the help, as asked
            try:
                from typer import rich_utils

                rich_utils.rich_format_error(e)
            except Exception:  # pragma: no cover - fall back to click's plain format
                e.show()
            return e.exit_code
        _error(_click_message(e))  # usage errors too: one line, exit code 2
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
