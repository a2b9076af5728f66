"""The archive engine: colorize a directory tree of any size, resumably, on one or many processes.

``lumachrome colorize TREE -o OUT --archive`` (and every ``colorize`` started by ``torchrun``) runs
here instead of the plain per-file loop of :mod:`lumachrome.cli`:

* **Streaming walk** (:func:`archive_jobs`): ``os.scandir`` one folder at a time, entries sorted by
  name, depth first, hidden files and folders skipped, symbolic links to folders not followed (as
  :func:`lumachrome.imageio.iter_image_files`, same order), the output folder skipped when it lies
  inside the tree. A symbolic link loop named like an image is a job like any other: reading it
  fails, so it is reported on one line and recorded as an ``error`` row while the rest goes on.
  Only the listing of the folder being walked (and of its parents) is in memory,
  never the whole file list. Each image gets its **index** in this sorted stream.
* **Mirrored outputs**: ``TREE/a/b.jpg -> OUT/a/b.jpg`` (extension: ``--ext``, else the input's when
  writable, else ``.png``), the ``colorize`` naming rules. Two files of a folder that map to the same
  output (``a.jpg`` and ``a.png`` with ``--ext png``) are detected per folder; the second is an error.
* **Deterministic split across ranks** (:func:`shard`): rank ``r`` of ``world`` takes the images with
  ``index % world == r``. The index does not depend on the number of processes, so a rerun with
  another world size splits the same stream differently but consistently.
* **Resume**: an image whose output exists is done (outputs are written atomically by
  :func:`lumachrome.imageio.save_image`: an existing output is complete), unless ``--overwrite``.
  A run killed at any point and started again finishes with every output exactly once.
* **Manifests**: each rank appends one JSON line per image it processed to its own part
  ``OUT/manifest.rank-RRRRR.jsonl`` (``flush`` + ``fsync`` per line)::

      {"input": "TREE/a/b.jpg", "output": "OUT/a/b.jpg", "rel": "a/b.jpg", "index": 17,
       "model": "photo", "status": "ok", "seconds": 0.081, "rank": 1, "time": 1764142000.1}

  ``status`` is ``ok`` or ``error`` (with an ``error`` message); ``seconds`` is this image's decode +
  its share of the batched network call + join + encode. When every rank has finished, rank 0
  merges (:func:`merge_manifests`) the previous ``OUT/manifest.jsonl`` and all parts (whatever
  world size wrote them) into a new ``manifest.jsonl`` with **exactly one row per image of the
  tree**, in stream order: the latest row of each image, ``skipped`` for an output that existed
  without a record, ``missing`` for an image with neither (a run that did not finish). The merge
  goes through a temporary SQLite file, so its memory does not grow with the archive.
* **Throughput**: a thread pool decodes and prepares the network input (working-size ``L``) of the
  next images while the network runs; images with the same working shape are stacked into batches
  of ``batch_size`` (a partial batch runs, padded to ``batch_size``, when nothing else can join it
  soon); a second pool joins ab with the full-resolution L, encodes, and records the manifest row.
* **Bounded memory**, independent of the archive size: at most ``batch_size + 2 * workers`` images
  decoded or waiting for a batch and ``batch_size + workers`` being encoded, and at most
  :data:`DEFAULT_MAX_PIXELS_IN_FLIGHT` decoded pixels in all (one image always fits); glibc's
  heap is kept from creeping (:func:`limit_heap_retention`). Measured over 2,000 images:
  ``benchmarks/bench_batch.py``.
* **Many machines**: ``torchrun --nnodes N --nproc_per_node M -m lumachrome colorize TREE -o OUT``.
  Every rank walks the tree (a shared filesystem is assumed), takes its share, uses
  ``cuda:LOCAL_RANK`` when CUDA is available (else the CPU with ``OMP_NUM_THREADS`` threads, which
  torchrun sets to 1 per process), and the ranks meet in a ``gloo`` process group only to wait for
  each other and add up their counts.

Numerics: every network call has the same batch size (partial batches are padded), so an image's
output does not depend on which images share its batch, nor on the number of processes: a torchrun
run writes the same bytes as a single process with the same ``--batch-size`` and threads per process
(tested). Different batch sizes may differ by ~1e-5 in ab (oneDNN picks another kernel for batch 1,
measured), which can move a rare output pixel by one code value.
"""

from __future__ import annotations

import json
import os
import re
import sqlite3
import tempfile
import threading
import time
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator

