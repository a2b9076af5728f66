"""The one progress-bar helper: a transient rich bar on stderr (count, time left), for every long loop
that reports per item (colorize, the archive engine, evaluate, calibrate).

Training loops and data packing report with ``tqdm`` (a bar of steps with a loss/lr postfix), which
is their own format; everything counted in images goes through :func:`rich_bar`.
"""

from __future__ import annotations

from typing import Any

__all__ = ["rich_bar", "task_bar"]


def rich_bar(title: str | None = None, *, eta_label: bool = False, elapsed: bool = False) -> Any:
    """A ``rich.progress.Progress`` on stderr, transient (it disappears when stopped).

    With a ``title`` the bar reads ``TITLE [bar] n/N [ETA] [elapsed] time-left description`` (the task's
    description, e.g. the current file, at the end); without, ``description [bar] n/N [elapsed] time-left``.
    """
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

    counts = [BarColumn(), MofNCompleteColumn()]
    timing = ([TimeElapsedColumn()] if elapsed else []) + [TimeRemainingColumn()]
    if title is None:
        columns = [TextColumn("{task.description}"), *counts, *timing]
    else:
        columns = [TextColumn(f"[bold]{title}"), *counts, *([TextColumn("ETA")] if eta_label else []), *timing,
                   TextColumn("{task.description}")]
    return Progress(*columns, console=Console(stderr=True), transient=True)


def task_bar(enabled: bool, total: int, description: str) -> tuple[Any, Any] | None:
    """``(bar, task)``: a :func:`rich_bar` with elapsed time and one task of ``total`` items (not started:
    call ``bar.start()``), or None when not ``enabled``."""
    if not enabled:
        return None
    bar = rich_bar(elapsed=True)
    return bar, bar.add_task(description, total=total)
