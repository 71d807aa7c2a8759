"""``maskcli serve`` against ``rembg s`` under load: the same U²-Net-P weights, cut-outs of the same photos.

Both servers run on this machine, on loopback ports only, each in its own process: maskcli as installed here
(``maskcli serve``, defaults), rembg from its own virtual environment (``--rembg``: its ``rembg`` command, else
one made under ``--work`` with ``pip install 'rembg[cli]' onnxruntime``; ``rembg s --no-ui``), offline:
``U2NET_HOME`` is a temporary folder holding a link to the U²-Net-P file (``--weights``, default
``../shared/weights/u2netp.onnx``), the file rembg itself downloads.

For each number of concurrent clients (1, 4, 16) and each repeat, the servers take turns (the order flips every
repeat), each for ``--duration`` seconds of closed-loop load: every client posts a photo (the samples, in turn)
as a multipart upload, waits for the cut-out, and posts the next. rembg gets ``POST /api/remove`` with
``model=u2netp``; maskcli ``POST /apply?method=cnn`` (a cut-out, what rembg makes), by default with
``set=decontaminate=false``: rembg's cut-out keeps the photo's colours in the soft edge, and so does that one,
so both servers do the same work (``--decontaminate`` measures maskcli's default cut-out, which also estimates
the subject's colour in the edge, at about a third of the model's time again). Each run records the
requests done per second, the median and 99th-percentile latency, the failed requests (any status but 200, or no
answer) and the server's resident memory at the start and the end of the run. A few requests warm each server
up first (rembg loads its model on the first).

    python -m benchmarks.bench_serve --duration 15 --repeats 2 --out benchmarks/results/serve.md
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import platform
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from benchmarks.common import peer_venv, scratch_folder, tree_rss, write_report

HERE = Path(__file__).resolve().parent
REPO = HERE.parent


SHARED = REPO.parent / "shared"
PHOTOS = [REPO / "samples" / name for name in ("astronaut.png", "chelsea.png", "coffee.png")]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextlib.contextmanager
def server(command: list[str], port: int, ready_path: str, env: dict[str, str], log: Path) -> Iterator[int]:
    """Run a server until the block ends (SIGTERM, then kill); yields its pid once ``ready_path`` answers 200."""
    import httpx

    with open(log, "wb") as sink:
        process = subprocess.Popen(command, env=env, stdout=sink, stderr=sink, cwd=REPO)
        try:
            deadline = time.monotonic() + 180
            while True:
                if process.poll() is not None:
                    raise SystemExit(f"{command[0]} ended with {process.returncode}; see {log}")
                with contextlib.suppress(httpx.TransportError):
                    if httpx.get(f"http://127.0.0.1:{port}{ready_path}", timeout=5).status_code == 200:
                        break
                if time.monotonic() > deadline:
                    raise SystemExit(f"{command[0]} was not ready in 180 s; see {log}")
                time.sleep(0.2)
            yield process.pid
        finally:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(10)


class Target:
    """How to ask one server for a cut-out."""

    def __init__(self, name: str, port: int, path: str, field: str, params: dict[str, str], pid: int) -> None:
        self.name, self.url, self.path, self.field, self.params, self.pid = (
            name, f"http://127.0.0.1:{port}", path, field, params, pid)

    async def post(self, client, photo: tuple[str, bytes]) -> int:
        if self.field == "file":  # rembg reads its options as form fields
            answer = await client.post(self.path, files={self.field: photo}, data=self.params)
        else:
            answer = await client.post(self.path, files={self.field: photo}, params=self.params)
        return answer.status_code


async def load(target: Target, clients: int, duration: float, photos: list[tuple[str, bytes]]) -> dict:
    """``clients`` closed loops for ``duration`` seconds: latencies, failures, requests per second."""
    import httpx

    latencies: list[float] = []
    failures = 0
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(base_url=target.url, timeout=120, limits=limits) as client:
        start = time.perf_counter()
        stop = start + duration

        async def loop(index: int) -> None:
            nonlocal failures
            turn = index
            while time.perf_counter() < stop:
                sent = time.perf_counter()
                try:
                    status = await target.post(client, photos[turn % len(photos)])
                except httpx.HTTPError:
                    status = 0
                if status == 200:
                    latencies.append(time.perf_counter() - sent)
                else:
                    failures += 1
                turn += 1

        rss_start = tree_rss(target.pid)
        await asyncio.gather(*(loop(index) for index in range(clients)))
        elapsed = time.perf_counter() - start
    ordered = sorted(latencies)
    p99 = ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))] if ordered else float("nan")
    return {"rate": len(latencies) / elapsed, "p50": statistics.median(ordered) if ordered else float("nan"),
            "p99": p99, "failures": failures, "done": len(latencies), "rss_start": rss_start,
            "rss_end": tree_rss(target.pid)}


def rembg_command(given: str | None, work: Path) -> list[str]:
    if given:
        return [given]
    python = peer_venv("rembg", ["rembg[cli]", "onnxruntime"], work)
    return [str(python.parent / "rembg")]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=60.0, help="seconds of load per run (default 60)")
    parser.add_argument("--clients", default="1,4,16", help="concurrent clients per level, comma-separated")
    parser.add_argument("--repeats", type=int, default=1, help="runs per server and level, alternating")
    parser.add_argument("--rembg", help="the rembg command (default: one installed under --work)")
    parser.add_argument("--weights", type=Path, default=SHARED / "weights" / "u2netp.onnx",
                        help="the U²-Net-P ONNX file both servers use")
    parser.add_argument("--decontaminate", action="store_true",
                        help="maskcli's default cut-out (edge colours estimated), not rembg's plain one")
    parser.add_argument("--work", type=Path, help="scratch folder (kept: rembg's environment is reused)")
    parser.add_argument("--out", type=Path, help="write the Markdown report here")
    args = parser.parse_args()
    if not args.weights.is_file():
        raise SystemExit(f"no U²-Net-P weights at {args.weights}")
    levels = [int(part) for part in args.clients.split(",")]
    work = scratch_folder(args.work, "bench-serve-")
    rembg = rembg_command(args.rembg, work)
    home = Path(tempfile.mkdtemp(prefix="u2net-home-", dir=work))
    (home / "u2netp.onnx").symlink_to(args.weights.resolve())
    photos = [(path.name, path.read_bytes()) for path in PHOTOS]

    env = {**os.environ, "U2NET_HOME": str(home), "MASKCLI_OFFLINE": "1",
           "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}
    ports = {"rembg": free_port(), "maskcli": free_port()}
    commands = {
        "rembg": ([*rembg, "s", "--host", "127.0.0.1", "--port", str(ports["rembg"]), "--no-ui",
                   "--log_level", "warning"], "/api"),
        "maskcli": ([sys.executable, "-m", "maskcli", "serve", "--port", str(ports["maskcli"])], "/health"),
    }
    maskcli_params = {"method": "cnn"} if args.decontaminate else {"method": "cnn", "set": "decontaminate=false"}
    results: dict[tuple[str, int], list[dict]] = {}
    with contextlib.ExitStack() as stack:
        targets = {}
        for name, (command, ready) in commands.items():
            pid = stack.enter_context(server(command, ports[name], ready, env, work / f"{name}.log"))
            targets[name] = (Target(name, ports[name], "/api/remove", "file", {"model": "u2netp"}, pid)
                             if name == "rembg" else
                             Target(name, ports[name], "/apply", "image", maskcli_params, pid))
        for target in targets.values():  # warm-up: models loaded, threads started
            asyncio.run(load(target, 2, 3.0, photos))
        for clients in levels:
            for repeat in range(args.repeats):
                order = ["rembg", "maskcli"] if repeat % 2 == 0 else ["maskcli", "rembg"]
                for name in order:
                    run = asyncio.run(load(targets[name], clients, args.duration, photos))
                    results.setdefault((name, clients), []).append(run)
                    print(f"{name:8} clients={clients:<3} {run['rate']:.2f} req/s  p50 {run['p50'] * 1000:.0f} ms  "
                          f"p99 {run['p99'] * 1000:.0f} ms  failed {run['failures']}  "
                          f"rss {run['rss_start'] / 2**20:.0f}->{run['rss_end'] / 2**20:.0f} MB", file=sys.stderr)
    shutil.rmtree(home, ignore_errors=True)
    write_report(report(results, levels, args), args.out)


def report(results: dict[tuple[str, int], list[dict]], levels: list[int], args: argparse.Namespace) -> list[str]:
    def median(name: str, clients: int, key: str) -> float:
        return statistics.median(run[key] for run in results[(name, clients)])

    lines = [
        "# maskcli serve against rembg s",
        "",
        f"Cut-outs with U²-Net-P of {', '.join(p.name for p in PHOTOS)} (in turn), closed-loop clients on loopback,",
        (f"maskcli {'with' if args.decontaminate else 'without'} edge decontamination; "
         f"{args.duration:g} s per run, {args.repeats} run(s) per server and level, the servers taking turns (order"),
        (f"flipped every repeat). Medians over the runs. {platform.processor() or platform.machine()}, "
         f"{os.cpu_count()} cores, Python {platform.python_version()}. The machine was shared with other work "
         "while this ran: absolute figures are noisy, compare the servers within a level."),
        "",
        "| clients | server | req/s | p50 ms | p99 ms | failed | RSS start → end MB |",
        "|---:|---|---:|---:|---:|---:|---|",
    ]
    for clients in levels:
        for name in ("rembg", "maskcli"):
            runs = results[(name, clients)]
            rss = ", ".join(f"{run['rss_start'] / 2**20:.0f} → {run['rss_end'] / 2**20:.0f}" for run in runs)
            lines.append(f"| {clients} | {name} | {median(name, clients, 'rate'):.2f} | "
                         f"{median(name, clients, 'p50') * 1000:.0f} | {median(name, clients, 'p99') * 1000:.0f} | "
                         f"{sum(run['failures'] for run in runs)} | {rss} |")
    lines += ["", "| clients | throughput maskcli / rembg | p99 maskcli / rembg |", "|---:|---:|---:|"]
    for clients in levels:
        rate = median("maskcli", clients, "rate") / median("rembg", clients, "rate")
        p99 = median("maskcli", clients, "p99") / median("rembg", clients, "p99")
        lines.append(f"| {clients} | {rate:.2f}× | {p99:.2f}× |")
    command = "python -m benchmarks.bench_serve " + " ".join(
        f"--{key} {value}" for key, value in (("duration", f"{args.duration:g}"), ("clients", args.clients),
                                              ("repeats", args.repeats))
    ) + (" --decontaminate" if args.decontaminate else "")
    lines += ["", f"Command: `{command}`"]
    return lines


if __name__ == "__main__":
    main()
