"""ONNX export and the ONNX Runtime backend: same ab as PyTorch (1e-3), dynamic shapes, freshness."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

onnx = pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")

from lumachrome.colorizer import Colorizer  # noqa: E402
from lumachrome.errors import ConfigError, ModelError  # noqa: E402
from lumachrome.models import create_model, save_model_dir  # noqa: E402
from lumachrome.onnx_export import DEFAULT_OPSET, ONNX_NAME, OnnxNetwork, export_onnx, weights_digest  # noqa: E402

REPO_ROOT = Path(__file__).resolve().parents[1]
TOL = 1e-3  # |ab| (raw Lab units), the bar


def _randomise(model: torch.nn.Module, seed: int) -> torch.nn.Module:
    """Non-trivial weights and BatchNorm statistics (a fresh model has a zero head: ab = 0)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.startswith("head"):
                p.copy_(torch.randn(p.shape, generator=g) * 0.2)
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.copy_(torch.randn(m.running_mean.shape, generator=g) * 0.1)
                m.running_var.copy_(torch.rand(m.running_var.shape, generator=g) + 0.5)
    return model


@pytest.fixture(scope="module")
def reg_dir(tmp_path_factory) -> Path:
    torch.manual_seed(0)
    model = _randomise(create_model("unet", widths=[16, 32, 64], blocks=1), 1)
    folder = tmp_path_factory.mktemp("onnx") / "reg"
    save_model_dir(model, folder, architecture="unet", args=model.args, preprocessing={"size": 64}, extra={"name": "reg"})
    return folder


@pytest.fixture(scope="module")
def cls_dir(tmp_path_factory) -> Path:
    torch.manual_seed(1)
    model = _randomise(create_model("unet", widths=[8, 16], blocks=1, head="classification", num_bins=24), 2)
    model.set_bins(torch.randn(24, 2, generator=torch.Generator().manual_seed(3)) * 40)
    folder = tmp_path_factory.mktemp("onnx") / "cls"
    save_model_dir(model, folder, architecture="unet", args=model.args, preprocessing={"size": 48},
                   decoding={"temperature": 0.5}, extra={"name": "cls"})  # fmt: skip
    return folder


def test_export_writes_a_dynamic_graph_with_metadata(reg_dir: Path) -> None:
    path = export_onnx(reg_dir)
    assert path == reg_dir / ONNX_NAME and path.is_file()
    proto = onnx.load(str(path))
    assert proto.opset_import[0].version == DEFAULT_OPSET
    dims = [d.dim_param or d.dim_value for d in proto.graph.input[0].type.tensor_type.shape.dim]
    assert dims == ["batch", 1, "height", "width"]
    meta = {p.key: p.value for p in proto.metadata_props}
    assert meta["lumachrome.weights_sha256"] == weights_digest(reg_dir)
    assert meta["lumachrome.multiple"] == "4" and meta["lumachrome.head"] == "regression"
    assert not [p for p in reg_dir.iterdir() if p.name.startswith(".")], "no temporary file left"


@pytest.mark.parametrize("shape", [(1, 1, 64, 48), (3, 1, 32, 80), (2, 1, 37, 50), (1, 1, 5, 7)])
def test_onnx_matches_torch_regression(reg_dir: Path, shape) -> None:
    export_onnx(reg_dir)
    torch_col = Colorizer.load(reg_dir, device="cpu")
    onnx_col = Colorizer.load(reg_dir, device="cpu", backend="onnx", threads=1)
    assert onnx_col.backend == "onnx" and isinstance(onnx_col.onnx, OnnxNetwork)
    L = torch.rand(*shape, generator=torch.Generator().manual_seed(sum(shape))) * 100
    want, got = torch_col.predict_ab_batch(L), onnx_col.predict_ab_batch(L)
    assert got.shape == want.shape == (shape[0], 2, *shape[2:])
    assert float(want.abs().max()) > 5, "the test model must predict real colours"
    assert float((got - want).abs().max()) <= TOL


def test_onnx_matches_torch_classification_any_temperature(cls_dir: Path) -> None:
    export_onnx(cls_dir)
    L = torch.rand(2, 1, 32, 48, generator=torch.Generator().manual_seed(5)) * 100
    results = []
    for t in (None, 0.2, 1.0):  # None: the config's 0.5; the temperature is a graph input
        want = Colorizer.load(cls_dir, device="cpu", temperature=t).predict_ab_batch(L)
        got = Colorizer.load(cls_dir, device="cpu", temperature=t, backend="onnx", threads=1).predict_ab_batch(L)
        assert float((got - want).abs().max()) <= TOL
        results.append(got)
    assert float((results[1] - results[2]).abs().max()) > 1, "temperature must change the decoding"


def test_colorize_array_same_with_both_backends(reg_dir: Path) -> None:
    rng = np.random.default_rng(0)
    gray = rng.random((90, 130), dtype=np.float32)
    a = Colorizer.load(reg_dir, device="cpu")(gray)
    b = Colorizer.load(reg_dir, device="cpu", backend="onnx", threads=1)(gray)
    assert a.shape == b.shape == (90, 130, 3)
    assert float(np.abs(a - b).max()) < 1e-4


