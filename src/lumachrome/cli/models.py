"""``lumachrome models``: the shipped models."""

from __future__ import annotations

import json
from typing import Iterator

from lumachrome.cli.common import app


def describe_models() -> Iterator[str]:
    from lumachrome.models.io import shipped_model_dirs

    for name, folder in shipped_model_dirs().items():
        try:
            config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
        except (OSError, ValueError) as e:
            yield f"{name}\t(unreadable config.json: {e})"
            continue
        args = config.get("args") or {}
        head = args.get("head", "regression")
        widths = args.get("widths")
        size = (config.get("preprocessing") or {}).get("size", 256)
        arch = config.get("architecture", "?") + (f" widths={widths}" if widths else "")
        if config.get("task") == "translate":  # cross-domain (docs/domains.md)
            regime = config.get("regime", "?")
            gan = ((config.get("training") or {}).get("config") or {}).get("gan") or {}
            if regime == "pix2pix" and gan.get("lambda_gan") == 0:
                regime = "L1-only"
            what = f"{config.get('domain', '?')} -> rgb image-to-image ({regime})"
            yield f"{name}\t{arch} width={args.get('width', '?')}, {what}, training size {size}\t{folder}"
            continue
        hints = ", colour hints (--hint)" if args.get("hint_channels") else ""
        yield f"{name}\t{arch}, {head} head{hints}, working size {size}\t{folder}"


@app.command("models")
def models_command() -> int:
    """List the shipped models (use them with --model NAME)."""
    lines = list(describe_models())
    if not lines:
        print("no shipped models in lumachrome/weights/ (train one: lumachrome train, then lumachrome export)")
        return 0
    for line in lines:
        print(line)
    return 0
