"""Mask quality of every method on every evaluation set: mean IoU, Dice, boundary F and time per image.

Contenders: each registered method at its defaults, each shipped preset, and ``cnn`` with the U²-Net-P weights
when ``../shared/weights/u2netp.onnx`` (beside the repository) exists. Sets: every ``NAME/{images,masks}`` folder
under ``../shared/data``. Scores come from :func:`maskcli.compare.compare_methods`, as ``maskcli eval --methods``
computes them. Sets whose foreground covers most of each image (``isbi2012_em``: 0.78) are ranked by the mean IoU
of both classes, since an all-foreground mask already scores 0.78 on the foreground alone.

Baselines (plain OpenCV / scikit-image calls, better polarity per set, from the data's README) stand beside the
rows they compare with. Times are per image for the method and its refinement (decoding excluded), on whatever
else the machine is running: compare them within one run, not across runs.

    python -m benchmarks.quality                       # everything, writes benchmarks/results/quality.md
    python -m benchmarks.quality --limit 10 --sets fluo_nuclei --methods otsu,li
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import sys
import time
from pathlib import Path

from maskcli.compare import MethodSpec, compare_methods, parse_method_specs
from maskcli.errors import MaskcliError

HERE = Path(__file__).resolve().parent
REPO = HERE.parent


DATA = REPO.parent / "shared" / "data"
WEIGHTS = REPO.parent / "shared" / "weights" / "u2netp.onnx"

#: Sets scored on both classes (mean IoU of the mask and of its inverse); see the module docstring.
BOTH_CLASSES = {"isbi2012_em"}


def set_names(data: Path, chosen: str | None) -> list[str]:
    """The sets asked for (comma-separated), else every folder of ``data`` with ``images/`` and ``masks/``."""
    if chosen:
        return chosen.split(",")
    return sorted(p.name for p in data.iterdir() if (p / "images").is_dir() and (p / "masks").is_dir())


#: Mean IoU of the plain-library baselines (both-class IoU for isbi2012_em is not given there: foreground IoU).
BASELINES = {
    "fluo_nuclei": {"all-foreground": 0.166, "otsu": 0.431, "li": 0.560, "canny": 0.084, "grabcut": 0.218},
    "isbi2012_em": {"all-foreground": 0.780, "otsu": 0.648, "li": 0.696, "canny": 0.743, "grabcut": 0.000},
    "weizmann_horses": {"all-foreground": 0.258, "otsu": 0.336, "li": 0.338, "canny": 0.260, "grabcut": 0.669,
                        "cnn": 0.89},
}


def default_specs(weights: Path | None) -> tuple[list[MethodSpec], list[str]]:
    """Every registered method at its defaults, every preset, and the CNN when its weights exist."""
    from maskcli.methods import methods

    notes: list[str] = []
    specs = [MethodSpec(name, name) for name in methods.names() if name != "cnn"]
    try:
        from maskcli.presets import PRESETS
    except ImportError:
        PRESETS = {}
        notes.append("no presets module yet")
    for name in sorted(PRESETS):
        specs.extend(parse_method_specs(f"preset:{name}"))
    if "cnn" in methods and weights is not None and weights.is_file():
        specs.append(MethodSpec("cnn", "cnn", {"weights": str(weights)}))
    elif "cnn" in methods:
        notes.append(f"cnn left out: no weights at {weights}")
    else:
        notes.append("cnn left out: the method is not registered")
    return specs, notes


def merge_identical(specs: list[MethodSpec]) -> list[MethodSpec]:
    """One spec per distinct (method, options, refinement): presets with the same settings run once, labelled
    with all their names (``preset:subject = preset:photo``)."""
    merged: dict[str, MethodSpec] = {}
    for spec in specs:
        key = json.dumps([spec.method, spec.options, spec.refinement], sort_keys=True, default=str)
        if key in merged:
            merged[key].label += f" = {spec.label}"
        else:
            merged[key] = MethodSpec(spec.label, spec.method, dict(spec.options), dict(spec.refinement))
    return list(merged.values())


def usable(specs: list[MethodSpec]) -> tuple[list[MethodSpec], list[str]]:
    """The specs whose method builds at these options; the others, with why, as notes."""
    from maskcli.compare import build_method

    kept, notes = [], []
    for spec in specs:
        try:
            build_method(spec)
        except (MaskcliError, ImportError, TypeError) as error:
            notes.append(f"{spec.label} left out: {error}")
            continue
        kept.append(spec)
    return kept, notes


def _fmt(value: float | None, digits: int = 3) -> str:
    return "–" if value is None or value != value else f"{value:.{digits}f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=DATA, help="folder of sets (NAME/images, NAME/masks)")
    parser.add_argument("--sets", default=None, help="comma-separated set names (default: all)")
    parser.add_argument("--methods", default=None, help="contenders in `maskcli eval --methods` syntax "
                        "(default: every method, every preset, cnn when its weights exist)")
    parser.add_argument("--skip", default="", help="comma-separated labels to leave out")
    parser.add_argument("--limit", type=int, default=None, help="score only the first N images of each set")
    parser.add_argument("--weights", type=Path, default=WEIGHTS, help="U²-Net-P weights for cnn")
    parser.add_argument("--out", type=Path, default=HERE / "results" / "quality.md")
    args = parser.parse_args()

    if args.methods:
        specs, notes = parse_method_specs(args.methods), []
    else:
        specs, notes = default_specs(args.weights)
    skip = {s.strip() for s in args.skip.split(",") if s.strip()}
    notes += [f"{label} left out (--skip)" for label in sorted(skip)]
    specs, unusable = usable(merge_identical([s for s in specs if s.label not in skip]))
    notes += unusable
    names = set_names(args.data, args.sets)
    started = time.perf_counter()
    sections = []
    for name in names:
        folder = args.data / name
        both = name in BOTH_CLASSES
        print(f"{name}: {len(specs)} methods ...", file=sys.stderr, flush=True)
        set_started = time.perf_counter()
        ranking = compare_methods(folder / "images", folder / "masks", specs, both_classes=both, limit=args.limit,
                                  progress=_progress)
        print(f"\r{name}: done in {time.perf_counter() - set_started:.0f} s" + " " * 40, file=sys.stderr)
        sections.append(_section(name, ranking, both))
    elapsed = time.perf_counter() - started
    _write(args, sections, notes, elapsed)
    print(f"wrote {args.out} in {elapsed:.0f} s", file=sys.stderr)


def _progress(label: str, image) -> None:  # type: ignore[no-untyped-def]
    if sys.stderr.isatty():
        print(f"\r  {label[:30]:30} {image.key[:30]:30}", end="", file=sys.stderr, flush=True)


def _section(name: str, ranking, both: bool) -> str:  # type: ignore[no-untyped-def]
    count = len(ranking.results[0].images)
    key = "IoU both classes" if both else "IoU"
    lines = [f"### {name} ({count} images{', ranked by the mean IoU of both classes' if both else ''})", ""]
    header = ["rank", "method", f"mean {key}"]
    header += ["foreground IoU"] if both else []
    header += ["Dice", "boundary F (2 px)", "ms / image (median)", "failed",
               "baseline foreground IoU" if both else "baseline IoU"]
    lines.append("| " + " | ".join(header) + " |")
    lines.append("|" + "---|" * len(header))
    baselines = BASELINES.get(name, {})
    for rank, result in enumerate(ranking.results, 1):
        means = result.means
        row = [str(rank), f"`{result.spec.label}`", f"**{_fmt(result.mean)}**"]
        row += [_fmt(means.get("iou"))] if both else []
        baseline = baselines.get(result.spec.label)
        row += [_fmt(means.get("dice")), _fmt(means.get("boundary_f")), _fmt(result.seconds_per_image * 1000, 1),
                str(len(result.failed)), _fmt(baseline) if baseline is not None else ""]
        lines.append("| " + " | ".join(row) + " |")
    if "all-foreground" in baselines:
        lines.append("")
        lines.append(f"All-foreground mask: foreground IoU {baselines['all-foreground']:.3f}"
                     + (" (both classes: exactly half of that, since its background IoU is 0)." if both else "."))
    failures = [(r.spec.label, i) for r in ranking.results for i in r.failed][:5]
    if failures:
        lines.append("")
        lines.append("First failures: " + "; ".join(f"`{label}` on {i.key}: {i.error}" for label, i in failures))
    return "\n".join(lines)


def _write(args, sections: list[str], notes: list[str], elapsed: float) -> None:  # type: ignore[no-untyped-def]
    threads = os.environ.get("OMP_NUM_THREADS")
    prefix = f"OMP_NUM_THREADS={threads} " if threads else ""
    command = prefix + "python -m benchmarks.quality" + "".join(
        f" {flag} {value}" for flag, value in (("--sets", args.sets), ("--methods", args.methods),
                                               ("--skip", args.skip or None), ("--limit", args.limit))
        if value is not None)
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    head = [
        "# Mask quality per method and set",
        "",
        f"Command: `{command}`, {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC, "
        f"{platform.machine()} with {cores} cores (shared with other work: compare times within this run), "
        f"{elapsed:.0f} s in all.",
        "",
        "Each method at its defaults (presets with their settings), scored at level 0.5 with "
        "`maskcli.compare.compare_methods`; time per image is the method and its refinement, decoding excluded. "
        "Baselines: plain OpenCV / scikit-image calls with the better polarity per set (data README).",
    ]
    if args.limit:
        head += ["", f"**Only the first {args.limit} images (in name order) of each set were scored (--limit).**"]
    if notes:
        head += ["", "Notes: " + "; ".join(notes) + "."]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("\n".join(head) + "\n\n" + "\n\n".join(sections) + "\n")


if __name__ == "__main__":
    main()
