"""``lumachrome colorize``: images, folders or globs -> colour images (the naming rules of
:func:`plan_outputs`); image-to-image models, archives and film go through the same command."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Any, Callable, List, Optional

import typer

from lumachrome.cli.common import DEFAULT_OUTPUT_DIR, app, error, finite, note, stderr_is_tty, writable_extensions
from lumachrome.cli.historical import historical_hooks, run_film, write_before_after
from lumachrome.errors import LumachromeError


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

    writable = tuple(writable) if writable is not None else writable_extensions()
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
        None, "--saturation", callback=finite, min=0.0, max=4.0, help="Chroma gain: 1 = the model's colour (default: the model's "
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
    strength: float = typer.Option(1.0, "--strength", callback=finite, min=0.0, max=1.0, help="Reference/palette correction strength."),
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
    from lumachrome.models.io import open_model

    try:  # resolved and its config.json read once, here; loaded below from this
        source: Any = open_model(model)
    except (LumachromeError, OSError):
        source = model  # an unknown model is reported when it loads, after the cheap checks of the inputs
    if getattr(source, "task", None) == "translate":  # sketch / nir / thermal: image-to-image models
        others = {"--restore": restore, "--reference": reference, "--palette": palette, "--before-after": before_after,
                  "--video": video, "--archive": archive or manifest is not None, "--hint": hint,
                  "--backend onnx": backend != "torch", "--saturation": saturation is not None}  # fmt: skip
        bad = [k for k, v in others.items() if v]
        if bad:
            raise typer.BadParameter(f"{', '.join(bad)}: not available with translation model {model!r}", param_hint="--model")
        return _colorize_translate(
            inputs, output, model=source, size=size, ext=ext, device=device, overwrite=overwrite, quality=quality,
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
    restorer, correction = historical_hooks(restore, restore_skip, reference, palette, transfer, strength, video)
    if before_after and restorer is None:
        from lumachrome.restore.pipeline import Restorer
        from lumachrome.restore.prepare import PrepareOptions

        # a view of the input beside the result: no preparation step runs
        restorer = Restorer(PrepareOptions(levels=False, defects=False, denoise=False, contrast=0.0))
    if video:
        return run_film(
            inputs, output, model=source, size=size, device=device, backend=backend, saturation=saturation, ext=ext,
            overwrite=overwrite,
            quality=quality, quiet=quiet, restorer=restorer, correction=correction, temporal=temporal,
            max_frames=max_frames,
        )  # fmt: skip
    if archive or manifest is not None or _torchrun_world_size() > 1:
        return _colorize_archive(
            inputs, output, model=source, size=size, ext=ext, device=device, overwrite=overwrite, quality=quality,
            quiet=quiet, backend=backend, saturation=saturation, manifest=manifest, batch_size=batch_size,
            workers=workers,
        )  # fmt: skip

    plan = plan_outputs(inputs, output, ext)
    if hints and len(plan.jobs) + len(plan.errors) > 1:
        raise ConfigError("--hint: hints are pixel positions of one image: give one input image")
    # Cheap checks first (headers, output folders), so bad inputs fail fast, before the model loads.
    todo, failed, skipped = _triage(plan, overwrite, probe=True)
    from lumachrome.pipeline import load_pipeline

    if not todo:
        if not quiet and skipped:
            print(f"nothing to do: {skipped} output(s) already exist")
        return 1 if failed else 0

    colorizer = load_pipeline(source, device, task="colorize", size=size, backend=backend, saturation=saturation)
    if hints and not colorizer.accepts_hints:
        raise ConfigError(f"--hint: model {model!r} takes no colour hints (use --model photo-hints)")

    def colorize_one(job: Any) -> None:
        colorizer.colorize_file(
            job.src, job.dst, overwrite=overwrite, quality=quality, preprocess=restorer, ab_transform=correction,
            hints=hints,
        )
        if restorer is not None and restorer.last is not None and not quiet and restore:
            note(f"{job.src.name}: " + "; ".join(str(st) for st in restorer.last.steps))
        if before_after and restorer is not None:
            write_before_after(restorer, job.dst, quality)

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
    from lumachrome.imageio import is_same_file
    from lumachrome.imageio import probe_image

    failed = skipped = 0
    for _name, message in plan.errors:
        error(message)
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
            error(problem)
            failed += 1
        elif job.dst.exists() and not overwrite:
            note(f"skipped {job.src}: {job.dst} exists (use --overwrite to replace it)")
            skipped += 1
        else:
            todo.append(job)
    return todo, failed, skipped


def _run_jobs(todo: list[Any], work: Callable[[Any], None], quiet: bool) -> tuple[int, int]:
    """Run ``work(job)`` for each planned job under a progress bar; a bad file is reported on one
    line and the batch goes on. Returns ``(done, failed)``."""
    done = failed = 0
    with _progress(len(todo), enabled=not quiet and len(todo) > 1 and stderr_is_tty()) as advance:
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
    if out_dir.suffix.lower() in writable_extensions() and not out_dir.is_dir():
        raise typer.BadParameter(f"{out_dir}: {why}, -o is an output folder, not an image file", param_hint="-o")
    return run_archive(Path(inputs[0]).expanduser(), out_dir, progress=stderr_is_tty(), **options)


def _colorize_translate(inputs: list[str], output: Path | None, **o: Any) -> int:
    """``colorize --model sketch|nir|thermal``: image-to-image models (:mod:`lumachrome.translate`).
    Same naming rules as colorize; a GeoTIFF written to .tif keeps its georeferencing."""
    from lumachrome.pipeline import load_pipeline

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
        translator = load_pipeline(o["model"], o["device"], task="translate", size=o["size"])
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
            error(message)


class _progress:
    """Context manager yielding an :class:`_Advance`; a rich bar on stderr when ``enabled``."""

    def __init__(self, total: int, enabled: bool) -> None:
        self.total, self.enabled, self._bar = total, enabled, None

    def __enter__(self) -> _Advance:
        if not self.enabled:
            return _Advance()
        from lumachrome.progress import rich_bar

        self._bar = rich_bar("colorize")
        self._bar.__enter__()
        return _Advance(self._bar, self._bar.add_task("", total=self.total))

    def __exit__(self, *exc: Any) -> None:
        if self._bar is not None:
            self._bar.__exit__(*exc)
