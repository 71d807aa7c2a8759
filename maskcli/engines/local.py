"""The local engines: everything in this process with overlapped stages, or a pool of worker processes.

* :class:`InProcess` decodes ahead in threads, computes (in batches for a model, side by side in threads for a
  per-item job) and saves behind in threads. It runs batched jobs (a CNN keeps one model in this process), jobs
  whose stages release the GIL, and ``jobs=1``: OpenCV and zlib release the GIL, so the next image decodes and the
  last mask encodes while this one computes. Otsu on 200 one-megapixel JPEGs went from 73 to 115 img/s against a
  plain loop (benchmarks/bench_segment.py).
* :class:`ProcessPool` runs whole items (decode → compute → encode) in worker processes, one core each: for jobs
  that hold the GIL (Python-heavy methods, refinements).

Both answer a ``KeyboardInterrupt`` within a second, whatever the work is doing: renames stop at once, items in
their last step get :data:`~maskcli.pipeline.GRACE_S` to finish, busy workers are killed, and
:class:`~maskcli.errors.Interrupted` carries the results that finished. Workers die with their parent, even
when it is killed with SIGKILL, so none is orphaned.

:func:`choose` picks one for a job and a number of cores.
"""

from __future__ import annotations

import collections
import concurrent.futures as futures
import contextlib
import itertools
import multiprocessing
import os
import signal
import sys
import threading
from collections.abc import Iterable, Iterator
from typing import Any

from maskcli.errors import Interrupted, OptionError, SetupError
from maskcli.io.encode import remove_temp_files, stop_writes
from maskcli.io.sources import Item
from maskcli.pipeline import (FATAL, GRACE_S, Job, Result, failed, finished_results, needs_work, process_item,
                              saved)


#: The most cores a job whose stages release the GIL is given as threads of this process (see :func:`choose`).
THREADED_CORES = 4
#: Past :data:`THREADED_CORES`, such a job starts worker processes only for at least this many items per worker:
#: for fewer, starting them costs more than the threads lose.
ITEMS_PER_WORKER = 4


def choose(job: Job, jobs: int, items: Iterable[Item]) -> tuple[Any, Iterable[Item]]:
    """The local executor for ``job`` on ``jobs`` cores, and the items (peeked at, so to be used instead).

    * a batched job (a CNN) runs here: one model, decoding and encoding in ``jobs`` threads;
    * a job whose stages all release the GIL (``job.releases_gil``: OpenCV's codecs and a method made of OpenCV
      calls, such as Otsu or Canny) runs here too on up to :data:`THREADED_CORES` cores, ``jobs`` items at a time
      in threads, with decoding ahead: threads do the work of processes without a worker's start-up and with the
      overlap of stages that a worker running one item after another lacks. On 2 cores, Otsu on 200
      one-megapixel JPEGs with ``jobs=2`` went from 0.54× the speed of ``jobs=1`` (worker processes) to
      0.93–1.19× (benchmarks/results/segment.md). On more cores the Python between the stages, which holds the
      GIL, is the limit: on 16 cores, 16 threads ran Otsu 1.41× as fast as one and worker processes 3.02×
      (benchmarks/results/segment16.md), so there such a job runs in worker processes like any other, once there
      are :data:`ITEMS_PER_WORKER` items for each;
    * any other per-item job runs whole items in ``jobs`` worker processes, one core each.

    Starting worker processes costs more than one image takes: a lone item (one file, or one image on stdin)
    runs here, and only a second item starts the pool.
    """
    if jobs < 1:
        raise OptionError("jobs", f"must be at least 1, not {jobs}")
    threaded = bool(getattr(job, "releases_gil", False))
    if job.batched or (threaded and jobs <= THREADED_CORES):
        return InProcess(threads=jobs), items
    if jobs > 1:
        iterator = iter(items)
        head = list(itertools.islice(iterator, ITEMS_PER_WORKER * jobs if threaded else 2))
        items = itertools.chain(head, iterator)
        if threaded and len(head) < ITEMS_PER_WORKER * jobs:
            return InProcess(threads=jobs), items
        if len(head) >= 2:
            return ProcessPool(jobs), items
    return InProcess(threads=1), items


