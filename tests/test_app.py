"""The web app over HTTP: a real `lumachrome serve` on a free port, started by the tests."""

from __future__ import annotations

import io
import json
import re
import socket
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
from _http import Server, get, get_full, get_json, post_form, script_png

from lumachrome.color.lab import rgb_to_lab_np
from lumachrome.colorizer import available_models
from lumachrome.imageio import save_image

pytestmark = pytest.mark.skipif("photo" not in available_models(), reason="needs the shipped photo model")


def _png(h: int = 96, w: int = 128) -> bytes:
    """A gray PNG with some structure (a sky-like gradient and a dark band)."""
    from PIL import Image

    y, x = np.mgrid[0:h, 0:w]
    g = np.clip(0.75 - 0.4 * y / h + 0.05 * np.sin(x / 5.0), 0, 1)
    g[int(0.7 * h):] *= 0.4
    buf = io.BytesIO()
    Image.fromarray((g * 255).astype(np.uint8)).save(buf, format="PNG")
    return buf.getvalue()


def _decode(data: bytes) -> np.ndarray:
    from PIL import Image

    return np.asarray(Image.open(io.BytesIO(data)).convert("RGB"), dtype=np.float32) / 255.0


@pytest.fixture(scope="module")
def server():
    # small limits so that the limit tests need no big files; 2 workers for the concurrency test
    srv = Server("--max-upload-mb", "1", "--max-megapixels", "0.5", "--workers", "2", "--queue", "16")
    yield srv
    out = srv.stop()
    assert "Traceback" not in out, out


def test_page_and_static_files_are_local(server):
    status, page = get(server.url + "/")
    assert status == 200 and b"<title>lumachrome</title>" in page
    for name in re.findall(rb'(?:src|href)="([^"]+)"', page):
        assert not name.startswith((b"http:", b"https:", b"//")), name  # nothing from other hosts
    for asset in ("/static/app.js", "/static/app.css"):
        status, body = get(server.url + asset)
        assert status == 200 and len(body) > 500
        assert not re.search(rb"https?://", body), asset
    assert get(server.url + "/static/../engine.py")[0] == 404


def test_models_and_limits(server):
    status, info = get_json(server.url + "/api/models")
    assert status == 200
    names = [m["name"] for m in info["models"]]
    assert "photo" in names and info["default"] in names
    assert info["limits"] == {"upload_mb": 1.0, "megapixels": 0.5}


def test_colorize_one_shot_and_download_at_full_resolution(server):
    status, res = post_form(server.url + "/api/colorize", {"model": "photo"}, {"file": ("gray.png", _png(90, 130))})
    assert status == 200, res
    assert (res["width"], res["height"], res["model"]) == (130, 90, "photo")
    status, png = get(server.url + res["result"])
    rgb = _decode(png)
    assert status == 200 and rgb.shape == (90, 130, 3)
    assert np.abs(rgb_to_lab_np(rgb)[:, :, 1:]).mean() > 1.0  # it has colours
    for key in ("preview", "input_preview"):
        assert get(server.url + res[key])[0] == 200


@pytest.mark.parametrize("name", ["sketch", "thermal"])
def test_a_translation_model_gives_the_translator_s_image(server, name):
    """Translation models (sketch, nir, thermal) through the page give what Translator gives."""
    from lumachrome.pipeline import load_pipeline

    if name not in available_models():
        pytest.skip(f"needs the shipped {name} model")
    status, res = post_form(server.url + "/api/colorize", {"model": name}, {"file": ("in.png", _png(64, 96))})
    assert status == 200, res
    got = _decode(get(server.url + res["result"])[1])
    assert got.shape == (64, 96, 3) and got.mean() < 0.95  # was all white
    want = load_pipeline(name, "cpu").translate_array(_decode(_png(64, 96))) / 255.0
    assert np.abs(got - want).max() <= 1.5 / 255


