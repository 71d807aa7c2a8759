"""CNN benchmark: quality on the horse set, CPU throughput against a naive loop, bf16 on CPU, and the GPU.

Sections (all by default; ``--sections`` picks some):

* **quality**: mean IoU of ``--method cnn`` (u2netp) on every image of ``weizmann_horses``, as
  ``maskcli segment`` makes them (same decoding, batches of 8), without and with ``--refine guided``;
* **cpu-model**: model-only seconds per image on the CPU for batch 1 and 8, fp32, fp32 + ``channels_last`` and
  bf16 autocast, interleaved so that a noisy shared machine affects every row alike;
* **bf16**: whether bf16 autocast on the CPU keeps the masks (IoU of the bf16 mask against the fp32 mask on every
  horse; the policy needs at least 0.99) and what it costs;
* **cpu**: img/s end to end (read, segment, write a PNG) of maskcli's batched runner against
  ``benchmarks/naive_cnn.py`` (one image at a time, fp32, full-resolution post-processing), for u2netp and
  lraspp-mobilenet-v3 (random weights: speed does not depend on them), on the same files, interleaved;
* **gpu**: one short run (a few minutes): img/s end to end on one-megapixel JPEGs for u2netp and lraspp at the
  measured batch size, GPU utilisation (nvidia-smi), the host's decode + encode floor with as many CPU workers,
  and fp16/bf16 masks against fp32. Without CUDA the same code runs on the CPU over 4 images (a dry run).

    python -m benchmarks.bench_cnn --out benchmarks/results/cnn.md
    python -m benchmarks.bench_cnn --sections gpu --out benchmarks/results/cnn_gpu.md   # on a GPU machine
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from benchmarks import naive_cnn
from maskcli.cnn import specs
from maskcli.cnn.device import DevicePlan, limit_threads
from maskcli.cnn.infer import ModelCache, Segmenter
from maskcli.cnn.loading import build_model
from maskcli.io.decode import read_image
from maskcli.metrics import iou

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
os.environ.setdefault("MASKCLI_OFFLINE", "1")


SHARED = REPO.parent / "shared"
HORSES = SHARED / "data" / "weizmann_horses"
U2NETP = SHARED / "weights" / "u2netp.onnx"


def _files(folder: Path, limit: int = 0) -> list[Path]:
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in {".png", ".jpg", ".jpeg"})
    return files[:limit] if limit else files


def _truth(name: str) -> np.ndarray:
    return (read_image(HORSES / "masks" / name).pixels >= 0.5).astype(np.float32)


def quality(lines: list[str]) -> None:
    from maskcli.jobs.segment import segment_images
    from maskcli.methods import methods

    try:
        from maskcli.refine import Refinement

        guided = Refinement(refine="guided")
    except Exception as error:  # the refinement module may be absent in an older checkout
        guided, missing = None, error
    method = methods.create("cnn", {"weights": str(U2NETP), "device": "cpu"})
    files = _files(HORSES / "images")
    plain, refined = [], []
    for start in range(0, len(files), 8):
        chunk = files[start:start + 8]
        images = [read_image(p).pixels for p in chunk]
        for path, image, segmentation in zip(chunk, images, segment_images(images, method)):
            truth = _truth(path.name)
            plain.append(iou(segmentation.mask, truth))
            if guided is not None:
                refined.append(iou(guided.apply(segmentation.mask.copy(), image), truth))
    lines += ["## Quality: u2netp on weizmann_horses (all 100 images)", "",
              "| pipeline | mean IoU | median IoU | min IoU |", "| --- | --- | --- | --- |",
              f"| `--method cnn` (u2netp) | {np.mean(plain):.4f} | {np.median(plain):.4f} | {np.min(plain):.4f} |"]
    if guided is not None:
        lines.append(f"| `--method cnn --refine guided` | {np.mean(refined):.4f} | {np.median(refined):.4f} | "
                     f"{np.min(refined):.4f} |")
    else:
        lines.append(f"| `--refine guided` | not measured: {missing} | | |")
    lines.append("")
    print("\n".join(lines[-6:]), file=sys.stderr)


def cpu_model(lines: list[str], repeats: int) -> None:
    spec = specs.get("u2netp")
    variants = {
        "fp32": DevicePlan("cpu", "fp32", False),
        "fp32 + channels_last": DevicePlan("cpu", "fp32", True),
        "bf16 autocast": DevicePlan("cpu", "bf16", False),
        "bf16 autocast + channels_last": DevicePlan("cpu", "bf16", True),
    }
    segmenters = {name: Segmenter(spec, build_model(spec, U2NETP), plan) for name, plan in variants.items()}
    results: dict[tuple[str, int], list[float]] = {}
    for batch in (1, 8):
        x = torch.randn(batch, 3, 320, 320)
        for seg in segmenters.values():
            seg._forward(x)  # warm-up (oneDNN primitive creation)
        for _ in range(repeats):
            for name, seg in segmenters.items():
                start = time.perf_counter()
                seg._forward(x)
                results.setdefault((name, batch), []).append((time.perf_counter() - start) / batch)
    lines += ["## CPU, model only: u2netp at 320×320, seconds per image (min of interleaved repeats)", "",
              "| variant | batch 1 | batch 8 |", "| --- | --- | --- |"]
    for name in variants:
        lines.append(f"| {name} | {min(results[(name, 1)]):.3f} | {min(results[(name, 8)]):.3f} |")
    lines.append("")
    print("\n".join(lines[-7:]), file=sys.stderr)


def bf16(lines: list[str]) -> None:
    spec = specs.get("u2netp")
    full = Segmenter(spec, build_model(spec, U2NETP), DevicePlan("cpu", "fp32", False))
    half = Segmenter(spec, build_model(spec, U2NETP), DevicePlan("cpu", "bf16", False))
    agreement, truth_full, truth_half, t_full, t_half = [], [], [], 0.0, 0.0
    files = _files(HORSES / "images")
    for start in range(0, len(files), 8):
        chunk = files[start:start + 8]
        images = [read_image(p).pixels for p in chunk]
        t0 = time.perf_counter()
        a = full.predict(images)
        t1 = time.perf_counter()
        b = half.predict(images)
        t2 = time.perf_counter()
        t_full += t1 - t0
        t_half += t2 - t1
        for path, ma, mb in zip(chunk, a, b):
            truth = _truth(path.name)
            agreement.append(iou(mb, (ma >= 0.5).astype(np.float32)))
            truth_full.append(iou(ma, truth))
            truth_half.append(iou(mb, truth))
    n = len(files)
    lines += ["## CPU bf16 autocast against fp32 (u2netp, all 100 horses, batches of 8)", "",
              "| | fp32 | bf16 |", "| --- | --- | --- |",
              f"| seconds per image (end of batch, incl. resize) | {t_full / n:.3f} | {t_half / n:.3f} |",
              f"| mean IoU against the truth | {np.mean(truth_full):.4f} | {np.mean(truth_half):.4f} |",
              f"| IoU of the bf16 mask against the fp32 mask: mean / min | | {np.mean(agreement):.4f} / "
              f"{np.min(agreement):.4f} |", ""]
    print("\n".join(lines[-8:]), file=sys.stderr)


def _random_weights(folder: Path, name: str) -> Path:
    from torchvision.models import segmentation

    torch.manual_seed(0)
    spec = specs.get(name)
    model = getattr(segmentation, spec.builder)(weights=None, weights_backbone=None, num_classes=21)
    path = folder / f"{name}.pth"
    torch.save(model.state_dict(), path)
    return path


def _maskcli_run(images: Path, out: Path, name: str, weights: Path, batch: int, jobs: int,
                 plan: DevicePlan | None = None, device: str = "cpu") -> float:
    from maskcli.io.sinks import FolderSink
    from maskcli.io.sources import expand_inputs
    from maskcli.jobs.segment import SegmentJob
    from maskcli.methods import methods
    from maskcli.pipeline import run

    method = methods.create("cnn", {"model": name, "weights": str(weights), "device": device, "batch_size": batch})
    if plan is not None:
        method._plan = plan  # a precision other than the policy's, for comparison
    method.compute(np.zeros((32, 32, 3), np.float32))  # load the model before the clock starts, as naive does
    shutil.rmtree(out, ignore_errors=True)
    start = time.perf_counter()
    sink = FolderSink(out, "{stem}.png", "overwrite")
    results = list(run(sink.items(expand_inputs([str(images)])), SegmentJob(method, sink=sink), jobs=jobs))
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    seconds = time.perf_counter() - start
    assert all(r.status == "written" for r in results), [r.error for r in results if r.error][:3]
    return seconds


def cpu(lines: list[str], count: int, repeats: int) -> None:
    from benchmarks.synth import make_jpegs

    jobs = len(os.sched_getaffinity(0))
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        horses = folder / "horses"
        horses.mkdir()
        for path in _files(HORSES / "images", count):
            shutil.copy(path, horses / path.name)
        photos = folder / "photos"
        make_jpegs(photos, max(4, count // 2), seed=0)  # one-megapixel JPEGs, as from a camera
        models = (("u2netp", U2NETP), ("lraspp-mobilenet-v3", _random_weights(folder, "lraspp-mobilenet-v3")))
        for label, images in ((f"{count} horse images (198×116 to 468×360)", horses),
                              (f"{len(_files(photos))} one-megapixel JPEGs", photos)):
            n = len(_files(images))
            for name, weights in models:
                naive, batched = [], []
                for _ in range(repeats):
                    shutil.rmtree(folder / "naive", ignore_errors=True)
                    naive.append(naive_cnn.run(_files(images), folder / "naive", name, str(weights)))
                    batched.append(_maskcli_run(images, folder / "out", name, weights, batch=0, jobs=jobs))
                rows.append((label, name, n / min(naive), n / min(batched)))
                print(label, name, naive, batched, file=sys.stderr)
    lines += [f"## CPU end to end: read → segment → write PNG, img/s (best of {repeats}, interleaved)", "",
              "maskcli: the batched runner with the method's defaults (fp32, channels_last, automatic batch size: 1 "
              "on the CPU), decoding and writing in threads. Naive: `benchmarks/naive_cnn.py`. Model loading is "
              "outside the clock for both.", "",
              "| images | model | naive loop | maskcli | ratio |", "| --- | --- | --- | --- | --- |"]
    for label, name, naive_rate, batched_rate in rows:
        lines.append(f"| {label} | {name} | {naive_rate:.2f} | {batched_rate:.2f} | "
                     f"{batched_rate / naive_rate:.2f}× |")
    lines.append("")
    print("\n".join(lines[-9:]), file=sys.stderr)


def _floor(files: list[Path], out: Path, workers: int) -> float:
    """Seconds for the host's share alone: decode each image as maskcli does and write a full-size PNG mask, in
    ``workers`` threads (the runner's decode and save threads), no model."""
    from concurrent.futures import ThreadPoolExecutor

    from maskcli.io.files import write_atomic
    from maskcli.io.masks import encode_mask

    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)

    def one(path: Path) -> None:
        pixels = read_image(path).pixels
        write_atomic(out / f"{path.stem}.png", encode_mask(pixels[:, :, 0], bits=8, hard=False))

    start = time.perf_counter()
    with ThreadPoolExecutor(workers) as pool:
        list(pool.map(one, files))
    return time.perf_counter() - start


