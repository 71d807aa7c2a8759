"""Classical methods at the codec floor: masks for a folder of one-megapixel JPEGs, side by side in one run.

Programs, all on the same files, run as a user runs them (a fresh process each, start-up included), interleaved:
every round runs each program once, in an order that rotates from round to round, and each row is the median of
the rounds, so a busy machine slows all rows alike and the ratios stay meaningful.

* **floor**: the least any tool must do, as a plain program: OpenCV decodes each JPEG as grey, thresholds it at a
  fixed level and writes a PNG mask, in a loop (``floor 2``: the files split over 2 such processes at once);
* **naive**: what a one-off script does: Pillow + scikit-image defaults (open, grey, ``threshold_otsu``, save);
* **maskcli**: ``maskcli segment DIR -o OUT -m METHOD --jobs N`` (and with no ``--jobs``: the default).

Targets (issue 12): otsu and fixed ``--jobs 1`` ≥ 0.85 × floor; canny ≥ 0.6 × floor; the default ``--jobs``
never slower than the better of ``--jobs 1`` and ``--jobs`` = the number of cores. It also reports the peak memory
of the largest maskcli process for the otsu rows.

    python -m benchmarks.bench_segment --count 200 --rounds 5 --out benchmarks/results/segment.md
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
from pathlib import Path

from benchmarks.common import scratch_folder, write_report
from benchmarks.synth import make_jpegs

HERE = Path(__file__).resolve().parent


FLOOR = """
import os, sys, cv2
from pathlib import Path
cv2.setNumThreads(1)
out = sys.argv[1]
for path in sys.argv[2:]:
    grey = cv2.imread(path, cv2.IMREAD_GRAYSCALE)
    _, mask = cv2.threshold(grey, 127, 255, cv2.THRESH_BINARY)
    cv2.imwrite(os.path.join(out, Path(path).stem + ".png"), mask)
"""

NAIVE = """
import os, sys
import numpy as np
from pathlib import Path
from PIL import Image
from skimage.filters import threshold_otsu
out = sys.argv[1]
for path in sys.argv[2:]:
    grey = np.asarray(Image.open(path).convert("L"))
    Image.fromarray(grey > threshold_otsu(grey)).save(os.path.join(out, Path(path).stem + ".png"))
