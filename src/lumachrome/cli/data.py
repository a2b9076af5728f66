"""``lumachrome data pack|domain|sketchify|domain-pack``: preparing training data."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

from lumachrome.cli.common import data_app, error, stderr_is_tty


@data_app.command("pack")
def data_pack(
    folders: List[Path] = typer.Argument(..., metavar="DIR", help="Folders of colour images."),
    output: Path = typer.Option(..., "-o", "--output", help="Pack file to write."),
    size: int = typer.Option(128, "--size", min=8, help="Side of the stored square images (px)."),
    max_images: Optional[int] = typer.Option(None, "--max-images", min=1, help="Stop after N images."),
) -> int:
    """Decode, centre-crop and resize folders of images once into a pack file for fast training."""
    from lumachrome.data.pack import build_pack

    info = build_pack(folders, output, size=size, max_images=max_images, progress=stderr_is_tty())
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
    datasets: Optional[str] = typer.Option(
        None, "--datasets", help="Comma-separated datasets, or all (default: the domain's usual ones; sketch adds photos2, sketchy)."
    ),
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
        unpaired=unpaired, progress=stderr_is_tty(), datasets=datasets,
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
        error(e)
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
