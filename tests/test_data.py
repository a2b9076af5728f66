"""Tests for lumachrome.data: ColorFolderDataset, data packs (build, read, datasets)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch.utils.data import DataLoader

from lumachrome.color.lab import lab_to_rgb
from lumachrome.data import (
    ColorFolderDataset,
    PackDataset,
    PackInfo,
    build_pack,
    load_pack_tensor,
    read_pack_info,
)
from lumachrome.data.photos import center_square_box, crop_resize, random_resized_crop_box
from lumachrome.errors import DataError


def picture(h: int, w: int, seed: int) -> np.ndarray:
    """Colourful uint8 (h, w, 3): smooth gradients with a per-seed phase."""
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    r = 127 + 120 * np.sin(x / 9.0 + seed)
    g = 127 + 120 * np.cos(y / 7.0 + 2 * seed)
    b = 127 + 120 * np.sin((x - y) / 11.0 + 3 * seed)
    return np.stack([r, g, b], axis=-1).round().astype(np.uint8)


@pytest.fixture()
def photos(tmp_path) -> Path:
    """6 good colour images (PNG/JPEG/WebP, several sizes) plus 1 truncated JPEG, 1 greyscale
    PNG ("L"), 1 grey RGB PNG, a text file and a hidden image: 6 usable, 3 skipped."""
    root = tmp_path / "photos"
    (root / "a").mkdir(parents=True)
    (root / "b" / "c").mkdir(parents=True)
    sizes = [(80, 120), (96, 96), (120, 70), (64, 200), (100, 100), (72, 90)]
    names = ["a/0.png", "a/1.jpg", "a/2.webp", "b/3.png", "b/c/4.jpg", "b/c/5.png"]
    for i, (name, (h, w)) in enumerate(zip(names, sizes)):
        Image.fromarray(picture(h, w, i)).save(root / name, quality=95)
    full = root / "a" / "1.jpg"
    (root / "a" / "1b_truncated.jpg").write_bytes(full.read_bytes()[: full.stat().st_size // 2])
    Image.fromarray(picture(64, 64, 9)[..., 0]).save(root / "b" / "gray_L.png")
    g = picture(64, 64, 8)[..., 1]
    Image.fromarray(np.stack([g, g, g], axis=-1)).save(root / "b" / "gray_rgb.png")
    (root / "b" / "notes.txt").write_text("not an image")
    Image.fromarray(picture(64, 64, 7)).save(root / ".hidden.png")
    return root


GOOD = 6
N_FILES = 9  # 6 good + truncated + 2 grey (txt and hidden are not indexed)


def check_sample(s: dict, size: int) -> None:
    assert set(s) == {"L", "ab", "rgb"}
    assert s["L"].shape == (1, size, size) and s["ab"].shape == (2, size, size) and s["rgb"].shape == (3, size, size)
    for v in s.values():
        assert v.dtype == torch.float32 and v.is_contiguous() and torch.isfinite(v).all()
    assert 0.0 <= float(s["L"].min()) and float(s["L"].max()) <= 100.0
    assert float(s["ab"].abs().max()) <= 128.0
    assert 0.0 <= float(s["rgb"].min()) and float(s["rgb"].max()) <= 1.0
    # L and ab are the Lab of rgb (torch reference conversion back to RGB)
    back = lab_to_rgb(torch.cat([s["L"], s["ab"]])[None].double())[0].float()
    assert float((back - s["rgb"]).abs().max()) < 0.01


# ------------------------------------------------------------------------------------------
# ColorFolderDataset


def test_folder_dataset_index_sorted_and_shapes(photos):
    ds = ColorFolderDataset(photos, size=32, train=True)
    assert len(ds) == N_FILES
    assert ds.files == sorted(ds.files)
    assert not any(p.name.startswith(".") or p.suffix == ".txt" for p in ds.files)
    torch.manual_seed(0)
    for i in range(len(ds)):
        check_sample(ds[i], 32)


def test_folder_dataset_validation_is_deterministic_centre_crop(photos):
    ds = ColorFolderDataset(photos, size=48, train=False)
    i = ds.files.index(photos / "b" / "3.png")  # 64x200 PNG (lossless)
    s1, s2 = ds[i], ds[i]
    for k in s1:
        assert torch.equal(s1[k], s2[k])
    a = picture(64, 200, 3)
    expected = crop_resize(a, (0, 68, 64, 64), 48)  # centre square of the short side, resized
    np.testing.assert_allclose(s1["rgb"].permute(1, 2, 0).numpy() * 255, expected, atol=1e-3)


def test_folder_dataset_training_is_random_but_seedable(photos):
    ds = ColorFolderDataset(photos, size=32, train=True, min_scale=0.3)
    i = ds.files.index(photos / "a" / "0.png")
    torch.manual_seed(1)
    a = ds[i]["rgb"]
    torch.manual_seed(1)
    b = ds[i]["rgb"]
    torch.manual_seed(2)
    c = torch.stack([ds[i]["rgb"] for _ in range(4)])
    assert torch.equal(a, b)
    assert not all(torch.equal(a, x) for x in c)


def test_folder_dataset_skips_corrupt_and_gray(photos):
    ds = ColorFolderDataset(photos, size=24, train=False)
    bad = {ds.files.index(photos / n) for n in ["a/1b_truncated.jpg", "b/gray_L.png", "b/gray_rgb.png"]}
    for i in range(len(ds)):
        check_sample(ds[i], 24)  # never raises
    assert ds.skipped == 3 and set(ds.bad) == bad
    assert "truncated" in ds.bad[ds.files.index(photos / "a" / "1b_truncated.jpg")]
    # a bad index yields another (valid, colourful) image
    s = ds[min(bad)]
    assert float(s["ab"].abs().mean()) > 1.0
    for _ in range(3):  # known-bad files are not decoded again
        ds[min(bad)]
    assert ds.skipped == 3


def test_folder_dataset_scan(photos):
    ds = ColorFolderDataset(photos, size=24, train=False)
    header = ds.scan(validate=False)  # headers only: sees the "L" image, not truncation
    assert (header.total, header.gray, header.unreadable) == (N_FILES, 1, 0)
    assert len(ds) == N_FILES
    full = ds.scan(validate=True, decode=True)
    assert (full.total, full.usable, full.unreadable, full.gray, full.skipped) == (N_FILES, GOOD, 1, 2, 3)
    assert {p.name for p, _ in full.problems} == {"1b_truncated.jpg", "gray_L.png", "gray_rgb.png"}
    assert len(ds) == GOOD
    for i in range(len(ds)):
        ds[i]
    assert ds.skipped == 0


def test_folder_dataset_max_files_and_multiple_roots(photos):
    ds = ColorFolderDataset([photos / "a", photos / "b"], size=16, train=False, max_files=4)
    assert len(ds) == 4
    assert ds.files[0] == photos / "a" / "0.png" and ds.files[-1] == photos / "b" / "gray_rgb.png"  # spread


def test_folder_dataset_errors(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        ColorFolderDataset(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "x.txt").write_text("x")
    with pytest.raises(DataError, match="no images"):
        ColorFolderDataset(tmp_path / "empty")
    gray = tmp_path / "gray"
    gray.mkdir()
    Image.fromarray(picture(32, 32, 0)[..., 0]).save(gray / "g.png")
    ds = ColorFolderDataset(gray, size=16)
    with pytest.raises(DataError, match="readable colour"):
        ds[0]
    with pytest.raises(DataError, match="no usable"):
        ds.scan()


def test_random_resized_crop_box_bounds():
    g = torch.Generator().manual_seed(0)
    for h, w in [(100, 100), (50, 400), (400, 30), (9, 9)]:
        for _ in range(50):
            top, left, ch, cw = random_resized_crop_box(h, w, 0.5, generator=g)
            assert 0 <= top and top + ch <= h and 0 <= left and left + cw <= w and ch > 0 and cw > 0
    top, left, ch, cw = random_resized_crop_box(100, 100, 0.5, generator=g)
    assert ch * cw >= 0.45 * 100 * 100 and 0.7 <= cw / ch <= 1.4
    assert center_square_box(60, 100) == (0, 20, 60, 60)


# ------------------------------------------------------------------------------------------
# packs


def test_build_pack_round_trip(photos, tmp_path):
    out = tmp_path / "packs" / "p.safetensors"
    info = build_pack([photos], out, size=32, progress=False)
    assert isinstance(info, PackInfo) and out.is_file()
    assert (info.count, info.skipped_unreadable, info.skipped_gray, info.size) == (GOOD, 1, 2, 32)
    assert info.files[0] == "a/0.png" and len(info.files) == GOOD
    assert [f.name for f in out.parent.iterdir()] == ["p.safetensors"]  # no temp files
    # header metadata: no pickle, plain JSON
    stored = read_pack_info(out)
    assert (stored.count, stored.size, stored.files, stored.skipped) == (GOOD, 32, info.files, 3)
    t = load_pack_tensor(out)
    assert t.dtype == torch.uint8 and t.shape == (GOOD, 3, 32, 32)
    # first image: 80x120 PNG -> centre 80x80 square -> 32x32
    expected = crop_resize(picture(80, 120, 0), center_square_box(80, 120), 32)
    np.testing.assert_array_equal(t[0].permute(1, 2, 0).numpy(), expected)
    ds = PackDataset(out, train=False)
    assert len(ds) == GOOD and ds.size == 32
    np.testing.assert_array_equal(ds.image(0), expected)
    s = ds[0]
    check_sample(s, 32)
    np.testing.assert_allclose(s["rgb"].permute(1, 2, 0).numpy() * 255, expected, atol=1e-3)


def test_pack_dataset_train_and_resize(photos, tmp_path):
    out = tmp_path / "p.safetensors"
    build_pack([photos], out, size=40, progress=False)
    ds = PackDataset(out, size=24, train=True, min_scale=0.6)
    torch.manual_seed(0)
    a = ds[2]
    check_sample(a, 24)
    torch.manual_seed(0)
    assert torch.equal(ds[2]["ab"], a["ab"])
    val = PackDataset(out, size=24, train=False)
    assert torch.equal(val[1]["L"], val[1]["L"])
    check_sample(val[1], 24)
    with pytest.raises(IndexError):
        val[GOOD]


def test_pack_dataset_with_dataloader_workers(photos, tmp_path):
    out = tmp_path / "p.safetensors"
    build_pack([photos], out, size=16, progress=False)
    ds = PackDataset(out, train=False)
    ds[0]  # opens the memmap in this process; pickling for workers must drop it
    loader = DataLoader(ds, batch_size=3, num_workers=2, shuffle=False)
    batches = list(loader)
    assert [b["L"].shape for b in batches] == [(3, 1, 16, 16), (3, 1, 16, 16)]
    assert torch.equal(batches[0]["rgb"][1], ds[1]["rgb"])


def test_build_pack_max_images(photos, tmp_path):
    info = build_pack([photos / "a"], tmp_path / "p.safetensors", size=16, max_images=2, progress=False)
    assert info.count + info.skipped == 2


def test_build_pack_errors(photos, tmp_path):
    with pytest.raises(DataError, match="no such file"):
        build_pack([tmp_path / "missing"], tmp_path / "p.safetensors", progress=False)
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="no images"):
        build_pack([tmp_path / "empty"], tmp_path / "p.safetensors", progress=False)
    gray = tmp_path / "gray"
    gray.mkdir()
    Image.fromarray(picture(32, 32, 0)[..., 0]).save(gray / "g.png")
    with pytest.raises(DataError, match="no usable"):
        build_pack([gray], tmp_path / "p.safetensors", progress=False)
    with pytest.raises(DataError, match="is a folder"):
        build_pack([photos], tmp_path, progress=False)
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(DataError, match="cannot write"):
        build_pack([photos], blocker / "p.safetensors", progress=False)
    assert not (tmp_path / "p.safetensors").exists()


def test_failed_pack_write_keeps_old_pack(photos, tmp_path, monkeypatch):
    out = tmp_path / "p.safetensors"
    build_pack([photos / "a"], out, size=16, progress=False)
    before = out.read_bytes()
    import safetensors.numpy

    def broken(tensors, filename, metadata=None):
        Path(filename).write_bytes(b"partial")
        raise OSError("disk full")

    monkeypatch.setattr(safetensors.numpy, "save_file", broken)
    with pytest.raises(DataError, match="disk full"):
        build_pack([photos], out, size=16, progress=False)
    assert out.read_bytes() == before
    assert [f.name for f in tmp_path.iterdir() if f.is_file()] == ["p.safetensors"]


def test_corrupt_or_foreign_pack_files(photos, tmp_path):
    out = tmp_path / "p.safetensors"
    build_pack([photos], out, size=16, progress=False)
    data = out.read_bytes()
    cut = tmp_path / "cut.safetensors"
    cut.write_bytes(data[: len(data) - 100])
    with pytest.raises(DataError, match="truncated"):
        PackDataset(cut)
    with pytest.raises(DataError):
        load_pack_tensor(cut)
    from safetensors.numpy import save_file

    foreign = tmp_path / "model.safetensors"
    save_file({"w": np.zeros((2, 2), np.float32)}, str(foreign))
    with pytest.raises(DataError, match="not a lumachrome pack"):
        read_pack_info(foreign)
    junk = tmp_path / "junk.safetensors"
    junk.write_bytes(b"\x00" * 4)
    with pytest.raises(DataError, match="not a lumachrome pack"):
        PackDataset(junk)
    with pytest.raises(DataError, match="no such pack"):
        PackDataset(tmp_path / "none.safetensors")
    # the header is plain JSON (no pickle anywhere)
    n = int.from_bytes(data[:8], "little")
    header = json.loads(data[8 : 8 + n])
    assert header["__metadata__"]["format"] == "lumachrome-pack"
    assert header["images"]["dtype"] == "U8"


@pytest.mark.shared
def test_shared_small_pack(shared_data, tmp_path):
    train = shared_data / "photos" / "train"
    if not train.is_dir():
        pytest.skip(f"{train} not found")
    out = tmp_path / "train50.safetensors"
    info = build_pack([train], out, size=64, max_images=50, progress=False)
    assert info.count + info.skipped == 50 and info.count >= 40
    t = load_pack_tensor(out)
    assert t.shape == (info.count, 3, 64, 64)
    ds = PackDataset(out, size=48)
    torch.manual_seed(0)
    check_sample(ds[0], 48)
    folder = ColorFolderDataset(train, size=48, train=False, max_files=8)
    check_sample(folder[3], 48)
