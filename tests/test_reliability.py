"""Issue 16, "Losing work" and "Inputs that break a batch": run folders, resumes, file modes, inputs
that used to abort a whole batch (symlink loops, float TIFFs, corrupt training files, bad numbers).

Each test here failed before its fix; ``docs/reliability.md`` lists which guarantee each one covers.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

REPO_ROOT = Path(__file__).resolve().parents[1]
TINY = {"widths": [8, 16], "blocks": 1}


def run_cli(*args: str, cwd: Path, timeout: float = 300) -> subprocess.CompletedProcess:
    """``python -m lumachrome ARGS`` as a user runs it (stderr exactly as they see it)."""
    env = dict(os.environ)
    env["PYTHONPATH"] = str(REPO_ROOT / "src") + os.pathsep + env.get("PYTHONPATH", "")
    env.pop("FORCE_COLOR", None)
    env.pop("PYTHONWARNINGS", None)
    env["COLUMNS"] = "200"
    return subprocess.run([sys.executable, "-m", "lumachrome", *map(str, args)], cwd=cwd, env=env,
                          stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=timeout)


def err_lines(proc: subprocess.CompletedProcess) -> list[str]:
    return [line for line in proc.stderr.splitlines() if line.strip()]


def write_photo(path: Path, size: int = 32, seed: int = 0, gray: bool = False) -> Path:
    rng = np.random.default_rng(seed)
    small = rng.integers(30, 220, size=(4, 4, 3), dtype=np.uint8)
    rgb = np.asarray(Image.fromarray(small, "RGB").resize((size, size), Image.BILINEAR))
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(rgb, "RGB").convert("L" if gray else "RGB").save(path)
    return path


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory) -> Path:
    from _stubs import save_tiny_model

    return save_tiny_model(tmp_path_factory.mktemp("rel_models") / "tiny", extra={"name": "tiny"})


# ------------------------------------------------------------------------------------ file modes
@pytest.fixture
def umask_027():
    old = os.umask(0o027)
    try:
        yield
    finally:
        os.umask(old)


def _mode(p: Path) -> int:
    return os.stat(p).st_mode & 0o777


def test_written_files_follow_the_umask(tmp_path, umask_027):
    """Checkpoints, exported models, manifests and text outputs get the umask's modes, as images do
    (they were 0600 / 0700 / a fixed 0644 before)."""
    from _stubs import save_tiny_model

    from lumachrome.atomic import atomic_write_text
    from lumachrome.batch import merge_manifests
    from lumachrome.imageio import save_image
    from lumachrome.train.checkpoint import save_checkpoint

    model = torch.nn.Linear(2, 2)
    opt = torch.optim.AdamW(model.parameters())
    ck = save_checkpoint(tmp_path / "run", step=1, epoch=0, model=model, optimizer=opt, scheduler=None,
                         config={}, model_spec={})
    folder = save_tiny_model(tmp_path / "model")
    (tmp_path / "out").mkdir()
    merged = merge_manifests(tmp_path / "out" / "manifest.jsonl", [])
    text = atomic_write_text(tmp_path / "out" / "results.json", "{}")
    image = save_image(tmp_path / "out" / "x.png", np.zeros((8, 8, 3), np.float32))
    files = [ck / "model.safetensors", ck / "optim.safetensors", ck / "state.json",
             folder / "model.safetensors", folder / "config.json", folder / "README.md", merged.path, text, image]
    assert {str(f.relative_to(tmp_path)): oct(_mode(f)) for f in files} == {
        str(f.relative_to(tmp_path)): oct(0o640) for f in files}
    assert oct(_mode(ck)) == oct(0o750) and oct(_mode(folder)) == oct(0o750)
