"""The work behind the web app, without any web framework: models, limits, the job queue, results.

:class:`Engine` is what :mod:`lumachrome.app.server` calls. Everything here is plain Python so it is
testable without HTTP:

* :meth:`Engine.models` lists the shipped models (``lumachrome.models.io.shipped_model_dirs``):
  colorizers (``photo``, ``photo-hints``, ...) and image translation models (``task: translate`` in
  ``config.json``: sketch, nir, thermal, ...); each loads through :func:`lumachrome.pipeline.load_pipeline`.
* :meth:`Engine.upload` checks and stores one upload (size limit, pixel limit from the header, a
  full decode), returns its id, size and a preview; :meth:`Engine.colorize` runs one job on a
  stored upload: optional restoration, colorization (with colour hints for hint models, the
  reference / palette correction of the historical pipeline), optional explain view; it writes the
  full-resolution PNG and two same-size previews (input and result) for the before/after slider.
* :class:`JobQueue`: at most ``workers`` jobs run at once (each may need about 30 bytes per pixel
  of memory); at most ``queue_size`` wait, further requests are refused at once with a clear
  message instead of piling up until the machine runs out of memory.
"""

from __future__ import annotations

import json
import re
import secrets
import shutil
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from lumachrome.atomic import atomic_write_bytes, atomic_write_text
from lumachrome.errors import ConfigError, ImageError, LumachromeError, ModelError
from lumachrome.restore.pipeline import RESTORE_STEPS

__all__ = ["AppConfig", "Busy", "Engine", "JobQueue", "RESTORE_STEPS", "UploadGate", "check_json_shape",
           "parse_hints_field"]

MB = 1024 * 1024
#: Form fields besides the files may add this much to a request.
FORM_SLACK = 1024 * 1024
_ID = re.compile(r"^[0-9a-f]{16}$")
_FILE = re.compile(r"^[A-Za-z0-9_.-]+$")
#: The only files ``/files/<id>/...`` serves, with the media type the server sends for them: the
#: previews and the result it wrote itself, and the explain view. Uploads, references and palettes
#: are never served back (a file named ``x.html`` must not become a page of this origin).
SERVED_FILES = {"input.jpg": "image/jpeg", "result.jpg": "image/jpeg", "result.png": "image/png"}
SERVED_EXPLAIN_TYPES = {".png": "image/png", ".html": "text/html; charset=utf-8", ".json": "application/json"}
#: Stored uploads are named ``source<ext>`` after the format the decoder found, never the client's name.
_FORMAT_EXT = {"JPEG": ".jpg", "MPO": ".jpg", "PNG": ".png", "WEBP": ".webp", "TIFF": ".tif", "BMP": ".bmp",
               "GIF": ".gif", "PPM": ".ppm"}


#: The hints form field: at most this many characters (~2,700 hints as JSON) and hints.
MAX_HINTS_CHARS = 100_000
MAX_HINTS = 1000
#: JSON nesting accepted before parsing (hints need 2 levels, palettes 5): Python's parser recurses,
#: and ``[[[[...`` 100,000 deep raised RecursionError (a 500) instead of a clear 400.
MAX_HINTS_DEPTH = 4
MAX_PALETTE_DEPTH = 16
_JSON_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"')


def check_json_shape(text: str | bytes, what: str, *, max_depth: int, max_chars: int | None = None) -> None:
    """ConfigError (one line) when ``text`` is longer than ``max_chars`` or its brackets nest deeper than
    ``max_depth``: checked without parsing (no recursion), in linear time."""
    data = text.encode("utf-8", "surrogatepass") if isinstance(text, str) else bytes(text)
    if max_chars is not None and len(data) > max_chars:
        raise ConfigError(f"{what}: too long ({len(data):,} bytes; at most {max_chars:,})")
    codes = np.frombuffer(_JSON_STRING.sub(b'""', data), dtype=np.uint8)
    step = ((codes == ord("[")) | (codes == ord("{"))).astype(np.int32)
    step -= (codes == ord("]")) | (codes == ord("}"))
    depth = int(np.cumsum(step).max()) if step.size else 0
    if depth > max_depth:
        raise ConfigError(f"{what}: JSON nested too deeply ({depth} levels; at most {max_depth})")


class Busy(LumachromeError):
    """The job queue or the upload budget is full (or a job waited too long): try again later.

    ``retry_after``: seconds a client should wait (the HTTP ``Retry-After`` header)."""

    def __init__(self, message: str, retry_after: int = 30) -> None:
        super().__init__(message)
        self.retry_after = retry_after


