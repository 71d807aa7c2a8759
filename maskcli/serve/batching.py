"""Dynamic batching: requests for the same model that arrive within a few milliseconds go through it as one batch.

Each batched method (a CNN) has a :class:`Lane`: a queue and one task that takes what has queued (waiting up to
``window`` seconds for company when the queue was empty), runs the method's own ``compute_batch`` on a thread of
its own, off the event loop, and hands each request its result. While a batch runs, the next one gathers, so under
load the batches fill by themselves and the window costs nothing. How many requests may wait at all is bounded by
the server's admission limit (:class:`Admission`), which answers 503 beyond it.

>>> import asyncio, numpy as np
>>> from maskcli.methods.base import Segmentation
>>> class Counting:
...     batches = []
...     def compute_batch(self, images):
...         self.batches.append(len(images))
...         return [Segmentation(image) for image in images]
>>> async def three_at_once():
...     lanes = Lanes(window=0.005, max_batch=8)
...     method = Counting()
...     masks = await asyncio.gather(*(lanes.submit(method, np.full((2, 2), v, np.float32)) for v in (0, 0.5, 1)))
...     await lanes.close()
...     return [float(m.mask[0, 0]) for m in masks], method.batches
>>> asyncio.run(three_at_once())
([0.0, 0.5, 1.0], [3])
"""

from __future__ import annotations

import asyncio
import collections
import concurrent.futures
from typing import Any

import numpy as np


class Busy(Exception):
    """The server holds as many requests as it may: the client should retry later (503, ``Retry-After``)."""


class Admission:
    """At most ``limit`` requests in the server at once; one more is refused at once rather than queued."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.inside = 0

    def __enter__(self) -> Admission:  # noqa: PYI034
        if self.inside >= self.limit:
            raise Busy(f"the server is busy ({self.limit} requests in progress); retry shortly")
        self.inside += 1  # only the event loop's thread counts, so no lock is needed
        return self

    def __exit__(self, *exc: object) -> None:
        self.inside -= 1


class Lane:
    """One method's queue and the task that batches it."""

    def __init__(self, method: Any, window: float, max_batch: int) -> None:
        self.method = method
        self.window = window
        self.max_batch = max_batch
        self.queue: asyncio.Queue[tuple[np.ndarray, asyncio.Future[Any]]] = asyncio.Queue()
        # The model's own thread: a batch never waits behind decoding and encoding in the shared pool.
        self.thread = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="maskcli-batch")
        self.task = asyncio.get_running_loop().create_task(self._run())
        self.batches: collections.Counter[int] = collections.Counter()  # batches run, by size
        self.running = False

    @property
    def idle(self) -> bool:
        return self.queue.empty() and not self.running

    async def _gather(self) -> list[tuple[np.ndarray, asyncio.Future[Any]]]:
        batch = [await self.queue.get()]
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.window
        while len(batch) < self.max_batch:
            if not self.queue.empty():
                batch.append(self.queue.get_nowait())
                continue
            remaining = deadline - loop.time()
            if remaining <= 0:
                break
            try:
                batch.append(await asyncio.wait_for(self.queue.get(), remaining))
            except asyncio.TimeoutError:
                break
        return [(image, future) for image, future in batch if not future.done()]  # a timed-out request left

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            batch = await self._gather()
            if not batch:
                continue
            self.batches[len(batch)] += 1
            self.running = True
            try:
                results = await loop.run_in_executor(self.thread, self.method.compute_batch,
                                                     [image for image, _ in batch])
            except Exception as error:  # noqa: BLE001 - every request of the batch gets the error
                for _, future in batch:
                    if not future.done():
                        future.set_exception(error)
                continue
            finally:
                self.running = False
            for (_, future), result in zip(batch, results):
                if isinstance(getattr(result, "facts", None), dict):
                    result.facts["batch_size"] = len(batch)  # in the request's record
                if not future.done():
                    future.set_result(result)

    async def close(self) -> None:
        self.task.cancel()
        try:
            await self.task
        except asyncio.CancelledError:
            pass
        self.thread.shutdown(wait=True)


class Lanes:
    """The lanes of the methods in use, one per method object (the server keeps one per set of options)."""

    #: Idle lanes beyond this many are closed (their methods have left the server's method cache).
    KEEP = 32

    def __init__(self, window: float = 0.005, max_batch: int = 8) -> None:
        self.window = window
        self.max_batch = max_batch
        self._lanes: dict[int, Lane] = {}

    def lane(self, method: Any) -> Lane:
        lane = self._lanes.get(id(method))
        if lane is None or lane.method is not method:
            if len(self._lanes) >= self.KEEP:
                for key, old in list(self._lanes.items()):
                    if old.idle:
                        del self._lanes[key]
                        asyncio.get_running_loop().create_task(old.close())
            lane = self._lanes[id(method)] = Lane(method, self.window, self.max_batch)
        return lane

    async def submit(self, method: Any, image: np.ndarray) -> Any:
        """The method's result for ``image``, computed in a batch with the requests around it."""
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self.lane(method).queue.put_nowait((image, future))
        return await future

    def sizes(self) -> dict[int, int]:
        """How many batches of each size ran, over the lanes in use."""
        total: collections.Counter[int] = collections.Counter()
        for lane in self._lanes.values():
            total.update(lane.batches)
        return dict(sorted(total.items()))

    async def close(self) -> None:
        for lane in list(self._lanes.values()):
            await lane.close()
        self._lanes.clear()


__all__ = ["Admission", "Busy", "Lane", "Lanes"]
