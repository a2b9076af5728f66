"""``lumachrome serve``: a small FastAPI app around :class:`lumachrome.app.engine.Engine`.

Why FastAPI and a hand-written page rather than Gradio: the page needs pixel-exact hint placement
on the full-resolution image, a before/after slider and an explain view; written directly (one
HTML, one JS, one CSS file in ``app/static``, no build step, no fonts or scripts from elsewhere) it
is small, loads instantly and makes no external request, which a browser test checks. The HTTP API
is the same one the page uses.

Routes::

    GET  /                       the page
    GET  /static/<file>          its script and style sheet
    GET  /api/health             {"ok": true, "queue": {...}}
    GET  /api/models             {"models": [...], "default": name, "limits": {...}}
    POST /api/upload             multipart "file" -> {"id", "width", "height", "preview", ...}
    POST /api/colorize           multipart: "file" or "id", "model", "hints", "flat", "restore", "restore_skip",
                                 "reference" (file), "palette" (file), "transfer", "strength", "colour", "explain"
                                 -> {"result" (full-resolution PNG), "preview", "input_preview", ...}
    GET  /files/<id>/<name>      stored previews, results and explain pages

Errors are JSON ``{"error": "<one line>"}`` with 400 (bad input), 404, 413 (upload too large),
503 (queue full) or 500 (a bug: logged, the server keeps running).

Security (docs/reliability.md, "Security"): every response carries ``X-Content-Type-Options:
nosniff`` and a strict ``Content-Security-Policy`` (the page: scripts, styles and images from this
origin only; ``/files/``: no scripts at all, sandboxed); ``/files/`` serves only what the server
wrote itself (previews, the result as an ``attachment``, the explain view), never an upload.
:class:`HostPolicy` refuses (403) a ``Host`` that is not this server's own address or name (DNS
rebinding) and an ``Origin`` that is not the app's own (another web page driving the local server);
requests without ``Origin`` (curl, scripts) are answered. ``--allowed-host`` adds names.
"""

from __future__ import annotations

import logging
import re
from importlib import resources
from pathlib import Path
from typing import Any, Sequence

from fastapi import Request  # module level: the route annotations below are resolved by name

from lumachrome.app.engine import AppConfig, Busy, Engine, parse_hints_field
from lumachrome.errors import ImageError, LumachromeError

__all__ = ["HostPolicy", "create_app", "is_loopback", "serve"]

log = logging.getLogger("lumachrome.app")
_STATIC_TYPES = {".html": "text/html; charset=utf-8", ".js": "text/javascript; charset=utf-8",
                 ".css": "text/css; charset=utf-8"}

#: Content-Security-Policy of the page: its own script, style sheet and images, fetches to itself,
#: the explain view in a frame; nothing inline, nothing from elsewhere, never framed by others.
PAGE_CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
            "connect-src 'self'; frame-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; "
            "frame-ancestors 'none'")
#: Stored files (previews, results, the explain view with its inline style sheet): no script can run,
#: even in a file that somehow contained one (sandbox), and only the app's page may frame them.
FILES_CSP = ("default-src 'none'; img-src 'self' data:; style-src 'unsafe-inline'; object-src 'none'; "
             "base-uri 'none'; form-action 'none'; frame-ancestors 'self'; sandbox allow-same-origin")
#: Everything else (the API's JSON, errors, the page's script and style sheet).
OTHER_CSP = "default-src 'none'; object-src 'none'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"


def security_headers(path: str) -> dict[str, str]:
    """The headers every response of ``path`` gets (see :data:`PAGE_CSP`)."""
    files = path.startswith("/files/")
    csp = PAGE_CSP if path == "/" else FILES_CSP if files else OTHER_CSP
    return {
        "X-Content-Type-Options": "nosniff",
        "Content-Security-Policy": csp,
        "X-Frame-Options": "SAMEORIGIN" if files else "DENY",
        "Referrer-Policy": "no-referrer",
        "Cross-Origin-Resource-Policy": "same-origin",
        "Cross-Origin-Opener-Policy": "same-origin",
    }


def _split_host(value: str) -> tuple[str, int | None] | None:
    """``"Name:port"`` / ``"[::1]:port"`` / ``"name"`` -> ``("name", port or None)`` (lower case, no
    trailing dot); None when it is not a host name or address."""
    value = value.strip().lower()
    if value.startswith("["):
        name, _, rest = value[1:].partition("]")
        port = rest[1:] if rest.startswith(":") else rest
    elif value.count(":") == 1:
        name, _, port = value.partition(":")
    else:
        name, port = value, ""  # a name, or a bare IPv6 address
    name = name.rstrip(".")
    if not name or not re.fullmatch(r"[a-z0-9._:-]+", name) or (port and not port.isdigit()):
        return None
    return name, int(port) if port else None


