"""End-to-end tests of the ``lumachrome`` command.

Bad inputs and batches run as users run them (``python -m lumachrome`` in a subprocess): every bad
input must give a non-zero exit code, exactly one line on stderr naming the file, no traceback, no
output file, and an untouched input. The other commands are called in-process through
``lumachrome.cli.main(argv)`` (the same entry point, without paying the torch import each time).
"""

from __future__ import annotations

import json
import os
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from lumachrome import __version__

REPO_ROOT = Path(__file__).resolve().parents[1]


def run(*args: str, cwd: Path, timeout: float = 120) -> subprocess.CompletedProcess:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(REPO_ROOT / "src") + os.pathsep + env.get("PYTHONPATH", "")
    env.pop("FORCE_COLOR", None)
    env["COLUMNS"] = "200"
    return subprocess.run(
        [sys.executable, "-m", "lumachrome", *args],
        cwd=cwd,
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def stderr_lines(proc) -> list[str]:
    return [line for line in proc.stderr.splitlines() if line.strip()]


class Result:
    def __init__(self, returncode: int, stdout: str, stderr: str) -> None:
        self.returncode, self.stdout, self.stderr = returncode, stdout, stderr


@pytest.fixture
def cli(capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch):
    """In-process runner: ``cli(*args, cwd=...) -> Result`` through ``lumachrome.cli.main``."""
    from lumachrome.cli import main

    monkeypatch.setenv("COLUMNS", "200")

    def invoke(*args: str, cwd: Path) -> Result:
        monkeypatch.chdir(cwd)
        capsys.readouterr()
        code = main([str(a) for a in args])
        out, err = capsys.readouterr()
        return Result(code, out, err)

    return invoke


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from _stubs import save_tiny_model

    return save_tiny_model(tmp_path_factory.mktemp("cli_models") / "tiny", extra={"name": "tiny"})


def write_photo(path: Path, h: int = 48, w: int = 64, mode: str = "L", seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    small = rng.integers(30, 220, size=(4, 4, 3), dtype=np.uint8)
    rgb = np.asarray(Image.fromarray(small, "RGB").resize((w, h), Image.BILINEAR))
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(rgb, "RGB").convert(mode).save(path)
    return path


def png_header_bomb(path: Path, width: int = 30000, height: int = 30000) -> Path:
    """A tiny PNG whose header claims width x height (a decompression bomb)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    idat = zlib.compress(b"\0" * 1000)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b""))
    return path


def make_bad_input(kind: str, folder: Path) -> tuple[str, Path | None]:
    """(the CLI argument, the file that must stay untouched or None)."""
    if kind == "zero-byte":
        p = folder / "empty.png"
        p.write_bytes(b"")
    elif kind == "truncated":
        p = folder / "cut.jpg"
        write_photo(folder / "full.jpg", 200, 300)
        data = (folder / "full.jpg").read_bytes()
        (folder / "full.jpg").unlink()
        p.write_bytes(data[: len(data) // 2])
    elif kind == "not-an-image":
        p = folder / "notes.jpg"
        p.write_text("this is not a picture\n")
    elif kind == "missing":
        return str(folder / "does_not_exist.png"), None
    elif kind == "no-images-folder":
        d = folder / "empty_dir"
        d.mkdir()
        (d / "readme.txt").write_text("no images here")
        return str(d), None
    elif kind == "1x1":
        p = folder / "dot.png"
        Image.new("L", (1, 1), 128).save(p)
    elif kind == "header-bomb":
        p = png_header_bomb(folder / "bomb.png")
    else:  # pragma: no cover
        raise ValueError(kind)
    return str(p), p


BAD_KINDS = ["zero-byte", "truncated", "not-an-image", "missing", "no-images-folder", "1x1", "header-bomb"]


@pytest.mark.parametrize("kind", BAD_KINDS)
def test_bad_input_is_one_clean_line(kind: str, tmp_path: Path, model_dir: Path) -> None:
    arg, file = make_bad_input(kind, tmp_path)
    before = file.read_bytes() if file is not None else None
    out = tmp_path / "out"
    proc = run("colorize", arg, "-o", str(out), "--model", str(model_dir), cwd=tmp_path)
    assert proc.returncode == 1, proc.stderr
    lines = stderr_lines(proc)
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("lumachrome: error: ")
    assert Path(arg).name in lines[0]
    assert "Traceback" not in proc.stderr + proc.stdout
    assert not out.exists() or not any(out.rglob("*"))
    if file is not None:
        assert file.read_bytes() == before


def test_unwritable_output_is_one_clean_line(cli, tmp_path: Path, model_dir: Path) -> None:
    src = write_photo(tmp_path / "ok.png")
    blocker = tmp_path / "blocker"
    blocker.write_text("a file where a folder should be")
    for target in (blocker / "sub" / "x.png", blocker / "x.png"):
        proc = cli("colorize", str(src), "-o", str(target), "--model", str(model_dir), cwd=tmp_path)
        assert proc.returncode == 1
        lines = stderr_lines(proc)
        assert len(lines) == 1 and lines[0].startswith("lumachrome: error: ") and "blocker" in lines[0]
        assert "Traceback" not in proc.stderr
    assert blocker.read_text() == "a file where a folder should be"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["blocker", "ok.png"]


def test_batch_with_a_bad_file_continues(tmp_path: Path, model_dir: Path) -> None:
    photos = tmp_path / "photos"
    write_photo(photos / "a.png", seed=1)
    write_photo(photos / "sub" / "b.jpg", seed=2)
    write_photo(photos / "c.gif", mode="P", seed=3)
    _, bad = make_bad_input("truncated", photos)
    proc = run("colorize", str(photos), "-o", str(tmp_path / "res"), "--model", str(model_dir), cwd=tmp_path)
    assert proc.returncode == 1
    lines = stderr_lines(proc)
    assert len(lines) == 1 and "cut.jpg" in lines[0], proc.stderr
    assert "Traceback" not in proc.stderr
    # names kept, sub-folders mirrored, .gif (not writable) -> .png
    written = sorted(str(p.relative_to(tmp_path / "res")) for p in (tmp_path / "res").rglob("*") if p.is_file())
    assert written == ["a.png", "c.png", os.path.join("sub", "b.jpg")]
    with Image.open(tmp_path / "res" / "a.png") as im:
        assert im.mode == "RGB" and im.size == (64, 48)
    assert "colorized 3 image(s)" in proc.stdout


def test_single_file_output_skip_and_overwrite(cli, tmp_path: Path, model_dir: Path) -> None:
    src = write_photo(tmp_path / "old.png")
    dst = tmp_path / "result.jpg"
    proc = cli("colorize", str(src), "-o", str(dst), "--model", str(model_dir), cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr.strip() == ""
    with Image.open(dst) as im:
        assert im.format == "JPEG" and im.size == (64, 48)
    # existing output: skipped (exit 0, a note), untouched; --overwrite replaces it
    dst.write_bytes(b"keep me")
    proc = cli("colorize", str(src), "-o", str(dst), "--model", str(model_dir), cwd=tmp_path)
    assert proc.returncode == 0 and "skipped" in proc.stderr and dst.read_bytes() == b"keep me"
    proc = cli("colorize", str(src), "-o", str(dst), "--model", str(model_dir), "--overwrite", cwd=tmp_path)
    assert proc.returncode == 0 and dst.read_bytes() != b"keep me"
    # default output folder out/, and an input is never overwritten even with --overwrite
    proc = cli("colorize", "old.png", "--model", str(model_dir), "--ext", "tif", cwd=tmp_path)
    assert proc.returncode == 0 and (tmp_path / "out" / "old.tif").is_file()
    before = src.read_bytes()
    proc = cli("colorize", "old.png", "-o", ".", "--model", str(model_dir), "--overwrite", cwd=tmp_path)
    assert proc.returncode == 1 and "old.png" in proc.stderr and "input" in proc.stderr
    assert src.read_bytes() == before


def test_usage_errors(cli, tmp_path: Path, model_dir: Path) -> None:
    a = write_photo(tmp_path / "a.png")
    b = write_photo(tmp_path / "b.png")
    proc = cli("colorize", str(a), str(b), "-o", "one.png", "--model", str(model_dir), cwd=tmp_path)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    proc = cli("colorize", str(a), "--ext", "gif", cwd=tmp_path)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    proc = cli("colorize", cwd=tmp_path)
    assert proc.returncode == 2
    assert not (tmp_path / "out").exists() and not (tmp_path / "one.png").exists()


def test_unknown_model_is_one_line(cli, tmp_path: Path) -> None:
    src = write_photo(tmp_path / "a.png")
    proc = cli("colorize", str(src), "--model", "no_such_model", cwd=tmp_path)
    assert proc.returncode == 1
    lines = stderr_lines(proc)
    assert len(lines) == 1 and "no_such_model" in lines[0] and "Traceback" not in proc.stderr


def test_version_models_and_train_help(cli, tmp_path: Path) -> None:
    proc = cli("--version", cwd=tmp_path)
    assert proc.returncode == 0 and proc.stdout.strip() == f"lumachrome {__version__}"
    proc = cli("models", cwd=tmp_path)
    assert proc.returncode == 0 and proc.stdout.strip()
    proc = cli("train", "--help", cwd=tmp_path)
    assert proc.returncode == 0
    assert "lumachrome train" in proc.stdout and "--steps" in proc.stdout


def test_export_missing_checkpoint_is_one_line(cli, tmp_path: Path) -> None:
    proc = cli("export", str(tmp_path / "nope"), "-o", str(tmp_path / "m"), cwd=tmp_path)
    assert proc.returncode == 1
    lines = stderr_lines(proc)
    assert len(lines) == 1 and lines[0].startswith("lumachrome: error: ") and "nope" in lines[0]
    assert not (tmp_path / "m").exists()


def test_evaluate_prints_table_with_gray_row(cli, tmp_path: Path, model_dir: Path) -> None:
    from lumachrome.data.synthetic import write_synthetic_folder

    write_synthetic_folder(tmp_path / "val", 4, size=48)
    report = tmp_path / "reports" / "eval.json"
    proc = cli(
        "evaluate", "--model", str(model_dir), "--data", str(tmp_path / "val"),
        "--size", "32", "--limit", "3", "--json", str(report), cwd=tmp_path,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    rows = proc.stdout.splitlines()
    assert any("gray" in r for r in rows) and any("tiny" in r for r in rows)
    assert rows[0] == "| method | PSNR | SSIM | CF | dCF | AuC | CIEDE2000 | hue_conc | fd_lite | n |"
    gray_row = next(r for r in rows if r.startswith("| gray |")).split("|")
    assert gray_row[-4].strip() == "n/a"  # hue_conc: every gray prediction is achromatic
    if "fd_lite not computed" not in proc.stdout:  # the Lite1 weight package is installed
        assert float(gray_row[-3]) > 0
    assert "Not FID" in proc.stdout
    data = json.loads(report.read_text())
    assert "gray" in json.dumps(data) and "tiny" in json.dumps(data)
    assert data["results"]["gray"]["hue_conc"] is None and data["results"]["gray"]["n_achromatic"] == 3
    assert "fd_lite" in data["results"]["gray"] and "hue_conc" in data["results"]["tiny"]
    assert [p.name for p in report.parent.iterdir()] == ["eval.json"]  # no temporary left behind

    proc = cli("evaluate", "--model", str(model_dir), "--data", str(tmp_path / "nothing"), cwd=tmp_path)
    assert proc.returncode == 1 and len(stderr_lines(proc)) == 1 and "nothing" in proc.stderr


def test_data_pack(cli, tmp_path: Path) -> None:
    from lumachrome.data.synthetic import write_synthetic_folder

    write_synthetic_folder(tmp_path / "imgs", 3, size=40)
    proc = cli("data", "pack", str(tmp_path / "imgs"), "-o", str(tmp_path / "p.safetensors"), "--size", "32", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "p.safetensors").is_file() and "3 images" in proc.stdout


def test_models_lists_shipped_models(cli, tmp_path: Path, model_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import shutil

    from lumachrome.models import io as model_io

    weights = tmp_path / "weights"
    shutil.copytree(model_dir, weights / "demo")
    monkeypatch.setattr(model_io, "weights_root", lambda: weights)
    proc = cli("models", cwd=tmp_path)
    assert proc.returncode == 0
    assert proc.stdout.startswith("demo\t") and "regression" in proc.stdout and "64" in proc.stdout
    # a shipped name works as --model
    src = write_photo(tmp_path / "a.png")
    proc = cli("colorize", str(src), "-o", str(tmp_path / "b.png"), "--model", "demo", cwd=tmp_path)
    assert proc.returncode == 0 and (tmp_path / "b.png").is_file()


def test_saturation_option(cli, tmp_path: Path) -> None:
    """--saturation 0 gives a gray result, 2 twice the shipped model's chroma; bad values: one line."""
    from lumachrome.color.lab import rgb_to_lab_np

    src = write_photo(tmp_path / "in.png", seed=4)
    chroma = {}
    for sat in ("0", "1", "2"):
        dst = tmp_path / f"s{sat}.png"
        assert cli("colorize", str(src), "-o", str(dst), "--saturation", sat, cwd=tmp_path).returncode == 0
        lab = rgb_to_lab_np(np.asarray(Image.open(dst).convert("RGB"), np.float32) / 255)
        chroma[sat] = float(np.hypot(lab[..., 1], lab[..., 2]).mean())
    assert chroma["0"] < 0.5 < chroma["1"] < chroma["2"]
    assert chroma["2"] == pytest.approx(2 * chroma["1"], rel=0.1)  # up to 8-bit rounding and gamut clipping
    proc = cli("colorize", str(src), "-o", str(tmp_path / "bad.png"), "--saturation", "-1", cwd=tmp_path)
    assert proc.returncode == 2 and "--saturation" in proc.stderr and "Traceback" not in proc.stderr