"""


def timed(commands: list[list[str]]) -> tuple[float, float]:
    """Seconds for ``commands`` run at once (each a process), and the largest peak RSS among them (MiB)."""
    probe = ("import json, resource, subprocess, sys, time\n"
             "commands = json.loads(sys.argv[1])\n"
             "t = time.perf_counter()\n"
             "running = [subprocess.Popen(c) for c in commands]\n"
             "codes = [p.wait() for p in running]\n"
             "print(time.perf_counter() - t, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, max(codes))\n")
    import json

    done = subprocess.run([sys.executable, "-c", probe, json.dumps(commands)], capture_output=True, text=True,
                          check=True)
    seconds, rss_kib, code = done.stdout.split()
    if code != "0":
        raise SystemExit(f"a benchmarked program exited {code}: {done.stderr}")
    return float(seconds), int(rss_kib) / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--count", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=5, help="interleaved rounds; rows are medians")
    parser.add_argument("--work", type=Path, default=None,
                        help="scratch folder, kept for the next run (default: a temp folder, removed at the end)")
    parser.add_argument("--out", type=Path, default=None, help="write the Markdown table here")
    parser.add_argument("--programs", default="", help="run only the rows whose names contain one of these "
                        "comma-separated words (e.g. 'floor,otsu' on a many-core machine); ratios need both rows")
    args = parser.parse_args()

    from maskcli.cores import cpu_count

    cores = cpu_count()
    work = scratch_folder(args.work, "maskcli-bench-")
    images = work / "images"
    if len(list(images.glob("*.jpg"))) != args.count:
        shutil.rmtree(images, ignore_errors=True)
        make_jpegs(images, args.count, seed=0)
    paths = sorted(str(p) for p in images.glob("*.jpg"))
    out = work / "out"

    def maskcli(method: str, jobs: int | None) -> list[list[str]]:
        jobs_option = [] if jobs is None else ["--jobs", str(jobs)]
        return [[sys.executable, "-m", "maskcli", "segment", str(images), "-o", str(out), "-m", method,
                 *jobs_option, "--quiet"]]

    def split(script: str, processes: int) -> list[list[str]]:
        return [[sys.executable, "-c", script, str(out), *paths[i::processes]] for i in range(processes)]

    programs: dict[str, list[list[str]]] = {
        "floor, 1 process": split(FLOOR, 1),
        f"floor, {cores} processes": split(FLOOR, cores),
        "naive (Pillow + skimage threshold_otsu), 1 process": split(NAIVE, 1),
        "maskcli -m otsu --jobs 1": maskcli("otsu", 1),
        "maskcli -m fixed --jobs 1": maskcli("fixed", 1),
        "maskcli -m canny --jobs 1": maskcli("canny", 1),
        f"maskcli -m otsu --jobs {cores}": maskcli("otsu", cores),
        "maskcli -m otsu (default --jobs)": maskcli("otsu", None),
    }
    wanted = [word for word in args.programs.split(",") if word]
    programs = {name: command for name, command in programs.items()
                if not wanted or any(word in name for word in wanted)}
    names = list(programs)
    seconds: dict[str, list[float]] = {name: [] for name in names}
    memory: dict[str, float] = {name: 0.0 for name in names}
    for round_ in range(args.rounds):
        order = names[round_ % len(names):] + names[:round_ % len(names)]
        for name in order:
            shutil.rmtree(out, ignore_errors=True)
            out.mkdir(parents=True)
            elapsed, rss = timed(programs[name])
            seconds[name].append(elapsed)
            memory[name] = max(memory[name], rss)
    rate = {name: len(paths) / statistics.median(values) for name, values in seconds.items()}

    floor1, floor_n = "floor, 1 process", f"floor, {cores} processes"
    otsu1, otsu_n, default = "maskcli -m otsu --jobs 1", f"maskcli -m otsu --jobs {cores}", \
        "maskcli -m otsu (default --jobs)"
    naive = "naive (Pillow + skimage threshold_otsu), 1 process"
    wanted_ratios = [
        ("otsu --jobs 1 / floor (1 process)", otsu1, floor1, "≥ 0.85"),
        ("fixed --jobs 1 / floor (1 process)", "maskcli -m fixed --jobs 1", floor1, "≥ 0.85"),
        ("canny --jobs 1 / floor (1 process)", "maskcli -m canny --jobs 1", floor1, "≥ 0.60"),
        (f"otsu default --jobs / best of --jobs 1 and --jobs {cores}", default, (otsu1, otsu_n), "≥ 1.00"),
        (f"otsu --jobs {cores} / --jobs 1", otsu_n, otsu1, "≥ 10" if cores >= 16 else ""),
        (f"otsu --jobs {cores} / floor ({cores} processes)", otsu_n, floor_n, ""),
        ("otsu --jobs 1 / naive", otsu1, naive, ""),
    ]
    ratios = []
    for label, top, bottom, target in wanted_ratios:
        below = bottom if isinstance(bottom, tuple) else (bottom,)
        if top in rate and all(name in rate for name in below):
            ratios.append((label, rate[top] / max(rate[name] for name in below), target))
    lines = [f"# Classical masks at the codec floor: {len(paths)} one-megapixel JPEGs, {cores} cores", "",
             f"Each row: the median of {args.rounds} interleaved rounds; every program is a fresh process "
             "(start-up included).", "",
             "| program | img/s | seconds (median) | peak RSS MiB (largest process) |", "| --- | ---: | ---: | ---: |"]
    lines += [f"| {name} | {rate[name]:.1f} | {statistics.median(seconds[name]):.2f} | {memory[name]:.0f} |"
              for name in names]
    lines += ["", "| ratio | value | target |", "| --- | ---: | ---: |"]
    lines += [f"| {name} | {value:.2f} | {target} |" for name, value, target in ratios]
    chosen = f" --programs '{args.programs}'" if args.programs else ""
    lines += ["", f"    python -m benchmarks.bench_segment --count {args.count} --rounds {args.rounds}{chosen}"]
    write_report(lines, args.out)


if __name__ == "__main__":
    main()
