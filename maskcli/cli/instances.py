"""``maskcli eval --instances``: scores per object (matched by IoU) and per image."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import typer

from maskcli.cli.context import Exit
from maskcli.cli.report import escape, say


def eval_instances(source: Path, truth: Path, *, classes: list[str] | None, json_output: bool, quiet: bool,
                   worst: int | None, print_json: Any, console: Any) -> None:
    """Score ``source``'s objects against ``truth``'s, print the table (or the JSON document), and exit."""
    from maskcli.instances import evaluate_instances

    result = evaluate_instances(source, truth, classes=classes)
    for problem in result.problems:
        say(f"maskcli: warning: {problem}")
    for key in result.unpaired_predictions:
        say(f"maskcli: warning: {key}: no truth of the same name; not scored")
    for key in result.unpaired_truths:
        say(f"maskcli: warning: {key}: truth without a prediction; not scored")
    means = result.means()
    listed = sorted(result.scored, key=lambda image: (image.mean_iou, image.key))[:worst] if worst \
        else result.images
    if json_output:
        print_json({"match_level": result.match_level, "count": len(result.scored), "failed": len(result.failed),
                    "mean": {k: (round(v, 6) if math.isfinite(v) else None) for k, v in means.items()},
                    "images": [image.record() for image in listed],
                    "unpaired_predictions": result.unpaired_predictions,
                    "unpaired_truths": result.unpaired_truths})
    else:
        from rich.table import Table
        from rich.text import Text

        table = Table(title="objects per image (matched by IoU)", title_justify="left", show_footer=True,
                      caption=f"prec/rec: matches with IoU ≥ {result.match_level}; object IoU: mean over true "
                              "objects (0 when missed)", caption_justify="left")
        table.add_column("image", footer="all", no_wrap=True)
        for header, footer in (("truths", str(int(means["objects"]))), ("found", ""), ("matched", ""),
                               ("object IoU", _fmt(means["object_iou"])), ("prec", _fmt(means["precision"])),
                               ("rec", _fmt(means["recall"]))):
            table.add_column(header, justify="right", footer=footer)
        for image in listed:
            if image.error:
                table.add_row(Text(escape(image.key)), Text(escape(image.error), style="red"), "", "", "", "", "")
            else:
                table.add_row(Text(escape(image.key)), str(image.truths), str(image.predictions), str(image.matched),
                              _fmt(image.mean_iou), _fmt(image.precision), _fmt(image.recall))
        console.print(table)
    if not quiet:
        say(f"maskcli: {len(result.scored)} images, {int(means['objects'])} true objects scored, "
            f"{len(result.failed)} failed; mean object IoU {_fmt(means['object_iou'], 4)}")
    for image in result.failed:
        say(f"maskcli: error: {image.key}: {image.error}")
    raise typer.Exit(Exit.of_batch(len(result.failed)))


def _fmt(value: float, digits: int = 3) -> str:
    return f"{value:.{digits}f}" if math.isfinite(value) else "–"
