"""``maskcli apply``: apply masks to a batch of images (cut out, replace or blur the background, enhance)."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path, PurePosixPath
from typing import Annotated, Any, Optional

import typer

from maskcli.cli import common as c
from maskcli.cli.segment import _build_refiner, drive
from maskcli.errors import OptionError
from maskcli.io.decode import DEFAULT_MAX_PIXELS
from maskcli.io.sources import Item, Source

MASKS = "Masks (choose one source)"
MODE = "Compositing"


def _mode_names() -> list[str]:
    from maskcli.composite import modes

    return modes.names()


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
    classes_kept: Annotated[Optional[list[str]], typer.Option("--class", help="With a COCO file or label images "
                                                              "as --masks: the classes that make the mask "
                                                              "(repeatable or comma-separated; default all).",
                                                              rich_help_panel=MASKS, show_default=False)] = None,
    mask_name: Annotated[str, typer.Option("--mask-name", help="Mask file name template within --masks.",
                                           rich_help_panel=MASKS)] = "{stem}.png",
    mask: Annotated[Optional[Path], typer.Option("--mask", help="One static mask file for every image.",
                                                 rich_help_panel=MASKS, show_default=False)] = None,
    alpha: Annotated[bool, typer.Option("--alpha", help="Use each image's own alpha channel as its mask.",
                                        rich_help_panel=MASKS)] = False,
    method: c.ApplyMethodName = None,
    preset: c.Preset = None,
    params: c.Params = None,
    polarity: c.Polarity = None,
    channel: c.Channel = None,
    sigma: c.Sigma = None,
    model: c.Model = None,
    weights: c.Weights = None,
    device: c.Device = None,
    batch_size: c.BatchSize = None,
    classes: c.Classes = None,
    refine: c.refine_option(MASKS) = None,  # type: ignore[valid-type]
    matting_solver: c.MattingSolver = None,
    matting_band: c.MattingBand = None,
    matting_max_side: c.MattingMaxSide = None,
    hard: Annotated[Optional[float], typer.Option("--hard", help="Binarise the mask at this level in (0, 1].",
                                                  rich_help_panel=MASKS, show_default=False)] = None,
    feather: Annotated[float, typer.Option("--feather", help="Soften the mask's edge over this many pixels.",
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
    recursive: c.Recursive = False,
    from_file: c.FromFile = None,
    null: c.Null = False,
    skip_existing: c.SkipExisting = False,
    overwrite: c.Overwrite = False,
    max_pixels: c.MaxPixels = DEFAULT_MAX_PIXELS,
    jobs: c.Jobs = None,
    engine: c.Engine = "local",
    ray_address: c.RayAddress = None,
    unordered: c.Unordered = False,
    fail_fast: c.FailFast = False,
    json_records: c.Json = False,
    quiet: c.Quiet = False,
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
    """
    from maskcli.composite import modes
    from maskcli.jobs.apply import ApplyJob, output_format
    from maskcli.io.encode import SUFFIX_OF
    from maskcli.methods import methods
    from maskcli.pipeline import run

    executor = c.executor_for(engine, ray_address, jobs)
    mode_options: dict[str, Any] = c.parse_params(settings, option="set")
    if background is not None:
        mode_options["background"] = background
    mode_object = modes.create(mode, mode_options)
    alpha_out = bool(getattr(mode_object, "output_alpha", False))
    output_format(".png", format, alpha_out)  # a format that cannot hold the result is a usage error, now

    first_class = {"polarity": polarity, "channel": channel, "sigma": sigma, "model": model,
                   "weights": str(weights) if weights else None, "device": device, "batch_size": batch_size,
                   "classes": classes}
    wants_method = method is not None or preset is not None or bool(params) or any(
        v is not None for v in first_class.values())
    chosen = [name for name, given in (("--masks", masks is not None), ("--mask", mask is not None),
                                       ("--alpha", alpha), ("--method", wants_method)) if given]
    if len(chosen) > 1:
        raise OptionError(chosen[1], f"choose one mask source, not {' and '.join(chosen)}")

    method_object = refiner = annotations = None
    if wants_method:
        method_name, method_options, refinement = c.method_plan(method, preset, params, first_class)
        method_object = methods.create(method_name, method_options)
        refiner = _build_refiner(refinement)

    sources, kind = c.gather_sources(inputs, recursive=recursive, from_file=from_file, null=null,
                                     allow_records=not chosen)
    if kind == "records":
        source_kind = "records"
        sources = _records_sources(sys.stdin)
    elif masks is not None:
        from maskcli.formats.sources import open_mask_set

        annotations = open_mask_set(masks, c.split_names(classes_kept))
        if annotations is not None:
            for problem in annotations.problems:
                c.warn(problem, quiet)
            source_kind = "annotations"
        elif not masks.is_dir():
            raise OptionError("--masks", f"{masks} is neither a folder nor a COCO file (.json)")
        else:
            source_kind = "folder"
    elif mask is not None:
        if not mask.is_file():
            raise OptionError("--mask", f"{mask} is not a file")
        source_kind = "file"
    elif alpha:
        source_kind = "alpha"
    elif wants_method:
        source_kind = "method"
    else:
        raise OptionError("--masks", "say where masks come from: --masks DIR, --mask FILE, --alpha, --method NAME, "
                          "or pipe `maskcli segment --json` records")

    edge_settings = c.matting_settings(matting_solver, matting_band, matting_max_side)
    if edge_settings and refine != "matting":
        raise OptionError("--matting-solver", "the matting options work with --refine matting")
    edge = _build_refiner({"refine": refine, **edge_settings}) if refine is not None else None
    if classes_kept and source_kind != "annotations":
        raise OptionError("--class", "picks classes of a COCO file or label images given as --masks")
    job = ApplyJob(mode_object, source_kind, static_mask=mask, method=method_object, refiner=refiner, edge=edge,
                   annotations=annotations if source_kind == "annotations" else None,
                   resize_mask=resize_mask, hard=hard, feather=feather, invert=invert, format=format,
                   quality=quality, max_pixels=max_pixels)

    def suffix_for(source: Source) -> str:
        return SUFFIX_OF[output_format(PurePosixPath(source.relpath.name).suffix, format, alpha_out)]

    items = c.plan_outputs(sources, kind="args" if kind == "records" else kind, output=output, template=name,
                           existing=c.existing_policy(skip_existing, overwrite), suffix=suffix_for,
                           max_pixels=max_pixels)
    if source_kind == "folder":
        items = _pair_masks(items, masks, mask_name)  # type: ignore[arg-type]
    elif source_kind == "records":
        items = _record_masks(items)
    elif source_kind == "annotations":
        items = _pair_set(items, annotations)
    drive(items, job, kind=kind, output=output, jobs=jobs, unordered=unordered, fail_fast=fail_fast,
          json_records=json_records, quiet=quiet, run=run, executor=executor)


