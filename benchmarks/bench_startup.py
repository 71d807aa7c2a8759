"""Start-up benchmark: ``maskcli --help``, ``--version`` and one Otsu mask, against the interpreter's own start.

Each command runs ``--repeats`` times, the commands interleaved round by round so that a busy machine slows them
alike; the figure is the best (minimum) wall time of each, as the floor of what a user waits. The floor is
``python -c pass`` (the interpreter alone); the ratio to it says how much maskcli adds. The target is each
command under 0.5 s.

It also lists the maskcli method modules that ``segment -m otsu`` imports (only the chosen method's should be).

    python -m benchmarks.bench_startup --repeats 5 --out benchmarks/results/startup.md

``--baseline DIR`` also times another checkout of maskcli (e.g. ``git worktree add ../base 61b1f08``), run from
that folder, interleaved with this one.
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.common import write_report

REPO = Path(__file__).resolve().parents[1]
SAMPLE = REPO / "samples" / "coins.png"


def _wall(command: list[str], cwd: Path = REPO) -> float:
    start = time.perf_counter()
    done = subprocess.run(command, capture_output=True, cwd=cwd)
    elapsed = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed: {done.stderr.decode()[-500:]}")
    return elapsed


def _imported_methods(out: Path) -> list[str]:
    code = ("import sys; from maskcli.cli.app import main; code = main(sys.argv[1:]); "
            "print(' '.join(sorted(m for m in sys.modules if m.startswith('maskcli.methods.')))); "
            "sys.exit(code)")
    done = subprocess.run([sys.executable, "-c", code, "segment", str(SAMPLE), "-o", str(out), "-m", "otsu",
                           "--overwrite", "-q"], capture_output=True, cwd=REPO, text=True)
    return done.stdout.split()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--baseline", type=Path, default=None, help="another checkout to time side by side")
    args = parser.parse_args()
    scratch = tempfile.TemporaryDirectory()
    out = Path(scratch.name) / "masks"
    maskcli = [sys.executable, "-m", "maskcli"]
    commands = {
        "python -c pass (the floor)": [sys.executable, "-c", "pass"],
        "maskcli --help": [*maskcli, "--help"],
        "maskcli --version": [*maskcli, "--version"],
        "maskcli segment coins.png -o out -m otsu": [*maskcli, "segment", str(SAMPLE), "-o", str(out), "-m", "otsu",
                                                     "--overwrite", "-q"],
    }
    where = {name: REPO for name in commands}
    if args.baseline is not None:
        for name, command in list(commands.items())[1:]:
            commands[f"{name} (baseline)"] = command
            where[f"{name} (baseline)"] = args.baseline.resolve()
    times: dict[str, list[float]] = {name: [] for name in commands}
    for _ in range(args.repeats):
        for name, command in commands.items():
            times[name].append(_wall(command, where[name]))
    floor = min(times["python -c pass (the floor)"])
    lines = [f"# Start-up, best of {args.repeats} (wall seconds)", "",
             f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, load average "
             f"{os.getloadavg()[0]:.1f} at the end (a shared machine: the best of several runs is the fairest "
             "figure).", "",
             "| command | best s | median s | × the floor | under 0.5 s |", "|---|---|---|---|---|"]
    for name, values in times.items():
        best, median = min(values), sorted(values)[len(values) // 2]
        lines.append(f"| {name} | {best:.3f} | {median:.3f} | {best / floor:.1f} | "
                     f"{'yes' if best < 0.5 else 'no'} |")
    modules = _imported_methods(out)
    lines += ["", f"Method modules imported by `segment -m otsu`: {', '.join(modules) or 'none'}."]
    scratch.cleanup()
    write_report(lines, args.out)


if __name__ == "__main__":
    main()
