"""The command line's view of its process, in one object: the three streams, which of them is a terminal, whether
to use colour, and the exit statuses.

:func:`maskcli.cli.app.main` makes one :class:`IOContext` (from the process, or the one a caller passes, as a test
does) and makes it current while the command runs (:func:`using`); commands read :func:`current` instead of
``sys.std*``.
This module imports nothing heavy: the command's front door (:mod:`maskcli.cli.entry`) uses its statuses before the
rest of the command line loads.

>>> import io
>>> context = IOContext(stdin=io.TextIOWrapper(io.BytesIO(b"a.png\\n")), stdout=io.StringIO(), stderr=io.StringIO())
>>> context.stderr_isatty, context.stdin_bytes.read()
(False, b'a.png\\n')
>>> int(Exit.INTERRUPTED)
130
"""

from __future__ import annotations

import contextlib
import contextvars
import enum
import os
import sys
from collections.abc import Iterator
from typing import IO, Any, BinaryIO

from maskcli.io.streams import isatty


class Exit(enum.IntEnum):
    """The exit statuses of every command."""

    OK = 0  #: all done
    SOME_FAILED = 1  #: some items failed, each named on stderr
    USAGE = 2  #: a usage error
    SETUP = 3  #: the run could not start: no inputs, weights or device unavailable
    INTERRUPTED = 130  #: Ctrl-C or SIGTERM

    @classmethod
    def of_batch(cls, failed: int) -> Exit:
        """A finished batch's status: SOME_FAILED when any of its items failed.

        >>> Exit.of_batch(0).name, Exit.of_batch(2).name
        ('OK', 'SOME_FAILED')
        """
        return cls.SOME_FAILED if failed else cls.OK


class IOContext:
    """The streams a command reads and writes (text; the bytes beneath through :attr:`stdin_bytes` and
    :attr:`stdout_bytes`), whether each is a terminal, and whether to colour.

    Colour follows https://no-color.org: off when ``NO_COLOR`` is set or ``TERM`` is ``dumb``; otherwise each
    console (:meth:`console`) colours where its stream is a terminal.
    """

    # A plain class, not a dataclass: the front door imports this module before it takes the signals, and
    # dataclasses would bring inspect with it.
    def __init__(self, stdin: IO[str], stdout: IO[str], stderr: IO[str], colour: bool | None = None) -> None:
        self.stdin, self.stdout, self.stderr = stdin, stdout, stderr
        self.stdin_isatty = isatty(self.stdin)
        self.stdout_isatty = isatty(self.stdout)
        self.stderr_isatty = isatty(self.stderr)
        if colour is None:
            colour = "NO_COLOR" not in os.environ and os.environ.get("TERM") != "dumb"
        self.colour = colour

    @classmethod
    def of_process(cls) -> IOContext:
        """The process's own streams."""
        return cls(sys.stdin, sys.stdout, sys.stderr)

    @property
    def stdin_bytes(self) -> BinaryIO:
        """stdin as bytes (an image, or paths that need not be text)."""
        return self.stdin.buffer  # type: ignore[attr-defined]  # IO[str] declares none; text streams have one

    @property
    def stdout_bytes(self) -> BinaryIO:
        """stdout as bytes (an image)."""
        return self.stdout.buffer  # type: ignore[attr-defined]  # as above

    def binary_stdout(self) -> BinaryIO:
        """stdout for image bytes; refuses a terminal, where binary would garble the screen."""
        if self.stdout_isatty:
            from maskcli.errors import OptionError

            raise OptionError("output", "refusing to write image data to a terminal; redirect stdout (> file) or "
                                        "give -o")
        return self.stdout_bytes

    def console(self, stream: IO[str] | None = None, **options: Any) -> Any:
        """A rich console on ``stream`` (stdout by default), in colour only where this context allows it."""
        from rich.console import Console

        return Console(file=stream or self.stdout, no_color=not self.colour, **options)


_current: contextvars.ContextVar[IOContext | None] = contextvars.ContextVar("maskcli_io", default=None)


def current() -> IOContext:
    """The context of the command that runs (the process's streams outside one)."""
    return _current.get() or IOContext.of_process()


@contextlib.contextmanager
def using(context: IOContext) -> Iterator[IOContext]:
    """Make ``context`` current for the block (a command's run)."""
    token = _current.set(context)
    try:
        yield context
    finally:
        _current.reset(token)


__all__ = ["Exit", "IOContext", "current", "using"]
