"""``lumachrome train``: argument parsing for the training loop (flags and config files)."""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING

from lumachrome.errors import UsageError
from lumachrome.train.config import RunConfig, add_config_arguments, check_flags, config_from_args, load_config_file

if TYPE_CHECKING:  # pragma: no cover
    from lumachrome.train.run import Regime

__all__ = ["build_parser", "regime_for", "train_main"]


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
               "(--train.regime pix2pix|cyclegan: docs/gan.md)\n"
               "  lumachrome train --config configs/photo5-hints-cpu.yaml --train.regime hints "
               "--hints.init src/lumachrome/weights/photo  (docs/hints.md)",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--config", help="YAML or TOML config file (see lumachrome/configs/)")
    p.add_argument("--resume", metavar="RUN_OR_CKPT", help="continue from a run folder or checkpoint")
    p.add_argument("--overwrite", nargs="?", const="move", choices=("move", "delete"),
                   help="start over in a run folder that holds an earlier run: move it aside to RUN.old-<time> "
                        "(default) or delete it (without --resume or --overwrite a non-empty --out is refused)")
    add_config_arguments(p)
    return p


def regime_for(cfg: RunConfig) -> Regime:
    """The regime of ``cfg.train.regime`` for :func:`lumachrome.train.run.run`: supervised
    (:mod:`lumachrome.train.loop`), pix2pix / cyclegan (:mod:`lumachrome.train.gan`) or hints
    (:mod:`lumachrome.train.hints`, widened from ``hints.init``)."""
    regime = cfg.train.regime
    if regime in ("pix2pix", "cyclegan"):  # the adversarial trainers
        from lumachrome.train.gan import GanRegime

        return GanRegime()
    if regime == "hints":
        from lumachrome.train.hints import HintsRegime

        return HintsRegime(cfg.hints.init, hint_seed=cfg.hints.seed, zero_share=cfg.hints.zero_share)
    from lumachrome.train.loop import SupervisedRegime

    return SupervisedRegime()


def train_main(argv: list[str] | None = None) -> int:
    """Entry point of ``lumachrome train``; returns the exit code. Errors raise LumachromeError."""
    from lumachrome.train.run import run

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
    run(cfg, regime_for(cfg), ns.resume, overwrite=ns.overwrite, log=log)
    return 0
