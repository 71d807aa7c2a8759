"""The engine of worker processes: whole items (decode → compute → encode) in ``jobs`` processes, one core each,
for jobs that hold the GIL (Python-heavy methods, refinements).

It answers a ``KeyboardInterrupt`` within a second, whatever the work is doing: renames stop at once, items in
their last step get :data:`~maskcli.work.GRACE_S` to finish, busy workers are killed, and
:class:`~maskcli.errors.Interrupted` carries the results that finished. Workers die with their parent, even
when it is killed with SIGKILL, so none is orphaned.
"""

from __future__ import annotations

import collections
import concurrent.futures as futures
import contextlib
import multiprocessing
import os
import signal
import sys
import threading
from collections.abc import Iterable, Iterator
from typing import Any

from maskcli.cores import one_core_per_worker
from maskcli.engines.window import fill
from maskcli.engines.window import finished as _done
from maskcli.errors import Interrupted, OptionError, SetupError
from maskcli.io.files import WriteGate, remove_temp_files
from maskcli.io.sources import Item
from maskcli.work import (
    FATAL,
    GRACE_S,
    Feed,
    Job,
    Result,
    failed,
    file_identity,
    finished_results,
    needs_work,
    process_item,
    written_meanwhile,
)


class ProcessPool:
    """Whole items in ``jobs`` worker processes; the job is pickled once per worker."""

    def __init__(self, jobs: int) -> None:
        if jobs < 1:
            raise OptionError("jobs", f"must be at least 1, not {jobs}")
        self.jobs = jobs

    def execute(self, job: Job, items: Iterable[Item], *, ordered: bool,
                gate: WriteGate | None = None) -> Iterator[Result]:
        # Each worker writes through a gate of its own, stopped by the signal this process sends it (_stop_workers).
        gate = gate or WriteGate()
        window = self.jobs * 4
        context = _pool_context()
        # Workers watch this pipe: the parent holds its only writing end, so its death, however it comes, closes it.
        alive_read, alive_write = context.Pipe(duplex=False)
        pool = futures.ProcessPoolExecutor(
            max_workers=self.jobs, mp_context=context, initializer=_worker_set_job, initargs=(job, alive_read)
        )
        pending: collections.deque[tuple[Item, futures.Future[Result]]] = collections.deque()
        feed = Feed.of(items)
        interrupted = False

        def take(item: Item) -> tuple[Item, futures.Future[Result]]:
            if not needs_work(item):  # nothing to compute: answer without a round trip
                return item, _done(process_item(job, item, gate))
            future = _submit(pool, _worker_process, item)
            # The ignore below: the future or the exception carries what the stop must report.
            future.destination_before = file_identity(item.destination)  # type: ignore[attr-defined]
            return item, future

        try:
            exhausted = False
            while True:
                exhausted = exhausted or fill(pending, feed, window, take)
                if not pending:
                    return
                if ordered:
                    item, future = pending[0]
                    if feed.stopped and future.cancel():  # fail-fast: never started
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
            # The ignore below: the future or the exception carries what the stop must report.
            stop.finished = _stop_workers(pool, pending, gate)  # type: ignore[attr-defined]
            raise
        except KeyboardInterrupt:
            interrupted = True
            raise Interrupted(_stop_workers(pool, pending, gate)) from None
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

    # The ignore below: CPython's own broken-pool path calls it (see the docstring).
    future.set_exception = set_exception_unless_cancelled  # type: ignore[method-assign]
    return future


def _stop_workers(pool: futures.ProcessPoolExecutor, pending: Iterable[tuple[Item, futures.Future[Result]]],
                  gate: WriteGate) -> list[Result]:
    """Stop a pool now: no more renames anywhere, a short grace for items in their last step, then kill."""
    gate.stop()
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
    return sorted(finished + written_meanwhile(sent, finished), key=lambda result: result.index)


def _outcome(item: Item, future: futures.Future[Result]) -> Result:
    try:
        return future.result()
    except futures.process.BrokenProcessPool:
        return failed(item, "a worker process died (out of memory?)")
    except FATAL:
        raise
    except Exception as error:
        return failed(item, error)


def _worker_init(gate: WriteGate, parent_alive: Any = None) -> None:
    _die_with_parent(parent_alive)

    def stop_on_signal(signum: int, frame: object) -> None:
        gate.stop()

    # Ctrl-C reaches every process of the terminal's group, and the parent forwards SIGTERM: either only stops
    # renames here (the item in hand abandons its write, removing its temp file); the parent decides the rest.
    signal.signal(signal.SIGINT, stop_on_signal)
    signal.signal(signal.SIGTERM, stop_on_signal)
    if hasattr(signal, "pthread_sigmask"):  # the fork server hands them on blocked (see _signals_held)
        signal.pthread_sigmask(signal.SIG_UNBLOCK, _STOPPING)
    one_core_per_worker()


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


# A worker process's job and write gate, set once by the pool's initialiser: the only way it hands state to the
# tasks that follow. The worker process belongs to one run, and ends with it.
_WORKER: tuple[Job, WriteGate] | None = None


def _worker_set_job(job: Job, parent_alive: Any = None) -> None:
    global _WORKER
    gate = WriteGate()
    _worker_init(gate, parent_alive)
    _WORKER = (job, gate)


def _worker_process(item: Item) -> Result:
    assert _WORKER is not None
    job, gate = _WORKER
    return process_item(job, item, gate)


def _pool_context() -> multiprocessing.context.BaseContext:
    # forkserver: workers start from a clean, single-threaded server that has already imported maskcli, so they
    # start fast and never inherit the parent's threads (progress bar, prefetch) mid-lock, as fork could.
    if "forkserver" in multiprocessing.get_all_start_methods():
        context = multiprocessing.get_context("forkserver")
        context.set_forkserver_preload(["maskcli.work", "maskcli.engines.processes", "maskcli.io.decode",
                                        "maskcli.io.encode", "maskcli.io.files", "maskcli.io.masks", "cv2"])
        from multiprocessing import forkserver, resource_tracker

        # The server ignores SIGINT only once its imports are done: a Ctrl-C before that printed its traceback on
        # the terminal. The resource tracker goes first, since starting it unblocks both signals.
        resource_tracker.ensure_running()
        with _signals_held():
            forkserver.ensure_running()
        # Wait for the server's imports with a process that holds nothing: a worker whose start a Ctrl-C cut short
        # (the server still importing) was forked later all the same, found its pool's semaphores gone with this
        # process, and printed a traceback. Once the server is ready a start takes milliseconds.
        ready = context.Process(target=_ready, name="maskcli-server-ready")
        ready.start()
        ready.join()
        return context
    return multiprocessing.get_context("spawn")


_STOPPING = {signal.SIGINT, signal.SIGTERM}


def _ready() -> None:
    """Nothing: run by the fork server once its imports are done (see :func:`_pool_context`)."""


@contextlib.contextmanager
def _signals_held() -> Iterator[None]:
    """Block SIGINT and SIGTERM in this thread for the block: the processes it starts inherit them blocked (a
    worker unblocks them once its handlers are in place); here a signal that came meanwhile arrives after it."""
    if not hasattr(signal, "pthread_sigmask"):  # pragma: no cover - not POSIX
        yield
        return
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, _STOPPING)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


__all__ = ["ProcessPool"]