def test_stale_onnx_is_refused_and_missing_one_is_exported_in_memory(tmp_path: Path, reg_dir: Path) -> None:
    import shutil

    folder = tmp_path / "m"
    shutil.copytree(reg_dir, folder)
    (folder / ONNX_NAME).unlink(missing_ok=True)
    # No model.onnx: exported in memory, nothing written into the folder.
    before = sorted(p.name for p in folder.iterdir())
    col = Colorizer.load(folder, device="cpu", backend="onnx", threads=1)
    assert "in-memory" in col.onnx.source and sorted(p.name for p in folder.iterdir()) == before
    export_onnx(folder)
    Colorizer.load(folder, device="cpu", backend="onnx", threads=1)  # fresh: fine
    # New weights under the old model.onnx: refused with one line naming the file and the fix.
    model, _ = __import__("lumachrome.models.io", fromlist=["load_model_dir"]).load_model_dir(folder)
    _randomise(model, 9)
    onnx_bytes = (folder / ONNX_NAME).read_bytes()
    save_model_dir(model, folder, architecture="unet", args=model.args, preprocessing={"size": 64})
    (folder / ONNX_NAME).write_bytes(onnx_bytes)
    with pytest.raises(ModelError, match="stale ONNX file") as info:
        Colorizer.load(folder, device="cpu", backend="onnx")
    assert "\n" not in str(info.value) and "--format onnx" in str(info.value)
    # A foreign .onnx (no lumachrome metadata) is refused too.
    proto = onnx.load_from_string(onnx_bytes)
    del proto.metadata_props[:]
    (folder / ONNX_NAME).write_bytes(proto.SerializeToString())
    with pytest.raises(ModelError, match="not exported by lumachrome"):
        Colorizer.load(folder, device="cpu", backend="onnx")
    with pytest.raises(ConfigError, match="backend"):
        Colorizer.load(folder, device="cpu", backend="tensorrt")


def test_cli_export_onnx_and_colorize_backend(tmp_path: Path, reg_dir: Path) -> None:
    import shutil

    from PIL import Image

    folder = tmp_path / "model"
    shutil.copytree(reg_dir, folder)
    (folder / ONNX_NAME).unlink(missing_ok=True)
    img = (np.random.default_rng(1).random((40, 56)) * 255).astype(np.uint8)
    Image.fromarray(img, "L").save(tmp_path / "g.png")
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT / "src"), "OMP_NUM_THREADS": "1"}

    def run(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "lumachrome", *args], cwd=tmp_path, env=env,
                              capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL)  # fmt: skip

    proc = run("export", str(folder), "--format", "onnx")
    assert proc.returncode == 0, proc.stderr
    assert (folder / ONNX_NAME).is_file() and "opset 17" in proc.stdout
    for backend in ("torch", "onnx"):
        proc = run("colorize", "g.png", "-o", f"{backend}.png", "--model", str(folder), "--backend", backend)
        assert proc.returncode == 0, proc.stderr
    a = np.asarray(Image.open(tmp_path / "torch.png"), dtype=np.int16)
    b = np.asarray(Image.open(tmp_path / "onnx.png"), dtype=np.int16)
    assert a.shape == (40, 56, 3) and int(np.abs(a - b).max()) <= 1
    proc = run("colorize", "g.png", "--model", str(folder), "--backend", "tensorrt")
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    proc = run("export", str(folder), "--format", "onnx", "-o", str(tmp_path / "x.txt"))
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    meta = json.loads((folder / "config.json").read_text())
    assert meta["name"] == "reg", "exporting ONNX never rewrites config.json"


def test_effunet_exports_and_matches_torch(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    """The EfficientNet U-Net (TF-"same" stride-2 padding, internal padding to 32, scene vector, head at
    1/2 then bilinear x2) through ``lumachrome export --format onnx``: ONNX Runtime gives PyTorch's ab at a
    multiple of 32 and at other sizes (padded like the model), and through the Colorizer."""
    from _stubs import save_tiny_effunet

    from lumachrome.cli import main

    folder = save_tiny_effunet(tmp_path / "eff", size=96)
    assert main(["export", str(folder), "--format", "onnx"]) == 0  # includes the export check at 96x160
    assert "opset 17" in capsys.readouterr().out
    meta = {p.key: p.value for p in onnx.load(str(folder / ONNX_NAME)).metadata_props}
    assert meta["lumachrome.multiple"] == "32" and meta["lumachrome.weights_sha256"] == weights_digest(folder)
    torch_col = Colorizer.load(folder, device="cpu")
    onnx_col = Colorizer.load(folder, device="cpu", backend="onnx", threads=1)
    assert "in-memory" not in onnx_col.onnx.source and onnx_col.multiple == 32
    for shape in [(1, 1, 64, 96), (2, 1, 100, 150), (1, 1, 20, 75)]:
        L = torch.rand(*shape, generator=torch.Generator().manual_seed(sum(shape))) * 100
        want, got = torch_col.predict_ab_batch(L), onnx_col.predict_ab_batch(L)
        assert got.shape == want.shape == (shape[0], 2, *shape[2:])
        assert float(want.std(dim=(2, 3)).min()) > 0.5, "the test model must predict varying colours"
        assert float((got - want).abs().max()) <= TOL, shape
    gray = np.random.default_rng(0).random((90, 130), dtype=np.float32)
    assert float(np.abs(torch_col(gray) - onnx_col(gray)).max()) < 1e-4
