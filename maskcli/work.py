"""The runner's vocabulary: what a job is, what happens to an item, and the rules every engine shares.

A :class:`Job` is what :func:`maskcli.pipeline.run` drives: ``load`` decodes an item's inputs, ``compute`` turns
a list of loaded items into results (a batch for the CNN, one item otherwise) and ``save`` encodes and writes.
Every engine (:mod:`maskcli.engines`) runs items through :func:`process_item` or its stages, turns one item's
failure into one failed :class:`Result` and isolates a failed batch with :func:`compute_isolated`. This module
sits below the runner and the engines: both import it, it imports neither.

Examples
--------
>>> class Length(JobBase):
...     def load(self, item): return item.name
...     def compute(self, loaded): return [len(name) for name in loaded]
...     def save(self, item, loaded, computed, gate):
...         return Result(item.index, item.name, None, "written", facts={"length": computed})
>>> isinstance(Length(), Job), Length().releases_gil, Length().reads
(True, False, ())
"""

from __future__ import annotations

import dataclasses
import os
import time
import traceback
from collections.abc import Callable, Iterable, Sequence
from typing import Any, Literal, Protocol, TypeVar, runtime_checkable

from maskcli.errors import MaskcliError, OutputTaken, SetupError, WriteStopped
from maskcli.io.files import WriteGate
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


@runtime_checkable
class Job(Protocol):
    """What the runner drives. ``load`` and ``save`` may run in threads; per-item jobs must pickle.

    Attributes
    ----------
    batched : bool
        ``compute`` takes batches of ``batch_size`` (a model kept in one process).
    batch_size : int
        Items per ``compute`` call for a batched job.
    releases_gil : bool
        The stages spend their time in C code that releases the GIL, and ``compute`` may run in several threads at
        once: the default engine then runs the job in threads of this process.
    reads : iterable of path or file descriptor
        Files the job reads besides the items' inputs (a background image, a prompt file): no output may replace
        them.

    :class:`JobBase` gives the usual values of the attributes.
    """

    # Read-only to the runner: a job may give each as a class attribute, a dataclass field or a property.
    @property
    def batched(self) -> bool: ...

    @property
    def batch_size(self) -> int: ...

    @property
    def releases_gil(self) -> bool: ...

    @property
    def reads(self) -> Iterable[str | os.PathLike[str] | int]: ...

    def load(self, item: Item) -> Any: ...

    def compute(self, loaded: list[Any]) -> list[Any]: ...

    def save(self, item: Item, loaded: Any, computed: Any, gate: WriteGate) -> Result: ...


class JobBase:
    """The usual values of a :class:`Job`'s attributes: one item at a time, holding the GIL, reading nothing else.

    A job overrides what differs (a class attribute, a dataclass field or a property). ``save`` writes through
    the run's :class:`~maskcli.io.files.WriteGate` (handed to its sinks), which stops its renames when the run
    stops.
    """

    @property
    def batched(self) -> bool:
        return False

    @property
    def batch_size(self) -> int:
        return 1

    @property
    def releases_gil(self) -> bool:
        return False

    @property
    def reads(self) -> Iterable[str | os.PathLike[str] | int]:
        return ()


def check_job(job: object) -> Job:
    """``job`` if it is a :class:`Job`, else a :class:`TypeError` naming what it lacks.

    >>> check_job(object())
    Traceback (most recent call last):
    ...
    TypeError: object is not a Job: it lacks batched, batch_size, releases_gil, reads, load, compute, save (derive ...
    """
    if isinstance(job, Job):
        return job
    wanted = ("batched", "batch_size", "releases_gil", "reads", "load", "compute", "save")
    missing = ", ".join(name for name in wanted if not hasattr(job, name))
    raise TypeError(f"{type(job).__name__} is not a Job: it lacks {missing} (derive it from maskcli.work.JobBase "
                    "for the usual values)")


# -- what happens to an item ----------------------------------------------------------------------------------


def skipped(item: Item) -> Result:
    """The result of an item whose output exists and is kept."""
    output = str(item.destination) if item.destination else None
    return Result(item.index, item.name, output, "skipped", relpath=item.source.relpath.as_posix())


def failed(item: Item, error: BaseException | str) -> Result:
    """The result of an item that failed, with one line saying why (:func:`describe`)."""
    output = str(item.destination) if item.destination else None
    return Result(item.index, item.name, output, "failed", error=describe(error),
                  relpath=item.source.relpath.as_posix())


def saved(job: Job, item: Item, loaded: Any, computed: Any, gate: WriteGate) -> Result:
    """``job.save`` (writing through ``gate``) with the item's relative path recorded; an output that another
    process wrote meanwhile counts as skipped when the batch skips existing outputs."""
    try:
        result = job.save(item, loaded, computed, gate)
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


def process_item(job: Job, item: Item, gate: WriteGate) -> Result:
    """Load, compute and save one item (writing through ``gate``), turning any failure into a failed result.

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
        return saved(job, item, loaded, computed, gate)
    except FATAL:
        raise
    except Exception as error:
        return failed(item, error)


def save_or_fail(job: Job, item: Item, loaded: Any, computed: Any, gate: WriteGate) -> Result:
    """:func:`saved`, with a failure turned into the item's failed result."""
    try:
        return saved(job, item, loaded, computed, gate)
    except FATAL:
        raise
    except Exception as error:
        return failed(item, error)


