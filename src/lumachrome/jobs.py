"""Which output each input goes to (the naming rules of ``lumachrome colorize``), and the checks made
before a model loads.

:func:`plan_outputs` expands files, folders and globs and decides every output path; :func:`triage` then
drops, in order, what cannot run (an output that cannot be written, an unreadable header, an output
that is the input) and what is done already (an existing output, unless ``overwrite``), so bad inputs
fail fast. The CLI prints the messages and runs the rest (:mod:`lumachrome.cli.colorize`).
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

from lumachrome.errors import LumachromeError, OptionError
from lumachrome.imageio import SAVE_EXTENSIONS, find_images, is_same_file, path_key, probe_image

__all__ = ["DEFAULT_OUTPUT_DIR", "Job", "Plan", "Triage", "output_problem", "plan_outputs", "triage"]

#: Where outputs go when no ``-o`` is given.
DEFAULT_OUTPUT_DIR = Path("out")


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
        OptionError: ``-o`` names a file but there are several inputs, or a bad ``--ext`` (the CLI
            reports it as a usage error of that option).
    """
    writable = tuple(writable) if writable is not None else tuple(SAVE_EXTENSIONS)
    if ext is not None:
        ext = "." + ext.lower().lstrip(".")
        if ext not in writable:
            raise OptionError(f"{ext!r} cannot be written (use one of {', '.join(writable)})", option="--ext")

    single_file_target = output is not None and _is_image_path(output, writable)
    if single_file_target:
        if len(inputs) != 1 or not Path(inputs[0]).is_file():
            raise OptionError(
                f"{output} is an image file name, but it can only be used with exactly one input file "
                "(give a folder to -o for several images)",
                option="-o",
            )
        if ext is not None and output.suffix.lower() != ext:
            raise OptionError(f"--ext {ext} contradicts the extension of {output}", option="--ext")

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


def output_problem(dst: Path) -> str | None:
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


@dataclasses.dataclass
class Triage:
    """What :func:`triage` leaves to do: the jobs, and ``(kind, message)`` in order (kind ``"error"``
    or ``"skipped"``)."""

    todo: list[Job] = dataclasses.field(default_factory=list)
    messages: list[tuple[str, str]] = dataclasses.field(default_factory=list)

    @property
    def failed(self) -> int:
        return sum(1 for kind, _ in self.messages if kind == "error")

    @property
    def skipped(self) -> int:
        return sum(1 for kind, _ in self.messages if kind == "skipped")


def triage(plan: Plan, overwrite: bool, probe: bool) -> Triage:
    """The cheap checks made before a model loads: the plan's errors, then per job an output that cannot
    be written, an unreadable header (when ``probe``), an output that is the input (errors), and an
    existing output without ``overwrite`` (skipped). Returns the jobs to run and, in order, the messages."""
    out = Triage()
    for _name, message in plan.errors:
        out.messages.append(("error", message))
    for job in plan.jobs:
        problem = output_problem(job.dst)
        if problem is None and probe:
            try:
                probe_image(job.src)
            except LumachromeError as e:
                problem = str(e)
        if problem is None and is_same_file(job.src, job.dst):
            problem = f"{job.src}: refusing to overwrite the input image (choose another -o)"
        if problem is not None:
            out.messages.append(("error", problem))
        elif job.dst.exists() and not overwrite:
            out.messages.append(("skipped", f"skipped {job.src}: {job.dst} exists (use --overwrite to replace it)"))
        else:
            out.todo.append(job)
    return out
