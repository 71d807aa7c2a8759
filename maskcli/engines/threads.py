"""The engine that runs everything in this process: decode ahead in threads, compute, save behind in threads.

It runs batched jobs (a CNN keeps one model in this process), jobs whose stages release the GIL, and ``jobs=1``:
OpenCV and zlib release the GIL, so the next image decodes and the last mask encodes while this one computes.
Otsu on 200 one-megapixel JPEGs went from 73 to 115 img/s against a plain loop (benchmarks/bench_segment.py).

It answers a ``KeyboardInterrupt`` within a second, whatever the work is doing: renames stop at once, items in
their last step get :data:`~maskcli.work.GRACE_S` to finish, and :class:`~maskcli.errors.Interrupted` carries the
results that finished; threads still busy are left to end with the process, writing nothing.
"""

from __future__ import annotations

import collections
import concurrent.futures as futures
from collections.abc import Iterable, Iterator
from typing import Any

from maskcli.engines.window import fill
from maskcli.engines.window import finished as _done
from maskcli.errors import Interrupted, OptionError, SetupError
from maskcli.io.files import WriteGate
from maskcli.io.sources import Item
from maskcli.work import (
    FATAL,
    GRACE_S,
    Feed,
    Job,
    Result,
    compute_isolated,
    failed,
    file_identity,
    finished_results,
    needs_work,
    process_item,
    save_or_fail,
    written_meanwhile,
)

#: The most items one batch of a batched job holds: what the automatic choice of a CNN's batch size goes up to
#: (:meth:`maskcli.cnn.infer.Segmenter.probe_batch_size`). A larger batch is taken this many at a time: the items
#: decoded ahead (two batches) then stay bounded, whatever batch size was asked for.
MAX_BATCH_SIZE = 64


class InProcess:
    """Everything in this process: decode ahead in ``threads`` threads, compute, save behind in threads.

    A batched job computes one batch at a time (a model uses its own threads); a per-item job with more than one
    thread computes and saves ``threads`` items at once, each in one task, which only pays when the job's stages
    release the GIL (:func:`maskcli.engines.local.choose`).
    """

    def __init__(self, threads: int = 1) -> None:
        if threads < 1:
            raise OptionError("threads", f"must be at least 1, not {threads}")
        self.threads = threads

    def execute(self, job: Job, items: Iterable[Item], *, ordered: bool,
                gate: WriteGate | None = None) -> Iterator[Result]:
        # The computation runs in a thread of its own too, so that this thread, which answers Ctrl-C, only ever
        # waits: a long computation in C would otherwise hold the interrupt until it returned.
        threads = self.threads
        gate = gate or WriteGate()
        batch_size = min(max(1, job.batch_size), MAX_BATCH_SIZE)
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
        feed = Feed.of(items)
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
                exhausted = exhausted or fill(ahead, feed, window, take)
                if feed.stopped:  # fail-fast: decoded but not computed is never run
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
                        slots.append(_done(process_item(job, item, gate)))
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
                started.update((item.index, (item, file_identity(item.destination))) for item, _ in batch)
                if side_by_side:  # the next items start while these compute: no wait here
                    saving = iter([computer.submit(_compute_and_save, job, item, loaded, gate)
                                   for item, loaded in batch])
                else:
                    saving = iter(_compute_batch(job, batch, computer, savers, gate) if batch else [])
                behind.extend((None, slot) if isinstance(slot, futures.Future) else (slot[0], next(saving))
                              for slot in slots)
                yield from drain(block_until=window)
            yield from drain(block_until=0)
        except SetupError as stop:
            # The output folder took no file (full, read-only): the other items in flight may have written theirs,
            # which the error carries so that each is reported.
            interrupted = True
            gate.stop()
            entries = list(behind)
            futures.wait([future for _, future in entries], timeout=GRACE_S)
            finished = finished_results(entries)
            # The ignore below: the report of what finished rides on the exception.
            stop.finished = sorted(finished + written_meanwhile(started.values(), finished),  # type: ignore[attr-defined]
                                   key=_by_index)
            raise
        except KeyboardInterrupt:
            interrupted = True
            gate.stop()
            entries = list(behind)
            # Saves in their last step finish or abandon their write; the temp files of those still busy go now,
            # since the process may end without waiting for their threads.
            futures.wait([future for _, future in entries], timeout=GRACE_S)
            gate.discard_temp_files()
            finished = finished_results(entries)
            finished += [result for result in handed if result.index not in {r.index for r in finished}]
            done = sorted(finished + written_meanwhile(started.values(), finished), key=_by_index)
            raise Interrupted(done) from None
        finally:
            for _, loading in ahead:
                if loading is not None:
                    loading.cancel()
            # Interrupted: threads still busy (a long decode or computation) are left to end with the process;
            # they write nothing, since renames are stopped. Otherwise writes in flight finish.
            decoders.shutdown(wait=not interrupted, cancel_futures=True)
            computer.shutdown(wait=not interrupted, cancel_futures=True)
            savers.shutdown(wait=not interrupted)


def _by_index(result: Result) -> int:
    return result.index


def _compute_batch(
    job: Job, batch: list[tuple[Item, Any]], computer: futures.ThreadPoolExecutor,
    savers: futures.ThreadPoolExecutor, gate: WriteGate,
) -> list[futures.Future[Result]]:
    """Compute a batch in the computer's thread (one bad image fails alone), then save each result behind."""
    outcomes = computer.submit(compute_isolated, job.compute, [loaded for _, loaded in batch]).result()
    return [_done(failed(item, outcome)) if isinstance(outcome, Exception)
            else savers.submit(save_or_fail, job, item, loaded, outcome, gate)
            for (item, loaded), outcome in zip(batch, outcomes)]


def _compute_and_save(job: Job, item: Item, loaded: Any, gate: WriteGate) -> Result:
    (outcome,) = compute_isolated(job.compute, [loaded])
    if isinstance(outcome, Exception):
        return failed(item, outcome)
    return save_or_fail(job, item, loaded, outcome, gate)


__all__ = ["InProcess"]