def _is_ip(name: str) -> bool:
    import ipaddress

    try:
        ipaddress.ip_address(name)
    except ValueError:
        return False
    return True


class HostPolicy:
    """Which ``Host`` and ``Origin`` headers the server answers.

    ``Host`` must name this server: with a loopback address (the default) ``localhost``,
    ``127.0.0.1``, ``::1`` or the bound address; with a specific address that address (and the
    loopback names); with ``0.0.0.0`` / ``::`` (all interfaces) also any IP address literal and the
    machine's host name. A DNS-rebinding page (``evil.example`` resolving to 127.0.0.1) sends its own
    name and is refused. ``allowed`` adds names (``"*"``: any; only for servers behind a proxy that
    checks the name itself). ``Origin``, when sent, must be the app's own origin (the same host and
    port as ``Host``) or one of the ``allowed`` names; a request without ``Origin`` (curl, a script)
    is answered, as Jupyter does.
    """

    def __init__(self, bind: str = "127.0.0.1", allowed: Sequence[str] = ()) -> None:
        import socket

        self.any = any(a.strip() == "*" for a in allowed)
        self.extra = {h[0] for h in (_split_host(a) for a in allowed if a.strip() != "*") if h}
        bound = _split_host(bind)
        self.bind = bound[0] if bound else bind
        self.wildcard = self.bind in ("0.0.0.0", "::", "")
        names = {"localhost", "127.0.0.1", "::1", self.bind}
        if self.wildcard:
            for own in (socket.gethostname(), socket.getfqdn()):
                h = _split_host(own)
                if h:
                    names.add(h[0])
        self.names = names | self.extra

    def host_ok(self, name: str) -> bool:
        return self.any or name in self.names or (self.wildcard and _is_ip(name))

    def check(self, host: str | None, origin: str | None) -> str | None:
        """None when a request with these headers may be answered, else the one-line reason."""
        h = _split_host(host or "")
        if h is None or not self.host_ok(h[0]):
            return (f"forbidden: the Host header {host!r} is not an address of this server "
                    "(start the server with --allowed-host NAME to answer to another name)")
        if origin is None:
            return None
        from urllib.parse import urlsplit

        try:
            o = urlsplit(origin.strip())
            o_name, o_port = (o.hostname or "").rstrip("."), o.port
        except ValueError:
            o_name, o_port = "", None
        if o.scheme in ("http", "https") and o_name:
            default = 443 if o.scheme == "https" else 80
            if o_name == h[0] and (o_port or default) == (h[1] or default):
                return None  # the app's own page
            if self.any or o_name in self.extra:
                return None  # a name the user allowed (e.g. a reverse proxy's)
        return f"forbidden: requests from another site are refused (origin {origin!r})"


class _Guard:
    """ASGI middleware around the whole app: refuses requests :class:`HostPolicy` does not allow
    (403, before any body is read) and adds :func:`security_headers` to every response."""

    def __init__(self, app: Any, policy: HostPolicy | None = None) -> None:
        self.app = app
        self.policy = policy or HostPolicy()

    def __getattr__(self, name: str) -> Any:  # app.state, app.routes, ... of the wrapped FastAPI app
        return getattr(self.app, name)

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        from starlette.datastructures import Headers, MutableHeaders
        from starlette.responses import JSONResponse

        extra = security_headers(scope.get("path", ""))

        async def send_with_headers(message: dict) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for k, v in extra.items():
                    headers[k] = v
            await send(message)

        request_headers = Headers(scope=scope)
        refused = self.policy.check(request_headers.get("host"), request_headers.get("origin"))
        if refused is not None:
            log.warning("refused %s %s: %s", scope.get("method"), scope.get("path"), refused)
            await JSONResponse({"error": refused}, status_code=403)(scope, receive, send_with_headers)
            return
        await self.app(scope, receive, send_with_headers)


def _content_disposition(kind: str, name: str) -> str:
    """``attachment``/``inline`` with an ASCII ``filename`` and the exact name as ``filename*`` (RFC 6266)."""
    from urllib.parse import quote

    stem, dot, ext = name.rpartition(".")
    ascii_name = re.sub(r"[^A-Za-z0-9._-]+", "_", stem or ext).strip("._")[:120] or "result"
    ascii_name += f".{ext}" if dot else ""
    return f"{kind}; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(name, safe='')}"


def _static_dir() -> Path:
    return Path(str(resources.files("lumachrome.app") / "static"))


def is_loopback(host: str) -> bool:
    return host in ("127.0.0.1", "localhost", "::1") or host.startswith("127.")


