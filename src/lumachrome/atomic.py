"""Atomic file writing: a temporary sibling, then ``os.replace`` (no half-written outputs).

Every file writer of the project goes through here: :func:`atomic_open` (and
:func:`atomic_write_text` / :func:`atomic_write_bytes`), or :class:`AtomicTarget` when the writer needs
its own file (the image encoders of :func:`lumachrome.imageio.save_image`, safetensors, rasterio,
OpenCV's video writer). (Model folders and checkpoints are whole folders, swapped in by
:mod:`lumachrome.models.io` and :mod:`lumachrome.train.checkpoint`.) a reader never sees a partial file, an existing file is replaced only by a
complete new one, and on any failure the temporary file is removed::

    with atomic_open(path, "w", error=DataError) as f:
        json.dump(data, f)

``error`` turns an ``OSError`` into that one-line :class:`~lumachrome.errors.LumachromeError` kind
(``"<path>: cannot write (<reason>)"``); other exceptions propagate unchanged.

Permissions: ``mkstemp``/``mkdtemp`` (and safetensors' writer) create 0600 files and 0700 folders.
Everything the project writes gets the modes a plain ``open()``/``mkdir`` would give under the
user's umask instead (:func:`file_mode`, :func:`folder_mode`, :func:`apply_umask`), so images,
manifests, checkpoints and model folders are all readable by the same people.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

from lumachrome.errors import LumachromeError

__all__ = ["AtomicTarget", "apply_umask", "atomic_open", "atomic_write_bytes", "atomic_write_text", "current_umask",
           "file_mode", "folder_mode"]


def current_umask() -> int:
    """The process's umask, read without changing it (``/proc/self/status`` on Linux; elsewhere
    ``os.umask`` is set and restored at once)."""
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def file_mode() -> int:
    """Mode of a new file under the current umask (``0o666 & ~umask``: 0644 for umask 022)."""
    return 0o666 & ~current_umask()


def folder_mode() -> int:
    """Mode of a new folder under the current umask (``0o777 & ~umask``: 0755 for umask 022)."""
    return 0o777 & ~current_umask()


def apply_umask(path: str | os.PathLike[str]) -> None:
    """Give ``path`` (a file, or a folder and everything in it) the umask's default modes.

    For the temporary files and folders that are renamed into place (``mkstemp``, ``mkdtemp`` and
    safetensors write 0600/0700). Symbolic links are left alone.
    """
    fmode, dmode = file_mode(), folder_mode()
    path = Path(path)
    if path.is_symlink():
        return
    if not path.is_dir():
        os.chmod(path, fmode)
        return
    for dirpath, dirnames, filenames in os.walk(path):
        for name in filenames:
            p = os.path.join(dirpath, name)
            if not os.path.islink(p):
                os.chmod(p, fmode)
        os.chmod(dirpath, dmode)


@contextmanager
def atomic_open(
    path: str | os.PathLike[str],
    mode: str = "wb",
    *,
    error: type[LumachromeError] | None = LumachromeError,
    fsync: bool = False,
    suffix: str = ".tmp",
) -> Iterator[IO[Any]]:
    """Open a temporary sibling of ``path`` for writing; on a clean exit it replaces ``path``.

    Args:
        path: the final file; its folder is created when missing.
        mode: ``"wb"`` or ``"w"`` (text is UTF-8).
        error: raised (one line) instead of an ``OSError``; ``None`` lets ``OSError`` through.
        fsync: flush the data to disk before the rename (files that must survive a crash).
        suffix: of the temporary name (some writers pick their format from it, e.g. ``".png"``).

    The new file gets the umask's mode (0644 for umask 022; ``mkstemp`` would leave 0600).
    """
    if mode not in ("w", "wb"):
        raise ValueError(f"atomic_open: mode must be 'w' or 'wb', got {mode!r}")
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=suffix, dir=path.parent)
    except OSError as e:
        if error is None:
            raise
        raise error(f"{path}: cannot write ({e.strerror or e})") from None
    try:
        with os.fdopen(fd, mode, **({} if "b" in mode else {"encoding": "utf-8"})) as f:
            yield f
            if fsync:
                f.flush()
                os.fsync(f.fileno())
        os.chmod(tmp, file_mode())
        os.replace(tmp, path)
    except BaseException as e:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        if isinstance(e, OSError) and error is not None:
            raise error(f"{path}: cannot write ({e.strerror or e})") from None
        raise


def atomic_write_text(path: str | os.PathLike[str], text: str, **options: Any) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically; ``options`` as for :func:`atomic_open`."""
    with atomic_open(path, "w", **options) as f:
        f.write(text)
    return Path(path)


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes, **options: Any) -> Path:
    """Write ``data`` to ``path`` atomically; ``options`` as for :func:`atomic_open`."""
    with atomic_open(path, "wb", **options) as f:
        f.write(data)
    return Path(path)


class AtomicTarget:
    """A temporary sibling of ``path`` for writers that need a file name; :meth:`commit` gives it the
    umask's mode and renames it over ``path``, :meth:`abort` removes it.

    Creating it makes the folder and an empty ``.<stem>.tmp-XXXX<suffix>`` file (``suffix``: default
    ``path``'s own, which some writers read the format from); an ``OSError`` there propagates, for the
    caller to report in its own words. Used by the pack writers, the GeoTIFF writer and the video writer::

        target = AtomicTarget(out)
        try:
            save_file(tensors, str(target.tmp))
            target.commit()
        except BaseException:
            target.abort()
            raise
    """

    def __init__(self, path: str | os.PathLike[str], *, suffix: str | None = None) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{self.path.stem}.tmp-",
                                   suffix=self.path.suffix if suffix is None else suffix, dir=self.path.parent)
        os.close(fd)
        #: The temporary file to write.
        self.tmp = Path(tmp)

    def commit(self) -> Path:
        """The written temporary file becomes ``path`` (replacing an existing file); returns ``path``."""
        os.chmod(self.tmp, file_mode())  # mkstemp's 0600 -> the umask's mode
        os.replace(self.tmp, self.path)
        return self.path

    def abort(self) -> None:
        """Remove the temporary file (nothing appears at ``path``); never raises."""
        try:
            self.tmp.unlink()
        except OSError:
            pass
