"""How many cores this process may use: one answer for the runner, the CNN's threads and the CLI's defaults."""

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


__all__ = ["cpu_count"]