def test_flat_colours_for_line_art_models(server):
    """The page's flat-colour option gives the translator's flat-fill output for sketch models and is a
    400 for other models; /api/models says which models offer it."""
    from lumachrome.pipeline import load_pipeline

    if "sketch" not in available_models():
        pytest.skip("needs the shipped sketch model")
    info = {m["name"]: m for m in get_json(server.url + "/api/models")[1]["models"]}
    assert info["sketch"]["flat"] and not info["photo"]["flat"]
    import cv2

    drawing = np.full((64, 96), 255, np.uint8)
    cv2.rectangle(drawing, (8, 8), (40, 56), 0, 2)
    cv2.circle(drawing, (68, 32), 18, 0, 2)
    buf = io.BytesIO()
    from PIL import Image

    Image.fromarray(drawing).save(buf, format="PNG")
    status, res = post_form(server.url + "/api/colorize", {"model": "sketch", "flat": "1"},
                            {"file": ("lines.png", buf.getvalue())})
    assert status == 200, res
    got = _decode(get(server.url + res["result"])[1])
    want = load_pipeline("sketch", "cpu").translate_array(drawing.astype(np.float32) / 255, flat=True) / 255.0
    assert np.abs(got - want).max() <= 1.5 / 255
    inside = got[20:44, 14:34].reshape(-1, 3)
    assert np.ptp(inside, axis=0).max() <= 1.5 / 255  # one flat colour inside the rectangle
    assert res["notes"] == []
    status, res = post_form(server.url + "/api/colorize", {"model": "photo", "flat": "1"},
                            {"file": ("lines.png", buf.getvalue())})
    assert status == 400 and "line-art" in res["error"]
    # an edge map of a photo closes too few regions: the network's colours, and a note saying why
    import skimage.data

    from lumachrome.data.sketchify import sketchify

    edges = cv2.resize(sketchify(skimage.data.coffee(), "xdog"), (120, 80), interpolation=cv2.INTER_AREA)
    buf = io.BytesIO()
    Image.fromarray(edges).save(buf, format="PNG")
    status, res = post_form(server.url + "/api/colorize", {"model": "sketch", "flat": "1"},
                            {"file": ("edges.png", buf.getvalue())})
    assert status == 200, res
    assert len(res["notes"]) == 1 and "flat fill skipped" in res["notes"][0]
    got = _decode(get(server.url + res["result"])[1])
    want = load_pipeline("sketch", "cpu").translate_array(edges.astype(np.float32) / 255, flat=True, notes=[]) / 255.0
    assert np.abs(got - want).max() <= 1.5 / 255


def test_upload_then_colorize_with_options(server):
    status, up = post_form(server.url + "/api/upload", files={"file": ("g.png", _png())})
    assert status == 200 and (up["width"], up["height"]) == (128, 96) and up["was_gray"]
    ref = np.zeros((64, 64, 3), np.float32)
    ref[..., 0], ref[..., 1], ref[..., 2] = 0.9, 0.5, 0.1  # an orange reference
    buf = io.BytesIO()
    from PIL import Image

    Image.fromarray((ref * 255).astype(np.uint8)).save(buf, format="PNG")
    status, res = post_form(server.url + "/api/colorize",
                            {"id": up["id"], "model": "photo", "restore": "1", "restore_skip": "denoise,contrast",
                             "strength": "1"},
                            {"reference": ("ref.png", buf.getvalue())})
    assert status == 200, res
    assert any("levels" in s for s in res["restore_steps"])
    lab = rgb_to_lab_np(_decode(get(server.url + res["result"])[1]))
    assert lab[:, :, 2].mean() > 5  # pulled toward the orange reference (b > 0)


def test_colour_amount_scales_the_chroma(server):
    status, up = post_form(server.url + "/api/upload", files={"file": ("g.png", _png(96, 128))})
    assert status == 200
    chroma = {}
    for colour in ("0", "1", "2"):
        status, res = post_form(server.url + "/api/colorize", {"id": up["id"], "model": "photo", "colour": colour})
        assert status == 200, res
        lab = rgb_to_lab_np(_decode(get(server.url + res["result"])[1]))
        chroma[colour] = float(np.hypot(lab[..., 1], lab[..., 2]).mean())
    assert chroma["0"] < 0.5 < chroma["1"] < chroma["2"]
    assert chroma["2"] == pytest.approx(2 * chroma["1"], rel=0.15)  # 8-bit rounding and gamut clipping
    status, body = post_form(server.url + "/api/colorize", {"id": up["id"], "colour": "9"})
    assert status == 400 and "colour must be in" in body["error"]


