"""Ray engine benchmark: the local engine against the Ray engine on the same JPEGs, side by side in one run.

Rows, each ``maskcli segment`` as a user runs it, interleaved (local, Ray one node, Ray two nodes, then again):

* **local**: ``--engine local`` (the default; ``--jobs`` = the number of cores);
* **ray, one node**: ``--engine ray --ray-address ADDR``, a running local cluster with every core;
* **ray, two nodes**: the same cores split over two Ray nodes on this machine (half each), so objects and tasks
  cross the node boundary as they would between machines (through the object manager, not shared memory);
* **ray, cold** (Otsu only): ``--engine ray`` with no address: the run starts and stops its own Ray instance.

``--sections tiny`` measures the per-item overhead instead: Otsu on 64×64 PNGs, where the work per item is
next to nothing, so 1 / throughput is what the engine itself costs per item (driver, scheduling, round trips).

Two rates per row: **throughput** (the summary line's img/s: from the first item to the last, what a long batch
sees) and **wall** (the whole command, interpreter start-up and connecting to the cluster included). The ratio the
Ray issue targets (≥ 0.8) is Ray's throughput over the local engine's. The per-stage costs (mean milliseconds per
image of decode, compute, encode and write, from ``--json`` records of the local runs) feed ``docs/scale-out.md``.

    python -m benchmarks.bench_ray --weights ../shared/weights/u2netp.onnx --out benchmarks/results/ray.md
    python -m benchmarks.bench_ray --sections tiny --count 2000 --out benchmarks/results/ray_overhead.md
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

from benchmarks.common import scratch_folder, write_report
from benchmarks.synth import make_discs, make_jpegs

ENV = {**os.environ, "RAY_AUTH_MODE": "disabled", "RAY_USAGE_STATS_ENABLED": "0"}
ENV.pop("RAY_ADDRESS", None)
RATE = re.compile(r"in ([\d.]+) s(?:, ([\d.]+) img/s)?")


def run(folder: Path, out: Path, method: list[str], engine: list[str]) -> dict:
    """One ``maskcli segment`` run: wall seconds, the summary's seconds, and the records."""
    shutil.rmtree(out, ignore_errors=True)
    command = [sys.executable, "-m", "maskcli", "segment", str(folder), "-o", str(out), "--json", *method, *engine]
    start = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, env=ENV)
    wall = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(command)} exited {done.returncode}:\n{done.stderr}")
    records = [json.loads(line) for line in done.stdout.splitlines() if line.strip()]
    summary = RATE.search(done.stderr.strip().splitlines()[-1])
    assert summary, done.stderr
    return {"wall": wall, "seconds": float(summary.group(1)), "records": records}


def stage_costs(records: list[dict]) -> dict[str, float]:
    stages: dict[str, list[float]] = {}
    for record in records:
        for stage, ms in record["timings_ms"].items():
            stages.setdefault(stage, []).append(ms)
    return {stage: statistics.mean(values) for stage, values in stages.items()}


