"""What a fine-tuning run reports while it runs, and how it ends when stopped.

The training loop (:mod:`maskcli.cnn.training`) makes these and :mod:`maskcli.train` hands them to its caller (and
re-exports them), so the types sit here, below both, and need no torch.

>>> EpochRecord(1, 3, 0.25, {"iou": 0.8}, 2.0, 0.1, True).as_dict()["val_iou"]
0.8
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, Optional

__all__ = ["EpochRecord", "Interrupted", "StepEvent"]


@dataclasses.dataclass(frozen=True)
class StepEvent:
    """One optimiser step of an epoch."""

    epoch: int
    step: int
    steps: int
    loss: float


@dataclasses.dataclass(frozen=True)
class EpochRecord:
    """One epoch: the mean training loss and the validation scores (epoch 0: the starting model, no training)."""

    epoch: int
    epochs: int
    train_loss: Optional[float]
    val: dict[str, float]
    seconds: float
    seconds_per_image: Optional[float]
    best: bool

    def as_dict(self) -> dict[str, Any]:
        """JSON-friendly form (``--json`` prints one per epoch)."""
        record: dict[str, Any] = {"epoch": self.epoch, "epochs": self.epochs,
                                  "train_loss": None if self.train_loss is None else round(self.train_loss, 6)}
        record.update({f"val_{k}": round(v, 6) for k, v in self.val.items()})
        record.update({"seconds": round(self.seconds, 3), "best": self.best,
                       "seconds_per_image": None if self.seconds_per_image is None else
                       round(self.seconds_per_image, 4)})
        return record


class Interrupted(KeyboardInterrupt):
    """Training was interrupted (Ctrl-C); the best model so far and the resume state are on disk."""

    def __init__(self, checkpoint: Path, resume: Optional[Path], epochs_done: int) -> None:
        super().__init__(f"interrupted after {epochs_done} epochs")
        self.checkpoint = checkpoint
        self.resume = resume
        self.epochs_done = epochs_done
