"""Speed of the classical methods: ``maskcli segment -m NAME`` against the decode+encode floor and ImageMagick.

Rows, all on the same one-megapixel JPEGs from ``synth.make_jpegs``, in the same run, one process each:

* **floor**: OpenCV decodes each JPEG as grey, thresholds it at a fixed level and writes a PNG, in a plain loop
  (the foundation benchmark's floor);
* **maskcli**: ``maskcli segment DIR -o OUT -m NAME --jobs 1 --quiet`` as a user runs it (start-up included);
* **ImageMagick**: ``mogrify -limit thread 1 -path OUT -format png -colorspace Gray OP *.jpg`` (one process for the
  whole folder, one thread), with OP = ``-threshold 50%``, ``-auto-threshold otsu``, ``-lat 25x25-2%``,
  ``-canny 0x1+10%+30%``. The slow ImageMagick operators run on the first ``--im-count`` files only (img/s is
  comparable; the count is in the table).

Targets (issue 3): otsu and fixed ≥ 0.85 × floor and ≥ 3 × ImageMagick; canny ≥ 0.8 × floor and ≥ 10 × ``-canny``.
Without a real ImageMagick ``mogrify`` its column is skipped, with a line that says so (nothing is installed).

    python -m benchmarks.bench_methods --count 200 --out benchmarks/results/methods_speed.md
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

from benchmarks.common import imagemagick, scratch_folder, write_report
from benchmarks.synth import make_jpegs

HERE = Path(__file__).resolve().parent


#: maskcli method → the ImageMagick operator doing the same job (None: no counterpart).
METHODS = {
    "fixed": ["-threshold", "50%"],
    "otsu": ["-auto-threshold", "otsu"],
    "li": None,
    "triangle": ["-auto-threshold", "triangle"],
    "local": ["-lat", "25x25-2%"],
    "sauvola": None,
    "background": None,
    "canny": ["-canny", "0x1+10%+30%"],
    "sobel": None,
}
OPTIONS = {"color_range": ["-p", "key=green"], "local": ["-p", "block_size=25"]}
SLOW_IM = {"-canny", "-lat"}


def floor_rate(paths: list[str], out: Path) -> float:
    import cv2

    cv2.setNumThreads(1)
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    start = time.perf_counter()
    for path in paths:
        grey = cv2.imread(path, cv2.IMREAD_GRAYSCALE)
        _, mask = cv2.threshold(grey, 127, 255, cv2.THRESH_BINARY)
        cv2.imwrite(os.path.join(out, Path(path).stem + ".png"), mask)
    return len(paths) / (time.perf_counter() - start)


def maskcli_rate(folder: Path, out: Path, method: str, count: int) -> float:
    shutil.rmtree(out, ignore_errors=True)
    command = [sys.executable, "-m", "maskcli", "segment", str(folder), "-o", str(out), "-m", method,
               *OPTIONS.get(method, []), "--jobs", "1", "--quiet"]
    start = time.perf_counter()
    subprocess.run(command, check=True, capture_output=True)
    return count / (time.perf_counter() - start)


def imagemagick_rate(mogrify: list[str], paths: list[str], out: Path, operator: list[str]) -> float:
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    command = [*mogrify, "-limit", "thread", "1", "-path", str(out), "-format", "png", "-colorspace", "Gray",
               *operator, *paths]
    start = time.perf_counter()
    subprocess.run(command, check=True, capture_output=True, env={**os.environ, "OMP_NUM_THREADS": "1"})
    return len(paths) / (time.perf_counter() - start)


def stage_times(folder: Path, out: Path, method: str) -> dict[str, float]:
    """Median milliseconds per stage (decode, compute, encode, write) from ``--json`` records of one run."""
    import json
    import statistics

    shutil.rmtree(out, ignore_errors=True)
    command = [sys.executable, "-m", "maskcli", "segment", str(folder), "-o", str(out), "-m", method,
               *OPTIONS.get(method, []), "--jobs", "1", "--json"]
    records = [json.loads(line) for line in subprocess.run(command, check=True, capture_output=True,
                                                           text=True).stdout.splitlines() if line.strip()]
    stages = ("decode", "compute", "encode", "write")
    return {k: statistics.median(r["timings_ms"].get(k, 0.0) for r in records) for k in stages}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--count", type=int, default=200)
    parser.add_argument("--im-count", type=int, default=40, help="files for ImageMagick's slow operators")
    parser.add_argument("--work", type=Path, default=None,
                        help="scratch folder, kept for the next run (default: a temp folder, removed at the end)")
    parser.add_argument("--out", type=Path, default=None, help="write the Markdown table here")
    parser.add_argument("--repeat", type=int, default=2, help="best of N runs per row")
    parser.add_argument("--methods", nargs="*", default=list(METHODS))
    args = parser.parse_args()

    work = scratch_folder(args.work, "maskcli-bench-methods-")
    images = work / "images"
    if len(list(images.glob("*.jpg"))) != args.count:
        shutil.rmtree(images, ignore_errors=True)
        make_jpegs(images, args.count, seed=0)
    paths = sorted(str(p) for p in images.glob("*.jpg"))
    mogrify = imagemagick("mogrify")

    best = lambda f: max(f() for _ in range(args.repeat))  # noqa: E731
    floor = best(lambda: floor_rate(paths, work / "floor"))
    lines = [f"# Classical methods, {len(paths)} one-megapixel JPEGs, one process each ({os.cpu_count()} cores)", "",
             f"Floor (OpenCV grey decode + fixed threshold + PNG): **{floor:.1f} img/s**. "
             f"ImageMagick: {'`' + ' '.join(mogrify) + '` (one thread)' if mogrify else 'not available'}.", "",
             "| method | maskcli img/s | × floor | ImageMagick operator | IM img/s (files) | maskcli × IM |",
             "| --- | ---: | ---: | --- | ---: | ---: |"]
    for method in args.methods:
        rate = best(lambda method=method: maskcli_rate(images, work / f"m_{method}", method, len(paths)))
        operator = METHODS.get(method)
        im_cells = ["—", "—", "—"]
        if operator and mogrify:
            subset = paths[: args.im_count] if operator[0] in SLOW_IM else paths
            try:
                im = best(lambda subset=subset, method=method, operator=operator:
                          imagemagick_rate(mogrify, subset, work / f"im_{method}", operator))
                im_cells = [f"`{' '.join(operator)}`", f"{im:.1f} ({len(subset)})", f"{rate / im:.1f}"]
            except subprocess.CalledProcessError:  # e.g. -auto-threshold is ImageMagick 7 only
                im_cells = [f"`{' '.join(operator)}`", "unsupported by this ImageMagick", "—"]
        lines.append(f"| {method} | {rate:.1f} | {rate / floor:.2f} | " + " | ".join(im_cells) + " |")
        print(lines[-1], flush=True)
    lines += ["", "Where maskcli's time goes (median ms per image, --jobs 1, from --json records); the floor decodes "
              "straight to 8-bit grey, maskcli to float32 grey (colour when a method or refinement needs it); the "
              "stages of one image overlap those of its neighbours in three threads:", "",
              "| method | decode | compute | encode | write |", "| --- | ---: | ---: | ---: | ---: |"]
    for method in [m for m in ("fixed", "otsu", "canny", "local") if m in args.methods]:
        times = stage_times(images, work / f"t_{method}", method)
        lines.append(f"| {method} | " + " | ".join(f"{times[k]:.1f}" for k in times) + " |")
    write_report(lines, args.out)


if __name__ == "__main__":
    main()
