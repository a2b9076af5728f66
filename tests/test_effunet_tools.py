"""An ``effunet`` model folder (EfficientNet-Lite0 encoder + U-Net decoder, lumachrome.models.effnet)
through everything that takes a ``photo`` model: the Colorizer (working sides multiples of 32), the
``colorize`` and ``evaluate`` commands and the web app's engine (colorize + explain view).

ONNX export is in test_onnx.py, the explain report in test_explain.py. The model is a small random
one (tests/_stubs.py), so no package weights are needed.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
import torch
from _stubs import save_tiny_effunet, tiny_effunet

from lumachrome.colorizer import Colorizer, working_shape
from lumachrome.data.synthetic import synthetic_photo
from lumachrome.errors import ConfigError
from lumachrome.hints import parse_hint
from lumachrome.imageio import load_image, save_image

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def eff_dir(tmp_path_factory) -> Path:
    return save_tiny_effunet(tmp_path_factory.mktemp("effunet") / "eff", size=96)


def test_colorizer_loads_an_effunet_folder_and_works_at_multiples_of_32(eff_dir: Path) -> None:
    col = Colorizer.load(eff_dir, device="cpu")
    assert col.multiple == 32 and col.size == 96 and col.name == "tiny-effunet"
    for h, w, size in ((150, 230, None), (90, 400, 144), (1000, 37, 200), (20, 20, None)):
        L = col.network_input(synthetic_photo(h, w, seed=1), size)
        assert L.shape[0] % 32 == 0 and L.shape[1] % 32 == 0 and L.shape[0] >= 32, (h, w, size)
        assert L.shape == working_shape(h, w, size or col.size, 32)
    rgb = synthetic_photo(150, 230, seed=2)
    out = col.colorize_array(rgb)
    assert out.shape == rgb.shape
    from lumachrome.color.lab import rgb_to_lab_np

    lab_in, lab_out = rgb_to_lab_np(rgb), rgb_to_lab_np(np.clip(out, 0, 1))
    assert np.abs(lab_in[..., 0] - lab_out[..., 0]).mean() < 1.0  # the photo's own lightness
    assert np.hypot(lab_out[..., 1], lab_out[..., 2]).mean() > 1.0  # and colour from the network
    # the network's prediction is the model's own forward pass on the working-size L
    L = torch.from_numpy(col.network_input(rgb))[None, None]
    with torch.no_grad():
        want = tiny_effunet()(L)
    torch.testing.assert_close(col.predict_ab_batch(L), want, atol=1e-4, rtol=1e-4)
    # what evaluate scores: any L size, resized to the working shape and back
    ab = col.predict_ab_working(torch.rand(2, 1, 50, 70) * 100)
    assert ab.shape == (2, 2, 50, 70) and torch.isfinite(ab).all()


def test_cli_colorize_and_evaluate_with_an_effunet_folder(tmp_path: Path, eff_dir: Path, capsys) -> None:
    from lumachrome.cli import main
    from lumachrome.data.synthetic import write_synthetic_folder

    rgb = synthetic_photo(70, 110, seed=5)
    save_image(tmp_path / "in.png", rgb.mean(axis=2))
    assert main(["colorize", str(tmp_path / "in.png"), "-o", str(tmp_path / "out.png"), "--model", str(eff_dir)]) == 0
    out = load_image(tmp_path / "out.png").rgb
    assert out.shape == (70, 110, 3) and float(np.ptp(out - out.mean(axis=2, keepdims=True))) > 0.01  # colour
    # a folder: names kept, one network batch per working shape
    save_image(tmp_path / "photos" / "a.png", synthetic_photo(48, 64, seed=6))
    save_image(tmp_path / "photos" / "b.jpg", synthetic_photo(100, 40, seed=7))
    assert main(["colorize", str(tmp_path / "photos"), "-o", str(tmp_path / "res"), "--model", str(eff_dir)]) == 0
    assert sorted(p.name for p in (tmp_path / "res").iterdir()) == ["a.png", "b.jpg"]
    assert load_image(tmp_path / "res" / "b.jpg").rgb.shape == (100, 40, 3)

    write_synthetic_folder(tmp_path / "val", 3, size=48)
    capsys.readouterr()
    assert main(["evaluate", "--model", str(eff_dir), "--data", str(tmp_path / "val"), "--size", "48",
                 "--json", str(tmp_path / "eval.json")]) == 0
    table = capsys.readouterr().out
    assert "gray" in table and "tiny-effunet" in table
    assert "tiny-effunet" in (tmp_path / "eval.json").read_text()


def test_web_app_engine_runs_an_effunet_folder_with_the_explain_view(tmp_path: Path, eff_dir: Path,
                                                                     monkeypatch) -> None:
    from PIL import Image

    from lumachrome.app.engine import AppConfig, Engine

    monkeypatch.setenv("LUMACHROME_CACHE", str(tmp_path / "cache"))  # the explain view's probe cache
    engine = Engine(AppConfig(root=str(tmp_path / "app"), extra_models={"eff": str(eff_dir)}))
    try:
        info = {m["name"]: m for m in engine.models()}["eff"]
        assert info == {"name": "eff", "kind": "colorize", "hints": False, "size": 96, "description": "", "flat": False}
        buf = io.BytesIO()
        Image.fromarray((synthetic_photo(60, 84, seed=8).mean(axis=2) * 255).astype(np.uint8)).save(buf, format="PNG")
        up = engine.upload(buf.getvalue(), "gray.png")
        res = engine.colorize(up["id"], model="eff", colour=1.5, explain=True)
        assert (res["model"], res["width"], res["height"]) == ("eff", 84, 60)
        result = load_image(engine.path_of(res["id"], "result.png")[0]).rgb
        assert result.shape == (60, 84, 3)
        view = res["explain"]
        assert view["available"] and view["index"].endswith("explain/index.html")
        names = {f.rsplit("/", 1)[-1] for f in view["figures"]}
        assert {"coarse_to_fine.png", "encoder_probes.png", "ablation.png", "receptive_field.png"} <= names
        with pytest.raises(ConfigError, match="no colour hints"):
            engine.colorize(up["id"], model="eff", hints=[parse_hint("10,10,#ff0000")])
    finally:
        engine.close()


def test_export_refuses_a_working_size_that_is_not_a_multiple_of_the_network_s(tmp_path: Path, capsys) -> None:
    """effunet works on multiples of 32: export --size 208 (a multiple of 16) is a one-line error
    naming the nearest good size, instead of a folder whose size colorize would silently round."""
    from lumachrome.cli import main
    from lumachrome.train.checkpoint import save_checkpoint
    from lumachrome.train.config import RunConfig

    model = tiny_effunet()
    opt = torch.optim.AdamW(model.parameters())
    save_checkpoint(tmp_path / "run", step=1, epoch=0, model=model, optimizer=opt, scheduler=None,
                    config=RunConfig.from_dict({"model": {"architecture": "effunet"}, "train": {"name": "eff"}}).to_dict(),
                    model_spec={"architecture": "effunet", "args": model.args, "preprocessing": {"size": 96}})
    assert main(["export", str(tmp_path / "run"), "-o", str(tmp_path / "bad"), "--size", "208"]) != 0
    err = capsys.readouterr().err
    assert "multiple of 32" in err and "224" in err and "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "bad").exists()
    assert main(["export", str(tmp_path / "run"), "-o", str(tmp_path / "good"), "--size", "224"]) == 0
    assert Colorizer.load(tmp_path / "good", device="cpu").size == 224
