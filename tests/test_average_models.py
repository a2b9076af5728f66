"""scripts/average_models.py: a weight average ("soup") of model folders of one network."""

from __future__ import annotations

import json

import pytest
import torch
from _scripts import load_script


def _script():
    return load_script("average_models")


def _folder(path, seed, widths=(8, 16), half=False):
    from lumachrome.models import create_model, save_model_dir

    torch.manual_seed(seed)
    model = create_model("unet", widths=list(widths), blocks=1)
    with torch.no_grad():  # non-trivial BatchNorm statistics, so that buffers are averaged too
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.uniform_(-1, 1)
                m.running_var.uniform_(0.5, 2)
                m.num_batches_tracked.fill_(seed + 1)
    return save_model_dir(model, path, architecture="unet", args=model.args, preprocessing={"size": 32},
                          decoding={"saturation": 1.2, "flip": True}, extra={"name": f"m{seed}"}, half=half)


def test_soup_is_the_mean_of_every_float_tensor_and_keeps_the_first_config(tmp_path, capsys):
    from lumachrome.models import load_model_dir
    from lumachrome.models.io import read_weights

    a, b, c = (_folder(tmp_path / n, s, half=(n == "c")) for n, s in (("a", 0), ("b", 1), ("c", 2)))
    assert _script().main([str(a), str(b), str(c), "-o", str(tmp_path / "soup")]) == 0
    assert "averaged over 3 folders" in capsys.readouterr().out
    model, config = load_model_dir(tmp_path / "soup")  # strict
    wa, wb, wc = (read_weights(p) for p in (a, b, c))
    state = model.state_dict()
    for k, v in state.items():
        if v.is_floating_point():
            want = (wa[k].float() + wb[k].float() + wc[k].float()) / 3
            torch.testing.assert_close(v, want, rtol=0, atol=1e-6)
        else:
            assert torch.equal(v, wa[k])  # num_batches_tracked: the first folder's
    assert any(not torch.equal(v, wa[k].float()) for k, v in state.items() if v.is_floating_point())
    saved = json.loads((tmp_path / "soup" / "config.json").read_text())
    assert saved["decoding"] == {"saturation": 1.2, "flip": True} and saved["name"] == "m0"
    assert saved["soup"] == [str(a), str(b), str(c)] and "storage" not in saved


@pytest.mark.parametrize("case", ["one", "other-net"])
def test_soup_refuses_what_it_cannot_average(tmp_path, capsys, case):
    a = _folder(tmp_path / "a", 0)
    others = [] if case == "one" else [str(_folder(tmp_path / "b", 1, widths=(8, 8)))]
    assert _script().main([str(a), *others, "-o", str(tmp_path / "soup")]) == 1
    err = capsys.readouterr().err
    assert err.startswith("average_models: error: ") and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "soup").exists()
