"""``lumachrome explain``: how a model colours an image (docs/explain.md)."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

from lumachrome.cli.common import DEFAULT_OUTPUT_DIR, app


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
