"""The streaming runner: order, isolation of failures, fail-fast, batching, skipped and refused items."""

from __future__ import annotations

import dataclasses
from pathlib import PurePosixPath

import pytest

from maskcli.errors import InputError, OptionError
from maskcli.io.sources import Item, Source
from maskcli.pipeline import run
from maskcli.work import JobBase, Result


@dataclasses.dataclass
class SquareJob(JobBase):
    """A job over integers: fails on negative ones, records how batches were formed."""

    batched: bool = False
    batch_size: int = 1
    releases_gil: bool = False  # True: the default engine runs it in threads of this process

    def load(self, item: Item) -> int:
        value = int(item.source.path)
        if value < 0:
            raise InputError("negative input")
        return value

    def compute(self, loaded: list[int]) -> list[int]:
        if 13 in loaded:
            raise ValueError("unlucky batch")
        return [(value * value, len(loaded)) for value in loaded]

    def save(self, item: Item, loaded: int, computed, gate) -> Result:
        square, batch = computed
        return Result(item.index, item.name, None, "written", facts={"square": square, "batch": batch})


#: (jobs, releases_gil) for each local engine: in this process, worker processes, threads side by side.
ENGINES = [pytest.param(1, False, id="in-process"), pytest.param(2, False, id="processes"),
           pytest.param(2, True, id="threads")]


def test_the_local_engine_for_each_kind_of_job(monkeypatch):
    from maskcli.engines.local import ITEMS_PER_WORKER, THREADED_CORES, choose
    from maskcli.engines.threads import InProcess

    monkeypatch.setattr("maskcli.engines.local.cpu_count", lambda: 64)  # as on a machine with that many cores

    def engine(job, jobs, count=3):
        chosen, rest = choose(job, jobs, items(range(count)))
        assert [item.index for item in rest] == list(range(count))  # the items peeked at are all still there
        return type(chosen).__name__, getattr(chosen, "threads", None) or chosen.jobs

    gil_free, past = SquareJob(releases_gil=True), THREADED_CORES + 1
    assert engine(SquareJob(), 1) == ("InProcess", 1)
    assert engine(SquareJob(), 2) == ("ProcessPool", 2)
    assert engine(SquareJob(), 2, count=1) == ("InProcess", 1)  # a lone item never starts a pool
    assert engine(gil_free, 2) == ("InProcess", 2)  # threads: no worker start-up
    assert engine(gil_free, THREADED_CORES, count=1000) == ("InProcess", THREADED_CORES)
    # Past the GIL's reach, worker processes; for a few items, starting them costs more than threads lose.
    assert engine(gil_free, past, count=ITEMS_PER_WORKER * past) == ("ProcessPool", past)
    assert engine(gil_free, past, count=ITEMS_PER_WORKER * past - 1) == ("InProcess", past)
    assert isinstance(choose(gil_free, 16, items(range(1)))[0], InProcess)


def items(values):
    for index, value in enumerate(values):
        yield Item(index, Source(str(value), PurePosixPath(f"{value}.png")))


@pytest.mark.parametrize(("jobs", "releases_gil"), ENGINES)
def test_results_in_input_order_with_failures_isolated(jobs, releases_gil):
    values = [3, -1, 4, 5, -9, 2]
    results = list(run(items(values), SquareJob(releases_gil=releases_gil), jobs=jobs))
    assert [r.input for r in results] == [str(v) for v in values]
    assert [r.status for r in results] == ["written", "failed", "written", "written", "failed", "written"]
    assert [r.facts.get("square") for r in results] == [9, None, 16, 25, None, 4]
    assert results[1].error == "negative input"
    assert results[0].relpath == "3.png"


@pytest.mark.parametrize(("jobs", "releases_gil"), ENGINES)
def test_unordered_yields_every_item_once(jobs, releases_gil):
    results = list(run(items(range(12)), SquareJob(releases_gil=releases_gil), jobs=jobs, ordered=False))
    assert sorted(r.facts["square"] for r in results) == [v * v for v in range(12)]


@pytest.mark.parametrize(("jobs", "releases_gil"), ENGINES)
def test_fail_fast_stops_early(jobs, releases_gil):
    values = [1, 2, -3, *range(4, 40)]
    results = list(run(items(values), SquareJob(releases_gil=releases_gil), jobs=jobs, fail_fast=True))
    assert [r.status for r in results[:3]] == ["written", "written", "failed"]
    # Items already in flight finish and are reported (a file they wrote is never left unmentioned); no other
    # item is started.
    assert all(r.status == "written" for r in results[3:]) and len(results) <= 3 + 4 * jobs
    assert [r.input for r in results] == [str(v) for v in values[:len(results)]]


