"""What every ``lumachrome`` command shares: the typer app and its groups, the ``--version`` option, and
the one-line output helpers (errors, notes, warnings on stderr)."""

from __future__ import annotations

import math
import sys
import warnings
from pathlib import Path
from typing import Any, Optional

import typer

from lumachrome import __version__
from lumachrome.atomic import atomic_write_text
from lumachrome.errors import LumachromeError, LumachromeWarning
from lumachrome.jobs import DEFAULT_OUTPUT_DIR

__all__ = ["DEFAULT_OUTPUT_DIR", "app", "data_app", "error", "finite", "note", "palette_app", "show_warning",
           "stderr_is_tty", "writable_extensions", "write_text"]


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


def error(message: str) -> None:
    """One line on stderr (newlines in messages are flattened)."""
    print(f"lumachrome: error: {' '.join(str(message).split())}", file=sys.stderr, flush=True)


def show_warning(message: Any, category: type, filename: str, lineno: int, file: Any = None, line: Any = None) -> None:
    """``warnings.showwarning`` while the CLI runs: a :class:`LumachromeWarning` (an input problem
    that was worked around) is one ``lumachrome: warning: ...`` line; library warnings (numpy's
    RuntimeWarning, torch's UserWarnings) are not for users and stay silent unless Python was asked
    for them (``-W`` / ``PYTHONWARNINGS``)."""
    if issubclass(category, LumachromeWarning):
        print(f"lumachrome: warning: {' '.join(str(message).split())}", file=sys.stderr, flush=True)
    elif sys.warnoptions:
        print(warnings.formatwarning(message, category, filename, lineno, line), file=sys.stderr, end="", flush=True)


def note(message: str) -> None:
    print(f"lumachrome: {' '.join(str(message).split())}", file=sys.stderr, flush=True)


def stderr_is_tty() -> bool:
    try:
        return sys.stderr.isatty()
    except (AttributeError, ValueError):
        return False


def finite(value: Optional[float]) -> Optional[float]:
    """Option callback of every float option: ``nan`` and ``inf`` are usage errors (exit code 2), as
    out-of-range values are (a one-sided range such as ``min=0`` lets ``inf`` through)."""
    if value is not None and not math.isfinite(value):
        raise typer.BadParameter(f"{value!r} is not a finite number")
    return value


def writable_extensions() -> tuple[str, ...]:
    """Lower-case extensions (with the dot) that :func:`lumachrome.imageio.save_image` can write."""
    from lumachrome.imageio import SAVE_EXTENSIONS

    return tuple(SAVE_EXTENSIONS)


def write_text(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary sibling + rename (``ImageError``-free: OSError
    is reported as a ``LumachromeError``)."""
    atomic_write_text(path, text, error=LumachromeError, fsync=True)



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