class InProcess:
    """Everything in this process: decode ahead in ``threads`` threads, compute, save behind in threads.

    A batched job computes one batch at a time (a model uses its own threads); a per-item job with more than one
    thread computes and saves ``threads`` items at once, each in one task, which only pays when the job's stages
    release the GIL (:func:`choose`).
    """

    def __init__(self, threads: int = 1) -> None:
        if threads < 1:
            raise OptionError("threads", f"must be at least 1, not {threads}")
        self.threads = threads

    def execute(self, job: Job, items: Iterable[Item], *, ordered: bool) -> Iterator[Result]:
        # The computation runs in a thread of its own too, so that this thread, which answers Ctrl-C, only ever
        # waits: a long computation in C would otherwise hold the interrupt until it returned.
        threads = self.threads
        batch_size = max(1, job.batch_size)
        side_by_side = threads > 1 and not job.batched
        if job.batched:  # a model's images run side by side, so its libraries get one thread each, set here once
            from maskcli.cnn.device import limit_threads

            limit_threads(1)
        decoders = futures.ThreadPoolExecutor(max_workers=threads, thread_name_prefix="maskcli-decode")
        computer = futures.ThreadPoolExecutor(max_workers=threads if side_by_side else 1,
                                              thread_name_prefix="maskcli-compute")
        savers = futures.ThreadPoolExecutor(max_workers=threads, thread_name_prefix="maskcli-save")
        ahead: collections.deque[tuple[Item, futures.Future[Any] | None]] = collections.deque()
        # (item, its result to come); the item is None for results known at once.
        behind: collections.deque[tuple[Item | None, futures.Future[Result]]] = collections.deque()
        # Items handed to a computation or a save, with what their destination was before: registered before the
        # task starts, so a stop at any moment knows every item that may have written.
        started: dict[int, tuple[Item, Any]] = {}
        iterator = iter(items)
        window = batch_size * 2 + threads
        interrupted = False
        handed: list[Result] = []  # the result being handed to the caller: a signal may land before it holds it

        def take(item: Item) -> tuple[Item, futures.Future[Any] | None]:
            if not needs_work(item):
                return item, None
            return item, decoders.submit(job.load, item)

        def drain(block_until: int) -> Iterator[Result]:
            """Yield what finished, waiting only while more than ``block_until`` items are behind."""
            while behind:
                if ordered:
                    ready = [behind[0]] if behind[0][1].done() or len(behind) > block_until else []
                else:
                    ready = [entry for entry in behind if entry[1].done()]
                    if not ready and len(behind) > block_until:
                        futures.wait([future for _, future in behind], return_when=futures.FIRST_COMPLETED)
                        continue
                if not ready:
                    return
                for entry in ready:
                    result = entry[1].result()
                    handed[:] = [result]  # until the caller holds it, a stop still reports it
                    behind.remove(entry)  # only now: an interrupted wait leaves the save among those in flight
                    started.pop(result.index, None)
                    yield result
                    handed.clear()

        try:
            exhausted = False
            while True:
                exhausted = exhausted or _fill(ahead, iterator, window, take)
                if getattr(items, "stopped", False):  # fail-fast: decoded but not computed is never run
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
                        except FATAL:
                            raise
                        except Exception as error:
                            slots.append(_done(failed(item, error)))
                    ahead.popleft()
                batch = [slot for slot in slots if isinstance(slot, tuple)]
                started.update((item.index, (item, _file_identity(item.destination))) for item, _ in batch)
                if side_by_side:  # the next items start while these compute: no wait here
                    saving = iter([computer.submit(_compute_and_save, job, item, loaded) for item, loaded in batch])
                else:
                    saving = iter(_compute_batch(job, batch, computer, savers) if batch else [])
                behind.extend((None, slot) if isinstance(slot, futures.Future) else (slot[0], next(saving))
                              for slot in slots)
                yield from drain(block_until=window)
            yield from drain(block_until=0)
        except SetupError as stop:
            # The output folder took no file (full, read-only): the other items in flight may have written theirs,
            # which the error carries so that each is reported.
            interrupted = True
            stop_writes()
            entries = list(behind)
            futures.wait([future for _, future in entries], timeout=GRACE_S)
            finished = finished_results(entries)
            stop.finished = sorted(finished + _written_meanwhile(started.values(), finished),  # type: ignore[attr-defined]
                                   key=lambda result: result.index)
            raise
        except KeyboardInterrupt:
            interrupted = True
            stop_writes()
            entries = list(behind)
            # Saves in their last step finish or abandon their write.
            futures.wait([future for _, future in entries], timeout=GRACE_S)
            finished = finished_results(entries)
            finished += [result for result in handed if result.index not in {r.index for r in finished}]
            raise Interrupted(sorted(finished + _written_meanwhile(started.values(), finished),
                                     key=lambda result: result.index)) from None
        finally:
            for _, loading in ahead:
                if loading is not None:
                    loading.cancel()
            # Interrupted: threads still busy (a long decode or computation) are left to end with the process;
            # they write nothing, since renames are stopped. Otherwise writes in flight finish.
            decoders.shutdown(wait=not interrupted, cancel_futures=True)
            computer.shutdown(wait=not interrupted, cancel_futures=True)
            savers.shutdown(wait=not interrupted)


