"""``maskcli eval``: score masks against ground truth, or rank methods on images with ground truth."""

from __future__ import annotations

import csv
import io
import json
import math
from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from maskcli.cli import common as c
from maskcli.cli.context import Exit, current
from maskcli.cli.flags import Wording
from maskcli.cli.report import escape, progress_bar, say
from maskcli.errors import OptionError

SCORING = "Scoring"
OUTPUT = "Output"

#: Table columns: score key, header.
_COLUMNS = (
    ("iou", "IoU"),
    ("dice", "Dice"),
    ("precision", "prec"),
    ("recall", "rec"),
    ("boundary_f", "BF"),
    ("mae", "MAE"),
    ("pred_fraction", "fg"),
    ("truth_fraction", "true fg"),
)


def eval_command(
    source: Annotated[Path, typer.Argument(metavar="PRED|IMAGES", help="Folder (or file) of predicted masks; "
                                           "with --methods, of images.", show_default=False)],
    truth: Annotated[Path, typer.Argument(metavar="GT", help="Folder (or file) of true masks, paired by "
                                          "relative path and stem; or a COCO file (.json) or a folder of label "
                                          "images (with labels.json), paired by file name.", show_default=False)],
    methods: Annotated[Optional[list[str]], typer.Option(
        "--methods", metavar="SPECS",
        help="Run these methods on IMAGES and rank them by mean IoU. Comma-separated entries: NAME, "
             "NAME:KEY=VALUE[:KEY=VALUE...] (method options, or refinement settings such as fill_holes=1), or "
             "preset:NAME[:KEY=VALUE...]. Repeatable. Example: \"otsu,li:sigma=1,preset:nuclei\".",
        show_default=False)] = None,
    model: Annotated[Optional[str], typer.Option("--model", help="With --methods: the model of the cnn entries "
                                                 "(`maskcli models`).", rich_help_panel=c.CNN,
                                                 show_default=False)] = None,
    weights: c.Weights = None,
    device: c.Device = None,
    batch_size: c.BatchSize = None,
    level: Annotated[float, typer.Option("--level", help="Binarise soft masks at this level for the region and "
                                         "boundary scores (MAE uses the soft values).", rich_help_panel=SCORING)
                     ] = 0.5,
    tolerance: Annotated[float, typer.Option("--tolerance", help="Boundary F-score tolerance, in pixels.",
                                             rich_help_panel=SCORING, min=0)] = 2.0,
    both_classes: Annotated[bool, typer.Option("--both-classes", help="Rank and summarise by the mean IoU of "
                                               "foreground and background (for sets where the foreground covers "
                                               "most of each image).", rich_help_panel=SCORING)] = False,
    # The ignore below: an Annotated alias built by a call: Typer reads it, mypy cannot.
    classes: c.class_option(SCORING) = None,  # type: ignore[valid-type]
    instances: Annotated[bool, typer.Option("--instances", help="Score per object: each predicted object (an "
                                            "annotation, a label value, or a region of a plain mask) matched to a "
                                            "true one of its class by IoU; per-object and per-image scores.",
                                            rich_help_panel=SCORING)] = False,
    jobs: Annotated[Optional[int], typer.Option("--jobs", "-j", help="With --methods: images processed at once "
                                                "(processes; threads for the CNN). Default: 1, so that the "
                                                "times are free of contention.", rich_help_panel=SCORING,
                                                min=1, show_default=False)] = None,
    engine: c.Engine = "local",
    ray_address: c.RayAddress = None,
    fail_fast: Annotated[bool, typer.Option("--fail-fast", help="With --methods: stop at the first image that "
                                            "fails.", rich_help_panel=SCORING)] = False,
    limit: Annotated[Optional[int], typer.Option("--limit", help="With --methods: score only the first N "
                                                 "pairs.", rich_help_panel=SCORING, min=1, show_default=False)
                     ] = None,
    worst: Annotated[Optional[int], typer.Option("--worst", help="List only the N lowest-IoU images, worst "
                                                 "first (the table and --json; means stay over all images).",
                                                 rich_help_panel=OUTPUT, min=1, show_default=False)] = None,
    json_output: Annotated[bool, typer.Option("--json", help="One JSON document on stdout instead of the table.",
                                              rich_help_panel=OUTPUT)] = False,
    csv_file: Annotated[Optional[Path], typer.Option("--csv", help="Write per-image scores to this CSV file "
                                                     "(- for stdout).", rich_help_panel=OUTPUT,
                                                     show_default=False)] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No summary or progress on stderr (files left "
                                        "unpaired and failures are still listed).",
                                        rich_help_panel=OUTPUT)] = False,
) -> None:
    """Score masks against ground truth: IoU, Dice, precision, recall, boundary F, MAE, foreground fractions.

    Masks pair with truths by relative path and stem (folders are walked recursively); files without a partner
    are listed on stderr.

    Exit status 1 when some pair could not be scored, 3 when nothing pairs.

    \b
    Examples:
      maskcli eval masks/ truth/                          # per-image table and means
      maskcli eval masks/ truth/ --worst 10 --csv scores.csv
      maskcli eval --methods otsu,li,canny,cnn photos/ truth/
      maskcli eval --methods "li:sigma=1,otsu:fill_holes=1,preset:nuclei" cells/ truth/
      maskcli eval --methods otsu,li em/ truth/ --both-classes
      maskcli eval masks/ annotations.json --class horse   # truth from a COCO file
      maskcli eval labels/ annotations.json --instances    # per object, e.g. masks made from boxes
    """
    from maskcli import compare, evaluate
    from maskcli.cli.common import split_names

    if csv_file is not None and str(csv_file) == "-" and json_output:
        raise OptionError("--csv", "- (stdout) cannot be combined with --json, which also writes to stdout")
    rank_key = "iou_both" if both_classes else "iou"
    cnn_options = {key: value for key, value in (("model", model), ("weights", str(weights) if weights else None),
                                                 ("device", device), ("batch_size", batch_size))
                   if value is not None}
    if cnn_options and not methods:
        raise OptionError("--" + next(iter(cnn_options)).replace("_", "-"),
                          "applies to the cnn entries of --methods; scoring existing masks runs no model")
    if methods and instances:
        raise OptionError("--instances", "scores existing masks per object; --methods ranks whole masks")
    if methods:
        specs = _with_cnn_options(compare.parse_method_specs(methods), cnn_options)
        executor = c.executor_for(engine, ray_address, jobs)
        if executor is not None:
            executor.start()
        try:
            with _Progress(enabled=not quiet and not json_output) as progress:
                ranking = compare.compare_methods(source, truth, specs, level=level, tolerance=tolerance,
                                                  both_classes=both_classes, limit=limit, progress=progress.step,
                                                  jobs=jobs or 1, executor=executor, fail_fast=fail_fast,
                                                  classes=split_names(classes))
        finally:
            if executor is not None:
                executor.close()
        _warn_unpaired(ranking.pairing, "an image")
        if csv_file is not None:
            _write_csv(csv_file, [(r.spec.label, image) for r in ranking.results for image in r.images])
        if json_output:
            _print_json(_ranking_document(ranking, worst))
        elif csv_file is None or str(csv_file) != "-":
            _print_ranking(ranking, worst)
        failed = sum(len(r.failed) for r in ranking.results)
        scored = sum(len(r.images) for r in ranking.results) - failed
        best = ranking.best
        _summary(f"{len(ranking.results)} methods × {len(best.images)} images, {scored} scored, {failed} failed; "
                 f"best: {best.spec.label} (mean {_label(rank_key)} {_fmt(best.mean, 4)})", quiet)
        _report_failures([(r.spec.label, i) for r in ranking.results for i in r.failed])
        raise typer.Exit(Exit.of_batch(failed))

    if instances:
        from maskcli.cli.instances import eval_instances

        if csv_file is not None or both_classes:
            raise OptionError("--instances", "scores objects: --csv and --both-classes score whole masks")
        eval_instances(source, truth, classes=split_names(classes), json_output=json_output, quiet=quiet,
                       worst=worst, print_json=_print_json, console=_console())
    for flag, given in (("--limit", limit is not None), ("--jobs", jobs is not None), ("--fail-fast", fail_fast),
                        ("--engine", engine != "local"), ("--ray-address", ray_address is not None)):
        if given:
            raise OptionError(flag, "only applies with --methods")
    result = evaluate.evaluate_folders(source, truth, level=level, tolerance=tolerance,
                                       classes=split_names(classes))
    _warn_unpaired(result.pairing, "a prediction")
    if csv_file is not None:
        _write_csv(csv_file, [(None, image) for image in result.images])
    listed = evaluate.worst_first(result.images, rank_key)[:worst] if worst else result.images
    if json_output:
        _print_json({
            "level": level, "tolerance": tolerance, "rank_key": rank_key,
            "count": len(result.scored), "failed": len(result.failed),
            "mean": _rounded(result.means),
            "images": [image.record() for image in listed],
            "unpaired_predictions": result.pairing.unpaired_sources,
            "unpaired_truths": result.pairing.unpaired_truths,
        })
    elif csv_file is None or str(csv_file) != "-":
        _print_scores(listed, result.means, both_classes, worst)
    _summary(f"{len(result.scored)} pairs scored, {len(result.failed)} failed; mean {_label(rank_key)} "
             f"{result.means.get(rank_key, float('nan')):.4f}", quiet)
    _report_failures([(None, image) for image in result.failed])
    raise typer.Exit(Exit.of_batch(len(result.failed)))


