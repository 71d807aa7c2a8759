"""maskcli against rembg, the same U²-Net-P weights on the same photos, each installed as its README says.

Each tool runs from its own virtual environment, made here from the package registry as a user would make it:
rembg's with ``pip install 'rembg[cli]' onnxruntime``, maskcli's with the install command of maskcli's README (its
first ``pip install``, run in this clone: no test extras, no other package). ``--venvs FOLDER`` keeps both (in
``FOLDER/rembg`` and ``FOLDER/maskcli``, made when missing), so a run can be repeated at once; without it they are
made in a temporary folder and removed. Both work offline: ``U2NET_HOME`` points at a link to
``../shared/weights/u2netp.onnx``, the file rembg itself downloads, and maskcli is given the same file with
``--weights``. maskcli's cache (``MASKCLI_HOME``) starts empty, and each tool makes one untimed run first, so the
one-time work of a first run (maskcli's prepared graph, the page cache) is out of the figures.

For each load (``quiet``, then ``busy``: one CPU-bound process started by this script for the whole round and
stopped after it), and each repeat, the tools alternate (rembg, maskcli; the order flips every repeat) on:

* **masks**: ``rembg p -m u2netp -om IN OUT`` against ``maskcli segment IN -o OUT --model u2netp``;
* **cut-outs**: ``rembg p -m u2netp IN OUT`` against ``maskcli apply IN -m cnn --model u2netp -o OUT``;
* **one image**, process start to file written (``--latency`` runs): ``rembg i -m u2netp`` against
  ``maskcli apply`` of that one file (a cut-out, what ``rembg i`` makes);
* **demo** (maskcli alone, ``--latency`` runs): the README's first command's CNN step, ``maskcli segment samples/
  -o OUT --method cnn``, on the 7 samples.

Each run records wall time, CPU time (user + system) of the process tree, its peak resident memory (the
sum over the tree, sampled every 20 ms), and the mean IoU of the masks (the cut-outs' alpha) against the ground
truth at 0.5. The report gives medians with the range, and the speed ratio of the medians.

    python -m benchmarks.bench_rembg --count 50 --repeats 3 --latency 5 --venvs /tmp/bench-venvs \
        --out benchmarks/results/rembg.md
"""

from __future__ import annotations

import argparse
import os
import platform
import re
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

from benchmarks.common import run_with_peak, write_report

HERE = Path(__file__).resolve().parent
REPO = HERE.parent


SHARED = REPO.parent / "shared"
HORSES = SHARED / "data" / "weizmann_horses"
U2NETP = SHARED / "weights" / "u2netp.onnx"
SAMPLES = REPO / "samples"


def readme_install() -> list[str]:
    """The arguments of the first ``pip install`` in the README's first shell block (the install a user makes).

    >>> readme_install()[-2:]
    ['-e', '.']
    """
    block = re.search(r"```sh\n(.*?)```", (REPO / "README.md").read_text(encoding="utf-8"), re.S)
    command = block and re.search(r"pip install ([^&;|\n]*)", block.group(1))
    if not command:
        raise SystemExit("the README's first shell block has no `pip install`")
    return [word.strip("'\"") for word in command.group(1).split()]


def tool_venv(folder: Path, tool: str) -> Path:
    """The ``tool`` command of a virtual environment in ``folder``, made when missing: rembg as its README installs
    it, maskcli from this clone with the install command of maskcli's README."""
    command = folder / "bin" / tool
    if not command.exists():
        subprocess.run([sys.executable if sys.prefix == sys.base_prefix else "python3", "-m", "venv", str(folder)],
                       check=True)
        install = ["rembg[cli]", "onnxruntime"] if tool == "rembg" else readme_install()
        print(f"making {folder}: pip install {' '.join(install)}", file=sys.stderr)
        subprocess.run([str(folder / "bin" / "pip"), "install", *install], check=True, cwd=REPO,
                       stdout=subprocess.DEVNULL)
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


def commands(task: str, tool: str, rembg: Path, maskcli: Path, source: Path, out: Path) -> list[str]:
    if tool == "rembg":
        if task == "latency":
            return [str(rembg), "i", "-m", "u2netp", str(source), str(out / "one.png")]
        return [str(rembg), "p", "-m", "u2netp", *(["-om"] if task == "masks" else []), str(source), str(out)]
    if task == "demo":
        return [str(maskcli), "segment", str(SAMPLES), "-o", str(out), "--method", "cnn", "--overwrite"]
    model = ["--model", "u2netp", "--weights", str(U2NETP), "--overwrite"]
    if task == "masks":
        return [str(maskcli), "segment", str(source), "-o", str(out), *model]
    return [str(maskcli), "apply", str(source), "-m", "cnn", "-o", str(out), *model]


def busy_process() -> subprocess.Popen[bytes]:
    """One CPU-bound process (a Python busy loop) for the ``busy`` rounds."""
    return subprocess.Popen([sys.executable, "-c", "while True: pass"])


