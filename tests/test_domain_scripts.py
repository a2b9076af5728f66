"""scripts/split_domain_pack.py (training-time validation split by id) and scripts/domain_sheet.py."""

from __future__ import annotations

import json

import numpy as np
import torch
from _scripts import load_script as _script


def _pack(tmp_path, ids):
    from lumachrome.data.domain_pack import write_domain_pack

    n = len(ids)
    A = torch.arange(n, dtype=torch.uint8).view(n, 1, 1, 1).expand(n, 1, 8, 8).contiguous()  # A encodes the row
    B = torch.zeros(n, 3, 8, 8, dtype=torch.uint8)
    path = write_domain_pack(tmp_path / "p.safetensors", A=A, B=B, domain="thermal", split="train",
                             a_channels=["thermal"])
    (tmp_path / "p.json").write_text(json.dumps({"ids": ids}))
    return path


def test_split_keeps_every_id_on_one_side(tmp_path, capsys):
    from lumachrome.data.domain_pack import read_domain_pack

    ids = [f"roadscene/F{i // 2}" for i in range(40)]  # 20 frames, two crops each
    pack = _pack(tmp_path, ids)
    split = _script("split_domain_pack")
    args = [str(pack), "--train-out", str(tmp_path / "fit.safetensors"), "--val-out", str(tmp_path / "val.safetensors")]
    assert split.main(args) == 0
    fit, val = read_domain_pack(tmp_path / "fit.safetensors"), read_domain_pack(tmp_path / "val.safetensors")
    fit_rows = fit.A[:, 0, 0, 0].tolist()
    val_rows = val.A[:, 0, 0, 0].tolist()
    assert sorted(fit_rows + val_rows) == list(range(40)) and len(val_rows) == 4  # 10 % of 20 frames, 2 crops each
    assert not {ids[i] for i in fit_rows} & {ids[i] for i in val_rows}
    assert json.loads((tmp_path / "val.json").read_text())["ids"] == [ids[i] for i in val_rows]
    # fixed: the same split again; a sidecar that does not match the pack is a one-line error (exit 2)
    assert split.main(args) == 0
    assert read_domain_pack(tmp_path / "val.safetensors").A[:, 0, 0, 0].tolist() == val_rows
    (tmp_path / "p.json").write_text(json.dumps({"ids": ids[:3]}))
    assert split.main(args) == 2
    assert "3 ids for 40 pairs" in capsys.readouterr().err


def test_sheet_columns(tmp_path):
    from PIL import Image

    from lumachrome.models.gan import UNetGenerator
    from lumachrome.models.io import save_model_dir

    pack = _pack(tmp_path, [f"x/{i}" for i in range(10)])
    g = UNetGenerator(in_channels=1, out_channels=3, width=4, depth=2)
    extra = {"task": "translate", "domain": "thermal", "input": {"channels": ["thermal"], "range": [-1, 1]},
             "output": {"space": "rgb", "range": [-1, 1]}}
    save_model_dir(g, tmp_path / "m", architecture="unet_gen", args=g.args, preprocessing={"size": 8}, extra=extra)
    out = tmp_path / "sheet.png"
    assert _script("domain_sheet").main(["--pack", str(pack), "--model", str(tmp_path / "m"), "-n", "3",
                                         "--scale", "2", "-o", str(out)]) == 0
    img = np.asarray(Image.open(out))
    assert img.shape[:2] == (3 * 16 + 2 * 4, 3 * 16 + 2 * 4)  # 3 rows; input | model | truth, 4 px gaps
