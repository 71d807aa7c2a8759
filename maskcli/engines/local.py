"""The local engines, and the choice between them for a job and a number of cores.

* :class:`~maskcli.engines.threads.InProcess`: everything in this process, decoding ahead and saving behind in
  threads (batched jobs, jobs whose stages release the GIL, ``jobs=1``);
* :class:`~maskcli.engines.processes.ProcessPool`: whole items in worker processes, one core each (jobs that
  hold the GIL).

:func:`choose` picks one for a job and a number of cores.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable
from typing import Any

from maskcli.cores import cpu_count
from maskcli.engines.processes import ProcessPool
from maskcli.engines.threads import InProcess
from maskcli.errors import OptionError
from maskcli.io.sources import Item
from maskcli.work import Job

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
    runs here, and only a second item starts the pool. ``jobs`` beyond the cores this process may use is clamped
    to them: more workers or threads than cores add memory (each holds its item), not speed.
    """
    if jobs < 1:
        raise OptionError("jobs", f"must be at least 1, not {jobs}")
    jobs = min(jobs, cpu_count())
    threaded = job.releases_gil
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


__all__ = ["ITEMS_PER_WORKER", "THREADED_CORES", "choose"]