@dataclass
class AppConfig:
    """Limits and settings of one server.

    ``max_upload_mb``: largest accepted upload (each file; the whole request may add 1 MB of form
    fields). ``max_pixels``: largest image (checked from the header before decoding). ``workers``:
    jobs run at once; ``queue_size``: jobs allowed to wait; ``wait_s``: longest wait in the queue.
    ``keep``: uploads/results kept (oldest removed first). ``device``: torch device of the models.
    ``max_buffered_mb``: request bodies held in memory at once, all requests together (default:
    ``workers + 3`` full-size requests); at most ``workers + queue_size`` requests are received at once.
    ``preview_side``: long side of the previews shown in the page. ``root``: folder for uploads and
    results (default: a new temporary folder, removed at shutdown). ``host``: the address the server
    listens on and ``allowed_hosts``: further names it answers to (``"*"``: any), for the Host and
    Origin check (:class:`lumachrome.app.server.HostPolicy`).
    """

    max_upload_mb: float = 25.0
    max_pixels: int = 50_000_000
    workers: int = 1
    queue_size: int = 32
    wait_s: float = 300.0
    keep: int = 64
    device: str = "cpu"
    preview_side: int = 1024
    root: str | None = None
    #: Further model folders offered besides the shipped ones: ``{name: folder}``.
    extra_models: dict[str, str] = field(default_factory=dict)
    host: str = "127.0.0.1"
    allowed_hosts: list[str] = field(default_factory=list)
    max_buffered_mb: float | None = None

    @property
    def max_upload_bytes(self) -> int:
        return int(self.max_upload_mb * MB)

    @property
    def max_request_bytes(self) -> int:
        """Largest request body: one upload plus 1 MB of other form fields."""
        return self.max_upload_bytes + FORM_SLACK

    @property
    def max_buffered_bytes(self) -> int:
        if self.max_buffered_mb is not None:
            return int(self.max_buffered_mb * MB)
        return (self.workers + 3) * self.max_request_bytes


class JobQueue:
    """At most ``workers`` jobs at once, at most ``queue_size`` waiting (:class:`Busy` beyond)."""

    def __init__(self, workers: int, queue_size: int, wait_s: float) -> None:
        if workers < 1 or queue_size < 0:
            raise ConfigError(f"queue: workers must be >= 1 and queue size >= 0, got {workers}, {queue_size}")
        self._slots = threading.BoundedSemaphore(workers)
        self._lock = threading.Lock()
        self.waiting = 0
        self.running = 0
        self.queue_size = queue_size
        self.wait_s = wait_s

    def __enter__(self) -> "JobQueue":
        if self._slots.acquire(blocking=False):  # a free worker: no waiting
            with self._lock:
                self.running += 1
            return self
        with self._lock:
            if self.waiting >= self.queue_size:
                raise Busy(f"server busy: {self.waiting} jobs already waiting, try again in a minute", retry_after=60)
            self.waiting += 1
        got = self._slots.acquire(timeout=self.wait_s)
        with self._lock:
            self.waiting -= 1
            if got:
                self.running += 1
        if not got:
            raise Busy(f"server busy: waited {self.wait_s:.0f} s for a free worker, try again later", retry_after=60)
        return self

    def __exit__(self, *exc: Any) -> None:
        with self._lock:
            self.running -= 1
        self._slots.release()


class UploadGate:
    """Request bodies being received and held: at most ``max_active`` requests and ``max_bytes`` in all.

    A request body is buffered before its job reaches the :class:`JobQueue`, so without this
    16 parallel 24 MB uploads held ~750 MB however small the queue. :meth:`reserve` takes a request's
    declared size (or the largest allowed when it declares none) before anything is read, and raises
    :class:`Busy` at once when it does not fit; :meth:`release` gives it back when the request ends.
    """

    def __init__(self, max_bytes: int, max_active: int) -> None:
        self.max_bytes = max_bytes
        self.max_active = max(1, max_active)
        self.active = 0
        self.bytes = 0
        self._lock = threading.Lock()

    def reserve(self, n_bytes: int) -> int:
        with self._lock:
            if self.active >= self.max_active or self.bytes + n_bytes > self.max_bytes:
                raise Busy(f"server busy: {self.active} uploads in progress ({self.bytes / MB:.0f} MB), "
                           "try again in a few seconds", retry_after=5)
            self.active += 1
            self.bytes += n_bytes
        return n_bytes

    def release(self, n_bytes: int) -> None:
        with self._lock:
            self.active -= 1
            self.bytes -= n_bytes

    def status(self, request_bytes: int) -> dict[str, Any]:
        return {"active": self.active, "buffered_mb": round(self.bytes / MB, 3), "max_active": self.max_active,
                "limit_mb": round(self.max_bytes / MB, 3), "request_limit_mb": round(request_bytes / MB, 3)}


