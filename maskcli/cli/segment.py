"""``maskcli segment``: make masks for a batch of images."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from maskcli.cli import common as c
from maskcli.cli.context import Exit
from maskcli.cli.prompts import PromptOptions
from maskcli.cli.report import Reporter
from maskcli.errors import MaskcliError, OptionError, OutputUnavailable

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
    from maskcli.io.sinks import OutputPlan, StreamSink
    from maskcli.jobs.segment import SegmentJob
    from maskcli.refine import refinement as build_refinement

    executor = batch.executor()
    method_name, method_options, refinement = method_settings.plan(method)
    refine_given = {
        "open": open_radius, "close": close_radius, "erode": erode, "dilate": dilate, "fill_holes": fill_holes,
        "max_hole": max_hole, "min_size": min_size, "keep_largest": keep_largest, "refine": refine,
        "invert": invert, "feather": feather, "hard": hard, "soft": soft,
    }
    refinement.update({k: v for k, v in refine_given.items() if v is not None})
    refinement.update(matting.settings())
    from maskcli.methods import methods

    method_object = methods.create(method_name, method_options)
    refiner = build_refinement(refinement)
    prompts = prompting.source()
    if prompts is not None:
        from maskcli.cli.prompts import segment_prompted

        segment_prompted(method_object, refiner, prompts, prompting.outputs(labels), inputs=inputs, output=output,
                         name=name, batch=batch, executor=executor)
        return
    job = SegmentJob(method_object, refiner, max_pixels=batch.max_pixels, mask_bits=mask_bits, labels=labels)
    if mask_bits not in (8, 16):
        raise OptionError("--mask-bits", f"must be 8 or 16, not {mask_bits}")

    sources, kind = c.gather_sources(inputs, batch, exclude=[output])
    job.sink = c.choose_sink(kind=kind, output=output, template=name, batch=batch, plan=OutputPlan.for_masks(),
                             strict_suffix=True)
    if labels:
        _write_legend(output, job.class_names, kind=kind, overwrite=batch.overwrite)
    drive(job.sink.items(sources), job, batch, quiet=batch.quiet or isinstance(job.sink, StreamSink),
          executor=executor, watch=watcher(inputs, output, batch), plan=job.sink.items)


def watcher(inputs: list[str] | None, output: Path | None, batch: c.BatchOptions) -> Any:
    """The watching of the input folders that ``--watch`` asks for (None without it)."""
    if not batch.watch:
        return None
    from maskcli.io.watch import FolderWatch

    folders = [path for path in inputs or [] if Path(path).is_dir()]
    if not folders:
        raise OptionError("--watch", "give the folders to watch as inputs")
    return FolderWatch(folders, recursive=batch.recursive, ignore=[output] if output is not None else [])


def drive(items: Any, job: Any, batch: c.BatchOptions, *, quiet: bool, executor: Any = None, watch: Any = None,
          plan: Any = None, finish: Any = None) -> None:
    """Run a job over planned items, report, and exit with the batch's status; shared by segment and apply.

    ``executor``: another engine (the Ray engine), started before the first item and stopped however the run ends.
    ``watch``: a started folder watch goes on with each new file (``plan`` makes their items) until Ctrl-C.
    ``finish``: called with every result once the run ends (interrupted too), before the exit.
    """
    from contextlib import ExitStack

    from maskcli.video.runner import run_media
    from maskcli.watching import run_watched

    if executor is not None:
        executor.start()  # before the clock and the progress bar: a cluster's start-up is not the batch's time
    try:
        stack = ExitStack()
        reporter = Reporter(json_records=batch.json_records, quiet=quiet)
        options = {"temporal": batch.temporal, "jobs": batch.jobs, "executor": executor,
                   "ordered": not batch.unordered, "fail_fast": batch.fail_fast, "reads": c.files_read(batch)}
        if watch is not None:
            stack.enter_context(watch)  # before the first pass: a file landing meanwhile is not missed
            results = run_watched(items, job, watch, plan, **options)
        else:
            results = run_media(items, job, **options)
        done: list[Any] = []
        try:
            for result in results:
                reporter.result(result)
                done.append(result)
        except KeyboardInterrupt as stop:
            finished = getattr(stop, "finished", None)
            if finished is None:  # it came while reporting: the runner stops its workers and says what finished
                try:
                    results.throw(stop)
                except KeyboardInterrupt as inner:
                    finished = getattr(inner, "finished", [])
            for result in finished:  # every file left on disk is reported
                reporter.result(result)
            if finish is not None:
                finish([*done, *(finished or [])])
            raise typer.Exit(reporter.finish(interrupted=True)) from None
        except OutputUnavailable as stop:  # the run stopped (an output folder that takes no file): what it wrote, why
            finished = getattr(stop, "finished", [])
            for result in finished:
                reporter.result(result)
            if finish is not None:
                finish([*done, *finished])
            from maskcli.cli.flags import Wording
            from maskcli.cli.report import error_line

            error_line(Wording.current().message(stop))
            reporter.finish(stopped=True)
            raise typer.Exit(Exit.SETUP) from None
        finally:
            stack.close()
        if finish is not None:
            finish(done)
        raise typer.Exit(reporter.finish())
    finally:
        if executor is not None:
            executor.close()


def _write_legend(output: Path | None, classes: list[str], *, kind: str, overwrite: bool) -> None:
    """The legend of the label images, written before them; one that says otherwise is kept unless
    ``--overwrite`` (the folder's older label images would lose their meaning)."""
    from maskcli.formats.labels import LEGEND, has_legend, legend_for, read_legend, write_legend

    if kind == "image" or output is None:
        raise OptionError("--labels", "label images come with a legend: give an output folder with -o")
    legend = legend_for(classes)
    if has_legend(output) and not overwrite:
        try:
            same = read_legend(output) == legend
        except MaskcliError:
            same = False
        if not same:
            raise OptionError("--labels", f"{output / LEGEND} exists with other classes (use --overwrite to "
                                          "replace it, or another output folder)")
    write_legend(output, legend)
