"""The local engines: everything in this process with overlapped stages, or a pool of worker processes.

* :class:`InProcess` decodes ahead in threads, computes here (in batches for a model) and saves behind in
  threads. It runs batched jobs (a CNN keeps one model in this process) and ``jobs=1``: OpenCV and zlib release
  the GIL, so the next image decodes and the last mask encodes while this one computes. Otsu on 200
  one-megapixel JPEGs went from 73 to 115 img/s against a plain loop (benchmarks/bench_segment.py).
* :class:`ProcessPool` runs whole items (decode → compute → encode) in worker processes, one core each.

:func:`choose` picks one for a job and a number of cores.
"""

from __future__ import annotations

import collections
import concurrent.futures as futures
import itertools
import multiprocessing
import signal
from collections.abc import Iterable, Iterator
from typing import Any

from maskcli.errors import OptionError
from maskcli.io.sources import Item
from maskcli.pipeline import FATAL, Job, Result, failed, needs_work, process_item, saved


def choose(job: Job, jobs: int, items: Iterable[Item]) -> tuple[Any, Iterable[Item]]:
    """The local executor for ``job`` on ``jobs`` cores, and the items (peeked at, so to be used instead).

    Starting worker processes costs more than one image takes: a lone item (one file, or one image on stdin)
    runs here, and only a second item starts the pool.
    """
    if jobs < 1:
        raise OptionError("jobs", f"must be at least 1, not {jobs}")
    if job.batched:
        return InProcess(threads=jobs), items
    if jobs > 1:
        iterator = iter(items)
        head = list(itertools.islice(iterator, 2))
        items = itertools.chain(head, iterator)
        if len(head) >= 2:
            return ProcessPool(jobs), items
    return InProcess(threads=1), items


class InProcess:
    """Everything in this process: decode ahead in ``threads`` threads, compute here, save behind in threads."""

    def __init__(self, threads: int = 1) -> None:
        if threads < 1:
            raise OptionError("threads", f"must be at least 1, not {threads}")
        self.threads = threads

    def execute(self, job: Job, items: Iterable[Item], *, ordered: bool) -> Iterator[Result]:
        threads = self.threads
        batch_size = max(1, job.batch_size)
        decoders = futures.ThreadPoolExecutor(max_workers=threads, thread_name_prefix="maskcli-decode")
        savers = futures.ThreadPoolExecutor(max_workers=threads, thread_name_prefix="maskcli-save")
        ahead: collections.deque[tuple[Item, futures.Future[Any] | None]] = collections.deque()
        behind: collections.deque[futures.Future[Result]] = collections.deque()
        iterator = iter(items)
        window = batch_size * 2 + threads

        def take(item: Item) -> tuple[Item, futures.Future[Any] | None]:
            if not needs_work(item):
                return item, None
            return item, decoders.submit(job.load, item)

        def drain(block_until: int) -> Iterator[Result]:
            while len(behind) > block_until or (behind and behind[0].done()):
                yield behind.popleft().result()

        try:
            exhausted = False
            while True:
                exhausted = exhausted or _fill(ahead, iterator, window, take)
                if not ahead:
                    break
                # Slots keep input order: a decoded item waits for its batch, a failed decode is answered at once.
                slots: list[tuple[Item, Any] | futures.Future[Result]] = []
                decoded = 0
                while ahead and decoded < batch_size:
                    item, loading = ahead.popleft()
                    if loading is None:
                        slots.append(_done(process_item(job, item)))
                        continue
                    try:
                        slots.append((item, loading.result()))
                        decoded += 1
                    except FATAL:
                        raise
                    except Exception as error:
                        slots.append(_done(failed(item, error)))
                batch = [slot for slot in slots if isinstance(slot, tuple)]
                saving = iter(_compute_batch(job, batch, savers) if batch else [])
                behind.extend(slot if isinstance(slot, futures.Future) else next(saving) for slot in slots)
                yield from drain(block_until=window if ordered else 0)
            while behind:
                yield behind.popleft().result()
        finally:
            for _, loading in ahead:
                if loading is not None:
                    loading.cancel()
            decoders.shutdown(wait=True, cancel_futures=True)
            savers.shutdown(wait=True)  # writes in flight finish: no half-written output is left


