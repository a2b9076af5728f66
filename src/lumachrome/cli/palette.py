"""``lumachrome palette build|show``: era palettes (the colour distribution of period references)."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

from lumachrome.cli.common import palette_app


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
