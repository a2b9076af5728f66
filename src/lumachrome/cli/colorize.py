"""``lumachrome colorize``: images, folders or globs -> colour images (the naming rules of
:func:`plan_outputs`); image-to-image models, archives and film go through the same command."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Callable, List, Optional

import typer

from lumachrome.cli.common import DEFAULT_OUTPUT_DIR, app, error, finite, note, stderr_is_tty, writable_extensions
from lumachrome.cli.historical import historical_hooks, run_film, write_before_after
from lumachrome.errors import LumachromeError, OptionError
from lumachrome.jobs import Job, Plan, plan_outputs, triage


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
    flat: bool = typer.Option(
        False, "--flat", help="Line-art models (sketch): one flat colour per closed region between the lines, lines kept black. "
        "A cluttered drawing (an edge map of a photo) keeps the network's colours, with a warning.",
    ),
    flat_always: bool = typer.Option(
        False, "--flat-always", help="As --flat, but fill every drawing, cluttered ones too."
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
    flat_mode: bool | str = "always" if flat_always else flat
    if flat_mode and (getattr(source, "task", None) != "translate" or source.config.get("domain") != "sketch"):
        raise typer.BadParameter(f"flat fill is for line-art (sketch) models, not {model!r}", param_hint="--flat-always" if flat_always else "--flat")
    if getattr(source, "task", None) == "translate":  # sketch / nir / thermal: image-to-image models
        others = {"--restore": restore, "--reference": reference, "--palette": palette, "--before-after": before_after,
                  "--video": video, "--archive": archive or manifest is not None, "--hint": hint,
                  "--backend onnx": backend != "torch", "--saturation": saturation is not None}  # fmt: skip
        bad = [k for k, v in others.items() if v]
        if bad:
            raise typer.BadParameter(f"{', '.join(bad)}: not available with translation model {model!r}", param_hint="--model")
        return _colorize_translate(
            inputs, output, model=source, size=size, ext=ext, device=device, overwrite=overwrite, quality=quality,
            quiet=quiet, bands=bands, band_name=band_name, flat=flat_mode,
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

    plan = _plan(inputs, output, ext)
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


def _plan(inputs: list[str], output: Path | None, ext: str | None) -> Plan:
    """:func:`lumachrome.jobs.plan_outputs`, its option errors as usage errors of that option."""
    try:
        return plan_outputs(inputs, output, ext)
    except OptionError as e:
        raise typer.BadParameter(str(e), param_hint=e.option) from None


def _triage(plan: Plan, overwrite: bool, probe: bool) -> tuple[list[Job], int, int]:
    """:func:`lumachrome.jobs.triage`, its messages printed (one line each). Returns ``(todo, failed, skipped)``."""
    checked = triage(plan, overwrite, probe)
    for kind, message in checked.messages:
        (error if kind == "error" else note)(message)
    return checked.todo, checked.failed, checked.skipped


def _run_jobs(todo: list[Any], work: Callable[[Any], None], quiet: bool) -> tuple[int, int]:
    """Run ``work(job)`` for each planned job under a progress bar; a bad file is reported on one
    line and the batch goes on. Returns ``(done, failed)``."""
    done = failed = 0
    from lumachrome.progress import ItemBar

    with ItemBar(len(todo), enabled=not quiet and len(todo) > 1 and stderr_is_tty()) as bar:
        for job in todo:
            try:
                work(job)
                done += 1
            except LumachromeError as e:
                message = str(e)
                if str(job.src) not in message and job.src.name not in message:
                    message = f"{job.src}: {message}"
                bar.error(message)
                failed += 1
            except MemoryError:
                bar.error(f"{job.src}: out of memory")
                failed += 1
            bar.advance(job.src.name[:40])
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
    plan = _plan(inputs, output, o["ext"])
    todo, failed, skipped = _triage(plan, o["overwrite"], probe=False)
    done = 0
    if todo:
        translator = load_pipeline(o["model"], o["device"], task="translate", size=o["size"])
        done, errors = _run_jobs(todo, lambda job: translator.translate_file(
            job.src, job.dst, bands=band_sel, overwrite=o["overwrite"], quality=o["quality"], flat=o["flat"]), o["quiet"])
        failed += errors
    if not o["quiet"]:
        _print_summary("translated", plan, output, done, skipped, failed)
    return 1 if failed else 0
