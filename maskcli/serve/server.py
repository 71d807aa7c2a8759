"""Running the app with uvicorn: one process, one model load, an orderly stop.

SIGTERM (a service manager's stop, ``docker stop``) and Ctrl-C stop taking connections, let the requests in flight
finish, and return; after SIGTERM :func:`serve` returns normally (a stopped service exits 0), after Ctrl-C the
signal is passed on to the handler the caller had (the command line's ends with status 130).
"""

from __future__ import annotations

import signal
from collections.abc import Callable
from typing import Any

from maskcli.errors import SetupError
from maskcli.serve.settings import ServeSettings


def serve(settings: ServeSettings | None = None, *, describe: Callable[[BaseException], str] = str,
          log_level: str = "warning") -> None:
    """Serve :func:`maskcli.serve.app.create_app` on ``settings.host:settings.port`` until stopped.

    Raises
    ------
    SetupError
        The web stack is not installed, or the address cannot be bound.
    """
    settings = settings or ServeSettings()
    try:
        import uvicorn
    except ImportError:
        raise SetupError("serving needs the web stack: pip install 'maskcli[serve]'") from None
    from maskcli.serve.app import create_app

    app = create_app(settings, describe=describe)
    # Keep-alive long enough for a client's pool between two requests; the access log off (one line per request
    # costs throughput, and a proxy in front logs them).
    config = uvicorn.Config(app, host=settings.host, port=settings.port, log_level=log_level, access_log=False,
                            timeout_keep_alive=30, timeout_graceful_shutdown=int(settings.timeout) + 5,
                            server_header=False)
    server = _server_class()(config)
    try:
        server.run()
    except SystemExit:  # uvicorn's answer to an address it cannot bind (it has logged why)
        raise SetupError(f"cannot listen on {settings.host}:{settings.port} (the port is in use, or the "
                         "address is not this machine's)") from None


def _server_class() -> Any:
    import uvicorn

    class Server(uvicorn.Server):
        """uvicorn's server, with SIGTERM taken as the orderly stop it is: uvicorn finishes the requests in
        flight, then would raise the signal again for the caller's handler (which would end the process with
        the status of an interruption); a stopped service has done its job."""

        def handle_exit(self, sig: int, frame: Any) -> None:
            super().handle_exit(sig, frame)
            if sig == signal.SIGTERM:
                captured = getattr(self, "_captured_signals", None)
                if isinstance(captured, list) and signal.SIGTERM in captured:
                    captured.remove(signal.SIGTERM)

    return Server


__all__ = ["serve"]
