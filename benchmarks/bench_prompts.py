"""Masks from prompts: mean IoU of the prompted methods against the whole-photo ones, with boxes from the truth.

Two sets, both from ``../shared/data/weizmann_horses`` (beside the repository):

* **horses**: the first ``--limit`` photos by name, one horse each; its box is its true mask's bounding box
  widened by 5 % of its size per side (clipped to the photo). Rows: ``cnn`` on the whole photo, ``cnn-box``,
  ``grabcut`` with the ``subject`` preset (no box), ``grabcut-box``.
* **canvas**: the object is not the salient one. Each canvas is a horse photo with two more horses (cut out along
  their true masks) pasted onto it at 45 % of the canvas's height, lower left and lower right, over the photo's
  own horse. One box per horse (its visible pixels' box, +5 %); the score is the instance IoU of each horse's mask
  against its visible pixels. ``cnn`` (whole photo, split by box) is the whole-photo mask inside each box.

Each row is one library call per image (:meth:`compute_prompts`, or ``compute`` for the whole-photo rows), as
``maskcli segment --boxes`` makes them. Times are per image on whatever else the machine runs.

    python -m benchmarks.bench_prompts                 # writes benchmarks/results/prompts.md
    python -m benchmarks.bench_prompts --limit 10 --canvases 5 --no-write
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import sys
import time
from pathlib import Path

import cv2
import numpy as np

from maskcli.io.decode import read_image
from maskcli.methods import methods
from maskcli.prompts import Prompt

HERE = Path(__file__).resolve().parent
REPO = HERE.parent


HORSES = REPO.parent / "shared" / "data" / "weizmann_horses"
MARGIN = 0.05


def box_of(mask: np.ndarray, margin: float = MARGIN) -> tuple[float, float, float, float]:
    """The mask's bounding box widened by ``margin`` × its size per side, clipped to the image."""
    ys, xs = np.nonzero(mask)
    x0, x1, y0, y1 = xs.min(), xs.max() + 1, ys.min(), ys.max() + 1
    dx, dy = margin * (x1 - x0), margin * (y1 - y0)
    height, width = mask.shape
    return (float(max(0, x0 - dx)), float(max(0, y0 - dy)), float(min(width, x1 + dx)),
            float(min(height, y1 + dy)))


def iou(mask: np.ndarray, truth: np.ndarray) -> float:
    found = mask >= 0.5
    union = np.count_nonzero(found | truth)
    return np.count_nonzero(found & truth) / union if union else 1.0


def horse_pairs(limit: int) -> list[tuple[np.ndarray, np.ndarray]]:
    pairs = []
    for path in sorted((HORSES / "images").iterdir())[:limit]:
        truth = cv2.imread(str(HORSES / "masks" / f"{path.stem}.png"), cv2.IMREAD_GRAYSCALE) > 127
        pairs.append((read_image(path).pixels, truth))
    return pairs


