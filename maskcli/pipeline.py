"""The streaming batch runner.

A command is a :class:`~maskcli.work.Job`: ``load`` decodes an item's inputs, ``compute`` turns a list of loaded items
into results (a batch for the CNN, one item otherwise) and ``save`` encodes and writes. :func:`run` feeds items through
a job and yields one :class:`~maskcli.work.Result` per item; it never prints, and one failing item never stops the
others (unless ``fail_fast``).

Where the work runs is an engine's business (:mod:`maskcli.engines`); by default a local one is chosen:

* **per-item jobs** (compositing, refinements, local thresholds) run whole items, decode → compute → encode, in
  ``jobs`` worker processes, each item on one core; file reads and writes are cheap next to that. With ``jobs=1``
  the work runs in this process, which saves a process start for a single image.
* **jobs whose stages release the GIL** (global thresholds and edges: OpenCV's codecs and OpenCV calls) run in
  this process, ``jobs`` items at a time in threads, decoding ahead.
* **batched jobs** (a CNN) keep one model in this process: decoding runs ahead in threads, batches of
  ``batch_size`` go through the model, and encoding and writing run behind in threads.

Whatever the engine, this loop is where fail-fast and Ctrl-C are answered; the answers for refused and skipped
items and the turning of one item's failure into one failed result are the runner's vocabulary
(:mod:`maskcli.work`), which every engine uses.

Memory stays bounded whatever the number of items: at most a small window of items is in flight. The list of
items itself is read in full before the first write, so that no output can land on any input of the batch
(:func:`maskcli.io.sources.guard_inputs`). Results come in input order by default (``ordered=False``: as they
finish).

Ctrl-C (a ``KeyboardInterrupt`` in the caller's thread) stops the run within a second: no file is renamed into place
after it, workers are told to stop and killed if still busy after a short grace (:data:`~maskcli.work.GRACE_S`), and
:class:`~maskcli.errors.Interrupted` is raised carrying the results of items that finished meanwhile, so every file left
on disk can be reported. No partial file is left, since every write goes through a temp file and a rename.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING

from maskcli.cores import cores_for
from maskcli.engines.local import choose
from maskcli.errors import Interrupted
from maskcli.io.files import WriteGate
from maskcli.io.sources import Item, guard_inputs
from maskcli.work import Feed, Job, Result, check_job

if TYPE_CHECKING:
    from maskcli.engines import Executor


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
    >>> from maskcli.engines.threads import InProcess
    >>> from maskcli.io.sources import Source
    >>> from maskcli.work import JobBase
    >>> class Length(JobBase):
    ...     def load(self, item): return item.name
    ...     def compute(self, loaded): return [len(name) for name in loaded]
    ...     def save(self, item, loaded, computed, gate):
    ...         return Result(item.index, item.name, None, "written", facts={"length": computed})
    >>> items = [Item(i, Source(name, PurePosixPath(name))) for i, name in enumerate(["a.png", "bb.png"])]
    >>> [r.facts["length"] for r in run(items, Length(), executor=InProcess())]
    [5, 6]
    """
    # Every input is known before the first write, so no output can land on any of them (an output named like
    # another item's input would otherwise replace it); an input given twice runs once.
    job = check_job(job)
    items = guard_inputs(items, also=[*job.reads, *reads])
    if executor is None:
        executor, items = choose(job, cores_for(jobs), items)
    feed = Feed(items)
    # The run's own gate: stopping this run stops its writes alone, and the next run starts with an open one.
    results = executor.execute(job, feed, ordered=ordered, gate=WriteGate())
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


__all__ = ["run"]
