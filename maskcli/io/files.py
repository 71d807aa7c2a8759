"""Which paths maskcli reads as files: regular files only.

Every reader of a named file (an image, a mask, a background, weights, a list of paths) asks
:func:`regular_file_problem` first, so a FIFO, a device or a socket is refused with one reason, the same words
everywhere: reading one can block forever (a FIFO with no writer) or never end (``/dev/zero``). Cheap to import (no
decoder), so the command line can ask before any decoder loads.
"""

from __future__ import annotations

import os
import stat

from maskcli.errors import InputError

_KINDS = (
    (stat.S_ISFIFO, "FIFO"),
    (stat.S_ISCHR, "character device"),
    (stat.S_ISBLK, "block device"),
    (stat.S_ISSOCK, "socket"),
    (stat.S_ISDIR, "folder"),
)


def file_kind(mode: int) -> str:
    """What a ``st_mode`` names, in words: ``"FIFO"``, ``"character device"`` ... (``"regular file"``).

    >>> file_kind(stat.S_IFIFO | 0o644), file_kind(stat.S_IFREG | 0o644)
    ('FIFO', 'regular file')
    """
    for test, kind in _KINDS:
        if test(mode):
            return kind
    return "regular file" if stat.S_ISREG(mode) else "special file"


def not_regular(mode: int, what: str = "a file") -> str | None:
    """Why a file of this ``st_mode`` is not read, or None for a regular file; ``what``: the file a folder was
    given for.

    >>> not_regular(stat.S_IFCHR), not_regular(stat.S_IFDIR, "an image"), not_regular(stat.S_IFREG)
    ('not a regular file (character device)', 'is a folder, not an image', None)
    """
    if stat.S_ISREG(mode):
        return None
    kind = file_kind(mode)
    return f"is a folder, not {what}" if kind == "folder" else f"not a regular file ({kind})"


def regular_file_problem(path: str | os.PathLike[str], what: str = "a file") -> str | None:
    """Why ``path`` cannot be read as a regular file, in a few words, or None when it can be (symlinks followed).

    >>> regular_file_problem("/dev/zero"), regular_file_problem("no/such.png"), regular_file_problem(__file__)
    ('not a regular file (character device)', 'no such file', None)
    """
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        return "no such file"
    except PermissionError:
        return "permission denied"
    except OSError as error:  # symlink loops, names too long
        return error.strerror or str(error)
    problem = not_regular(mode, what)
    if problem is None and not os.access(path, os.R_OK):
        return "permission denied"
    return problem


def read_regular_file(path: str | os.PathLike[str], what: str = "an image") -> bytes:
    """The bytes of a regular file, read no further than its size.

    A FIFO, device, socket or folder (also behind a symlink) is refused before it is opened for reading, since
    reading one can block forever (a FIFO) or never end (``/dev/zero``): :class:`~maskcli.errors.InputError`
    says ``not a regular file (FIFO)``. The file is opened without blocking and checked again on the open
    descriptor, so a file swapped after the first check is refused too.

    >>> read_regular_file("/dev/null")
    Traceback (most recent call last):
    ...
    maskcli.errors.InputError: not a regular file (character device)
    """
    problem = regular_file_problem(path, what)
    if problem is not None:
        raise InputError(problem)
    try:
        handle = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0))
    except PermissionError:
        raise InputError("permission denied") from None
    except FileNotFoundError:
        raise InputError("no such file") from None
    except OSError as error:  # symlink loops, I/O errors
        raise InputError(error.strerror or str(error)) from None
    try:
        info = os.fstat(handle)
        problem = not_regular(info.st_mode, what)
        if problem is not None:
            raise InputError(problem)
        chunks, left = [], info.st_size
        while left > 0:  # bounded by the size seen at open: a file that grows is not followed
            chunk = os.read(handle, min(left, 1 << 30))
            if not chunk:
                break
            chunks.append(chunk)
            left -= len(chunk)
        return b"".join(chunks)
    except OSError as error:
        raise InputError(error.strerror or str(error)) from None
    finally:
        os.close(handle)