def parse_hints_field(text: str | None) -> list:
    """Hints from a form field: JSON ``[{"x": .., "y": .., "color": "#rrggbb"}, ...]`` or
    ``"x,y,#rrggbb; x,y,#rrggbb"`` (the CLI syntax, ``;``-separated). Empty -> ``[]``."""
    from lumachrome.hints import parse_hint

    text = (text or "").strip()
    if not text:
        return []
    check_json_shape(text, "hints", max_depth=MAX_HINTS_DEPTH, max_chars=MAX_HINTS_CHARS)
    if text.startswith("["):
        try:
            items = json.loads(text)
        except (ValueError, RecursionError) as e:
            raise ConfigError(f"hints: not valid JSON ({e})") from None
        if not isinstance(items, list):
            raise ConfigError("hints: expected a JSON list of {\"x\", \"y\", \"color\"} objects")
        if len(items) > MAX_HINTS:
            raise ConfigError(f"hints: {len(items)} hints (at most {MAX_HINTS})")
        hints = []
        for i, it in enumerate(items):
            if not isinstance(it, dict) or not {"x", "y", "color"} <= set(it):
                raise ConfigError(f"hints[{i}]: expected an object with x, y and color")
            hints.append(parse_hint(f"{it['x']},{it['y']},{it['color']}"))
        return hints
    parts = [part for part in text.split(";") if part.strip()]
    if len(parts) > MAX_HINTS:
        raise ConfigError(f"hints: {len(parts)} hints (at most {MAX_HINTS})")
    return [parse_hint(part) for part in parts]


@dataclass
class _ModelInfo:
    name: str
    kind: str  # "colorize" or "translate"
    hints: bool
    size: int
    description: str = ""
    flat: bool = False  # flat-fill output available (line-art models: domain "sketch")