def _with_cnn_options(specs: list[Any], options: dict[str, Any]) -> list[Any]:
    """The CNN flags (as segment has them) given to every cnn entry; an entry's own KEY=VALUE pairs win."""
    if not options:
        return specs
    flag = "--" + next(iter(options)).replace("_", "-")
    cnn_specs = [spec for spec in specs if spec.method == "cnn"]
    if not cnn_specs:
        raise OptionError(flag, "applies to the cnn entries of --methods, and there is none (add cnn to --methods)")
    for spec in cnn_specs:
        spec.options = {**options, **spec.options}
    return specs


def _label(key: str) -> str:
    return {"iou": "IoU", "iou_both": "IoU (both classes)"}.get(key, key)


def _rounded(values: dict[str, float]) -> dict[str, float]:
    return {k: round(v, 6) for k, v in values.items()}


def _err(text: str) -> None:
    say(text)


def _warn_unpaired(pairing: Any, what: str) -> None:
    # Said even with --quiet: silently scoring fewer files than were given would mislead.
    for path, reason in pairing.problems:
        _err(f"maskcli: warning: {path}: {Wording.current().text(reason)}")
    for path in pairing.unpaired_sources:
        _err(f"maskcli: warning: {path}: no truth of the same name; not scored")
    for path in pairing.unpaired_truths:
        _err(f"maskcli: warning: {path}: truth without {what}; not scored")


