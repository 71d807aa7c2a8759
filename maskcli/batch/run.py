"""Running a planned batch: its settings, what it tells whoever follows it, and what it hands back.

The library never prints: a batch tells a :class:`Listener` (the command line's report, or nothing) each warning
and each result as it comes, and returns a :class:`BatchOutcome` (every result, and whether it was interrupted or
stopped) for the caller to sum up.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable
from contextlib import ExitStack
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, BinaryIO, Protocol

from maskcli.errors import OutputUnavailable
from maskcli.io import DEFAULT_MAX_PIXELS
from maskcli.io.planning import Inputs, Outputs
from maskcli.io.shards import Shard

if TYPE_CHECKING:  # the types alone: the runner loads the decoders, and a batch loads it when it runs
    from maskcli.io.sources import Existing, Item, Source
    from maskcli.work import Result


class Listener(Protocol):
    """Follows a batch: its warnings before it runs, its start, then each result once."""

    def warning(self, message: str) -> None: ...

    def started(self, *, image_on_stdout: bool) -> None: ...

    def result(self, result: Result) -> None: ...


class Silent:
    """The listener of a batch nobody follows."""

    def warning(self, message: str) -> None:
        """Dropped."""

    def started(self, *, image_on_stdout: bool) -> None:
        """Nothing to start."""

    def result(self, result: Result) -> None:
        """Kept in the outcome only."""


@dataclasses.dataclass
class BatchOutcome:
    """What a batch did.

    Attributes
    ----------
    results : list of Result
        Every result reported, in the order reported.
    interrupted : bool
        A Ctrl-C or SIGTERM stopped it; ``results`` holds every file it left written.
    stopped : OutputUnavailable, optional
        The run stopped because an output could not be written anywhere (a full disk, a read-only folder).
    problem : str, optional
        Why the batch's own file was not written although the run finished (export's COCO document).
    """

    results: list[Result] = dataclasses.field(default_factory=list)
    interrupted: bool = False
    stopped: OutputUnavailable | None = None
    problem: str | None = None

    @property
    def failed(self) -> int:
        return sum(result.status == "failed" for result in self.results)


@dataclasses.dataclass
class BatchSettings:
    """How a batch finds its inputs, where its outputs go, and how it runs (segment and apply).

    Parameters
    ----------
    inputs : list of str, optional
        Image files, folders, glob patterns, or ``-`` for one image on ``stdin``.
    output : Path, optional
        The output folder, or file (see :class:`maskcli.io.planning.Outputs`).
    name : str
        The output name template.
    recursive, from_file, null, max_pixels, stdin
        As in :class:`maskcli.io.planning.Inputs`.
    existing : {"error", "skip", "overwrite"}
        What an existing output means.
    jobs : int, optional
        Cores to use (default: all).
    executor : optional
        Another engine (a :class:`maskcli.engines.ray.RayExecutor`); None: this machine.
    ordered, fail_fast, temporal
        As in :func:`maskcli.video.runner.run_media`.
    watch : bool
        After the inputs, go on with each new file of the input folders until interrupted.
    shard : Shard, optional
        Only this share of the items (:class:`maskcli.io.shards.Shard`): N drivers with shards 1/N … N/N cover the
        batch exactly once, and write what one run would.
    stdout, records_on_stdout
        As in :class:`maskcli.io.planning.Outputs`.
    """

    inputs: list[str] | None = None
    output: Path | None = None
    name: str = "{stem}.png"
    recursive: bool = False
    from_file: str | None = None
    null: bool = False
    existing: Existing = "error"
    max_pixels: int = DEFAULT_MAX_PIXELS
    jobs: int | None = None
    executor: Any = None
    ordered: bool = True
    fail_fast: bool = False
    temporal: float | None = None
    watch: bool = False
    stdin: IO[str] | None = None
    stdout: Callable[[], BinaryIO] | None = None
    records_on_stdout: bool = False
    shard: Shard | None = None

    def __post_init__(self) -> None:
        if self.output is not None:
            self.output = Path(self.output)

    @property
    def planned_inputs(self) -> Inputs:
        return Inputs(self.inputs, self.recursive, self.from_file, self.null, self.max_pixels, self.stdin)

    @property
    def planned_outputs(self) -> Outputs:
        return Outputs(self.output, self.name, self.existing, self.stdout, self.records_on_stdout)

    def watcher(self) -> Any:
        """The watch of the input folders ``watch`` asks for (None without it)."""
        return self.planned_inputs.watch(self.output) if self.watch else None


def _sharded(shard: Shard, items: Iterable[Item], plan: Callable[[list[Source]], Iterable[Item]] | None
             ) -> tuple[Iterable[Item], Callable[[list[Source]], Iterable[Item]] | None]:
    """The items of one share, and a plan that keeps a watched folder's new files to the same share."""
    if plan is None:
        return shard.select(items), None
    whole = plan

    def planned(sources: list[Source]) -> Iterable[Item]:
        return shard.select(whole(sources))

    return shard.select(items), planned