def test_bugs_become_one_line_errors():
    (result,) = list(run(items([13]), SquareJob(), jobs=1))
    assert result.status == "failed"
    assert result.error.startswith("internal error: ValueError: unlucky batch at test_pipeline.py:")


def test_batched_jobs_form_batches_and_isolate_a_bad_batch():
    job = SquareJob(batched=True, batch_size=4)
    results = list(run(items([1, 2, 3, 4, 5, 13, 7, -8, 9]), job, jobs=2))
    assert [r.input for r in results] == ["1", "2", "3", "4", "5", "13", "7", "-8", "9"]
    assert [r.facts.get("batch") for r in results[:4]] == [4, 4, 4, 4]
    # the batch holding 13 failed as a whole and was retried one by one: only 13 fails
    assert [r.status for r in results[4:]] == ["written", "failed", "written", "failed", "written"]
    assert results[4].facts["batch"] == 1


def test_refused_and_skipped_items_are_reported_without_work():
    planned = list(items([1, 2, 3]))
    planned[0].error = "output exists"
    planned[1].skip = True
    results = list(run(planned, SquareJob(), jobs=2))
    assert [r.status for r in results] == ["failed", "skipped", "written"]
    assert results[0].error == "output exists"


def test_batched_order_is_kept_around_skipped_items():
    planned = list(items([1, 2, 3, 4]))
    planned[1].skip = True
    results = list(run(planned, SquareJob(batched=True, batch_size=8), jobs=1))
    assert [r.input for r in results] == ["1", "2", "3", "4"]


def test_jobs_must_be_positive():
    with pytest.raises(OptionError, match="jobs"):
        list(run(items([1]), SquareJob(), jobs=0))


def test_a_bounded_window_of_items_is_in_flight():
    # The list of inputs is read in full before the first write (so no output can land on a later input), but
    # only a small window of items is decoded ahead: memory stays bounded whatever the batch's length.
    loaded = []

    @dataclasses.dataclass
    class CountingJob(SquareJob):
        def load(self, item: Item) -> int:
            loaded.append(item.index)
            return super().load(item)

    results = run(items(range(5000)), CountingJob(), jobs=1)
    first = [next(results) for _ in range(3)]
    results.close()
    assert [r.facts["square"] for r in first] == [0, 1, 4]
    assert len(loaded) < 40


@dataclasses.dataclass
class PidJob(SquareJob):
    """Reports which process computed each item."""

    def compute(self, loaded: list[int]) -> list[int]:
        import os

        return [(os.getpid(), len(loaded)) for _ in loaded]


def test_a_job_that_releases_the_gil_computes_items_side_by_side_in_this_process():
    import os
    import threading

    meeting = threading.Barrier(2)

    @dataclasses.dataclass
    class MeetingJob(PidJob):
        releases_gil: bool = True

        def compute(self, loaded: list[int]) -> list[int]:
            meeting.wait(timeout=60)  # only two computations at once get past this
            return super().compute(loaded)

    results = list(run(items([1, 2, 3, 4]), MeetingJob(), jobs=2))
    assert [r.status for r in results] == ["written"] * 4
    assert {r.facts["square"] for r in results} == {os.getpid()}


def test_a_lone_item_runs_here_and_two_start_the_workers():
    import os

    (lone,) = run(items([1]), PidJob(), jobs=2)
    assert lone.facts["square"] == os.getpid()
    pair = list(run(items([1, 2]), PidJob(), jobs=2))
    assert all(result.facts["square"] != os.getpid() for result in pair)


def _sleep(seconds: float) -> float:
    import time

    time.sleep(seconds)
    return seconds


