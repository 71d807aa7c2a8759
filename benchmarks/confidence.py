"""Does a low per-image ``confidence`` predict a low IoU? Spearman rank correlations on the evaluation sets.

Every method reports ``facts["confidence"]`` per image in ``maskcli segment --json`` records: for threshold
methods, how well the histogram separates at the threshold used (Otsu's between-class variance ratio); for the
CNN, the share of pixels whose probability is not between 0.2 and 0.8. A useful signal ranks images as their IoU
does: a positive rank correlation means that sorting a batch by confidence puts the bad masks first.

For each set and method this runs the method on every image (through :func:`maskcli.compare.compare_methods`),
and reports Spearman's rho between confidence and IoU (both-class IoU on ``isbi2012_em``), its two-sided p-value,
and the mean IoU of the least confident quarter of the images beside that of the rest.

    python -m benchmarks.confidence                 # otsu, li, and cnn when its weights exist
    python -m benchmarks.confidence --limit 20 --methods otsu,li
"""

from __future__ import annotations

import argparse
import datetime
import math
import os
import sys
import time
from pathlib import Path

from benchmarks.quality import BOTH_CLASSES, DATA, WEIGHTS, set_names
from maskcli.compare import MethodSpec, compare_methods, parse_method_specs

HERE = Path(__file__).resolve().parent
REPO = HERE.parent


def correlate(confidences: list[float], scores: list[float]) -> tuple[float, float]:
    """Spearman's rho and its p-value; NaN when either side is constant or there are fewer than 3 images."""
    from scipy.stats import spearmanr

    if len(confidences) < 3 or len(set(confidences)) < 2 or len(set(scores)) < 2:
        return float("nan"), float("nan")
    result = spearmanr(confidences, scores)
    return float(result.statistic), float(result.pvalue)


def quarter_split(confidences: list[float], scores: list[float]) -> tuple[float, float]:
    """Mean score of the least confident quarter of the images, and of the other three quarters."""
    order = sorted(range(len(scores)), key=lambda i: confidences[i])
    cut = max(1, len(order) // 4)
    low = [scores[i] for i in order[:cut]]
    rest = [scores[i] for i in order[cut:]]
    mean = lambda values: sum(values) / len(values) if values else float("nan")  # noqa: E731
    return mean(low), mean(rest)


def _fmt(value: float, digits: int = 2) -> str:
    return "–" if value != value else f"{value:.{digits}f}"


def _p(value: float) -> str:
    if value != value:
        return "–"
    return f"{value:.1e}" if value < 0.001 else f"{value:.3f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--sets", default=None, help="comma-separated set names (default: all)")
    parser.add_argument("--methods", default=None, help="`maskcli eval --methods` syntax (default: otsu, li, cnn)")
    parser.add_argument("--limit", type=int, default=None, help="only the first N images of each set")
    parser.add_argument("--weights", type=Path, default=WEIGHTS)
    parser.add_argument("--out", type=Path, default=HERE / "results" / "confidence.md")
    args = parser.parse_args()

    from maskcli.methods import methods

    notes = []
    if args.methods:
        specs = parse_method_specs(args.methods)
    else:
        specs = [MethodSpec("otsu", "otsu"), MethodSpec("li", "li")]
        if "cnn" in methods and args.weights.is_file():
            specs.append(MethodSpec("cnn", "cnn", {"weights": str(args.weights)}))
        else:
            why = f"no weights at {args.weights}" if "cnn" in methods else "not registered"
            notes.append(f"cnn left out: {why}")
    names = set_names(args.data, args.sets)
    started = time.perf_counter()
    rows = []
    for name in names:
        folder = args.data / name
        both = name in BOTH_CLASSES
        print(f"{name} ...", file=sys.stderr, flush=True)
        ranking = compare_methods(folder / "images", folder / "masks", specs, both_classes=both, limit=args.limit)
        for result in sorted(ranking.results, key=lambda r: [s.label for s in specs].index(r.spec.label)):
            pairs = [(i.facts.get("confidence"), i.scores[ranking.rank_key]) for i in result.images
                     if i.ok and isinstance(i.facts.get("confidence"), (int, float))
                     and math.isfinite(i.facts["confidence"])]
            confidences = [float(c) for c, _ in pairs]
            scores = [s for _, s in pairs]
            rho, p = correlate(confidences, scores)
            low, rest = quarter_split(confidences, scores) if pairs else (float("nan"), float("nan"))
            flagged = sum(1 for i in result.images if i.ok and i.facts.get("warnings"))
            rows.append((name, result.spec.label, len(pairs), len(result.images), rho, p, result.mean, low, rest,
                         flagged, "both classes" if both else "foreground"))
    elapsed = time.perf_counter() - started
    _write(args, rows, notes, elapsed)
    print(f"wrote {args.out} in {elapsed:.0f} s", file=sys.stderr)


def _write(args, rows, notes, elapsed) -> None:  # type: ignore[no-untyped-def]
    threads = os.environ.get("OMP_NUM_THREADS")
    prefix = f"OMP_NUM_THREADS={threads} " if threads else ""
    command = prefix + "python -m benchmarks.confidence" + "".join(
        f" {flag} {value}" for flag, value in (("--sets", args.sets), ("--methods", args.methods),
                                               ("--limit", args.limit)) if value is not None)
    lines = [
        "# Does low confidence predict low IoU?",
        "",
        f"Command: `{command}`, {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC, {elapsed:.0f} s.",
        "",
        "Spearman's rank correlation between each image's `confidence` fact and its IoU (rho > 0: less confident "
        "masks are worse). *low-conf. quarter*: mean IoU of the 25 % least confident images; *rest*: of the others. "
        "*flagged*: images whose record carries a warning (empty or full mask ...).",
    ]
    if args.limit:
        lines += ["", f"**Only the first {args.limit} images (in name order) of each set (--limit).**"]
    if notes:
        lines += ["", "Notes: " + "; ".join(notes) + "."]
    lines += [
        "",
        "| set | method | IoU | images | Spearman rho | p | mean IoU | low-conf. quarter | rest | flagged |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, label, n, total, rho, p, mean, low, rest, flagged, kind in rows:
        count = f"{n}" if n == total else f"{n} of {total}"
        lines.append(f"| {name} | `{label}` | {kind} | {count} | **{_fmt(rho)}** | {_p(p)} | {_fmt(mean, 3)} | "
                     f"{_fmt(low, 3)} | {_fmt(rest, 3)} | {flagged} |")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