def run_batch(items: Iterable[Item], job: Any, settings: BatchSettings, listener: Listener, *,
              image_on_stdout: bool = False, watch: Any = None,
              plan: Callable[[list[Source]], Iterable[Item]] | None = None,
              finish: Callable[[list[Result]], None] | None = None) -> BatchOutcome:
    """Run a job over planned items, telling ``listener`` each result.

    ``watch``: a folder watch that goes on with each new file (``plan`` makes their items) until interrupted.
    ``finish``: called with every result once the run ends (interrupted or stopped too).
    The executor of ``settings`` is started before the first item and closed however the run ends.
    """
    from maskcli.video.runner import run_media
    from maskcli.watching import run_watched

    if settings.shard is not None:
        from maskcli.io.sources import guard_inputs

        # The whole batch is checked first, as one run checks it: no share writes over another share's input.
        items = guard_inputs(items, also=settings.planned_inputs.files_read())
        items, plan = _sharded(settings.shard, items, plan)
    executor = settings.executor
    if executor is not None:
        executor.start()  # before the listener starts its clock: a cluster's start-up is not the batch's time
    outcome = BatchOutcome()
    try:
        stack = ExitStack()
        listener.started(image_on_stdout=image_on_stdout)
        options = {"temporal": settings.temporal, "jobs": settings.jobs, "executor": executor,
                   "ordered": settings.ordered, "fail_fast": settings.fail_fast,
                   "reads": settings.planned_inputs.files_read()}
        if watch is not None:
            assert plan is not None, "a watched batch plans the items of each new file"
            stack.enter_context(watch)  # before the first pass: a file landing meanwhile is not missed
            results = run_watched(items, job, watch, plan, **options)
        else:
            results = run_media(items, job, **options)
        try:
            for result in results:
                listener.result(result)
                outcome.results.append(result)
        except KeyboardInterrupt as stop:
            finished = getattr(stop, "finished", None)
            if finished is None:  # it came while reporting: the runner stops its workers and says what finished
                try:
                    results.throw(stop)
                except KeyboardInterrupt as inner:
                    finished = getattr(inner, "finished", [])
            _settle(outcome, listener, finished or [])  # every file left on disk is reported
            outcome.interrupted = True
        except OutputUnavailable as stop:  # the run stopped (an output folder that takes no file): what it wrote
            _settle(outcome, listener, getattr(stop, "finished", []))
            outcome.stopped = stop
        finally:
            stack.close()
        if finish is not None:
            finish(outcome.results)
        return outcome
    finally:
        if executor is not None:
            executor.close()


def _settle(outcome: BatchOutcome, listener: Listener, finished: list[Result]) -> None:
    for result in finished:
        listener.result(result)
    outcome.results.extend(finished)