class _Utilisation:
    """GPU utilisation (%) sampled every 100 ms from nvidia-smi while a run lasts; None without nvidia-smi."""

    def __init__(self) -> None:
        import subprocess

        self.command = ["nvidia-smi", "--query-gpu=utilization.gpu", "--format=csv,noheader,nounits", "-i", "0",
                        "-lms", "100"]
        self.process = subprocess.Popen(self.command, stdout=subprocess.PIPE, text=True) \
            if shutil.which("nvidia-smi") else None

    def stop(self) -> float | None:
        if self.process is None:
            return None
        self.process.terminate()
        samples = [float(v) for v in self.process.communicate()[0].split() if v.replace(".", "").isdigit()]
        return float(np.mean(samples)) if samples else None


def gpu(lines: list[str], count: int, repeats: int) -> None:
    """The GPU section, one short run: img/s end to end on one-megapixel JPEGs for u2netp and lraspp at the
    measured batch size, GPU utilisation, the host's decode + encode floor with as many CPU workers, fp16 against
    fp32 on the horses. Without CUDA it runs the same code on the CPU with a few images (a dry run)."""
    from benchmarks.synth import make_jpegs

    on_gpu = torch.cuda.is_available()
    device = "cuda" if on_gpu else "cpu"
    count = count if on_gpu else min(count, 4)
    workers = len(os.sched_getaffinity(0))
    title = f"GPU: {torch.cuda.get_device_name(0)}" if on_gpu else "GPU section, dry run on the CPU (no CUDA here)"
    lines += [f"## {title}", "", f"{count} one-megapixel JPEGs (1152×864), {workers} CPU workers (decode and save "
              f"threads), automatic batch size, best of {repeats}. The floor: decode + encode + write with no model.",
              "", "| model | batch | img/s | floor img/s | share of floor | GPU utilisation |",
              "| --- | ---: | ---: | ---: | ---: | ---: |"]
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        photos = folder / "photos"
        make_jpegs(photos, count, seed=0)
        files = _files(photos)
        floor = count / min(_floor(files, folder / "floor", workers) for _ in range(repeats))
        for name, weights in (("u2netp", U2NETP),
                              ("lraspp-mobilenet-v3", _random_weights(folder, "lraspp-mobilenet-v3"))):
            from maskcli.methods import methods

            method = methods.create("cnn", {"model": name, "weights": str(weights), "device": device})
            best, utilisation = float("inf"), None
            for _ in range(repeats):
                probe = _Utilisation() if on_gpu else None
                seconds = _maskcli_run(photos, folder / "out", name, weights, batch=method.batch_size, jobs=workers,
                                       device=device)
                used = probe.stop() if probe else None
                if seconds < best:
                    best, utilisation = seconds, used
            rate = count / best
            shown = f"{utilisation:.0f} %" if utilisation is not None else "n/a"
            lines.append(f"| {name} | {method.batch_size} | {rate:.1f} | {floor:.1f} | {rate / floor:.2f}× | {shown} |")
    spec = specs.get("u2netp")
    plans = {p: DevicePlan(f"{device}:0" if on_gpu else "cpu", p, True) for p in ("fp32", "fp16", "bf16")}
    models = ModelCache()
    full = models.segmenter(spec, U2NETP, plans["fp32"], engine="torch")
    files = _files(HORSES / "images", 0 if on_gpu else 4)
    images = [read_image(p).pixels for p in files]
    reference = [m >= 0.5 for m in full.predict(images)]
    lines += ["", "fp16 / bf16 autocast against fp32 on the device (u2netp, IoU of the masks at 0.5; the policy "
              "needs ≥ 0.995):", "", "| precision | mean IoU vs fp32 | min IoU vs fp32 |", "| --- | ---: | ---: |"]
    for precision in ("fp16", "bf16") if on_gpu else ("bf16",):
        half = models.segmenter(spec, U2NETP, plans[precision], engine="torch")
        scores = [iou(m, r.astype(np.float32)) for m, r in zip(half.predict(images), reference)]
        lines.append(f"| {precision} | {np.mean(scores):.4f} | {np.min(scores):.4f} |")
    lines.append("")
    print("\n".join(lines[-16:]), file=sys.stderr)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sections", default="quality,cpu-model,bf16,cpu,gpu")
    parser.add_argument("--count", type=int, default=40, help="images in the CPU end-to-end runs")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--gpu-count", type=int, default=200, help="one-megapixel JPEGs in the GPU section")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    sections = args.sections.split(",")
    lines = ["# CNN benchmark", "",
             f"{platform.processor() or platform.machine()}, {len(os.sched_getaffinity(0))} cores available, "
             f"torch {torch.__version__} ({torch.get_num_threads()} threads), load average at start "
             f"{os.getloadavg()[0]:.1f}. Command: `python -m benchmarks.bench_cnn --sections {args.sections} "
             f"--count {args.count} --repeats {args.repeats} --gpu-count {args.gpu_count}`.", ""]
    limit_threads(1)  # as maskcli's runner sets them for a model's run
    for name, fn in (("quality", lambda: quality(lines)), ("cpu-model", lambda: cpu_model(lines, args.repeats)),
                     ("bf16", lambda: bf16(lines)), ("cpu", lambda: cpu(lines, args.count, args.repeats)),
                     ("gpu", lambda: gpu(lines, args.gpu_count, args.repeats))):
        if name in sections:
            fn()
    text = "\n".join(lines) + "\n"
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text)
    print(text)


if __name__ == "__main__":
    main()
