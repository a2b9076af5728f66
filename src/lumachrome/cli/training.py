"""``lumachrome train`` (the trainer's own options, :mod:`lumachrome.train.cli`) and ``lumachrome export``."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, List, Optional

import typer

from lumachrome.cli.common import app, finite


@app.command(
    context_settings={"allow_extra_args": True, "ignore_unknown_options": True, "help_option_names": []},
    add_help_option=False,
)
def train(ctx: typer.Context) -> int:
    """Train a colorizer (all arguments go to the trainer: lumachrome train --help)."""
    from lumachrome.train.cli import train_main

    try:
        return int(train_main(list(ctx.args)) or 0)
    except SystemExit as e:  # argparse: --help (0) and usage errors (2)
        code = e.code
        return code if isinstance(code, int) else (0 if code is None else 1)


@app.command()
def export(
    checkpoint: Path = typer.Argument(
        ...,
        metavar="CKPT",
        help="Checkpoint folder, run folder or checkpoints/; with --format onnx also a model folder or shipped name.",
    ),
    output: Optional[Path] = typer.Option(
        None, "-o", "--output", help="Model folder to write (for a model folder with --format onnx: a .onnx file)."
    ),
    name: Optional[str] = typer.Option(None, "--name", help="Model name (default: the run's name)."),
    fmt: str = typer.Option(
        "safetensors", "--format", help="safetensors (a model folder) or onnx (also MODEL/model.onnx, opset 17)."
    ),
    opset: int = typer.Option(17, "--opset", min=13, help="ONNX opset (--format onnx)."),
    saturation: Optional[float] = typer.Option(
        None, "--saturation", callback=finite, min=0.0, max=4.0, help="Store this chroma gain as the model's default (decoding.saturation)."
    ),
    flip: Optional[bool] = typer.Option(
        None, "--flip/--no-flip", help="Store test-time flip averaging on/off as the model's default (decoding.flip)."
    ),
    size: Optional[int] = typer.Option(
        None, "--size", min=16, max=4096, help="Store this working resolution (long side, px; a multiple of 16) "
        "as the model's default (preprocessing.size; default: the run's validation size).",
    ),
    base: Optional[str] = typer.Option(
        None, "--base", metavar="MODEL", help="Store only the tensors that differ from this model (a shipped name "
        "or a model folder; config.json then names it and pins its weights' SHA-256). Default: all tensors.",
    ),
    half: bool = typer.Option(
        False, "--half", help="Store the parameters as float16 (half the file; loaded into the float32 network; "
        "BatchNorm statistics stay float32).",
    ),
    inference: Optional[List[str]] = typer.Option(
        None, "--inference", metavar="KEY=VALUE", help="Image-to-image models: store an inference setting "
        "(config.json 'inference'; VALUE is JSON or a bare word: tile=128, scale=short_side); repeat for several.",
    ),
) -> int:
    """Export a training checkpoint to a model folder (config.json, model.safetensors, README.md),
    and/or a model folder's network to ONNX (model.onnx, for colorize --backend onnx)."""
    fmt = fmt.lower()
    if fmt not in ("safetensors", "onnx"):
        raise typer.BadParameter(f"{fmt!r}: use safetensors or onnx", param_hint="--format")
    from lumachrome.models.io import CONFIG_NAME

    text = str(checkpoint)
    is_model = (checkpoint / CONFIG_NAME).is_file()
    if not is_model and fmt == "onnx" and "/" not in text and os.sep not in text and not checkpoint.exists():
        from lumachrome.models.io import available_models

        is_model = text in available_models()  # a shipped model name
    if fmt == "onnx" and is_model:
        from lumachrome.onnx_export import export_onnx

        if saturation is not None or flip is not None or size is not None or inference or base is not None or half:
            raise typer.BadParameter("--saturation/--flip/--size/--inference/--base/--half are stored when exporting a checkpoint, "
                                     "not a model folder", param_hint="--saturation")

        if output is not None and output.suffix.lower() != ".onnx":
            raise typer.BadParameter(f"{output}: for a model folder, -o is the .onnx file to write", param_hint="-o")
        target = export_onnx(text if not checkpoint.exists() else checkpoint, output, opset=opset)
        print(f"ONNX model written to {target} (opset {opset}; use it with --backend onnx)")
        return 0
    if output is None:
        raise typer.BadParameter("the model folder to write is required for a checkpoint", param_hint="-o")
    from lumachrome.colorizer import SIZE_MULTIPLE
    from lumachrome.train.export import export_checkpoint

    decoding = {k: v for k, v in (("saturation", saturation), ("flip", flip)) if v is not None}
    settings: dict[str, Any] = {}
    for item in inference or []:
        key, eq, value = item.partition("=")
        if not eq or not key.strip():
            raise typer.BadParameter(f"{item!r}: expected KEY=VALUE", param_hint="--inference")
        try:
            settings[key.strip()] = json.loads(value)
        except ValueError:
            settings[key.strip()] = value  # a bare word is a string: scale=short_side
    if size is not None and size % SIZE_MULTIPLE:
        raise typer.BadParameter(f"{size}: the working resolution must be a multiple of {SIZE_MULTIPLE}",
                                 param_hint="--size")
    out = export_checkpoint(checkpoint, output, name=name, decoding=decoding, inference=settings or None,
                            preprocessing=None if size is None else {"size": size}, base=base, half=half)
    print(f"model written to {out} (use it with --model {out})")
    if fmt == "onnx":
        from lumachrome.onnx_export import export_onnx

        target = export_onnx(out, opset=opset)
        print(f"ONNX model written to {target} (opset {opset}; use it with --backend onnx)")
    return 0
