#!/usr/bin/env python3
"""Rewrite a full model folder so that it stores only the tensors that differ from a base model.

The folder keeps its config (plus ``"base": {"model": ..., "sha256": ...}``), its card and its outputs:
the network is loaded as it is and written again through ``save_model_dir(..., base=...)``, the code
path of ``lumachrome export --base``, which drops every tensor bit-identical to the base's (same dtype,
shape and bytes). The result is checked before this script reports success: it loads strictly and its
state dict equals the full one, tensor for tensor, bit for bit. How the shipped ``photo-hints`` was
rewritten (issue 18: it repeated all of ``photo``'s weights)::

    python scripts/rebase_model.py src/lumachrome/weights/photo-hints --base photo

``-o`` writes elsewhere instead of replacing the folder (which is swapped in atomically either way).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from lumachrome.errors import LumachromeError
from lumachrome.models.io import (BASE_KEY, CARD_NAME, WEIGHTS_NAME, load_model_dir, read_config, read_weights,
                                  same_tensor, save_model_dir)

_OWN = ("format", "format_version", "architecture", "args", "preprocessing", "decoding", BASE_KEY)


def rebase(folder: Path, base: str, out: Path) -> tuple[int, int]:
    """Write ``folder`` as a folder with base ``base`` at ``out``; returns (tensors kept, tensors in all)."""
    config = read_config(folder)
    model, _ = load_model_dir(folder, config=dict(config))
    full = read_weights(folder, config)  # the complete state, before anything is replaced
    card = (folder / CARD_NAME).read_text(encoding="utf-8") if (folder / CARD_NAME).is_file() else ""
    save_model_dir(model, out, architecture=config["architecture"], args=config["args"],
                   preprocessing=config["preprocessing"], decoding=config["decoding"], card=card,
                   extra={k: v for k, v in config.items() if k not in _OWN}, base=base)
    merged = read_weights(out)
    load_model_dir(out)  # strict, as every user of the folder loads it
    if set(merged) != set(full) or not all(same_tensor(full[k], merged[k]) for k in full):
        raise LumachromeError(f"{out}: rewritten weights differ from {folder}'s (bug)")
    from safetensors import safe_open

    with safe_open(str(out / WEIGHTS_NAME), framework="pt") as f:
        kept = len(list(f.keys()))
    return kept, len(full)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("folder", type=Path, help="the full model folder to rewrite")
    ap.add_argument("--base", required=True, help="the base model: a shipped name or a model folder")
    ap.add_argument("-o", "--output", type=Path, help="folder to write (default: replace FOLDER)")
    a = ap.parse_args(argv)
    out = a.output or a.folder
    try:
        before = (a.folder / WEIGHTS_NAME).stat().st_size if (a.folder / WEIGHTS_NAME).is_file() else 0
        kept, total = rebase(a.folder, a.base, out)
    except LumachromeError as e:
        print(f"rebase_model: error: {' '.join(str(e).split())}", file=sys.stderr)
        return 1
    after = (out / WEIGHTS_NAME).stat().st_size
    print(f"{out}: {kept} of {total} tensors kept ({before / 1e6:.1f} MB -> {after / 1e6:.1f} MB); base {a.base}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
