"""Engines: how the runner's work is carried out, behind one small interface.

:func:`maskcli.pipeline.run` owns what is the same for every engine (fail-fast, the answers for items that need
no work, Ctrl-C, the default choice); an :class:`Executor` only decides *where* each item's ``load → compute →
save`` runs. :mod:`maskcli.engines.local` chooses between the two local ones: everything in this process with
the stages overlapped in threads (:mod:`maskcli.engines.threads`), and a pool of worker processes
(:mod:`maskcli.engines.processes`).

The contract:

* :meth:`Executor.execute` is a generator yielding exactly one :class:`~maskcli.work.Result` per item, in
  input order when ``ordered``, else as items finish;
* items are pulled lazily, with a bounded window in flight, so memory does not grow with the batch;
* every item goes through :func:`maskcli.work.process_item` (or its stages), which answers refused and
  skipped items without work and turns one item's failure into a failed result;
* every write of the run goes through ``gate``, the run's :class:`~maskcli.io.files.WriteGate` (one of its own
  when none is given; a worker process has its own, stopped by the signal its parent sends): stopping on Ctrl-C
  stops it, so no file is renamed into place after that and no temp file is left;
* closing the generator (the runner stops on fail-fast or Ctrl-C) cancels the work not yet started, lets
  in-flight writes finish (each is atomic: a temp file and a rename) and releases every process and thread.

Examples
--------
>>> from maskcli.engines.threads import InProcess
>>> isinstance(InProcess(threads=1), Executor)
True
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Protocol, runtime_checkable

if TYPE_CHECKING:
    from maskcli.io.files import WriteGate
    from maskcli.io.sources import Item
    from maskcli.work import Job, Result


@runtime_checkable
class Executor(Protocol):
    """Carries out a job over items; see the module's contract."""

    def execute(self, job: Job, items: Iterable[Item], *, ordered: bool,
                gate: WriteGate | None = None) -> Iterator[Result]: ...


__all__ = ["Executor"]
