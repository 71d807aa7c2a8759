"""Files: reading regular files safely, and writing them atomically under a run's write gate.

Every reader of a named file (an image, a mask, a background, weights, a list of paths) asks
:func:`regular_file_problem` first, so a FIFO, a device or a socket is refused with one reason, the same words
everywhere: reading one can block forever (a FIFO with no writer) or never end (``/dev/zero``).

Every file is written to a hidden temp file in its destination folder and renamed over the destination, so a
reader never sees a partial file, even when the process is killed mid-write. A run's :class:`WriteGate` stops its
renames when the run stops and removes the temp files its writes hold; temp files that a killed process left are
found by the process id in their names.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import functools
import os
import secrets
import stat
import sys
import tempfile
import threading
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from maskcli.errors import InputError, OutputError, OutputTaken, OutputUnavailable, WriteStopped

#: Prefix of the temp files: hidden, and recognisable if a killed process leaves one behind.
TEMP_PREFIX = ".maskcli-tmp-"


# -- reading --------------------------------------------------------------------------------------------------


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


# -- writing --------------------------------------------------------------------------------------------------


class WriteGate:
    """Whether the writes of one run may still rename files into place, and the temp files they hold now.

    A run makes one and passes it to every write it makes (through its sinks); stopping it (Ctrl-C, a full disk)
    leaves no new file, and no other run in the process is affected.

    >>> import tempfile
    >>> from maskcli.errors import WriteStopped
    >>> gate, other = WriteGate(), WriteGate()
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     gate.stop()
    ...     try:
    ...         write_atomic(f"{folder}/a.png", b"a", gate=gate)
    ...     except WriteStopped:
    ...         pass
    ...     write_atomic(f"{folder}/b.png", b"b", gate=other)
    ...     sorted(os.listdir(folder))
    ['b.png']
    """

    def __init__(self) -> None:
        self._stopping = False
        # Held from the stop check to the end of the rename, so that once stop() returns no rename is under way in
        # any thread. Reentrant: in a worker, stop() runs in a signal handler, on the very thread that may hold it.
        self._renaming = threading.RLock()
        self._claims: set[tuple[str, str]] = set()  # temp files being written, as (folder, name prefix)
        self._temps = threading.Lock()

    @property
    def stopped(self) -> bool:
        return self._stopping

    def stop(self) -> None:
        """From now on, the writes through this gate rename nothing: a stopping run leaves no new file.

        Returns once no rename is under way in another thread: every file renamed before is in place and its
        writer will report it.
        """
        with self._renaming:
            self._stopping = True

    def discard_temp_files(self) -> None:
        """:meth:`stop`, and remove every temp file the writes through this gate hold now: they can no longer
        be renamed into place, and a thread cut off between creating its temp file and renaming it (a process
        that ends without waiting for it) would otherwise leave a partial file behind. No new one is made."""
        self.stop()
        with self._temps:
            for claim in list(self._claims):
                _remove_claimed(claim, None)

    @contextlib.contextmanager
    def renaming(self) -> Iterator[None]:
        """Hold the gate open for one rename, or raise :class:`~maskcli.errors.WriteStopped`."""
        with self._renaming:
            if self._stopping:
                raise WriteStopped("not written, the run is stopping")
            yield

    def create_temp(self, path: Path, claim: tuple[str, str]) -> tuple[int, str]:
        """A temp file for ``path`` under the claimed prefix; none once the run is stopping."""
        with self._temps:  # a discard_temp_files either sees the claim or comes before the file is made
            if self._stopping:
                raise WriteStopped(f"{path}: not written, the run is stopping")
            self._claims.add(claim)
            return _create_temp(path, claim[1])

    def release(self, claim: tuple[str, str]) -> None:
        """The write under ``claim`` has ended: its temp file is renamed or removed."""
        with self._temps:
            self._claims.discard(claim)


def write_atomic(path: str | os.PathLike[str], data: bytes, *, replace: bool = True,
                 gate: WriteGate | None = None) -> None:
    """Write ``data`` to ``path`` through a temp file in the same folder and a rename.

    The folder is created if missing. The file gets the permissions of any new file (0666 less the process's
    umask, applied by the system when the temp file is created: nothing here reads or changes the umask). On any
    failure the temp file is removed and :class:`OutputError` says why; when the folder can take no file at all
    (read-only file system, no permission, no space left) the error is
    :class:`~maskcli.errors.OutputUnavailable`, which stops a batch: every other item would fail the same way.

    ``replace=False``: a file at ``path`` is never replaced, even one that appeared after the caller looked (another
    process writing into the same folder): the final step is an exclusive rename, and
    :class:`~maskcli.errors.OutputTaken` says the file is there.

    ``gate``: the run's :class:`WriteGate`; once it is stopped, the write renames nothing and raises
    :class:`~maskcli.errors.WriteStopped`. Without one, the write answers to no run.

    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     write_atomic(f"{folder}/a.png", b"first")
    ...     try:
    ...         write_atomic(f"{folder}/a.png", b"second", replace=False)
    ...     except OutputTaken:
    ...         pass
    ...     open(f"{folder}/a.png", "rb").read(), sorted(os.listdir(folder))
    (b'first', ['a.png'])
    """
    path = Path(path)
    gate = gate or WriteGate()
    # The temp file's name prefix is claimed before the file exists, so that whatever stops this write (an
    # exception here, or a run discarding its temp files, see WriteGate.discard_temp_files) finds the file.
    claim = (os.fspath(path.parent), f"{TEMP_PREFIX}{os.getpid()}-{secrets.token_hex(4)}-")
    temp_name = None
    try:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            handle, temp_name = gate.create_temp(path, claim)
        except OSError as error:
            raise _write_error(error, f"cannot write in {path.parent}") from None
        with os.fdopen(handle, "wb") as stream:
            stream.write(data)
        with gate.renaming():
            rename_into(temp_name, path, replace=replace)
    except BaseException as error:
        _remove_claimed(claim, temp_name)
        if isinstance(error, OSError):
            raise _write_error(error, f"cannot write {path}") from None
        raise
    finally:
        gate.release(claim)


def _remove_claimed(claim: tuple[str, str], name: str | None) -> None:
    """Remove a claimed temp file: by its name when known, else by its prefix (it may exist, unnamed yet)."""
    if name is not None:
        with contextlib.suppress(OSError):
            os.unlink(name)
        return
    folder, prefix = claim
    with contextlib.suppress(OSError):
        for entry in os.scandir(folder):
            if entry.name.startswith(prefix):
                with contextlib.suppress(OSError):
                    os.unlink(entry.path)


_RENAME_NOREPLACE = 1
_AT_FDCWD = -100


def rename_into(source: str | os.PathLike[str], target: str | os.PathLike[str], *, replace: bool) -> None:
    """Move a finished temp file to its name: over an existing file with ``replace``, else never over one (an
    exclusive rename; :class:`~maskcli.errors.OutputTaken` when a file appeared there meanwhile)."""
    if replace:
        os.replace(source, target)
        return
    try:
        _rename_exclusive(os.fspath(source), Path(target))
    except FileExistsError:
        raise OutputTaken(os.fspath(target)) from None


def _rename_exclusive(source: str, target: Path) -> None:
    """Rename ``source`` to ``target`` unless ``target`` exists (:class:`FileExistsError`), in one step.

    Linux's ``renameat2(RENAME_NOREPLACE)`` where the kernel and file system have it; else a hard link (which
    fails on an existing name) and an unlink of the temp name; on a file system without hard links, a check and
    a rename, which leaves a moment for a file to appear.
    """
    renameat2 = _renameat2()
    if renameat2 is not None:
        if renameat2(_AT_FDCWD, os.fsencode(source), _AT_FDCWD, os.fsencode(target), _RENAME_NOREPLACE) == 0:
            return
        code = ctypes.get_errno()
        if code not in (errno.ENOSYS, errno.EINVAL, errno.ENOTSUP, errno.EOPNOTSUPP):
            raise OSError(code, os.strerror(code), os.fspath(target))
    try:
        os.link(source, target)
    except FileExistsError:
        raise
    except OSError as error:
        if error.errno not in (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EXDEV, errno.EMLINK):
            raise
        if os.path.lexists(target):
            raise FileExistsError(errno.EEXIST, os.strerror(errno.EEXIST), os.fspath(target)) from None
        os.replace(source, target)
        return
    os.unlink(source)


@functools.lru_cache(maxsize=1)
def _renameat2() -> Any:
    """libc's ``renameat2``, or None (another system, or a C library without it)."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        function = ctypes.CDLL(None, use_errno=True).renameat2
    except (OSError, AttributeError):
        return None
    function.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    function.restype = ctypes.c_int
    return function


