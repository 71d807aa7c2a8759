"""Standard input for pipelines: what a piped stdin holds, from its first bytes."""

from __future__ import annotations

from typing import BinaryIO, Literal

StdinKind = Literal["none", "image", "records", "paths"]

# First bytes of the formats maskcli reads.
_MAGIC = (b"\xff\xd8\xff", b"\x89PNG", b"II*\x00", b"MM\x00*", b"RIFF", b"BM", b"GIF87a", b"GIF89a")


def stdin_kind(stream: BinaryIO) -> StdinKind:
    """What a piped stdin holds, from its first bytes: an image, JSON records (from ``--json``), or paths.

    A terminal, or an empty stream, holds nothing.

    >>> import io
    >>> [stdin_kind(io.BufferedReader(io.BytesIO(data))) for data in (b"\\x89PNG...", b' {"input"', b"a.png", b"")]
    ['image', 'records', 'paths', 'none']
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


def isatty(stream: object) -> bool:
    """Whether ``stream`` is a terminal (False for a closed stream or one that is not a real file)."""
    try:
        # The ignore below: any object may be given; one without isatty is not a terminal.
        return bool(stream.isatty())  # type: ignore[attr-defined]
    except (AttributeError, ValueError, OSError):  # closed, or not a real stream
        return False


def _peek(stream: BinaryIO) -> bytes:
    peek = getattr(stream, "peek", None)
    if peek is None:
        return b""
    try:
        head = peek(16)
    except (OSError, ValueError):
        return b""
    return head[:16]
