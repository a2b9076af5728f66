"""Readers for the cross-domain datasets and the domain packs built from them.

``lumachrome data domain sketch|nir|thermal --split train|holdout --size N -o PACK`` reads the
shared datasets (``../shared/data``, see ``docs/domains.md`` for sources and terms), makes square
uint8 pairs and writes them with :func:`lumachrome.data.domain_pack.write_domain_pack`
(tensors ``A`` ``(N, 1, S, S)`` and ``B`` ``(N, 3, S, S)``), plus a JSON sidecar
(``PACK`` with ``.json``) listing every sample's id and source.

Hold-out split (fixed, by a stable hash of the sample id, :func:`holdout_ids`)
-------------------------------------------------------------------------------
Within each dataset (the first component of the id: ``openmoji``, ``manga``, ``photos``,
``sketchy``, ``geolifeclef``, ``bigearthnet``, ``landsat``, ``roadscene``), the distinct ids are
ranked by the first 8 bytes of ``sha256(id)`` (big-endian); the ``round(0.1 * n)`` lowest
(at least one) are held out: exactly 10 % of every set, independent of file order and machine;
adding a sample moves at most one other across the boundary. All pairs derived from one source
image (crops, line-art methods) share its id, so they sit on the same side. Ids:

* ``openmoji/<stem>``, ``manga/<stem>``, ``photos/<path under photos/>``, ``sketchy/<class>/<photo stem>``
  (a Sketchy sketch has the id of its photo), ``geolifeclef/<stem>``, ``bigearthnet/<patch>``,
  ``roadscene/<stem>``;
* Landsat patches: ``landsat/<EPSG>/<x cell>/<y cell>``, the patch's cell on a map-aligned grid of
  ``S * pixel size`` metres. Patches are cut on that grid, so several dates (and sub-scenes) of the
  same place get the same ids and cannot leak from train into hold-out.

Transforms (deterministic; ``cv2.INTER_AREA`` to shrink, ``INTER_LINEAR`` to enlarge)
---------------------------------------------------------------------------
* ``sketch`` (A: line art, 1 channel, black on white; B: colour art):
  ``openmoji`` line/color 256 px -> S x S; ``manga`` covers: short side -> ``round(1.5 S)``, two S x S
  crops evenly spaced along the long side (centred across), line art by XDoG for one crop and
  Canny for the other (which one first alternates by the id's hash), computed at pack scale;
  ``photos`` (at most :data:`SKETCH_MAX_PHOTOS` evenly spaced from the folders in
  :data:`SKETCH_PHOTO_FOLDERS`): short side -> S, centre crop, XDoG or Canny by the id's hash.
  Unpaired (CycleGAN): Sketchy freehand sketches (A) and Sketchy photos (B), 128 px -> S.
  Opt-in (``datasets``, not in :data:`DEFAULT_DATASETS`, so the default packs and the fixed sketch
  hold-out stay as they were): ``photos2`` (the photos ``photos`` does not take, and
  :data:`SKETCH_EXTRA_PER_FOLDER` of each ``photos/extra`` folder; ids ``photos2/...``) and
  ``sketchy`` (Sketchy photos as line art, the Sketchy split of :func:`sketchy_holdout`), made as
  ``photos``; pairs whose line art is more than :data:`MAX_LINE_DARK` dark are dropped after the split.
* ``nir`` (A: near infrared, 1 channel; B: natural colour): every band is stretched linearly
  from its 2nd/98th percentile to 0/255 (:func:`lumachrome.geo.percentile_stretch`, per band,
  over the valid pixels of the whole input: each GeoLifeCLEF JPEG, each BigEarthNet patch, each
  Landsat scene), so a model sees the same kind of input whatever the sensor's radiometry.
  ``geolifeclef`` 128 px JPEG pairs -> S; ``bigearthnet`` B08 vs B04/B03/B02 (120 px) -> S;
  ``landsat`` scenes cut into S x S patches at native resolution (NIR = band 4, RGB = 3/2/1;
  ``lsat7_2000_{40,30,20,10}``; ``rgbn*``: blue, green, red, NIR), patches with more than 5 %
  no-data dropped.
* ``thermal`` (A: thermal IR, 1 channel; B: visible colour): ``roadscene`` pairs, short side -> S,
  ``round(long / short)`` S x S crops evenly spaced along the long side.

Unpaired packs (``--unpaired``) write two files, ``<out>-A.safetensors`` and ``<out>-B.safetensors``:
for ``sketch`` Sketchy sketches and photos of the split, for ``nir``/``thermal`` the two sides of
the split's pairs, each side in its own fixed random order (seed 0), so no pair is intact.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Iterator, Sequence

import cv2
import numpy as np

from lumachrome.atomic import atomic_write_text
from lumachrome.errors import DataError, ImageError

__all__ = [
    "DEFAULT_DATASETS",
    "DEFAULT_LIMITS",
    "DEFAULT_SIZES",
    "DOMAINS",
    "DOMAIN_CHANNELS",
    "HOLDOUT_FRACTION",
    "Pair",
    "PackReport",
    "SKETCH_MAX_PHOTOS",
    "SKETCH_PHOTO_FOLDERS",
    "bigearthnet_pairs",
    "build_domain_pack",
    "default_root",
    "domain_pairs",
    "geolifeclef_pairs",
    "landsat_pairs",
    "nirtile_pairs",
    "manga_pairs",
    "openmoji_pairs",
    "photo_sketch_pairs",
    "roadscene_pairs",
    "sketchy_unpaired",
    "filter_split",
    "holdout_ids",
    "line_art_ok",
    "photos2_sketch_pairs",
    "resolve_datasets",
    "sketchy_holdout",
    "sketchy_line_pairs",
    "set_of",
    "split_of",
]

DOMAINS = ("sketch", "nir", "thermal")
SPLITS = ("train", "holdout")
HOLDOUT_FRACTION = 0.1
#: A-side channel names per domain (the pack's ``a_channels`` and the model's ``input.channels``).
DOMAIN_CHANNELS = {"sketch": ["line"], "nir": ["nir"], "thermal": ["thermal"]}
#: Default stored side per domain (px).
DEFAULT_SIZES = {"sketch": 96, "nir": 128, "thermal": 128}
#: Default cap on the pairs of a *train* pack (evenly spaced subset of each source, in proportion),
#: so that a domain's packs fit a few tens of MB (sketch: 1000 x 96 x 96 x 4 B = 37 MB).
DEFAULT_LIMITS = {"sketch": 1000, "nir": None, "thermal": None}
#: Colour photos turned into line art for the sketch domain (folders of photos/train and photos/val).
SKETCH_PHOTO_FOLDERS = ("bsds", "gcompris", "misc", "mvtb", "sun80", "tuxpaint", "urban100", "wallpapers")
SKETCH_MAX_PHOTOS = 300
#: Folders of ``photos/{train,val}`` left out of ``photos2`` (Sketchy photos are the ``sketchy`` set).
SKETCH_PHOTOS2_EXCLUDED = ("sketchy",)
#: ``photos2`` takes at most this many (evenly spaced) photos of each ``photos/extra`` folder.
SKETCH_EXTRA_PER_FOLDER = 500
#: Synthesised line art with a larger share of dark pixels is dropped from the opt-in sets (``line_art_ok``).
MAX_LINE_DARK = 0.30
#: Landsat patches with more no-data than this are dropped.
MAX_NODATA_FRACTION = 0.05
STRETCH = (2.0, 98.0)


def default_root() -> Path:
    """``$LUMACHROME_SHARED`` when set, else ``../shared/data`` (relative to the current folder:
    the repository root)."""
    env = os.environ.get("LUMACHROME_SHARED")
    return Path(env) if env else Path("..") / "shared" / "data"


# --------------------------------------------------------------------------------------------
# split


def _unit_hash(sample_id: str) -> float:
    digest = hashlib.sha256(sample_id.encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") / 2.0**64


def set_of(sample_id: str) -> str:
    """The dataset an id belongs to (its first path component: ``openmoji``, ``landsat``, ...)."""
    return sample_id.split("/", 1)[0]


def holdout_ids(ids: Iterable[str], fraction: float = HOLDOUT_FRACTION) -> set[str]:
    """The held-out ids of one dataset: the ``round(fraction * n)`` (at least 1 when ``n >= 2``)
    distinct ids with the smallest ``sha256`` hash value (see the module doc)."""
    unique = sorted(set(ids))
    n = len(unique)
    k = max(1, round(fraction * n)) if n >= 2 else 0
    return set(sorted(unique, key=lambda i: (_unit_hash(i), i))[:k])


def split_of(sample_id: str, all_ids: Iterable[str], fraction: float = HOLDOUT_FRACTION) -> str:
    """``"holdout"`` or ``"train"`` for ``sample_id`` among the ids of its dataset ``all_ids``."""
    return "holdout" if sample_id in holdout_ids([i for i in all_ids if set_of(i) == set_of(sample_id)], fraction) else "train"


def filter_split(items: Sequence[Pair], split: str | None, fraction: float = HOLDOUT_FRACTION) -> list[Pair]:
    """The items of ``split`` (None: all), the hold-out chosen per dataset (:func:`holdout_ids`)."""
    if split is None:
        return list(items)
    held: set[str] = set()
    by_set: dict[str, list[str]] = {}
    for it in items:
        by_set.setdefault(set_of(it.id), []).append(it.id)
    for ids in by_set.values():
        held |= holdout_ids(ids, fraction)
    return [it for it in items if (it.id in held) == (split == "holdout")]


# --------------------------------------------------------------------------------------------
# pairs


@dataclass
class Pair:
    """One training pair: ``A`` uint8 ``(S, S)`` (one channel), ``B`` uint8 ``(S, S, 3)`` RGB."""

    id: str
    A: np.ndarray | None
    B: np.ndarray | None
    source: str


def _resize(img: np.ndarray, w: int, h: int) -> np.ndarray:
    if img.shape[1] == w and img.shape[0] == h:
        return img
    interp = cv2.INTER_AREA if w <= img.shape[1] and h <= img.shape[0] else cv2.INTER_LINEAR
    return cv2.resize(img, (w, h), interpolation=interp)


def _short_side_to(img: np.ndarray, side: int) -> np.ndarray:
    h, w = img.shape[:2]
    s = side / min(h, w)
    return _resize(img, max(side, round(w * s)), max(side, round(h * s)))


def _square_crops(img: np.ndarray, size: int, count: int) -> list[np.ndarray]:
    """``count`` size x size crops evenly spaced along the long side, centred across it."""
    h, w = img.shape[:2]
    out = []
    for k in range(count):
        t = 0.5 if count == 1 else k / (count - 1)
        if w >= h:
            x, y = round((w - size) * t), (h - size) // 2
        else:
            x, y = (w - size) // 2, round((h - size) * t)
        out.append(np.ascontiguousarray(img[y : y + size, x : x + size]))
    return out


def _gray(path: Path) -> np.ndarray:
    from lumachrome.imageio import read_rgb_uint8

    rgb, _ = read_rgb_uint8(path)
    return cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)


def _rgb(path: Path) -> np.ndarray:
    from lumachrome.imageio import read_rgb_uint8

    return read_rgb_uint8(path)[0]


def _need_dir(path: Path) -> Path:
    if not path.is_dir():
        raise DataError(f"{path}: dataset folder not found (is ../shared/data there?)")
    return path


def _files(folder: Path, exts: tuple[str, ...] = (".png", ".jpg", ".jpeg", ".webp")) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in exts and not p.name.startswith("."))


# ---------------------------------------------------------------- sketch


def openmoji_pairs(root: Path, size: int) -> Iterator[Pair]:
    """OpenMoji line/color pairs (same file name), resized to ``size``; colour composited on white."""
    line_dir, color_dir = _need_dir(root / "sketch" / "openmoji" / "line"), _need_dir(root / "sketch" / "openmoji" / "color")
    for lp in _files(line_dir):
        sid = f"openmoji/{lp.stem}"
        cp = color_dir / lp.name
        if not cp.is_file() :
            continue
        yield Pair(sid, _resize(_gray(lp), size, size), _resize(_rgb(cp), size, size), "openmoji")


def _line_art(rgb: np.ndarray, method: str) -> np.ndarray:
    from lumachrome.data.sketchify import sketchify

    return sketchify(rgb, method)


def _methods(sample_id: str) -> tuple[str, str]:
    return ("xdog", "canny") if int(hashlib.sha256(sample_id.encode()).hexdigest()[-1], 16) % 2 == 0 else ("canny", "xdog")


def manga_pairs(root: Path, size: int) -> Iterator[Pair]:
    """Manga covers -> (synthesised line art, cover): 2 crops per cover (XDoG for one, Canny for the other)."""
    for p in _files(_need_dir(root / "sketch" / "manga_covers")):
        sid = f"manga/{p.stem}"
        rgb = _short_side_to(_rgb(p), round(1.5 * size))
        methods = _methods(sid)
        for k, crop in enumerate(_square_crops(rgb, size, 2)):
            yield Pair(sid, _line_art(crop, methods[k % 2]), crop, "manga")


def _listed_photos(root: Path, parts: Sequence[str], folders: Sequence[str] | None) -> list[tuple[str, Path]]:
    """``(path under photos/, file)`` of every photo in ``photos/<part>/<folder>`` (``folders`` None:
    every folder of the part), sorted by that path."""
    out = []
    for part in parts:
        base = root / "photos" / part
        names = folders if folders is not None else (sorted(d.name for d in base.iterdir() if d.is_dir()) if base.is_dir() else [])
        for folder in names:
            d = base / folder
            if d.is_dir():
                out += [(f"{part}/{folder}/{p.name}", p) for p in _files(d)]
    out.sort()
    return out


def _evenly(items: list, k: int) -> list:
    """``k`` evenly spaced items (all of them when there are at most ``k``)."""
    if len(items) <= k:
        return list(items)
    return [items[i] for i in np.linspace(0, len(items) - 1, k).round().astype(int)]


def _photo_files(root: Path) -> list[tuple[str, Path]]:
    """The ``photos`` dataset: :data:`SKETCH_MAX_PHOTOS` evenly spaced of :data:`SKETCH_PHOTO_FOLDERS`."""
    listed = _listed_photos(root, ("train", "val"), SKETCH_PHOTO_FOLDERS)
    return [(f"photos/{rel}", p) for rel, p in _evenly(listed, SKETCH_MAX_PHOTOS)]


def photo_sketch_pairs(root: Path, size: int) -> Iterator[Pair]:
    """Colour photos -> (synthesised line art, photo): short side -> size, centre crop, XDoG or Canny."""
    for sid, p in _photo_files(root):
        yield _photo_pair(sid, p, size, "photos")


def _photo_pair(sid: str, path: Path, size: int, source: str) -> Pair:
    crop = _square_crops(_short_side_to(_rgb(path), size), size, 1)[0]
    return Pair(sid, _line_art(crop, _methods(sid)[0]), crop, source)


def _photos2_files(root: Path) -> list[tuple[str, Path]]:
    """The ``photos2`` dataset (see :data:`SKETCH_PHOTOS2_FOLDERS`): every photo of ``photos/{train,val}``
    that is neither in ``photos`` nor a Sketchy photo, and :data:`SKETCH_EXTRA_PER_FOLDER` evenly
    spaced of each ``photos/extra`` folder. Ids ``photos2/<part>/<folder>/<file>``."""
    taken = {sid.split("/", 1)[1] for sid, _ in _photo_files(root)}
    out = [(rel, p) for rel, p in _listed_photos(root, ("train", "val"), None)
           if rel not in taken and rel.split("/")[1] not in SKETCH_PHOTOS2_EXCLUDED]
    extra = root / "photos" / "extra"
    if extra.is_dir():
        for d in sorted(x.name for x in extra.iterdir() if x.is_dir()):
            out += _evenly(_listed_photos(root, ("extra",), [d]), SKETCH_EXTRA_PER_FOLDER)
    return [(f"photos2/{rel}", p) for rel, p in sorted(out)]


def photos2_sketch_pairs(root: Path, size: int) -> Iterator[Pair]:
    """The ``photos2`` photos -> (synthesised line art, photo), made as :func:`photo_sketch_pairs`.

    Not in the sketch domain's default datasets (the fixed 298-sample hold-out stays as it is); its
    own 10 % hold-out is chosen among its own ids. Pairs whose line art is more than
    :data:`MAX_LINE_DARK` dark are dropped after the split (:func:`line_art_ok`)."""
    if not (root / "photos").is_dir():
        raise DataError(f"{root / 'photos'}: dataset folder not found (is ../shared/data there?)")
    for sid, p in _photos2_files(root):
        yield _photo_pair(sid, p, size, "photos2")


def sketchy_line_pairs(root: Path, size: int) -> Iterator[Pair]:
    """Sketchy photos -> (synthesised line art, photo), paired; id ``sketchy/<class>/<stem>``, the id the
    photo has in the unpaired Sketchy packs, so it falls on the same side of the split there and here."""
    photos = _sketchy_photo_index(root)
    if not photos:
        raise DataError(f"{root / 'photos'}: no Sketchy photos (photos/<train|val>/sketchy/<class>/) found")
    for (cls, stem), p in sorted(photos.items()):
        yield _photo_pair(f"sketchy/{cls}/{stem}", p, size, "sketchy-lines")


def line_art_ok(pair: Pair) -> bool:
    """False for synthesised line art darker than :data:`MAX_LINE_DARK` (share of pixels below 128):
    XDoG fills the dark areas of cluttered or dark photos at 96 px with black blotches that no drawing
    has (OpenMoji's line art: 9 % dark at the median, 16 % at the 90th percentile)."""
    return pair.A is None or float((pair.A < 128).mean()) <= MAX_LINE_DARK


def _sketchy_photo_index(root: Path) -> dict[tuple[str, str], Path]:
    index = {}
    for part in ("train", "val"):
        base = root / "photos" / part / "sketchy"
        if base.is_dir():
            for cls in sorted(d for d in base.iterdir() if d.is_dir()):
                for p in _files(cls):
                    index[(cls.name, p.stem)] = p
    return index


_SKETCH_NUMBER = re.compile(r"-\d+$")  # "<photo stem>-<n>" -> the photo's stem


def _sketchy_sketch_files(root: Path) -> list[tuple[str, Path]]:
    """``(id, file)`` of every Sketchy sketch (``<stem>-<n>.png`` has its photo's id ``sketchy/<class>/<stem>``)."""
    sk_root = _need_dir(root / "sketch" / "sketchy")
    return [("sketchy/" + cls.name + "/" + _SKETCH_NUMBER.sub("", p.stem), p)
            for cls in sorted(d for d in sk_root.iterdir() if d.is_dir()) for p in _files(cls)]


def sketchy_holdout(root: Path) -> set[str]:
    """The held-out Sketchy ids: chosen among the ids of the photos and of the sketches together (some
    sketches have no photo here), for the unpaired packs and the paired ``sketchy`` line art alike."""
    ids = [f"sketchy/{cls}/{stem}" for cls, stem in _sketchy_photo_index(root)]
    return holdout_ids(ids + [sid for sid, _ in _sketchy_sketch_files(root)])


def sketchy_unpaired(root: Path, size: int, split: str | None = None) -> tuple[list[Pair], list[Pair]]:
    """Sketchy freehand sketches (A side) and Sketchy photos (B side) of ``split`` (None: all),
    resized to ``size``; the split is by photo id, so a sketch sits on its photo's side."""
    photos = _sketchy_photo_index(root)
    a_side, b_side = [], []
    for sid, p in _sketchy_sketch_files(root):
        a_side.append(Pair(sid, _resize(_gray(p), size, size), None, "sketchy-sketch"))
    for (cls, stem), p in sorted(photos.items()):
        sid = f"sketchy/{cls}/{stem}"
        b_side.append(Pair(sid, None, _square_crops(_short_side_to(_rgb(p), size), size, 1)[0], "sketchy-photo"))
    if split is not None:
        held = sketchy_holdout(root)
        a_side = [p for p in a_side if (p.id in held) == (split == "holdout")]
        b_side = [p for p in b_side if (p.id in held) == (split == "holdout")]
    return a_side, b_side


# ---------------------------------------------------------------- nir


def _stretch_u8(data: np.ndarray, valid: np.ndarray | None = None) -> np.ndarray:
    from lumachrome.geo import percentile_stretch

    return percentile_stretch(data, valid, *STRETCH, out="uint8")[0]


def geolifeclef_pairs(root: Path, size: int) -> Iterator[Pair]:
    """GeoLifeCLEF Sentinel-2 NIR/RGB JPEG pairs (128 px), each band stretched 2-98 %, resized to ``size``."""
    base = _need_dir(root / "nir" / "geolifeclef")
    for rp in _files(_need_dir(base / "rgb")):
        sid = f"geolifeclef/{rp.stem}"
        npath = base / "nir" / rp.name
        if not npath.is_file() :
            continue
        nir = _stretch_u8(_gray(npath))
        rgb = _stretch_u8(_rgb(rp).transpose(2, 0, 1)).transpose(1, 2, 0)
        yield Pair(sid, _resize(nir, size, size), _resize(np.ascontiguousarray(rgb), size, size), "geolifeclef")


def _bigearthnet_patches(root: Path) -> list[Path]:
    return sorted(p for p in _need_dir(root / "nir" / "bigearthnet").iterdir() if p.is_dir())


def _read_bigearthnet_patch(d: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """``(nir uint8 (H, W), rgb uint8 (H, W, 3), valid (H, W))`` of the patch folder ``d``: B08 vs
    B04/B03/B02, each stretched 2-98 % over the pixels valid in all four; None when a band is missing."""
    from lumachrome.geo import read_raster

    bands = {b: d / f"{d.name}_{b}.tif" for b in ("B08", "B04", "B03", "B02")}
    if not all(p.is_file() for p in bands.values()):
        return None
    rs = {b: read_raster(p, [1]) for b, p in bands.items()}
    valid = np.logical_and.reduce([r.valid for r in rs.values()])
    nir = _stretch_u8(rs["B08"].data, valid)[0]
    rgb = _stretch_u8(np.concatenate([rs[b].data for b in ("B04", "B03", "B02")]), valid).transpose(1, 2, 0)
    return nir, np.ascontiguousarray(rgb), valid


def bigearthnet_pairs(root: Path, size: int) -> Iterator[Pair]:
    """BigEarthNet patches: B08 (NIR) vs B04/B03/B02 (RGB) GeoTIFFs, stretched, 120 px -> ``size``."""
    for d in _bigearthnet_patches(root):
        patch = _read_bigearthnet_patch(d)
        if patch is not None:
            nir, rgb, _ = patch
            yield Pair(f"bigearthnet/{d.name}", _resize(nir, size, size), _resize(rgb, size, size), "bigearthnet")


#: Landsat scenes: name -> (NIR (file, band), RGB [(file, band)] * 3). ``*`` globs several files.
LANDSAT_SCENES: dict[str, tuple[tuple[str, int], list[tuple[str, int]]]] = {
    "L7_ETMs.tif": (("L7_ETMs.tif", 4), [("L7_ETMs.tif", 3), ("L7_ETMs.tif", 2), ("L7_ETMs.tif", 1)]),
    "lsat7_2000": (("lsat7_2000_40.tif", 1), [("lsat7_2000_30.tif", 1), ("lsat7_2000_20.tif", 1), ("lsat7_2000_10.tif", 1)]),
    "rgbn*.tif": (("{}", 4), [("{}", 3), ("{}", 2), ("{}", 1)]),
}


def _landsat_scenes(base: Path) -> list[tuple[str, tuple[Path, int], list[tuple[Path, int]]]]:
    out = []
    for name, (nir, rgb) in LANDSAT_SCENES.items():
        if "*" in name:
            for f in sorted(base.glob(name)):
                out.append((f.name, (f, nir[1]), [(f, b) for _, b in rgb]))
        elif (base / nir[0]).is_file():
            out.append((name, (base / nir[0], nir[1]), [(base / f, b) for f, b in rgb]))
    return out


def _read_landsat_scene(nfile: Path, nband: int, rgb_bands: list[tuple[Path, int]]):
    """``(nir raster, nir uint8 (H, W), rgb uint8 (H, W, 3), valid (H, W))`` of one scene, each band
    stretched 2-98 % over the pixels valid in all four bands."""
    from lumachrome.geo import read_raster

    nir = read_raster(nfile, [nband])
    rgbs = [read_raster(f, [b]) for f, b in rgb_bands]
    valid = np.logical_and.reduce([nir.valid] + [r.valid for r in rgbs])
    nir_u8 = _stretch_u8(nir.data, valid)[0]
    rgb_u8 = _stretch_u8(np.concatenate([r.data for r in rgbs]), valid).transpose(1, 2, 0)
    return nir, nir_u8, rgb_u8, valid


def landsat_pairs(root: Path, size: int) -> Iterator[Pair]:
    """Landsat scenes cut into ``size`` x ``size`` patches on a map-aligned grid (see the module doc)."""
    base = _need_dir(root / "nir" / "landsat")
    for scene, (nfile, nband), rgb_bands in _landsat_scenes(base):
        nir, nir_u8, rgb_u8, valid = _read_landsat_scene(nfile, nband, rgb_bands)
        t = nir.transform
        res_x, res_y = abs(t.a), abs(t.e)
        cell_x, cell_y = size * res_x, size * res_y
        epsg = nir.crs.to_epsg() if nir.crs is not None else None
        # first pixel column/row on a multiple of the cell size (map coordinates)
        col0 = round((math.ceil(t.c / cell_x - 1e-9) * cell_x - t.c) / res_x) % size
        row0 = round((t.f - math.floor(t.f / cell_y + 1e-9) * cell_y) / res_y) % size
        h, w = nir_u8.shape
        for r in range(row0, h - size + 1, size):
            for c in range(col0, w - size + 1, size):
                gx = round((t.c + c * res_x) / cell_x)
                gy = round((t.f - r * res_y) / cell_y)
                sid = f"landsat/{epsg}/{gx}/{gy}"
                ok = valid[r : r + size, c : c + size]
                if 1.0 - ok.mean() > MAX_NODATA_FRACTION:
                    continue
                yield Pair(
                    sid,
                    np.ascontiguousarray(nir_u8[r : r + size, c : c + size]),
                    np.ascontiguousarray(rgb_u8[r : r + size, c : c + size]),
                    f"landsat:{scene}",
                )


#: Side (px, native resolution) of the map-aligned cells that decide the ``nirtiles`` split: the cells
#: of the fixed ``landsat`` hold-out (pack size 128), whatever size a ``nirtiles`` pack is cut at.
NIR_CELL = 128


def _window_starts(n: int, size: int, offset: int) -> list[int]:
    """Window starts along an axis of ``n`` px: every ``size // 2`` px from ``offset`` (mod the step),
    plus both ends, so every pixel is covered; empty when ``n < size``."""
    if n < size:
        return []
    step = max(1, size // 2)
    return sorted({0, n - size, *range(offset % step, n - size + 1, step)})


def _cell_keys(nir, shape: tuple[int, int], cell: int) -> tuple[np.ndarray, np.ndarray, str, int, int]:
    """Per column and per row, the ``cell``-px map cell a pixel's centre lies in (the numbering of the
    ``landsat`` ids), the EPSG code, and the first column / row on a cell boundary."""
    t = nir.transform
    res_x, res_y = abs(t.a), abs(t.e)
    cell_x, cell_y = cell * res_x, cell * res_y
    h, w = shape
    gx = np.floor((t.c + (np.arange(w) + 0.5) * res_x) / cell_x).astype(np.int64)
    gy = np.ceil((t.f - (np.arange(h) + 0.5) * res_y) / cell_y).astype(np.int64)
    epsg = nir.crs.to_epsg() if nir.crs is not None else None
    col0 = round((math.ceil(t.c / cell_x - 1e-9) * cell_x - t.c) / res_x) % cell
    row0 = round((t.f - math.floor(t.f / cell_y + 1e-9) * cell_y) / res_y) % cell
    return gx, gy, str(epsg), col0, row0


def _windows_of(a: np.ndarray, b: np.ndarray, size: int, col0: int = 0, row0: int = 0):
    """``(r, c, A window, B window)`` for every window of :func:`_window_starts` (``size`` x ``size``)."""
    h, w = a.shape
    for r in _window_starts(h, size, row0):
        for c in _window_starts(w, size, col0):
            yield r, c, np.ascontiguousarray(a[r : r + size, c : c + size]), np.ascontiguousarray(b[r : r + size, c : c + size])


def nirtile_pairs(root: Path, size: int, split: str | None = None, cell: int = NIR_CELL,
                  where: bool = False) -> Iterator[Pair]:
    """``nirtiles``: every Landsat / ``rgbn*`` scene and every BigEarthNet patch cut into ``size`` x
    ``size`` windows at native resolution (no resampling), overlapping by half a window, the last window
    of a row / column flush with the scene's edge, windows with more than 5 % no-data dropped.

    ``cell``: the grid's cell side in px (:data:`NIR_CELL`, the fixed hold-out's; smaller for tests).
    ``where=True`` yields ``(pair, row, col)``: the window's top-left pixel in its scene (or padded patch).

    The split keeps the fixed hold-out of the default datasets intact and leaks nothing across it:

    * every scene pixel lies in a ``cell`` map cell (the ``landsat`` grid at size 128); a cell that is a
      ``landsat`` id keeps that id's split; the other cells (scene edges, cells ``landsat`` drops for
      no-data: pixels no default pack holds) are this dataset's own ids ``nirtiles/<EPSG>/<x>/<y>``, and
      the 10 % lowest hashes of *those* ids (:func:`holdout_ids`) are its hold-out;
    * a BigEarthNet patch keeps its ``bigearthnet`` split; the held-out patch is not read at all, the
      others are train only (ids ``nirtiles/bigearthnet/<patch>``); a patch smaller than ``size`` (120 px
      against 128) is reflect-padded to ``size``, not resized;
    * a train window touches no held-out pixel (of ``landsat`` or of ``nirtiles``); a hold-out window lies
      inside one held-out ``nirtiles`` cell (so at ``size`` 128 there is none: build the hold-out pack at
      64); any other window is dropped. A window's id is the cell of its centre.
    """
    if split is not None and split not in SPLITS:
        raise DataError(f"unknown split {split!r} (use {' or '.join(SPLITS)})")
    if not 8 <= size <= cell or cell % size:
        raise DataError(f"nirtiles: the window size must divide the cell size {cell} px, got {size}")
    old = {i.split("/", 1)[1] for i in (p.id for p in landsat_pairs(root, cell))}
    old_held = {i.split("/", 1)[1] for i in holdout_ids(f"landsat/{k}" for k in old)}
    base = _need_dir(root / "nir" / "landsat")
    scenes = []
    for scene, (nfile, nband), rgb_bands in _landsat_scenes(base):
        nir, nir_u8, rgb_u8, valid = _read_landsat_scene(nfile, nband, rgb_bands)
        gx, gy, epsg, col0, row0 = _cell_keys(nir, valid.shape, cell)
        keys = np.array([[f"{epsg}/{x}/{y}" for x in gx] for y in gy], dtype=object)
        scenes.append((scene, nir_u8, rgb_u8, valid, keys, col0, row0))
    new: set[str] = set()
    for _, _, _, valid, keys, _, _ in scenes:
        new |= {k for k in np.unique(keys[valid]) if k not in old}
    held = {i.split("/", 1)[1] for i in holdout_ids(f"nirtiles/{k}" for k in new)}
    for scene, nir_u8, rgb_u8, valid, keys, col0, row0 in scenes:
        bad = np.isin(keys, sorted(old_held | held))
        for r, c, a, b in _windows_of(nir_u8, rgb_u8, size, col0, row0):
            if 1.0 - valid[r : r + size, c : c + size].mean() > MAX_NODATA_FRACTION:
                continue
            cells = set(np.unique(keys[r : r + size, c : c + size]))
            centre = keys[r + size // 2, c + size // 2]
            kind = "train" if not bad[r : r + size, c : c + size].any() else (
                "holdout" if len(cells) == 1 and centre in held else None)
            if kind is not None and split in (None, kind):
                yield (Pair(f"nirtiles/{centre}", a, b, f"nirtiles:{scene}"), r, c) if where else \
                    Pair(f"nirtiles/{centre}", a, b, f"nirtiles:{scene}")
    if split == "holdout":
        return
    ben = _bigearthnet_patches(root)
    ben_held = holdout_ids(f"bigearthnet/{d.name}" for d in ben)
    for d in ben:
        patch = None if f"bigearthnet/{d.name}" in ben_held else _read_bigearthnet_patch(d)
        if patch is None:
            continue
        nir, rgb, valid = patch
        h, w = nir.shape
        if h < size or w < size:
            py, px = max(0, size - h), max(0, size - w)
            pads = (py // 2, py - py // 2, px // 2, px - px // 2)
            nir = cv2.copyMakeBorder(nir, *pads, cv2.BORDER_REFLECT_101)
            rgb = cv2.copyMakeBorder(rgb, *pads, cv2.BORDER_REFLECT_101)
            valid = cv2.copyMakeBorder(valid.astype(np.uint8), *pads, cv2.BORDER_REFLECT_101).astype(bool)
        for r, c, a, b in _windows_of(nir, rgb, size):
            if 1.0 - valid[r : r + size, c : c + size].mean() <= MAX_NODATA_FRACTION:
                pair = Pair(f"nirtiles/bigearthnet/{d.name}", a, b, "nirtiles:bigearthnet")
                yield (pair, r, c) if where else pair


# ---------------------------------------------------------------- thermal


def roadscene_pairs(root: Path, size: int) -> Iterator[Pair]:
    """RoadScene thermal/visible pairs: short side -> ``size``, ``round(long/short)`` square crops."""
    base = _need_dir(root / "thermal" / "roadscene")
    for vp in _files(_need_dir(base / "visible")):
        sid = f"roadscene/{vp.stem}"
        ip = base / "infrared" / vp.name
        if not ip.is_file() :
            continue
        ir, rgb = _gray(ip), _rgb(vp)
        if ir.shape[:2] != rgb.shape[:2]:
            ir = _resize(ir, rgb.shape[1], rgb.shape[0])
        h, w = rgb.shape[:2]
        count = max(1, round(max(h, w) / min(h, w)))
        ir_s, rgb_s = _short_side_to(ir, size), _short_side_to(rgb, size)
        for a, b in zip(_square_crops(ir_s, size, count), _square_crops(rgb_s, size, count)):
            yield Pair(sid, a, b, "roadscene")


# --------------------------------------------------------------------------------------------
# domains


#: Paired datasets per domain: name (the first component of their ids) -> reader.
PAIRED_SOURCES: dict[str, dict[str, Callable[..., Iterator[Pair]]]] = {
    "sketch": {"openmoji": openmoji_pairs, "manga": manga_pairs, "photos": photo_sketch_pairs,
               "photos2": photos2_sketch_pairs, "sketchy": sketchy_line_pairs},
    "nir": {"geolifeclef": geolifeclef_pairs, "bigearthnet": bigearthnet_pairs, "landsat": landsat_pairs,
            "nirtiles": nirtile_pairs},
    "thermal": {"roadscene": roadscene_pairs},
}
#: The datasets a pack holds unless ``datasets`` says otherwise. The sketch domain's opt-in sets
#: (``photos2``, ``sketchy``) are left out, so its default packs, and the fixed hold-out of 298
#: pairs, are what they were before those sets existed.
DEFAULT_DATASETS: dict[str, tuple[str, ...]] = {
    "sketch": ("openmoji", "manga", "photos"),
    "nir": ("geolifeclef", "bigearthnet", "landsat"),
    "thermal": ("roadscene",),
}
#: Opt-in datasets whose pairs must pass :func:`line_art_ok` (checked after the split, so the filter
#: never moves an id between train and hold-out).
LINE_ART_CHECKED = ("photos2", "sketchy")


def _check_domain(domain: str, split: str | None, size: int) -> None:
    if domain not in DOMAINS:
        raise DataError(f"unknown domain {domain!r} (use {', '.join(DOMAINS)})")
    if split is not None and split not in SPLITS:
        raise DataError(f"unknown split {split!r} (use {' or '.join(SPLITS)})")
    if not 16 <= int(size) <= 1024:
        raise DataError(f"pack size must be in 16..1024 px, got {size}")


def resolve_datasets(domain: str, datasets: str | Sequence[str] | None) -> tuple[str, ...]:
    """The dataset names of ``domain`` to read: None -> :data:`DEFAULT_DATASETS`; ``"all"`` -> every
    one; else a comma-separated string or a list of names (order kept, duplicates dropped)."""
    if domain not in DOMAINS:
        raise DataError(f"unknown domain {domain!r} (use {', '.join(DOMAINS)})")
    known = PAIRED_SOURCES[domain]
    if datasets is None:
        return DEFAULT_DATASETS[domain]
    names = [d.strip() for d in datasets.split(",")] if isinstance(datasets, str) else [str(d).strip() for d in datasets]
    names = [d for d in names if d]
    if names == ["all"]:
        return tuple(known)
    bad = [d for d in names if d not in known]
    if bad or not names:
        raise DataError(f"{domain}: unknown dataset {bad[0] if bad else '(none given)'!r} "
                        f"(use all or a comma-separated list of {', '.join(known)})")
    return tuple(dict.fromkeys(names))


def domain_pairs(domain: str, root: str | os.PathLike, split: str | None, size: int,
                 datasets: str | Sequence[str] | None = None, dropped: dict[str, int] | None = None) -> Iterator[Pair]:
    """Every paired sample of ``domain`` in ``split`` (None: both), dataset after dataset, in a fixed order.

    ``datasets``: see :func:`resolve_datasets` (default: :data:`DEFAULT_DATASETS`). Each dataset is
    read completely, then split (:func:`filter_split`: the hold-out is chosen among all of that
    dataset's ids, whatever else is read), then, for :data:`LINE_ART_CHECKED` sets, filtered with
    :func:`line_art_ok`."""
    _check_domain(domain, split, size)
    names = resolve_datasets(domain, datasets)
    root = Path(root)
    for name in names:
        if name == "nirtiles":  # its split is pixel-wise against the default sets' (nirtile_pairs)
            items = list(nirtile_pairs(root, int(size), split))
        else:
            items = list(PAIRED_SOURCES[domain][name](root, int(size)))
            if name == "sketchy" and split is not None:  # the split of the unpaired Sketchy packs
                held = sketchy_holdout(root)
                items = [it for it in items if (it.id in held) == (split == "holdout")]
            else:
                items = filter_split(items, split)
        if name in LINE_ART_CHECKED:
            kept = [it for it in items if line_art_ok(it)]
            if dropped is not None:
                dropped[name] = dropped.get(name, 0) + len(items) - len(kept)
            items = kept
        yield from items


@dataclass
class PackReport:
    """What :func:`build_domain_pack` wrote."""

    domain: str
    split: str
    size: int
    paths: list[str]
    counts: dict[str, int]
    count: int
    available: int
    bytes: int
    seconds: float
    unpaired: bool = False
    datasets: list[str] = field(default_factory=list)
    dropped: dict[str, int] = field(default_factory=dict)
    ids: list[str] = field(default_factory=list)

    def summary(self) -> str:
        per = ", ".join(f"{k} {v}" for k, v in self.counts.items())
        mb = self.bytes / 1e6
        kept = f"{self.count}" + (f" of {self.available}" if self.available != self.count else "")
        kind = "unpaired" if self.unpaired else "pairs"
        drop = "".join(f"; {v} {k} dropped (line art too dark)" for k, v in self.dropped.items() if v)
        return (
            f"{self.domain} {self.split}: {kept} {kind} of {self.size}x{self.size} ({per}{drop}); "
            f"{mb:.1f} MB in {self.seconds:.1f} s -> {', '.join(self.paths)}"
        )


def _thin(pairs: list[Pair], limit: int | None) -> list[Pair]:
    """At most ``limit`` pairs: an evenly spaced subset of each source, in proportion to its size."""
    if limit is None or len(pairs) <= limit:
        return pairs
    by_source: dict[str, list[Pair]] = {}
    for p in pairs:
        by_source.setdefault(p.source, []).append(p)
    total = len(pairs)
    quotas = {s: int(limit * len(v) / total) for s, v in by_source.items()}
    # hand out the remainder to the largest fractional parts (deterministic: ties by name)
    rest = limit - sum(quotas.values())
    order = sorted(by_source, key=lambda s: (-(limit * len(by_source[s]) / total - quotas[s]), s))
    for s in order[:rest]:
        quotas[s] += 1
    out: list[Pair] = []
    for s, v in by_source.items():
        k = min(quotas[s], len(v))
        if k > 0:
            idx = np.linspace(0, len(v) - 1, k).round().astype(int)
            out += [v[i] for i in idx]
    return out


def _progress(iterable: Iterator[Pair], desc: str, enabled: bool) -> Iterator[Pair]:
    if not enabled:
        yield from iterable
        return
    from lumachrome.progress import log_bar

    with log_bar(desc=desc, unit="pair") as bar:
        for item in iterable:
            bar.update(1)
            yield item


def _write_sidecar(path: Path, report: PackReport) -> None:
    data = asdict(report)
    atomic_write_text(path, json.dumps(data, indent=1) + "\n", error=DataError)


def _source_text(domain: str, counts: dict[str, int], root: Path) -> str:
    per = ", ".join(f"{k} {v}" for k, v in counts.items())
    return f"{per} (from {root}; research/attribution terms, see docs/domains.md; do not redistribute)"


def _sides_path(out: Path, side: str) -> Path:
    return out.with_name(f"{out.stem}-{side}{out.suffix or '.safetensors'}")


def build_domain_pack(
    domain: str,
    split: str,
    out: str | os.PathLike,
    *,
    root: str | os.PathLike,
    size: int | None = None,
    limit: int | None = -1,
    unpaired: bool = False,
    progress: bool = False,
    datasets: str | Sequence[str] | None = None,
) -> PackReport:
    """Read ``domain``'s datasets under ``root`` and write the ``split`` pack(s).

    Args:
        domain: ``sketch``, ``nir`` or ``thermal``.
        split: ``train`` or ``holdout`` (the fixed hash split of :func:`split_of`).
        out: the pack file; ``unpaired`` writes ``<stem>-A<suffix>`` and ``<stem>-B<suffix>``
            instead. A JSON sidecar (``.json`` instead of the suffix) lists ids and sources.
        size: stored side (default :data:`DEFAULT_SIZES`).
        limit: at most this many pairs (or images per side); ``-1``: the domain's default for
            ``train`` packs (:data:`DEFAULT_LIMITS`), none for ``holdout``; None: no limit.
        unpaired: CycleGAN packs (see the module doc).
        datasets: the paired datasets to read (:func:`resolve_datasets`; default
            :data:`DEFAULT_DATASETS`); not with ``unpaired`` for ``sketch``.

    Raises:
        DataError: unknown domain/split, a dataset folder missing, nothing found, unwritable output.
    """
    from lumachrome.data.domain_pack import write_domain_pack

    t0 = time.perf_counter()
    size = int(size or DEFAULT_SIZES.get(domain, 128))
    _check_domain(domain, split, size)
    if limit == -1:
        limit = DEFAULT_LIMITS[domain] if split == "train" else None
    if limit is not None and limit < 1:
        raise DataError(f"limit must be >= 1, got {limit}")
    root = Path(root)
    _need_dir(root)
    out = Path(out)
    if out.is_dir():
        raise DataError(f"{out}: is a folder; give the pack file name (e.g. {out / f'{domain}-{split}.safetensors'})")
    channels = DOMAIN_CHANNELS[domain]
    names = resolve_datasets(domain, datasets)
    if unpaired and domain == "sketch" and datasets is not None:
        raise DataError("sketch --unpaired reads the Sketchy sketches and photos; it takes no dataset list")
    dropped: dict[str, int] = {}
    try:
        if unpaired and domain == "sketch":
            a_side, b_side = sketchy_unpaired(root, size, split)
        else:
            pairs = list(_progress(domain_pairs(domain, root, split, size, names, dropped), f"{domain} {split}",
                                   progress))
            a_side = b_side = pairs
    except ImageError as e:
        raise DataError(str(e)) from None
    if not a_side or not b_side:
        raise DataError(f"{root}: no {domain} samples found for split {split!r}")
    available = max(len(a_side), len(b_side))

    if not unpaired:
        pairs = _thin(a_side, limit)
        A = np.stack([p.A for p in pairs])[:, None]
        B = np.stack([p.B for p in pairs]).transpose(0, 3, 1, 2)
        counts: dict[str, int] = {}
        for p in pairs:
            counts[p.source] = counts.get(p.source, 0) + 1
        write_domain_pack(out, A=A, B=B, domain=domain, split=split, a_channels=channels,
                          source=_source_text(domain, counts, root))  # fmt: skip
        paths, ids = [out], [p.id for p in pairs]
        n = len(pairs)
    else:
        rng = np.random.default_rng(0)
        a_keep = _thin(a_side, limit)
        b_keep = _thin(b_side, limit)
        a_keep = [a_keep[i] for i in rng.permutation(len(a_keep))]
        b_keep = [b_keep[i] for i in rng.permutation(len(b_keep))]
        A = np.stack([p.A for p in a_keep])[:, None]
        B = np.stack([p.B for p in b_keep]).transpose(0, 3, 1, 2)
        counts = {}
        for side, keep in (("A", a_keep), ("B", b_keep)):
            for p in keep:
                counts[f"{side} {p.source}"] = counts.get(f"{side} {p.source}", 0) + 1
        pa, pb = _sides_path(out, "A"), _sides_path(out, "B")
        text = _source_text(domain, counts, root) + "; unpaired"
        write_domain_pack(pa, A=A, domain=domain, split=split, a_channels=channels, source=text)
        write_domain_pack(pb, B=B, domain=domain, split=split, source=text)
        counts = dict(sorted(counts.items()))
        paths, ids = [pa, pb], [p.id for p in a_keep + b_keep]
        n = len(a_keep) + len(b_keep)
    report = PackReport(
        domain=domain,
        split=split,
        size=size,
        paths=[str(p) for p in paths],
        counts=counts,
        count=n,
        available=available if not unpaired else len(a_side) + len(b_side),
        bytes=sum(p.stat().st_size for p in paths),
        seconds=round(time.perf_counter() - t0, 2),
        unpaired=unpaired,
        datasets=[] if unpaired and domain == "sketch" else list(names),
        dropped=dropped,
        ids=ids,
    )
    _write_sidecar(out.with_suffix(".json"), report)
    return report
