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

Memory stays bounded whatever the number of items: at most a small window of items is in flight. The list of
items itself is read in full before the first write, so that no output can land on any input of the batch. Results come in input order by default (``ordered=False``: as they finish).
Ctrl-C (a ``KeyboardInterrupt`` in the caller's thread) stops the run within a second: no file is renamed into
place after it, workers are told to stop and killed if still busy after a short grace, and :class:`Interrupted`
is raised carrying the results of items that finished meanwhile, so every file left on disk can be reported. No
partial file is left, since every write goes through a temp file and a rename.
"""

from __future__ import annotations

import collections
import concurrent.futures as futures
import contextlib
import dataclasses
import itertools
import multiprocessing
import os
import signal
import sys
import threading
import time
import traceback
from collections.abc import Callable, Iterable, Iterator
from typing import Any, Literal, Protocol

from maskcli.errors import Interrupted, MaskcliError, SetupError, WriteStopped
from maskcli.io.encode import resume_writes, stop_writes
from maskcli.io.sources import Item, guard_inputs

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
    except (SetupError, WriteStopped, KeyboardInterrupt):
        raise
    except Exception as error:
        return failed(item, error)


#: Seconds a stopping run waits for items in flight to finish or abandon their writes before killing workers.
GRACE_S = 0.5


class _Feed:
    """The items, until :meth:`stop`: then no more are taken (those in flight still finish)."""

    def __init__(self, items: Iterable[Item]) -> None:
        self._items = iter(items)
        self.stopped = False

    def __iter__(self) -> "_Feed":
        return self

    def __next__(self) -> Item:
        if self.stopped:
            raise StopIteration
        return next(self._items)

    def stop(self) -> None:
        self.stopped = True


def run(
    items: Iterable[Item],
    job: Job,
    *,
    jobs: int = 1,
    ordered: bool = True,
    fail_fast: bool = False,
) -> Iterator[Result]:
    """Run ``job`` over ``items``, yielding one result per item.

    Parameters
    ----------
    jobs : int
        Worker processes for per-item jobs; decode/encode threads for batched jobs.
    ordered : bool
        Yield results in input order (True) or as they finish.
    fail_fast : bool
        Stop after the first failed item: items in flight still finish and are yielded (so every file written is
        reported); the rest are not started.

    Raises
    ------
    Interrupted
        On ``KeyboardInterrupt``, with the results of the items that finished while the run stopped.
    """
    if jobs < 1:
        from maskcli.errors import OptionError

        raise OptionError("jobs", f"must be at least 1, not {jobs}")
    # Every input is known before the first write, so no output can land on any of them (an output named like
    # another item's input would otherwise replace it); an input given twice runs once.
    items = guard_inputs(items, also=getattr(job, "reads", ()))
    if not job.batched and jobs > 1:
        # Starting worker processes costs more than one image takes: a lone item (one file, or one image on
        # stdin) runs here, and only a second item starts the pool.
        if len(items) < 2:
            jobs = 1
    feed = _Feed(items)
    resume_writes()
    if job.batched:
        results = _run_in_process(feed, job, threads=jobs, ordered=ordered)
    elif jobs == 1:
        # One process, three stages: the next image decodes and the last mask encodes while this one computes
        # (OpenCV and zlib release the GIL). Otsu on 200 one-megapixel JPEGs went from 73 to 115 img/s
        # (benchmarks/bench_segment.py).
        results = _run_in_process(feed, job, threads=1, ordered=ordered)
    else:
        results = _run_processes(feed, job, jobs=jobs, ordered=ordered)
    try:
        for result in results:
            try:
                yield result
            except KeyboardInterrupt as stop:
                if isinstance(stop, Interrupted):
                    raise
                # Raised in the caller while the runner waited here: the runner stops its workers and raises
                # Interrupted with what finished meanwhile.
                results.throw(stop)
                raise
            if fail_fast and result.status == "failed":
                feed.stop()
    finally:
        results.close()


def _worker_init(parent_alive: Any = None) -> None:
    _die_with_parent(parent_alive)
    # Ctrl-C reaches every process of the terminal's group, and the parent forwards SIGTERM: either only stops
    # renames here (the item in hand abandons its write, removing its temp file); the parent decides the rest.
    signal.signal(signal.SIGINT, _stop_on_signal)
    signal.signal(signal.SIGTERM, _stop_on_signal)
    import cv2

    cv2.setNumThreads(1)  # one core per worker: --jobs says how many cores to use


def _stop_on_signal(signum: int, frame: object) -> None:
    stop_writes()


def _die_with_parent(parent_alive: Any) -> None:
    """Make this worker end within moments of its parent's death, even by ``kill -9``, so no worker is orphaned.

    On Linux the kernel sends SIGKILL when the parent dies (``PR_SET_PDEATHSIG``); everywhere a daemon thread
    waits on a pipe whose only writer is the parent: end of file means the parent is gone.
    """
    if sys.platform.startswith("linux"):
        try:
            import ctypes

            ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # 1: PR_SET_PDEATHSIG
        except (OSError, AttributeError):  # pragma: no cover - no usable libc
            pass
    if parent_alive is not None:
        threading.Thread(target=_exit_when_closed, args=(parent_alive,), name="maskcli-parent-watch",
                         daemon=True).start()


def _exit_when_closed(parent_alive: Any) -> None:
    try:
        while True:
            parent_alive.recv_bytes()
    except (EOFError, OSError):
        os._exit(1)


_WORKER_JOB: Job | None = None


def _worker_set_job(job: Job, parent_alive: Any = None) -> None:
    global _WORKER_JOB
    _worker_init(parent_alive)
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


def _run_processes(feed: _Feed, job: Job, *, jobs: int, ordered: bool) -> Iterator[Result]:
    window = jobs * 4
    context = _pool_context()
    # Workers watch this pipe: the parent holds its only writing end, so its death, however it comes, closes it.
    alive_read, alive_write = context.Pipe(duplex=False)
    pool = futures.ProcessPoolExecutor(
        max_workers=jobs, mp_context=context, initializer=_worker_set_job, initargs=(job, alive_read)
    )
    pending: collections.deque[tuple[Item, futures.Future[Result]]] = collections.deque()
    interrupted = False
    try:
        while True:
            while not feed.stopped and len(pending) < window:
                item = next(feed, None)
                if item is None:
                    break
                if item.error or item.skip:  # nothing to compute: answer without a round trip
                    pending.append((item, _done(process_item(job, item))))
                else:
                    pending.append((item, pool.submit(_worker_process, item)))
            if not pending:
                return
            if ordered:
                item, future = pending[0]
                if feed.stopped and future.cancel():  # not started: after a failure with fail_fast, never run
                    pending.popleft()
                    continue
                result = _outcome(item, future)
                pending.popleft()  # only now: an interrupted wait leaves the item among those in flight
                yield result
            else:
                futures.wait([f for _, f in pending], return_when=futures.FIRST_COMPLETED)
                for entry in [e for e in pending if e[1].done()]:
                    pending.remove(entry)
                    if not entry[1].cancelled():
                        yield _outcome(*entry)
    except KeyboardInterrupt:
        interrupted = True
        raise Interrupted(_stop_workers(pool, pending)) from None
    finally:
        for _, future in pending:
            future.cancel()
        pool.shutdown(wait=not interrupted, cancel_futures=True)
        alive_write.close()
        alive_read.close()


def _stop_workers(pool: futures.ProcessPoolExecutor, pending: Iterable[tuple[Item, futures.Future[Result]]]
                  ) -> list[Result]:
    """Stop a pool now: no more renames anywhere, a short grace for items in their last step, then kill."""
    stop_writes()
    processes = list((getattr(pool, "_processes", None) or {}).values())
    for process in processes:
        with contextlib.suppress(OSError):
            os.kill(process.pid, signal.SIGTERM)
    entries = list(pending)
    running = [future for _, future in entries if not future.cancel()]
    futures.wait(running, timeout=GRACE_S)
    for process in processes:
        with contextlib.suppress(OSError, AttributeError):
            process.kill()
    return _finished(entries)


def _finished(entries: Iterable[tuple[Item, futures.Future[Result]]]) -> list[Result]:
    """Results of the futures that completed (an abandoned write is no result: it left no file)."""
    results = []
    for item, future in entries:
        if future.done() and not future.cancelled() and future.exception() is None:
            results.append(future.result())
        elif future.done() and not future.cancelled() and isinstance(future.exception(), MaskcliError) \
                and not isinstance(future.exception(), WriteStopped):
            results.append(failed(item, future.exception()))  # type: ignore[arg-type]
    return results


def _outcome(item: Item, future: futures.Future[Result]) -> Result:
    try:
        return future.result()
    except futures.process.BrokenProcessPool:
        return failed(item, "a worker process died (out of memory?)")
    except (SetupError, KeyboardInterrupt):
        raise
    except Exception as error:
        return failed(item, error)


def _run_in_process(feed: _Feed, job: Job, *, threads: int, ordered: bool) -> Iterator[Result]:
    """Everything in this process: decode ahead in threads, compute (in batches for a model), save behind in
    threads. Used for batched jobs and for ``--jobs 1``.

    The computation runs in its own thread too, so that this thread, which answers Ctrl-C, only ever waits: a
    long computation in C would otherwise hold the interrupt until it returned.
    """
    batch_size = max(1, job.batch_size)
    decoders = futures.ThreadPoolExecutor(max_workers=threads, thread_name_prefix="maskcli-decode")
    computer = futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="maskcli-compute")
    savers = futures.ThreadPoolExecutor(max_workers=threads, thread_name_prefix="maskcli-save")
    ahead: collections.deque[tuple[Item, futures.Future[Any] | None]] = collections.deque()
    behind: collections.deque[futures.Future[Result]] = collections.deque()
    window = batch_size * 2 + threads
    interrupted = False

    def take(item: Item) -> tuple[Item, futures.Future[Any] | None]:
        if item.error or item.skip:
            return item, None
        return item, decoders.submit(job.load, item)

    def drain(block_until: int) -> Iterator[Result]:
        while len(behind) > block_until or (behind and behind[0].done()):
            result = behind[0].result()
            behind.popleft()  # only now: an interrupted wait leaves the save among those in flight
            yield result

    try:
        while True:
            while not feed.stopped and len(ahead) < window:
                item = next(feed, None)
                if item is None:
                    break
                ahead.append(take(item))
            if feed.stopped:  # fail_fast: what is decoded but not computed is never run
                for _, loading in ahead:
                    if loading is not None:
                        loading.cancel()
                ahead.clear()
            if not ahead:
                break
            # Slots keep input order: a decoded item waits for its batch, a failed decode is answered at once.
            slots: list[tuple[Item, Any] | futures.Future[Result]] = []
            decoded = 0
            while ahead and decoded < batch_size:
                item, loading = ahead[0]
                if loading is None:
                    slots.append(_done(process_item(job, item)))
                else:
                    try:
                        slots.append((item, loading.result()))
                        decoded += 1
                    except (SetupError, KeyboardInterrupt):
                        raise
                    except Exception as error:
                        slots.append(_done(failed(item, error)))
                ahead.popleft()
            batch = [slot for slot in slots if isinstance(slot, tuple)]
            saving = iter(_compute_batch(job, batch, computer, savers) if batch else [])
            behind.extend(slot if isinstance(slot, futures.Future) else next(saving) for slot in slots)
            yield from drain(block_until=window if ordered else 0)
        yield from drain(block_until=0)
    except KeyboardInterrupt:
        interrupted = True
        stop_writes()
        futures.wait(list(behind), timeout=GRACE_S)  # saves in their last step finish or abandon their write
        raise Interrupted(_finished((None, future) for future in behind)) from None  # type: ignore[misc]
    finally:
        for _, loading in ahead:
            if loading is not None:
                loading.cancel()
        # Interrupted: threads still busy (a long decode or computation) are left to end with the process.
        decoders.shutdown(wait=not interrupted, cancel_futures=True)
        computer.shutdown(wait=not interrupted, cancel_futures=True)
        savers.shutdown(wait=not interrupted)


def _compute_batch(
    job: Job, batch: list[tuple[Item, Any]], computer: futures.ThreadPoolExecutor,
    savers: futures.ThreadPoolExecutor,
) -> list[futures.Future[Result]]:
    try:
        computed = computer.submit(job.compute, [loaded for _, loaded in batch]).result()
    except (SetupError, KeyboardInterrupt):
        raise
    except Exception as batch_error:
        if len(batch) == 1:
            return [_done(failed(batch[0][0], batch_error))]
        # One bad image must not fail its neighbours: retry the batch one by one.
        return list(itertools.chain.from_iterable(
            _compute_batch(job, [entry], computer, savers) for entry in batch))
    return [savers.submit(_save, job, item, loaded, result) for (item, loaded), result in zip(batch, computed)]


def _save(job: Job, item: Item, loaded: Any, computed: Any) -> Result:
    try:
        return saved(job, item, loaded, computed)
    except WriteStopped:
        raise
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
