"""Exporting a folder of masks to a data-set format (COCO, YOLO segmentation, label images): what
``maskcli export`` runs.

A COCO file is written only when every mask could be read: nothing half-written. Per-image formats write each
image's file as it is done; the legend (labels.json) or class list (classes.txt) comes last.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from maskcli.batch.run import BatchOutcome, Listener, Silent
from maskcli.errors import OptionError, SetupError
from maskcli.io import DEFAULT_MAX_PIXELS


@dataclasses.dataclass
class ExportSettings:
    """What ``export`` reads and writes.

    Parameters
    ----------
    masks : Path
        A folder of masks (as ``maskcli segment`` writes them), or of label images with their ``labels.json``.
    output : Path
        coco: the JSON file; yolo, labels: a folder.
    to : str
        The format: ``coco``, ``yolo`` or ``labels``.
    images : Path, optional
        The images' folder: each mask is paired with its image by relative path and stem, recorded under the
        image's name, and must have its size.
    category : str
        The class name of binary masks.
    polygons, instances : bool
        coco: outlines as polygons instead of RLE; one annotation (labels: one integer) per connected region.
    level : float
        Soft masks: foreground at or above this level.
    recursive, overwrite, max_pixels, jobs
        Walk sub-folders; replace existing outputs; the pixel limit; cores to use.
    """

    masks: Path
    output: Path
    to: str = "coco"
    images: Path | None = None
    category: str = "foreground"
    polygons: bool = False
    instances: bool = False
    level: float = 0.5
    recursive: bool = False
    overwrite: bool = False
    max_pixels: int = DEFAULT_MAX_PIXELS
    jobs: int | None = None


def export_batch(settings: ExportSettings, listener: Listener | None = None) -> BatchOutcome:
    """Export the masks, telling ``listener`` each result; the batch-wide file is written once all are done.

    Raises
    ------
    OptionError, SetupError
        Settings that cannot run; raised before anything is written.
    """
    from maskcli.formats import export_formats
    from maskcli.formats.labels import LabelFolder, has_legend
    from maskcli.io.sources import Destinations, Item, expand_inputs
    from maskcli.jobs.export import ExportJob, ImageIndex, finish_export
    from maskcli.pipeline import run

    listener = listener or Silent()
    masks, output, to, category = Path(settings.masks), Path(settings.output), settings.to, settings.category
    cls = export_formats.get(to)
    if not masks.is_dir():
        raise SetupError(f"{masks}: no such folder")
    labels = LabelFolder.open(masks) if has_legend(masks) else None
    if labels is not None:
        if category != "foreground":
            raise OptionError("category", f"{masks} holds label images; their classes come from labels.json")
        categories = labels.legend.names()
    else:
        if not category.strip():
            raise OptionError("category", "give a class name")
        categories = [category]
    if settings.polygons and to != "coco":
        raise OptionError("polygons", f"only applies to `to='coco'` ({to} writes polygons or labels anyway)")
    per_image = cls.suffix is not None
    if per_image:
        if output.exists() and not output.is_dir():
            raise OptionError("output", f"{output} exists and is not a folder; `to={to}` writes a folder")
    else:
        if output.is_dir():
            raise OptionError("output", f"{output} is a folder; `to={to}` writes one file")
        if output.exists() and not settings.overwrite:
            raise OptionError("output", f"{output} exists (use `overwrite` to replace it)")
    export_format = cls(categories, polygons=settings.polygons, instances=settings.instances)
    job = ExportJob(export_format, category=category, level=settings.level, labels=labels,
                    output=output if per_image else None, max_pixels=settings.max_pixels,
                    images=ImageIndex.of(settings.images) if settings.images is not None else None)

    sources = expand_inputs([str(masks)], recursive=settings.recursive, exclude=[output] if per_image else [])
    if labels is not None and labels.legend.kind == "instances":
        # Only the label images the legend names: segment --objects writes each object's own mask beside them.
        named = set(labels.legend.instances)
        sources = (s for s in sources if s.error or s.relpath.as_posix() in named)
    if per_image:
        items = Destinations(output, "{stem}" + str(cls.suffix), "overwrite" if settings.overwrite else "error",
                             suffix=cls.suffix).plan(sources)
    else:
        items = (Item(index, source, error=source.error) for index, source in enumerate(sources))

    outcome = BatchOutcome()
    listener.started(image_on_stdout=False)
    try:
        for result in run(items, job, jobs=settings.jobs):
            listener.result(result)
            outcome.results.append(result)
    except KeyboardInterrupt:
        outcome.interrupted = True
        return outcome
    written = [r for r in outcome.results if r.status == "written"]
    if not per_image and outcome.failed:
        # One file for the batch: a document missing some images would pass for a complete one.
        outcome.problem = f"{output} not written: {outcome.failed} of {len(outcome.results)} masks failed"
    elif written:
        finish_export(export_format, output, outcome.results)
    return outcome


__all__ = ["ExportSettings", "export_batch"]
