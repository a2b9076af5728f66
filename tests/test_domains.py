"""Tests for lumachrome.data.domains: dataset readers, the fixed 10 % hold-out, domain packs."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
import rasterio
from PIL import Image
from rasterio.crs import CRS
from rasterio.transform import from_origin

from lumachrome.cli import main
from lumachrome.data.domain_pack import read_domain_pack
from lumachrome.data import domains
from lumachrome.data.domains import (
    Pair,
    _thin,
    build_domain_pack,
    domain_pairs,
    holdout_ids,
    landsat_pairs,
    line_art_ok,
    resolve_datasets,
    set_of,
    sketchy_unpaired,
    split_of,
)
from lumachrome.errors import DataError

# --------------------------------------------------------------------------------------------
# a miniature copy of ../shared/data's layout


def _ring(i: int, size: int = 64) -> tuple[np.ndarray, np.ndarray]:
    """Line art (black ring on white) and its colour version (ring filled with a colour)."""
    rng = np.random.default_rng(i)
    cx, cy, r = (int(v) for v in rng.integers([20, 20, 8], [44, 44, 18]))
    color = np.full((size, size, 3), 255, np.uint8)
    cv2.circle(color, (cx, cy), r, tuple(int(v) for v in rng.integers(60, 230, 3)), -1)
    cv2.circle(color, (cx, cy), r, (0, 0, 0), 3)
    line = np.full((size, size), 255, np.uint8)
    cv2.circle(line, (cx, cy), r, 0, 3)
    return line, color


def _texture(i: int, h: int, w: int) -> np.ndarray:
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    base = 127 + 100 * np.sin(x / (3 + i % 5) + i) * np.cos(y / (4 + i % 3))
    return np.clip(np.stack([base, 255 - base, (base + 60) % 255], -1), 0, 255).astype(np.uint8)


def _geotiff(path: Path, data: np.ndarray, transform, nodata=None) -> None:
    c, h, w = data.shape
    with rasterio.open(path, "w", driver="GTiff", count=c, height=h, width=w, dtype=data.dtype,
                       crs=CRS.from_epsg(32618), transform=transform, nodata=nodata) as ds:  # fmt: skip
        ds.write(data)


@pytest.fixture(scope="module")
def fake_root(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("shared")
    om = root / "sketch" / "openmoji"
    (om / "line").mkdir(parents=True)
    (om / "color").mkdir()
    for i in range(30):
        line, color = _ring(i)
        Image.fromarray(line).save(om / "line" / f"E{i:03d}.png")
        Image.fromarray(color).convert("P").save(om / "color" / f"E{i:03d}.png")
    (root / "sketch" / "manga_covers").mkdir()
    for i in range(4):
        Image.fromarray(_texture(i, 90, 60)).save(root / "sketch" / "manga_covers" / f"M{i}.jpg")
    for part, n in (("train", 5), ("val", 2)):
        (root / "photos" / part / "bsds").mkdir(parents=True)
        for i in range(n):
            Image.fromarray(_texture(10 + i, 50, 70)).save(root / "photos" / part / "bsds" / f"p{i}.png")
    for part, folder, n in (("train", "imagenet", 6), ("val", "imagenet", 2), ("extra", "scenes", 9)):
        (root / "photos" / part / folder).mkdir(parents=True)
        for i in range(n):
            Image.fromarray(_texture(20 + i, 48, 64)).save(root / "photos" / part / folder / f"x{i}.png")
    for cls in ("cat", "cup"):
        (root / "sketch" / "sketchy" / cls).mkdir(parents=True)
        (root / "photos" / "train" / "sketchy" / cls).mkdir(parents=True)
        for i in range(6):
            Image.fromarray(_ring(i)[0]).save(root / "sketch" / "sketchy" / cls / f"n0{i}_1-{1 + i % 2}.png")
            Image.fromarray(_texture(i, 48, 48)).save(root / "photos" / "train" / "sketchy" / cls / f"n0{i}_1.png")
    # nir: GeoLifeCLEF-like JPEG-free pairs (PNG), BigEarthNet-like band files, Landsat-like rgbn scenes
    g = root / "nir" / "geolifeclef"
    (g / "rgb").mkdir(parents=True)
    (g / "nir").mkdir()
    for i in range(12):
        rgb = _texture(i, 32, 32)
        Image.fromarray(rgb).save(g / "rgb" / f"g{i}.png")
        Image.fromarray(255 - rgb[:, :, 1]).save(g / "nir" / f"g{i}.png")
    for k in range(3):
        d = root / "nir" / "bigearthnet" / f"S2_patch_{k}"
        d.mkdir(parents=True)
        for j, b in enumerate(("B02", "B03", "B04", "B08")):
            band = (_texture(k, 24, 24)[:, :, j % 3].astype(np.uint16) * 10 + 100 * j)[None]
            _geotiff(d / f"{d.name}_{b}.tif", band, from_origin(404400.0, 5342400.0, 10.0, 10.0))
    land = root / "nir" / "landsat"
    land.mkdir(parents=True)
    scene = np.stack([_texture(3, 70, 90)[:, :, c] for c in (2, 1, 0)] + [_texture(4, 70, 90)[:, :, 0]]).astype(np.uint8)
    t = from_origin(792988.0, 2050382.0, 5.0, 5.0)
    _geotiff(land / "rgbn.tif", scene, t)
    _geotiff(land / "rgbn_20160101.tif", scene, t)  # another date, same place
    sub = scene[:, 12:, 12:].copy()
    sub[:, :3, :] = 0  # a no-data strip
    _geotiff(land / "rgbn_suba.tif", sub, from_origin(792988.0 + 60, 2050382.0 - 60, 5.0, 5.0), nodata=0)
    # thermal: visible is a colour version of the infrared
    rs = root / "thermal" / "roadscene"
    (rs / "infrared").mkdir(parents=True)
    (rs / "visible").mkdir()
    for i in range(12):
        ir = _texture(i, 40, 60)[:, :, 0]
        Image.fromarray(ir).save(rs / "infrared" / f"FLIR_{i:05d}.png")
        vis = np.stack([ir, (ir * 0.8).astype(np.uint8), (ir * 0.5).astype(np.uint8)], -1)
        Image.fromarray(vis).save(rs / "visible" / f"FLIR_{i:05d}.png")
    return root


# --------------------------------------------------------------------------------------------
# the split


def test_holdout_is_ten_percent_stable_and_order_free():
    ids = [f"set/{i}" for i in range(237)]
    held = holdout_ids(ids)
    assert len(held) == 24  # round(23.7)
    assert holdout_ids(list(reversed(ids)) + ids[:5]) == held  # order and duplicates do not matter
    grown = holdout_ids(ids + ["set/new"])
    assert len(held ^ grown) <= 2  # adding one id moves at most one other
    assert len(holdout_ids(["a/1", "a/2"])) == 1 and holdout_ids(["a/1"]) == set()
    some = next(iter(held))
    assert split_of(some, ids) == "holdout" and split_of(next(i for i in ids if i not in held), ids) == "train"
    assert set_of("landsat/32618/1/2") == "landsat"


def test_thin_keeps_each_source_in_proportion():
    pairs = [Pair(f"a/{i}", None, None, "a") for i in range(90)] + [Pair(f"b/{i}", None, None, "b") for i in range(10)]
    kept = _thin(pairs, 20)
    assert len(kept) == 20 and sum(p.source == "a" for p in kept) == 18
    assert [p.id for p in kept[:2]] == ["a/0", "a/5"]  # evenly spaced, deterministic
    assert _thin(pairs, None) == pairs and _thin(pairs, 1000) == pairs


# --------------------------------------------------------------------------------------------
# readers and packs


@pytest.mark.parametrize("domain", ["sketch", "nir", "thermal"])
def test_splits_are_disjoint_complete_and_ten_percent(fake_root, domain):
    every = list(domain_pairs(domain, fake_root, None, 16))
    train = {p.id for p in domain_pairs(domain, fake_root, "train", 16)}
    hold = {p.id for p in domain_pairs(domain, fake_root, "holdout", 16)}
    assert train and hold and not train & hold and train | hold == {p.id for p in every}
    for s in {set_of(p.id) for p in every}:
        n = len({p.id for p in every if set_of(p.id) == s})
        assert len({i for i in hold if set_of(i) == s}) == max(1, round(0.1 * n))
    for p in every:
        assert p.A.shape == (16, 16) and p.A.dtype == np.uint8
        assert p.B.shape == (16, 16, 3) and p.B.dtype == np.uint8


def test_openmoji_pairs_are_aligned(fake_root):
    pairs = [p for p in domain_pairs("sketch", fake_root, None, 32) if p.source == "openmoji"]
    assert len(pairs) == 30
    for p in pairs:
        dark_a = p.A < 100
        assert dark_a.sum() > 20
        assert (p.B.max(axis=2)[dark_a] < 140).mean() > 0.9  # the outline is dark in the colour image too
    synth = [p for p in domain_pairs("sketch", fake_root, None, 32) if p.source in ("manga", "photos")]
    assert {p.source for p in synth} == {"manga", "photos"} and len(synth) == 4 * 2 + 7


def test_thermal_pairs_are_aligned_and_cover_the_frame(fake_root):
    pairs = list(domain_pairs("thermal", fake_root, None, 20))
    assert len(pairs) == 12 * 2  # 60x40 frames: round(1.5) = 2 crops each
    for p in pairs:
        assert np.corrcoef(p.A.ravel().astype(float), p.B[:, :, 0].ravel().astype(float))[0, 1] > 0.98
    a, b = pairs[0], pairs[1]  # the two crops of one frame differ (left / right)
    assert a.id == b.id and not np.array_equal(a.A, b.A)


def test_landsat_patches_are_map_aligned(fake_root):
    pairs = list(landsat_pairs(fake_root, 16))
    by_scene: dict[str, set[str]] = {}
    for p in pairs:
        by_scene.setdefault(p.source, set()).add(p.id)
    # two dates of one place: the same cells; the sub-scene's cells are a subset of them
    assert by_scene["landsat:rgbn.tif"] == by_scene["landsat:rgbn_20160101.tif"]
    assert by_scene["landsat:rgbn_suba.tif"] and by_scene["landsat:rgbn_suba.tif"] <= by_scene["landsat:rgbn.tif"]
    for p in pairs:
        _, epsg, gx, gy = p.id.split("/")
        assert epsg == "32618"
    # the same cell cut from the scene and from the sub-scene shows the same place
    same = sorted(by_scene["landsat:rgbn_suba.tif"])[0]
    a = next(p for p in pairs if p.id == same and p.source == "landsat:rgbn.tif")
    b = next(p for p in pairs if p.id == same and p.source == "landsat:rgbn_suba.tif")
    assert np.corrcoef(a.A.ravel().astype(float), b.A.ravel().astype(float))[0, 1] > 0.95


def test_build_packs_and_sidecar(fake_root, tmp_path):
    out = tmp_path / "nir-train.safetensors"
    rep = build_domain_pack("nir", "train", out, root=fake_root, size=16)
    pack = read_domain_pack(out)
    assert pack.domain == "nir" and pack.split == "train" and pack.a_channels == ["nir"]
    assert tuple(pack.A.shape) == (rep.count, 1, 16, 16) and tuple(pack.B.shape) == (rep.count, 3, 16, 16)
    side = json.loads(out.with_suffix(".json").read_text())
    assert side["count"] == rep.count == len(side["ids"]) and sum(side["counts"].values()) == rep.count
    assert "geolifeclef" in pack.source and rep.bytes == out.stat().st_size
    hold = build_domain_pack("nir", "holdout", tmp_path / "nir-holdout.safetensors", root=fake_root, size=16)
    assert not set(hold.ids) & set(rep.ids)
    limited = build_domain_pack("nir", "train", tmp_path / "lim.safetensors", root=fake_root, size=16, limit=5)
    assert limited.count == 5 and limited.available == rep.count


def test_unpaired_packs(fake_root, tmp_path):
    rep = build_domain_pack("thermal", "train", tmp_path / "th.safetensors", root=fake_root, size=16, unpaired=True)
    a, b = read_domain_pack(tmp_path / "th-A.safetensors"), read_domain_pack(tmp_path / "th-B.safetensors")
    assert a.B is None and b.A is None and len(a) == len(b) == rep.count // 2
    paired = build_domain_pack("thermal", "train", tmp_path / "p.safetensors", root=fake_root, size=16)
    pp = read_domain_pack(tmp_path / "p.safetensors")
    assert sorted(map(bytes, a.A.numpy())) == sorted(map(bytes, pp.A.numpy()))  # the same images...
    assert not np.array_equal(a.A.numpy(), pp.A.numpy())  # ...in another order
    assert paired.count == len(a)
    # sketch: Sketchy sketches vs Sketchy photos, split by the photo id
    sk_a, sk_b = sketchy_unpaired(fake_root, 16, None)
    assert len(sk_a) == len(sk_b) == 12
    hold_a, hold_b = sketchy_unpaired(fake_root, 16, "holdout")
    assert {p.id for p in hold_a} == {p.id for p in hold_b} and len(hold_b) == 1
    build_domain_pack("sketch", "train", tmp_path / "sk.safetensors", root=fake_root, size=16, unpaired=True)
    ska = read_domain_pack(tmp_path / "sk-A.safetensors")
    assert len(ska) == 11 and ska.a_channels == ["line"]


def test_errors(fake_root, tmp_path):
    with pytest.raises(DataError, match="unknown domain"):
        build_domain_pack("radar", "train", tmp_path / "x.safetensors", root=fake_root)
    with pytest.raises(DataError, match="unknown split"):
        build_domain_pack("nir", "val", tmp_path / "x.safetensors", root=fake_root)
    with pytest.raises(DataError, match="dataset folder not found"):
        build_domain_pack("nir", "train", tmp_path / "x.safetensors", root=tmp_path / "nothing")
    with pytest.raises(DataError, match="is a folder"):
        build_domain_pack("nir", "train", tmp_path, root=fake_root)


def test_cli_data_domain(fake_root, tmp_path, capsys):
    out = tmp_path / "th.safetensors"
    rc = main(["data", "domain", "thermal", "--split", "holdout", "--size", "16", "-o", str(out), "--root", str(fake_root)])
    assert rc == 0 and "thermal holdout: 2 pairs of 16x16" in capsys.readouterr().out
    assert read_domain_pack(out).split == "holdout"
    assert main(["data", "domain", "thermal", "--split", "test", "-o", str(out), "--root", str(fake_root)]) == 2
    rc = main(["data", "domain", "nir", "-o", str(out), "--root", str(tmp_path / "missing")])
    assert rc == 1 and "dataset folder not found" in capsys.readouterr().err


# --------------------------------------------------------------------------------------------
# more line art (opt-in datasets) and the fixed sketch hold-out


def test_opt_in_sketch_sets_leave_the_default_packs_and_holdout_alone(fake_root, monkeypatch):
    default = [(p.id, p.source) for p in domain_pairs("sketch", fake_root, "holdout", 16)]
    everything = [(p.id, p.source) for p in domain_pairs("sketch", fake_root, "holdout", 16, "all")]
    assert [x for x in everything if x[1] in ("openmoji", "manga", "photos")] == default
    assert {set_of(i) for i, _ in everything} == {"openmoji", "manga", "photos", "photos2", "sketchy"}
    assert resolve_datasets("sketch", None) == ("openmoji", "manga", "photos")
    # photos2 is every other photo (no Sketchy photo), each source image in one set only
    monkeypatch.setattr(domains, "SKETCH_MAX_PHOTOS", 4)
    monkeypatch.setattr(domains, "SKETCH_EXTRA_PER_FOLDER", 3)
    photos = {i.split("/", 1)[1] for i, _ in domains._photo_files(fake_root)}
    more = [i.split("/", 1)[1] for i, _ in domains._photos2_files(fake_root)]
    assert len(photos) == 4 and not photos & set(more)
    listed = {f"{part}/{d}/{f.name}" for part in ("train", "val") for d in ("bsds", "imagenet")
              for f in (fake_root / "photos" / part / d).iterdir()}
    assert photos | {m for m in more if not m.startswith("extra/")} == listed
    assert [m for m in more if m.startswith("extra/")] == ["extra/scenes/x0.png", "extra/scenes/x4.png",
                                                            "extra/scenes/x8.png"]  # evenly spaced, capped


def test_opt_in_sets_split_on_their_own_ids(fake_root):
    pairs = list(domain_pairs("sketch", fake_root, None, 16, ["photos2", "sketchy"]))
    hold = {p.id for p in domain_pairs("sketch", fake_root, "holdout", 16, "photos2,sketchy")}
    ids = {p.id for p in pairs if set_of(p.id) == "photos2"}
    assert hold & ids == holdout_ids(ids)  # line_art_ok drops pairs after the split, never moves one
    # a Sketchy photo's line art sits on the side its photo has in the unpaired (CycleGAN) packs
    _, b_hold = sketchy_unpaired(fake_root, 16, "holdout")
    assert {p.id for p in b_hold} == {i for i in hold if set_of(i) == "sketchy"}


def test_line_art_check_and_dataset_errors(fake_root, tmp_path):
    white, black = np.full((8, 8), 255, np.uint8), np.zeros((8, 8), np.uint8)
    assert line_art_ok(Pair("x/1", white, None, "x")) and not line_art_ok(Pair("x/1", black, None, "x"))
    with pytest.raises(DataError, match="unknown dataset 'photo3'") as e:
        build_domain_pack("sketch", "train", tmp_path / "s.safetensors", root=fake_root, datasets="photos,photo3")
    assert "openmoji, manga, photos, photos2, sketchy" in str(e.value)
    with pytest.raises(DataError, match="takes no dataset list"):
        build_domain_pack("sketch", "train", tmp_path / "s.safetensors", root=fake_root, unpaired=True,
                          datasets="photos")
    rep = build_domain_pack("sketch", "holdout", tmp_path / "m.safetensors", root=fake_root, size=16,
                            datasets="photos2")
    side = json.loads((tmp_path / "m.json").read_text())
    assert side["datasets"] == ["photos2"] and set(side["counts"]) == {"photos2"} and rep.count >= 1


def test_cli_data_domain_datasets(fake_root, tmp_path, capsys):
    out = tmp_path / "more.safetensors"
    rc = main(["data", "domain", "sketch", "--datasets", "sketchy", "--split", "holdout", "--size", "16", "-o", str(out),
               "--root", str(fake_root)])
    assert rc == 0 and "sketch holdout:" in capsys.readouterr().out
    rc = main(["data", "domain", "sketch", "--datasets", "nope", "-o", str(out), "--root", str(fake_root)])
    err = capsys.readouterr().err
    assert rc == 1 and "unknown dataset 'nope'" in err and len(err.strip().splitlines()) == 1


# --------------------------------------------------------------------------------------------
# the real datasets

#: sha256 of the sorted distinct ids of the fixed sketch hold-out (298 pairs, 287 ids: a manga cover
#: gives two crops); the ids of ``.packs/sketch-holdout.json`` as built before the opt-in sets existed.
SKETCH_HOLDOUT_SHA256 = "3f0057f1b34ed9f2931bba4917102a2dfc3b61299fa5baa0f6e774f277da8f3a"


@pytest.mark.shared
def test_shared_sketch_holdout_is_fixed(shared_data):
    import hashlib

    pairs = list(domain_pairs("sketch", shared_data, "holdout", 16))
    ids = sorted({p.id for p in pairs})
    assert len(pairs) == 298 and len(ids) == 287
    assert hashlib.sha256("\n".join(ids).encode()).hexdigest() == SKETCH_HOLDOUT_SHA256
    counts = {s: sum(p.source == s for p in pairs) for s in ("openmoji", "manga", "photos")}
    assert counts == {"openmoji": 246, "manga": 22, "photos": 30}


@pytest.mark.shared
def test_shared_holdout_sizes(shared_data, tmp_path):
    nir = build_domain_pack("nir", "holdout", tmp_path / "nir.safetensors", root=shared_data)
    assert nir.counts["geolifeclef"] == 10 and nir.counts["bigearthnet"] == 1
    th = list(domain_pairs("thermal", shared_data, "holdout", 128))
    assert len({p.id for p in th}) == 22  # round(0.1 * 221)
    pack = read_domain_pack(tmp_path / "nir.safetensors")
    # A (NIR) and B (RGB) of a GeoLifeCLEF pair are the same place: their gradients agree
    a = pack.A[0, 0].numpy().astype(np.float32)
    g = pack.B[0, 1].numpy().astype(np.float32)
    ga, gg = cv2.Laplacian(cv2.GaussianBlur(a, (5, 5), 1.5), cv2.CV_32F), cv2.Laplacian(cv2.GaussianBlur(g, (5, 5), 1.5), cv2.CV_32F)
    shifted = np.roll(gg, 17, axis=1)
    assert abs(np.corrcoef(ga.ravel(), gg.ravel())[0, 1]) > abs(np.corrcoef(ga.ravel(), shifted.ravel())[0, 1])


# --------------------------------------------------------------------------------------------
# nirtiles: every scene cut at native resolution, the fixed nir hold-out untouched


def _cell_bounds(key: str, cell_m: float) -> tuple[float, float, float, float]:
    """``(left, right, bottom, top)`` in map metres of a ``<epsg>/<gx>/<gy>`` cell (``landsat`` numbering:
    ``gx`` counts cells from x = 0, ``gy`` is the cell's top edge in cells)."""
    _, gx, gy = key.split("/")
    return int(gx) * cell_m, (int(gx) + 1) * cell_m, (int(gy) - 1) * cell_m, int(gy) * cell_m


def test_nirtiles_windows_are_native_and_never_touch_a_held_out_cell(fake_root):
    from lumachrome.data.domains import _landsat_scenes, _read_landsat_scene, nirtile_pairs

    size, cell, res = 8, 32, 5.0  # the fake rgbn scenes: 5 m pixels
    train = list(nirtile_pairs(fake_root, size, "train", cell=cell, where=True))
    hold = list(nirtile_pairs(fake_root, size, "holdout", cell=cell, where=True))
    assert train and hold
    assert all(p.id.startswith("nirtiles/") and p.A.shape == (size, size) and p.B.shape == (size, size, 3)
               for p, _, _ in train + hold)
    # the held-out cells: landsat's own (cut at the cell size) and nirtiles' (cells landsat never reads)
    landsat_ids = {p.id for p in landsat_pairs(fake_root, cell)}
    held_cells = {i.split("/", 1)[1] for i in holdout_ids(landsat_ids)} | {p.id.split("/", 1)[1] for p, _, _ in hold}
    assert not {p.id.split("/", 1)[1] for p, _, _ in hold} & {i.split("/", 1)[1] for i in landsat_ids}
    scenes = {name: (nf, nb, rgb) for name, (nf, nb), rgb in _landsat_scenes(fake_root / "nir" / "landsat")}
    cell_m = cell * res
    for kind, items in (("train", train), ("holdout", hold)):
        for p, r, c in items:
            if p.source == "nirtiles:bigearthnet":
                continue
            nf, nb, rgb = scenes[p.source.split(":", 1)[1]]
            raster, nir_u8, rgb_u8, _ = _read_landsat_scene(nf, nb, rgb)
            # native resolution: the window is the stretched scene's pixels, not a resampling of them
            assert np.array_equal(p.A, nir_u8[r:r + size, c:c + size]) and np.array_equal(p.B, rgb_u8[r:r + size, c:c + size])
            t = raster.transform
            left, top = t.c + c * res, t.f - r * res
            right, bottom = left + size * res, top - size * res
            for key in held_cells:
                l2, r2, b2, t2 = _cell_bounds(key, cell_m)
                # a pixel belongs to the cell of its centre: grids not aligned to the pixels overlap by < 1/2 px
                inter = min(right, r2) - max(left, l2) > res / 2 + 1e-6 and min(top, t2) - max(bottom, b2) > res / 2 + 1e-6
                if kind == "train":
                    assert not inter, (p.id, key)
            if kind == "holdout":  # inside its own cell
                l2, r2, b2, t2 = _cell_bounds(p.id.split("/", 1)[1], cell_m)
                tol = res / 2 + 1e-6
                assert l2 - tol <= left and right <= r2 + tol and b2 - tol <= bottom and top <= t2 + tol
    # BigEarthNet: train only, the patch of bigearthnet's hold-out never read, 24 px patches cut, not resized
    ben = {p.id.rsplit("/", 1)[1] for p, _, _ in train if p.source == "nirtiles:bigearthnet"}
    ben_held = {i.split("/", 1)[1] for i in holdout_ids(f"bigearthnet/S2_patch_{k}" for k in range(3))}
    assert ben and not ben & ben_held and len(ben | ben_held) == 3
    assert not any(p.source == "nirtiles:bigearthnet" for p, _, _ in hold)


def test_nirtiles_is_opt_in_and_checks_its_size(fake_root):
    from lumachrome.data.domains import nirtile_pairs

    assert "nirtiles" not in domains.DEFAULT_DATASETS["nir"]
    default = list(domain_pairs("nir", fake_root, "holdout", 32))
    with_tiles = [p for p in domain_pairs("nir", fake_root, "holdout", 32, datasets="all") if set_of(p.id) != "nirtiles"]
    assert [p.id for p in default] == [p.id for p in with_tiles]
    assert all(np.array_equal(a.A, b.A) and np.array_equal(a.B, b.B) for a, b in zip(default, with_tiles))
    with pytest.raises(DataError, match="must divide"):
        list(nirtile_pairs(fake_root, 24, "train", cell=32))
    with pytest.raises(DataError, match="unknown split"):
        list(nirtile_pairs(fake_root, 16, "val", cell=32))


#: sha256 of the sorted ids of the fixed nir hold-out (13 pairs), those of ``.packs/nir-holdout.json``
#: built before the ``nirtiles`` set existed.
NIR_HOLDOUT_SHA256 = "f41cb9a4796e848bd300decdd3590c955869c73eabb25d69a791b34db34516cf"


@pytest.mark.shared
def test_shared_nir_holdout_is_fixed(shared_data):
    import hashlib

    pairs = list(domain_pairs("nir", shared_data, "holdout", 128))
    ids = sorted(p.id for p in pairs)
    assert len(pairs) == 13 and hashlib.sha256("\n".join(ids).encode()).hexdigest() == NIR_HOLDOUT_SHA256
    every = [p for p in domain_pairs("nir", shared_data, "holdout", 128, datasets="all") if set_of(p.id) != "nirtiles"]
    assert [p.id for p in every] == [p.id for p in pairs]
    old = Path(__file__).resolve().parents[1] / ".packs" / "nir-holdout.safetensors"
    if old.is_file():  # the pack built before nirtiles: the same ids, the same pixels
        pack = read_domain_pack(old)
        assert json.loads(old.with_suffix(".json").read_text())["ids"] == [p.id for p in pairs]
        assert np.array_equal(pack.A.numpy()[:, 0], np.stack([p.A for p in pairs]))
        assert np.array_equal(pack.B.numpy(), np.stack([p.B for p in pairs]).transpose(0, 3, 1, 2))
