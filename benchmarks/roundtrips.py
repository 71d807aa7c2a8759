"""Round trips of the evaluation sets' masks through the data-set formats, against the plain way of writing them.

For every mask of ``../shared/data/*/masks``: mask → COCO RLE → mask (pycocotools), mask → maskcli's polygons →
mask (rasterised by pycocotools, as COCO readers do), and, as the baseline, mask → ``cv2.findContours`` outlines
through the boundary pixels' centres (the usual recipe, holes dropped) → mask. Reports the IoU per set (mean and
worst), the masks that came back pixel for pixel, and the time per mask.

    python -m benchmarks.roundtrips --out benchmarks/results/roundtrips.md
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import cv2
import numpy as np

from benchmarks.common import write_report
from maskcli.formats.coco import polygons_decode, rle_decode, rle_encode
from maskcli.formats.geometry import mask_to_polygons

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


def centre_contours(mask: np.ndarray) -> list[list[float]]:
    """The plain recipe: outer contours through the boundary pixels' centres."""
    contours, _ = cv2.findContours(mask.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    return [c.reshape(-1).astype(float).tolist() for c in contours if len(c) >= 3]


def iou(a: np.ndarray, b: np.ndarray) -> float:
    return float((a & b).sum() / max((a | b).sum(), 1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    ways = {
        "RLE (pycocotools)": lambda m: rle_decode(rle_encode(m)),
        "polygons (maskcli)": lambda m: polygons_decode(mask_to_polygons(m), *m.shape),
        "contours through pixel centres": lambda m: polygons_decode(centre_contours(m), *m.shape),
    }
    lines = ["# Masks through the data-set formats and back", "",
             f"Every mask of {len(list(args.data.glob('*/masks/*.png')))} in the evaluation sets; IoU of the mask "
             "that comes back with the original. The machine was shared, so times are indicative.", "",
             "| set | way | mean IoU | worst IoU | identical | ms / mask |", "|---|---|---|---|---|---|"]
    for folder in sorted(p for p in args.data.iterdir() if (p / "masks").is_dir()):
        masks = [cv2.imread(str(p), cv2.IMREAD_GRAYSCALE) > 127 for p in sorted((folder / "masks").glob("*.png"))]
        for name, way in ways.items():
            started = time.perf_counter()
            backs = [way(mask) for mask in masks]
            elapsed = (time.perf_counter() - started) * 1000 / len(masks)
            scores = [iou(back, mask) for back, mask in zip(backs, masks)]
            same = sum(bool((back == mask).all()) for back, mask in zip(backs, masks))
            lines.append(f"| {folder.name} | {name} | {np.mean(scores):.4f} | {min(scores):.4f} | "
                         f"{same}/{len(masks)} | {elapsed:.1f} |")
    write_report(lines, args.out)


if __name__ == "__main__":
    main()
