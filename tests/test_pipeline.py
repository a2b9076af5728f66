"""lumachrome.pipeline.load_pipeline: one load path for every model, its config.json read once."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from lumachrome.colorizer import Colorizer
from lumachrome.errors import ConfigError, ModelError
from lumachrome.models.io import available_models, open_model
from lumachrome.pipeline import load_pipeline
from lumachrome.translate import Translator

SHIPPED = available_models()


@pytest.fixture
def config_reads(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every read of a config.json file (through Path.read_text, as models.io reads it)."""
    reads: list[str] = []
    original = Path.read_text

    def read_text(self: Path, *args, **kwargs):
        if self.name == "config.json":
            reads.append(str(self))
        return original(self, *args, **kwargs)

    monkeypatch.setattr(Path, "read_text", read_text)
    return reads


@pytest.mark.skipif("photo" not in SHIPPED or "nir" not in SHIPPED, reason="needs the shipped photo and nir models")
def test_task_picks_the_inference_object(config_reads: list[str]) -> None:
    col = load_pipeline("photo", "cpu")
    assert isinstance(col, Colorizer) and col.name == "photo" and len(config_reads) == 1
    tr = load_pipeline("nir", "cpu", size=64)
    assert isinstance(tr, Translator) and tr.name == "nir" and tr.options["tile"] == 64 and len(config_reads) == 2
    # an opened folder is not read again
    opened = open_model("photo")
    assert len(config_reads) == 3
    assert isinstance(load_pipeline(opened, "cpu", task="colorize"), Colorizer) and len(config_reads) == 3


@pytest.mark.skipif("nir" not in SHIPPED, reason="needs the shipped nir model")
def test_expected_task_and_errors() -> None:
    with pytest.raises(ModelError, match="image-to-image model.*Translator"):
        load_pipeline("nir", "cpu", task="colorize")
    with pytest.raises(ModelError, match="image-to-image model.*Translator"):
        Colorizer.load("nir", device="cpu")
    with pytest.raises(ConfigError, match="task 'paint'"):
        load_pipeline("nir", "cpu", task="paint")
    with pytest.raises(ModelError, match="unknown model 'no-such-model'"):
        load_pipeline("no-such-model")


@pytest.mark.skipif("photo" not in SHIPPED, reason="needs the shipped photo model")
def test_colorize_reads_the_config_once(tmp_path: Path, config_reads: list[str]) -> None:
    from lumachrome.cli import main
    from lumachrome.imageio import save_image

    src = tmp_path / "in.png"
    save_image(src, np.linspace(0, 1, 48 * 64, dtype=np.float32).reshape(48, 64))
    config_reads.clear()
    assert main(["colorize", str(src), "-o", str(tmp_path / "out.png"), "--model", "photo", "--quiet"]) == 0
    assert len(config_reads) == 1, config_reads
