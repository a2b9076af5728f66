"""scripts/split_domain_pack.py: a training-time validation split of a train pack, by sample id."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from _scripts import load_script

from lumachrome.data.domain_pack import read_domain_pack, write_domain_pack


def _script():
    return load_script("split_domain_pack")


def _pack(tmp_path: Path) -> Path:
    ids = [f"geolifeclef/g{i}" for i in range(20)] + [f"nirtiles/32618/{i // 2}/7" for i in range(40)]
    n = len(ids)
    A = np.arange(n, dtype=np.uint8)[:, None, None, None] * np.ones((1, 1, 8, 8), np.uint8)
    B = np.repeat(A, 3, axis=1)
    path = tmp_path / "nir-train.safetensors"
    write_domain_pack(path, A=A, B=B, domain="nir", split="train", a_channels=["nir"])
    path.with_suffix(".json").write_text(json.dumps({"ids": ids}))
    return path


def test_val_sets_draw_validation_from_those_sets_only(tmp_path, capsys):
    mod, pack = _script(), _pack(tmp_path)
    fit, val = tmp_path / "fit.safetensors", tmp_path / "val.safetensors"
    assert mod.main([str(pack), "--val-sets", "geolifeclef", "--train-out", str(fit), "--val-out", str(val)]) == 0
    val_ids = json.loads(val.with_suffix(".json").read_text())["ids"]
    fit_ids = json.loads(fit.with_suffix(".json").read_text())["ids"]
    assert len(val_ids) == 2 and all(i.startswith("geolifeclef/") for i in val_ids)  # 10 % of 20
    assert len(fit_ids) == 58 and not set(val_ids) & set(fit_ids)
    v = read_domain_pack(val)
    assert v.split == "val" and sorted(int(x) for x in v.A[:, 0, 0, 0]) == sorted(int(i[len("geolifeclef/g"):]) for i in val_ids)
    # without --val-sets every dataset may give validation ids, pairs of one id stay together
    assert mod.main([str(pack), "--train-out", str(fit), "--val-out", str(val)]) == 0
    val_all = json.loads(val.with_suffix(".json").read_text())["ids"]
    assert len(set(val_all)) == 4  # 10 % of 40 distinct ids
    assert mod.main([str(pack), "--val-sets", "landsat", "--train-out", str(fit), "--val-out", str(val)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["error: no sample of the datasets landsat in the pack"]
