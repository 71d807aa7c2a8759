"""``maskcli export``: masks to a data-set format (COCO, YOLO segmentation, label images)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from maskcli.cli import common as c
from maskcli.cli.report import BatchReport
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
    from maskcli.batch import ExportSettings, export_batch

    settings = ExportSettings(masks, output, to, images, category, polygons, instances, level, recursive, overwrite,
                              max_pixels, jobs)
    report = BatchReport(quiet=quiet, verb="exported")
    raise typer.Exit(report.finish(export_batch(settings, report)))
