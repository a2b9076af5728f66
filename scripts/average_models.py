#!/usr/bin/env python3
"""Average the weights of model folders fine-tuned from one starting point (a "model soup").

Two fine-tunes of the same network from the same weights, with different seeds (data order, crops),
land in one basin of the loss; the average of their weights is usually better than either
(Wortsman et al. 2022, "uniform soup"), at no cost at inference. Every floating-point tensor (BatchNorm
running statistics included) is the mean over the folders; integer buffers (``num_batches_tracked``)
are taken from the first. The folders must hold the same architecture, args and tensor names and
shapes (else an error, nothing written). The first folder's config (decoding, preprocessing, name)
and card go to the output, with ``"soup": [folders]`` added to its config; the result is checked to
load strictly before this script reports success::

    python scripts/average_models.py runs/photo5-tune3/model runs/photo5-tune3b/model -o runs/photo5-soup/model
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

from lumachrome.errors import LumachromeError
from lumachrome.models.io import BASE_KEY, CARD_NAME, load_model_dir, read_config, read_weights, save_model_dir

_OWN = ("format", "format_version", "architecture", "args", "preprocessing", "decoding", BASE_KEY, "storage")


def average(folders: list[Path], out: Path) -> int:
    """Write the weight average of ``folders`` to ``out``; returns the number of tensors averaged."""
    if len(folders) < 2:
        raise LumachromeError("average_models: give at least two model folders")
    configs = [read_config(f) for f in folders]
    first = configs[0]
    for f, c in zip(folders[1:], configs[1:]):
        if c["architecture"] != first["architecture"] or c["args"] != first["args"]:
            raise LumachromeError(f"{f}: architecture/args differ from {folders[0]}'s; only one network can be averaged")
    states = [read_weights(f, c) for f, c in zip(folders, configs)]
    for f, s in zip(folders[1:], states[1:]):
        if set(s) != set(states[0]):
            raise LumachromeError(f"{f}: tensor names differ from {folders[0]}'s")
        bad = [k for k in s if s[k].shape != states[0][k].shape]
        if bad:
            raise LumachromeError(f"{f}: tensor {bad[0]} has shape {tuple(s[bad[0]].shape)}, "
                                  f"{folders[0]} has {tuple(states[0][bad[0]].shape)}")
    model, _ = load_model_dir(folders[0], config=dict(first))
    averaged = 0
    soup = {}
    for k, v in states[0].items():
        if v.is_floating_point():
            soup[k] = torch.stack([s[k].float() for s in states]).mean(0)
            averaged += 1
        else:
            soup[k] = v
    model.load_state_dict(soup, strict=True)
    card = (folders[0] / CARD_NAME).read_text(encoding="utf-8") if (folders[0] / CARD_NAME).is_file() else ""
    extra = {k: v for k, v in first.items() if k not in _OWN}
    extra["soup"] = [str(f) for f in folders]
    save_model_dir(model, out, architecture=first["architecture"], args=first["args"],
                   preprocessing=first["preprocessing"], decoding=first["decoding"], card=card, extra=extra)
    load_model_dir(out)  # strict, as every user of the folder loads it
    return averaged


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("folders", type=Path, nargs="+", help="model folders of one network (two or more)")
    ap.add_argument("-o", "--output", type=Path, required=True, help="model folder to write")
    a = ap.parse_args(argv)
    try:
        n = average(a.folders, a.output)
    except LumachromeError as e:
        print(f"average_models: error: {' '.join(str(e).split())}", file=sys.stderr)
        return 1
    print(f"{a.output}: {n} tensors averaged over {len(a.folders)} folders")
    return 0


if __name__ == "__main__":
    sys.exit(main())
