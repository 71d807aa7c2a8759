"""The window of items an engine keeps in flight, and results known before any work.

Both local engines pull items lazily into a bounded queue, so memory does not grow with the batch.
"""

from __future__ import annotations

import collections
import concurrent.futures as futures
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

from maskcli.io.sources import Item

Entry = TypeVar("Entry")


def fill(queue: collections.deque[Entry], items: Iterator[Item], window: int, take: Callable[[Item], Entry]) -> bool:
    """Pull items into ``queue`` (as ``take`` turns them into work) up to ``window``; True once they ran out.

    >>> queue = collections.deque()
    >>> fill(queue, iter([1, 2, 3]), 2, str), list(queue), fill(queue, iter([]), 3, str)
    (False, ['1', '2'], True)
    """
    while len(queue) < window:
        item = next(items, None)
        if item is None:
            return True
        queue.append(take(item))
    return False


def finished(result: Any) -> futures.Future[Any]:
    """A future that already holds ``result``: an answer known at once takes its place among those to come.

    >>> finished(3).result()
    3
    """
    future: futures.Future[Any] = futures.Future()
    future.set_result(result)
    return future


__all__ = ["fill", "finished"]