@pytest.mark.skipif("photo-hints" not in available_models(), reason="needs the shipped photo-hints model")
def test_a_hint_changes_the_colour_where_it_was_placed(server):
    status, up = post_form(server.url + "/api/upload", files={"file": ("g.png", _png(96, 128))})
    assert status == 200
    x, y = 40, 30
    base = post_form(server.url + "/api/colorize", {"id": up["id"], "model": "photo-hints"})[1]
    res = post_form(server.url + "/api/colorize",
                    {"id": up["id"], "model": "photo", "hints": f'[{{"x": {x}, "y": {y}, "color": "#d02020"}}]'})[1]
    assert res["model"] == "photo-hints" and res["hints"] == [{"x": x, "y": y, "color": "#d02020"}]
    lab0 = rgb_to_lab_np(_decode(get(server.url + base["result"])[1]))
    lab = rgb_to_lab_np(_decode(get(server.url + res["result"])[1]))
    assert lab[y, x, 1] > 25 and lab[y, x, 1] > lab0[y, x, 1] + 20  # red: a clearly up at the hint
    assert np.abs(lab[90, 120, 1:] - lab0[90, 120, 1:]).max() < 10  # far away: about the same


def test_bad_requests_get_clear_messages_and_the_server_stays_up(server, tmp_path):
    url = server.url
    cases = [
        (post_form(url + "/api/upload", files={"file": ("notes.txt", b"hello, not an image")}), 400, "not an image"),
        (post_form(url + "/api/upload", files={"file": ("empty.png", b"")}), 400, "empty"),
        (post_form(url + "/api/upload", files={"file": ("big.bin", b"\0" * (1024 * 1024 + 10))}), 413, "too large"),
        (post_form(url + "/api/upload", files={"file": ("trunc.png", _png()[:200])}), 400, "trunc.png"),
        (post_form(url + "/api/upload"), 400, "no file"),
        (post_form(url + "/api/colorize", {"id": "0123456789abcdef"}), 400, "not found"),
        (post_form(url + "/api/colorize", {"model": "nope"}, {"file": ("g.png", _png())}), 400, "unknown model"),
        (post_form(url + "/api/colorize", {"hints": "1,2,#zzz"}, {"file": ("g.png", _png())}), 400, "--hint"),
        (post_form(url + "/api/colorize", {"hints": "500,2,#ffffff"}, {"file": ("g.png", _png())}), 400,
         "outside" if "photo-hints" in available_models() else "takes no colour hints"),
        (post_form(url + "/api/colorize", {"restore": "1", "restore_skip": "magic"}, {"file": ("g.png", _png())}),
         400, "unknown step"),
        (post_form(url + "/api/colorize", {}, {"file": ("g.png", _png()), "palette": ("p.json", b"{oops")}),
         400, "palette"),
    ]
    # more pixels than the server accepts (0.5 MP): refused from the header, before decoding
    big = tmp_path / "big.png"
    save_image(big, np.zeros((800, 800, 3), np.float32))
    cases.append((post_form(url + "/api/upload", files={"file": big}), 413, "limit 0.5 MP"))
    for (status, body), want_status, text in cases:
        assert status == want_status, (text, status, body)
        assert text in body["error"] and "\n" not in body["error"], body
        assert "Traceback" not in body["error"]
    assert server.alive()
    assert get(url + "/files/0123456789abcdef/../../etc/passwd")[0] == 404
    status, res = post_form(url + "/api/colorize", {}, {"file": ("g.png", _png())})
    assert status == 200, res  # still working


def test_eight_parallel_requests_all_succeed(server):
    def one(i: int):
        return post_form(server.url + "/api/colorize", {"model": "photo"}, {"file": (f"g{i}.png", _png(80 + i, 120))})

    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(one, range(8)))
    assert [s for s, _ in results] == [200] * 8, results
    assert sorted(r["height"] for _, r in results) == list(range(80, 88))
    assert len({r["id"] for _, r in results}) == 8


