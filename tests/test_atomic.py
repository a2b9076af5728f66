"""lumachrome.atomic: complete files or nothing, one-line errors."""

from __future__ import annotations

import os

import pytest

from lumachrome.atomic import atomic_open, atomic_write_bytes, atomic_write_text
from lumachrome.errors import DataError


def test_writes_replace_and_create_folders(tmp_path):
    p = atomic_write_text(tmp_path / "a" / "b.txt", "héllo")
    assert p.read_text(encoding="utf-8") == "héllo"
    assert oct(os.stat(p).st_mode & 0o777) == oct(0o644)
    atomic_write_bytes(p, b"new", fsync=True)
    assert p.read_bytes() == b"new"
    assert sorted(x.name for x in p.parent.iterdir()) == ["b.txt"]  # no temporary left


def test_failure_keeps_the_old_file_and_leaves_no_temporary(tmp_path):
    p = tmp_path / "keep.txt"
    p.write_text("old")
    with pytest.raises(RuntimeError):
        with atomic_open(p, "w") as f:
            f.write("half")
            raise RuntimeError("boom")
    assert p.read_text() == "old"
    assert [x.name for x in tmp_path.iterdir()] == ["keep.txt"]


def test_os_errors_become_one_line_errors(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(DataError, match=r"cannot write") as e:
        atomic_write_text(blocker / "sub" / "x.txt", "x", error=DataError)  # parent is a file
    assert "\n" not in str(e.value)
    with pytest.raises(OSError):
        atomic_write_text(blocker / "sub" / "x.txt", "x", error=None)
    with pytest.raises(ValueError):
        with atomic_open(tmp_path / "x", "a"):
            pass
