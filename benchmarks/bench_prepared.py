"""The CPU graphs onnxruntime runs for U²-Net-P: the published file, maskcli's prepared copy, a fine-tuned checkpoint's
export, and the torch path of that checkpoint.

A checkpoint is written as ``maskcli train`` writes it (format, meta, state dict), holding the bundled weights at
320², so its masks can be compared with the published graph's; its speed depends on the graph, not on the values.
For each horse photo and each round, the four run one after another (the order rotates each round) through
:class:`maskcli.cnn.infer.Segmenter` on one thread, exactly as ``maskcli segment`` runs them; the figure is the
median CPU time of that thread per image (pre-processing, model, resize back), so a busy machine slows them alike.
Masks are compared by IoU at 0.5 with the published graph's.

    python -m benchmarks.bench_prepared --count 20 --rounds 3 --out benchmarks/results/prepared.md
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

from benchmarks.common import write_report

HERE = Path(__file__).resolve().parent

REPO = HERE.parent
HORSES = REPO.parent / "shared" / "data" / "weizmann_horses"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=20, help="horse photos")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    if not HORSES.is_dir():
        sys.exit(f"needs {HORSES} beside the repository")
    with tempfile.TemporaryDirectory(prefix="bench-prepared-") as home:
        os.environ["MASKCLI_HOME"] = home
        write_report(measure(args), args.out)


def measure(args: argparse.Namespace) -> list[str]:
    from maskcli.cnn import device, prepare, specs, weights
    from maskcli.cnn.infer import ModelCache
    from maskcli.cnn.loading import build_model
    from maskcli.cnn.weights import CHECKPOINT_FORMAT, save_checkpoint

    spec, plan = specs.get("u2netp"), device.resolve("cpu")
    published = weights.resolve(spec)
    checkpoint = Path(os.environ["MASKCLI_HOME"]) / "tuned.pt"
    meta = {"base_model": spec.name, "builder": spec.builder, "kind": spec.kind, "input_size": spec.input_size,
            "mean": list(spec.mean), "std": list(spec.std)}
    save_checkpoint(checkpoint, {"format": CHECKPOINT_FORMAT, "meta": meta,
                                 "model": build_model(spec, published).state_dict()})
    ways = {}
    models = ModelCache()
    for label, path, engine in (("published graph", published, "onnxruntime"),
                                ("prepared graph (the default)", published, "auto"),
                                ("fine-tuned checkpoint, exported (the default)", checkpoint, "auto"),
                                ("fine-tuned checkpoint, torch", checkpoint, "torch")):
        if label.startswith("published"):
            run_path, run_spec = published, spec
        else:
            run_path, run_spec = prepare.runnable(spec, path, plan, engine)
        seg = models.segmenter(run_spec, run_path, plan, (), "torch" if engine == "torch" else "onnxruntime")
        ways[label] = (seg, Path(run_path).name)
    device.limit_threads(1)
    import torch

    torch.set_num_threads(1)
    names = sorted(os.listdir(HORSES / "images"))[:: 5][: args.count]
    images = [cv2.cvtColor(cv2.imread(str(HORSES / "images" / n)), cv2.COLOR_BGR2RGB) for n in names]
    seconds: dict[str, list[float]] = {label: [] for label in ways}
    masks: dict[str, list[np.ndarray]] = {label: [] for label in ways}
    labels = list(ways)
    for round_ in range(args.rounds):
        order = labels[round_ % len(labels):] + labels[: round_ % len(labels)]
        for image in images:
            for label in order:
                seg = ways[label][0]
                started = time.thread_time()
                (mask,) = seg._map([image], full_size=True)  # this thread, one image: no worker pool
                seconds[label].append(time.thread_time() - started)
                if round_ == 0:
                    masks[label].append(mask)
    reference = masks[labels[0]]
    base = statistics.median(seconds[labels[1]])
    lines = ["# U²-Net-P's CPU graphs: published, prepared, a fine-tuned checkpoint's export", "",
             f"{platform.machine()}, {os.cpu_count()} cores, one thread per image; {len(images)} weizmann_horses "
             f"photos × {args.rounds} rounds, interleaved. CPU seconds of the running thread per image "
             f"(pre-processing, model, resize back), medians. Command: "
             f"`python -m benchmarks.bench_prepared --count {args.count} --rounds {args.rounds}`.", "",
             "| graph | file | CPU s / image | against the prepared bundled graph | min IoU against the published "
             "graph's masks |", "| --- | --- | ---: | ---: | ---: |"]
    for label in labels:
        value = statistics.median(seconds[label])
        ious = [float(((a >= 0.5) & (b >= 0.5)).sum() / max(((a >= 0.5) | (b >= 0.5)).sum(), 1))
                for a, b in zip(masks[label], reference)]
        lines.append(f"| {label} | `{ways[label][1][:16]}` | {value:.3f} | {value / base:.2f}× | {min(ious):.4f} |")
    return lines


if __name__ == "__main__":
    main()