def remove_temp_files(folders: Iterable[str | os.PathLike[str]], pids: Iterable[int]) -> None:
    """Remove the temp files that the processes ``pids`` left in ``folders``: a worker killed in the middle of
    :func:`write_atomic` cannot remove its own. Other processes' temp files (another run writing into the same
    folder) are left alone."""
    prefixes = tuple(f"{TEMP_PREFIX}{pid}-" for pid in pids)
    if not prefixes:
        return
    for folder in set(map(Path, folders)):
        with contextlib.suppress(OSError):
            for entry in os.scandir(folder):
                if entry.name.startswith(prefixes):
                    with contextlib.suppress(OSError):
                        os.unlink(entry.path)


def remove_temp_files_of_dead_processes(folders: Iterable[str | os.PathLike[str]]) -> None:
    """Remove the temp files in ``folders`` whose writing process (named in the file's name) no longer runs on
    this machine. Only for folders that no other machine writes into: a process elsewhere is not seen here."""
    pids = set()
    for folder in set(map(Path, folders)):
        with contextlib.suppress(OSError):
            for entry in os.scandir(folder):
                pid = entry.name[len(TEMP_PREFIX):].split("-", 1)[0]
                if entry.name.startswith(TEMP_PREFIX) and pid.isdigit() and not _alive(int(pid)):
                    pids.add(int(pid))
    remove_temp_files(folders, pids)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # it exists, owned by someone else
        return True
    return True