import numpy as np

from lumachrome.atomic import atomic_open
from lumachrome.errors import ConfigError, ImageError, LumachromeError

__all__ = [
    "DEFAULT_BATCH_SIZE",
    "DEFAULT_BATCH_SIZE_CUDA",
    "DEFAULT_MAX_PIXELS_IN_FLIGHT",
    "ArchiveJob",
    "ArchiveStats",
    "ManifestWriter",
    "MergeResult",
    "archive_jobs",
    "colorize_archive",
    "default_batch_size",
    "default_workers",
    "limit_heap_retention",
    "merge_manifests",
    "part_path",
    "run_archive",
    "shard",
    "sweep_temp_files",
]

#: Images per network call (same working shape) on the CPU and on CUDA. On the CPU batching saves
#: little (the network is a small part of the work, measured in benchmarks/bench_batch.py) and
#: smaller batches keep fewer decoded images waiting; on a GPU it saves kernel launches.
DEFAULT_BATCH_SIZE = 4
DEFAULT_BATCH_SIZE_CUDA = 16
#: Decoded pixels held at once (decoding, waiting for a batch, joining/encoding): about 16 bytes per
#: pixel, so ~0.8 GB; a larger image than this is still processed, alone.
DEFAULT_MAX_PIXELS_IN_FLIGHT = 48_000_000
MANIFEST_NAME = "manifest.jsonl"


# --------------------------------------------------------------------------------------------
# the file stream
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ArchiveJob:
    """One image of the tree.

    Attributes:
        index: position in the sorted stream of the tree's images (0-based, world-size independent).
        src: the input image (``root / rel``).
        dst: its output (``out_dir / rel`` with the output extension).
        rel: POSIX path of ``src`` relative to the root: the manifest key.
        problem: a naming problem found while walking (output collision, output == input); the
            job is then reported as an error without being read.
    """

    index: int
    src: Path
    dst: Path
    rel: str
    problem: str | None = None


def _writable() -> tuple[str, ...]:
    from lumachrome.imageio import SAVE_EXTENSIONS

    return tuple(SAVE_EXTENSIONS)


def _normalise_ext(ext: str | None, writable: tuple[str, ...]) -> str | None:
    if ext is None:
        return None
    ext = "." + ext.lower().lstrip(".")
    if ext not in writable:
        raise ConfigError(f"--ext {ext!r} cannot be written (use one of {', '.join(writable)})")
    return ext


def archive_jobs(
    root: str | os.PathLike[str],
    out_dir: str | os.PathLike[str],
    *,
    ext: str | None = None,
) -> Iterator[ArchiveJob]:
    """Stream the images of ``root`` (recursively, sorted, hidden entries skipped) as jobs.

    Memory: the sorted listing of the folders on the current path (names only), never the whole
    tree. The output folder is not walked when it lies inside ``root``.

    Raises:
        ImageError: ``root`` is not a folder (raised when the generator starts).
        ConfigError: ``ext`` cannot be written.
    """
    from lumachrome.imageio import IMAGE_EXTENSIONS

    writable = _writable()
    ext = _normalise_ext(ext, writable)
    root, out_dir = Path(root), Path(out_dir)
    if not root.is_dir():
        raise ImageError(f"{root}: not a folder")
    out_real = os.path.realpath(out_dir)
    same_root = os.path.realpath(root) == out_real
    counter = 0

    def out_name(name: str) -> str:
        stem, suffix = os.path.splitext(name)
        low = suffix.lower()
        return stem + (ext or (low if low in writable else ".png"))

    def walk(folder: Path, rel_parts: tuple[str, ...]) -> Iterator[ArchiveJob]:
        nonlocal counter
        try:
            with os.scandir(folder) as it:
                # (name, descend) for sub-folders, (name, None) for image files; names only.
                entries: list[tuple[str, bool]] = []
                for e in it:
                    if e.name.startswith("."):
                        continue
                    is_image = os.path.splitext(e.name)[1].lower() in IMAGE_EXTENSIONS
                    try:
                        if e.is_dir(follow_symlinks=False):
                            entries.append((e.name, True))
                        elif not e.is_dir() and is_image:
                            entries.append((e.name, False))
                    except OSError:
                        # A link that cannot be followed (a symbolic link loop): a job, so it is
                        # reported on one line and recorded in the manifest, not silently left out.
                        if is_image:
                            entries.append((e.name, False))
        except OSError as e:
            raise ImageError(f"{folder}: cannot list folder ({e.strerror or e})") from None
        entries.sort()
        # Output names of this folder's images: a collision can only happen inside one folder.
        taken: dict[str, str] = {}
        out_folder = out_dir.joinpath(*rel_parts)
        for name, is_dir in entries:
            if is_dir:
                sub = folder / name
                if os.path.realpath(sub) == out_real:
                    continue  # the output tree inside the input tree
                yield from walk(sub, rel_parts + (name,))
                continue
            target = out_name(name)
            problem = None
            src = folder / name
            if target in taken:
                problem = f"{src}: output {out_folder / target} would also be written from {folder / taken[target]}"
            else:
                taken[target] = name
                if same_root and target == name:
                    problem = f"{src}: refusing to overwrite the input image (choose another -o)"
            rel = "/".join(rel_parts + (name,))
            yield ArchiveJob(counter, src, out_folder / target, rel, problem)
            counter += 1

    yield from walk(root, ())