def _report_failures(failures: list[tuple[str | None, Any]]) -> None:
    for label, image in failures:
        where = f"{label}: " if label else ""
        _err(f"maskcli: error: {image.source}: {where}{Wording.current().text(str(image.error))}")


def _summary(text: str, quiet: bool) -> None:
    if not quiet:
        _err(f"maskcli: {text}")


def _print_json(document: dict[str, Any]) -> None:
    print(json.dumps(document, default=str), file=current().stdout, flush=True)


def _fmt(value: float | None, digits: int = 3) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "–"
    return f"{value:.{digits}f}"


def _console() -> Any:

    # A table piped to a file or pager is not cut to 80 columns: names would be lost.
    context = current()
    width = None if context.stdout_isatty else 200
    return context.console(highlight=False, width=width)


def _print_scores(images: list[Any], means: dict[str, float], both_classes: bool, worst: int | None) -> None:
    from rich.table import Table

    columns = list(_COLUMNS)
    if both_classes:
        columns.insert(1, ("iou_both", "IoU both"))
    title = f"{len(images)} worst images, worst first" if worst else "scores per image"
    table = Table(title=title, title_justify="left", show_footer=True,
                  caption="BF: boundary F-score; fg: foreground fractions", caption_justify="left")
    table.add_column("image", footer="mean", no_wrap=True)
    for key, header in columns:
        table.add_column(header, justify="right", footer=_fmt(means.get(key)))
    from rich.text import Text

    for image in images:  # names are text, never markup, and escaped to one line
        if image.ok:
            table.add_row(Text(escape(image.key)), *(_fmt(image.scores.get(key)) for key, _ in columns))
        else:
            table.add_row(Text(escape(image.key)), Text(escape(str(image.error)), style="red"),
                          *([""] * (len(columns) - 1)))
    _console().print(table)


