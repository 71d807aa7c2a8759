"""``maskcli apply``: apply masks to a batch of images (cut out, replace or blur the background, enhance)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from maskcli.cli import common as c
from maskcli.cli.report import BatchReport

MASKS = "Masks (choose one source)"
MODE = "Compositing"
MaskClasses = c.class_option(MASKS, " as --masks")


def _mode_names() -> list[str]:
    from maskcli.composite import modes

    return modes.names()


@c.grouped
def apply_command(
    inputs: c.Inputs = None,
    output: c.Output = None,
    mode: Annotated[str, typer.Option("--mode", help="What to do with the mask; `maskcli modes` lists them.",
                                      rich_help_panel=MODE, autocompletion=_mode_names)] = "cutout",
    settings: Annotated[Optional[list[str]], typer.Option("--set", "-s", help="A mode option as KEY=VALUE "
                                                          "(repeatable); see `maskcli modes NAME`.",
                                                          rich_help_panel=MODE, show_default=False)] = None,
    background: Annotated[Optional[str], typer.Option("--background", "-b", help="Background colour (white, "
                                                      "#00ff00, 0,255,0) or image, for modes that take one.",
                                                      rich_help_panel=MODE, show_default=False)] = None,
    masks: Annotated[Optional[Path], typer.Option("--masks", "-M", help="Folder of per-image masks, matched by "
                                                  "relative path and stem; or a COCO file (.json) or a folder of "
                                                  "label images (with labels.json), matched by file name.",
                                                  rich_help_panel=MASKS, show_default=False)] = None,
    classes_kept: MaskClasses = None,  # type: ignore[valid-type]  # an Annotated alias built by a call: Typer reads it, mypy cannot
    mask_name: Annotated[str, typer.Option("--mask-name", help="Mask file name template within --masks.",
                                           rich_help_panel=MASKS)] = "{stem}.png",
    mask: Annotated[Optional[Path], typer.Option("--mask", help="One static mask file for every image.",
                                                 rich_help_panel=MASKS, show_default=False)] = None,
    alpha: Annotated[bool, typer.Option("--alpha", help="Use each image's own alpha channel as its mask.",
                                        rich_help_panel=MASKS)] = False,
    method: c.ApplyMethodName = None,
    *,
    method_settings: c.MethodOptions,
    # The ignore below: an Annotated alias built by a call: Typer reads it, mypy cannot.
    refine: c.refine_option(MASKS) = None,  # type: ignore[valid-type]
    matting: c.MattingOptions,
    hard: Annotated[Optional[float], typer.Option("--hard", help="Binarise the mask at this level in (0, 1].",
                                                  rich_help_panel=MASKS, show_default=False)] = None,
    feather: Annotated[float, typer.Option("--feather", help="Soften the mask's edge over this many pixels (any "
                                           "width is taken, "
                                           "in the time and memory of the image).",
                                           rich_help_panel=MASKS, min=0)] = 0.0,
    invert: Annotated[bool, typer.Option("--invert", help="Swap foreground and background.",
                                         rich_help_panel=MASKS)] = False,
    resize_mask: Annotated[bool, typer.Option("--resize-mask", help="Scale a mask whose size differs from its "
                                              "image (default: that item fails, naming both sizes).",
                                              rich_help_panel=MASKS)] = False,
    format: Annotated[Optional[str], typer.Option("--format", "-f", help="png | jpg | webp | tiff. Default: the "
                                                  "input's format where it can hold the result (PNG for "
                                                  "transparency).", rich_help_panel=c.BATCH,
                                                  show_default=False)] = None,
    quality: Annotated[int, typer.Option("--quality", help="JPEG/WebP quality.", rich_help_panel=c.BATCH,
                                         min=1, max=100)] = 92,
    name: Annotated[str, typer.Option("--name", help="Output name template: {stem} {name} {ext} {relpath} "
                                      "{index}; the suffix follows the output format.",
                                      rich_help_panel=c.BATCH)] = "{stem}.png",
    batch: c.BatchOptions,
) -> None:
    """Apply masks to images: isolate the foreground or enhance it.

    \b
    Examples:
      maskcli apply photos/ --masks masks/ -o cutouts/                   # transparent PNG cut-outs
      maskcli apply photos/ --masks masks/ -o out/ --mode color -b white -f jpg
      maskcli apply photos/ -m cnn --mode blur -s strength=25 -o portraits/
      maskcli apply cells/ --masks masks/ --mode enhance -s contrast=1.5 -o bright/
      maskcli segment photos/ -o masks/ --json | maskcli apply --mode cutout -o cutouts/
      maskcli apply photos/ --masks annotations.json --class horse -o cutouts/
      maskcli apply clip.mp4 -m cnn --mode blur -o out.mp4   # video: timing, rotation, audio kept
      maskcli apply inbox/ -m cnn -o cutouts/ --watch        # then each new file as it lands

    Videos take every mode (a crop whose box changes size fails: a video keeps one size), with a
    method, one --mask or --alpha.
    """
    from maskcli.batch import ApplySettings, apply_batch

    batch_settings = batch.settings(inputs, output, name)
    mode_options: dict[str, Any] = c.parse_params(settings, option="set")
    if background is not None:
        mode_options["background"] = background
    # The mask's own options join the preset's refinement: one chain, in its one order, after fitting the mask.
    refinement = {k: v for k, v in (("hard", hard), ("feather", feather or None), ("invert", invert or None),
                                    ("refine", refine)) if v is not None}
    apply_settings = ApplySettings(
        batch_settings, mode, mode_options, format, quality, masks=masks, mask_name=mask_name,
        classes=c.split_names(classes_kept), mask=mask, alpha=alpha, method=method, preset=method_settings.preset,
        method_options=method_settings.options(), refinement={**refinement, **matting.settings()},
        resize_mask=resize_mask)
    report = BatchReport(json_records=batch.json_records, quiet=batch.quiet)
    raise typer.Exit(report.finish(apply_batch(apply_settings, report)))
