"""How many cores this process may use, and how many a run is given: one answer for the runner, the video
runner, the Ray engine's model actor, the CNN's threads and the CLI's defaults."""

from __future__ import annotations

import os


def cpu_count() -> int:
    """The cores this process may use (its affinity, where the system tells it: cgroups, taskset), at least 1.

    >>> cpu_count() >= 1
    True
    """
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)


def cores_for(jobs: int | None) -> int:
    """The cores a run is given: ``jobs`` when asked for (checked by whoever uses it), else every core this
    process may use.

    >>> cores_for(3), cores_for(None) == cpu_count()
    (3, True)
    """
    return cpu_count() if jobs is None else jobs


def one_core_per_worker() -> None:
    """Keep OpenCV to the calling thread in a worker process: the number of workers says how many cores a run
    uses, and a worker computing on all of them would oversubscribe the machine."""
    import cv2

    cv2.setNumThreads(1)


__all__ = ["cores_for", "cpu_count", "one_core_per_worker"]
