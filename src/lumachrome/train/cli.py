"""``lumachrome train``: argument parsing for the training loop (flags and config files)."""

from __future__ import annotations

import argparse
import sys

from lumachrome.errors import UsageError
from lumachrome.train.config import add_config_arguments, check_flags, config_from_args, load_config_file

__all__ = ["build_parser", "train_main"]


class _Parser(argparse.ArgumentParser):
    """argparse with one-line usage errors: :class:`UsageError` (the CLI prints
    ``lumachrome: error: ...`` and exits with 2) instead of the usage text and ``SystemExit``."""

    def error(self, message: str):  # type: ignore[override]
        raise UsageError(f"train: {message} (see lumachrome train --help)")


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(
        prog="lumachrome train",
        description="Train a colorizer (U-Net; regression or classification) on folders of colour images "
                    "or data packs. Every option of the config file can be overridden as --section.field.",
        epilog="examples:\n"
               "  lumachrome train --data photos/train --val photos/val --steps 2000 --out runs/demo\n"
               "  lumachrome train --config configs/photo.yaml --train.steps 500\n"
               "  lumachrome train --resume runs/demo --steps 4000\n"
               "  lumachrome train --config configs/photo.yaml --overwrite   (start over: the old run -> RUN.old-<time>)\n"
               "  lumachrome train --config configs/pix2pix-domain.yaml --data.pack A2B.safetensors  "
               "(--train.regime pix2pix|cyclegan: docs/gan.md)",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--config", help="YAML or TOML config file (see lumachrome/configs/)")
    p.add_argument("--resume", metavar="RUN_OR_CKPT", help="continue from a run folder or checkpoint")
    p.add_argument("--overwrite", nargs="?", const="move", choices=("move", "delete"),
                   help="start over in a run folder that holds an earlier run: move it aside to RUN.old-<time> "
                        "(default) or delete it (without --resume or --overwrite a non-empty --out is refused)")
    add_config_arguments(p)
    return p


def train_main(argv: list[str] | None = None) -> int:
    """Entry point of ``lumachrome train``; returns the exit code. Errors raise LumachromeError."""
    from lumachrome.train.loop import train

    parser = build_parser()
    ns = parser.parse_args(argv)
    check_flags(ns)  # every number, finite and in range, before any file or data is read
    base = load_config_file(ns.config) if ns.config else {}
    if ns.resume and not ns.config:
        # Start from the configuration stored in the checkpoint; flags override it.
        from lumachrome.train.checkpoint import load_checkpoint

        base = load_checkpoint(ns.resume).state["config"]
    cfg = config_from_args(ns, base)
    if ns.resume and not any(k == "cfg:train.out" and v for k, v in vars(ns).items()):
        from lumachrome.train.checkpoint import find_checkpoint

        cfg.train.out = str(find_checkpoint(ns.resume).parent.parent)
    log = lambda m: print(m, file=sys.stderr, flush=True)  # noqa: E731
    if cfg.train.regime != "supervised":  # pix2pix / cyclegan: the adversarial trainers
        from lumachrome.train.gan import train_gan

        train_gan(cfg, resume=ns.resume, overwrite=ns.overwrite, log=log)
        return 0
    train(cfg, resume=ns.resume, overwrite=ns.overwrite, log=log)
    return 0
