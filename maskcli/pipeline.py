"""The streaming batch runner.

A command is a :class:`Job`: ``load`` decodes an item's inputs, ``compute`` turns a list of loaded items into
results (a batch for the CNN, one item otherwise) and ``save`` encodes and writes. :func:`run` feeds items through
a job and yields one :class:`Result` per item; it never prints, and one failing item never stops the others
(unless ``fail_fast``).

Two ways to run, chosen by the job:

* **per-item jobs** (thresholds, edges, compositing) run whole items, decode → compute → encode, in ``jobs``
  worker processes, each item on one core; file reads and writes are cheap next to that. With ``jobs=1`` the work
  runs in this process, which saves a process start for a single image.
* **batched jobs** (a CNN) keep one model in this process: decoding runs ahead in threads, batches of
  ``batch_size`` go through the model, and encoding and writing run behind in threads.

Memory stays bounded whatever the number of items: at most a small window of items is in flight, and items are
pulled lazily from the input iterator. Results come in input order by default (``ordered=False``: as they finish).
Ctrl-C stops submitting, lets items already in flight finish (their files are complete) and re-raises
``KeyboardInterrupt``; no partial file is left, since every write goes through a temp file and a rename.
"""

from __future__ import annotations

import collections
import concurrent.futures as futures
import dataclasses
import itertools
import multiprocessing
import os
import signal
import time
import traceback
from collections.abc import Callable, Iterable, Iterator
from typing import Any, Literal, Protocol

from maskcli.engines import Executor
from maskcli.errors import MaskcliError, SetupError
from maskcli.io.sources import Item

Status = Literal["written", "skipped", "failed"]


@dataclasses.dataclass
class Result:
    """What happened to one item."""

    index: int
    input: str
    output: str | None
    status: Status
    error: str | None = None
    facts: dict[str, Any] = dataclasses.field(default_factory=dict)
    timings: dict[str, float] = dataclasses.field(default_factory=dict)  # milliseconds per stage
    data: bytes | None = None  # the encoded output, when it goes to stdout instead of a file
    relpath: str | None = None  # the input's path relative to its folder (apply pairs by it)

    def record(self) -> dict[str, Any]:
        """The JSON-friendly record printed by ``--json``."""
        record: dict[str, Any] = {
            "input": self.input,
            "relpath": self.relpath,
            "output": self.output,
            "status": self.status,
            "error": self.error,
            "timings_ms": {k: round(v, 2) for k, v in self.timings.items()},
        }
        record.update(self.facts)
        return record


class Job(Protocol):
    """What :func:`run` drives. ``load`` and ``save`` may run in threads; per-item jobs must pickle."""

    batched: bool
    batch_size: int

    def load(self, item: Item) -> Any: ...

    def compute(self, loaded: list[Any]) -> list[Any]: ...

    def save(self, item: Item, loaded: Any, computed: Any) -> Result: ...


def skipped(item: Item) -> Result:
    output = str(item.destination) if item.destination else None
    return Result(item.index, item.name, output, "skipped", relpath=item.source.relpath.as_posix())


def failed(item: Item, error: BaseException | str) -> Result:
    output = str(item.destination) if item.destination else None
    return Result(item.index, item.name, output, "failed", error=describe(error),
                  relpath=item.source.relpath.as_posix())


def saved(job: Job, item: Item, loaded: Any, computed: Any) -> Result:
    """``job.save`` with the item's relative path recorded."""
    result = job.save(item, loaded, computed)
    result.relpath = item.source.relpath.as_posix()
    return result


def describe(error: BaseException | str) -> str:
    """One line for an error: our own errors say it all; anything else is a bug, named with its type."""
    if isinstance(error, str):
        return error
    if isinstance(error, MaskcliError):
        return str(error)
    if isinstance(error, MemoryError):
        return "out of memory (try fewer --jobs or a smaller --max-pixels)"
    if isinstance(error, OSError):
        return error.strerror or str(error)
    where = traceback.extract_tb(error.__traceback__)[-1] if error.__traceback__ else None
    place = f" at {os.path.basename(where.filename)}:{where.lineno}" if where else ""
    return f"internal error: {type(error).__name__}: {error}{place} (please report this)"


def process_item(job: Job, item: Item) -> Result:
    """Load, compute and save one item, turning any failure into a failed result."""
    if item.error:
        return failed(item, item.error)
    if item.skip:
        return skipped(item)
    try:
        loaded = job.load(item)
        (computed,) = job.compute([loaded])
        return saved(job, item, loaded, computed)
    except (SetupError, KeyboardInterrupt):
        raise
    except Exception as error:
        return failed(item, error)


def run(
    items: Iterable[Item],
    job: Job,
    *,
    jobs: int = 1,
    executor: Executor | None = None,
    ordered: bool = True,
    fail_fast: bool = False,
) -> Iterator[Result]:
    """Run ``job`` over ``items``, yielding one result per item.

    Parameters
    ----------
    jobs : int
        Worker processes for per-item jobs; decode/encode threads for batched jobs (local engine only).
    executor : Executor, optional
        Another engine to run the job on (e.g. :class:`maskcli.engines.ray.RayExecutor`); default: this machine.
    ordered : bool
        Yield results in input order (True) or as they finish.
    fail_fast : bool
        Stop after the first failed item (items in flight still finish; the rest are not started).
    """
    if jobs < 1:
        from maskcli.errors import OptionError

        raise OptionError("jobs", f"must be at least 1, not {jobs}")
    if executor is not None:
        results = executor.execute(job, items, ordered=ordered)
    else:
        results = _run_local(items, job, jobs=jobs, ordered=ordered)
    try:
        for result in results:
            yield result
            if fail_fast and result.status == "failed":
                break
    finally:
        close = getattr(results, "close", None)
        if close:
            close()


