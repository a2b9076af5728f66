"""Model folders that store only the tensors that differ from a base model (``base`` in config.json).

``photo-hints`` is shipped this way (its weights file holds only the hint branches; the rest is the
shipped ``photo``). A folder with a base must load exactly like the full folder, and every way the
base can be wrong (missing, changed, or tensors that do not add up to the network) must be one line.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file

from lumachrome.errors import ModelError
from lumachrome.models import create_model, load_model_dir, save_model_dir
from lumachrome.models.io import available_models, read_weights

SMALL = dict(widths=[8, 16], blocks=1)


pytestmark = pytest.mark.usefixtures("one_thread")  # tiny tensors (conftest.one_thread)


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _keys(weights: Path) -> set[str]:
    with safe_open(str(weights), framework="pt") as f:
        return set(f.keys())


def _random_model(seed: int = 0) -> torch.nn.Module:
    torch.manual_seed(seed)
    m = create_model("unet", **SMALL)
    with torch.no_grad():
        for v in m.state_dict().values():
            if v.is_floating_point():
                v.copy_(torch.randn_like(v) * 0.2 + (1.0 if v.dim() == 1 else 0.0))
    return m.eval()


def _save(model: torch.nn.Module, path: Path, **kw) -> Path:
    return save_model_dir(model, path, architecture="unet", args=model.args, preprocessing={"size": 32}, **kw)


@pytest.fixture()
def folders(tmp_path: Path) -> dict[str, Path]:
    """``base`` (full), ``full`` (the child network, full) and ``child`` (the same, stored against base):
    the child differs from the base in ``head.weight`` only."""
    base_model = _random_model(0)
    child_model = _random_model(0)
    with torch.no_grad():
        child_model.head.weight.add_(0.5)
    return {"base": _save(base_model, tmp_path / "base"), "full": _save(child_model, tmp_path / "full"),
            "child": _save(child_model, tmp_path / "child", base=tmp_path / "base")}


def test_base_folder_stores_only_the_differences_and_loads_like_the_full_one(folders):
    child, base, full = folders["child"], folders["base"], folders["full"]
    config = json.loads((child / "config.json").read_text())
    assert config["base"] == {"model": "../base", "sha256": _sha(base / "model.safetensors")}
    assert _keys(child / "model.safetensors") == {"head.weight"}
    assert "base" not in json.loads((full / "config.json").read_text())  # without base=: full, as before
    assert _keys(full / "model.safetensors") == _keys(base / "model.safetensors")
    a, _ = load_model_dir(child)
    b, _ = load_model_dir(full)
    L = torch.rand(2, 1, 24, 40) * 100
    with torch.no_grad():
        assert torch.equal(a.predict_ab(L), b.predict_ab(L))
    merged, whole = read_weights(child), load_file(str(full / "model.safetensors"))
    assert set(merged) == set(whole) and all(torch.equal(merged[k], whole[k]) for k in whole)


def test_a_tensor_that_differs_only_in_its_bits_is_kept(tmp_path):
    """Bit-identical, not equal by value: -0.0 == 0.0 to torch.equal, but the child's bytes differ."""
    base_model = _random_model(1)
    with torch.no_grad():
        base_model.head.bias.zero_()
    child_model = _random_model(1)
    with torch.no_grad():
        child_model.head.bias.copy_(-torch.zeros_like(child_model.head.bias))
    assert torch.equal(base_model.head.bias, child_model.head.bias)
    base = _save(base_model, tmp_path / "base")
    child = _save(child_model, tmp_path / "child", base=base)
    assert _keys(child / "model.safetensors") == {"head.bias"}
    assert torch.signbit(load_model_dir(child)[0].head.bias).all()


def test_colorize_through_the_cli_gives_the_full_models_bytes(folders, tmp_path, capsys):
    from lumachrome.cli import main
    from lumachrome.imageio import save_image

    y, x = np.mgrid[0:40, 0:56]
    src = tmp_path / "gray.png"
    save_image(src, np.dstack([(0.3 + 0.4 * x / 56 + 0.1 * np.sin(y / 5.0)).astype(np.float32)] * 3))
    outs = []
    for name in ("child", "full"):
        outs.append(tmp_path / f"{name}.png")
        assert main(["colorize", str(src), "-o", str(outs[-1]), "-m", str(folders[name]), "-q"]) == 0, \
            capsys.readouterr().err
    assert outs[0].read_bytes() == outs[1].read_bytes()


def _wrong_sha(f: dict[str, Path]) -> str:
    cfg = f["child"] / "config.json"
    config = json.loads(cfg.read_text())
    config["base"]["sha256"] = "0" * 64
    cfg.write_text(json.dumps(config))
    return "have sha256"


def _missing_base(f: dict[str, Path]) -> str:
    f["base"].rename(f["base"].with_name("moved"))
    return "base is missing"


