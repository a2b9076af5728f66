"""Every progress bar of the package comes from here.

* :func:`rich_bar` / :func:`task_bar` / :class:`ItemBar`: a transient rich bar on stderr (count, time
  left) for the loops that a user watches in a terminal, per image: colorize, the archive engine
  (:class:`ItemBar`, with the failures printed above the bar), evaluate, calibrate.
* :func:`log_bar`: a ``tqdm`` bar on stderr for the long batch jobs (training steps with a loss/lr
  postfix, data packing), whose carriage-return updates also read well in a log file.
"""

from __future__ import annotations

from typing import Any

__all__ = ["ItemBar", "log_bar", "rich_bar", "task_bar"]


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


class ItemBar:
    """A per-image bar (``TITLE [bar] n/N [ETA] time-left current``) on stderr with each failure printed
    above it as one ``lumachrome: error: ...`` line; disabled, the failures are plain lines and there is
    no bar. Use it as a context manager, or call :meth:`close`."""

    def __init__(self, total: int | None, enabled: bool, *, title: str = "colorize", eta_label: bool = False) -> None:
        self.bar = self.task = None
        if enabled:
            self.bar = rich_bar(title, eta_label=eta_label)
            self.bar.__enter__()
            self.task = self.bar.add_task("", total=total)

    def advance(self, description: str) -> None:
        """One item done; ``description`` (e.g. its name) is shown at the end of the bar."""
        if self.bar is not None:
            self.bar.update(self.task, advance=1, description=description)

    def skip(self) -> None:
        """One item less to do (done earlier: not part of the remaining work, keeps the ETA honest)."""
        if self.bar is not None:
            total = self.bar.tasks[0].total
            self.bar.update(self.task, total=None if total is None else max(0, total - 1))

    def error(self, message: str) -> None:
        """Print one failure line (above the bar)."""
        import sys

        text = f"lumachrome: error: {' '.join(str(message).split())}"
        if self.bar is not None:
            self.bar.console.print(text, markup=False, highlight=False, soft_wrap=True)
        else:
            print(text, file=sys.stderr, flush=True)

    def close(self, *exc: Any) -> None:
        if self.bar is not None:
            self.bar.__exit__(*(exc or (None, None, None)))
            self.bar = None

    def __enter__(self) -> "ItemBar":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close(*exc)


def log_bar(total: int | None = None, *, desc: str | None = None, unit: str = "it", initial: int = 0,
            disable: bool = False) -> Any:
    """A ``tqdm`` bar on stderr that follows the terminal's width (``update``, ``set_postfix``, ``close``;
    a context manager)."""
    import sys

    from tqdm.auto import tqdm

    return tqdm(total=total, initial=initial, desc=desc, unit=unit, disable=disable, file=sys.stderr,
                dynamic_ncols=True)
