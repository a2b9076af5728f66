"""Domain packs (lumachrome.data.domain_pack): the file format, its errors, and the batchers."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from lumachrome.data.domain_pack import (
    PairedBatcher,
    UnpairedBatcher,
    center_batch,
    from_unit,
    load_sides,
    read_domain_pack,
    to_unit,
    write_domain_pack,
)
from lumachrome.errors import DataError


def _images(n: int, c: int, h: int = 20, w: int = 24, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (n, c, h, w), generator=g, dtype=torch.uint8)


def test_paired_round_trip_keeps_pixels_and_metadata(tmp_path):
    A, B = _images(5, 1), _images(5, 3, seed=1)
    out = write_domain_pack(tmp_path / "sub" / "nir.safetensors", A=A, B=B.numpy(), domain="nir", split="train",
                            a_channels=["nir"], source="generated")
    assert out == tmp_path / "sub" / "nir.safetensors"
    assert [p.name for p in out.parent.iterdir()] == ["nir.safetensors"]  # no temporary left behind
    pk = read_domain_pack(out)
    assert torch.equal(pk.A, A) and torch.equal(pk.B, B)
    assert (pk.domain, pk.split, pk.a_channels, pk.b_channels, pk.source) == ("nir", "train", ["nir"],
                                                                              ["r", "g", "b"], "generated")
    assert pk.paired and len(pk) == 5 and pk.hw == (20, 24) and pk.format_version == "1"
    # The header holds the documented string metadata.
    from safetensors import safe_open

    with safe_open(str(out), "pt") as f:
        meta = f.metadata()
    assert json.loads(meta["a_channels"]) == ["nir"] and json.loads(meta["b_channels"]) == ["r", "g", "b"]
    assert {"domain", "split", "source", "format_version"} <= set(meta)


def test_unpaired_packs_hold_one_side(tmp_path):
    a = write_domain_pack(tmp_path / "a.safetensors", A=_images(4, 1), domain="line", split="train",
                          a_channels=["line"])
    b = write_domain_pack(tmp_path / "b.safetensors", B=_images(6, 3, 16, 16), domain="line", split="train")
    pa, pb = read_domain_pack(a), read_domain_pack(b)
    assert pa.B is None and pb.A is None and not pa.paired and pb.a_channels == []
    A, B, meta = load_sides([a, b], paired=False)
    assert A.shape == (4, 1, 20, 24) and B.shape == (6, 3, 16, 16)  # each side keeps its size
    assert meta.domain == "line"
    with pytest.raises(DataError, match="not a paired pack"):
        load_sides([a, b], paired=True)
    with pytest.raises(DataError, match="no pack holds side B"):
        load_sides([a], paired=False)


@pytest.mark.parametrize("kwargs, match", [
    (dict(), "needs A, B or both"),
    (dict(A=torch.zeros(2, 1, 16, 16)), "uint8"),
    (dict(B=torch.zeros(2, 1, 16, 16, dtype=torch.uint8)), "RGB"),
    (dict(A=torch.zeros(2, 2, 16, 16, dtype=torch.uint8), a_channels=["x"]), "do not match"),
    (dict(A=torch.zeros(2, 1, 16, 16, dtype=torch.uint8), B=torch.zeros(3, 3, 16, 16, dtype=torch.uint8)), "differ"),
    (dict(A=torch.zeros(2, 1, 4, 4, dtype=torch.uint8)), ">= 8 px"),
])
def test_write_refuses_bad_tensors(tmp_path, kwargs, match):
    with pytest.raises(DataError, match=match):
        write_domain_pack(tmp_path / "x.safetensors", domain="d", split="s", **kwargs)
    assert not list(tmp_path.iterdir())


def test_read_errors_are_one_line_and_name_the_file(tmp_path):
    from safetensors.torch import save_file

    from lumachrome.data.pack import build_pack
    from lumachrome.data.synthetic import write_synthetic_folder

    bad = tmp_path / "junk.safetensors"
    bad.write_bytes(b"not a pack at all")
    nometa = tmp_path / "nometa.safetensors"
    save_file({"A": torch.zeros(1, 1, 8, 8, dtype=torch.uint8)}, str(nometa))
    floats = tmp_path / "floats.safetensors"
    save_file({"B": torch.zeros(1, 3, 8, 8)}, str(floats), metadata={
        "domain": "d", "split": "s", "a_channels": "[]", "b_channels": '["r","g","b"]', "source": "",
        "format_version": "1"})
    write_synthetic_folder(tmp_path / "imgs", 2, size=16)
    photo = tmp_path / "photo.safetensors"
    build_pack([tmp_path / "imgs"], photo, size=16, progress=False, workers=1)
    for path, match in ((tmp_path / "none.safetensors", "no such domain pack"), (bad, "not a domain pack"),
                        (nometa, "metadata domain, split"), (floats, "must be uint8"),
                        (photo, "not a domain pack")):
        with pytest.raises(DataError, match=match) as exc:
            read_domain_pack(path)
        assert str(path) in str(exc.value) and "\n" not in str(exc.value)


def test_unit_range():
    x = torch.tensor([0, 255, 128], dtype=torch.uint8)
    assert to_unit(x).tolist() == pytest.approx([-1.0, 1.0, 128 / 127.5 - 1], abs=1e-6)
    assert from_unit(to_unit(x)).mul(255).round().to(torch.uint8).tolist() == [0, 255, 128]


def test_paired_batcher_same_crop_and_flip_for_both_sides():
    B = _images(7, 3, 24, 24)
    A = B[:, :1].clone()  # A is B's red channel: any misalignment shows
    for crop in ("random", "resized"):
        b = PairedBatcher(A, B, 16, 4, crop=crop, seed=3)
        seen_flip = False
        for _ in range(6):
            x = next(b)
            assert x["A"].shape == (4, 1, 16, 16) and x["B"].shape == (4, 3, 16, 16)
            assert x["A"].min() >= -1 and x["A"].max() <= 1
            assert torch.allclose(x["A"], x["B"][:, :1], atol=1e-5)
            seen_flip = True
        assert seen_flip
    # Integer crops are exact windows of the stored pixels (no resampling).
    x = next(PairedBatcher(A, B, 16, 7, flip=False, seed=0))
    win = to_unit(B).unfold(2, 16, 1).unfold(3, 16, 1)  # (N, 3, 9, 9, 16, 16)
    for i in range(7):
        hits = (win - x["B"][i][None, :, None, None]).abs().amax(dim=(1, 4, 5)) == 0
        assert bool(hits.any())


def test_paired_batcher_is_deterministic_resumable_and_covers_an_epoch():
    A, B = _images(6, 1), _images(6, 3, seed=2)
    b1 = PairedBatcher(A, B, 16, 3, seed=5)
    first = [next(b1) for _ in range(2)]
    state = json.loads(json.dumps(b1.state_dict()))  # survives JSON (the checkpoint's state.json)
    after = next(b1)
    b2 = PairedBatcher(A, B, 16, 3, seed=5)
    assert all(torch.equal(next(b2)["A"], f["A"]) for f in first)
    b3 = PairedBatcher(A, B, 16, 3, seed=99)
    b3.load_state_dict(state)
    assert torch.equal(next(b3)["B"], after["B"])
    # Without replacement: one epoch (2 batches of 3) sees all 6 images once.
    idx = torch.cat([PairedBatcher(A, B, 16, 3, seed=1).order.take(3) for _ in range(1)])
    o = PairedBatcher(A, B, 16, 3, seed=1).order
    assert sorted(torch.cat([o.take(3), o.take(3)]).tolist()) == list(range(6)) and len(idx) == 3


def test_distributed_slices_make_the_global_batch():
    A, B = _images(8, 1), _images(8, 3, seed=1)
    whole = next(PairedBatcher(A, B, 16, 4, seed=0))
    parts = [next(PairedBatcher(A, B, 16, 4, seed=0, rank=r, world_size=2)) for r in range(2)]
    assert torch.equal(torch.cat([p["B"] for p in parts]), whole["B"])


def test_unpaired_batcher_and_errors():
    A, B = _images(3, 1, 16, 16), _images(5, 3, 20, 20, seed=1)
    u = UnpairedBatcher(A, B, 16, 2, seed=0)
    x = next(u)
    assert x["A"].shape == (2, 1, 16, 16) and x["B"].shape == (2, 3, 16, 16)
    s = u.state_dict()
    nxt = next(u)
    u2 = UnpairedBatcher(A, B, 16, 2, seed=1)
    u2.load_state_dict(s)
    assert torch.equal(next(u2)["B"], nxt["B"])
    with pytest.raises(DataError, match="smaller than the crop"):
        UnpairedBatcher(A, B, 32, 2)
    with pytest.raises(DataError, match="not paired"):
        PairedBatcher(A, B, 16, 2)
    with pytest.raises(DataError, match="crop mode"):
        PairedBatcher(A, A.expand(-1, 3, -1, -1), 16, 2, crop="zoom")


def test_center_batch_is_fixed_and_centred():
    imgs = torch.arange(5 * 1 * 10 * 12, dtype=torch.int64).remainder(256).to(torch.uint8).view(5, 1, 10, 12)
    c = center_batch(imgs, 8, n=3)
    assert c.shape == (3, 1, 8, 8)
    assert torch.equal(c, center_batch(imgs, 8, n=3))
    assert torch.equal(c[1], to_unit(imgs[2, :, 1:9, 2:10]))  # images 0, 2, 4; offsets (1, 2)
    assert center_batch(imgs).shape == (5, 1, 10, 10)
    with pytest.raises(DataError, match="larger than the images"):
        center_batch(imgs, 11)
    assert np.isfinite(c.numpy()).all()


def test_build_domain_pack_from_folders(tmp_path):
    """Paired folders are matched by file name; A is stored as one gray channel when all A files are gray."""
    import cv2

    from lumachrome.data.domain_pack import build_domain_pack
    from lumachrome.data.synthetic import write_synthetic_folder

    bs = write_synthetic_folder(tmp_path / "B" / "sub", 4, size=24)
    (tmp_path / "A" / "sub").mkdir(parents=True)
    for f in bs[:3]:  # the 4th B image has no A partner
        gray = cv2.cvtColor(cv2.imread(str(f)), cv2.COLOR_BGR2GRAY)
        cv2.imwrite(str(tmp_path / "A" / "sub" / (f.stem + ".png")), gray)
    path, counts = build_domain_pack(tmp_path / "p.safetensors", a_dir=tmp_path / "A", b_dir=tmp_path / "B",
                                     size=16, domain="gray", split="train")
    assert counts == {"pairs": 3, "unmatched": 1, "unreadable": 0}
    pk = read_domain_pack(path)
    assert pk.A.shape == (3, 1, 16, 16) and pk.B.shape == (3, 3, 16, 16) and pk.a_channels == ["gray"]
    # Pairs are aligned: A is (close to) the luminance of B.
    luma = (pk.B.float() * torch.tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1)).sum(1, keepdim=True)
    assert float((luma - pk.A.float()).abs().mean()) < 3
    _, counts = build_domain_pack(tmp_path / "b.safetensors", b_dir=tmp_path / "B", size=16, domain="g", split="t")
    assert counts["images"] == 4 and read_domain_pack(tmp_path / "b.safetensors").A is None
    with pytest.raises(DataError, match="in common"):
        (tmp_path / "C").mkdir()
        write_synthetic_folder(tmp_path / "C", 1, size=24, seed=5)
        (tmp_path / "C" / "synthetic_0000.png").rename(tmp_path / "C" / "other.png")
        build_domain_pack(tmp_path / "x.safetensors", a_dir=tmp_path / "C", b_dir=tmp_path / "B" / "sub",
                          domain="g", split="t")