def _fill(queue: collections.deque[Any], iterator: Iterator[Item], window: int, take: Any) -> bool:
    """Pull items into ``queue`` (as ``take`` turns them into work) up to ``window``; True once they ran out."""
    while len(queue) < window:
        item = next(iterator, None)
        if item is None:
            return True
        queue.append(take(item))
    return False


def _compute_batch(
    job: Job, batch: list[tuple[Item, Any]], savers: futures.ThreadPoolExecutor
) -> list[futures.Future[Result]]:
    try:
        computed = job.compute([loaded for _, loaded in batch])
    except FATAL:
        raise
    except Exception as batch_error:
        if len(batch) == 1:
            return [_done(failed(batch[0][0], batch_error))]
        # One bad image must not fail its neighbours: retry the batch one by one.
        return list(itertools.chain.from_iterable(_compute_batch(job, [entry], savers) for entry in batch))
    return [savers.submit(_save, job, item, loaded, result) for (item, loaded), result in zip(batch, computed)]


def _save(job: Job, item: Item, loaded: Any, computed: Any) -> Result:
    try:
        return saved(job, item, loaded, computed)
    except Exception as error:
        return failed(item, error)


def _done(result: Result) -> futures.Future[Result]:
    future: futures.Future[Result] = futures.Future()
    future.set_result(result)
    return future


class ProcessPool:
    """Whole items in ``jobs`` worker processes; the job is pickled once per worker."""

    def __init__(self, jobs: int) -> None:
        if jobs < 1:
            raise OptionError("jobs", f"must be at least 1, not {jobs}")
        self.jobs = jobs

    def execute(self, job: Job, items: Iterable[Item], *, ordered: bool) -> Iterator[Result]:
        window = self.jobs * 4
        pool = futures.ProcessPoolExecutor(
            max_workers=self.jobs, mp_context=_pool_context(), initializer=_worker_set_job, initargs=(job,)
        )
        pending: collections.deque[tuple[Item, futures.Future[Result]]] = collections.deque()
        iterator = iter(items)

        def take(item: Item) -> tuple[Item, futures.Future[Result]]:
            if not needs_work(item):  # nothing to compute: answer without a round trip
                return item, _done(process_item(job, item))
            return item, pool.submit(_worker_process, item)

        try:
            exhausted = False
            while True:
                exhausted = exhausted or _fill(pending, iterator, window, take)
                if not pending:
                    return
                if ordered:
                    item, future = pending.popleft()
                    yield _outcome(item, future)
                else:
                    futures.wait([f for _, f in pending], return_when=futures.FIRST_COMPLETED)
                    for entry in [e for e in pending if e[1].done()]:
                        pending.remove(entry)
                        yield _outcome(*entry)
        finally:
            for _, future in pending:
                future.cancel()
            pool.shutdown(wait=True, cancel_futures=True)


def _outcome(item: Item, future: futures.Future[Result]) -> Result:
    try:
        return future.result()
    except futures.process.BrokenProcessPool:
        return failed(item, "a worker process died (out of memory?)")
    except FATAL:
        raise
    except Exception as error:
        return failed(item, error)


def _worker_init() -> None:
    # The parent handles Ctrl-C and lets in-flight items finish; a terminated worker still removes its temp file.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, _raise_system_exit)
    import cv2

    cv2.setNumThreads(1)  # one core per worker: the number of jobs says how many cores to use


def _raise_system_exit(signum: int, frame: object) -> None:
    raise SystemExit(128 + signum)


_WORKER_JOB: Job | None = None


def _worker_set_job(job: Job) -> None:
    global _WORKER_JOB
    _worker_init()
    _WORKER_JOB = job


def _worker_process(item: Item) -> Result:
    assert _WORKER_JOB is not None
    return process_item(_WORKER_JOB, item)


def _pool_context() -> multiprocessing.context.BaseContext:
    # forkserver: workers start from a clean, single-threaded server that has already imported maskcli, so they
    # start fast and never inherit the parent's threads (progress bar, prefetch) mid-lock, as fork could.
    if "forkserver" in multiprocessing.get_all_start_methods():
        context = multiprocessing.get_context("forkserver")
        context.set_forkserver_preload(["maskcli.pipeline", "maskcli.engines.local", "maskcli.io.decode",
                                        "maskcli.io.encode", "cv2"])
        return context
    return multiprocessing.get_context("spawn")


__all__ = ["InProcess", "ProcessPool", "choose"]