def test_serve_is_local_by_default_and_reports_a_busy_port():
    import subprocess
    import sys

    from lumachrome.cli import serve_command  # noqa: F401  # the command exists
    from lumachrome.app.server import is_loopback

    assert is_loopback("127.0.0.1") and not is_loopback("0.0.0.0")
    srv = Server()
    try:
        assert srv.url.startswith("http://127.0.0.1:")
        r = subprocess.run([sys.executable, "-m", "lumachrome", "serve", "--port", str(srv.port)],
                           capture_output=True, text=True, timeout=60)
        assert r.returncode == 1 and r.stderr.startswith("lumachrome: error: serve: cannot listen on 127.0.0.1")
        assert r.stderr.count("\n") == 1
    finally:
        out = srv.stop()
    assert f"serving on http://127.0.0.1:{srv.port}/" in out


def test_queue_refuses_when_full():
    from lumachrome.app.engine import Busy, JobQueue

    q = JobQueue(workers=1, queue_size=0, wait_s=0.1)
    with q:
        with pytest.raises(Busy, match="busy"):
            with q:
                pass
    q = JobQueue(workers=1, queue_size=4, wait_s=0.05)
    with q:
        with pytest.raises(Busy, match="waited"):
            with q:
                pass
    assert (q.running, q.waiting) == (0, 0)


def test_default_limits():
    from lumachrome.app.engine import AppConfig

    cfg = AppConfig()
    assert cfg.max_upload_bytes == 25 * 1024 * 1024 and cfg.max_pixels == 50_000_000
    assert Path(__file__).name == "test_app.py"


# ---------------------------------------------------------------------------------------------
# security and robustness (issue 16): each test failed before its fix

MB = 1024 * 1024


def _png_header(width: int, height: int) -> bytes:
    """A PNG whose header claims width x height, with no pixel data (rejected from the header)."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IEND", b"")


def test_uploads_are_never_served_back_as_html_or_svg(server):
    """Stored XSS: an upload named x.html (a valid image with a script inside) was stored as
    input.html and served as text/html from the app's origin."""
    for filename in ("x.html", "x.svg", "x.htm", "x.xhtml"):
        status, up = post_form(server.url + "/api/upload", files={"file": (filename, script_png(_png()))})
        assert status == 200, up
        ext = filename.rsplit(".", 1)[1]
        for name in (f"input.{ext}", "input.png", "source.png", "upload.json", "input.jpg"):
            status, body, headers = get_full(f"{server.url}/files/{up['id']}/{name}")
            ctype = headers.get("content-type", "")
            assert "html" not in ctype and "svg" not in ctype and "xml" not in ctype, (name, ctype)
            assert b"<script" not in body, name  # the upload itself is never served back
            assert headers.get("x-content-type-options") == "nosniff", name


def test_security_headers(server):
    status, res = post_form(server.url + "/api/colorize", {"model": "photo"}, {"file": ("my cat.png", _png())})
    assert status == 200, res
    for path in ("/", "/static/app.js", "/static/app.css", "/api/health", "/api/models", res["preview"],
                 res["result"], "/files/0123456789abcdef/nothing.png"):
        status, _, headers = get_full(server.url + path)
        assert headers.get("x-content-type-options") == "nosniff", path
        csp = headers.get("content-security-policy", "")
        assert "default-src" in csp and "'unsafe-inline'" not in csp.split("script-src")[-1].split(";")[0], (path, csp)
        assert "frame-ancestors" in csp, (path, csp)
    csp = get_full(server.url + "/")[2]["content-security-policy"]
    assert "script-src 'self'" in csp and "object-src 'none'" in csp
    disposition = get_full(server.url + res["result"])[2].get("content-disposition", "")
    assert disposition.startswith("attachment;") and "my_cat_color.png" in disposition, disposition
    assert get_full(server.url + res["preview"])[2].get("content-type") == "image/jpeg"