def same_outputs(a: Path, b: Path) -> bool:
    names = sorted(p.name for p in a.iterdir())
    return names == sorted(p.name for p in b.iterdir()) and all(
        (a / name).read_bytes() == (b / name).read_bytes() for name in names)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sections", default="otsu,u2netp", help="comma-separated: otsu, u2netp, tiny")
    parser.add_argument("--count", type=int, default=200)
    parser.add_argument("--cnn-count", type=int, default=None, help="images for u2netp (default: --count)")
    parser.add_argument("--weights", type=Path, default=None, help="u2netp.onnx; without it the CNN rows are skipped")
    parser.add_argument("--repeat", type=int, default=2, help="rounds; each row keeps its best")
    parser.add_argument("--work", type=Path, default=None,
                        help="scratch folder, kept for the next run (default: a temp folder, removed at the end)")
    parser.add_argument("--out", type=Path, default=None, help="write the Markdown report here")
    args = parser.parse_args()

    import ray
    from ray.cluster_utils import Cluster

    cores = len(os.sched_getaffinity(0))
    work = scratch_folder(args.work, "mrb-")
    sections = set(args.sections.split(","))
    images = work / "images"
    methods = {}
    if sections & {"otsu", "u2netp"} and len(list(images.glob("*.jpg"))) != args.count:
        shutil.rmtree(images, ignore_errors=True)
        make_jpegs(images, args.count, seed=0)
    if "otsu" in sections:
        methods["otsu"] = (images, ["-m", "otsu"])
    if "tiny" in sections:
        tiny = work / "tiny"
        if len(list(tiny.glob("*.png"))) != args.count:
            make_discs(tiny, args.count, size=(64, 64))
        methods["otsu, 64×64 PNGs"] = (tiny, ["-m", "otsu"])
    if args.weights and "u2netp" in sections:
        cnn_images = images
        if args.cnn_count and args.cnn_count != args.count:
            cnn_images = work / f"images_{args.cnn_count}"
            cnn_images.mkdir(exist_ok=True)
            for path in sorted(images.glob("*.jpg"))[:args.cnn_count]:
                if not (cnn_images / path.name).exists():
                    (cnn_images / path.name).symlink_to(path)
        methods["u2netp"] = (cnn_images, ["--model", "u2netp", "--weights", str(args.weights.resolve())])

    node = {"include_dashboard": False, "object_store_memory": 1 << 30}
    os.environ.update({k: ENV[k] for k in ("RAY_AUTH_MODE", "RAY_USAGE_STATS_ENABLED")})
    os.environ["RAY_TMPDIR"] = ENV["RAY_TMPDIR"] = str(work)  # Ray notes the latest cluster there, not in /tmp/ray
    (work / "ray").mkdir(exist_ok=True)
    one = Cluster(initialize_head=True, head_node_args={**node, "num_cpus": cores, "temp_dir": str(work / "r1")})
    two = Cluster(initialize_head=True, head_node_args={**node, "num_cpus": max(1, cores // 2),
                                                        "temp_dir": str(work / "r2")})
    two.add_node(**node, num_cpus=max(1, cores - cores // 2))
    engines = {
        "local": ["--engine", "local"],
        "ray, one node": ["--engine", "ray", "--ray-address", one.address],
        "ray, two nodes": ["--engine", "ray", "--ray-address", two.address],
        "ray, cold (starts its own)": ["--engine", "ray"],
    }
    best: dict[tuple[str, str], dict] = {}
    try:
        for _ in range(args.repeat):
            for method, (folder, options) in methods.items():
                for engine, engine_options in engines.items():
                    if "cold" in engine and not method.startswith("otsu"):
                        continue
                    out = work / "out" / method / engine.replace(" ", "_").replace(",", "")
                    result = run(folder, out, options, engine_options)
                    result["out"] = out
                    key = (method, engine)
                    if key not in best or result["seconds"] < best[key]["seconds"]:
                        best[key] = result
                    print(method, engine, f"{len(result['records']) / result['seconds']:.1f} img/s", flush=True)
    finally:
        one.shutdown()
        two.shutdown()
        ray.shutdown()

    load = os.getloadavg()[0]
    lines = [f"# Ray engine vs local engine ({cores} cores, load average {load:.1f} at the end; best of "
             f"{args.repeat} interleaved rounds)", "",
             f"`python -m benchmarks.bench_ray {' '.join(sys.argv[1:])}`", "",
             "| method | engine | images | throughput img/s | wall img/s | ratio to local (throughput) | "
             "outputs equal local |", "| --- | --- | ---: | ---: | ---: | ---: | --- |"]
    for (method, engine), result in best.items():
        count = len(result["records"])
        local = best[(method, "local")]
        ratio = local["seconds"] / result["seconds"]
        lines.append(f"| {method} | {engine} | {count} | {count / result['seconds']:.1f} | "
                     f"{count / result['wall']:.1f} | {ratio:.2f} | "
                     f"{'yes' if same_outputs(result['out'], local['out']) else 'NO'} |")
    lines += ["", "Per-stage cost, mean ms per image (local engine's records):", "",
              "| method | decode | compute | encode | write |", "| --- | ---: | ---: | ---: | ---: |"]
    for method in methods:
        costs = stage_costs(best[(method, "local")]["records"])
        lines.append(f"| {method} | " + " | ".join(f"{costs.get(stage, 0.0):.1f}"
                                                   for stage in ("decode", "compute", "encode", "write")) + " |")
    write_report(lines, args.out)
    if not args.work:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
