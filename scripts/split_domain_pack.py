"""Split a paired domain pack into a training part and a training-time validation part, by sample id.

The hold-out packs (``lumachrome data domain --split holdout``) are for the final report only; choices
(checkpoint, size, loss weights) need data of their own. This cuts ``--fraction`` of a *train* pack's
distinct ids (ranked by ``sha256(salt + id)``, so the choice is fixed and independent of pack order)
into a validation pack; every pair of one id (both crops of a RoadScene frame) lands on the same side.

    python scripts/split_domain_pack.py .packs/thermal-train.safetensors --fraction 0.1 \\
        --train-out runs/packs/thermal-fit.safetensors --val-out runs/packs/thermal-val.safetensors

``--val-sets geolifeclef`` draws the validation ids from those datasets only (the first component of
an id; the fraction is taken within them): for packs whose other sets overlap in space (``nirtiles``
windows overlap each other and the ``landsat`` cells), so a validation image shares no pixel with a
training one.

The ids come from the pack's sidecar (``PACK.json`` beside ``PACK.safetensors``, as written by
``lumachrome data domain``). Prints the counts; writes ``OUT.json`` sidecars with the ids of each part.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from pathlib import Path

from lumachrome.data.domain_pack import read_domain_pack, write_domain_pack
from lumachrome.data.domains import set_of
from lumachrome.errors import DataError


def sidecar(pack: Path) -> Path:
    return pack.with_suffix(".json")


def val_ids(ids: list[str], fraction: float, salt: str, sets: list[str] | None = None) -> set[str]:
    """The ``round(fraction * n)`` (at least 1) distinct ids with the smallest ``sha256(salt + id)``;
    with ``sets``, among the ids of those datasets only (none there: an error)."""
    unique = sorted(i for i in set(ids) if sets is None or set_of(i) in sets)
    if not unique:
        raise DataError(f"no sample of the datasets {', '.join(sets or [])} in the pack")
    k = max(1, round(fraction * len(unique)))
    return set(sorted(unique, key=lambda i: (hashlib.sha256((salt + i).encode()).digest(), i))[:k])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("pack", type=Path)
    ap.add_argument("--fraction", type=float, default=0.1)
    ap.add_argument("--salt", default="val:")
    ap.add_argument("--val-sets", default=None, help="comma-separated datasets the validation ids come from")
    ap.add_argument("--train-out", type=Path, required=True)
    ap.add_argument("--val-out", type=Path, required=True)
    a = ap.parse_args(argv)
    try:
        if not 0 < a.fraction < 1:
            raise DataError(f"--fraction {a.fraction} must be in (0, 1)")
        pack = read_domain_pack(a.pack)
        if not pack.paired:
            raise DataError(f"{a.pack}: not a paired pack (A and B needed)")
        side = sidecar(a.pack)
        if not side.is_file():
            raise DataError(f"{a.pack}: no sidecar {side} with the sample ids")
        ids = json.loads(side.read_text())["ids"]
        if len(ids) != pack.A.shape[0]:
            raise DataError(f"{side}: {len(ids)} ids for {pack.A.shape[0]} pairs")
        sets = [v.strip() for v in a.val_sets.split(",") if v.strip()] if a.val_sets else None
        held = val_ids(ids, a.fraction, a.salt, sets)
    except (DataError, OSError, KeyError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    for out, keep in ((a.train_out, False), (a.val_out, True)):
        idx = [i for i, s in enumerate(ids) if (s in held) == keep]
        out.parent.mkdir(parents=True, exist_ok=True)
        write_domain_pack(out, A=pack.A[idx], B=pack.B[idx], domain=pack.domain,
                          split="val" if keep else "fit", a_channels=pack.a_channels,
                          source=f"{a.pack} split by sha256({a.salt!r} + id), fraction {a.fraction}")
        sidecar(out).write_text(json.dumps({"source": str(a.pack), "ids": [ids[i] for i in idx]}, indent=1))
        print(f"{out}: {len(idx)} pairs, {len({ids[i] for i in idx})} ids")
    return 0


if __name__ == "__main__":
    sys.exit(main())
