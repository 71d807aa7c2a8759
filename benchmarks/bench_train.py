"""Fine-tuning benchmark: ``maskcli train`` on the shared evaluation sets, as a user would run it.

Two recipes. ``--recipe defaults`` (the default) runs exactly what a new user types, with no flag but the budget::

    maskcli train IMAGES MASKS -o model.pt --time 15m

on a fixed random split of each set (seed 0): IMAGES/MASKS hold the training pairs (``maskcli train`` holds out its
own validation share of them, as it does for any user), and the checkpoint is then scored on the held-out pairs,
which training never saw, beside the pretrained model on the same pairs. The table (held-out IoU, minutes,
epochs, why the run stopped, the settings the run measured from the data) goes to ``--out``
(``benchmarks/results/train_defaults.md``)::

    python -m benchmarks.bench_train --time 15m --out benchmarks/results/train_defaults.md

``--recipe tuned`` runs the flags chosen per set (below, ``RUNS``):

For each set, a fixed random split (seed 0) is linked into a scratch folder, ``maskcli train`` runs on it as a
subprocess with ``--json``, and the report gives the validation score of the starting (pretrained) model and of the
fine-tuned one, the epochs, the wall-clock and CPU time, and the measured training time per image. A second
section times one training step (forward, backward, update) per image against one inference forward pass per
image, interleaved, as a ratio, at the training crop and at the full input.

Run::

    python -m benchmarks.bench_train --sets fluo_nuclei,weizmann_horses,isbi2012_em --out benchmarks/results/train.md

The weights come from ``$MASKCLI_HOME/models`` (or ``--weights``: the U²-Net-P ONNX file).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.common import write_report

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"

#: Per set: (training pairs, validation pairs, extra ``maskcli train`` flags, target).
RUNS = {
    "fluo_nuclei": (20, 8, ["--flips", "hv", "--size", "448", "--epochs", "40", "--patience", "8"],
                    "val IoU >= 0.80"),
    "weizmann_horses": (80, 20, ["--crop", "320", "--lr", "3e-5", "--epochs", "2", "--patience", "2"],
                        "val IoU above the pretrained model's"),
    "isbi2012_em": (20, 10, ["--flips", "hv", "--both-classes", "--size", "512", "--batch-size", "2", "--epochs",
                             "45", "--patience", "15"], "val IoU (both classes) >= 0.75"),
}


def _split(name: str, train: int, val: int, root: Path) -> None:
    images = sorted((DATA / name / "images").iterdir())
    random.Random(0).shuffle(images)
    for role, chosen in (("train", images[:train]), ("val", images[train:train + val])):
        for image in chosen:
            for kind, path in (("images", image), ("masks", DATA / name / "masks" / f"{image.stem}.png")):
                folder = root / role / kind
                folder.mkdir(parents=True, exist_ok=True)
                (folder / path.name).symlink_to(path)


def _train(name: str, flags: list[str], weights: str | None) -> dict:
    train, val, extra, target = RUNS[name]
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch)
        _split(name, train, val, root)
        command = [sys.executable, "-m", "maskcli", "train", str(root / "train/images"), str(root / "train/masks"),
                   "-o", str(root / "model.pt"), "--val-images", str(root / "val/images"), "--val-masks",
                   str(root / "val/masks"), "--json", "--quiet", *extra, *flags]
        if weights:
            command += ["--weights", weights]
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        load = os.getloadavg()[0]
        started = time.perf_counter()
        records = []
        with open(root / "stderr.txt", "w+") as stderr, \
                subprocess.Popen(command, stdout=subprocess.PIPE, stderr=stderr, text=True) as process:
            for line in process.stdout:  # type: ignore[union-attr]
                if line.strip():
                    records.append(json.loads(line))
                    print(f"{name}: {line.strip()}", flush=True)  # one line per epoch while it runs
            process.wait()
            stderr.seek(0)
            errors = stderr.read()
        wall = time.perf_counter() - started
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        if process.returncode:
            raise SystemExit(f"{name}: maskcli train failed ({process.returncode}): {errors}")
    summary = records[-1]
    epochs = [r for r in records[:-1] if r.get("epoch")]
    per_image = [r["seconds_per_image"] for r in epochs]
    key = "iou_both" if "--both-classes" in extra else "iou"
    return {"name": name, "train": train, "val": val, "flags": " ".join(extra + flags), "target": target, "key": key,
            "start": summary["start"][key], "best": summary["best"][key], "best_epoch": summary["best_epoch"],
            "epochs_run": summary["epochs_run"], "wall": wall,
            "cpu": (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime),
            "per_image": sorted(per_image)[len(per_image) // 2] if per_image else float("nan"),
            "load": (load, os.getloadavg()[0]),
            "epochs": [(r["epoch"], r[f"val_{key}"], r["seconds"], r["seconds_per_image"]) for r in epochs]}


#: Per set: (training pairs, held-out pairs, the held-out score, target).
DEFAULT_RUNS = {
    "fluo_nuclei": (20, 8, "iou", "IoU >= 0.80"),
    "isbi2012_em": (20, 10, "iou_both", "IoU (both classes) >= 0.75"),
    "weizmann_horses": (80, 20, "iou", "IoU above the pretrained model's"),
}


def _held_out_scores(weights: str | None, images: Path, masks: Path, key: str) -> float:
    """The mean score of the CNN method (the pretrained model, or ``weights``) on the held-out pairs, as
    ``maskcli segment`` makes its masks."""
    import numpy as np

    from maskcli.io.decode import read_image
    from maskcli.methods import methods
    from maskcli.metrics import score

    method = methods.create("cnn", {"weights": weights} if weights else {})
    scores = []
    for image in sorted(images.iterdir()):
        truth = read_image(masks / f"{image.stem}.png", gray=True).pixels
        scores.append(score(method(read_image(image).pixels), truth, level=0.5)[key])
    return float(np.mean(scores))


def _train_defaults(name: str, budget: str) -> dict:
    train, held, key, target = DEFAULT_RUNS[name]
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch)
        _split(name, train, held, root)
        command = [sys.executable, "-m", "maskcli", "train", str(root / "train/images"), str(root / "train/masks"),
                   "-o", str(root / "model.pt"), "--time", budget]
        shown = f"maskcli train train/images train/masks -o model.pt --time {budget}"
        load = os.getloadavg()[0]
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        started = time.perf_counter()
        # The exact command, then its record: the same run read back from the checkpoint's metadata.
        done = subprocess.run(command, capture_output=True, text=True)
        wall = time.perf_counter() - started
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        if done.returncode:
            raise SystemExit(f"{name}: maskcli train failed ({done.returncode}): {done.stderr}")
        from maskcli.cnn.weights import checkpoint_meta

        meta = checkpoint_meta(root / "model.pt")
        fine = _held_out_scores(str(root / "model.pt"), root / "val/images", root / "val/masks", key)
        start = _held_out_scores(None, root / "val/images", root / "val/masks", key)
    return {"name": name, "train": train, "held": held, "key": key, "target": target, "command": shown,
            "start": start, "fine": fine, "wall": wall, "load": (load, os.getloadavg()[0]),
            "cpu": (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime),
            "epochs_run": meta["epochs_run"], "best_epoch": meta["best_epoch"], "stopped": meta["stopped"],
            "val": meta["val_scores"][meta["score_key"]], "decisions": meta["decisions"],
            "stderr": done.stderr.strip().splitlines()[-1].replace(f"{root}{os.sep}", "")}


def _defaults_report(names: list[str], budget: str) -> list[str]:
    lines = ["# maskcli train with its defaults, within a time budget", "",
             f"Machine: {os.cpu_count()} cores, shared with other work (load average in the table: wall times vary "
             f"with the load). Each run is exactly `maskcli train train/images train/masks -o model.pt --time "
             f"{budget}` on a seed-0 split of the set; the training folder's own validation share picks the best "
             f"epoch; the score is on the held-out pairs (never seen in training), beside the pretrained U²-Net-P "
             f"on the same pairs.", "",
             "| set | train/held out | pretrained | defaults, held out | internal val | minutes (wall) | CPU min | "
             "epochs (best) | stopped | load start→end | target |", "|---|---|---|---|---|---|---|---|---|---|---|"]
    details: list[str] = []
    for name in names:
        row = _train_defaults(name, budget)
        print(row, flush=True)
        lines.append(f"| {name} ({row['key']}) | {row['train']}/{row['held']} | {row['start']:.4f} | "
                     f"**{row['fine']:.4f}** | {row['val']:.4f} | {row['wall'] / 60:.1f} | {row['cpu'] / 60:.1f} | "
                     f"{row['epochs_run']} ({row['best_epoch']}) | {row['stopped']} | "
                     f"{row['load'][0]:.1f}→{row['load'][1]:.1f} | {row['target']} |")
        details += ["", f"### {name}: the settings measured from the data", ""]
        details += [f"* {key} = {d['value']}: {d['reason']}" for key, d in row["decisions"].items()]
        details += [f"* last line: `{row['stderr']}`"]
    return lines + details


def _step_ratio(crops: list[int], rounds: int) -> list[str]:
    """Training step vs inference forward, per image, interleaved; CPU seconds too (the machine is shared)."""
    import torch

    from maskcli.cnn import specs, training
    from maskcli.cnn.device import resolve
    from maskcli.cnn.loading import new_model

    spec, plan = specs.get("u2netp"), resolve("cpu")
    model = new_model(spec).eval().to(memory_format=torch.channels_last)
    lines = ["| input | train step s/img (wall) | inference s/img (wall) | ratio | train CPU-s/img | infer CPU-s/img |",
             "|---|---|---|---|---|---|"]
    for crop in crops:
        train_wall, infer_wall, train_cpu, infer_cpu = [], [], [], []
        batch = torch.rand(4, 3, crop, crop).contiguous(memory_format=torch.channels_last)
        for _ in range(rounds):
            cpu, wall = time.process_time(), time.perf_counter()
            train_wall.append(training.forward_backward_seconds(spec, plan, crop, 4, 1, repeats=1))
            train_cpu.append((time.process_time() - cpu) / 8)  # warm-up and one timed step of 4 images
            cpu, wall = time.process_time(), time.perf_counter()
            with torch.inference_mode():
                model(batch)
            infer_wall.append((time.perf_counter() - wall) / 4)
            infer_cpu.append((time.process_time() - cpu) / 4)
        t, i = min(train_wall), min(infer_wall)
        lines.append(f"| {crop}×{crop} | {t:.3f} | {i:.3f} | {t / i:.1f} | {min(train_cpu):.3f} | "
                     f"{min(infer_cpu):.3f} |")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recipe", choices=("defaults", "tuned"), default="defaults")
    parser.add_argument("--time", default="15m", help="The budget of the defaults recipe.")
    parser.add_argument("--sets", default=",".join(RUNS))
    parser.add_argument("--weights", default=None, help="The U²-Net-P ONNX file (default: the cache).")
    parser.add_argument("--flags", default="", help="Extra flags for every run, e.g. '--device cuda'.")
    parser.add_argument("--step-rounds", type=int, default=2, help="Rounds of the step timing (0: skip it).")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    if args.recipe == "defaults":
        write_report(_defaults_report([s for s in args.sets.split(",") if s], args.time), args.out)
        return
    lines = ["# maskcli train: fine-tuning U²-Net-P on the evaluation sets", "",
             f"Machine: {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f} at the start (shared with "
             f"other work: wall times vary with the load; CPU time varies less).", "",
             "| set | train/val | flags | start | fine-tuned | best epoch / run | wall s | CPU s | train s/img | "
             "load start→end | target |", "|---|---|---|---|---|---|---|---|---|---|---|"]
    per_epoch: list[str] = []
    for name in [s for s in args.sets.split(",") if s]:
        row = _train(name, args.flags.split(), args.weights)
        print(row, flush=True)
        per_epoch += ["", f"### {name}: validation {row['key']} per epoch (start {row['start']:.4f})", "",
                      "| epoch | val | epoch s (wall, with validation) | train s/img (wall) |", "|---|---|---|---|"]
        per_epoch += [f"| {e} | {v:.4f} | {t:.0f} | {i:.2f} |" for e, v, t, i in row["epochs"]]
        lines.append(f"| {name} ({row['key']}) | {row['train']}/{row['val']} | `{row['flags']}` | {row['start']:.4f} | "
                     f"{row['best']:.4f} | {row['best_epoch']} / {row['epochs_run']} | {row['wall']:.0f} | "
                     f"{row['cpu']:.0f} | {row['per_image']:.2f} | {row['load'][0]:.1f}→{row['load'][1]:.1f} | "
                     f"{row['target']} |")
    lines += per_epoch
    if args.step_rounds:
        lines += ["", "## One training step against one inference pass (batch 4, first encoder stage fixed)", ""]
        lines += _step_ratio([192, 320], args.step_rounds)
    write_report(lines, args.out)


if __name__ == "__main__":
    main()
