"""The training loop's plan in time: the learning-rate schedule and how many epochs fit a time budget.

Pure arithmetic, torch-free, so the loop (:mod:`maskcli.cnn.training`) and its tests share one rule. The rate warms
up linearly over the first epoch's steps (the first Adam steps move every weight by about the rate, which disturbs
a network that is already good), then decays along a cosine over the run's plan: the share of its time budget
spent, or of its epochs run, whichever is further along. Judged by time, the decay follows a machine whose load
changes during the run.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

__all__ = ["lr_factor", "epochs_that_fit", "progress"]


def lr_factor(step: int, warmup_steps: int, progress: float, floor: float = 0.05) -> float:
    """The share of the peak learning rate at an optimiser step: a linear warmup over ``warmup_steps``, then a
    cosine from 1 down to ``floor`` as ``progress`` (the share of the run's plan done) goes from 0 to 1.

    >>> [round(lr_factor(s, 4, 0.0), 2) for s in range(5)]
    [0.25, 0.5, 0.75, 1.0, 1.0]
    >>> round(lr_factor(100, 4, 0.5), 3), round(lr_factor(100, 4, 1.0), 3), round(lr_factor(100, 4, 2.0), 3)
    (0.525, 0.05, 0.05)
    """
    if step < warmup_steps:
        return (step + 1) / warmup_steps
    progress = min(max(progress, 0.0), 1.0)
    return floor + (1.0 - floor) * 0.5 * (1.0 + math.cos(math.pi * progress))


def epochs_that_fit(budget: float, spent: float, epoch_seconds: Sequence[float], done: int, cap: int) -> int:
    """The epochs a run can hold: those done, plus as many more as the remaining budget fits at the slowest recent
    epoch's pace (the machine's load changes), at most ``cap``; with no budget (0) or no epoch measured yet, ``cap``.

    >>> epochs_that_fit(900, 130, [12.0, 11.0, 13.0], 3, 300), epochs_that_fit(900, 895, [12.0], 1, 300)
    (62, 1)
    >>> epochs_that_fit(0, 10, [12.0], 1, 30)
    30
    """
    if not budget or not epoch_seconds:
        return cap
    pace = max(epoch_seconds[-3:])
    return min(cap, done + max(0, int((budget - spent) // pace)))


def progress(spent: float, budget: float, epochs_done: float, epochs: int) -> float:
    """The share of the run's plan done: of its time budget (0: none) or of its epochs, whichever is further.

    >>> progress(450, 900, 3, 1000), progress(10, 0, 15, 30), progress(10, 900, 27, 30)
    (0.5, 0.5, 0.9)
    """
    by_time = spent / budget if budget else 0.0
    return max(by_time, epochs_done / max(epochs, 1))