def _run_local(items: Iterable[Item], job: Job, *, jobs: int, ordered: bool) -> Iterator[Result]:
    """The local engine: threads and, for per-item jobs with ``jobs > 1``, a process pool."""
    if not job.batched and jobs > 1:
        # Starting worker processes costs more than one image takes: a lone item (one file, or one image on
        # stdin) runs here, and only a second item starts the pool.
        items = iter(items)
        head = list(itertools.islice(items, 2))
        items = itertools.chain(head, items)
        if len(head) < 2:
            jobs = 1
    if job.batched:
        return _run_in_process(items, job, threads=jobs, ordered=ordered)
    if jobs == 1:
        # One process, three stages: the next image decodes and the last mask encodes while this one computes
        # (OpenCV and zlib release the GIL). Otsu on 200 one-megapixel JPEGs went from 73 to 115 img/s
        # (benchmarks/bench_segment.py).
        return _run_in_process(items, job, threads=1, ordered=ordered)
    return _run_processes(items, job, jobs=jobs, ordered=ordered)


def _worker_init() -> None:
    # The parent handles Ctrl-C and lets in-flight items finish; a terminated worker still removes its temp file.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, _raise_system_exit)
    import cv2

    cv2.setNumThreads(1)  # one core per worker: --jobs says how many cores to use


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
        context.set_forkserver_preload(["maskcli.pipeline", "maskcli.io.decode", "maskcli.io.encode", "cv2"])
        return context
    return multiprocessing.get_context("spawn")


def _run_processes(items: Iterable[Item], job: Job, *, jobs: int, ordered: bool) -> Iterator[Result]:
    window = jobs * 4
    pool = futures.ProcessPoolExecutor(
        max_workers=jobs, mp_context=_pool_context(), initializer=_worker_set_job, initargs=(job,)
    )
    pending: collections.deque[tuple[Item, futures.Future[Result]]] = collections.deque()
    iterator = iter(items)
    try:
        exhausted = False
        while True:
            while not exhausted and len(pending) < window:
                item = next(iterator, None)
                if item is None:
                    exhausted = True
                elif item.error or item.skip:  # nothing to compute: answer without a round trip
                    done: futures.Future[Result] = futures.Future()
                    done.set_result(process_item(job, item))
                    pending.append((item, done))
                else:
                    pending.append((item, pool.submit(_worker_process, item)))
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
    except (SetupError, KeyboardInterrupt):
        raise
    except Exception as error:
        return failed(item, error)


def _run_in_process(items: Iterable[Item], job: Job, *, threads: int, ordered: bool) -> Iterator[Result]:
    """Everything in this process: decode ahead in threads, compute here (in batches for a model), save behind in
    threads. Used for batched jobs and for ``--jobs 1``."""
    batch_size = max(1, job.batch_size)
    decoders = futures.ThreadPoolExecutor(max_workers=threads, thread_name_prefix="maskcli-decode")
    savers = futures.ThreadPoolExecutor(max_workers=threads, thread_name_prefix="maskcli-save")
    ahead: collections.deque[tuple[Item, futures.Future[Any] | None]] = collections.deque()
    behind: collections.deque[futures.Future[Result]] = collections.deque()
    iterator = iter(items)
    window = batch_size * 2 + threads

    def take(item: Item) -> tuple[Item, futures.Future[Any] | None]:
        if item.error or item.skip:
            return item, None
        return item, decoders.submit(job.load, item)

    def drain(block_until: int) -> Iterator[Result]:
        while len(behind) > block_until or (behind and behind[0].done()):
            yield behind.popleft().result()

    try:
        exhausted = False
        while True:
            while not exhausted and len(ahead) < window:
                item = next(iterator, None)
                if item is None:
                    exhausted = True
                else:
                    ahead.append(take(item))
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
                except (SetupError, KeyboardInterrupt):
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
        savers.shutdown(wait=True)


def _compute_batch(
    job: Job, batch: list[tuple[Item, Any]], savers: futures.ThreadPoolExecutor
) -> list[futures.Future[Result]]:
    try:
        computed = job.compute([loaded for _, loaded in batch])
    except (SetupError, KeyboardInterrupt):
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


class Timer:
    """Collects milliseconds per stage: ``with timer("decode"): ...``."""

    def __init__(self) -> None:
        self.timings: dict[str, float] = {}

    def __call__(self, stage: str) -> "_Stage":
        return _Stage(self.timings, stage)


class _Stage:
    def __init__(self, timings: dict[str, float], stage: str) -> None:
        self.timings, self.stage = timings, stage

    def __enter__(self) -> None:
        self.start = time.perf_counter()

    def __exit__(self, *exc: object) -> None:
        elapsed = (time.perf_counter() - self.start) * 1000
        self.timings[self.stage] = self.timings.get(self.stage, 0.0) + elapsed


__all__ = ["Job", "Result", "Timer", "describe", "failed", "process_item", "run", "skipped"]