def _extra_key(f: dict[str, Path]) -> str:
    own = f["child"] / "model.safetensors"
    state = load_file(str(own))
    state["bogus.weight"] = torch.zeros(3)
    save_file(state, str(own))
    return "1 unexpected tensor(s): bogus.weight"


def _missing_key(f: dict[str, Path]) -> str:
    """The base lacks a tensor that the child does not store either (the pinned digest updated, so only
    the missing tensor is wrong)."""
    weights = f["base"] / "model.safetensors"
    state = load_file(str(weights))
    del state["head.bias"]
    save_file(state, str(weights))
    cfg = f["child"] / "config.json"
    config = json.loads(cfg.read_text())
    config["base"]["sha256"] = _sha(weights)
    cfg.write_text(json.dumps(config))
    return "1 missing tensor(s): head.bias"


@pytest.mark.parametrize("breaks", [_wrong_sha, _missing_base, _extra_key, _missing_key],
                         ids=["wrong-sha256", "missing-base", "extra-key", "missing-key"])
def test_a_broken_base_is_one_line_through_the_cli(folders, tmp_path, capsys, breaks):
    from lumachrome.cli import main

    what = breaks(folders)
    with pytest.raises(ModelError, match="model.safetensors"):
        load_model_dir(folders["child"])
    src = tmp_path / "gray.png"
    from lumachrome.imageio import save_image

    save_image(src, np.full((32, 32, 3), 0.5, np.float32))
    capsys.readouterr()
    rc = main(["colorize", str(src), "-o", str(tmp_path / "o.png"), "-m", str(folders["child"]), "-q"])
    err = capsys.readouterr().err.strip()
    assert rc == 1 and err.count("\n") == 0 and err.startswith("lumachrome: error: "), err
    assert what in err and "Traceback" not in err, err
    assert str(folders["child"] / "model.safetensors") in err  # the file whose load failed ...
    if breaks in (_wrong_sha, _missing_base):  # ... and the base's weights it needed
        assert str(folders["base"] / "model.safetensors") in err, err
    assert not (tmp_path / "o.png").exists()


def test_bad_base_entries_and_bases_are_refused(folders, tmp_path):
    cfg = folders["child"] / "config.json"
    config = json.loads(cfg.read_text())
    config["base"] = {"model": "../base"}  # no digest
    cfg.write_text(json.dumps(config))
    with pytest.raises(ModelError, match="'base' must be"):
        load_model_dir(folders["child"])
    m = _random_model(2)
    with pytest.raises(ModelError, match="stores only differences from its own base"):
        _save(m, tmp_path / "grandchild", base=_save(m, tmp_path / "c2", base=folders["base"]))
    with pytest.raises(ModelError, match="tensor.s. this network lacks"):  # the merge would not load
        save_model_dir(create_model("unet", widths=[8], blocks=1), tmp_path / "smaller", architecture="unet",
                       args={"widths": [8], "blocks": 1}, preprocessing={"size": 32}, base=folders["base"])
    assert not (tmp_path / "smaller").exists()
    with pytest.raises(ModelError, match="is the folder being written"):
        _save(m, folders["base"], base=folders["base"])
    assert _keys(folders["base"] / "model.safetensors")  # left as it was


def test_export_with_base_through_the_cli(folders, tmp_path, capsys):
    """``lumachrome export --base``: a shipped name is stored as the name, a folder relative to the
    output; without --base the folder is full as before; with a model folder and --format onnx,
    --base is refused."""
    from lumachrome.cli import main
    from lumachrome.train.checkpoint import save_checkpoint
    from lumachrome.train.config import RunConfig

    model = _random_model(0)
    with torch.no_grad():
        model.head.weight.add_(0.5)  # the child of the fixture
    cfg = RunConfig.from_dict({"data": {"train": ["x"], "size": 32}, "model": {"architecture": "unet", "args": SMALL},
                               "train": {"out": str(tmp_path / "run"), "name": "child"}})
    save_checkpoint(tmp_path / "run", step=1, epoch=0, model=model,
                    optimizer=torch.optim.SGD(model.parameters(), lr=0.1), scheduler=None, config=cfg.to_dict(),
                    model_spec={"architecture": "unet", "args": model.args, "preprocessing": {"size": 32}})
    assert main(["export", str(tmp_path / "run"), "-o", str(tmp_path / "out" / "based"),
                 "--base", str(folders["base"])]) == 0, capsys.readouterr().err
    based = tmp_path / "out" / "based"
    assert json.loads((based / "config.json").read_text())["base"]["model"] == "../../base"
    assert _keys(based / "model.safetensors") == {"head.weight"}
    assert "only the tensors that differ from the base model" in (based / "README.md").read_text()
    assert main(["export", str(tmp_path / "run"), "-o", str(tmp_path / "plain")]) == 0
    assert _keys(tmp_path / "plain" / "model.safetensors") == _keys(folders["base"] / "model.safetensors")
    a, b = load_model_dir(based)[0], load_model_dir(tmp_path / "plain")[0]
    L = torch.rand(1, 1, 16, 16) * 100
    with torch.no_grad():
        assert torch.equal(a.predict_ab(L), b.predict_ab(L))
    capsys.readouterr()
    assert main(["export", str(tmp_path / "run"), "-o", str(tmp_path / "nobase"),
                 "--base", str(tmp_path / "nope")]) == 1
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "nope" in err and not (tmp_path / "nobase").exists()
    assert main(["export", str(folders["full"]), "--format", "onnx", "--base", str(folders["base"])]) == 2