def _create_temp(path: Path, prefix: str) -> tuple[int, str]:
    """A new, exclusive temp file beside ``path`` named with the claimed prefix, with the mode a new file gets
    (0666 less the umask)."""
    # The pid in the name lets a parent that killed this process remove what it left (remove_temp_files).
    handle, name = tempfile.mkstemp(prefix=prefix, suffix=path.suffix, dir=path.parent)
    try:
        os.fchmod(handle, 0o666 & ~_umask(path.parent))
    except (AttributeError, OSError):  # no fchmod (Windows), or a file system without modes: keep mkstemp's
        pass
    return handle, name


def _umask(folder: Path) -> int:
    """The process's umask, read without changing it (``os.umask`` can only be read by setting it, process-wide,
    which would race with other threads creating files): from /proc where Linux gives it, else from the mode a
    probe file gets."""
    try:
        with open("/proc/self/status", "rb") as status:
            for line in status:
                if line.startswith(b"Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    probe = os.path.join(folder, f"{TEMP_PREFIX}{secrets.token_hex(8)}")
    handle = os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        return 0o666 & ~os.fstat(handle).st_mode & 0o777
    finally:
        os.close(handle)
        os.unlink(probe)


#: Errors that say the output folder can take no file: the batch stops at the first.
_FOLDER_UNAVAILABLE = {errno.EROFS, errno.EACCES, errno.EPERM, errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC)}


def _write_error(error: OSError, what: str) -> OutputError | OutputUnavailable:
    reason = "permission denied" if isinstance(error, PermissionError) else (error.strerror or str(error))
    if error.errno in _FOLDER_UNAVAILABLE:
        return OutputUnavailable(f"{what}: {reason}; stopping")
    return OutputError(f"{what}: {reason}")


__all__ = ["TEMP_PREFIX", "WriteGate", "file_kind", "read_regular_file", "remove_temp_files",
           "remove_temp_files_of_dead_processes", "rename_into", "write_atomic"]
