"""The streaming batch runner.

A command is a :class:`Job`: ``load`` decodes an item's inputs, ``compute`` turns a list of loaded items into
results (a batch for the CNN, one item otherwise) and ``save`` encodes and writes. :func:`run` feeds items through
a job and yields one :class:`Result` per item; it never prints, and one failing item never stops the others
(unless ``fail_fast``).

Where the work runs is an engine's business (:mod:`maskcli.engines`); by default a local one is chosen:

* **per-item jobs** (compositing, refinements, local thresholds) run whole items, decode → compute → encode, in
  ``jobs`` worker processes, each item on one core; file reads and writes are cheap next to that. With ``jobs=1``
  the work runs in this process, which saves a process start for a single image.
* **jobs whose stages release the GIL** (global thresholds and edges: OpenCV's codecs and OpenCV calls) run in
  this process, ``jobs`` items at a time in threads, decoding ahead.
* **batched jobs** (a CNN) keep one model in this process: decoding runs ahead in threads, batches of
  ``batch_size`` go through the model, and encoding and writing run behind in threads.

Whatever the engine, this module is where fail-fast, the answers for refused and skipped items, and the turning
of one item's failure into one failed result live.

Memory stays bounded whatever the number of items: at most a small window of items is in flight. The list of
items itself is read in full before the first write, so that no output can land on any input of the batch
(:func:`maskcli.io.sources.guard_inputs`). Results come in input order by default (``ordered=False``: as they
finish).

Ctrl-C (a ``KeyboardInterrupt`` in the caller's thread) stops the run within a second: no file is renamed into
place after it, workers are told to stop and killed if still busy after a short grace (:data:`GRACE_S`), and
:class:`~maskcli.errors.Interrupted` is raised carrying the results of items that finished meanwhile, so every
file left on disk can be reported. No partial file is left, since every write goes through a temp file and a
rename.
"""

from __future__ import annotations

import dataclasses
import os
import time
import traceback
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Any, Literal, Protocol

from maskcli.cores import cpu_count
from maskcli.errors import Interrupted, MaskcliError, OutputTaken, SetupError, WriteStopped
from maskcli.io.encode import resume_writes
from maskcli.io.sources import Item, guard_inputs

if TYPE_CHECKING:
    from maskcli.engines import Executor

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
    """What :func:`run` drives. ``load`` and ``save`` may run in threads; per-item jobs must pickle.

    A job may also say ``releases_gil = True`` (its stages spend their time in C code that releases the GIL, and
    ``compute`` may run in several threads at once): the default executor then runs it in threads of this process.
    """

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
    """``job.save`` with the item's relative path recorded; an output that another process wrote meanwhile
    counts as skipped when the batch skips existing outputs."""
    try:
        result = job.save(item, loaded, computed)
    except OutputTaken as taken:
        if taken.skip:
            return skipped(item)
        raise
    result.relpath = item.source.relpath.as_posix()
    return result


def describe(error: BaseException | str) -> str:
    """One line for an error: our own errors say it all; anything else is a bug, named with its type."""
    if isinstance(error, str):
        return error
    if isinstance(error, MaskcliError):
        return str(error)
    if isinstance(error, MemoryError):
        return "out of memory (try fewer `jobs` or a smaller `max_pixels`)"
    if isinstance(error, OSError):
        return error.strerror or str(error)
    where = traceback.extract_tb(error.__traceback__)[-1] if error.__traceback__ else None
    place = f" at {os.path.basename(where.filename)}:{where.lineno}" if where else ""
    return f"internal error: {type(error).__name__}: {error}{place} (please report this)"


FATAL = (SetupError, WriteStopped, KeyboardInterrupt)
"""Errors that stop the whole run instead of failing one item: setup (weights, device), Ctrl-C, and a write
abandoned because the run is stopping (it left no file, so it is no result)."""

#: Seconds a stopping run waits for items in flight to finish or abandon their writes before killing workers.
GRACE_S = 0.5


def needs_work(item: Item) -> bool:
    """Whether an item goes to its job: refused items (an error, an output that may not be written) and
    skipped ones are answered by :func:`process_item` alone."""
    return not (item.error or item.skip)


def process_item(job: Job, item: Item) -> Result:
    """Load, compute and save one item, turning any failure into a failed result.

    The one place where every engine answers refused and skipped items, so the never-overwrite rule (an item
    whose output may not be written carries the reason in ``item.error``) holds whatever runs the job.
    """
    if item.error:
        return failed(item, item.error)
    if item.skip:
        return skipped(item)
    try:
        loaded = job.load(item)
        (computed,) = job.compute([loaded])
        return saved(job, item, loaded, computed)
    except FATAL:
        raise
    except Exception as error:
        return failed(item, error)


class Feed:
    """The items of a run, until :meth:`stop`: then no more are handed out (those in flight still finish).

    Executors pull from it like any iterator and may look at :attr:`stopped` to drop work not yet started.
    """

    def __init__(self, items: Iterable[Item]) -> None:
        self._items = iter(items)
        self.stopped = False

    def __iter__(self) -> "Feed":
        return self

    def __next__(self) -> Item:
        if self.stopped:
            raise StopIteration
        return next(self._items)

    def stop(self) -> None:
        self.stopped = True


