"""Atomic file writing: a temporary sibling, then ``os.replace`` (no half-written outputs).

Every writer of the project that is not an image encoder (:func:`lumachrome.imageio.save_image`)
uses :func:`atomic_open`: a reader never sees a partial file, an existing file is replaced only by a
complete new one, and on any failure the temporary file is removed::

    with atomic_open(path, "w", error=DataError) as f:
        json.dump(data, f)

``error`` turns an ``OSError`` into that one-line :class:`~lumachrome.errors.LumachromeError` kind
(``"<path>: cannot write (<reason>)"``); other exceptions propagate unchanged.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

from lumachrome.errors import LumachromeError

__all__ = ["atomic_open", "atomic_write_bytes", "atomic_write_text"]


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

    The new file gets mode 0644 (``mkstemp`` would leave 0600).
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
        os.chmod(tmp, 0o644)
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
