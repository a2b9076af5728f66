"""Linear probes: the colour each decoder stage (and a pretrained encoder's stages) would predict.

A probe (Alain & Bengio 2016, "Understanding intermediate layers using linear classifier probes") is
a per-pixel linear map ``ab = W f + b`` from a stage's feature vector ``f`` to ``ab``, fitted
*after* training, with the network frozen. lumachrome fits one per decoder stage (``bottleneck``,
``dec.0`` ... ``dec.{D-2}``) and, for networks whose layout asks for it (a pretrained encoder such as
the EfficientNet of ``effunet``), one per encoder stage too (:meth:`Network.probe_stages`), at that
stage's own resolution, by ridge regression on standardised features.

What the probes are fitted to: the model's **own final ab** (area-averaged to the stage's grid), not
the true colours. A probe therefore answers "how much of the colour the network finally paints can
be read off linearly at this depth?", so the last column of the strip is the output itself and the
earlier ones show where colour decisions are made; the share of the output's colour each probe
reproduces (:func:`colour_explained`, measured on the explained image) puts a number on it. The fit uses a handful of scikit-image's bundled
photos (:data:`PROBE_IMAGES`, each also mirrored), never the explained image: candidates that look
like it (a correlation above 0.9 between 48x48 gray thumbnails, mirrored or not) are left out, so
the numbers are measured on an image the probes have not seen. The photos go through the network at
a long side of at most :data:`PROBE_SIDE` px (the map from features to colour does not depend on
the photo's scale), and the ridge strength of each stage is chosen by leave-one-image-out validation.

Fitting streams sufficient statistics (``sum f``, ``sum f f^T``, ``sum f ab^T``) image by image, so
memory does not grow with the number of pixels. Fitted probes are cached as ``.npz`` in the user cache
folder (:func:`cache_dir`), keyed by a hash of the weights, the working size, the temperature and the
image list; the installed package is never written to.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import cv2
import numpy as np
import torch

from lumachrome.atomic import atomic_open
from lumachrome.explain.analysis import Network, downsample_to

__all__ = [
    "PROBE_IMAGES",
    "LinearProbe",
    "ProbeSet",
    "cache_dir",
    "fit_probes",
    "load_or_fit_probes",
    "probe_images",
    "colour_explained",
    "r_squared",
]

#: scikit-image's bundled colour photos used to fit the probes (public domain / CC0 / BSD).
PROBE_IMAGES = ("astronaut", "chelsea", "coffee", "rocket", "motorcycle", "retina", "immunohistochemistry")
#: Long side (px) at which the probe photos go through the network (at most the working size): the
#: probes learn a feature -> colour map, which does not depend on the scale of the photo, and this
#: bounds the fitting cost of models with a large working size.
PROBE_SIDE = 128
#: Bump when the fitting procedure changes (invalidates caches).
PROBE_VERSION = 2
#: Thumbnail correlation above which a candidate counts as the explained image.
SAME_IMAGE_CORRELATION = 0.9


def cache_dir() -> Path:
    """``$LUMACHROME_CACHE``, else ``$XDG_CACHE_HOME/lumachrome``, else ``~/.cache/lumachrome``."""
    env = os.environ.get("LUMACHROME_CACHE")
    if env:
        return Path(env).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg).expanduser() if xdg else Path.home() / ".cache") / "lumachrome"


# -------------------------------------------------------------------------------------------
# probe images
# -------------------------------------------------------------------------------------------
def _thumb(x: np.ndarray) -> np.ndarray:
    g = x if x.ndim == 2 else x.mean(axis=2)
    t = cv2.resize(np.asarray(g, np.float32), (48, 48), interpolation=cv2.INTER_AREA).ravel()
    t = t - t.mean()
    n = float(np.linalg.norm(t))
    return t / n if n > 0 else t


def looks_like(a: np.ndarray, b: np.ndarray, threshold: float = SAME_IMAGE_CORRELATION) -> bool:
    """True when the 48x48 gray thumbnails of ``a`` and ``b`` (or ``b`` mirrored) correlate above ``threshold``."""
    ta = _thumb(a)
    for cand in (b, b[:, ::-1]):
        if float(ta @ _thumb(np.ascontiguousarray(cand))) > threshold:
            return True
    return False


def probe_images(exclude: np.ndarray | None = None, names: Sequence[str] = PROBE_IMAGES) -> list[tuple[str, np.ndarray]]:
    """``(name, float32 RGB)`` of the probe photos, without those that look like ``exclude``."""
    import skimage.data

    out = []
    for name in names:
        raw = skimage.data.stereo_motorcycle()[0] if name == "motorcycle" else getattr(skimage.data, name)()
        img = np.asarray(raw, dtype=np.float32) / 255.0
        if img.ndim == 2:
            img = np.repeat(img[:, :, None], 3, axis=2)
        img = np.ascontiguousarray(img[:, :, :3])
        if exclude is not None and looks_like(exclude, img):
            continue
        out.append((name, img))
    return out


# -------------------------------------------------------------------------------------------
# probes
# -------------------------------------------------------------------------------------------
@dataclass
class LinearProbe:
    """``ab = ((f - mean) / scale) @ weight + bias`` per pixel, for one stage."""

    stage: str
    mean: np.ndarray  # (C,)
    scale: np.ndarray  # (C,)
    weight: np.ndarray  # (C, 2), on standardised features
    bias: np.ndarray  # (2,)
    pixels: int  # training pixels

    def predict(self, feature: torch.Tensor) -> np.ndarray:
        """Feature map ``(C, h, w)`` or ``(1, C, h, w)`` -> float32 ab ``(h, w, 2)``."""
        f = feature[0] if feature.dim() == 4 else feature
        x = f.detach().float().cpu().numpy().transpose(1, 2, 0).astype(np.float64)
        ab = ((x - self.mean) / self.scale) @ self.weight + self.bias
        return ab.astype(np.float32)


@dataclass
class ProbeSet:
    """Probes of every probed stage (:meth:`Network.probe_stages`, forward order) and how they were made."""

    probes: dict[str, LinearProbe]
    images: list[str]
    ridges: dict[str, float] = field(default_factory=dict)
    cache_path: Path | None = None
    from_cache: bool = False
    notes: list[str] = field(default_factory=list)

    def stages(self) -> list[str]:
        return list(self.probes)


#: Ridge strengths tried per stage; the one with the lowest leave-one-image-out error is kept.
RIDGE_GRID = (1e-3, 1e-2, 1e-1, 1.0, 10.0, 100.0)


def _views(img: np.ndarray) -> list[np.ndarray]:
    """The image, mirrored, and its central 60% (zoomed in ~1.7x), mirrored too: more scales per photo."""
    h, w = img.shape[:2]
    dy, dx = int(round(h * 0.2)), int(round(w * 0.2))
    crop = np.ascontiguousarray(img[dy : h - dy, dx : w - dx])
    return [img, np.ascontiguousarray(img[:, ::-1]), crop, np.ascontiguousarray(crop[:, ::-1])]


def _augmented_stats(X: np.ndarray, Y: np.ndarray) -> dict[str, np.ndarray]:
    Z = np.concatenate([X, np.ones((X.shape[0], 1))], axis=1)
    return {"zz": Z.T @ Z, "zy": Z.T @ Y, "yy": np.einsum("ij,ij->j", Y, Y)}


def _solve(zz: np.ndarray, zy: np.ndarray, ridge: float) -> np.ndarray:
    """Ridge on standardised features from augmented sums (last row/column: the constant 1).

    Returns ``beta (C+1, 2)`` in raw feature units (``ab = [f, 1] @ beta``).
    """
    n = zz[-1, -1]
    mu = zz[:-1, -1] / n
    ybar = zy[-1] / n
    cov = zz[:-1, :-1] / n - np.outer(mu, mu)
    std = np.sqrt(np.clip(np.diag(cov), 0.0, None))
    scale = np.where(std > 1e-6, std, 1.0)
    cs = cov / np.outer(scale, scale)
    cross = (zy[:-1] / n - np.outer(mu, ybar)) / scale[:, None]
    ws = np.linalg.solve(cs + ridge * np.eye(cs.shape[0]), cross)
    w = ws / scale[:, None]
    return np.concatenate([w, (ybar - mu @ w)[None]], axis=0)


def _sse(st: dict[str, np.ndarray], beta: np.ndarray) -> float:
    """Sum of squared errors of ``[f, 1] @ beta`` on the pixels summarised by ``st``."""
    return float(st["yy"].sum() - 2.0 * np.sum(beta * st["zy"]) + np.sum(beta * (st["zz"] @ beta)))


def fit_probes(
    net: Network,
    network_input: Callable[[np.ndarray], np.ndarray],
    images: Sequence[tuple[str, np.ndarray]],
    *,
    ridges: Sequence[float] = RIDGE_GRID,
) -> ProbeSet:
    """Fit one linear probe per probed stage on ``images`` (each seen in 4 views, see :func:`_views`).

    The ridge strength of each stage is chosen from ``ridges`` by leave-one-image-out validation
    over the probe images (all views of an image are left out together), then the probe is refitted
    on all of them.

    Args:
        net: the network.
        network_input: ``rgb -> raw L (h, w)`` at the working resolution (``Colorizer.network_input``).
        images: ``(name, float RGB)`` pairs (at least 2 for the validation).
        ridges: candidate ridge strengths (on standardised features).
    """
    stages = net.probe_stages()
    per_image: list[dict[str, dict[str, np.ndarray]]] = []
    for _name, img in images:
        acc: dict[str, dict[str, np.ndarray]] = {}
        for view in _views(img):
            L = torch.from_numpy(network_input(view))[None, None]
            p = net.run(L, stages)
            for stage in stages:
                f = p.features[stage]
                y = downsample_to(p.ab, tuple(f.shape[-2:]))
                X = f[0].reshape(f.shape[1], -1).T.double().cpu().numpy()
                Y = y[0].reshape(2, -1).T.double().cpu().numpy()
                st = _augmented_stats(X, Y)
                if stage in acc:
                    for k in st:
                        acc[stage][k] = acc[stage][k] + st[k]
                else:
                    acc[stage] = st
        per_image.append(acc)
    probes, chosen = {}, {}
    for stage in stages:
        total = {k: sum(pi[stage][k] for pi in per_image) for k in ("zz", "zy", "yy")}
        best = (math.inf, ridges[len(ridges) // 2])
        if len(per_image) >= 2 and len(ridges) > 1:
            for r in ridges:
                err = 0.0
                for pi in per_image:
                    rest = {k: total[k] - pi[stage][k] for k in ("zz", "zy")}
                    err += _sse(pi[stage], _solve(rest["zz"], rest["zy"], r))
                if err < best[0]:
                    best = (err, r)
        ridge = best[1]
        beta = _solve(total["zz"], total["zy"], ridge)
        c = beta.shape[0] - 1
        probes[stage] = LinearProbe(stage, np.zeros(c), np.ones(c), beta[:-1], beta[-1], int(total["zz"][-1, -1]))
        chosen[stage] = ridge
    return ProbeSet(probes=probes, images=[n for n, _ in images], ridges=chosen)


def colour_explained(pred: np.ndarray, target: np.ndarray) -> float:
    """Share of the target's colour a prediction reproduces: ``1 - sum |p - t|^2 / sum |t|^2`` over ab.

    Measured against gray (ab = 0), not against the image's mean colour as R^2 is: a prediction of
    gray scores 0, the target itself 1, a prediction adding colour that is not there below 0. Unlike
    R^2 it stays meaningful for images of nearly uniform colour. nan when the target is gray.
    """
    t = target.reshape(-1, 2).astype(np.float64)
    p = pred.reshape(-1, 2).astype(np.float64)
    energy = float((t**2).sum())
    if energy < 1e-6 * t.shape[0]:
        return float("nan")
    return 1.0 - float(((t - p) ** 2).sum()) / energy


def r_squared(pred: np.ndarray, target: np.ndarray) -> float:
    """``1 - SS_res / SS_tot`` over both ab channels (nan when the target is constant)."""
    t = target.reshape(-1, 2).astype(np.float64)
    p = pred.reshape(-1, 2).astype(np.float64)
    ss_tot = float(((t - t.mean(0)) ** 2).sum())
    if ss_tot < 1e-9 * t.shape[0]:
        return float("nan")
    return 1.0 - float(((t - p) ** 2).sum()) / ss_tot


def _model_digest(model: torch.nn.Module) -> str:
    h = hashlib.sha256()
    for k, v in sorted(model.state_dict().items()):
        h.update(k.encode())
        h.update(str(tuple(v.shape)).encode())
        h.update(v.detach().to("cpu").contiguous().numpy().tobytes())
    return h.hexdigest()


def _save_npz(path: Path, ps: ProbeSet) -> None:
    arrays: dict[str, np.ndarray] = {}
    for s, p in ps.probes.items():
        for k in ("mean", "scale", "weight", "bias"):
            arrays[f"{s}|{k}"] = getattr(p, k)
        arrays[f"{s}|pixels"] = np.array(p.pixels)
    meta = json.dumps({"stages": list(ps.probes), "images": ps.images, "ridges": ps.ridges, "version": PROBE_VERSION})
    arrays["meta"] = np.frombuffer(meta.encode(), dtype=np.uint8)
    with atomic_open(path, "wb", error=None, suffix=".npz") as f:
        np.savez(f, **arrays)


def _load_npz(path: Path) -> ProbeSet | None:
    try:
        with np.load(path) as z:
            meta = json.loads(bytes(z["meta"]).decode())
            probes = {
                s: LinearProbe(s, z[f"{s}|mean"], z[f"{s}|scale"], z[f"{s}|weight"], z[f"{s}|bias"], int(z[f"{s}|pixels"]))
                for s in meta["stages"]
            }
    except Exception:  # noqa: BLE001 - a broken cache entry is refitted
        return None
    return ProbeSet(probes=probes, images=list(meta["images"]), ridges={k: float(v) for k, v in meta["ridges"].items()},
                    cache_path=path, from_cache=True)


def load_or_fit_probes(
    net: Network,
    network_input: Callable[[np.ndarray], np.ndarray],
    *,
    size: int,
    exclude: np.ndarray | None = None,
    cache: Path | None | bool = None,
) -> ProbeSet:
    """Probes for ``net`` at working size ``size``: from the cache when present, else fitted and cached.

    ``cache``: a folder, None (the default :func:`cache_dir`) or False (no caching).
    """
    images = probe_images(exclude)
    key = hashlib.sha256(
        json.dumps(
            {"model": _model_digest(net.model), "size": size, "t": net.temperature, "images": [n for n, _ in images],
             "ridges": list(RIDGE_GRID), "version": PROBE_VERSION}, sort_keys=True,
        ).encode()
    ).hexdigest()[:24]  # fmt: skip
    path = None if cache is False else (Path(cache) if cache not in (None, True) else cache_dir()) / "probes" / f"{key}.npz"
    if path is not None and path.is_file():
        ps = _load_npz(path)
        if ps is not None and ps.stages() == net.probe_stages():
            return ps
    ps = fit_probes(net, network_input, images)
    if path is not None:
        try:
            _save_npz(path, ps)
            ps.cache_path = path
        except OSError as e:
            ps.notes.append(f"probe cache not written ({path.parent}: {e.strerror or e})")
    return ps