def create_app(config: AppConfig | None = None, engine: Engine | None = None):
    """The ASGI app (FastAPI). ``engine`` defaults to a new :class:`Engine` with ``config``."""
    from fastapi import FastAPI
    from fastapi.responses import FileResponse, JSONResponse, Response
    from starlette.concurrency import run_in_threadpool

    eng = engine or Engine(config or AppConfig())
    cfg = eng.config
    from contextlib import asynccontextmanager

    @asynccontextmanager
    async def lifespan(_app):
        yield
        eng.close()  # uploads and results of this server are removed at shutdown

    app = FastAPI(title="lumachrome", docs_url=None, redoc_url=None, openapi_url=None, lifespan=lifespan)
    app.state.engine = eng

    root_paths = re.compile("|".join(re.escape(str(p)) for p in {eng.root, eng.root.resolve()}) + r"[^\s'\":;,)]*")

    def error(status: int, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
        """A one-line JSON error; a path in the server's folder is cut to its file name (never shown)."""
        message = root_paths.sub(lambda m: m.group(0).rstrip("/").rsplit("/", 1)[-1], str(message))
        return JSONResponse({"error": " ".join(message.split())}, status_code=status, headers=headers)

    def busy(e: Busy) -> JSONResponse:
        return error(503, str(e), {"Retry-After": str(e.retry_after)})

    async def run(fn, *args, **kwargs) -> Response:
        try:
            return JSONResponse(await run_in_threadpool(fn, *args, **kwargs))
        except Busy as e:
            return busy(e)
        except ImageError as e:
            return error(413 if "too large" in str(e) else 400, str(e))
        except LumachromeError as e:
            return error(400, str(e))
        except MemoryError:
            return error(507, "out of memory on this image; try a smaller one")
        except Exception as e:  # noqa: BLE001 - a bug must not take the server down
            log.exception("job failed")
            return error(500, f"internal error ({type(e).__name__}); the server log has the details")

    def json_errors(route):
        """A route whose unexpected exceptions become a one-line JSON 500 (logged), never a plain-text
        page; the upload budget its body took (:func:`read_form`) is given back when it ends."""
        import functools

        @functools.wraps(route)
        async def wrapper(request: Request) -> Response:
            try:
                return await route(request)
            except Exception as e:  # noqa: BLE001 - a bug must not take the server down
                log.exception("request failed")
                return error(500, f"internal error ({type(e).__name__}); the server log has the details")
            finally:
                reserved = getattr(request.state, "reserved_bytes", None)
                if reserved is not None:
                    eng.uploads.release(reserved)

        return wrapper

    async def read_form(request: Request, max_files: int = 3):
        """The multipart form, read with a size limit (the body never exceeds the upload limit) once the
        upload budget (:class:`~lumachrome.app.engine.UploadGate`) has room for it (else 503 at once)."""
        from starlette.requests import ClientDisconnect

        limit = cfg.max_request_bytes
        declared = request.headers.get("content-length")
        too_large = f"upload too large (limit {cfg.max_upload_mb:g} MB)"
        if declared is not None and declared.isdigit() and int(declared) > limit:
            return None, error(413, f"{too_large}: the request has {int(declared) / 2**20:.1f} MB")
        try:  # before a byte of the body is read; released by json_errors when the request ends
            request.state.reserved_bytes = eng.uploads.reserve(
                int(declared) if declared is not None and declared.isdigit() else limit)
        except Busy as e:
            return None, busy(e)
        body = bytearray()
        try:
            async for chunk in request.stream():
                body += chunk
                if len(body) > limit:
                    return None, error(413, too_large)
        except ClientDisconnect:
            return None, error(400, "the upload was interrupted")
        request._body = bytes(body)  # starlette parses the form from the cached body
        del body
        try:
            form = await request.form(max_files=max_files, max_fields=32)
        except Exception as e:  # noqa: BLE001 - malformed multipart
            return None, error(400, f"could not read the form ({e})")
        finally:
            request._body = b""  # the parsed form holds the data now: one copy in memory, not two
        return form, None

    async def file_bytes(form, key: str) -> tuple[bytes | None, str]:
        item = form.get(key)
        if item is None or isinstance(item, str):
            return None, ""
        data = await item.read()
        return data, item.filename or key

    @app.get("/")
    async def index() -> Response:
        return FileResponse(_static_dir() / "index.html", media_type=_STATIC_TYPES[".html"],
                            headers={"Cache-Control": "no-cache"})

    @app.get("/static/{name}")
    async def static(name: str) -> Response:
        path = _static_dir() / name
        if "/" in name or name.startswith(".") or not path.is_file():
            return error(404, f"no such file: /static/{name}")
        return FileResponse(path, media_type=_STATIC_TYPES.get(path.suffix, "application/octet-stream"))

    @app.get("/favicon.ico")
    async def favicon() -> Response:
        return Response(status_code=204)

    @app.get("/api/health")
    async def health() -> dict[str, Any]:
        q = eng.queue
        return {"ok": True, "queue": {"running": q.running, "waiting": q.waiting, "size": q.queue_size},
                "uploads": eng.uploads.status(cfg.max_request_bytes)}

    @app.get("/api/models")
    async def models() -> Response:
        try:
            items = await run_in_threadpool(eng.models)
        except Exception as e:  # noqa: BLE001
            return error(500, f"cannot list models ({e})")
        from lumachrome.transfer import METHODS

        return JSONResponse({
            "models": items, "default": eng.default_model(), "transfer_methods": list(METHODS),
            "restore_steps": ["levels", "defects", "denoise", "contrast"],
            "limits": {"upload_mb": cfg.max_upload_mb, "megapixels": cfg.max_pixels / 1e6},
        })

    @app.post("/api/upload")
    @json_errors
    async def upload(request: Request) -> Response:
        form, err = await read_form(request, max_files=1)
        if err is not None:
            return err
        data, name = await file_bytes(form, "file")
        if data is None:
            return error(400, "no file: send the image as the multipart field 'file'")
        return await run(eng.upload, data, name)

    @app.post("/api/colorize")
    @json_errors
    async def colorize(request: Request) -> Response:
        form, err = await read_form(request)
        if err is not None:
            return err
        try:
            hints = parse_hints_field(form.get("hints") if isinstance(form.get("hints"), str) else None)
            strength = float(form.get("strength") or 1.0)
            colour = float(form.get("colour") or 1.0)
        except LumachromeError as e:
            return error(400, str(e))
        except ValueError:
            return error(400, f"strength and colour must be numbers, got {form.get('strength')!r}, {form.get('colour')!r}")
        upload_id = form.get("id") if isinstance(form.get("id"), str) else None
        data, name = await file_bytes(form, "file")
        if data is not None:  # one-shot API use: upload and colorize in one request
            resp = await run(eng.upload, data, name)
            if resp.status_code != 200:
                return resp
            import json

            upload_id = json.loads(resp.body)["id"]
        if not upload_id:
            return error(400, "no image: send the multipart field 'file' (an image) or 'id' (of an upload)")
        reference, _ = await file_bytes(form, "reference")
        palette, _ = await file_bytes(form, "palette")
        skip = [s.strip() for s in str(form.get("restore_skip") or "").split(",") if s.strip()]
        return await run(
            eng.colorize, upload_id, model=(form.get("model") or None), hints=hints,
            restore=_truthy(form.get("restore")), restore_skip=skip, reference=reference, palette=palette,
            transfer=(form.get("transfer") or None), strength=strength, colour=colour, explain=_truthy(form.get("explain")),
            flat=_truthy(form.get("flat")),
        )

    @app.get("/files/{uid}/{name:path}")
    async def files(uid: str, name: str) -> Response:
        try:
            path, media = eng.path_of(uid, name)  # only what the server wrote, with its own media type
        except ImageError as e:
            return error(404, str(e))
        headers = {}
        if name == "result.png":  # the download: saved, never displayed as a page of this origin
            headers["Content-Disposition"] = _content_disposition("attachment", eng.download_name(uid))
        return FileResponse(path, media_type=media, headers=headers)

    return _Guard(app, HostPolicy(cfg.host, cfg.allowed_hosts))


def _truthy(value: Any) -> bool:
    return str(value or "").strip().lower() in ("1", "true", "yes", "on")


def serve(host: str = "127.0.0.1", port: int = 7860, config: AppConfig | None = None, *,
          open_browser: bool = False, log_level: str = "warning") -> None:
    """Run the web app until Ctrl-C (uvicorn). ``config.host`` is set to ``host`` (the Host check)."""
    import dataclasses

    import uvicorn

    config = dataclasses.replace(config or AppConfig(), host=host)
    app = create_app(config)
    url = f"http://{'[' + host + ']' if ':' in host else host}:{port}/"
    print(f"lumachrome: serving on {url} (Ctrl-C to stop)", flush=True)
    if not is_loopback(host):
        policy = HostPolicy(host, config.allowed_hosts)
        names = ", ".join(sorted(n for n in policy.names
                                 if not is_loopback(n) and n not in ("::1", "0.0.0.0", "::", "")))
        print(f"lumachrome: warning: listening on {host}: other machines can reach this server "
              f"(as {'any IP address of this machine, ' if policy.wildcard else ''}{names or host}; "
              "more names with --allowed-host)", flush=True)
    if open_browser:
        import threading
        import webbrowser

        threading.Timer(1.0, lambda: webbrowser.open(url)).start()
    uvicorn.run(app, host=host, port=port, log_level=log_level, timeout_graceful_shutdown=5)