def finished_results(entries: Iterable[tuple[Item, Any]]) -> list[Result]:
    """Results of the futures in ``(item, future)`` pairs that completed: what a stopping executor reports.

    A write abandoned because the run is stopping left no file and is no result.
    """
    results = []
    for item, future in entries:
        if not future.done() or future.cancelled():
            continue
        error = future.exception()
        if error is None:
            results.append(future.result())
        elif isinstance(error, MaskcliError) and not isinstance(error, (SetupError, WriteStopped)):
            results.append(failed(item, error))
    return results


def run(
    items: Iterable[Item],
    job: Job,
    *,
    executor: Executor | None = None,
    jobs: int | None = None,
    ordered: bool = True,
    fail_fast: bool = False,
    reads: Iterable[str | os.PathLike[str] | int] = (),
) -> Iterator[Result]:
    """Run ``job`` over ``items``, yielding one result per item.

    Parameters
    ----------
    items : iterable of Item
        The work. Read in full before the first write (every input must be known to keep outputs off them);
        only a small window of items is in flight.
    job : Job
        What to do with each item.
    executor : Executor, optional
        Where the work runs (:mod:`maskcli.engines`). Default: a local one chosen for the job and ``jobs``
        (:func:`maskcli.engines.local.choose`).
    jobs : int, optional
        Cores for the default executor: worker processes for per-item jobs, threads for batched jobs and jobs
        that release the GIL. Default: every core this process may use.
    ordered : bool
        Yield results in input order (True) or as they finish.
    fail_fast : bool
        Stop after the first failed item: items in flight still finish and are yielded (so every file written is
        reported); the rest are not started.
    reads : iterable of path or file descriptor
        Files the run reads besides the items' inputs and the job's own (``job.reads``): a list of paths, stdin
        (``0``) when a file is redirected to it. No output may replace them.

    Returns
    -------
    iterator of Result
        One per item. Closing it early cancels the work not started and waits for writes in flight.

    Raises
    ------
    Interrupted
        On ``KeyboardInterrupt`` (also one thrown into the iterator while it waits at a result), with the results
        of the items that finished while the run stopped.

    Examples
    --------
    A job that measures names, run in this process:

    >>> from pathlib import PurePosixPath
    >>> from maskcli.engines.local import InProcess
    >>> from maskcli.io.sources import Source
    >>> class Length:
    ...     batched, batch_size = False, 1
    ...     def load(self, item): return item.name
    ...     def compute(self, loaded): return [len(name) for name in loaded]
    ...     def save(self, item, loaded, computed):
    ...         return Result(item.index, item.name, None, "written", facts={"length": computed})
    >>> items = [Item(i, Source(name, PurePosixPath(name))) for i, name in enumerate(["a.png", "bb.png"])]
    >>> [r.facts["length"] for r in run(items, Length(), executor=InProcess())]
    [5, 6]
    """
    # Every input is known before the first write, so no output can land on any of them (an output named like
    # another item's input would otherwise replace it); an input given twice runs once.
    items = guard_inputs(items, also=[*getattr(job, "reads", ()), *reads])
    if executor is None:
        from maskcli.engines.local import choose

        executor, items = choose(job, cpu_count() if jobs is None else jobs, items)
    feed = Feed(items)
    resume_writes()
    results = executor.execute(job, feed, ordered=ordered)
    last: Result | None = None  # the result the caller holds, or has just reported
    try:
        for result in results:
            if feed.stopped and fail_fast and result.status != "written":
                continue  # after the first failure only the files that items in flight wrote are reported
            last = result
            yield result
            if fail_fast and result.status == "failed":
                feed.stop()
    except KeyboardInterrupt as stop:
        if isinstance(stop, Interrupted):  # the executor stopped its work itself
            raise
        # Raised in the caller while the run waited at a result, or here between two: the executor stops its work
        # and raises Interrupted with what finished meanwhile. The last result comes first: the signal may have cut
        # its report short (a caller that finished reporting it skips it).
        finished: list[object] = [] if last is None else [last]
        thrower = getattr(results, "throw", None)
        if thrower is not None:
            try:
                thrower(stop)
            except Interrupted as stopped:  # it may offer again the result the caller holds: once is enough
                held = {getattr(result, "index", None) for result in finished}
                finished += [r for r in stopped.finished if getattr(r, "index", None) not in held]
            except (KeyboardInterrupt, StopIteration):  # an executor that had not started, or had ended
                pass
        raise Interrupted(finished) from None
    finally:
        close = getattr(results, "close", None)
        if close:
            close()


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


__all__ = ["FATAL", "GRACE_S", "Feed", "Job", "Result", "finished_results", "Timer", "cpu_count", "describe", "failed", "needs_work", "process_item", "run",
           "skipped"]