@pytest.mark.parametrize("submit", ["tolerant", "plain"])
def test_a_killed_pool_with_cancelled_items_prints_no_thread_traceback(submit: str) -> None:
    """Stopping a pool cancels what has not started, then kills the workers: the pool's manager thread must not
    die on the cancelled futures (it did on CPython 3.11, printing a traceback in the middle of a Ctrl-C)."""
    import concurrent.futures as futures
    import sys
    import threading

    from maskcli.engines.processes import _pool_context, _submit

    if submit == "plain" and sys.version_info >= (3, 12):
        pytest.skip("CPython 3.12 and later tolerate cancelled futures in a broken pool themselves")
    errors: list[BaseException] = []
    previous = threading.excepthook
    threading.excepthook = lambda args: errors.append(args.exc_value)  # type: ignore[assignment]
    pool = futures.ProcessPoolExecutor(max_workers=1, mp_context=_pool_context())
    try:
        def start(seconds: float) -> futures.Future[float]:
            return _submit(pool, _sleep, seconds) if submit == "tolerant" else pool.submit(_sleep, seconds)

        running = start(30.0)
        waiting = [start(0.0) for _ in range(4)]
        while not running.running():
            threading.Event().wait(0.01)
        assert all(future.cancel() for future in waiting[1:])  # queued behind the busy worker
        for process in list(pool._processes.values()):  # type: ignore[attr-defined]
            process.kill()
        with pytest.raises(futures.process.BrokenProcessPool):
            running.result(timeout=30)
        pool.shutdown(wait=True)
    finally:
        threading.excepthook = previous
    if submit == "tolerant":
        assert errors == []
    elif not errors:
        pytest.skip("this interpreter tolerates cancelled futures in a broken pool itself")
    else:  # the defect the tolerant futures avoid, shown on the interpreter that has it
        assert all(isinstance(error, futures.InvalidStateError) for error in errors)


@pytest.mark.parametrize(("jobs", "releases_gil"), ENGINES)
def test_an_interrupt_while_the_caller_holds_a_result_hands_that_result_back(jobs, releases_gil):
    from maskcli.errors import Interrupted

    results = run(items(range(40)), SquareJob(releases_gil=releases_gil), jobs=jobs)
    first = next(results)
    with pytest.raises(Interrupted) as stop:
        results.throw(KeyboardInterrupt())  # as if Ctrl-C came while the caller was still reporting `first`
    finished = stop.value.finished
    assert finished[0] is first  # its report may have been cut short: it is offered again, first
    assert [r.index for r in finished] == sorted({r.index for r in finished})


@pytest.mark.parametrize(("jobs", "releases_gil"), ENGINES)
def test_an_interrupt_between_two_results_still_stops_the_executor_and_reports(jobs, releases_gil, monkeypatch):
    from maskcli import work
    from maskcli.errors import Interrupted

    def signal_arrives(feed):  # a signal landing in the runner's own code, after a result and before the next
        raise KeyboardInterrupt

    monkeypatch.setattr(work.Feed, "stop", signal_arrives)
    results = run(items([3, -1] + list(range(40))), SquareJob(releases_gil=releases_gil), jobs=jobs,
                  fail_fast=True)
    assert [next(results).status for _ in range(2)] == ["written", "failed"]
    with pytest.raises(Interrupted) as stop:
        next(results)  # fail-fast stops the feed after the failed item, and the signal comes there
    assert stop.value.finished[0].status == "failed" and stop.value.finished[0].input == "-1"


@pytest.mark.parametrize("threads", [1, 2])
def test_a_file_renamed_just_before_a_stop_is_reported_though_its_thread_is_slow_to_say_so(tmp_path, threads):
    import os
    import signal
    import threading

    from maskcli.engines.threads import InProcess
    from maskcli.errors import Interrupted
    from maskcli.io.files import write_atomic

    renamed, release = threading.Event(), threading.Event()

    @dataclasses.dataclass
    class SlowToReport(SquareJob):
        releases_gil: bool = True

        def save(self, item, loaded, computed, gate):
            write_atomic(item.destination, b"mask", gate=gate)
            renamed.set()
            release.wait(30)  # a thread not scheduled again before the stopping run's grace ends
            return super().save(item, loaded, computed, gate)

    def interrupt_once_renamed():
        if renamed.wait(30):
            os.kill(os.getpid(), signal.SIGINT)

    item = Item(0, Source("1", PurePosixPath("1.png")), destination=tmp_path / "1.png")
    threading.Thread(target=interrupt_once_renamed, daemon=True).start()
    try:
        with pytest.raises(Interrupted) as stop:
            list(InProcess(threads=threads).execute(SlowToReport(), iter([item]), ordered=True))
    finally:
        release.set()
    assert [(r.index, r.status, r.output) for r in stop.value.finished] == [(0, "written", str(tmp_path / "1.png"))]
    assert os.listdir(tmp_path) == ["1.png"]