def _pair_masks(items: Iterator[Item], folder: Path, template: str) -> Iterator[Item]:
    from maskcli.errors import InputError
    from maskcli.jobs.apply import find_mask

    for item in items:
        if not item.error and item.source.path != "-":
            try:
                item.extra["mask_path"] = str(find_mask(folder, item.source, template))
            except InputError as error:
                item.error = str(error)
        elif item.source.path == "-" and not item.error:
            item.error = "--masks pairs files by name; an image on stdin needs --mask FILE, --alpha or --method"
        yield item


def _pair_set(items: Iterator[Item], annotations: Any) -> Iterator[Item]:
    """An image that a COCO file or label folder has no mask for fails while planning, saying so."""
    from maskcli.errors import InputError

    for item in items:
        if not item.error and not item.skip:
            try:
                annotations.pair(item.source)
            except InputError as error:
                item.error = str(error)
        yield item


def _record_masks(items: Iterator[Item]) -> Iterator[Item]:
    for item in items:
        item.extra["mask_path"] = getattr(item.source, "mask_path", None)
        yield item


def _records_sources(stream: Any) -> Iterator[Source]:
    """Sources from ``maskcli segment --json`` records, each carrying its mask (or why it has none)."""
    for number, line in enumerate(stream, start=1):
        line = line.strip()
        if not line:
            continue
        try:
            record = json.loads(line)
            image = record["input"]
        except (ValueError, KeyError, TypeError):
            yield Source(f"<stdin line {number}>", PurePosixPath(f"line{number}"),
                         error="not a maskcli record (expected a JSON object with input and output)")
            continue
        relpath = PurePosixPath(record.get("relpath") or Path(image).name)
        source = RecordSource(image, relpath)
        if record.get("status") == "failed" or not record.get("output"):
            source.error = f"no mask: segment failed ({record.get('error') or 'no output'})"
        source.mask_path = record.get("output")
        yield source


class RecordSource(Source):
    """A source read from a segment record: the image, and the mask segment wrote for it."""

    mask_path: str | None = None
