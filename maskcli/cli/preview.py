"""``maskcli preview``: overlays of masks on their images, and a contact sheet to look over many at once."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from maskcli.cli import common as c
from maskcli.cli.context import Exit
from maskcli.cli.flags import Wording
from maskcli.cli.prompts import Box, Boxes, ClassList, Label, Point
from maskcli.cli.report import say

SHEET = "Contact sheet"
LOOK = "Overlay"


def _color(text: str) -> tuple[float, float, float]:
    from maskcli.composite.colors import parse_color

    red, green, blue, _ = parse_color(text, option="--color")
    return (red, green, blue)


def preview_command(
    images: Annotated[Path, typer.Argument(help="Folder (or file) of images.", show_default=False)],
    masks: Annotated[Path, typer.Argument(help="Their masks, paired by relative path and stem: a folder (or "
                                          "file) of masks, a COCO file, or label images with their labels.json.",
                                          show_default=False)],
    output: Annotated[Optional[Path], typer.Option("--output", "-o", help="Write one overlay PNG per image here "
                                                   "(sub-folders mirrored).", show_default=False)] = None,
    sheet: Annotated[Optional[Path], typer.Option("--sheet", help="Write a contact sheet: one PNG grid of labelled "
                                                  "thumbnails.", rich_help_panel=SHEET, show_default=False)] = None,
    columns: Annotated[int, typer.Option("--columns", help="Thumbnails per row.", rich_help_panel=SHEET, min=1)
                       ] = 6,
    cell: Annotated[int, typer.Option("--cell", help="Thumbnail square side, in pixels.", rich_help_panel=SHEET,
                                      min=16)] = 160,
    gt: Annotated[Optional[Path], typer.Option("--gt", help="Ground-truth masks: order the sheet worst IoU first "
                                               "and show each IoU in its label (a folder, a COCO file or "
                                               "label images).", rich_help_panel=SHEET, show_default=False)] = None,
    # The ignore below: an Annotated alias built by a call: Typer reads it, mypy cannot.
    classes: c.class_option() = None,  # type: ignore[valid-type]
    color: Annotated[str, typer.Option("--color", help="Tint and outline colour.", rich_help_panel=LOOK)
                     ] = "#ff4040",
    opacity: Annotated[float, typer.Option("--opacity", help="Tint strength in [0, 1].", rich_help_panel=LOOK,
                                           min=0.0, max=1.0)] = 0.4,
    outline: Annotated[int, typer.Option("--outline", help="Outline width in pixels (0: none).",
                                         rich_help_panel=LOOK, min=0)] = 2,
    stretch: Annotated[Optional[bool], typer.Option("--stretch/--no-stretch", help="Stretch dim images to their "
                                                    "0.5-99.5 percentiles for display. Default: 16-bit images "
                                                    "only.", rich_help_panel=LOOK, show_default=False)] = None,
    boxes: Boxes = None,
    box: Box = None,
    point: Point = None,
    label: Label = "object",
    class_list: ClassList = None,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Replace existing overlays and sheet.")] = False,
    jobs: c.Jobs = None,
    fail_fast: c.FailFast = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No summary on stderr; errors only.")] = False,
) -> None:
    """Overlays (tinted, outlined masks over their images) and a contact sheet to look over a folder at once.

    \b
    Examples:
      maskcli preview photos/ masks/ -o overlays/
      maskcli preview photos/ masks/ --sheet sheet.png --columns 8 --cell 200
      maskcli preview cells/ masks/ --sheet worst.png --gt truth/    # worst IoU first
      maskcli preview photos/ labels/ -o overlays/ --boxes detections.json    # what each mask was asked for
    """
    from maskcli.cli.prompts import open_source
    from maskcli.preview import write_previews

    prompts = open_source(boxes, box, point, label, class_list)

    report = write_previews(images, masks, output=output, sheet=sheet, truths=gt, classes=c.split_names(classes),
                            columns=columns, cell=cell,
                            overwrite=overwrite, stretch=stretch, color=_color(color), opacity=opacity,
                            outline=outline, jobs=jobs, fail_fast=fail_fast, prompts=prompts)
    words = Wording.current()
    for path, reason in report.pairing.problems:
        say(f"maskcli: warning: {path}: {words.text(reason)}")
    for path in report.pairing.unpaired_sources:
        say(f"maskcli: warning: {path}: no mask of the same name; not shown")
    for path in report.pairing.unpaired_truths:
        say(f"maskcli: warning: {path}: mask without an image; not shown")
    for key in report.unpaired_masks_of_truth:
        say(f"maskcli: warning: {key}: no ground truth of the same name; placed last, without an IoU")
    for result in report.failed:
        say(f"maskcli: error: {result.image}: {words.text(str(result.error))}")
    if not quiet:
        done = len(report.results) - len(report.failed)
        where = f"; sheet {report.sheet}" if report.sheet else ""
        say(f"maskcli: {done} previewed, {len(report.failed)} failed{where}")
    raise typer.Exit(Exit.of_batch(len(report.failed)))
