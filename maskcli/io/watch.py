"""Watched folders: the files that land in them, each once, as soon as it is complete.

A microscope or a photo studio writes into a folder all day. :class:`FolderWatch` hears the file system's events
(inotify on Linux, through ``watchdog``) and hands out each new image or video once it is complete:

* a file renamed or moved into the folder is complete at once (the usual way to publish a file safely);
* a file written in place is complete once it was closed after writing and has kept its size for
  ``settle`` seconds (a writer that closes between chunks gets that long to come back); where the system
  reports no closing, a size unchanged for three times ``settle`` will do.

Hidden files and names that are not images or videos (``photo.jpg.part``) are never handed out, nor is anything
under the folders the run writes into, and no file is handed out twice.

>>> import tempfile, time
>>> from pathlib import Path
>>> folder = tempfile.TemporaryDirectory(); root = Path(folder.name)
>>> with FolderWatch([root], settle=0.05) as watch:
...     (root / "new.png").write_bytes(b"png bytes")
...     ready = []
...     for _ in range(100):
...         ready += watch.ready(timeout=0.05)
...         if ready: break
9
>>> [source.relpath.as_posix() for source in ready]
['new.png']
>>> folder.cleanup()
"""

from __future__ import annotations

import os
import queue
import threading
import time
from collections.abc import Iterable
from pathlib import Path, PurePosixPath
from typing import Any

from maskcli.errors import OptionError, SetupError
from maskcli.io.sources import Source, _is_image_name


class FolderWatch:
    """New complete files under ``folders`` (see the module's doc); a context manager that starts and stops the
    watching.

    Parameters
    ----------
    folders : iterable of path
        The folders watched.
    recursive : bool
        Watch their sub-folders too (relative paths keep the sub-folder, as the batch's walk does).
    ignore : iterable of path
        Folders whose files are never handed out (the run's own output folders).
    settle : float
        Seconds a file must stay unchanged after its writer closed it.
    """

    def __init__(self, folders: Iterable[str | os.PathLike[str]], *, recursive: bool = False,
                 ignore: Iterable[str | os.PathLike[str]] = (), settle: float = 0.5) -> None:
        self.folders = [Path(folder) for folder in folders]
        for folder in self.folders:
            if not folder.is_dir():
                raise OptionError("watch", f"{folder} is not a folder; only folders are watched")
        self.recursive, self.settle = recursive, settle
        self._ignore = [os.path.realpath(folder) for folder in ignore]
        self._events: queue.SimpleQueue[tuple[str, str, float]] = queue.SimpleQueue()
        #: path -> [closed (or moved in), last event time, size at the last event]
        self._pending: dict[str, list[Any]] = {}
        self._handed: set[str] = set()
        self._observer: Any = None
        self._lock = threading.Lock()

    def seen(self, paths: Iterable[str]) -> None:
        """Files already handled (the batch's first pass): never handed out again."""
        self._handed.update(os.path.realpath(path) for path in paths)

    def __enter__(self) -> FolderWatch:
        try:
            from watchdog.events import FileSystemEventHandler
            from watchdog.observers import Observer
        except ImportError:
            raise SetupError("watching folders needs watchdog: pip install 'maskcli[watch]'") from None
        events = self._events

        class Handler(FileSystemEventHandler):
            def on_any_event(self, event: Any) -> None:
                if event.is_directory:
                    return
                kind = event.event_type
                path = event.dest_path if kind == "moved" else event.src_path
                events.put((kind, os.fsdecode(path), time.monotonic()))

        self._observer = Observer()
        for folder in self.folders:
            self._observer.schedule(Handler(), str(folder), recursive=self.recursive)
        self._observer.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._observer is not None:
            self._observer.stop()
            self._observer.join(timeout=5)
            self._observer = None

    def ready(self, timeout: float = 0.2) -> list[Source]:
        """The files that became complete, waiting up to ``timeout`` seconds for events."""
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            try:
                kind, path, when = self._events.get(timeout=max(0.0, remaining)) if remaining > 0 else \
                    self._events.get_nowait()
            except queue.Empty:
                break
            self._note(kind, path, when)
        return self._complete(time.monotonic())

    def _note(self, kind: str, path: str, when: float) -> None:
        if kind == "deleted":
            self._pending.pop(path, None)
            return
        if kind not in ("created", "modified", "closed", "moved") or not self._wanted(path):
            return
        entry = self._pending.setdefault(path, [False, when, -1])
        entry[0] = kind in ("closed", "moved") or (entry[0] and kind != "modified")
        entry[1] = when
        entry[2] = _size(path)
        if kind == "moved":  # renamed in: complete, nothing more to wait for
            entry[1] = when - self.settle

    def _complete(self, now: float) -> list[Source]:
        done = []
        for path, (closed, last, size) in list(self._pending.items()):
            quiet = now - last
            if quiet < (self.settle if closed else 3 * self.settle):
                continue
            current = _size(path)
            if current is None:
                del self._pending[path]
                continue
            if current != size:  # still growing without an event (another machine's writes on a share)
                self._pending[path] = [False, now, current]
                continue
            del self._pending[path]
            real = os.path.realpath(path)
            if real in self._handed:
                continue
            self._handed.add(real)
            done.append(Source(path, self._relative(path)))
        return sorted(done, key=lambda source: source.path)

    def _wanted(self, path: str) -> bool:
        name = os.path.basename(path)
        if name.startswith(".") or not _is_image_name(name):
            return False
        real = os.path.realpath(path)
        return not any(real == folder or real.startswith(folder + os.sep) for folder in self._ignore)

    def _relative(self, path: str) -> PurePosixPath:
        for folder in self.folders:
            try:
                return PurePosixPath(Path(path).relative_to(folder).as_posix())
            except ValueError:
                continue
        return PurePosixPath(os.path.basename(path))


def _size(path: str) -> int | None:
    try:
        return os.stat(path).st_size
    except OSError:
        return None


__all__ = ["FolderWatch"]
