"""The lumachrome web app (``lumachrome serve``): upload, model choice, colour hints, restoration,
reference/palette correction, before/after view, explain view, full-resolution download.

``Engine`` (:mod:`lumachrome.app.engine`) does the work; :mod:`lumachrome.app.server` is the HTTP
layer (FastAPI) and the page (``app/static``). See docs/web-app.md.
"""

from lumachrome.app.engine import AppConfig, Engine

__all__ = ["AppConfig", "Engine", "create_app", "serve"]


def create_app(*args, **kwargs):
    from lumachrome.app.server import create_app as _create

    return _create(*args, **kwargs)


def serve(*args, **kwargs):
    from lumachrome.app.server import serve as _serve

    return _serve(*args, **kwargs)