def shard(jobs: Iterable[ArchiveJob], rank: int, world_size: int) -> Iterator[ArchiveJob]:
    """The jobs of ``rank``: those with ``index % world_size == rank`` (deterministic, balanced)."""
    if world_size < 1 or not 0 <= rank < world_size:
        raise ConfigError(f"rank {rank} of {world_size}: inconsistent")
    for job in jobs:
        if job.index % world_size == rank:
            yield job


# --------------------------------------------------------------------------------------------
# manifests
# --------------------------------------------------------------------------------------------
def part_path(manifest: str | os.PathLike[str], rank: int) -> Path:
    """The part written by ``rank``: ``manifest.jsonl`` -> ``manifest.rank-00003.jsonl``."""
    manifest = Path(manifest)
    return manifest.with_name(f"{manifest.stem}.rank-{rank:05d}{manifest.suffix}")


def _part_glob(manifest: Path) -> list[Path]:
    return sorted(manifest.parent.glob(f"{manifest.stem}.rank-*{manifest.suffix}"))


class ManifestWriter:
    """Appends JSON lines to a manifest part; each line is flushed and fsynced before returning.

    A line cut short by a kill is terminated on the next open (and ignored by the merge), so a
    resumed run never glues its first row onto a broken one.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._f = open(self.path, "a+b")
            self._f.seek(0, os.SEEK_END)
            if self._f.tell() > 0:
                self._f.seek(-1, os.SEEK_END)
                if self._f.read(1) != b"\n":
                    self._f.write(b"\n")
                self._f.seek(0, os.SEEK_END)
        except OSError as e:
            raise LumachromeError(f"{self.path}: cannot write the manifest ({e.strerror or e})") from None
        self.rows = 0

    def write(self, row: dict[str, Any]) -> None:
        data = (json.dumps(row, ensure_ascii=False) + "\n").encode("utf-8")
        try:
            self._f.write(data)
            self._f.flush()
            os.fsync(self._f.fileno())
        except OSError as e:
            raise LumachromeError(f"{self.path}: cannot write the manifest ({e.strerror or e})") from None
        self.rows += 1

    def close(self) -> None:
        if not self._f.closed:
            self._f.close()

    def __enter__(self) -> "ManifestWriter":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


@dataclass
class MergeResult:
    """What :func:`merge_manifests` wrote: row counts per status."""

    path: Path
    rows: int = 0
    counts: dict[str, int] = field(default_factory=dict)
    parts: int = 0
    temp_files_removed: int = 0


def merge_manifests(
    manifest: str | os.PathLike[str],
    jobs: Iterable[ArchiveJob],
    *,
    model: str = "",
    out_dir: str | os.PathLike[str] | None = None,
) -> MergeResult:
    """Merge the previous ``manifest`` and every rank part next to it into ``manifest``.

    One row per job of ``jobs`` (the whole tree's stream, in order): the newest recorded row of
    that image (by ``time``); else ``skipped`` when its output exists; else ``missing``. A recorded
    ``ok`` whose output has disappeared becomes ``missing``. Unparsable lines (a kill mid-write) are
    ignored. The new manifest is written atomically, then the parts are deleted, and so are the
    temporary files of killed writes in ``out_dir`` (default: the manifest's folder).
    """
    manifest = Path(manifest)
    parts = _part_glob(manifest)
    sources = ([manifest] if manifest.is_file() else []) + parts
    fd, db_path = tempfile.mkstemp(prefix="lumachrome-manifest-", suffix=".sqlite")
    os.close(fd)
    result = MergeResult(manifest, parts=len(parts))
    db = sqlite3.connect(db_path)
    try:
        db.execute("PRAGMA journal_mode=OFF")
        db.execute("PRAGMA synchronous=OFF")
        db.execute("CREATE TABLE rows (rel TEXT PRIMARY KEY, time REAL, line TEXT)")
        upsert = (
            "INSERT INTO rows VALUES (?, ?, ?) ON CONFLICT(rel) DO UPDATE SET "
            "time = excluded.time, line = excluded.line WHERE excluded.time >= rows.time"
        )
        for src in sources:
            batch = []
            with open(src, "rb") as f:
                for raw in f:
                    try:
                        row = json.loads(raw)
                        batch.append((str(row["rel"]), float(row.get("time", 0.0)), raw.decode("utf-8").rstrip("\n")))
                    except (ValueError, KeyError, TypeError, UnicodeDecodeError):
                        continue
                    if len(batch) >= 10_000:
                        db.executemany(upsert, batch)
                        batch.clear()
            db.executemany(upsert, batch)
        db.commit()

        with atomic_open(manifest, "w", error=None, fsync=True) as out:
            now = time.time()
            for job in jobs:
                hit = db.execute("SELECT line FROM rows WHERE rel = ?", (job.rel,)).fetchone()
                row = json.loads(hit[0]) if hit else None
                if row is not None and row.get("status") == "ok" and not job.dst.exists():
                    row = None  # the output was removed since
                if row is None:
                    status = "skipped" if job.dst.exists() else "missing"
                    row = {"input": str(job.src), "output": str(job.dst), "rel": job.rel, "index": job.index,
                           "model": model, "status": status, "seconds": 0.0, "rank": None, "time": now}
                row["index"] = job.index
                out.write(json.dumps(row, ensure_ascii=False) + "\n")
                result.rows += 1
                status = str(row.get("status"))
                result.counts[status] = result.counts.get(status, 0) + 1
    finally:
        db.close()
        Path(db_path).unlink(missing_ok=True)
    for p in parts:
        p.unlink(missing_ok=True)
    result.temp_files_removed = sweep_temp_files(manifest.parent if out_dir is None else out_dir)
    return result


#: Temporary files of :func:`lumachrome.imageio.save_image` (``.{stem}.tmp-XXXXXXXX{ext}``) and of
#: the manifest merge (``.{name}.XXXXXXXX.tmp``): left behind only by a killed process.
_TEMP_FILE = re.compile(r"^\..+(\.tmp-[A-Za-z0-9_]{8}\.[A-Za-z0-9]+|\.[A-Za-z0-9_]{8}\.tmp)$")


def sweep_temp_files(out_dir: str | os.PathLike[str]) -> int:
    """Delete the temporary files a killed run left in the output tree; returns how many.

    Only called when no process of the run is writing any more (after every rank finished).
    """
    removed = 0
    for dirpath, dirnames, filenames in os.walk(out_dir):
        dirnames[:] = [d for d in dirnames if not d.startswith(".")]
        for name in filenames:
            if name.startswith(".") and _TEMP_FILE.match(name):
                try:
                    os.unlink(os.path.join(dirpath, name))
                    removed += 1
                except OSError:
                    pass
    return removed


# --------------------------------------------------------------------------------------------
# the pipeline
# --------------------------------------------------------------------------------------------
def default_batch_size(device: Any) -> int:
    """:data:`DEFAULT_BATCH_SIZE_CUDA` on a CUDA device, else :data:`DEFAULT_BATCH_SIZE`."""
    return DEFAULT_BATCH_SIZE_CUDA if getattr(device, "type", str(device)).startswith("cuda") else DEFAULT_BATCH_SIZE


def default_workers(local_world_size: int = 1) -> int:
    """Decode/encode threads per process: the usable cores shared by the processes of this machine."""
    try:
        cores = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cores = os.cpu_count() or 1
    return max(1, cores // max(1, local_world_size))


_MALLOC_TUNED = False
#: glibc ``mallopt`` parameter number of ``M_MMAP_THRESHOLD`` (malloc.h).
_M_MMAP_THRESHOLD = -3


def limit_heap_retention(threshold: int = 16 << 20) -> bool:
    """Serve allocations of ``threshold`` bytes and more from fresh memory maps (glibc only).

    glibc raises its mmap threshold every time a large block is freed (up to 32 MB), after which
    such blocks come from the heap and their freed memory stays in the process: over a long run of
    images of many sizes the resident memory then creeps up (measured: +15-20% between image 100
    and 2,000 of ``benchmarks/bench_batch.py``). A fixed threshold stops that adjustment (and keeps
    glibc's default trimming of the heap top). Process-wide; called once by :func:`colorize_archive`.
    Returns True when applied.
    """
    global _MALLOC_TUNED
    if _MALLOC_TUNED:
        return True
    try:
        import ctypes

        mallopt = ctypes.CDLL(None).mallopt  # the C library of this process
    except (OSError, AttributeError):  # not glibc (macOS, Windows, musl without mallopt)
        return False
    _MALLOC_TUNED = bool(mallopt(_M_MMAP_THRESHOLD, int(threshold)))
    return _MALLOC_TUNED


class _Cancelled(Exception):
    """A decode that was waiting for memory when the run stopped."""


class _PixelBudget:
    """Counts decoded pixels held at once; ``acquire`` blocks while the budget is full (one image
    always fits when nothing else is held). ``waiting`` tells the scheduler to flush batches."""

    def __init__(self, limit: int) -> None:
        self.limit, self.used, self.waiting = int(limit), 0, 0
        self.closed = False
        self._cond = threading.Condition()

    def acquire(self, n: int) -> None:
        """Take ``n`` pixels; raises :class:`_Cancelled` when the run stops while waiting."""
        with self._cond:
            self.waiting += 1
            try:
                while self.used > 0 and self.used + n > self.limit and not self.closed:
                    self._cond.wait()
                if self.closed:
                    raise _Cancelled()
                self.used += n
            finally:
                self.waiting -= 1

    def close(self) -> None:
        """Wake every waiter with :class:`_Cancelled` (the run is stopping)."""
        with self._cond:
            self.closed = True
            self._cond.notify_all()

    def release(self, n: int) -> None:
        with self._cond:
            self.used -= n
            self._cond.notify_all()


@dataclass
class _Item:
    job: ArchiveJob
    image: Any  # LoadedImage until joined
    L: np.ndarray  # (hs, ws) raw L at the working resolution
    pixels: int
    seconds: float  # work time so far (decode + prepare)


@dataclass
class ArchiveStats:
    """Counts of one rank's run: ``done`` (colorized now), ``failed``, ``skipped`` (output existed)."""

    done: int = 0
    failed: int = 0
    skipped: int = 0
    batches: int = 0
    seconds: float = 0.0

    def as_list(self) -> list[int]:
        return [self.done, self.failed, self.skipped]


def colorize_archive(
    colorizer: Any,
    jobs: Iterable[ArchiveJob],
    *,
    writer: ManifestWriter | None = None,
    batch_size: int | None = None,
    workers: int | None = None,
    quality: int = 95,
    overwrite: bool = False,
    size: int | None = None,
    max_pixels_in_flight: int = DEFAULT_MAX_PIXELS_IN_FLIGHT,
    rank: int = 0,
    on_event: Callable[[str, ArchiveJob, str | None], None] | None = None,
) -> ArchiveStats:
    """Colorize ``jobs`` with ``colorizer`` (a :class:`~lumachrome.colorizer.Colorizer`), batched.

    Args:
        jobs: the jobs of this process (e.g. ``shard(archive_jobs(root, out), rank, world)``).
        writer: manifest part receiving one row per processed image (ok/error), in completion order.
        batch_size: images per network call (same working shape); default
            :func:`default_batch_size` of the colorizer's device (4 on the CPU, 16 on CUDA).
        workers: threads decoding and, separately, threads encoding (default: the cores).
        overwrite: redo images whose output exists (default: skip them: resume).
        size: working resolution (default the colorizer's).
        max_pixels_in_flight: decoded pixels held at once (memory bound).
        on_event: called in the calling thread as ``on_event(kind, job, message)`` with kind
            ``"ok"``, ``"error"`` (message: one line) or ``"skipped"``.

    Returns:
        :class:`ArchiveStats`. Image errors are counted and reported, never raised; other
        exceptions (bugs, KeyboardInterrupt) stop the run after the running work has finished
        (every output written so far is complete and recorded).
    """
    import torch

    from lumachrome.imageio import SIXTEEN_BIT_EXTENSIONS, load_image, probe_image, quantize, save_image

    if batch_size is None:
        batch_size = default_batch_size(colorizer.device)
    if batch_size < 1:
        raise ConfigError(f"batch size must be >= 1, got {batch_size}")
    workers = workers or default_workers()
    limit_heap_retention()
    work_size = colorizer._check_size(size) if size is not None else colorizer.size
    name = getattr(colorizer, "name", "model")
    budget = _PixelBudget(max_pixels_in_flight)
    stats = ArchiveStats()
    t_start = time.perf_counter()

    write_lock = threading.Lock()

    def record(kind: str, job: ArchiveJob, message: str | None, seconds: float) -> None:
        """One manifest row (any thread): right after the save, so a kill leaves at most the
        images being saved at that instant without a row."""
        if writer is None:
            return
        row = {"input": str(job.src), "output": str(job.dst), "rel": job.rel, "index": job.index,
               "model": name, "status": kind, "seconds": round(seconds, 4), "rank": rank,
               "time": time.time()}  # fmt: skip
        if message:
            row["error"] = message
        with write_lock:
            writer.write(row)

    def emit(kind: str, job: ArchiveJob, message: str | None = None) -> None:
        """Count and report (calling thread only); errors are recorded here, ok rows by finish()."""
        if kind == "ok":
            stats.done += 1
        elif kind == "error":
            stats.failed += 1
            record(kind, job, message, 0.0)
        else:
            stats.skipped += 1
        if on_event is not None:
            on_event(kind, job, message)

    def message_of(job: ArchiveJob, e: BaseException) -> str:
        if isinstance(e, MemoryError):
            return f"{job.src}: out of memory"
        text = " ".join(str(e).split()) or type(e).__name__
        if isinstance(e, OSError) and not isinstance(e, LumachromeError):
            text = f"{e.strerror or text}"
        return text if (str(job.src) in text or job.src.name in text) else f"{job.src}: {text}"

    def prepare(job: ArchiveJob) -> _Item:
        t0 = time.perf_counter()
        w, h = probe_image(job.src).size
        pixels = int(w) * int(h)
        budget.acquire(pixels)
        try:
            image = load_image(job.src)
            L = colorizer.network_input(image.rgb, work_size)
        except BaseException:
            budget.release(pixels)
            raise
        return _Item(job, image, L, pixels, time.perf_counter() - t0)

    def finish(item: _Item, ab_small: np.ndarray) -> None:
        t0 = time.perf_counter()
        try:
            image = item.image
            item.image = None
            rgb = colorizer.join_ab(image.rgb, ab_small, out=image.rgb)  # in place, as colorize_file
            dst = item.job.dst
            bit_depth = image.bit_depth if dst.suffix.lower() in SIXTEEN_BIT_EXTENSIONS else 8
            pixels = quantize(rgb, bit_depth)
            alpha = None if image.alpha is None else quantize(image.alpha, bit_depth)
            del image, rgb
            save_image(dst, pixels, alpha=alpha, bit_depth=bit_depth, quality=quality)
        finally:
            budget.release(item.pixels)
        record("ok", item.job, None, item.seconds + time.perf_counter() - t0)

    prep_pool = ThreadPoolExecutor(workers, thread_name_prefix="lumachrome-decode")
    finish_pool = ThreadPoolExecutor(workers, thread_name_prefix="lumachrome-encode")
    preps: dict[Future, ArchiveJob] = {}
    finishes: dict[Future, _Item] = {}
    buckets: dict[tuple[int, int], list[_Item]] = {}
    # Bounded work in flight (by count here, by pixels in prepare()): decoding + waiting for a
    # batch, and joining/encoding. Keeping these small keeps the memory flat over long runs.
    max_items = batch_size + 2 * workers
    max_finishing = batch_size + workers
    it = iter(jobs)
    exhausted = False

    def bucketed() -> int:
        return sum(len(b) for b in buckets.values())

    def run_bucket(shape: tuple[int, int]) -> None:
        batch = buckets.pop(shape)
        t0 = time.perf_counter()
        try:
            stack = [item.L for item in batch]
            # A partial batch is padded to the full batch size (repeating its last image): the
            # network then only ever sees one batch shape per working shape, which keeps its
            # memory flat (each new input shape costs PyTorch/oneDNN and ORT buffers that stay
            # allocated: measured +430 MB for 8 batch sizes x 5 shapes) and makes every image's
            # result independent of which images share its batch.
            stack += [stack[-1]] * (batch_size - len(stack))
            L = torch.from_numpy(np.stack(stack))[:, None]
            ab = colorizer.predict_ab_batch(L).permute(0, 2, 3, 1).numpy()  # (B, hs, ws, 2)
            del stack, L
        except MemoryError as e:
            for item in batch:
                budget.release(item.pixels)
                emit("error", item.job, message_of(item.job, e))
            return
        share = (time.perf_counter() - t0) / len(batch)
        stats.batches += 1
        for i, item in enumerate(batch):
            item.L = None  # type: ignore[assignment]
            item.seconds += share
            finishes[finish_pool.submit(finish, item, np.ascontiguousarray(ab[i]))] = item

    try:
        while True:
            # 1. keep the decoders busy (bounded by count here, by pixels inside prepare()).
            while not exhausted and len(preps) < 2 * workers and len(preps) + bucketed() < max_items:
                job = next(it, None)
                if job is None:
                    exhausted = True
                    break
                if job.problem is not None:
                    emit("error", job, job.problem)
                elif not overwrite and job.dst.exists():
                    emit("skipped", job)
                else:
                    preps[prep_pool.submit(prepare, job)] = job
            # 2. batches: full ones now; partial ones when nothing more can join them soon; none
            #    while the encoders are behind.
            for shape in [s for s, b in buckets.items() if len(b) >= batch_size]:
                if len(finishes) < max_finishing:
                    run_bucket(shape)
            stalled = budget.waiting > 0 or not preps
            if buckets and stalled and len(finishes) < max_finishing:
                run_bucket(max(buckets, key=lambda s: len(buckets[s])))
                continue
            if not preps and not finishes and not buckets:
                if exhausted:
                    break
                continue
            # 3. collect what finished.
            done, _ = wait(list(preps) + list(finishes), timeout=0.2, return_when=FIRST_COMPLETED)
            for fut in done:
                if fut in preps:
                    job = preps.pop(fut)
                    try:
                        item = fut.result()
                    except (LumachromeError, MemoryError, OSError) as e:
                        emit("error", job, message_of(job, e))
                        continue
                    buckets.setdefault(item.L.shape, []).append(item)
                else:
                    item = finishes.pop(fut)
                    try:
                        fut.result()
                    except (LumachromeError, MemoryError, OSError) as e:
                        emit("error", item.job, message_of(item.job, e))
                        continue
                    emit("ok", item.job)
    finally:
        for fut in preps:
            fut.cancel()
        budget.close()  # decodes waiting for memory held by unfinished batches give up
        prep_pool.shutdown(wait=True, cancel_futures=True)
        finish_pool.shutdown(wait=True)  # outputs being written are completed
        # Record what finished while shutting down (interrupted runs keep their manifest exact).
        for fut, item in finishes.items():
            if fut.done() and not fut.cancelled() and fut.exception() is None:
                emit("ok", item.job)
    stats.seconds = time.perf_counter() - t_start
    return stats


# --------------------------------------------------------------------------------------------
# one rank of a (possibly distributed) archive run: what `lumachrome colorize --archive` calls
# --------------------------------------------------------------------------------------------
class _Group:
    """The gloo process group of a torchrun launch (no-op for a single process)."""

    def __init__(self, rank: int, world: int) -> None:
        self.rank, self.world, self.owned = rank, world, False
        if world > 1:
            from datetime import timedelta

            import torch.distributed as dist

            if not dist.is_initialized():
                # Ranks wait for each other only at the end, possibly for hours: a long timeout.
                dist.init_process_group("gloo", init_method="env://", rank=rank, world_size=world,
                                        timeout=timedelta(days=30))
                self.owned = True

    def barrier(self) -> None:
        if self.world > 1:
            import torch.distributed as dist

            dist.barrier()

    def sum(self, values: list[int]) -> list[int]:
        if self.world == 1:
            return list(values)
        import torch
        import torch.distributed as dist

        t = torch.tensor(values, dtype=torch.int64)
        dist.all_reduce(t)
        return [int(v) for v in t.tolist()]

    def close(self) -> None:
        if self.owned:
            import torch.distributed as dist

            if dist.is_initialized():
                dist.destroy_process_group()


def _report(bar: Any) -> Callable[[str, ArchiveJob, str | None], None]:
    """``on_event`` of :func:`colorize_archive` for an :class:`lumachrome.progress.ItemBar`."""

    def event(kind: str, job: ArchiveJob, message: str | None) -> None:
        if kind == "error":
            bar.error(str(message))
        if kind == "skipped":
            bar.skip()
        else:
            bar.advance(job.rel[-40:])

    return event


def run_archive(
    root: str | os.PathLike[str],
    out_dir: str | os.PathLike[str],
    *,
    model: str = "photo",
    backend: str = "torch",
    device: str = "auto",
    size: int | None = None,
    saturation: float | None = None,
    ext: str | None = None,
    manifest: str | os.PathLike[str] | None = None,
    batch_size: int | None = None,
    workers: int | None = None,
    quality: int = 95,
    overwrite: bool = False,
    progress: bool = False,
    quiet: bool = False,
) -> int:
    """Colorize the tree ``root`` into ``out_dir`` as this process's share of a torchrun launch
    (or alone) and return the exit code: 0, or 1 when any image of any rank failed.

    Rank and world size come from torchrun's ``RANK``/``WORLD_SIZE``/``LOCAL_RANK``. The manifest
    is ``out_dir/manifest.jsonl`` unless ``manifest`` is given; rank 0 merges the parts at the end
    and prints the summary.
    """
    import torch

    from lumachrome.pipeline import load_pipeline
    from lumachrome.progress import ItemBar
    from lumachrome.precision import env_ranks

    root, out_dir = Path(root), Path(out_dir)
    if not root.is_dir():
        raise ImageError(f"{root}: not a folder (the archive mode colorizes one folder tree)")
    if out_dir.exists() and not out_dir.is_dir():
        raise ImageError(f"{out_dir}: output must be a folder")
    manifest_path = Path(manifest) if manifest is not None else out_dir / MANIFEST_NAME
    rank, world, local = env_ranks()
    local_world = int(os.environ.get("LOCAL_WORLD_SIZE", "1") or 1)
    workers = workers or default_workers(local_world)
    if device in ("auto", "cuda") and torch.cuda.is_available():
        device = f"cuda:{local % torch.cuda.device_count()}" if world > 1 else "cuda"  # one GPU per process
    _normalise_ext(ext, _writable())  # ConfigError before anything starts

    group = _Group(rank, world)
    try:
        colorizer = load_pipeline(model, device, task="colorize", size=size, backend=backend, saturation=saturation)
        try:
            import cv2

            previous_cv2_threads = cv2.getNumThreads()
            cv2.setNumThreads(1)  # parallel over images (the worker threads), not inside one resize
        except Exception:  # pragma: no cover - OpenCV without threading control
            cv2, previous_cv2_threads = None, None
        show = progress and rank == 0 and not quiet
        total = sum(1 for _ in shard(archive_jobs(root, out_dir, ext=ext), rank, world)) if show else None
        bar = ItemBar(total, show, eta_label=True)
        writer = ManifestWriter(part_path(manifest_path, rank))
        try:
            stats = colorize_archive(
                colorizer, shard(archive_jobs(root, out_dir, ext=ext), rank, world), writer=writer,
                batch_size=batch_size, workers=workers, quality=quality, overwrite=overwrite,
                rank=rank, on_event=_report(bar),
            )  # fmt: skip
        finally:
            writer.close()
            bar.close()
            if cv2 is not None and previous_cv2_threads is not None:
                cv2.setNumThreads(previous_cv2_threads)
        done, failed, skipped = group.sum(stats.as_list())
        group.barrier()  # every part is complete
        missing = 0
        if rank == 0:
            merged = merge_manifests(manifest_path, archive_jobs(root, out_dir, ext=ext), model=colorizer.name,
                                     out_dir=out_dir)
            missing = merged.counts.get("missing", 0)
            if not quiet:
                parts = [f"colorized {done} image(s) -> {out_dir}"]
                if skipped:
                    parts.append(f"{skipped} already done")
                if failed:
                    parts.append(f"{failed} failed")
                if missing:
                    parts.append(f"{missing} missing")
                where = f"{world} processes, " if world > 1 else ""
                print(f"{', '.join(parts)} ({where}{stats.seconds:.1f} s); manifest {manifest_path}", flush=True)
        missing = group.sum([missing])[0]
        group.barrier()  # rank 0 has merged: nobody exits (and fails the launch) before that
    finally:
        group.close()
    # Under torchrun only rank 0 reports the outcome, so a launch with failed images names one root cause.
    return 1 if (failed or missing) and rank == 0 else 0
