"""Whole batches, from inputs to written files: one call per command of the command line.

Each call takes a settings object, tells an optional :class:`Listener` each warning and result as it comes (the
library itself never prints) and returns a :class:`BatchOutcome`: :func:`segment_batch` makes masks,
:func:`apply_batch` applies them, :func:`export_batch` exports them to a data-set format.
"""

from __future__ import annotations

from maskcli.batch.apply import ApplySettings, apply_batch
from maskcli.batch.export import ExportSettings, export_batch
from maskcli.batch.run import BatchOutcome, BatchSettings, Listener, Silent
from maskcli.batch.segment import SegmentSettings, segment_batch

__all__ = ["ApplySettings", "BatchOutcome", "BatchSettings", "ExportSettings", "Listener", "SegmentSettings",
           "Silent", "apply_batch", "export_batch", "segment_batch"]