def summary(runs: list[dict[str, float]], key: str, digits: int = 1) -> str:
    values = [run[key] for run in runs]
    return (f"{statistics.median(values):.{digits}f} "
            f"({min(values):.{digits}f}–{max(values):.{digits}f}, n={len(values)})")


def versions(maskcli: Path, rembg: Path) -> str:
    """What each environment holds: rembg's and maskcli's versions with their inference engines."""
    def ask(command: Path, packages: str) -> str:
        code = ("import importlib.metadata as m\nfor name in " + repr(packages.split()) + ":\n"
                "    try: print(name, m.version(name))\n    except m.PackageNotFoundError: print(name, '-')")
        done = subprocess.run([str(command.parent / "python"), "-c", code], capture_output=True, text=True)
        return ", ".join(done.stdout.split("\n")[:-1])

    return f"rembg side: {ask(rembg, 'rembg onnxruntime')}; maskcli side: {ask(maskcli, 'maskcli onnxruntime torch')}"


def report(results: dict[tuple[str, str, str], list[dict[str, float]]], loads: list[str], tasks: list[str],
           installed: str, count: int, args: argparse.Namespace) -> list[str]:
    """The Markdown tables: one per load, a row per task and measure, medians with their range."""
    def median(load: str, task: str, tool: str, key: str = "wall") -> float:
        return statistics.median(r[key] for r in results[(load, task, tool)])

    lines = ["# maskcli against rembg: U²-Net-P on the CPU", "",
             f"{platform.machine()}, {os.cpu_count()} cores ({len(os.sched_getaffinity(0))} usable). Each tool as its "
             f"README installs it (maskcli: `pip install {' '.join(readme_install())}`), with its defaults: "
             f"{installed}. {count} photos of weizmann_horses (198×116 to 468×360), the same `u2netp.onnx`. "
             f"Medians of interleaved runs (range and number of runs in brackets). Command: `python -m "
             f"benchmarks.bench_rembg --count {args.count} --repeats {args.repeats} --latency {args.latency} "
             f"--loads {args.loads} --tasks {args.tasks}`.", ""]
    for load in loads:
        title = "quiet machine" if load == "quiet" else "one CPU-bound process running beside both tools"
        lines += [f"## {title}", "", "| task | rembg | maskcli | maskcli / rembg speed |",
                  "| --- | ---: | ---: | ---: |"]
        for task in [t for t in tasks if t in ("masks", "cutouts")]:
            if (load, task, "rembg") not in results or (load, task, "maskcli") not in results:
                continue
            rembg_runs, ours = results[(load, task, "rembg")], results[(load, task, "maskcli")]
            ratio = median(load, task, "rembg") / median(load, task, "maskcli")
            memory = median(load, task, "maskcli", "peak_mib") / median(load, task, "rembg", "peak_mib")
            iou = median(load, task, "maskcli", "iou") - median(load, task, "rembg", "iou")
            label = "masks (`-om` / `segment`)" if task == "masks" else "RGBA cut-outs (`p` / `apply`)"
            lines += [f"| {label}: wall s | {summary(rembg_runs, 'wall')} | {summary(ours, 'wall')} | "
                      f"**{ratio:.2f}×** |",
                      f"| {task}: CPU user + sys s | {summary(rembg_runs, 'user')} + {summary(rembg_runs, 'sys')} | "
                      f"{summary(ours, 'user')} + {summary(ours, 'sys')} | |",
                      f"| {task}: peak memory of the process tree, MiB | {summary(rembg_runs, 'peak_mib', 0)} | "
                      f"{summary(ours, 'peak_mib', 0)} | memory {memory:.2f}× rembg's |",
                      f"| {task}: mean IoU against the truth | {summary(rembg_runs, 'iou', 4)} | "
                      f"{summary(ours, 'iou', 4)} | {iou:+.4f} |"]
        if "latency" in tasks and (load, "latency", "rembg") in results and (load, "latency", "maskcli") in results:
            rembg_runs, ours = results[(load, "latency", "rembg")], results[(load, "latency", "maskcli")]
            ratio = median(load, "latency", "rembg") / median(load, "latency", "maskcli")
            lines += [f"| one image, process start to file (`rembg i` / `apply`): s | {summary(rembg_runs, 'wall', 2)} "
                      f"| {summary(ours, 'wall', 2)} | **{ratio:.2f}×** (wall {1 / ratio:.2f}× rembg's) |",
                      f"| one image: CPU user + sys s | {summary(rembg_runs, 'user', 2)} + "
                      f"{summary(rembg_runs, 'sys', 2)} | {summary(ours, 'user', 2)} + {summary(ours, 'sys', 2)} | |",
                      f"| one image: peak memory of the process tree, MiB | {summary(rembg_runs, 'peak_mib', 0)} | "
                      f"{summary(ours, 'peak_mib', 0)} | |"]
        if "demo" in tasks and (load, "demo", "maskcli") in results:
            ours = results[(load, "demo", "maskcli")]
            lines.append(f"| README demo, CNN masks of the 7 samples (`segment samples/ --method cnn`): s | | "
                         f"{summary(ours, 'wall', 2)} | |")
        lines.append("")
    return lines


