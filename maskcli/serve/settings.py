"""The server's settings: where it listens, who may call it, and the limits that keep it up.

>>> ServeSettings().host
'127.0.0.1'
>>> ServeSettings(max_queue=0)
Traceback (most recent call last):
...
maskcli.errors.OptionError: max_queue: must be at least 1, not 0
"""

from __future__ import annotations

import dataclasses

from maskcli.cores import cpu_count
from maskcli.errors import OptionError
from maskcli.io import DEFAULT_MAX_PIXELS

#: Requests in progress at once beyond which the server answers 503: enough for a few hundred clients, while the
#: images they hold (a few MB each) stay far from the memory of a small host.
DEFAULT_MAX_QUEUE = 256


@dataclasses.dataclass(frozen=True)
class ServeSettings:
    """How the server runs.

    Parameters
    ----------
    host, port : str, int
        Where it listens: loopback unless told otherwise.
    token : str, optional
        Require ``Authorization: Bearer TOKEN`` on the API (the page and ``/health`` stay open).
    max_body : int
        Largest request body in bytes (413 beyond).
    max_pixels : int
        Largest image (and mask) in pixels (413 beyond), checked from the header before decoding.
    max_queue : int
        Requests in progress at once (503 with ``Retry-After`` beyond).
    timeout : float
        Seconds a request may take (504 beyond).
    batch_window : float
        Seconds a CNN batch waits for more requests when its queue was empty.
    max_batch : int
        Most images in one CNN batch.
    threads : int
        Threads that decode, composite and encode (default: the usable cores).
    cors : tuple of str
        Origins allowed to call the API from a browser (none by default: CORS off).
    """

    host: str = "127.0.0.1"
    port: int = 7000
    token: str | None = None
    max_body: int = 50 * 1024 * 1024
    max_pixels: int = DEFAULT_MAX_PIXELS
    max_queue: int = DEFAULT_MAX_QUEUE
    timeout: float = 60.0
    batch_window: float = 0.005
    max_batch: int = 8
    threads: int = dataclasses.field(default_factory=cpu_count)
    cors: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        for name in ("max_body", "max_pixels", "max_queue", "max_batch", "threads"):
            value = getattr(self, name)
            if value < 1:
                raise OptionError(name, f"must be at least 1, not {value}")
        if self.timeout <= 0:
            raise OptionError("timeout", f"must be more than 0 seconds, not {self.timeout}")
        if self.batch_window < 0:
            raise OptionError("batch_window", f"must be 0 or more seconds, not {self.batch_window}")
        if not 0 <= self.port <= 65535:
            raise OptionError("port", f"must be between 0 and 65535, not {self.port}")
        if self.token is not None and not self.token.strip():
            raise OptionError("token", "must not be empty")


__all__ = ["DEFAULT_MAX_QUEUE", "ServeSettings"]
