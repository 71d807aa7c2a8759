"""What the speed benchmarks share: finding ImageMagick, a scratch folder, and writing a Markdown report."""

from __future__ import annotations

import atexit
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path


def imagemagick(tool: str) -> list[str] | None:
    """The command of a real ImageMagick ``tool`` (``convert``, ``mogrify``), or None when there is none.

    A program of that name that is not ImageMagick does not count. A benchmark installs nothing: without
    ImageMagick one line on stderr says that its column is skipped and how to have it.
    """

    def found() -> list[str] | None:
        for candidate in (["magick", tool], [tool], [f"/usr/bin/{tool}"]):
            if shutil.which(candidate[0]) is None:
                continue
            try:
                version = subprocess.run([*candidate, "-version"], capture_output=True, text=True, timeout=20).stdout
            except (OSError, subprocess.SubprocessError):
                continue
            if "ImageMagick" in version and "Stands in" not in version:
                return candidate
        return None

    command = found()
    if command is None:
        print(f"ImageMagick's {tool} not found: its column is skipped (install ImageMagick, e.g. "
              "`apt-get install imagemagick`, and run again to include it)", file=sys.stderr)
    return command


def scratch_folder(given: Path | None, prefix: str) -> Path:
    """The benchmark's scratch folder: ``given`` (``--work``, kept so that the next run reuses its inputs), or a
    temporary folder removed when the benchmark exits."""
    if given is not None:
        return given
    folder = Path(tempfile.mkdtemp(prefix=prefix))
    atexit.register(shutil.rmtree, folder, True)
    return folder


def write_report(lines: list[str], out: Path | None) -> None:
    """Print the report, and write it to ``out`` when given."""
    text = "\n".join(lines) + "\n"
    print(text)
    if out:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(text)


def peer_venv(name: str, requirements: list[str], folder: Path) -> Path:
    """The Python of a separate virtual environment ``folder/venv-NAME`` holding ``requirements``, made once.

    Peers (rembg ...) run in their own environment so their pinned dependencies never touch maskcli's; a stamp
    file records what was installed, and a changed requirement list rebuilds the environment.
    """
    import venv

    home = folder / f"venv-{name}"
    python = home / ("Scripts/python.exe" if os.name == "nt" else "bin/python")
    stamp = home / "requirements.txt"
    wanted = "\n".join(requirements) + "\n"
    if python.is_file() and stamp.is_file() and stamp.read_text() == wanted:
        return python
    venv.EnvBuilder(with_pip=True, clear=True).create(home)
    subprocess.run([str(python), "-m", "pip", "install", "-q", *requirements], check=True,
                   stdout=sys.stderr)
    stamp.write_text(wanted)
    return python


def tree_rss(root: int) -> int:
    """Bytes resident in ``root`` and all its descendants, from /proc (Linux)."""
    page = os.sysconf("SC_PAGE_SIZE")
    children: dict[int, list[int]] = {}
    rss: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as handle:
                fields = handle.read().rsplit(b")", 1)[1].split()
        except OSError:
            continue
        pid = int(entry)
        children.setdefault(int(fields[1]), []).append(pid)  # fields[1] is the parent's pid
        rss[pid] = int(fields[21]) * page  # resident pages
    total, stack = 0, [root]
    while stack:
        pid = stack.pop()
        total += rss.get(pid, 0)
        stack.extend(children.get(pid, []))
    return total


def run_with_peak(command: list[str], env: dict[str, str] | None = None, interval: float = 0.005
                  ) -> tuple[int, bytes, float, int]:
    """Run ``command`` (stdout discarded); its exit status, stderr, wall seconds and the peak resident bytes of its
    whole process tree, sampled every ``interval`` seconds."""
    start = time.perf_counter()
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    peak = 0
    done = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not done.is_set():
            peak = max(peak, tree_rss(process.pid))
            done.wait(interval)

    sampler = threading.Thread(target=sample)
    sampler.start()
    _, stderr = process.communicate()
    wall = time.perf_counter() - start
    done.set()
    sampler.join()
    return process.returncode, stderr, wall, peak