def _print_ranking(ranking: Any, worst: int | None) -> None:
    from rich.table import Table

    key = ranking.rank_key
    table = Table(title=f"methods ranked by mean {_label(key)}", title_justify="left",
                  caption="BF: boundary F-score; ms/img: median time of the method per image, decoding excluded",
                  caption_justify="left")
    for header in ("rank", "method", f"mean {_label(key)}", "Dice", "prec", "rec", "BF", "ms/img", "failed"):
        table.add_column(header, justify="left" if header == "method" else "right")
    for rank, result in enumerate(ranking.results, 1):
        means = result.means
        table.add_row(str(rank), result.spec.label, _fmt(means.get(key)), _fmt(means.get("dice")),
                      _fmt(means.get("precision")), _fmt(means.get("recall")), _fmt(means.get("boundary_f")),
                      _fmt(result.seconds_per_image * 1000, 1), str(len(result.failed)))
    console = _console()
    console.print(table)
    if worst:
        from maskcli.evaluate import worst_first

        for result in ranking.results:
            listed = worst_first(result.images, key)[:worst]
            text = ", ".join(f"{i.key} ({_fmt(i.scores.get(key))})" if i.ok else f"{i.key} (failed)" for i in listed)
            console.print(escape(f"worst for {result.spec.label}: {text}"), markup=False)


def _ranking_document(ranking: Any, worst: int | None) -> dict[str, Any]:
    from maskcli.evaluate import worst_first

    return {
        "level": ranking.level, "tolerance": ranking.tolerance, "rank_key": ranking.rank_key,
        "ranking": [
            {
                "rank": rank, "label": r.spec.label, "method": r.spec.method, "options": r.spec.options,
                "refinement": r.spec.refinement, "mean": _rounded(r.means),
                "ms_per_image": round(r.seconds_per_image * 1000, 2) if math.isfinite(r.seconds_per_image) else None,
                "failed": len(r.failed),
                "images": [i.record() for i in (worst_first(r.images, ranking.rank_key)[:worst] if worst
                                                else r.images)],
            }
            for rank, r in enumerate(ranking.results, 1)
        ],
        "unpaired_images": ranking.pairing.unpaired_sources,
        "unpaired_truths": ranking.pairing.unpaired_truths,
    }


def _write_csv(path: Path, rows: list[tuple[str | None, Any]]) -> None:
    from maskcli.metrics import SCORE_KEYS

    with_method = any(label is not None for label, _ in rows)
    timed = any(image.seconds is not None for _, image in rows)
    header = (["method"] if with_method else []) + ["key", "source", "truth", "error", *SCORE_KEYS]
    header += ["ms"] if timed else []
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    for label, image in rows:
        row: list[Any] = [label] if with_method else []
        row += [image.key, image.source, image.truth, image.error or ""]
        row += [f"{image.scores[k]:.6f}" if k in image.scores else "" for k in SCORE_KEYS]
        if timed:
            row.append(f"{image.seconds * 1000:.2f}" if image.seconds is not None else "")
        writer.writerow(row)
    if str(path) == "-":
        current().stdout.write(buffer.getvalue())
        current().stdout.flush()
        return
    from maskcli.io.files import write_atomic

    write_atomic(path, buffer.getvalue().encode())


class _Progress:
    """A transient progress line on stderr while methods run, only on a terminal."""

    def __init__(self, *, enabled: bool) -> None:
        self.enabled = enabled and current().stderr_isatty
        self._progress: Any = None

    def __enter__(self) -> _Progress:
        if self.enabled:
            self._progress = progress_bar(current().stderr, "steps")
            self._task = self._progress.add_task("scoring", total=None)
        return self

    def step(self, label: str, image: Any) -> None:
        if self._progress is not None:
            self._progress.update(self._task, description=f"{label}: {image.key}")

    def __exit__(self, *exc: object) -> None:
        if self._progress is not None:
            self._progress.stop()
