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


def test_sketch_holdout_bounds_finds_twins_and_solves_for_the_rest(tmp_path, capsys):
    """Hold-out drawings identical to training drawings of other colours are twins, scored by the mean
    of the twins' colours; the edge-map sets get their baselines; the needed score of the rest follows."""
    from lumachrome.data.domain_pack import write_domain_pack

    rng = np.random.default_rng(0)
    page = np.full((1, 16, 16), 255, np.uint8)
    flag = page.copy()
    flag[0, 4:12, [3, 12]] = 0
    flag[0, [4, 11], 3:13] = 0

    def other(k):
        a = page.copy()
        a[0, k % 14 : k % 14 + 2, :] = 0
        return a

    def edges():
        return np.where(rng.random((1, 16, 16)) < 0.3, 0, 255).astype(np.uint8)

    def colour(rgb):
        return np.broadcast_to(np.array(rgb, np.uint8)[:, None, None], (3, 16, 16)).copy()

    train = [("openmoji/F1", flag, colour([200, 0, 0])), ("openmoji/F2", flag, colour([0, 0, 200])),
             ("openmoji/O1", other(1), colour([250, 250, 0]))]
    train += [(f"manga/m{i}", edges(), colour([90, 80, 70])) for i in range(3)]
    train += [(f"photos/p{i}", edges(), colour([100, 120, 140])) for i in range(3)]
    hold = [("openmoji/F3", flag, colour([0, 200, 0])), ("openmoji/O2", other(7), colour([250, 250, 0])),
            ("manga/m9", edges(), colour([90, 80, 70])), ("photos/p9", edges(), colour([100, 120, 140]))]
    paths = []
    for name, rows in (("train", train), ("hold", hold)):
        p = write_domain_pack(tmp_path / f"{name}.safetensors", A=np.stack([r[1] for r in rows]),
                              B=np.stack([r[2] for r in rows]), domain="sketch", split=name, a_channels=["line"])
        (tmp_path / f"{name}.json").write_text(json.dumps({"ids": [r[0] for r in rows]}))
        paths.append(str(p))
    capsys.readouterr()
    assert _script("sketch_holdout_bounds").main([paths[1], paths[0]]) == 0
    out = capsys.readouterr().out
    assert "twins: 1 OpenMoji drawings with 2 training twins each" in out
    from lumachrome.metrics import ciede2000, psnr

    gt = colour([0, 200, 0]).transpose(1, 2, 0)
    mean = colour([100, 0, 100]).transpose(1, 2, 0)  # the mean of the red and the blue twin
    best = [ln for ln in out.splitlines() if "best possible" in ln][0]
    assert f"| {psnr(mean, gt):.2f} | {ciede2000(mean, gt):.2f} |" in best
    base = [ln for ln in out.splitlines() if ln.startswith("| manga") and "baseline" in ln][0]
    assert float(base.split("|")[4]) > 40  # a constant-colour set is fitted almost exactly
    need = [ln for ln in out.splitlines() if ln.startswith("bars 18 / 9, twins at their best")][0]
    vals = {ln.split("|")[1].strip(): ln for ln in out.splitlines() if ln.startswith("|") and ("best possible" in ln or "baseline" in ln)}
    assert len(vals) == 3  # the twins' best possible row and the two edge-map baselines
    p_rest = sum(float(v.split("|")[4]) for v in vals.values())
    assert f"PSNR >= {18.0 * 4 - p_rest:.2f}" in need  # one openmoji-other drawing carries the rest
