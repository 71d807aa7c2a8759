"""Reading ahead: an iterator's next items made in a thread of their own while the caller works on the last ones.

A video's frames are decoded and converted by FFmpeg, which releases the GIL: decoding the next frames on another
core while this thread encodes the previous ones turns two serial halves into a pipeline. The thread lives inside
a ``with`` block, so that it has stopped (and no longer touches the file it reads) by the time the block ends,
however it ends.

Examples
--------
>>> with ReadAhead(iter(range(5)), depth=2) as ahead:
...     [n * n for n in ahead]
[0, 1, 4, 9, 16]
>>> def broken():
...     yield 1
...     raise ValueError("damaged")
>>> with ReadAhead(broken()) as ahead:
...     list(ahead)
Traceback (most recent call last):
...
ValueError: damaged
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator
from typing import Generic, TypeVar

T = TypeVar("T")

_END = object()
#: How often a thread waiting on a full or empty queue looks whether the other side stopped, in seconds.
_POLL = 0.1


class _Raised:
    def __init__(self, error: BaseException) -> None:
        self.error = error


class ReadAhead(Generic[T]):
    """The items of ``items``, made up to ``depth`` ahead in a thread; its errors are raised where the items are
    taken, in order. Leaving the ``with`` block stops the thread and waits for it."""

    def __init__(self, items: Iterator[T], depth: int = 4) -> None:
        if depth < 1:
            raise ValueError(f"depth must be at least 1, not {depth}")
        self._items = items
        self._queue: queue.Queue[object] = queue.Queue(maxsize=depth)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._produce, name="maskcli-read-ahead", daemon=True)
        self._done = False

    def __enter__(self) -> ReadAhead[T]:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        while self._thread.is_alive():
            try:  # make room, so that a thread waiting to put sees the stop at once
                self._queue.get(timeout=_POLL)
            except queue.Empty:
                pass
        self._thread.join()

    def __iter__(self) -> Iterator[T]:
        while not self._done:
            item = self._queue.get()
            if item is _END:
                self._done = True
                return
            if isinstance(item, _Raised):
                self._done = True
                raise item.error
            yield item  # type: ignore[misc]  # anything but the two markers is an item of T

    def _produce(self) -> None:
        try:
            for item in self._items:
                if not self._put(item):
                    return
            self._put(_END)
        except BaseException as error:  # handed to the taker, who decides
            self._put(_Raised(error))
        finally:
            close = getattr(self._items, "close", None)
            if close is not None:  # a generator stopped early ends here, in the thread that ran it
                close()

    def _put(self, item: object) -> bool:
        """Queue ``item`` unless the taker stopped; False once it has."""
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=_POLL)
                return True
            except queue.Full:
                continue
        return False


__all__ = ["ReadAhead"]
