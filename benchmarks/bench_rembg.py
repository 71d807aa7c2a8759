"""maskcli against rembg, the same U²-Net-P weights on the same photos: masks, RGBA cut-outs and one image.

rembg runs from its own virtual environment, made here on first use (``python3 -m venv``, then ``pip install
'rembg[cli]' onnxruntime`` from the package registry; ``--venv`` keeps it between runs) and works offline:
``U2NET_HOME`` points at a temporary folder holding a link to ``../shared/weights/u2netp.onnx``, the file rembg
itself downloads. maskcli runs as installed here, with its defaults plus ``--model u2netp --weights`` that file.

For each load (``quiet``, then ``busy``: one CPU-bound process started by this script for the whole round and
stopped after it), and each repeat, the tools alternate (rembg, maskcli; the order flips every repeat) on:

* **masks**: ``rembg p -m u2netp -om IN OUT`` against ``maskcli segment IN -o OUT --model u2netp``;
* **cut-outs**: ``rembg p -m u2netp IN OUT`` against ``maskcli apply IN -m cnn --model u2netp -o OUT``;
* **one image**, process start to file written (``--latency`` runs): ``rembg i -m u2netp`` against
  ``maskcli apply`` of that one file (a cut-out, what ``rembg i`` makes).

Each run records wall time, CPU time (user + system) of the process tree, its peak resident memory (the
sum over the tree, sampled every 20 ms), and the mean IoU of the masks (the cut-outs' alpha) against the ground
truth at 0.5. The report gives medians with the range, and the speed ratio of the medians.

    python benchmarks/bench_rembg.py --count 100 --repeats 3 --venv /tmp/rembg-venv --out benchmarks/results/rembg.md
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import cv2
import numpy as np

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(HERE))

from common import run_with_peak, write_report  # noqa: E402

SHARED = REPO.parent / "shared"
HORSES = SHARED / "data" / "weizmann_horses"
U2NETP = SHARED / "weights" / "u2netp.onnx"
MASKCLI = [sys.executable, "-m", "maskcli"]


def rembg_venv(folder: Path) -> Path:
    """The rembg command of a virtual environment in ``folder``, made (and rembg installed) when missing."""
    command = folder / "bin" / "rembg"
    if not command.exists():
        subprocess.run([sys.executable if sys.prefix == sys.base_prefix else "python3", "-m", "venv", str(folder)],
                       check=True)
        subprocess.run([str(folder / "bin" / "pip"), "install", "-q", "rembg[cli]", "onnxruntime"], check=True)
    return command


def rembg_version(folder: Path) -> str:
    done = subprocess.run([str(folder / "bin" / "python"), "-c",
                           "import importlib.metadata as m; print(m.version('rembg'), m.version('onnxruntime'))"],
                          capture_output=True, text=True)
    rembg, _, ort = done.stdout.strip().partition(" ")
    return f"rembg {rembg} (onnxruntime {ort})"


def measure(command: list[str], env: dict[str, str]) -> dict[str, float]:
    """Run ``command``; its wall seconds, CPU seconds (user + system of the tree) and peak tree memory (MiB)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    status, stderr, wall, peak = run_with_peak(command, env, interval=0.02)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if status != 0:
        raise RuntimeError(f"{' '.join(command)} failed ({status}): {stderr.decode()[-2000:]}")
    return {"wall": wall, "user": after.ru_utime - before.ru_utime, "sys": after.ru_stime - before.ru_stime,
            "peak_mib": peak / 2**20}


def mean_iou(folder: Path, names: list[str]) -> float:
    """Mean IoU at 0.5 of the masks in ``folder`` (grey, or the alpha of RGBA) against the ground truth."""
    scores = []
    for name in names:
        out = cv2.imread(str(folder / (Path(name).stem + ".png")), cv2.IMREAD_UNCHANGED)
        mask = out[:, :, 3] if out.ndim == 3 and out.shape[2] == 4 else out if out.ndim == 2 else out[:, :, 0]
        truth = cv2.imread(str(HORSES / "masks" / name), cv2.IMREAD_GRAYSCALE) > 127
        pred = mask.astype(np.float32) / np.iinfo(mask.dtype).max >= 0.5
        scores.append((pred & truth).sum() / max((pred | truth).sum(), 1))
    return float(np.mean(scores))


