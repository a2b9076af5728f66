"""``lumachrome serve``: the web app (:mod:`lumachrome.app`)."""

from __future__ import annotations

from typing import List, Optional

import typer

from lumachrome.cli.common import app, finite


@app.command("serve")
def serve_command(
    host: str = typer.Option("127.0.0.1", "--host", help="Address to listen on (default: this machine only; "
                             "0.0.0.0 makes the app reachable from other machines)."),
    port: int = typer.Option(7860, "--port", min=1, max=65535, help="Port."),
    max_upload_mb: float = typer.Option(25.0, "--max-upload-mb", callback=finite, min=0.1, help="Largest upload (MB)."),
    max_megapixels: float = typer.Option(50.0, "--max-megapixels", callback=finite, min=0.01, help="Largest image (megapixels)."),
    workers: int = typer.Option(1, "--workers", min=1, help="Images processed at once (the others wait in a queue)."),
    queue_size: int = typer.Option(32, "--queue", min=0, help="Requests allowed to wait; more are refused (503)."),
    device: str = typer.Option("cpu", "--device", help="auto, cpu, cuda or cuda:N."),
    open_browser: bool = typer.Option(False, "--open", help="Open the page in the default browser."),
    allowed_host: Optional[List[str]] = typer.Option(
        None, "--allowed-host", metavar="NAME",
        help="Another host name the server answers to (repeatable; '*': any). Requests whose Host or Origin "
             "names something else are refused (protection against other web pages and DNS rebinding)."),
) -> int:
    """Web app: upload, colour hints, restoration, before/after, download (http://127.0.0.1:7860/)."""
    import socket

    from lumachrome.app.engine import AppConfig
    from lumachrome.app.server import serve
    from lumachrome.precision import resolve_device
    from lumachrome.errors import ConfigError

    resolve_device(device)  # ConfigError now rather than at the first request
    try:  # a clear message for a busy port instead of uvicorn's traceback-like log
        with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as s:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.bind((host, port))
    except OSError as e:
        raise ConfigError(f"serve: cannot listen on {host}:{port} ({e.strerror or e})") from None
    cfg = AppConfig(max_upload_mb=max_upload_mb, max_pixels=int(max_megapixels * 1e6), workers=workers,
                    queue_size=queue_size, device=device, host=host, allowed_hosts=list(allowed_host or []))
    serve(host, port, cfg, open_browser=open_browser)
    return 0
