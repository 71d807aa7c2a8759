"""``maskcli serve``: the library's masks and composites over HTTP, with a page to drop photos on.

Needs the web stack: ``pip install 'maskcli[serve]'`` (Starlette and uvicorn); only this package imports it.
:func:`create_app` makes the ASGI app (:mod:`maskcli.serve.app`), :func:`serve` runs it with uvicorn until
SIGTERM or Ctrl-C, finishing the requests in flight.
"""

from __future__ import annotations

from typing import Any

from maskcli.serve.settings import ServeSettings


def create_app(settings: ServeSettings | None = None, **options: Any) -> Any:
    """The ASGI app (see :func:`maskcli.serve.app.create_app`)."""
    from maskcli.serve.app import create_app as _create

    return _create(settings, **options)


def serve(settings: ServeSettings | None = None, **options: Any) -> None:
    """Run the server until stopped (see :func:`maskcli.serve.server.serve`)."""
    from maskcli.serve.server import serve as _serve

    _serve(settings, **options)


__all__ = ["ServeSettings", "create_app", "serve"]
