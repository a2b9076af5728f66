"""Turn a training checkpoint into a model folder (``config.json``, ``model.safetensors``, ``README.md``)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from lumachrome.errors import ConfigError, ModelError
from lumachrome.models import create_model
from lumachrome.models.io import CONFIG_NAME, WEIGHTS_NAME, save_model_dir
from lumachrome.train.checkpoint import load_checkpoint

__all__ = ["export_checkpoint", "model_card"]


def _last_metrics(run_dir: Path) -> dict[str, Any] | None:
    f = run_dir / "metrics.jsonl"
    if not f.is_file():
        return None
    lines = [ln for ln in f.read_text().splitlines() if ln.strip()]
    return json.loads(lines[-1]) if lines else None


def model_card(name: str, state: dict[str, Any], metrics: dict[str, Any] | None, weights: str) -> str:
    cfg = state["config"]
    spec = state["model"]
    regime = cfg["train"].get("regime", "supervised")
    extra = spec.get("extra") or {}
    if extra.get("task") == "translate":
        chans = ", ".join((extra.get("input") or {}).get("channels") or [])
        what = (f"A `{spec['architecture']}` image-to-image generator ({regime}) translating domain "
                f"`{extra.get('domain', '')}` ({chans}) to RGB; inputs and outputs in [-1, 1].")
    else:
        what = f"A `{spec['architecture']}` colorizer ({cfg['model']['head']} head) predicting CIE Lab ab from L."
    gan = regime in ("pix2pix", "cyclegan")
    if not gan:
        loss = cfg["train"]["loss"]
        if regime == "hints":
            h = cfg.get("hints") or {}
            loss += (f" with simulated colour hints (share without hints {h.get('zero_share')}, "
                     f"started from {h.get('init') or 'scratch'})")
        if cfg["optim"].get("freeze"):
            loss += f"; frozen: {', '.join(cfg['optim']['freeze'])}"
    else:
        g = cfg.get("gan") or {}
        loss = (f"{regime}: {g.get('gan_loss')} GAN x {g.get('lambda_gan')}"
                + (f" + L1 x {g.get('lambda_l1')}" if regime == "pix2pix" else
                   f" + cycle x {g.get('lambda_cycle')} + identity x {g.get('lambda_identity')} * cycle"))
    lines = [
        f"# lumachrome model `{name}`",
        "",
        what,
        "",
        "## Training",
        f"- data: {', '.join(cfg['data']['train'] or cfg['data']['pack'])} at {cfg['data']['size']} px crops",
        f"- loss: {loss}, {state['step']} steps of batch {cfg['train']['batch_size']}, "
        f"AdamW lr {cfg['optim']['lr']} ({'constant then linear to 0' if gan else cfg['optim']['schedule']}), "
        f"seed {cfg['train']['seed']}",
        f"- weights: {weights}",
        f"- architecture args: `{json.dumps(spec['args'])}`",
    ]
    if metrics:
        lines += ["", "## Validation at the end of training (quick check, not the evaluation protocol)",
                  "", "| " + " | ".join(metrics) + " |", "|" + "---|" * len(metrics),
                  "| " + " | ".join(f"{v:.4g}" if isinstance(v, float) else str(v) for v in metrics.values()) + " |"]
    lines += ["", "## Limits",
              "Colours are plausible, not historically true; they are learned from the training "
              + ("images only." if extra.get("task") == "translate" else "photos only.")]
    return "\n".join(lines) + "\n"


def export_checkpoint(ckpt: str | Path, out_dir: str | Path, name: str | None = None, use_ema: bool = True,
                      decoding: dict[str, Any] | None = None, inference: dict[str, Any] | None = None,
                      preprocessing: dict[str, Any] | None = None, base: str | Path | None = None,
                      half: bool = False) -> Path:
    """Export the (EMA) weights of a checkpoint (folder, run folder or ``checkpoints/``) to ``out_dir``.

    ``decoding`` entries (e.g. ``{"saturation": 1.3}``, see :class:`lumachrome.colorizer.Colorizer`)
    are merged into the run's own ``decoding`` settings in ``config.json``; ``inference`` entries
    (image-to-image models, e.g. ``{"tile": 128}``, see :mod:`lumachrome.translate`) into its
    ``inference`` settings; ``preprocessing`` entries (e.g. ``{"size": 144}``, the working
    resolution) into its ``preprocessing`` settings. ``base`` (a shipped name or model folder): store only
    the tensors that differ from that model's and reference it in ``config.json`` (see
    :func:`lumachrome.models.io.save_model_dir`); default: a full folder. ``half``: store the parameters as
    float16 (half the file; loaded back into the float32 network, see ``save_model_dir``).
    """
    c = load_checkpoint(ckpt)
    spec = c.state.get("model")
    if not spec or "architecture" not in spec:
        raise ModelError(f"{c.path}: checkpoint has no model description")
    model = create_model(spec["architecture"], **spec["args"])
    size = (preprocessing or {}).get("size")
    multiple = int(getattr(model, "multiple", 1) or 1)
    if size is not None and int(size) % multiple:
        lo = int(size) // multiple * multiple
        near = f"{lo} or {lo + multiple}" if lo else str(multiple)
        raise ConfigError(f"working resolution {size}: {spec['architecture']} models need a multiple of {multiple} "
                          f"(e.g. {near})")
    if use_ema and c.ema is not None:
        sd = {k[len("module."):]: v for k, v in c.ema.items() if k.startswith("module.")}
        weights = "EMA of the weights"
    else:
        # GAN checkpoints hold all networks ("G.", "D.", ...): the generator is under spec["prefix"].
        prefix = spec.get("prefix") or ""
        sd = {k[len(prefix):]: v for k, v in c.model.items() if k.startswith(prefix)}
        weights = "raw weights (no EMA)"
    try:
        model.load_state_dict(sd, strict=True)
    except RuntimeError as e:
        raise ModelError(f"{c.path}: weights do not match the stored architecture ({str(e).splitlines()[0]})") from e
    name = name or c.state["config"]["train"].get("name") or Path(out_dir).name
    run_dir = c.path.parent.parent
    metrics = _last_metrics(run_dir)
    if base is not None:
        weights += (f"; {WEIGHTS_NAME} holds only the tensors that differ from the base model `{base}` "
                    f"(`base` in {CONFIG_NAME}, with the SHA-256 of its weights)")
    if half:
        weights += (f"; parameters stored as float16 in {WEIGHTS_NAME} (half the file; loaded into the float32 "
                    "network, BatchNorm statistics kept float32)")
    card = model_card(name, c.state, metrics, weights)
    extra = {**(spec.get("extra") or {}), "name": name, "training": {"step": c.step, "config": c.state["config"]}}
    if metrics:
        extra["validation"] = metrics
    if inference:
        extra["inference"] = {**(extra.get("inference") or {}), **inference}
    save_model_dir(model, out_dir, architecture=spec["architecture"], args=spec["args"],
                   preprocessing={**spec.get("preprocessing", {"size": 256}), **(preprocessing or {})},
                   decoding={**(spec.get("decoding") or {}), **(decoding or {})} or None,
                   card=card, extra=extra, base=base, half=half)
    return Path(out_dir)