def _fill(queue: collections.deque[Any], iterator: Iterator[Item], window: int, take: Any) -> bool:
    """Pull items into ``queue`` (as ``take`` turns them into work) up to ``window``; True once they ran out."""
    while len(queue) < window:
        item = next(iterator, None)
        if item is None:
            return True
        queue.append(take(item))
    return False


def _compute_batch(
    job: Job, batch: list[tuple[Item, Any]], computer: futures.ThreadPoolExecutor,
    savers: futures.ThreadPoolExecutor,
) -> list[futures.Future[Result]]:
    try:
        computed = computer.submit(job.compute, [loaded for _, loaded in batch]).result()
    except FATAL:
        raise
    except Exception as batch_error:
        if len(batch) == 1:
            return [_done(failed(batch[0][0], batch_error))]
        # One bad image must not fail its neighbours: retry the batch one by one.
        return list(itertools.chain.from_iterable(
            _compute_batch(job, [entry], computer, savers) for entry in batch))
    return [savers.submit(_save, job, item, loaded, result) for (item, loaded), result in zip(batch, computed)]


def _compute_and_save(job: Job, item: Item, loaded: Any) -> Result:
    try:
        (computed,) = job.compute([loaded])
    except FATAL:
        raise
    except Exception as error:
        return failed(item, error)
    return _save(job, item, loaded, computed)


def _save(job: Job, item: Item, loaded: Any, computed: Any) -> Result:
    try:
        return saved(job, item, loaded, computed)
    except FATAL:
        raise
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
        context = _pool_context()
        # Workers watch this pipe: the parent holds its only writing end, so its death, however it comes, closes it.
        alive_read, alive_write = context.Pipe(duplex=False)
        pool = futures.ProcessPoolExecutor(
            max_workers=self.jobs, mp_context=context, initializer=_worker_set_job, initargs=(job, alive_read)
        )
        pending: collections.deque[tuple[Item, futures.Future[Result]]] = collections.deque()
        iterator = iter(items)
        interrupted = False

        def take(item: Item) -> tuple[Item, futures.Future[Result]]:
            if not needs_work(item):  # nothing to compute: answer without a round trip
                return item, _done(process_item(job, item))
            future = _submit(pool, _worker_process, item)
            future.destination_before = _file_identity(item.destination)  # type: ignore[attr-defined]
            return item, future

        try:
            exhausted = False
            while True:
                exhausted = exhausted or _fill(pending, iterator, window, take)
                if not pending:
                    return
                if ordered:
                    item, future = pending[0]
                    if getattr(items, "stopped", False) and future.cancel():  # fail-fast: never started
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
        except SetupError as stop:  # as above: what the other workers wrote is reported
            interrupted = True
            stop.finished = _stop_workers(pool, pending)  # type: ignore[attr-defined]
            raise
        except KeyboardInterrupt:
            interrupted = True
            raise Interrupted(_stop_workers(pool, pending)) from None
        finally:
            for _, future in pending:
                future.cancel()
            pool.shutdown(wait=not interrupted, cancel_futures=True)
            alive_write.close()
            alive_read.close()


