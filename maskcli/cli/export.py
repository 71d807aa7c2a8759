"""``maskcli export``: masks to a data-set format (COCO, YOLO segmentation, label images)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from maskcli.cli import common as c
from maskcli.cli.report import Reporter, error_line
from maskcli.errors import OptionError, SetupError
from maskcli.io import DEFAULT_MAX_PIXELS

FORMAT = "Format"


def _format_names() -> list[str]:
    from maskcli.formats import export_formats

    return export_formats.names()


def export_command(
    masks: Annotated[Path, typer.Argument(metavar="MASKS", help="Folder of masks (as `maskcli segment` writes "
                                          "them), or of label images with their labels.json.",
                                          show_default=False)],
    output: Annotated[Path, typer.Option("--output", "-o", help="coco: the JSON file; yolo, labels: a folder.",
                                         rich_help_panel=c.BATCH, show_default=False)],
    to: Annotated[str, typer.Option("--to", help="coco | yolo | labels.", rich_help_panel=FORMAT,
                                    autocompletion=_format_names)] = "coco",
    images: Annotated[Optional[Path], typer.Option("--images", help="The images' folder: each mask is paired "
                                                   "with its image by relative path and stem, recorded under the "
                                                   "image's name, and must have its size.",
                                                   rich_help_panel=c.BATCH, show_default=False)] = None,
    category: Annotated[str, typer.Option("--category", help="Class name of binary masks.",
                                          rich_help_panel=FORMAT)] = "foreground",
    polygons: Annotated[bool, typer.Option("--polygons", help="coco: outlines as polygons instead of RLE.",
                                           rich_help_panel=FORMAT)] = False,
    instances: Annotated[bool, typer.Option("--instances", help="One annotation (labels: one integer) per "
                                            "connected region instead of one per mask or class.",
                                            rich_help_panel=FORMAT)] = False,
    level: Annotated[float, typer.Option("--level", help="Soft masks: foreground at or above this level.",
                                         rich_help_panel=FORMAT)] = 0.5,
    recursive: c.Recursive = False,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Replace existing outputs.",
                                            rich_help_panel=c.BATCH)] = False,
    max_pixels: c.MaxPixels = DEFAULT_MAX_PIXELS,
    jobs: c.Jobs = None,
    quiet: c.Quiet = False,
) -> None:
    """Export masks for data-set tools: a COCO instances file, YOLO segmentation labels, or label images.

    A COCO file is written only when every mask could be read: nothing half-written. Per-image formats write
    each image's file as it is done; the legend (labels.json) or class list (classes.txt) comes last.

    \b
    Examples:
      maskcli segment photos/ -o masks/ --hard 0.5
      maskcli export masks/ --images photos/ -o annotations.json --category horse
      maskcli export masks/ -o annotations.json --polygons --instances
      maskcli export masks/ -o yolo-labels/ --to yolo
      maskcli export masks/ -o labels/ --to labels --instances      # open in napari or Fiji as labels
    """
    from maskcli.formats import export_formats
    from maskcli.formats.labels import LabelFolder, has_legend
    from maskcli.io.sources import Destinations, expand_inputs
    from maskcli.jobs.export import ExportJob, ImageIndex, finish_export
    from maskcli.pipeline import run

    cls = export_formats.get(to)
    if not masks.is_dir():
        raise SetupError(f"{masks}: no such folder")
    labels = LabelFolder.open(masks) if has_legend(masks) else None
    if labels is not None:
        if category != "foreground":
            raise OptionError("--category", f"{masks} holds label images; their classes come from labels.json")
        categories = labels.legend.names()
    else:
        if not category.strip():
            raise OptionError("--category", "give a class name")
        categories = [category]
    if polygons and to != "coco":
        raise OptionError("--polygons", f"only applies to --to coco ({to} writes polygons or labels anyway)")
    per_image = cls.suffix is not None
    if per_image:
        if output.exists() and not output.is_dir():
            raise OptionError("--output", f"{output} exists and is not a folder; --to {to} writes a folder")
    else:
        if output.is_dir():
            raise OptionError("--output", f"{output} is a folder; --to {to} writes one file")
        if output.exists() and not overwrite:
            raise OptionError("--output", f"{output} exists (use --overwrite to replace it)")
    export_format = cls(categories, polygons=polygons, instances=instances)
    job = ExportJob(export_format, category=category, level=level, labels=labels,
                    output=output if per_image else None, max_pixels=max_pixels,
                    images=ImageIndex.of(images) if images is not None else None)

    sources = expand_inputs([str(masks)], recursive=recursive, exclude=[output] if per_image else [])
    if labels is not None and labels.legend.kind == "instances":
        # Only the label images the legend names: segment --objects writes each object's own mask beside them.
        named = set(labels.legend.instances)
        sources = (s for s in sources if s.error or s.relpath.as_posix() in named)
    if per_image:
        planned = Destinations(output, "{stem}" + str(cls.suffix), "overwrite" if overwrite else "error",
                               suffix=cls.suffix).plan(sources)
    else:
        from maskcli.io.sources import Item

        planned = (Item(index, source, error=source.error) for index, source in enumerate(sources))
    items = planned

    reporter = Reporter(quiet=quiet, verb="exported")
    results = []
    try:
        for result in run(items, job, jobs=jobs):
            reporter.result(result)
            results.append(result)
    except KeyboardInterrupt:
        raise typer.Exit(reporter.finish(interrupted=True)) from None
    failed = [r for r in results if r.status == "failed"]
    written = [r for r in results if r.status == "written"]
    if not per_image and failed:
        # One file for the batch: a document missing some images would pass for a complete one.
        error_line(f"{output} not written: {len(failed)} of {len(results)} masks failed")
    elif written:
        finish_export(export_format, output, results)
    raise typer.Exit(reporter.finish())
