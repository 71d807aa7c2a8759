"""The runner's vocabulary (maskcli.work): what a job must declare, and how a failed batch is isolated."""

from __future__ import annotations

import dataclasses
from pathlib import PurePosixPath

import pytest

from maskcli.errors import SetupError
from maskcli.io.sources import Item, Source
from maskcli.pipeline import run
from maskcli.work import Job, JobBase, Result, compute_isolated, file_identity


class Bare:
    """A job written before the protocol declared what the runner reads: no ``releases_gil``, no ``reads``."""

    batched, batch_size = False, 1

    def load(self, item):
        return item.name

    def compute(self, loaded):
        return loaded

    def save(self, item, loaded, computed, gate):
        return Result(item.index, item.name, None, "written")


class Declared(JobBase, Bare):
    """The same job with the usual values from the base class."""


def one_item():
    return [Item(0, Source("a.png", PurePosixPath("a.png")))]


def test_a_job_lacking_the_protocols_attributes_is_refused_by_name():
    assert not isinstance(Bare(), Job)
    with pytest.raises(TypeError, match=r"Bare is not a Job: it lacks releases_gil, reads \(derive it from "
                                        r"maskcli.work.JobBase"):
        list(run(one_item(), Bare(), jobs=1))


def test_the_base_class_gives_the_usual_values_and_the_job_runs():
    job = Declared()
    assert isinstance(job, Job)
    assert (job.batched, job.batch_size, job.releases_gil, tuple(job.reads)) == (False, 1, False, ())
    assert [result.status for result in run(one_item(), job, jobs=1)] == ["written"]


@dataclasses.dataclass
class Overriding(JobBase, Bare):
    releases_gil: bool = True  # a field overrides the base's value


def test_a_job_overrides_the_base_values_with_fields():
    assert Overriding().releases_gil and not Overriding(releases_gil=False).releases_gil


def test_a_failed_batch_is_retried_one_by_one():
    calls = []

    def compute(values):
        calls.append(list(values))
        if 0 in values:
            raise ValueError("zero")
        return [10 // value for value in values]

    outcomes = compute_isolated(compute, [5, 0, 2])
    assert calls == [[5, 0, 2], [5], [0], [2]]  # the batch once, then each item alone
    assert outcomes[0] == 2 and outcomes[2] == 5 and isinstance(outcomes[1], ValueError)


def test_a_batch_that_works_is_computed_once_and_a_lone_failure_is_not_retried():
    calls = []

    def compute(values):
        calls.append(list(values))
        if values == [0]:
            raise ValueError("zero")
        return values

    assert compute_isolated(compute, [1, 2]) == [1, 2] and calls == [[1, 2]]
    calls.clear()
    (outcome,) = compute_isolated(compute, [0])
    assert isinstance(outcome, ValueError) and calls == [[0]]
    assert compute_isolated(compute, []) == []


def test_fatal_errors_are_not_isolated():
    def compute(values):
        raise SetupError("no weights")

    with pytest.raises(SetupError):
        compute_isolated(compute, [1, 2])


def test_file_identity_tells_versions_apart(tmp_path):
    path = tmp_path / "a.png"
    assert file_identity(path) is None
    path.write_bytes(b"one")
    first = file_identity(path)
    path.write_bytes(b"three")
    assert first is not None and file_identity(path) != first
