"""``lumachrome`` command line: colorize, evaluate, calibrate, train, export, explain, serve, data, palette, models.

One module per command group, each a thin shell over the library (parse and check the options, call
the library, print one line): :mod:`~lumachrome.cli.colorize` (with :mod:`~lumachrome.cli.historical`
for old photos and film), :mod:`~lumachrome.cli.evaluate` (evaluate, calibrate),
:mod:`~lumachrome.cli.training` (train, export), :mod:`~lumachrome.cli.data`,
:mod:`~lumachrome.cli.palette`, :mod:`~lumachrome.cli.explain`, :mod:`~lumachrome.cli.models`,
:mod:`~lumachrome.cli.serve`; the typer app they register on and the output helpers are
:mod:`~lumachrome.cli.common`. This module runs it: :func:`main`.

Every user error (a bad path, an unreadable image, an unknown model) is one line on stderr,
``lumachrome: error: <what and where>``, and a non-zero exit code: 1 for errors, 2 for usage
errors, 130 when interrupted. Tracebacks are only shown for bugs.

Heavy modules (torch, the models) are imported inside the commands so ``--help`` and
``--version`` are quick.
"""

from __future__ import annotations

import sys
import warnings
from typing import Any

import typer

# The command modules register their commands on `app` when imported (in the order of `--help`).
from lumachrome.cli import colorize, evaluate, training, data, historical, palette, explain, models, serve  # noqa: F401,E501  # isort: skip
from lumachrome.cli.common import app, error, show_warning
from lumachrome.cli.serve import serve_command
from lumachrome.errors import LumachromeError, LumachromeWarning, UsageError
from lumachrome.jobs import plan_outputs

try:  # typer >= 0.20 vendors click; older releases use click itself
    from typer._click import exceptions as click_exceptions
except ImportError:  # pragma: no cover - depends on the installed typer
    from click import exceptions as click_exceptions  # type: ignore[no-redef]

__all__ = ["app", "main", "plan_outputs", "serve_command"]


def _click_message(e: Any) -> str:
    """A click/typer error as one line: what is wrong, then where to read how to use the command."""
    message = " ".join(e.format_message().split())
    ctx = getattr(e, "ctx", None)
    if isinstance(e, click_exceptions.UsageError) and ctx is not None:
        message += f" (see {ctx.command_path} --help)"
    return message


def main(argv: list[str] | None = None) -> int:
    """Run the CLI and return its exit code (``python -m lumachrome`` and the console script)."""
    with warnings.catch_warnings():
        warnings.showwarning = show_warning
        warnings.filterwarnings("always", category=LumachromeWarning)  # one per file, not once per run
        return _main(argv)


def _main(argv: list[str] | None) -> int:
    command = typer.main.get_command(app)
    try:
        rv = command.main(args=argv, prog_name="lumachrome", standalone_mode=False)
    except UsageError as e:  # a bad `train` option value: a usage error like any other
        error(str(e))
        return 2
    except LumachromeError as e:
        error(str(e))
        return 1
    except KeyboardInterrupt:
        print("lumachrome: interrupted", file=sys.stderr)
        return 130
    except click_exceptions.ClickException as e:
        if type(e).__name__ == "NoArgsIsHelpError":  # `lumachrome data`: the help, as asked
            try:
                from typer import rich_utils

                rich_utils.rich_format_error(e)
            except Exception:  # pragma: no cover - fall back to click's plain format
                e.show()
            return e.exit_code
        error(_click_message(e))  # usage errors too: one line, exit code 2
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