def _submit(pool: futures.ProcessPoolExecutor, function: Any, *args: Any) -> futures.Future[Any]:
    """``pool.submit``, with a future that a broken pool may mark failed even after it was cancelled.

    Stopping a pool cancels the items not started and then kills the workers; CPython before 3.12 then marks every
    pending item failed, cancelled ones included, and its manager thread dies printing ``InvalidStateError``
    (fixed upstream in 3.12). Only that thread calls ``set_exception`` on a future it no longer owns.
    """
    future = pool.submit(function, *args)
    set_exception = future.set_exception

    def set_exception_unless_cancelled(exception: BaseException | None) -> None:
        with contextlib.suppress(futures.InvalidStateError):
            set_exception(exception)

    future.set_exception = set_exception_unless_cancelled  # type: ignore[method-assign]
    return future


def _stop_workers(pool: futures.ProcessPoolExecutor, pending: Iterable[tuple[Item, futures.Future[Result]]]
                  ) -> list[Result]:
    """Stop a pool now: no more renames anywhere, a short grace for items in their last step, then kill."""
    stop_writes()
    processes = list((getattr(pool, "_processes", None) or {}).values())
    for process in processes:
        with contextlib.suppress(OSError):
            os.kill(process.pid, signal.SIGTERM)  # a worker's SIGTERM only stops its renames
    entries = list(pending)
    running = [future for _, future in entries if not future.cancel()]
    futures.wait(running, timeout=GRACE_S)
    for process in processes:
        with contextlib.suppress(OSError, AttributeError):
            process.kill()
    for process in processes:
        process.join(GRACE_S)
    remove_temp_files({item.destination.parent for item, _ in entries if item.destination is not None},
                      [process.pid for process in processes])
    finished = finished_results(entries)
    sent = [(item, getattr(future, "destination_before", None)) for item, future in entries
            if not future.cancelled()]
    return sorted(finished + _written_meanwhile(sent, finished), key=lambda result: result.index)


def _written_meanwhile(sent: Iterable[tuple[Item, Any]], finished: list[Result]) -> list[Result]:
    """The items a stopping run renamed into place without a result to show for it.

    A worker may rename its output and be killed before its result comes back, and a thread may rename its
    output and not be scheduled again before the grace ends (a loaded machine): its future then holds no
    result, or the broken pool's error. ``sent`` pairs each item sent to work with its destination's identity
    before (:func:`_file_identity`): a destination that changed since is reported as written all the same.
    """
    reported = {result.index for result in finished}
    written = []
    for item, before in sent:
        if item.index in reported or item.destination is None:
            continue
        if _file_identity(item.destination) not in (None, before):
            written.append(Result(item.index, item.name, str(item.destination), "written",
                                  relpath=item.source.relpath.as_posix()))
    return written


def _file_identity(path: Any) -> tuple[int, int, int] | None:
    """What tells one version of a file from the next: inode, size and modification time."""
    if path is None:
        return None
    try:
        info = os.stat(path)
    except OSError:
        return None
    return info.st_ino, info.st_size, info.st_mtime_ns


def _outcome(item: Item, future: futures.Future[Result]) -> Result:
    try:
        return future.result()
    except futures.process.BrokenProcessPool:
        return failed(item, "a worker process died (out of memory?)")
    except FATAL:
        raise
    except Exception as error:
        return failed(item, error)


def _worker_init(parent_alive: Any = None) -> None:
    _die_with_parent(parent_alive)
    # Ctrl-C reaches every process of the terminal's group, and the parent forwards SIGTERM: either only stops
    # renames here (the item in hand abandons its write, removing its temp file); the parent decides the rest.
    signal.signal(signal.SIGINT, _stop_on_signal)
    signal.signal(signal.SIGTERM, _stop_on_signal)
    import cv2

    cv2.setNumThreads(1)  # one core per worker: the number of jobs says how many cores to use


def _stop_on_signal(signum: int, frame: object) -> None:
    stop_writes()


def _die_with_parent(parent_alive: Any) -> None:
    """Make this worker end within moments of its parent's death, even by ``kill -9``, so no worker is orphaned.

    On Linux the kernel sends SIGKILL when the parent (the fork server, itself ending with maskcli) dies
    (``PR_SET_PDEATHSIG``); everywhere, a daemon thread waits on a pipe whose only writer is maskcli's main
    process: end of file means it is gone.
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
        context.set_forkserver_preload(["maskcli.pipeline", "maskcli.engines.local", "maskcli.io.decode",
                                        "maskcli.io.encode", "cv2"])
        return context
    return multiprocessing.get_context("spawn")


__all__ = ["InProcess", "ProcessPool", "choose"]
