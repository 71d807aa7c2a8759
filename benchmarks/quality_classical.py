"""Quality of the classical methods and presets: mean IoU against the ground truth of ``../shared/data``.

For each evaluation set, each preset and a few plain methods are run with ONE set of options for the whole set (no
per-image tuning) through the same library call that ``maskcli segment`` makes (method, then refinement chain).
``isbi2012_em`` is scored on both classes (the mean of the IoU of the mask and of its inverse), since the
all-foreground mask already scores 0.78 on the cells alone.

    python -m benchmarks.quality_classical --out benchmarks/results/quality_classical.md
    python -m benchmarks.quality_classical --polarity        # the measurement behind --polarity auto
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import cv2
import numpy as np

from maskcli.io.decode import read_image
from maskcli.jobs.segment import segment_image
from maskcli.methods import methods
from maskcli.presets import PRESETS
from maskcli.refine import Refinement

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
DATA = REPO.parent / "shared" / "data"


SETS = ("fluo_nuclei", "isbi2012_em", "weizmann_horses")
#: Presets whose foreground is the set's background class (scored against the inverted truth).
INVERTED_TRUTH = {"membranes"}
#: The presets made for each set (each is measured on its own set).
MADE_FOR = {"fluo_nuclei": {"nuclei"}, "isbi2012_em": {"em", "membranes"},
            "weizmann_horses": {"subject"}}  # photo and horse are the same settings as subject
BOTH_CLASSES = {"isbi2012_em"}


def load_set(name: str, limit: int | None = None, step: int = 1) -> list[tuple[str, np.ndarray, np.ndarray]]:
    """(name, image pixels, boolean truth) for every pair of a set (every ``step``-th, at most ``limit``)."""
    folder = DATA / name
    pairs = []
    for path in sorted((folder / "images").iterdir())[::step][:limit]:
        truth = cv2.imread(str(folder / "masks" / (path.stem + ".png")), cv2.IMREAD_GRAYSCALE) > 127
        pairs.append((path.stem, read_image(path).pixels, truth))
    return pairs


def iou(mask: np.ndarray, truth: np.ndarray) -> float:
    union = np.count_nonzero(mask | truth)
    return 1.0 if union == 0 else np.count_nonzero(mask & truth) / union


def score(mask: np.ndarray, truth: np.ndarray, both: bool) -> float:
    hard = mask >= 0.5
    return (iou(hard, truth) + iou(~hard, ~truth)) / 2 if both else iou(hard, truth)


def evaluate(pairs, method: str, options: dict | None = None, refinement: dict | None = None,
             both: bool = False, inverted: bool = False) -> tuple[float, float]:
    """Mean score and seconds per image of one method + refinement over the pairs."""
    method_object = methods.create(method, options or {})
    refiner = Refinement(**refinement) if refinement else None
    scores, start = [], time.perf_counter()
    for _, image, truth in pairs:
        scores.append(score(segment_image(image, method_object, refiner).mask, ~truth if inverted else truth, both))
    return float(np.mean(scores)), (time.perf_counter() - start) / max(1, len(pairs))


#: Plain methods measured beside the presets on every set (default options, auto polarity).
PLAIN = [
    ("otsu", {"polarity": "auto"}, {}),
    ("li", {"polarity": "auto"}, {}),
    ("triangle", {"polarity": "auto"}, {}),
    ("sauvola", {"polarity": "auto"}, {}),
    ("background", {"polarity": "auto"}, {}),
    ("canny", {}, {}),
    ("grabcut", {}, {}),
]


def polarity_table() -> str:
    """Otsu and Li with each polarity rule (and border weights of the auto rule) on the sets auto is judged on."""
    import maskcli.methods.compare as compare

    sets = {name: load_set(name) for name in ("fluo_nuclei", "weizmann_horses")}
    lines = ["| polarity | Otsu nuclei | Otsu horses | Li nuclei | Li horses |", "| --- | ---: | ---: | ---: | ---: |"]
    shipped = compare.AUTO_BORDER_WEIGHT
    rules = [("bright", None), ("dark", None)] + [("auto", w) for w in (0.0, 0.5, shipped, 1.0, 1e9)]
    try:
        for polarity, weight in rules:
            if weight is not None:
                compare.AUTO_BORDER_WEIGHT = weight
            cells = [f"{evaluate(pairs, method, {'polarity': polarity})[0]:.3f}"
                     for method in ("otsu", "li") for pairs in sets.values()]
            label = polarity if weight is None else f"auto, border weight {weight:g}"
            label += " (shipped)" if weight == shipped else ""
            lines.append(f"| {label} | " + " | ".join(cells) + " |")
    finally:
        compare.AUTO_BORDER_WEIGHT = shipped
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=None, help="write the Markdown table here")
    parser.add_argument("--polarity", action="store_true", help="only the polarity-rule table")
    parser.add_argument("--sets", nargs="*", default=list(SETS))
    args = parser.parse_args()
    if args.polarity:
        text = polarity_table()
        print(text)
        if args.out:
            args.out.parent.mkdir(parents=True, exist_ok=True)
            args.out.write_text("# --polarity auto: mean IoU per rule\n\n" + text)
        return
    lines = ["# Mean IoU of the classical methods and presets on ../shared/data", "",
             "One set of options per row for the whole set; isbi2012_em is the mean of the IoU of the mask and of "
             "its inverse (membranes: against the membrane truth); plain methods use auto polarity.", "",
             "| set | method / preset | settings | mean IoU | s/img |", "| --- | --- | --- | ---: | ---: |"]
    for set_name in args.sets:
        pairs = load_set(set_name)
        both = set_name in BOTH_CLASSES
        rows = [(f"preset {name}", p.method, p.options, p.refinement) for name, p in sorted(PRESETS.items())
                if name in MADE_FOR[set_name]]
        rows += [(method, method, options, refinement) for method, options, refinement in PLAIN]
        for label, method, options, refinement in rows:
            if method not in methods:
                continue
            mean, seconds = evaluate(pairs, method, dict(options), dict(refinement), both,
                                     inverted=label.removeprefix("preset ") in INVERTED_TRUTH)
            settings = " ".join(f"{k}={v}" for k, v in {**options, **refinement}.items())
            lines.append(f"| {set_name} | {label} | {settings} | {mean:.3f} | {seconds:.3f} |")
            print(lines[-1], flush=True)
    text = "\n".join(lines) + "\n"
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text)


if __name__ == "__main__":
    main()
