"""``lumachrome evaluate`` and ``lumachrome calibrate``: scoring a model, fitting its adaptive chroma gain."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Optional

import typer

from lumachrome.cli.common import app, finite, stderr_is_tty, write_text


@app.command()
def evaluate(
    data: Optional[Path] = typer.Option(None, "--data", help="Folder of colour images (searched recursively)."),
    model: str = typer.Option("photo", "--model", "-m", help="Shipped model name or model folder."),
    json_out: Optional[Path] = typer.Option(None, "--json", help="Also write the results to this JSON file."),
    size: Optional[int] = typer.Option(
        None, "--size", min=8, max=4096, help="Centre-crop side the metrics are computed at (default 256; --pack: whole images)."
    ),
    limit: Optional[int] = typer.Option(None, "--limit", min=1, help="Use only the first N images."),
    batch_size: int = typer.Option(16, "--batch-size", min=1, help="Images per network call."),
    device: str = typer.Option("auto", "--device", help="auto, cpu, cuda or cuda:N."),
    pack: Optional[Path] = typer.Option(
        None, "--pack", help="Paired domain pack: score an image-to-image (translate) model on it instead of --data."
    ),
    saturation: Optional[float] = typer.Option(
        None, "--saturation", callback=finite, min=0.0, max=4.0, help="Chroma gain to score (default: the model's setting, as colorize)."
    ),
    flip: Optional[bool] = typer.Option(
        None, "--flip/--no-flip", help="Test-time flip averaging on/off (default: the model's setting, as colorize)."
    ),
    adaptive: bool = typer.Option(
        True, "--adaptive/--no-adaptive", help="Use the model's adaptive chroma gain when it has one (as colorize)."
    ),
    fd_lite: bool = typer.Option(
        True, "--fd-lite/--no-fd-lite",
        help="Compute the fd_lite column (EfficientNet-Lite1 features of every image, ~0.05 s each on one core).",
    ),
) -> int:
    """Score a model on a folder of colour photos, next to the gray baseline (ab = 0);
    or an image-to-image model on a paired domain pack (--pack), next to the input itself.

    Columns: PSNR, SSIM, CF (colourfulness), dCF (|CF - CF of the ground truth|), AuC of the ab
    error, CIEDE2000, hue_conc (share of the chroma-weighted hue mass within +-30 degrees of each
    image's dominant hue, mean over images; 1 = one tint, n/a when every image is achromatic, as
    for the gray row) and fd_lite: a Frechet distance between EfficientNet-Lite1 ImageNet features
    of the predictions and of the ground truth. fd_lite is NOT FID (another network, small sets:
    biased upward); compare it only between rows of the same table."""
    from lumachrome.evaluate import format_table, to_json

    if (data is None) == (pack is None):
        raise typer.BadParameter("give either --data FOLDER (colorizers) or --pack PACK (image-to-image models)",
                                 param_hint="--data/--pack")
    if pack is not None:
        from lumachrome.evaluate_translate import evaluate_translate

        if saturation is not None or flip is not None or not adaptive:
            raise typer.BadParameter("--saturation/--flip/--no-adaptive are for colorizers (--data), not --pack",
                                     param_hint="--pack")

        results = evaluate_translate(model, pack, size=size, batch_size=batch_size, limit=limit, device=device,
                                     fd_lite=fd_lite)
    else:
        from lumachrome.evaluate import evaluate as run_evaluation
        from lumachrome.evaluate import gray_predictor
        from lumachrome.pipeline import load_pipeline

        colorizer = load_pipeline(model, device, task="colorize", saturation=saturation, flip=flip, adaptive=adaptive)
        progress = stderr_is_tty()
        common = dict(size=size or 256, batch_size=batch_size, limit=limit, progress=progress, fd_lite=fd_lite)
        results = {
            colorizer.name: run_evaluation(colorizer.predict_ab_working, data, **common),
            "gray": run_evaluation(gray_predictor, data, **common),
        }
    print(format_table(results))
    if json_out is not None:
        write_text(json_out, json.dumps(to_json(results), indent=2) + "\n")
        print(f"results written to {json_out}")
    return 0


@app.command()
def calibrate(
    model: Path = typer.Argument(..., metavar="MODEL", help="Model folder (its config.json is updated in place)."),
    data: Path = typer.Option(..., "--data", help="Folder of colour training photos (searched recursively)."),
    cf_weight: float = typer.Option(
        0.05, "--cf-weight", callback=finite, min=0.0, help="Colourfulness points worth one dB of PSNR when picking each photo's gain."
    ),
    stretch: float = typer.Option(0.3, "--stretch", callback=finite, min=0.0, max=4.0, help="Chroma stretch around each image's mean."),
    ridge: float = typer.Option(10.0, "--ridge", callback=finite, min=0.0, help="Ridge penalty of the gain regression."),
    centre: str = typer.Option(
        "0,0", "--centre", help="Colour the gain works around: 'mean' (the mean ab of the --data photos) or A,B (raw Lab a, b; 0,0 = gray)."
    ),
    limit: Optional[int] = typer.Option(None, "--limit", min=1, help="Use only the first N photos."),
    device: str = typer.Option("auto", "--device", help="auto, cpu, cuda or cuda:N."),
) -> int:
    """Fit a model's adaptive chroma gain on colour photos and store it in its config.json
    (decoding.adaptive_gain; colorize and evaluate then use it). Not for the photos you score it on."""
    from lumachrome.calibrate import calibrate as fit
    from lumachrome.calibrate import parse_centre
    from lumachrome.errors import ConfigError
    from lumachrome.models.io import open_folder, update_config
    from lumachrome.pipeline import load_pipeline

    try:
        centre_ab = parse_centre(centre)
    except ConfigError as e:
        raise typer.BadParameter(str(e), param_hint="'--centre'") from None
    folder = open_folder(model)  # a folder, not a shipped name: the package is not rewritten
    colorizer = load_pipeline(folder, device, task="colorize", adaptive=False)  # a stored gain is replaced, not read
    gain = fit(colorizer, data, cf_weight=cf_weight, stretch=stretch, ridge=ridge, centre=centre_ab, limit=limit,
               progress=stderr_is_tty())

    def store(config: dict[str, Any]) -> None:
        config["decoding"] = {k: v for k, v in config["decoding"].items() if k != "saturation"}
        config["decoding"]["adaptive_gain"] = gain.to_config()

    written = update_config(folder.path, store)
    f = gain.fitted
    print(f"adaptive chroma gain fitted on {f['images']} photos of {data} (cf weight {cf_weight:g}, stretch "
          f"{stretch:g}, centre a {gain.centre[0]:g} b {gain.centre[1]:g}; mean best gain "
          f"{f['mean_target_gain']:.2f}) and stored in {written}")
    return 0