def from_log(path: Path) -> dict[tuple[str, str, str], list[dict[str, float]]]:
    """The runs recorded in the progress lines a run prints on stderr (``LOAD TASK TOOL {...}``), to report a run
    that was stopped early."""
    import ast

    results: dict[tuple[str, str, str], list[dict[str, float]]] = {}
    for line in path.read_text().splitlines():
        parts = line.split(" ", 3)
        if len(parts) == 4 and parts[0] in ("quiet", "busy"):
            load, task, tool, value = parts
            run = ast.literal_eval(value) if value.startswith("{") else {"wall": float(value)}
            results.setdefault((load, task, tool), []).append(run)
    return results


def run_once(results: dict[tuple[str, str, str], list[dict[str, float]]], key: tuple[str, str, str],
             command: list[str], env: dict[str, str], out: Path, names: list[str] | None) -> None:
    """One measured run into an emptied ``out``, recorded under ``key`` and printed as a progress line."""
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    run = measure(command, env)
    if names:
        run["iou"] = mean_iou(out, names)
    results.setdefault(key, []).append(run)
    print(*key, {k: round(v, 3) for k, v in run.items()}, file=sys.stderr)


def main() -> None:
    # A stopped run (kill, Ctrl-C) still stops its background process and removes its temporary folder.
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=50, help="horse photos per batch run")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--latency", type=int, default=5, help="one-image (and demo) runs per tool")
    parser.add_argument("--loads", default="quiet,busy")
    parser.add_argument("--tasks", default="masks,cutouts,latency,demo")
    parser.add_argument("--venvs", type=Path, help="keep both tools' virtual environments here (FOLDER/rembg, "
                                                   "FOLDER/maskcli; made when missing), to repeat a run at once")
    parser.add_argument("--out", type=Path)
    parser.add_argument("--from-log", type=Path, help="report the runs in this saved stderr of an earlier run "
                                                      "(needs --venvs for the versions)")
    args = parser.parse_args()
    if not (HORSES.is_dir() and U2NETP.is_file()):
        sys.exit(f"needs {HORSES} and {U2NETP} beside the repository")
    tasks, loads = args.tasks.split(","), args.loads.split(",")
    with tempfile.TemporaryDirectory(prefix="bench-rembg-") as tmp:
        root = Path(tmp)
        venvs = args.venvs or root
        rembg, maskcli = tool_venv(venvs / "rembg", "rembg"), tool_venv(venvs / "maskcli", "maskcli")
        installed = versions(maskcli, rembg)
        if args.from_log:
            results = from_log(args.from_log)
            loads = [load for load in loads if any(key[0] == load for key in results)]
            write_report(report(results, loads, tasks, installed, args.count, args), args.out)
            return
        home = root / "u2net"
        home.mkdir()
        (home / "u2netp.onnx").symlink_to(U2NETP)
        env = {**os.environ, "U2NET_HOME": str(home), "MASKCLI_OFFLINE": "1", "MASKCLI_HOME": str(root / "maskcli")}
        env.pop("OMP_NUM_THREADS", None)  # both tools choose their own threads
        source = root / "in"
        source.mkdir()
        names = sorted(p.name for p in (HORSES / "images").iterdir())[: args.count]
        for name in names:
            shutil.copy(HORSES / "images" / name, source / name)
        one = root / "one"
        one.mkdir()
        shutil.copy(source / names[0], one / names[0])
        # A first run of each tool, untimed: maskcli prepares its graph into its cache, both warm the page cache.
        (root / "warm").mkdir()
        for tool in ("rembg", "maskcli"):
            measure(commands("latency", tool, rembg, maskcli, one / names[0] if tool == "rembg" else one,
                             root / "warm"), env)
        results: dict[tuple[str, str, str], list[dict[str, float]]] = {}
        for load in loads:
            background = busy_process() if load == "busy" else None
            try:
                for repeat in range(args.repeats):
                    tools = ("rembg", "maskcli") if repeat % 2 == 0 else ("maskcli", "rembg")
                    for task in [t for t in tasks if t in ("masks", "cutouts")]:
                        for tool in tools:
                            run_once(results, (load, task, tool), commands(task, tool, rembg, maskcli, source,
                                     root / "out" / f"{tool}-{task}"), env, root / "out" / f"{tool}-{task}", names)
                for attempt in range(args.latency):
                    tools = ("rembg", "maskcli") if attempt % 2 == 0 else ("maskcli", "rembg")
                    if "latency" in tasks:
                        for tool in tools:
                            out = root / "out" / f"{tool}-one"
                            run_once(results, (load, "latency", tool), commands(
                                "latency", tool, rembg, maskcli, one / names[0] if tool == "rembg" else one, out),
                                env, out, None)
                    if "demo" in tasks:
                        out = root / "out" / "demo"
                        run_once(results, (load, "demo", "maskcli"),
                                 commands("demo", "maskcli", rembg, maskcli, SAMPLES, out), env, out, None)
            finally:
                if background is not None:
                    background.kill()
                    background.wait()
    write_report(report(results, loads, tasks, installed, len(names), args), args.out)


if __name__ == "__main__":
    main()