Loaded = TypeVar("Loaded")
Computed = TypeVar("Computed")


def compute_isolated(compute: Callable[[list[Loaded]], Sequence[Computed]],
                     loaded: list[Loaded]) -> list[Computed | Exception]:
    """``compute`` on a batch; if the batch fails, each item alone, so that one bad input fails only itself.

    Returns one entry per input: its computed value, or the exception its computation raised. :data:`FATAL`
    errors stop everything.

    >>> def halve(values):
    ...     if 0 in values:
    ...         raise ZeroDivisionError("a zero")
    ...     return [1 / value for value in values]
    >>> [type(v).__name__ if isinstance(v, Exception) else v for v in compute_isolated(halve, [2, 0, 4])]
    [0.5, 'ZeroDivisionError', 0.25]
    """
    if not loaded:
        return []
    try:
        return list(compute(loaded))
    except FATAL:
        raise
    except Exception as error:
        if len(loaded) == 1:
            return [error]
    outcomes: list[Computed | Exception] = []
    for one in loaded:
        try:
            outcomes.append(compute([one])[0])
        except FATAL:
            raise
        except Exception as error:
            outcomes.append(error)
    return outcomes


# -- the items of a run ---------------------------------------------------------------------------------------


class Feed:
    """The items of a run, until :meth:`stop`: then no more are handed out (those in flight still finish).

    Executors pull from it like any iterator and look at :attr:`stopped` to drop work not yet started.
    """

    def __init__(self, items: Iterable[Item]) -> None:
        self._items = iter(items)
        self.stopped = False

    @classmethod
    def of(cls, items: Iterable[Item]) -> Feed:
        """``items`` as a feed: itself if it is one, else a feed that is never stopped."""
        return items if isinstance(items, Feed) else cls(items)

    def __iter__(self) -> Feed:
        return self

    def __next__(self) -> Item:
        if self.stopped:
            raise StopIteration
        return next(self._items)

    def stop(self) -> None:
        self.stopped = True


def finished_results(entries: Iterable[tuple[Item | None, Any]]) -> list[Result]:
    """Results of the futures in ``(item, future)`` pairs that completed: what a stopping executor reports.

    A write abandoned because the run is stopping left no file and is no result; an entry without an item holds a
    result known at once.
    """
    results = []
    for item, future in entries:
        if not future.done() or future.cancelled():
            continue
        error = future.exception()
        if error is None:
            results.append(future.result())
        elif item is not None and isinstance(error, MaskcliError) and not isinstance(error, (SetupError, WriteStopped)):
            results.append(failed(item, error))
    return results


# -- file identity: what a stopping run wrote without a result to show ----------------------------------------


FileIdentity = tuple[int, int, int]


def file_identity(path: str | os.PathLike[str] | None) -> FileIdentity | None:
    """What tells one version of a file from the next: inode, size and modification time; None if absent.

    >>> file_identity(None), file_identity("/nonexistent/file") is None
    (None, True)
    """
    if path is None:
        return None
    try:
        info = os.stat(path)
    except OSError:
        return None
    return info.st_ino, info.st_size, info.st_mtime_ns


def written_meanwhile(sent: Iterable[tuple[Item, FileIdentity | None]], finished: list[Result]) -> list[Result]:
    """The items a stopping run renamed into place without a result to show for it.

    A worker may rename its output and be killed before its result comes back, and a thread may rename its
    output and not be scheduled again before the grace ends (a loaded machine): its future then holds no
    result, or the broken pool's error. ``sent`` pairs each item sent to work with its destination's identity
    before (:func:`file_identity`): a destination that changed since is reported as written all the same.
    """
    reported = {result.index for result in finished}
    written = []
    for item, before in sent:
        if item.index in reported or item.destination is None:
            continue
        if file_identity(item.destination) not in (None, before):
            written.append(Result(item.index, item.name, str(item.destination), "written",
                                  relpath=item.source.relpath.as_posix()))
    return written


# -- timings --------------------------------------------------------------------------------------------------


class Timer:
    """Collects milliseconds per stage: ``with timer("decode"): ...``.

    >>> timer = Timer()
    >>> with timer("decode"):
    ...     pass
    >>> list(timer.timings), timer.timings["decode"] >= 0
    (['decode'], True)
    """

    def __init__(self) -> None:
        self.timings: dict[str, float] = {}

    def __call__(self, stage: str) -> _Stage:
        return _Stage(self.timings, stage)


class _Stage:
    def __init__(self, timings: dict[str, float], stage: str) -> None:
        self.timings, self.stage = timings, stage

    def __enter__(self) -> None:
        self.start = time.perf_counter()

    def __exit__(self, *exc: object) -> None:
        elapsed = (time.perf_counter() - self.start) * 1000
        self.timings[self.stage] = self.timings.get(self.stage, 0.0) + elapsed


__all__ = ["FATAL", "GRACE_S", "Feed", "FileIdentity", "Job", "JobBase", "Result", "Status", "Timer", "check_job",
           "compute_isolated", "describe", "failed", "file_identity", "finished_results", "needs_work",
           "process_item", "save_or_fail", "saved", "skipped", "written_meanwhile"]
