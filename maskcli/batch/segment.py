"""Making masks for a batch of images, from inputs to written masks: what ``maskcli segment`` runs.

>>> import tempfile
>>> from pathlib import Path
>>> from maskcli.batch import BatchSettings, SegmentSettings, segment_batch
>>> out = tempfile.TemporaryDirectory()
>>> outcome = segment_batch(SegmentSettings(BatchSettings(["samples/coins.png"], Path(out.name), jobs=1)))
>>> [(r.status, Path(r.output).name, r.facts["method"]) for r in outcome.results]
[('written', 'coins.png', 'otsu')]
>>> out.cleanup()
"""

from __future__ import annotations

import dataclasses
from typing import Any

from maskcli.batch.run import BatchOutcome, BatchSettings, Listener, Silent, run_batch
from maskcli.errors import OptionError


@dataclasses.dataclass
class SegmentSettings:
    """What ``segment`` makes, beside the batch's settings.

    Parameters
    ----------
    batch : BatchSettings
        Inputs, outputs and how the batch runs.
    method : str, optional
        The mask method (default: the preset's, else ``otsu``).
    preset : str, optional
        Named settings for a kind of data (:mod:`maskcli.presets`); ``method_options`` and ``refinement``
        override it.
    method_options : dict
        The method's options.
    refinement : dict
        Settings of the refinement chain (:mod:`maskcli.refine`).
    mask_bits : {8, 16}
        Bits per pixel of soft masks.
    labels : bool
        Write label images and their legend (a semantic CNN) instead of masks.
    prompts : optional
        A prompt source (:mod:`maskcli.promptsources`): one mask per object.
    prompt_outputs : tuple of str
        With prompts: "labels" (a label image per input) or "union" (one mask), and "objects" (a mask per object).
    """

    batch: BatchSettings
    method: str | None = None
    preset: str | None = None
    method_options: dict[str, Any] = dataclasses.field(default_factory=dict)
    refinement: dict[str, Any] = dataclasses.field(default_factory=dict)
    mask_bits: int = 8
    labels: bool = False
    prompts: Any = None
    prompt_outputs: tuple[str, ...] = ("labels",)


def make_method(method: str | None, preset: str | None, options: dict[str, Any],
                refinement: dict[str, Any]) -> tuple[Any, dict[str, Any]]:
    """The method object and the refinement settings: the preset's, then ``options`` and ``refinement``."""
    from maskcli.methods import methods
    from maskcli.presets import resolve

    choice = resolve(method, preset, dict(options))
    return methods.create(choice.method, choice.options), {**choice.refinement, **refinement}


def segment_batch(settings: SegmentSettings, listener: Listener | None = None) -> BatchOutcome:
    """Make and write the masks of a batch of images, telling ``listener`` each warning and result.

    Raises
    ------
    OptionError, SetupError
        Settings that cannot run, or no inputs; raised before anything is written.
    """
    from maskcli.io.sinks import OutputPlan, StreamSink
    from maskcli.jobs.segment import SegmentJob
    from maskcli.refine import refinement as build_refinement

    listener = listener or Silent()
    batch = settings.batch
    method, refinement = make_method(settings.method, settings.preset, settings.method_options, settings.refinement)
    refiner = build_refinement(refinement)
    if settings.prompts is not None:
        return _segment_prompted(settings, method, refiner, listener)
    job = SegmentJob(method, refiner, max_pixels=batch.max_pixels, mask_bits=settings.mask_bits,
                     labels=settings.labels)
    sources, kind = batch.planned_inputs.gather(exclude=[batch.output], warn=listener.warning)
    job.sink = batch.planned_outputs.sink(kind, OutputPlan.for_masks(), strict_suffix=True)
    if settings.labels:
        from maskcli.formats.labels import write_legend_for

        if kind == "image" or batch.output is None:
            raise OptionError("labels", "label images come with a legend: give an output folder with -o")
        write_legend_for(batch.output, job.class_names, overwrite=batch.existing == "overwrite")
    return run_batch(job.sink.items(sources), job, batch, listener, image_on_stdout=isinstance(job.sink, StreamSink),
                     watch=batch.watcher(), plan=job.sink.items)


def _segment_prompted(settings: SegmentSettings, method: Any, refiner: Any, listener: Listener) -> BatchOutcome:
    """segment with prompts: one mask per object, then the label images' legend."""
    from maskcli.io.sinks import FolderSink, OutputPlan
    from maskcli.jobs.prompted import PromptedSegmentJob, legend_of_results

    batch, prompts, outputs = settings.batch, settings.prompts, settings.prompt_outputs
    job = PromptedSegmentJob(method, prompts, refiner, outputs, max_pixels=batch.max_pixels, existing=batch.existing)
    sources, kind = batch.planned_inputs.gather(warn=listener.warning)
    job.sink = batch.planned_outputs.sink(kind, OutputPlan.for_masks())
    if not isinstance(job.sink, FolderSink) and ("labels" in outputs or "objects" in outputs):
        raise OptionError("output", "label images and per-object masks go to a folder: give -o DIR (or `union` "
                                    "for one mask)")
    for problem in getattr(prompts, "problems", []):
        listener.warning(problem)

    def write_legend(results: list[Any]) -> None:
        output = batch.output
        if "labels" not in outputs or output is None:
            return
        from maskcli.formats.labels import has_legend, read_legend
        from maskcli.formats.labels import write_legend as write

        previous = read_legend(output) if has_legend(output) else None
        write(output, legend_of_results(results, output, getattr(prompts, "categories", ()), previous))

    # The summary stays on even for a union mask on stdout: stderr carries it.
    return run_batch(job.sink.items(sources), job, batch, listener, finish=write_legend)


__all__ = ["SegmentSettings", "make_method", "segment_batch"]