@dataclass
class Engine:
    """Models, stored uploads and results of one server (see the module docstring)."""

    config: AppConfig = field(default_factory=AppConfig)

    def __post_init__(self) -> None:
        self.root = Path(self.config.root or tempfile.mkdtemp(prefix="lumachrome-app-"))
        self.root.mkdir(parents=True, exist_ok=True)
        self._own_root = self.config.root is None
        self.queue = JobQueue(self.config.workers, self.config.queue_size, self.config.wait_s)
        self.uploads = UploadGate(self.config.max_buffered_bytes, self.config.workers + self.config.queue_size)
        self._models: dict[str, Any] = {}
        self._model_lock = threading.Lock()
        self._store_lock = threading.Lock()

    # ------------------------------------------------------------------ models
    def models(self) -> list[dict[str, Any]]:
        """The models offered in the page: name, kind (colorize / translate), hint input, working size."""
        from lumachrome.models.io import shipped_model_dirs

        folders = shipped_model_dirs()
        folders.update({name: Path(p) for name, p in self.config.extra_models.items()})
        out = []
        for name, folder in folders.items():
            try:
                cfg = json.loads((folder / "config.json").read_text(encoding="utf-8"))
            except (OSError, ValueError):
                continue
            kind = "translate" if cfg.get("task") == "translate" else "colorize"
            args = cfg.get("args") or {}
            out.append(_ModelInfo(name, kind, bool(args.get("hint_channels")),
                                  int((cfg.get("preprocessing") or {}).get("size", 256)),
                                  str(cfg.get("description") or ""),
                                  kind == "translate" and cfg.get("domain") == "sketch").__dict__)
        return out

    def default_model(self) -> str | None:
        names = [m["name"] for m in self.models()]
        for pick in ("photo-hints", "photo"):
            if pick in names:
                return pick
        return names[0] if names else None

    def _load(self, name: str):
        with self._model_lock:
            if name not in self._models:
                info = {m["name"]: m for m in self.models()}.get(name)
                if info is None:
                    shipped = ", ".join(m["name"] for m in self.models()) or "none"
                    raise ModelError(f"unknown model {name!r} (available: {shipped})")
                from lumachrome.pipeline import load_pipeline

                self._models[name] = load_pipeline(self._source(name), self.config.device, task=info["kind"])
            return self._models[name]

    def _source(self, name: str) -> Any:
        extra = self.config.extra_models.get(name)
        return Path(extra) if extra is not None else name

    def _hint_model_for(self, name: str) -> str:
        """``name`` if it takes hints, else ``<name>-hints`` when that exists (ConfigError otherwise)."""
        infos = {m["name"]: m for m in self.models()}
        if name in infos and infos[name]["hints"]:
            return name
        alt = f"{name}-hints"
        if alt in infos and infos[alt]["hints"]:
            return alt
        raise ConfigError(f"model {name!r} takes no colour hints (choose a hint model, e.g. photo-hints)")

    # ------------------------------------------------------------------ storage
    def _new_dir(self) -> tuple[str, Path]:
        uid = secrets.token_hex(8)
        path = self.root / uid
        path.mkdir()
        self._prune()
        return uid, path

    def _prune(self) -> None:
        with self._store_lock:
            dirs = sorted((p for p in self.root.iterdir() if p.is_dir()), key=lambda p: p.stat().st_mtime)
            for p in dirs[: max(0, len(dirs) - self.config.keep)]:
                shutil.rmtree(p, ignore_errors=True)

    def path_of(self, uid: str, name: str) -> tuple[Path, str]:
        """A servable stored file ``<root>/<uid>/<name>`` and its media type (``name`` is one of
        :data:`SERVED_FILES` or ``explain/<file>``); ImageError if absent or not servable."""
        parts = name.split("/")
        ok = _ID.match(uid) and parts and all(_FILE.match(p) and p not in (".", "..") for p in parts)
        media = None
        if ok and len(parts) == 1:
            media = SERVED_FILES.get(parts[0])
        elif ok and parts[0] == "explain":
            media = SERVED_EXPLAIN_TYPES.get(Path(parts[-1]).suffix.lower())
        if media is None:
            raise ImageError(f"no such file: {uid}/{name}")
        path = self.root / uid / Path(*parts)
        if not path.is_file():
            raise ImageError(f"no such file: {uid}/{name} (results are kept for the last {self.config.keep} jobs)")
        return path, media

    def download_name(self, uid: str) -> str:
        """The file name offered for ``<uid>/result.png`` (``<upload's name>_color.png``)."""
        try:
            return str(json.loads((self.root / uid / "result.json").read_text(encoding="utf-8"))["download_name"])
        except (OSError, ValueError, KeyError, TypeError):
            return "result.png"

    def _upload_dir(self, uid: str) -> Path:
        if not _ID.match(uid or "") or not (self.root / uid / "upload.json").is_file():
            raise ImageError(f"upload {uid!r} not found (uploads are kept for the last {self.config.keep} jobs): upload it again")
        return self.root / uid

    # ------------------------------------------------------------------ jobs
    def check_upload_size(self, n_bytes: int, what: str = "upload") -> None:
        if n_bytes > self.config.max_upload_bytes:
            raise ImageError(f"{what} too large: {n_bytes / MB:.1f} MB (limit {self.config.max_upload_mb:g} MB)")
        if n_bytes == 0:
            raise ImageError(f"{what} is empty (0 bytes)")

    def _decode(self, path: Path, what: str):
        """The decoded image and the format its header names (``"PNG"``, ``"JPEG"``, ...)."""
        from lumachrome.imageio import load_image, probe_image

        try:  # the pixel limit is checked from the header, before decoding (one message for every size)
            probe = probe_image(path, max_pixels=self.config.max_pixels)
            return load_image(path, max_pixels=self.config.max_pixels), str(probe.format or "")
        except ImageError as e:
            raise ImageError(str(e).replace(str(path), repr(what))) from None

    def upload(self, data: bytes, filename: str = "upload") -> dict[str, Any]:
        """Check and store one image upload; returns ``{id, width, height, preview, was_gray}``."""
        self.check_upload_size(len(data), f"{filename!r}")
        with self.queue:
            uid, folder = self._new_dir()
            try:
                # the client's file name is only shown, never used on disk: the stored name and its
                # extension come from the format the decoder found
                tmp = atomic_write_bytes(folder / "source.upload", data)
                image, fmt = self._decode(tmp, filename)
                src = tmp.rename(folder / f"source{_FORMAT_EXT.get(fmt, '.img')}")
                h, w = image.rgb.shape[:2]
                self._save_preview(folder / "input.jpg", image.rgb)
                meta = {"filename": filename, "source": src.name, "format": fmt, "width": w, "height": h,
                        "was_gray": image.was_gray}
                atomic_write_text(folder / "upload.json", json.dumps(meta))
            except BaseException:
                shutil.rmtree(folder, ignore_errors=True)
                raise
        return {"id": uid, "width": w, "height": h, "was_gray": bool(image.was_gray),
                "preview": f"/files/{uid}/input.jpg", "filename": filename}

    def colorize(
        self,
        upload_id: str,
        *,
        model: str | None = None,
        hints: Sequence[Any] = (),
        restore: bool = False,
        restore_skip: Sequence[str] = (),
        reference: bytes | None = None,
        palette: bytes | None = None,
        transfer: str | None = None,
        strength: float = 1.0,
        colour: float = 1.0,
        explain: bool = False,
        flat: bool = False,
    ) -> dict[str, Any]:
        """Run one job on a stored upload; returns the result's URLs and what was done.

        ``flat``: line-art (sketch) models only: one flat colour per region between the lines
        (:mod:`lumachrome.flatfill`).

        ``colour`` multiplies the colorizer's chroma (1: the model's own, 0: gray), after any
        reference/palette correction and before hints are pinned; translation models ignore it.
        """
        folder = self._upload_dir(upload_id)
        meta = json.loads((folder / "upload.json").read_text())
        name = model or self.default_model()
        if name is None:
            raise ModelError("no models are installed (lumachrome/weights/ is empty)")
        infos = {m["name"]: m for m in self.models()}
        if name not in infos:
            raise ModelError(f"unknown model {name!r} (available: {', '.join(infos) or 'none'})")
        if hints and infos[name]["kind"] == "colorize":
            name = self._hint_model_for(name)
        elif hints:
            raise ConfigError(f"model {name!r} ({infos[name]['kind']}) takes no colour hints")
        if flat and not infos[name].get("flat"):
            raise ConfigError(f"flat colours are for line-art (sketch) models, not {name!r}")
        if not 0.0 <= strength <= 1.0:
            raise ConfigError(f"strength must be in [0, 1], got {strength}")
        if not 0.0 <= colour <= 3.0:
            raise ConfigError(f"colour must be in [0, 3] (1 = the model's colour), got {colour}")
        bad = [s for s in restore_skip if s not in RESTORE_STEPS]
        if bad:
            raise ConfigError(f"restore: unknown step(s) {', '.join(bad)} (use {', '.join(RESTORE_STEPS)})")
        for label, blob in (("reference", reference), ("palette", palette)):
            if blob is not None:
                self.check_upload_size(len(blob), label)
        t0 = time.perf_counter()
        with self.queue:
            t_wait = time.perf_counter() - t0
            uid, out = self._new_dir()
            image, _ = self._decode(folder / meta["source"], meta["filename"])
            if hints:
                from lumachrome.hints import check_hints

                check_hints(hints, *image.rgb.shape[:2])
            x = image.rgb
            steps = []
            if restore:
                from lumachrome.restore.pipeline import restorer_without

                restorer = restorer_without(restore_skip)
                x = restorer(x)
                steps = [str(st) for st in restorer.last.steps] if restorer.last is not None else []
            runner = self._load(name)
            notes: list[str] = []
            if infos[name]["kind"] == "translate":
                rgb = _translate(runner, x, flat=flat, notes=notes)  # notes: why a cluttered drawing was not filled
            else:
                correction = self._correction(out, reference, palette, transfer, strength)
                if colour != 1.0:
                    correction = _scaled(correction, colour)
                rgb = runner.colorize_array(x, ab_transform=correction, hints=list(hints) or None, out=None)
            rgb = np.clip(rgb, 0.0, 1.0)
            from lumachrome.imageio import save_image

            save_image(out / "result.png", rgb)
            self._save_preview(out / "result.jpg", rgb)
            atomic_write_bytes(out / "input.jpg", (folder / "input.jpg").read_bytes())
            download_name = Path(meta["filename"]).stem + "_color.png"
            atomic_write_text(out / "result.json", json.dumps({"download_name": download_name}))
            result: dict[str, Any] = {
                "id": uid, "model": name, "width": int(rgb.shape[1]), "height": int(rgb.shape[0]),
                "hints": [{"x": h.x, "y": h.y, "color": h.hex} for h in hints],
                "restore_steps": steps, "notes": notes,
                "result": f"/files/{uid}/result.png", "preview": f"/files/{uid}/result.jpg",
                "input_preview": f"/files/{uid}/input.jpg",
                "download_name": download_name,
            }
            if explain:
                result["explain"] = self._explain(uid, out, x, runner, infos[name]["kind"])
            result["seconds"] = round(time.perf_counter() - t0 - t_wait, 3)
            result["queued_seconds"] = round(t_wait, 3)
        return result

    # ------------------------------------------------------------------ helpers
    def _correction(self, out: Path, reference: bytes | None, palette: bytes | None, transfer: str | None,
                    strength: float):
        if reference is None and palette is None:
            if transfer:
                raise ConfigError("transfer method given without a reference image or a palette")
            return None
        from lumachrome.restore.pipeline import build_correction
        from lumachrome.transfer import METHODS

        if transfer and transfer not in METHODS:
            raise ConfigError(f"transfer {transfer!r}: use one of {', '.join(METHODS)}")
        refs = None
        if reference is not None:
            ref_path = atomic_write_bytes(out / "reference.upload", reference)
            refs = [self._decode(ref_path, "reference image")[0].rgb]
        pal = None
        if palette is not None:
            from lumachrome.transfer.palette import Palette

            check_json_shape(palette, "palette", max_depth=MAX_PALETTE_DEPTH)
            pal_path = atomic_write_bytes(out / "palette.json", palette)
            try:
                pal = Palette.load(pal_path)
            except LumachromeError as e:  # its messages start with the (server's) path
                raise ConfigError(str(e).replace(str(pal_path), "palette")) from None
            except Exception as e:  # noqa: BLE001 - any malformed JSON
                raise ConfigError(f"palette: not a lumachrome palette file ({e})") from None
        if transfer == "exemplar" and refs is None:
            raise ConfigError("the exemplar method needs a reference image")
        return build_correction(refs, pal, method=transfer or None, strength=strength)

    def _explain(self, uid: str, out: Path, x: np.ndarray, runner: Any, kind: str) -> dict[str, Any]:
        """The explain view (``lumachrome.explain.explain_image``) when that module provides it."""
        try:
            from lumachrome.explain import explain_image  # type: ignore[attr-defined]
        except ImportError:
            return {"available": False, "message": "the explain view is not installed in this version"}
        if kind != "colorize":
            return {"available": False, "message": "the explain view is for colorization models"}
        index = Path(explain_image(x, runner, out / "explain"))
        rel = index.relative_to(out).as_posix()
        figures = sorted(p.relative_to(out).as_posix() for p in (out / "explain").rglob("*.png"))
        return {"available": True, "index": f"/files/{uid}/{rel}", "figures": [f"/files/{uid}/{f}" for f in figures]}

    def _save_preview(self, path: Path, rgb: np.ndarray) -> None:
        import cv2

        from lumachrome.imageio import save_image

        h, w = rgb.shape[:2]
        s = min(1.0, self.config.preview_side / max(h, w))
        small = rgb if s >= 1.0 else cv2.resize(rgb, (max(1, round(w * s)), max(1, round(h * s))),
                                                interpolation=cv2.INTER_AREA)
        save_image(path, np.clip(small, 0, 1), quality=90)

    def close(self) -> None:
        if self._own_root:
            shutil.rmtree(self.root, ignore_errors=True)


def _scaled(correction: Any, factor: float):
    """An ``ab_transform`` that applies ``correction`` (or nothing) and then multiplies ab by ``factor``."""
    f = np.float32(factor)

    def transform(L: np.ndarray, ab: np.ndarray) -> np.ndarray:
        return (correction(L, ab) if correction is not None else ab) * f

    return transform



def _translate(translator: Any, x: np.ndarray, flat: bool = False, notes: list[str] | None = None) -> np.ndarray:
    """Run a :class:`lumachrome.translate.Translator` on a float image: its uint8 RGB as float32 in [0, 1]
    (the range the page's results are saved from; 0..255 floats were clipped to an all-white image).
    ``flat``: the flat-fill output of line-art models, for clean line art (else a line in ``notes``)."""
    out = translator.translate_array(x, flat=True, notes=notes) if flat else translator.translate_array(x)
    return np.asarray(out, dtype=np.float32) / 255.0