def test_other_sites_cannot_drive_the_server(server):
    """A foreign Host (DNS rebinding) or Origin (another web page) is refused before anything runs."""
    port = server.port
    cases = [
        get_full(server.url + "/api/health", {"Host": f"evil.example:{port}"}),
        get_full(server.url + "/", {"Host": "evil.example"}),
    ]
    for status, body, headers in cases:
        assert status == 403 and "host" in json.loads(body)["error"], body
        assert headers.get("x-content-type-options") == "nosniff"
    for origin in ("http://evil.example", f"http://evil.example:{port}", "null", f"http://localhost:{port + 1}"):
        status, body = post_form(server.url + "/api/colorize", {"model": "photo"}, {"file": ("g.png", _png())},
                                 headers={"Origin": origin})
        assert status == 403 and "origin" in body["error"] and "\n" not in body["error"], (origin, body)
    # the app's own page, its other local names, and clients that send no Origin (curl, scripts)
    assert post_form(server.url + "/api/upload", files={"file": ("g.png", _png())},
                     headers={"Origin": server.url})[0] == 200
    assert get_full(server.url + "/api/health", {"Host": f"localhost:{port}"})[0] == 200
    assert post_form(f"{server.url}/api/upload", files={"file": ("g.png", _png())},
                     headers={"Host": f"localhost:{port}", "Origin": f"http://localhost:{port}"})[0] == 200
    assert post_form(server.url + "/api/upload", files={"file": ("g.png", _png())})[0] == 200


def test_allowed_host_option_opens_the_server_to_a_chosen_name():
    srv = Server("--allowed-host", "photos.lan")
    try:
        host = f"photos.lan:{srv.port}"
        assert get_full(srv.url + "/api/health", {"Host": host})[0] == 200
        status, up = post_form(srv.url + "/api/upload", files={"file": ("g.png", _png())},
                               headers={"Host": host, "Origin": f"http://{host}"})
        assert status == 200, up
        assert get_full(srv.url + "/api/health", {"Host": f"other.lan:{srv.port}"})[0] == 403
    finally:
        out = srv.stop()
    assert "Traceback" not in out


def test_host_policy_of_a_lan_server():
    """--host 0.0.0.0: the machine's IP addresses and host name are accepted, other names are not."""


    from lumachrome.app.server import HostPolicy

    lan = HostPolicy("0.0.0.0")
    for host in ("192.168.1.20:7860", "10.0.0.5", "[fe80::1]:7860", "localhost:7860", "127.0.0.1",
                 f"{socket.gethostname()}:7860"):
        assert lan.check(host, None) is None, host
    assert lan.check("evil.example:7860", None) is not None
    assert lan.check("192.168.1.20:7860", "http://192.168.1.20:7860") is None
    assert lan.check("192.168.1.20:7860", "http://evil.example") is not None
    local = HostPolicy("127.0.0.1")
    assert local.check("127.0.0.1:7860", None) is None and local.check("192.168.1.20:7860", None) is not None
    assert local.check(None, None) is not None  # no Host header
    named = HostPolicy("127.0.0.1", ["Photos.LAN"])
    assert named.check("photos.lan:443", "https://photos.lan") is None  # behind a TLS proxy
    assert HostPolicy("127.0.0.1", ["*"]).check("anything.example", None) is None


def test_deeply_nested_or_huge_json_is_a_400(server):
    deep = "[" * 40_000 + "]" * 40_000  # 80 kB: RecursionError in json.loads -> plain-text 500 before
    status, body = post_form(server.url + "/api/colorize", {"hints": deep}, {"file": ("g.png", _png())})
    assert status == 400 and "hints" in body.get("error", "") and "nested" in body["error"], (status, body)
    status, body = post_form(server.url + "/api/colorize", {"hints": deep * 3}, {"file": ("g.png", _png())})
    assert status == 400 and "hints" in body.get("error", "") and "too long" in body["error"], (status, body)
    many = "[" + ",".join(['{"x": 1, "y": 1, "color": "#ffffff"}'] * 20_000) + "]"
    status, body = post_form(server.url + "/api/colorize", {"hints": many}, {"file": ("g.png", _png())})
    assert status == 400 and "hints" in body.get("error", ""), (status, body)
    status, body = post_form(server.url + "/api/colorize", {},
                             {"file": ("g.png", _png()), "palette": ("p.json", deep.encode())})
    assert status == 400 and "palette" in body.get("error", ""), (status, body)
    assert server.alive()


