"""Engines: where a job's items run. The runner (:func:`maskcli.pipeline.run`) drives any :class:`Executor`.

The local engine is the runner's own (threads and a process pool on this machine); :mod:`maskcli.engines.ray`
runs the same jobs on a Ray cluster. Nothing here imports an engine's dependencies: Ray is imported only when a
:class:`~maskcli.engines.ray.RayExecutor` is made.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from maskcli.io.sources import Item
    from maskcli.pipeline import Job, Result


class Executor(Protocol):
    """Runs a job over items and yields one result per item (input order when ``ordered``).

    Closing the returned generator cancels the work still outstanding.
    """

    def execute(self, job: Job, items: Iterable[Item], *, ordered: bool) -> Iterator[Result]: ...


__all__ = ["Executor"]