@pytest.mark.skipif(not {"photo", "photo-hints"} <= set(available_models()),
                    reason="needs the shipped photo and photo-hints models")
def test_shipped_photo_hints_stores_only_its_hint_branches():
    from lumachrome.models.io import shipped_model_dirs

    dirs = shipped_model_dirs()
    config = json.loads((dirs["photo-hints"] / "config.json").read_text())
    assert config["base"] == {"model": "photo", "sha256": _sha(dirs["photo"] / "model.safetensors")}
    own = _keys(dirs["photo-hints"] / "model.safetensors")
    assert own and all(k.startswith("hint_dec.") for k in own)
    assert not own & _keys(dirs["photo"] / "model.safetensors")


def test_onnx_graph_of_a_base_folder_goes_stale_with_its_base(folders, tmp_path):
    """The ONNX freshness digest of a folder with a base covers the base: re-exporting the child against
    another base leaves its own weights file byte-identical, yet the old model.onnx is refused."""
    pytest.importorskip("onnx")
    pytest.importorskip("onnxruntime")
    from lumachrome.onnx_export import export_onnx, onnx_network
    from lumachrome.onnx_runtime import weights_digest
    from lumachrome.models.io import read_config

    child = folders["child"]
    assert weights_digest(child) != _sha(child / "model.safetensors")  # own + base, not own alone
    graph = export_onnx(child)
    onnx_network(child, config=read_config(child))  # fresh
    kept = graph.read_bytes()
    own = (child / "model.safetensors").read_bytes()
    base2 = _random_model(0)
    with torch.no_grad():
        base2.head.weight.sub_(0.5)  # differs from the base only where the child stores its own tensor
    child_model = load_model_dir(child)[0]
    _save(child_model, child, base=_save(base2, tmp_path / "base2"))
    assert (child / "model.safetensors").read_bytes() == own
    (child / "model.onnx").write_bytes(kept)
    with pytest.raises(ModelError, match="stale ONNX file"):
        onnx_network(child, config=read_config(child))


def test_fine_tuning_init_reads_through_the_base(folders):
    """``model.init`` from a folder with a base starts from the merged weights (not just its own file)."""
    from lumachrome.train.loop import init_from

    fresh = create_model("unet", **SMALL)
    assert init_from(fresh, str(folders["child"]), []) == []
    whole = load_file(str(folders["full"] / "model.safetensors"))
    assert all(torch.equal(v, whole[k]) for k, v in fresh.state_dict().items())


# --------------------------------------------------------------------------- float16 storage (export --half)


def test_half_storage_halves_parameters_keeps_buffers_and_loads_into_float32(tmp_path: Path):
    model = _random_model(3)
    full = _save(model, tmp_path / "full")
    half = _save(model, tmp_path / "half", half=True)
    params = {k for k, _ in model.named_parameters()}
    stored = load_file(str(half / "model.safetensors"))
    assert {k for k, v in stored.items() if v.dtype == torch.float16} == params
    assert all(stored[k].dtype != torch.float16 for k in set(stored) - params)  # BN statistics stay float32
    assert json.loads((half / "config.json").read_text())["storage"] == {"parameters": "float16"}
    assert (half / "model.safetensors").stat().st_size < 0.6 * (full / "model.safetensors").stat().st_size
    a, _ = load_model_dir(full)
    b, _ = load_model_dir(half)
    assert all(p.dtype == torch.float32 for p in b.parameters())
    for k, v in b.state_dict().items():  # each parameter is the float32 one rounded to float16
        ref = a.state_dict()[k]
        expect = ref.to(torch.float16).to(ref.dtype) if k in params else ref
        assert torch.equal(v, expect), k
    x = torch.rand(1, 1, 32, 32) * 100
    with torch.no_grad():
        ya, yb = a(x), b(x)
    assert not torch.equal(ya, yb)  # really rounded ...
    assert (ya - yb).abs().max() <= 0.01 * ya.abs().max()  # ... by float16's 11 significant bits


def test_half_storage_refuses_parameters_beyond_float16_range(tmp_path: Path):
    model = _random_model(4)
    with torch.no_grad():
        next(model.parameters()).view(-1)[0] = 1e6
    with pytest.raises(ModelError, match="float16 range"):
        _save(model, tmp_path / "big", half=True)
    assert not (tmp_path / "big").exists()
