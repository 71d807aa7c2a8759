"""``maskcli apply``: apply masks to a batch of images (cut out, replace or blur the background, enhance)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from maskcli.cli import common as c
from maskcli.cli.context import current
from maskcli.cli.segment import drive, watcher
from maskcli.errors import OptionError

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
    classes_kept: MaskClasses = None,
    mask_name: Annotated[str, typer.Option("--mask-name", help="Mask file name template within --masks.",
                                           rich_help_panel=MASKS)] = "{stem}.png",
    mask: Annotated[Optional[Path], typer.Option("--mask", help="One static mask file for every image.",
                                                 rich_help_panel=MASKS, show_default=False)] = None,
    alpha: Annotated[bool, typer.Option("--alpha", help="Use each image's own alpha channel as its mask.",
                                        rich_help_panel=MASKS)] = False,
    method: c.ApplyMethodName = None,
    *,
    method_settings: c.MethodOptions,
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
    from maskcli.composite import modes
    from maskcli.io.sinks import OutputPlan, StreamSink
    from maskcli.jobs.apply import ApplyJob
    from maskcli.masksources import AlphaMasks, MethodMasks, SegmentRecords, StaticMask, open_masks, paired
    from maskcli.methods import methods
    from maskcli.refine import refinement as build_refinement

    executor = batch.executor()
    mode_options: dict[str, Any] = c.parse_params(settings, option="set")
    if background is not None:
        mode_options["background"] = background
    mode_object = modes.create(mode, mode_options)
    # A format that cannot hold the result is a usage error, now.
    plan = OutputPlan.for_images(format, alpha=bool(getattr(mode_object, "output_alpha", False)))

    wants_method = method is not None or method_settings.given
    chosen = [name for name, given in (("--masks", masks is not None), ("--mask", mask is not None),
                                       ("--alpha", alpha), ("--method", wants_method)) if given]
    if len(chosen) > 1:
        raise OptionError(chosen[1], f"choose one mask source, not {' and '.join(chosen)}")

    method_masks = None
    refinement: dict[str, Any] = {}
    if wants_method:
        method_name, method_options, refinement = method_settings.plan(method)
        method_masks = MethodMasks(methods.create(method_name, method_options))
    # The mask's own options join the preset's refinement: one chain, in its one order, after fitting the mask.
    refinement.update({k: v for k, v in (("hard", hard), ("feather", feather or None), ("invert", invert or None))
                       if v is not None})

    sources, kind = c.gather_sources(inputs, batch, allow_records=not chosen,
                                     exclude=[output, masks if masks is not None and masks.is_dir() else None])
    mask_source: Any
    if kind == "records":
        mask_source = SegmentRecords(current().stdin)
        sources = mask_source.sources()
    elif masks is not None:
        mask_source = open_masks(masks, mask_name, c.split_names(classes_kept))
        for problem in getattr(mask_source, "problems", ()):
            c.warn(problem, batch.quiet)
    elif mask is not None:
        mask_source = StaticMask(mask)
    elif alpha:
        mask_source = AlphaMasks()
    elif method_masks is not None:
        mask_source = method_masks
    else:
        raise OptionError("--masks", "say where masks come from: --masks DIR, --mask FILE, --alpha, --method NAME, "
                          "or pipe `maskcli segment --json` records")

    edge_settings = matting.settings()
    if edge_settings and refine != "matting":
        raise OptionError("--matting-solver", "the matting options work with --refine matting")
    if refine is not None:
        refinement.update({"refine": refine, **edge_settings})
    if classes_kept and masks is None:
        raise OptionError("--class", "picks classes of a COCO file or label images given as --masks")
    sink = c.choose_sink(kind=kind, output=output, template=name, batch=batch, plan=plan)
    job = ApplyJob(mode_object, mask_source, plan, sink, refiner=build_refinement(refinement),
                   resize_mask=resize_mask, quality=quality, max_pixels=batch.max_pixels)
    drive(paired(sink.items(sources), mask_source), job, batch, quiet=batch.quiet or isinstance(sink, StreamSink),
          executor=executor, watch=watcher(inputs, output, batch),
          plan=lambda new: paired(sink.items(new), mask_source))