def test_error_messages_do_not_reveal_server_paths(server):
    import tempfile

    cases = [
        post_form(server.url + "/api/colorize", {}, {"file": ("g.png", _png()), "palette": ("p.json", b"{oops")}),
        post_form(server.url + "/api/colorize", {}, {"file": ("g.png", _png()), "palette": ("p.json", b"{}")}),
        post_form(server.url + "/api/colorize", {}, {"file": ("g.png", _png()), "reference": ("r.png", b"nope")}),
        post_form(server.url + "/api/colorize", {}, {"file": ("g.png", _png()), "reference": ("r.png", _png()[:300])}),
        post_form(server.url + "/api/upload", files={"file": ("t.png", _png()[:300])}),
    ]
    for status, body in cases:
        assert status == 400, body
        msg = body["error"]
        assert "lumachrome-app-" not in msg and tempfile.gettempdir() not in msg, msg


def test_pixel_limit_messages_agree(server, tmp_path):
    """An image above Pillow's own guard (2 x 200 MP) was refused quoting '400000000 pixels'."""
    from lumachrome.errors import ImageError
    from lumachrome.imageio import DEFAULT_MAX_PIXELS, load_image

    bomb = _png_header(30000, 15000)  # 450 MP
    status, body = post_form(server.url + "/api/upload", files={"file": ("bomb.png", bomb)})
    assert status == 413 and "limit 0.5 MP" in body["error"] and "400" not in body["error"], body
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    readme_mp = int(re.search(r"larger than (\d+) MP", readme).group(1))
    assert readme_mp * 1_000_000 == DEFAULT_MAX_PIXELS
    (tmp_path / "bomb.png").write_bytes(bomb)
    with pytest.raises(ImageError) as e:
        load_image(tmp_path / "bomb.png")
    assert f"limit {readme_mp} MP" in str(e.value) and "400" not in str(e.value), str(e.value)


def _raw_post(port: int, length: int) -> "socket.socket":
    """A POST /api/upload that declares ``length`` bytes and sends only the start of its body."""
    s = socket.create_connection(("127.0.0.1", port), timeout=60)
    s.sendall((f"POST /api/upload HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
               f"Content-Type: multipart/form-data; boundary=xx\r\nContent-Length: {length}\r\n\r\n").encode()
              + b"--xx\r\n")
    return s


def _read_response(s) -> tuple[int, dict, bytes]:
    """Status, headers and body of one HTTP/1.1 response read from a socket."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = s.recv(65536)
        assert chunk, data
        data += chunk
    head, body = data.split(b"\r\n\r\n", 1)
    status_line, *lines = head.decode("latin-1").split("\r\n")
    headers = {k.strip().lower(): v.strip() for k, v in (ln.split(":", 1) for ln in lines)}
    while len(body) < int(headers.get("content-length", 0)):
        chunk = s.recv(65536)
        assert chunk, body
        body += chunk
    return int(status_line.split()[1]), headers, body


def _uploads(server) -> dict:
    return get_json(server.url + "/api/health")[1]["uploads"]


def _wait_for(predicate, what: str) -> None:
    import time

    for _ in range(1200):  # a condition, not a time limit: normally true within a few polls
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError(f"never happened: {what}")


def test_parallel_uploads_are_capped_with_503_and_retry_after(server):
    """Bodies used to be buffered before the job queue applied: 16 slow 24 MB uploads held ~750 MB."""
    info = _uploads(server)
    budget, per = int(info["limit_mb"] * MB), int(info["request_limit_mb"] * MB)
    size = min(per, budget)
    n = min(budget // size, info["max_active"])
    held = [_raw_post(server.port, size) for _ in range(n)]
    try:
        _wait_for(lambda: _uploads(server)["active"] == n, f"{n} uploads in progress")
        with _raw_post(server.port, size) as s:  # one more: refused at once, before its body is read
            status, headers, body = _read_response(s)
        assert status == 503, (status, body)
        assert int(headers["retry-after"]) > 0
        assert "busy" in json.loads(body)["error"]
        assert _uploads(server)["active"] == n
    finally:
        for s in held:
            s.close()
    _wait_for(lambda: _uploads(server)["active"] == 0, "the abandoned uploads released")
    assert post_form(server.url + "/api/upload", files={"file": ("g.png", _png())})[0] == 200
