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


# ------------------------------------------------------------------------------------ run folders
@pytest.fixture(scope="module")
def photos(tmp_path_factory) -> Path:
    from lumachrome.data.synthetic import write_synthetic_folder

    root = tmp_path_factory.mktemp("rel_photos")
    write_synthetic_folder(root / "train", 16, size=40, seed=1)
    write_synthetic_folder(root / "val", 4, size=40, seed=2)
    return root


def _train_args(photos: Path, out: Path, steps: int = 4, *extra: str) -> list[str]:
    return ["train", "--data", str(photos / "train"), "--out", str(out), "--steps", str(steps),
            "--batch-size", "4", "--size", "32", "--data.workers", "0", "--train.progress", "false",
            "--model.args", json.dumps(TINY), "--train.ckpt_every", "2", "--train.log_every", "2", *extra]


def _tree(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_training_into_a_folder_that_holds_a_run_is_refused_unless_resume_or_overwrite(photos, tmp_path, capsys):
    """A second `train --out RUN` used to prune its own new checkpoints (sorted by name after the old
    ones) and a later --resume continued the old run. Now: refused in one line, nothing touched;
    --overwrite moves the old run aside (or deletes it), --resume continues it."""
    from lumachrome.cli import main
    from lumachrome.train.checkpoint import find_checkpoint

    run = tmp_path / "run"
    assert main(_train_args(photos, run, 6)) == 0
    before = _tree(run)
    capsys.readouterr()
    assert main(_train_args(photos, run, 2)) == 1
    err = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(err) == 1 and err[0].startswith("lumachrome: error: ") and "--resume" in err[0] \
        and "--overwrite" in err[0], err
    assert _tree(run) == before  # untouched

    assert main(_train_args(photos, run, 2, "--overwrite")) == 0
    err = capsys.readouterr().err
    aside = [p for p in tmp_path.iterdir() if p.name.startswith("run.old-")]
    assert len(aside) == 1 and _tree(aside[0]) == before, "the old run is kept, whole, beside the new one"
    assert f"moved the earlier run in {run} to {aside[0]}" in err
    assert find_checkpoint(run).name == "step-0000002"

    assert main(_train_args(photos, run, 4, "--overwrite", "delete")) == 0
    assert "removed the earlier run" in capsys.readouterr().err
    assert len([p for p in tmp_path.iterdir() if p.name.startswith("run.old-")]) == 1
    assert find_checkpoint(run).name == "step-0000004"

    assert main(_train_args(photos, run, 6, "--resume", str(run))) == 0
    assert find_checkpoint(run).name == "step-0000006"
    assert main(["train", "--resume", str(run), "--overwrite"]) == 1  # contradictory
    assert main(_train_args(photos, tmp_path / "other", 2, "--resume", str(aside[0]))) == 0  # empty --out: ok


def test_checkpoints_are_pruned_and_found_by_step_number(tmp_path):
    from lumachrome.train.checkpoint import find_checkpoint, save_checkpoint

    model = torch.nn.Linear(2, 2)
    opt = torch.optim.AdamW(model.parameters())
    for step in (9_999_998, 9_999_999, 10_000_000):  # step-10000000 sorts first by name
        save_checkpoint(tmp_path, step=step, epoch=0, model=model, optimizer=opt, scheduler=None, config={},
                        model_spec={}, keep=2)
    names = sorted(p.name for p in (tmp_path / "checkpoints").glob("step-*"))
    assert names == ["step-10000000", "step-9999999"]
    (tmp_path / "checkpoints" / "latest").unlink()
    assert find_checkpoint(tmp_path).name == "step-10000000"


def test_resume_drops_log_rows_after_the_checkpoint_and_killed_checkpoint_writes(photos, tmp_path):
    """The state a SIGKILL leaves after step 6's validation and during the write of step 6's
    checkpoint: metrics rows beyond the last checkpoint (step 4) and an empty .step-* folder."""
    import shutil

    from lumachrome.cli import main

    run = tmp_path / "run"
    args = _train_args(photos, run, 6, "--val", str(photos / "val"), "--train.epoch_steps", "2",
                       "--train.ckpt_every", "4")
    assert main(args) == 0
    rows = [json.loads(line)["step"] for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert rows == [2, 4, 6]
    shutil.rmtree(run / "checkpoints" / "step-0000006")
    (run / "checkpoints" / "latest").write_text("step-0000004\n")
    (run / "checkpoints" / ".step-0000006.k1ll3d").mkdir()
    shutil.rmtree(run / "model")
    assert main(["train", "--resume", str(run), "--train.progress", "false"]) == 0
    rows = [json.loads(line)["step"] for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert rows == [2, 4, 6]
    assert not list((run / "checkpoints").glob(".step-*"))


# ----------------------------------------------------------------------------- symbolic link loops
def _tree_with_loops(root: Path) -> Path:
    write_photo(root / "a.png", seed=1)
    write_photo(root / "sub" / "c.png", seed=2)
    (root / "loop.jpg").symlink_to("loop.jpg")  # a link to itself
    (root / "sub" / "b1.png").symlink_to("b2.png")  # two links to each other
    (root / "sub" / "b2.png").symlink_to("b1.png")
    return root


def test_a_symlink_loop_is_reported_and_skipped_by_colorize(tmp_path, model_dir):
    """It used to abort the whole batch with a RuntimeError traceback before any image was done."""
    src = _tree_with_loops(tmp_path / "in")
    proc = run_cli("colorize", src, "-o", tmp_path / "out", "--model", model_dir, "--device", "cpu", cwd=tmp_path)
    lines = err_lines(proc)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr, proc.stderr
    assert sorted(lines) == sorted(f"lumachrome: error: {src / n}: symbolic link loop (the link never reaches a file)"
                                   for n in ("loop.jpg", "sub/b1.png", "sub/b2.png")), lines
    assert (tmp_path / "out" / "a.png").is_file() and (tmp_path / "out" / "sub" / "c.png").is_file()
    assert "colorized 2 image(s)" in proc.stdout and "3 failed" in proc.stdout


def test_a_symlink_loop_is_recorded_in_the_archive_manifest(tmp_path, model_dir):
    """Archive mode used to leave such entries out silently (neither done nor in the manifest)."""
    src = _tree_with_loops(tmp_path / "in")
    proc = run_cli("colorize", src, "-o", tmp_path / "out", "--archive", "--model", model_dir, "--device", "cpu",
                   "--workers", "1", cwd=tmp_path)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr, proc.stderr
    rows = {r["rel"]: r for r in map(json.loads, (tmp_path / "out" / "manifest.jsonl").read_text().splitlines())}
    assert {k: r["status"] for k, r in rows.items()} == {
        "a.png": "ok", "loop.jpg": "error", "sub/b1.png": "error", "sub/b2.png": "error", "sub/c.png": "ok"}
    assert "symbolic link loop" in rows["loop.jpg"]["error"]
    assert len(err_lines(proc)) == 3


# ------------------------------------------------------------------------- bad training files
def _copy_photos(src: Path, dst: Path) -> Path:
    import shutil

    shutil.copytree(src, dst)
    return dst


def test_training_says_how_many_files_were_skipped_and_why(photos, tmp_path, capsys):
    """The "training on N images" count used to include unreadable and greyscale files."""
    from lumachrome.cli import main

    data = _copy_photos(photos / "train", tmp_path / "data")
    (data / "garbage.jpg").write_bytes(b"this is not a JPEG" * 20)
    (data / "empty.png").write_bytes(b"")
    write_photo(data / "gray.png", gray=True)
    args = _train_args(photos, tmp_path / "run", 2)
    args[args.index("--data") + 1] = str(data)
    capsys.readouterr()
    assert main(args) == 0
    err = capsys.readouterr().err
    assert f"skipped 3 of 19 files in {data} (1 greyscale, 2 unreadable; e.g. " in err, err
    assert "using 16" in err and " on 16 images" in err, err


def test_a_symlink_loop_in_training_data_is_skipped(photos, tmp_path, capsys):
    """`train --data` used to end in a RuntimeError traceback."""
    from lumachrome.cli import main

    data = _copy_photos(photos / "train", tmp_path / "data")
    (data / "loop.png").symlink_to("loop.png")
    args = _train_args(photos, tmp_path / "run", 2)
    args[args.index("--data") + 1] = str(data)
    capsys.readouterr()
    assert main(args) == 0
    err = capsys.readouterr().err
    assert "skipped 1 of 17 files" in err and "symbolic link loop" in err and " on 16 images" in err, err


# --------------------------------------------------------------------------- numeric options
@pytest.mark.parametrize("bad", [
    ["--lr", "nan"], ["--lr", "inf"], ["--lr", "-1"], ["--optim.weight_decay=-inf"], ["--optim.betas", "0.9", "1.5"],
    ["--optim.ema", "nan"], ["--train.log_every", "0"], ["--train.ckpt_every", "0"], ["--steps", "inf"],
    ["--data.min_scale", "nan"], ["--gan.decay_start", "2"], ["--train.huber_delta", "0"], ["--model.temperature", "-inf"],
], ids=" ".join)
def test_bad_numeric_train_options_are_one_line_usage_errors(photos, tmp_path, capsys, bad):
    """They used to end in a traceback (AdamW's ValueError, a ZeroDivisionError) or train on NaN."""
    from lumachrome.cli import main

    args = _train_args(photos, tmp_path / "run", 2) + bad
    capsys.readouterr()
    assert main(args) == 2
    err = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    flag = bad[0].split("=")[0]
    assert len(err) == 1 and err[0].startswith("lumachrome: error: train: argument ") and flag in err[0], err
    assert not (tmp_path / "run").exists()


def test_numeric_options_of_the_other_commands_are_checked_at_parse_time(tmp_path, model_dir, capsys):
    """`--size` errors exited 1 after the inputs were read; an infinite --ridge was accepted."""
    from lumachrome.cli import main

    src = write_photo(tmp_path / "a.png")
    cases = [["colorize", str(src), "-o", str(tmp_path / "o.png"), "--model", str(model_dir), "--size", "5"],
             ["colorize", str(src), "-o", str(tmp_path / "o.png"), "--model", str(model_dir), "--size", "99999"],
             ["calibrate", str(model_dir), "--data", str(tmp_path), "--ridge", "inf"],
             ["calibrate", str(model_dir), "--data", str(tmp_path), "--cf-weight", "inf"],
             ["colorize", str(src), "--quality", "0"]]
    for args in cases:
        capsys.readouterr()
        assert main(args) == 2, args
        err = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
        assert len(err) == 1 and err[0].startswith("lumachrome: error: ") and args[-2] in err[0], (args, err)
    assert not (tmp_path / "o.png").exists()


# ------------------------------------------------------------------------------------ float TIFFs
def _float_tiff(path: Path, values: np.ndarray) -> Path:
    Image.fromarray(values.astype(np.float32), mode="F").save(path)
    return path


def _gradient(h: int = 32, w: int = 48) -> np.ndarray:
    return np.tile(np.linspace(0.1, 0.9, w, dtype=np.float32), (h, 1))


@pytest.mark.parametrize("outlier", [np.inf, 1.5, 1e30, np.nan, -np.inf])
def test_a_stray_float_tiff_value_is_masked_or_clipped_with_a_warning(tmp_path, outlier):
    """One +inf or one 1.5 used to rescale the whole image (by 65535 or 255): nearly black."""
    from lumachrome.errors import LumachromeWarning
    from lumachrome.imageio import load_image

    g = _gradient()
    g[3, 5] = outlier
    path = _float_tiff(tmp_path / "f.tif", g)
    with pytest.warns(LumachromeWarning, match=r"f\.tif: .*(masked|clipped)"):
        rgb = load_image(path).rgb
    expect = np.clip(np.nan_to_num(g, nan=0.0, posinf=1.0, neginf=0.0), 0, 1)
    np.testing.assert_allclose(rgb[..., 0], expect, atol=1e-6)


def test_float_tiff_range_rule_for_data_outside_0_1(tmp_path):
    """Code values stay code values (no warning); other ranges are scaled by robust percentiles."""
    import warnings as w

    from lumachrome.errors import ImageError, LumachromeWarning
    from lumachrome.imageio import load_image

    g = _gradient()
    with w.catch_warnings():
        w.simplefilter("error")
        np.testing.assert_allclose(load_image(_float_tiff(tmp_path / "a.tif", np.rint(g * 255))).rgb[..., 0],
                                   np.rint(g * 255) / 255, atol=1e-6)
        np.testing.assert_allclose(load_image(_float_tiff(tmp_path / "b.tif", np.rint(g * 60000))).rgb[..., 0],
                                   np.rint(g * 60000) / 65535, atol=1e-6)
    hdr = g * 4.0  # linear data well above 1: scaled, not nearly white or black
    with pytest.warns(LumachromeWarning, match="percentiles"):
        rgb = load_image(_float_tiff(tmp_path / "c.tif", hdr)).rgb
    assert 0.4 < rgb.mean() < 0.6 and rgb.max() == 1.0
    with pytest.raises(ImageError, match="finite"):
        load_image(_float_tiff(tmp_path / "d.tif", np.full((16, 16), np.nan)))


def test_colorize_a_float_tiff_with_an_inf_pixel(tmp_path, model_dir):
    """The CLI: exit 0, one warning line naming the file, and an output as bright as the input."""
    g = _gradient()
    g[0, 0] = np.inf
    src = _float_tiff(tmp_path / "scan.tif", g)
    proc = run_cli("colorize", src, "-o", tmp_path / "out.png", "--model", model_dir, "--device", "cpu", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert err_lines(proc) == [f"lumachrome: warning: {src}: 1 non-finite pixel value(s) masked "
                               "(NaN and -inf -> 0, +inf -> 1)"]
    out = np.asarray(Image.open(tmp_path / "out.png").convert("L"), np.float32) / 255
    assert abs(out.mean() - g[np.isfinite(g)].mean()) < 0.05


# ------------------------------------------------------------------------------ model folders
def test_a_config_that_does_not_match_the_weights_fails_before_building_the_network(tmp_path, monkeypatch):
    """A config with enormous widths used to build (allocate) the whole network, >1 GB, before the
    weights' shapes were compared. Now the shapes are checked against the file's header first: the
    real network is never built (this test spies on the builds instead of measuring memory)."""
    import shutil

    from _stubs import save_tiny_model

    from lumachrome.errors import ModelError
    from lumachrome.models import io

    folder = save_tiny_model(tmp_path / "m")
    config = json.loads((folder / "config.json").read_text())
    config["args"]["widths"] = [w * 4 for w in config["args"]["widths"]]  # 30 MB: harmless if built
    (folder / "config.json").write_text(json.dumps(config))
    built = []
    real_create = io.create_model

    def spy(name, **args):
        model = real_create(name, **args)
        built.append(next(model.parameters()).device.type)
        return model

    monkeypatch.setattr(io, "create_model", spy)
    with pytest.raises(ModelError, match=r"weights do not match config\.json .*shape mismatch"):
        io.load_model_dir(folder)
    assert "cpu" not in built, built  # only the meta-device reference was built
    # A matching folder still loads (and builds one real network).
    good = save_tiny_model(tmp_path / "good")
    built.clear()
    io.load_model_dir(good)
    assert built.count("cpu") == 1
    shutil.rmtree(folder)


# ------------------------------------------------------------------ video and GeoTIFF inputs
def test_ffmpeg_messages_stay_off_stderr(tmp_path, model_dir):
    """FFmpeg's own log line ("[mov,mp4,...] moov atom not found") used to precede our error."""
    (tmp_path / "clip.mp4").write_bytes(b"not a video at all" * 64)
    proc = run_cli("colorize", "clip.mp4", "--video", "-o", "out.mp4", "--model", model_dir, cwd=tmp_path)
    assert proc.returncode == 1
    assert err_lines(proc) == ["lumachrome: error: clip.mp4: cannot open as a video (OpenCV/FFmpeg could not decode it)"]


@pytest.fixture(scope="module")
def nir_model(tmp_path_factory) -> Path:
    """A tiny convolutional NIR -> RGB model folder (3x3 convolutions: a NaN would spread)."""
    from lumachrome.models.gan import ResnetGenerator
    from lumachrome.models.io import save_model_dir

    torch.manual_seed(0)
    net = ResnetGenerator(in_channels=1, out_channels=3, width=4, n_blocks=1)
    extra = {"task": "translate", "domain": "nir", "input": {"channels": ["nir"], "range": [-1, 1]},
             "output": {"space": "rgb", "range": [-1, 1]}, "name": "tiny-nir"}
    return save_model_dir(net, tmp_path_factory.mktemp("rel_nir") / "nir", architecture="resnet_gen",
                          args=net.args, preprocessing={"size": 32}, extra=extra)


def _geotiff(path: Path, data: np.ndarray, descriptions: list[str]) -> Path:
    import rasterio
    from rasterio.transform import from_origin

    with rasterio.open(path, "w", driver="GTiff", count=data.shape[0], height=data.shape[1], width=data.shape[2],
                       dtype=data.dtype, crs="EPSG:32633", transform=from_origin(404400, 5342400, 10, 10)) as ds:
        ds.write(data)
        for i, d in enumerate(descriptions, start=1):
            ds.set_band_description(i, d)
    return path


def test_an_all_nan_nir_band_is_an_error_naming_the_band(tmp_path, nir_model):
    """It used to give an all-no-data GeoTIFF and exit 0."""
    rng = np.random.default_rng(0)
    data = rng.random((2, 48, 64)).astype(np.float32)
    data[1] = np.nan
    src = _geotiff(tmp_path / "scene.tif", data, ["red", "nir"])
    proc = run_cli("colorize", src, "--model", nir_model, "--band-name", "nir", "-o", tmp_path / "rgb.tif",
                   "--device", "cpu", cwd=tmp_path)
    assert proc.returncode == 1 and not (tmp_path / "rgb.tif").exists()
    assert err_lines(proc) == [f"lumachrome: error: {src}: band 2: nir (float32) holds no valid pixel "
                               "(all no-data or NaN): nothing to translate"], proc.stderr
    proc = run_cli("colorize", src, "--model", nir_model, "--bands", "1", "-o", tmp_path / "rgb.tif",
                   "--device", "cpu", cwd=tmp_path)
    assert proc.returncode == 0 and err_lines(proc) == [], proc.stderr


def test_nan_no_data_does_not_spread_into_valid_pixels(tmp_path, nir_model):
    """NaN no-data went through the network: its convolutions spread it into the valid pixels around
    the hole (turned into 0 by the uint8 cast, and numpy's RuntimeWarning lines reached stderr)."""
    from lumachrome.translate import Translator

    rng = np.random.default_rng(1)
    band = (rng.random((40, 56)) * 0.5 + 0.25).astype(np.float32)
    band[10:20, 10:30] = np.nan
    valid = np.isfinite(band)
    tr = Translator.load(nir_model, device="cpu")
    with_nan = tr.translate_array(band, valid=valid)
    filled = tr.translate_array(np.where(valid, band, 0.0).astype(np.float32), valid=valid)
    np.testing.assert_array_equal(with_nan, filled)
    src = _geotiff(tmp_path / "holes.tif", band[None], ["nir"])
    proc = run_cli("colorize", src, "--model", nir_model, "-o", tmp_path / "rgb.tif", "--device", "cpu", cwd=tmp_path)
    assert proc.returncode == 0 and err_lines(proc) == [], proc.stderr


def test_library_warnings_stay_off_stderr_and_ours_are_one_line(monkeypatch, capsys):
    """numpy's RuntimeWarnings used to reach the user as two-line 'file:line: RuntimeWarning' blocks."""
    import warnings as w

    import lumachrome.cli as cli
    from lumachrome.errors import LumachromeWarning

    def describe():
        np.float32(np.nan).astype(np.uint8)  # RuntimeWarning: invalid value encountered in cast
        w.warn("some library detail", UserWarning)
        w.warn("x.tif: 2 non-finite pixel value(s) masked\nsecond line", LumachromeWarning)
        yield "tiny\tdescription"

    monkeypatch.setattr(cli.models, "describe_models", describe)
    monkeypatch.setattr(cli.sys, "warnoptions", [])
    capsys.readouterr()
    assert cli.main(["models"]) == 0
    out, err = capsys.readouterr()
    assert out == "tiny\tdescription\n"
    assert err.splitlines() == ["lumachrome: warning: x.tif: 2 non-finite pixel value(s) masked second line"]
