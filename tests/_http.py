"""Test helpers for the web app: a free port, a `lumachrome serve` subprocess, multipart HTTP calls.

Only the standard library: the tests talk to the server the way any HTTP client would.
"""

from __future__ import annotations

import json
import os
import secrets
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """``python -m lumachrome serve --port <free> ARGS`` in a subprocess; ``url`` once it answers."""

    def __init__(self, *args: str, timeout: float = 60.0) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "lumachrome", "serve", "--port", str(self.port), *args],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited: {self.proc.stdout.read()}")
            try:
                if get_json(self.url + "/api/health")[0] == 200:
                    return
            except OSError:
                time.sleep(0.2)
        self.stop()
        raise RuntimeError("server did not start")

    def alive(self) -> bool:
        return self.proc.poll() is None and get_json(self.url + "/api/health")[0] == 200

    def stop(self) -> str:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        return self.proc.stdout.read() if self.proc.stdout else ""


def _request(url: str, data: bytes | None = None, headers: dict | None = None, timeout: float = 120.0):
    req = urllib.request.Request(url, data=data, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, r.read(), dict(r.headers)
    except urllib.error.HTTPError as e:
        return e.code, e.read(), dict(e.headers)


def get(url: str, headers: dict | None = None) -> tuple[int, bytes]:
    status, body, _ = _request(url, headers=headers)
    return status, body


def get_full(url: str, headers: dict | None = None) -> tuple[int, bytes, dict]:
    """``(status, body, headers)`` of a GET (``headers`` may set ``Host`` or ``Origin``)."""
    return _request(url, headers=headers)


def get_json(url: str) -> tuple[int, dict]:
    status, body = get(url)
    return status, json.loads(body or b"null")


def post_form(url: str, fields: dict | None = None, files: dict | None = None,
              headers: dict | None = None) -> tuple[int, dict]:
    """multipart/form-data POST: ``fields`` name -> str, ``files`` name -> (filename, bytes) or a Path;
    ``headers`` are added (e.g. ``Origin``)."""
    boundary = "----lumachrome" + secrets.token_hex(8)
    parts: list[bytes] = []
    for k, v in (fields or {}).items():
        parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n{v}\r\n'.encode())
    for k, v in (files or {}).items():
        name, data = (v.name, Path(v).read_bytes()) if isinstance(v, Path) else v
        parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="{k}"; filename="{name}"\r\n'
                     f"Content-Type: application/octet-stream\r\n\r\n".encode() + data + b"\r\n")
    parts.append(f"--{boundary}--\r\n".encode())
    status, body, _ = _request(url, b"".join(parts),
                               {"Content-Type": f"multipart/form-data; boundary={boundary}", **(headers or {})})
    try:
        return status, json.loads(body)
    except ValueError:
        return status, {"raw": body[:200].decode(errors="replace")}


def script_png(png: bytes, title: str = "pwned") -> bytes:
    """``png`` (a valid PNG) with an HTML script in a text chunk: it sets ``document.title`` to ``title``
    if a browser ever renders the file as HTML (the stored-XSS tests)."""
    import io

    from PIL import Image, PngImagePlugin

    info = PngImagePlugin.PngInfo()
    info.add_text("Comment", f"<script>document.title='{title}'</script>")
    buf = io.BytesIO()
    Image.open(io.BytesIO(png)).save(buf, format="PNG", pnginfo=info)
    return buf.getvalue()
