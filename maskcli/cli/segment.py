"""``maskcli segment``: make masks for a batch of images."""

from __future__ import annotations

from typing import Annotated, Optional

import typer

from maskcli.cli import common as c
from maskcli.cli.prompts import PromptOptions
from maskcli.cli.report import BatchReport

REFINE = "Refinement (applied in this order)"


@c.grouped
def segment_command(
    inputs: c.Inputs = None,
    output: c.Output = None,
    method: c.MethodName = None,
    *,
    method_settings: c.MethodOptions,
    open_radius: Annotated[Optional[int], typer.Option("--open", help="Opening radius (removes thin specks; at "
                                                       "most the image's diagonal: larger is clamped).",
                                                       rich_help_panel=REFINE, min=0, show_default=False)] = None,
    close_radius: Annotated[Optional[int], typer.Option("--close", help="Closing radius (bridges small gaps; at "
                                                        "most the image's diagonal: larger is clamped).",
                                                        rich_help_panel=REFINE, min=0, show_default=False)] = None,
    erode: Annotated[Optional[int], typer.Option("--erode", help="Erosion radius (at most the image's "
                                                 "diagonal: larger is clamped).", rich_help_panel=REFINE, min=0,
                                                 show_default=False)] = None,
    dilate: Annotated[Optional[int], typer.Option("--dilate", help="Dilation radius (at most the image's "
                                                  "diagonal: larger is clamped).", rich_help_panel=REFINE, min=0,
                                                  show_default=False)] = None,
    fill_holes: Annotated[Optional[bool], typer.Option("--fill-holes/--no-fill-holes", help="Fill holes inside "
                                                       "regions.", rich_help_panel=REFINE, show_default=False)] = None,
    max_hole: Annotated[Optional[int], typer.Option("--max-hole", help="With --fill-holes: fill only holes up to "
                                                    "this many pixels.", rich_help_panel=REFINE, min=1,
                                                    show_default=False)] = None,
    min_size: Annotated[Optional[int], typer.Option("--min-size", help="Remove regions smaller than this many "
                                                    "pixels.", rich_help_panel=REFINE, min=0,
                                                    show_default=False)] = None,
    keep_largest: Annotated[Optional[int], typer.Option("--keep-largest", help="Keep only the K largest "
                                                        "regions.", rich_help_panel=REFINE, min=1,
                                                        show_default=False)] = None,
    # The ignore below: an Annotated alias built by a call: Typer reads it, mypy cannot.
    refine: c.refine_option(REFINE) = None,  # type: ignore[valid-type]
    matting: c.MattingOptions,
    invert: Annotated[Optional[bool], typer.Option("--invert/--no-invert", help="Swap foreground and background.",
                                                   rich_help_panel=REFINE, show_default=False)] = None,
    feather: Annotated[Optional[float], typer.Option("--feather", help="Soften edges over this many pixels "
                                                     "(gives a soft mask; any width is taken, in the time and "
                                                     "memory of the image).", rich_help_panel=REFINE, min=0,
                                                     show_default=False)] = None,
    hard: Annotated[Optional[float], typer.Option("--hard", help="Binarise at this level in (0, 1].",
                                                  rich_help_panel=REFINE, show_default=False)] = None,
    soft: Annotated[Optional[bool], typer.Option("--soft/--no-soft", help="Keep soft values (CNN probabilities); "
                                                 "default for the CNN.", rich_help_panel=REFINE,
                                                 show_default=False)] = None,
    labels: Annotated[bool, typer.Option("--labels", help="Semantic models: write label images (the index of "
                                         "the winning --classes class per pixel, 0 elsewhere) and a labels.json "
                                         "legend, instead of masks.", rich_help_panel=c.CNN)] = False,
    mask_bits: Annotated[int, typer.Option("--mask-bits", help="Bits per pixel of soft masks: 8 or 16.",
                                           rich_help_panel=c.BATCH)] = 8,
    name: Annotated[str, typer.Option("--name", help="Output name template: {stem} {name} {ext} {relpath} "
                                      "{index} {frame} (a video frame's number).",
                                      rich_help_panel=c.BATCH)] = "{stem}.png",
    prompting: PromptOptions,
    batch: c.BatchOptions,
) -> None:
    """Make masks: one PNG per image, hard (0/255) or soft (grey levels); with prompts, one mask per object.

    \b
    Examples:
      maskcli segment photos/ -o masks/                     # Otsu threshold
      maskcli segment scans/ -o masks/ --preset document
      maskcli segment shop/ -o masks/ -m cnn --refine guided --soft
      maskcli segment pets/ -o alphas/ -m cnn --refine matting
      find . -name '*.tif' | maskcli segment -o masks/ -m li --fill-holes --min-size 50
      maskcli segment - < photo.jpg > mask.png
      maskcli segment photos/ -o labels/ --model deeplabv3-resnet50 --classes person,dog --labels
      maskcli segment photos/ -o labels/ -m cnn-box --boxes detections.json --objects
      maskcli segment clip.mp4 -o masks/                     # video: masks/clip/000001.png ...
      maskcli segment clip.mp4 -o clip_mask.mkv --temporal 0.75
      maskcli segment inbox/ -o masks/ --watch --json
    """
    from maskcli.batch import SegmentSettings, segment_batch

    refinement = {
        "open": open_radius, "close": close_radius, "erode": erode, "dilate": dilate, "fill_holes": fill_holes,
        "max_hole": max_hole, "min_size": min_size, "keep_largest": keep_largest, "refine": refine,
        "invert": invert, "feather": feather, "hard": hard, "soft": soft,
    }
    batch_settings = batch.settings(inputs, output, name)
    prompts = prompting.source()
    settings = SegmentSettings(
        batch_settings, method, method_settings.preset, method_settings.options(),
        {**{k: v for k, v in refinement.items() if v is not None}, **matting.settings()}, mask_bits, labels, prompts,
        prompting.outputs(labels) if prompts is not None else ("labels",))
    report = BatchReport(json_records=batch.json_records, quiet=batch.quiet)
    raise typer.Exit(report.finish(segment_batch(settings, report)))