def commands(task: str, tool: str, rembg: Path, source: Path, out: Path) -> list[str]:
    if tool == "rembg":
        if task == "latency":
            return [str(rembg), "i", "-m", "u2netp", str(source), str(out / "one.png")]
        return [str(rembg), "p", "-m", "u2netp", *(["-om"] if task == "masks" else []), str(source), str(out)]
    model = ["--model", "u2netp", "--weights", str(U2NETP), "--overwrite"]
    if task == "masks":
        return [*MASKCLI, "segment", str(source), "-o", str(out), *model]
    return [*MASKCLI, "apply", str(source), "-m", "cnn", "-o", str(out), *model]


def busy_process() -> subprocess.Popen[bytes]:
    """One CPU-bound process (a Python busy loop) for the ``busy`` rounds."""
    return subprocess.Popen([sys.executable, "-c", "while True: pass"])


def summary(runs: list[dict[str, float]], key: str, digits: int = 1) -> str:
    values = [run[key] for run in runs]
    return f"{statistics.median(values):.{digits}f} ({min(values):.{digits}f}–{max(values):.{digits}f}, n={len(values)})"


def report(results: dict[tuple[str, str, str], list[dict[str, float]]], loads: list[str], tasks: list[str],
           rembg: str, count: int, args: argparse.Namespace) -> list[str]:
    """The Markdown tables: one per load, a row per task and measure, medians with their range."""
    lines = ["# maskcli against rembg: U²-Net-P on the CPU", "",
             f"{platform.machine()}, {os.cpu_count()} cores ({len(os.sched_getaffinity(0))} usable), "
             f"{rembg} against maskcli with its defaults. {count} photos of "
             f"weizmann_horses (198×116 to 468×360), the same `u2netp.onnx`. Medians of interleaved runs "
             f"(range and number of runs in brackets). Command: `python benchmarks/bench_rembg.py --count {args.count} --repeats "
             f"{args.repeats} --latency {args.latency} --loads {args.loads}`.", ""]
    for load in loads:
        title = "quiet machine" if load == "quiet" else "one CPU-bound process running beside both tools"
        lines += [f"## {title}", "", "| task | rembg | maskcli | maskcli / rembg speed |", "| --- | ---: | ---: | ---: |"]
        for task in [t for t in tasks if t != "latency"]:
            if (load, task, "rembg") not in results or (load, task, "maskcli") not in results:
                continue
            rembg_runs, ours = results[(load, task, "rembg")], results[(load, task, "maskcli")]
            ratio = statistics.median(r["wall"] for r in rembg_runs) / statistics.median(r["wall"] for r in ours)
            label = "masks (`-om` / `segment`)" if task == "masks" else "RGBA cut-outs (`p` / `apply`)"
            lines += [f"| {label}: wall s | {summary(rembg_runs, 'wall')} | {summary(ours, 'wall')} | "
                      f"**{ratio:.2f}×** |",
                      f"| {task}: CPU user + sys s | {summary(rembg_runs, 'user')} + {summary(rembg_runs, 'sys')} | "
                      f"{summary(ours, 'user')} + {summary(ours, 'sys')} | |",
                      f"| {task}: peak memory of the process tree, MiB | {summary(rembg_runs, 'peak_mib', 0)} | "
                      f"{summary(ours, 'peak_mib', 0)} | |",
                      f"| {task}: mean IoU against the truth | {summary(rembg_runs, 'iou', 4)} | "
                      f"{summary(ours, 'iou', 4)} | |"]
        if "latency" in tasks and (load, "latency", "rembg") in results and (load, "latency", "maskcli") in results:
            rembg_runs, ours = results[(load, "latency", "rembg")], results[(load, "latency", "maskcli")]
            ratio = statistics.median(r["wall"] for r in rembg_runs) / statistics.median(r["wall"] for r in ours)
            lines.append(f"| one image, process start to file (`rembg i` / `apply`): s | {summary(rembg_runs, 'wall', 2)} "
                         f"| {summary(ours, 'wall', 2)} | **{ratio:.2f}×** |")
        lines.append("")
    return lines


