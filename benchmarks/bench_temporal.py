"""Temporal smoothing on clips with a known truth: flicker and IoU of per-frame masks against smoothed ones.

Each clip pans a window across one of the shared horse photos (Weizmann horses, with their masks) by a known
number of pixels a frame, so the true mask of every frame is the photo's mask under the same window. Each frame
gets its own sensor noise (Gaussian, ``--noise`` grey levels) and a small exposure change, as a real camera's
frames do. The method's mask of every frame is then taken as it is and through
:class:`maskcli.video.temporal.TemporalSmoother`, and both are compared with the truth:

* flicker: mean |Mₜ − Mₜ₋₁| over the pixels whose true label is the same in both frames (lower is steadier);
* IoU: of the mask (at 0.5) with the truth, averaged over frames.

Run: ``python -m benchmarks.bench_temporal [--clips 12 --frames 30 --method cnn --strength 0.6]``.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import cv2
import numpy as np

from benchmarks.common import write_report
from maskcli.methods import methods
from maskcli.metrics import iou
from maskcli.video.temporal import TemporalSmoother, flicker

HERE = Path(__file__).resolve().parent


DATA = HERE.parent.parent / "shared" / "data" / "weizmann_horses"


def clip(name: str, frames: int, size: tuple[int, int], step: tuple[int, int], noise: float,
         rng: np.random.Generator) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Frames panned across one photo (with noise) and their true masks."""
    photo = cv2.imread(str(DATA / "images" / name))[:, :, ::-1]
    truth = cv2.imread(str(DATA / "masks" / name), cv2.IMREAD_GRAYSCALE) > 127
    height, width = size
    room_y, room_x = photo.shape[0] - height, photo.shape[1] - width
    pictures, truths = [], []
    for t in range(frames):
        y = min(room_y, (t * step[0]) % (2 * room_y or 1)) if room_y else 0
        x = min(room_x, (t * step[1]) % (2 * room_x or 1)) if room_x else 0
        y, x = (y if y <= room_y else 2 * room_y - y), (x if x <= room_x else 2 * room_x - x)
        window = photo[y:y + height, x:x + width].astype(np.float32)
        window = window * rng.uniform(0.94, 1.06) + rng.normal(0, noise, window.shape)
        pictures.append(np.clip(window, 0, 255).astype(np.uint8))
        truths.append(truth[y:y + height, x:x + width])
    return pictures, truths


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clips", type=int, default=12)
    parser.add_argument("--frames", type=int, default=30)
    parser.add_argument("--method", default="cnn")
    parser.add_argument("--strength", type=float, default=0.75)
    parser.add_argument("--noise", type=float, default=12.0)
    parser.add_argument("--out", type=Path, default=HERE / "results" / "temporal.md")
    args = parser.parse_args()
    if not DATA.is_dir():
        sys.exit(f"needs the shared horse photos in {DATA}")
    method = methods.create(args.method)
    rng = np.random.default_rng(0)
    names = sorted(p.name for p in (DATA / "images").iterdir())[:args.clips]
    rows, totals = [], {"raw": [0.0, 0.0], "smoothed": [0.0, 0.0]}
    started = time.perf_counter()
    for name in names:
        photo = cv2.imread(str(DATA / "images" / name))
        size = (int(photo.shape[0] * 0.8) // 2 * 2, int(photo.shape[1] * 0.8) // 2 * 2)
        pictures, truths = clip(name, args.frames, size, (1, 2), args.noise, rng)
        raw = [s.mask for s in method.compute_batch([p.astype(np.float32) / 255 for p in pictures])]
        smoother = TemporalSmoother(args.strength)
        smoothed = [smoother(mask, picture) for mask, picture in zip(raw, pictures)]
        figures = {}
        for label, masks in (("raw", raw), ("smoothed", smoothed)):
            f = flicker(masks, truths)
            mean_iou = float(np.mean([iou(m >= 0.5, t) for m, t in zip(masks, truths)]))
            figures[label] = (f, mean_iou)
            totals[label][0] += f / len(names)
            totals[label][1] += mean_iou / len(names)
        rows.append(f"| {name} | {figures['raw'][0]:.4f} | {figures['smoothed'][0]:.4f} | "
                    f"{figures['raw'][1]:.3f} | {figures['smoothed'][1]:.3f} |")
    (raw_flicker, raw_iou), (smooth_flicker, smooth_iou) = totals["raw"], totals["smoothed"]
    lines = [
        "# Temporal smoothing: flicker and IoU on panned horse clips",
        "",
        f"`python -m benchmarks.bench_temporal --clips {args.clips} --frames {args.frames} --method {args.method} "
        f"--strength {args.strength} --noise {args.noise}` ({time.perf_counter() - started:.0f} s on a 2-core "
        "machine shared with other work; the figures do not depend on speed).",
        "",
        f"{len(names)} clips of {args.frames} frames, each panned across one Weizmann horse photo (1 px down and "
        "2 px right a frame, bouncing at the edges; window 80% of the photo), with Gaussian noise of "
        f"{args.noise} grey levels and ±6% exposure per frame. Masks: `{args.method}`, per frame as they are, and "
        f"through `TemporalSmoother(strength={args.strength})` (flow-compensated running average).",
        "",
        "| clip | flicker per frame | flicker smoothed | IoU per frame | IoU smoothed |",
        "|---|---|---|---|---|",
        *rows,
        f"| **mean** | **{raw_flicker:.4f}** | **{smooth_flicker:.4f}** | **{raw_iou:.3f}** | **{smooth_iou:.3f}** |",
        "",
        f"Flicker {100 * (1 - smooth_flicker / raw_flicker):.0f}% lower; mean IoU {smooth_iou - raw_iou:+.3f}.",
    ]
    write_report(lines, args.out)


if __name__ == "__main__":
    main()