def canvases(pairs: list[tuple[np.ndarray, np.ndarray]], count: int) -> list[tuple[np.ndarray, list[np.ndarray]]]:
    """Canvas ``k``: photo ``k`` with photos ``k+1`` and ``k+2``'s horses pasted on; each horse's visible pixels."""
    made = []
    for k in range(min(count, len(pairs) - 2)):
        canvas, truth = pairs[k][0].copy(), pairs[k][1].copy()
        height, width = truth.shape
        visible = [truth]
        for slot, (image, mask) in enumerate((pairs[k + 1], pairs[k + 2])):
            ys, xs = np.nonzero(mask)
            cut, cut_mask = image[ys.min():ys.max() + 1, xs.min():xs.max() + 1], mask[ys.min():ys.max() + 1,
                                                                                      xs.min():xs.max() + 1]
            scale = 0.45 * height / cut.shape[0]
            size = (max(1, min(width // 2, round(cut.shape[1] * scale))), max(1, round(cut.shape[0] * scale)))
            cut = cv2.resize(cut, size, interpolation=cv2.INTER_AREA)
            cut_mask = cv2.resize(cut_mask.astype(np.uint8), size, interpolation=cv2.INTER_NEAREST) > 0
            x0 = 0 if slot == 0 else width - size[0]
            y0 = height - size[1]
            window = (slice(y0, y0 + size[1]), slice(x0, x0 + size[0]))
            canvas[window][cut_mask] = cut[cut_mask]
            placed = np.zeros_like(truth)
            placed[window] = cut_mask
            for earlier in visible:
                earlier &= ~placed
            visible.append(placed)
        made.append((canvas, [v for v in visible if v.any()]))
    return made


def score_horses(name: str, options: dict, pairs: list, prompted: bool) -> tuple[float, float]:
    method = methods.create(name, options)
    scores, start = [], time.perf_counter()
    for image, truth in pairs:
        if prompted:
            (segmentation,) = method.compute_prompts(image, [Prompt(box=box_of(truth), label="horse")])
            mask = segmentation.mask
        else:
            mask = method.compute(image).mask
            if name == "grabcut":  # the subject preset's refinement
                from maskcli.refine import Refinement

                mask = Refinement(keep_largest=1, fill_holes=True).apply(mask, image)
        scores.append(iou(mask, truth))
    return float(np.mean(scores)), (time.perf_counter() - start) / len(pairs)


def score_canvas(name: str, options: dict, made: list, prompted: bool) -> tuple[float, float, int]:
    method = methods.create(name, options)
    scores, start = [], time.perf_counter()
    for canvas, visible in made:
        prompts = [Prompt(box=box_of(truth), label="horse") for truth in visible]
        if prompted:
            masks = [s.mask for s in method.compute_prompts(canvas, prompts)]
        else:
            whole = method.compute(canvas).mask
            masks = []
            for prompt in prompts:
                x, y, w, h = prompt.rect()
                inside = np.zeros_like(whole)
                inside[y:y + h, x:x + w] = whole[y:y + h, x:x + w]
                masks.append(inside)
        scores.extend(iou(mask, truth) for mask, truth in zip(masks, visible))
    return float(np.mean(scores)), (time.perf_counter() - start) / len(made), len(scores)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--limit", type=int, default=60, help="horse photos, first by name (default 60)")
    parser.add_argument("--grabcut-limit", type=int, default=100, help="photos for the GrabCut rows (default 100)")
    parser.add_argument("--canvases", type=int, default=30, help="canvases of three horses (default 30)")
    parser.add_argument("--no-write", action="store_true", help="print the table only")
    args = parser.parse_args()
    if not HORSES.is_dir():
        sys.exit(f"{HORSES} is missing: the evaluation data sits beside the repository")
    pairs = horse_pairs(max(args.limit, args.grabcut_limit, args.canvases + 2))
    rows = []
    horses, grabcut_horses = pairs[:args.limit], pairs[:args.grabcut_limit]
    for label, name, options, prompted, chosen in (
            ("U²-Net-P on the whole photo (`-m cnn`)", "cnn", {}, False, horses),
            ("U²-Net-P in the box (`-m cnn-box`)", "cnn-box", {}, True, horses),
            ("GrabCut, `--preset subject`, no box", "grabcut",
             {"init": "rect", "inset": 0.05, "retry_insets": (0.1, 0.15), "min_area": 0.02}, False, grabcut_horses),
            ("GrabCut from the box (`-m grabcut-box`)", "grabcut-box", {}, True, grabcut_horses)):
        mean, seconds = score_horses(name, options, chosen, prompted)
        rows.append(f"| horses ({len(chosen)} photos) | {label} | {mean:.3f} | {seconds:.2f} |")
        print(rows[-1], flush=True)
    made = canvases(pairs, args.canvases)
    for label, name, options, prompted in (
            ("U²-Net-P on the whole canvas, split by box", "cnn", {}, False),
            ("U²-Net-P in each box, overlaps to both (`-m cnn-box -p overlap=none`)", "cnn-box", {"overlap": "none"},
             True),
            ("U²-Net-P in each box, overlaps to the smaller box (`-m cnn-box`)", "cnn-box", {}, True),
            ("GrabCut from each box (`-m grabcut-box`)", "grabcut-box", {}, True)):
        mean, seconds, objects = score_canvas(name, options, made, prompted)
        rows.append(f"| canvas ({len(made)} canvases, {objects} horses) | {label} | {mean:.3f} | {seconds:.2f} |")
        print(rows[-1], flush=True)
    if args.no_write:
        return
    command = "python -m benchmarks.bench_prompts" + "".join(
        f" --{k.replace('_', '-')} {v}" for k, v in (("limit", args.limit), ("grabcut_limit", args.grabcut_limit),
                                                      ("canvases", args.canvases))
        if v != parser.get_default(k))
    text = [
        "# Masks from prompts: quality with boxes from the truth (+5 % margin)", "",
        (f"`{command}` on {datetime.date.today()}, {platform.machine()} CPU ({os.cpu_count()} cores, shared with "
         "other work: times are rough), U²-Net-P on onnxruntime."), "",
        "Instance IoU per object (mean over objects); seconds per image (or per canvas) for the method alone.", "",
        "| set | method | mean IoU | s / image |", "| --- | --- | ---: | ---: |", *rows, "",
        ("Canvas: a horse photo with two more horses pasted on (lower left and right, 45 % of its height); each box "
         "holds one horse, and the photo's own horse is partly hidden. See the benchmark's docstring."), ""]
    (HERE / "results" / "prompts.md").write_text("\n".join(text), encoding="utf-8")


if __name__ == "__main__":
    main()