def from_log(path: Path) -> dict[tuple[str, str, str], list[dict[str, float]]]:
    """The runs recorded in the progress lines a run prints on stderr (``LOAD TASK TOOL {...}`` and
    ``LOAD latency TOOL SECONDS``), to report a run that was stopped early."""
    import ast

    results: dict[tuple[str, str, str], list[dict[str, float]]] = {}
    for line in path.read_text().splitlines():
        parts = line.split(" ", 3)
        if len(parts) == 4 and parts[0] in ("quiet", "busy"):
            load, task, tool, value = parts
            run = ast.literal_eval(value) if value.startswith("{") else {"wall": float(value)}
            results.setdefault((load, task, tool), []).append(run)
    return results


def main() -> None:
    # A stopped run (kill, Ctrl-C) still stops its background process and removes its temporary folder.
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=100, help="horse photos per batch run")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--latency", type=int, default=5, help="one-image runs per tool")
    parser.add_argument("--loads", default="quiet,busy")
    parser.add_argument("--tasks", default="masks,cutouts,latency")
    parser.add_argument("--venv", type=Path, help="rembg's virtual environment (made when missing; default: a "
                                                  "temporary one)")
    parser.add_argument("--out", type=Path)
    parser.add_argument("--from-log", type=Path, help="report the runs in this saved stderr of an earlier run")
    args = parser.parse_args()
    if not (HORSES.is_dir() and U2NETP.is_file()):
        sys.exit(f"needs {HORSES} and {U2NETP} beside the repository")
    tasks, loads = args.tasks.split(","), args.loads.split(",")
    if args.from_log:
        results = from_log(args.from_log)
        loads = [load for load in loads if any(key[0] == load for key in results)]
        venv = args.venv or Path(sys.prefix)
        write_report(report(results, loads, tasks, rembg_version(venv), args.count, args), args.out)
        return
    with tempfile.TemporaryDirectory(prefix="bench-rembg-") as tmp:
        root = Path(tmp)
        venv = args.venv or root / "venv"
        rembg = rembg_venv(venv)
        home = root / "u2net"
        home.mkdir()
        (home / "u2netp.onnx").symlink_to(U2NETP)
        env = {**os.environ, "U2NET_HOME": str(home), "MASKCLI_OFFLINE": "1"}
        env.pop("OMP_NUM_THREADS", None)  # both tools choose their own threads
        source = root / "in"
        source.mkdir()
        names = sorted(p.name for p in (HORSES / "images").iterdir())[: args.count]
        for name in names:
            shutil.copy(HORSES / "images" / name, source / name)
        one = root / "one"
        one.mkdir()
        shutil.copy(source / names[0], one / names[0])
        results: dict[tuple[str, str, str], list[dict[str, float]]] = {}
        for load in loads:
            background = busy_process() if load == "busy" else None
            try:
                for repeat in range(args.repeats):
                    tools = ("rembg", "maskcli") if repeat % 2 == 0 else ("maskcli", "rembg")
                    for task in [t for t in tasks if t != "latency"]:
                        for tool in tools:
                            out = root / "out" / f"{tool}-{task}"
                            shutil.rmtree(out, ignore_errors=True)
                            out.mkdir(parents=True)
                            run = measure(commands(task, tool, rembg, source, out), env)
                            run["iou"] = mean_iou(out, names)
                            results.setdefault((load, task, tool), []).append(run)
                            print(load, task, tool, {k: round(v, 3) for k, v in run.items()}, file=sys.stderr)
                if "latency" in tasks:
                    for attempt in range(args.latency):
                        for tool in ("rembg", "maskcli") if attempt % 2 == 0 else ("maskcli", "rembg"):
                            out = root / "out" / f"{tool}-one"
                            shutil.rmtree(out, ignore_errors=True)
                            out.mkdir(parents=True)
                            run = measure(commands("latency", tool, rembg, one / names[0] if tool == "rembg"
                                                   else one, out), env)
                            results.setdefault((load, "latency", tool), []).append(run)
                            print(load, "latency", tool, round(run["wall"], 3), file=sys.stderr)
            finally:
                if background is not None:
                    background.kill()
                    background.wait()
    write_report(report(results, loads, tasks, rembg_version(venv), len(names), args), args.out)


if __name__ == "__main__":
    main()
