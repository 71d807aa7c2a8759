"""``maskcli serve``: the masks over HTTP, with a page to drop photos on (needs ``pip install 'maskcli[serve]'``)."""

from __future__ import annotations

import os
from typing import Annotated, Optional

import typer

from maskcli.cli.context import current
from maskcli.io import DEFAULT_MAX_PIXELS

LIMITS = "Limits"

#: Where the token may come from instead of the command line (where other users of the machine could read it).
TOKEN_VARIABLE = "MASKCLI_TOKEN"


def serve_command(
    host: Annotated[str, typer.Option("--host", help="Address to listen on; loopback unless told otherwise "
                                      "(0.0.0.0: every interface).")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", help="Port to listen on.", min=0, max=65535)] = 7000,
    token: Annotated[Optional[str], typer.Option("--token", help=f"Require 'Authorization: Bearer TOKEN' on the "
                                                 f"API (default: ${TOKEN_VARIABLE}, if set; the page and /health "
                                                 "stay open).", show_default=False)] = None,
    cors: Annotated[Optional[list[str]], typer.Option("--cors", help="Let pages from this origin call the API "
                                                      "(repeatable; default: CORS off).",
                                                      show_default=False)] = None,
    max_body: Annotated[int, typer.Option("--max-body", help="Largest request body in MB (413 beyond).", min=1,
                                          rich_help_panel=LIMITS)] = 50,
    max_pixels: Annotated[int, typer.Option("--max-pixels", help="Largest image in pixels (413 beyond).", min=1,
                                            rich_help_panel=LIMITS)] = DEFAULT_MAX_PIXELS,
    max_queue: Annotated[int, typer.Option("--max-queue", help="Requests in progress at once (503 with "
                                           "Retry-After beyond).", min=1, rich_help_panel=LIMITS)] = 256,
    timeout: Annotated[float, typer.Option("--timeout", help="Seconds one request may take (504 beyond).",
                                           min=0.001, rich_help_panel=LIMITS)] = 60.0,
    batch_window: Annotated[float, typer.Option("--batch-window", help="Milliseconds a CNN batch waits for more "
                                                "requests when none are queued.", min=0,
                                                rich_help_panel=LIMITS)] = 5.0,
    max_batch: Annotated[int, typer.Option("--max-batch", help="Most images in one CNN batch.", min=1,
                                           rich_help_panel=LIMITS)] = 8,
) -> None:
    """Serve masks over HTTP: POST /segment and /apply, a page at / to drop photos on.

    \b
    Examples:
      maskcli serve                                   # http://127.0.0.1:7000/
      curl --data-binary @photo.jpg '127.0.0.1:7000/apply?method=cnn' -o cutout.png
      MASKCLI_TOKEN=secret maskcli serve --host 0.0.0.0 --port 8080
    """
    from maskcli.cli.flags import Wording
    from maskcli.serve import ServeSettings, serve

    settings = ServeSettings(host=host, port=port, token=token or os.environ.get(TOKEN_VARIABLE) or None,
                             max_body=max_body * 1024 * 1024, max_pixels=max_pixels, max_queue=max_queue,
                             timeout=timeout, batch_window=batch_window / 1000, max_batch=max_batch,
                             cors=tuple(cors or ()))
    where = f"[{host}]" if ":" in host else host
    print(f"maskcli: serving on http://{where}:{port}/ (Ctrl-C to stop)", file=current().stderr, flush=True)
    serve(settings, describe=Wording().message)
