"""Standard input and output for pipelines: what is on stdin, and refusing binary on a terminal."""

from __future__ import annotations

from typing import BinaryIO, Literal

from maskcli.cli.context import IOContext, isatty
from maskcli.errors import OptionError

StdinKind = Literal["none", "image", "records", "paths"]

# First bytes of the formats maskcli reads.
_MAGIC = (b"\xff\xd8\xff", b"\x89PNG", b"II*\x00", b"MM\x00*", b"RIFF", b"BM", b"GIF87a", b"GIF89a")


def stdin_kind(stream: BinaryIO) -> StdinKind:
    """What a piped stdin holds, from its first bytes: an image, JSON records (from ``--json``), or paths.

    A terminal, or an empty stream, holds nothing.
    """
    if isatty(stream):
        return "none"
    head = _peek(stream)
    if not head:
        return "none"
    if head.startswith(_MAGIC):
        return "image"
    if head.lstrip()[:1] == b"{":
        return "records"
    return "paths"


def _peek(stream: BinaryIO) -> bytes:
    peek = getattr(stream, "peek", None)
    if peek is None:
        return b""
    try:
        head = peek(16)
    except (OSError, ValueError):
        return b""
    return head[:16]


def binary_stdout(io: IOContext) -> BinaryIO:
    """stdout for image bytes; refuses a terminal, where binary would garble the screen."""
    stream = io.stdout_bytes
    if io.stdout_isatty:
        raise OptionError(
            "output", "refusing to write image data to a terminal; redirect stdout (> file) or give -o"
        )
    return stream
