"""Batches that go on: the files there now, then each new file of the watched folders once it is complete.

:func:`run_watched` runs a job over a batch like :func:`maskcli.video.runner.run_media`, then over each set of
files that :class:`maskcli.io.watch.FolderWatch` hands out, through the same runner, until ``until`` says stop or
Ctrl-C (:class:`~maskcli.errors.Interrupted`, as any run).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Generator, Iterable
from typing import Any

from maskcli.errors import Interrupted
from maskcli.io.sources import Item, Source
from maskcli.io.watch import FolderWatch
from maskcli.video.runner import run_media
from maskcli.work import Result


def run_watched(items: Iterable[Item], job: Any, watch: FolderWatch, plan: Callable[[list[Source]], Iterable[Item]],
                *, until: Callable[[], bool] | None = None, poll: float = 0.2,
                **options: Any) -> Generator[Result, None, None]:
    """Results of the batch ``items``, then of each new complete file, as they finish.

    Parameters
    ----------
    items : iterable of Item
        The batch there is now (its files are never handed out again).
    job : Job
        What to do with each item.
    watch : FolderWatch
        The watching, already started (``with watch:``).
    plan : callable
        New sources to items (the sink's destinations, an apply's mask pairing).
    until : callable, optional
        Checked between waits: True ends the run (default: only Ctrl-C ends it).
    poll : float
        Seconds of each wait for events.
    **options
        As for :func:`~maskcli.video.runner.run_media`.
    """
    # A watched folder with nothing in it yet is no error: its files are still to come.
    items = [item for item in items if not (item.source.error and os.path.isdir(item.source.path))]
    watch.seen(item.source.path for item in items if not item.source.error)
    try:
        yield from run_media(items, job, **options)
        following = max((item.index for item in items), default=-1) + 1
        while until is None or not until():
            sources = watch.ready(timeout=poll)
            if sources:
                planned = list(plan(sources))
                for item in planned:  # numbered on from the batch before: an item's index names it in the run
                    item.index += following
                following += len(planned)
                yield from run_media(planned, job, **options)
    except KeyboardInterrupt as stop:
        if isinstance(stop, Interrupted):
            raise
        raise Interrupted([]) from None


__all__ = ["run_watched"]
