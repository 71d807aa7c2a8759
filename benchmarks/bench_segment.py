"""Foundation benchmark: Otsu masks for a folder of one-megapixel JPEGs, side by side in one run.

Rows, all on the same files, in the same run:

* **floor**: the least any tool must do: OpenCV decodes each JPEG, thresholds it at a fixed level and writes a
  PNG mask, in a plain loop (split over the same number of processes as the row it is compared with);
* **naive**: what a one-off script does: Pillow + scikit-image defaults (open, grey, ``threshold_otsu``, save);
* **maskcli**: ``maskcli segment DIR -o OUT --method otsu --jobs N`` as a user runs it (start-up included).

It reports img/s and the ratios the foundation issue sets as targets (maskcli --jobs 1 ≥ 0.85 × floor and
≥ 2.5 × naive; --jobs 2 ≥ 1.8 × --jobs 1), and the peak memory of a 200- and a 2000-image run (flat is the
target: the runner streams).

    python benchmarks/bench_segment.py --count 200 --out benchmarks/results/segment.md
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from common import write_report  # noqa: E402
from synth import make_jpegs  # noqa: E402


def _floor_worker(args: tuple[list[str], str]) -> int:
    import cv2

    cv2.setNumThreads(1)
    paths, out = args
    for path in paths:
        grey = cv2.imread(path, cv2.IMREAD_GRAYSCALE)
        _, mask = cv2.threshold(grey, 127, 255, cv2.THRESH_BINARY)
        cv2.imwrite(os.path.join(out, Path(path).stem + ".png"), mask)
    return len(paths)


def _naive_worker(args: tuple[list[str], str]) -> int:
    import numpy as np
    from PIL import Image
    from skimage.filters import threshold_otsu

    paths, out = args
    for path in paths:
        grey = np.asarray(Image.open(path).convert("L"))
        mask = grey > threshold_otsu(grey)
        Image.fromarray(mask).save(os.path.join(out, Path(path).stem + ".png"))
    return len(paths)


def run_loop(worker, paths: list[str], out: Path, processes: int) -> float:
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    chunks = [(paths[i::processes], str(out)) for i in range(processes)]
    start = time.perf_counter()
    if processes == 1:
        worker(chunks[0])
    else:
        with multiprocessing.get_context("fork").Pool(processes) as pool:
            pool.map(worker, chunks)
    return len(paths) / (time.perf_counter() - start)


def run_maskcli(folder: Path, out: Path, jobs: int, count: int) -> tuple[float, float]:
    """img/s and the peak RSS (MiB) of the largest maskcli process."""
    shutil.rmtree(out, ignore_errors=True)
    probe = (
        "import resource, subprocess, sys, time\n"
        "t = time.perf_counter()\n"
        "r = subprocess.run(sys.argv[1:])\n"
        "print(time.perf_counter() - t, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, r.returncode)\n"
    )
    command = [sys.executable, "-c", probe, sys.executable, "-m", "maskcli", "segment", str(folder), "-o", str(out),
               "--method", "otsu", "--jobs", str(jobs), "--quiet"]
    seconds, rss_kib, code = subprocess.run(command, capture_output=True, text=True, check=True).stdout.split()
    if code != "0":
        raise SystemExit(f"maskcli exited {code}")
    return count / float(seconds), int(rss_kib) / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--count", type=int, default=200)
    parser.add_argument("--work", type=Path, default=None, help="scratch folder (default: a temp folder)")
    parser.add_argument("--out", type=Path, default=None, help="write the Markdown table here")
    parser.add_argument("--repeat", type=int, default=2, help="best of N runs per row")
    args = parser.parse_args()

    work = args.work or Path(tempfile.mkdtemp(prefix="maskcli-bench-"))
    images = work / "images"
    if len(list(images.glob("*.jpg"))) != args.count:
        shutil.rmtree(images, ignore_errors=True)
        make_jpegs(images, args.count, seed=0)
    paths = sorted(str(p) for p in images.glob("*.jpg"))
    big = work / "images_x10"  # 10 × the files (links), for the memory-is-flat check
    if not big.exists():
        big.mkdir()
        for copy in range(10):
            for path in paths:
                (big / f"{copy}_{Path(path).name}").symlink_to(path)

    best = lambda f: max(f() for _ in range(args.repeat))  # noqa: E731
    floor1 = best(lambda: run_loop(_floor_worker, paths, work / "floor", 1))
    floor2 = best(lambda: run_loop(_floor_worker, paths, work / "floor", 2))
    naive = best(lambda: run_loop(_naive_worker, paths, work / "naive", 1))
    m1 = max((run_maskcli(images, work / "m1", 1, len(paths)) for _ in range(args.repeat)), key=lambda r: r[0])
    m2 = max((run_maskcli(images, work / "m2", 2, len(paths)) for _ in range(args.repeat)), key=lambda r: r[0])
    m2_big = run_maskcli(big, work / "m2big", 2, len(paths) * 10)

    rows = [
        ("floor (OpenCV decode + fixed threshold + PNG), 1 process", f"{floor1:.1f}", ""),
        ("floor, 2 processes", f"{floor2:.1f}", ""),
        ("naive (Pillow + skimage threshold_otsu), 1 process", f"{naive:.1f}", ""),
        ("maskcli segment -m otsu --jobs 1", f"{m1[0]:.1f}", f"{m1[1]:.0f}"),
        ("maskcli segment -m otsu --jobs 2", f"{m2[0]:.1f}", f"{m2[1]:.0f}"),
        (f"maskcli segment -m otsu --jobs 2, {len(paths) * 10} images", f"{m2_big[0]:.1f}", f"{m2_big[1]:.0f}"),
    ]
    ratios = [
        ("maskcli --jobs 1 / floor (1 process)", m1[0] / floor1, 0.85),
        ("maskcli --jobs 1 / naive", m1[0] / naive, 2.5),
        ("maskcli --jobs 2 / maskcli --jobs 1", m2[0] / m1[0], 1.8),
        ("maskcli --jobs 2 / floor (2 processes)", m2[0] / floor2, None),
        (f"peak MiB, {len(paths) * 10} vs {len(paths)} images", m2_big[1] / m2[1], None),
    ]
    lines = [f"# Otsu masks, {len(paths)} one-megapixel JPEGs ({os.cpu_count()} cores)", "",
             "| run | img/s | peak RSS MiB |", "| --- | ---: | ---: |"]
    lines += [f"| {name} | {rate} | {rss} |" for name, rate, rss in rows]
    lines += ["", "| ratio | value | target |", "| --- | ---: | ---: |"]
    lines += [f"| {name} | {value:.2f} | {'≥ %.2f' % target if target else ''} |" for name, value, target in ratios]
    write_report(lines, args.out)


if __name__ == "__main__":
    main()
