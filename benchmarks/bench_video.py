"""Videos: maskcli against PyAV's own decode + encode floor, the CNN on a video against the same frames as PNG
files, and the peak memory at 300 and 3,000 frames.

Programs run as a user runs them (a fresh process each, start-up included), interleaved: each round runs every
program once, in an order that rotates, and each row is the median of the rounds, so a busy machine slows all rows
alike and the ratios stay meaningful.

* **floor (x264)**: a plain PyAV program that decodes the clip to RGB and encodes every frame again with the
  encoder settings maskcli's writer uses (H.264, CRF, preset fast) into MP4, audio aside;
* **floor (FFV1 grey)**: the same, writing each frame's grey levels as a lossless FFV1 video;
* **maskcli apply**: ``maskcli apply clip.mp4 -m otsu --mode color -o out.mp4`` (against the x264 floor);
* **maskcli segment**: ``maskcli segment clip.mp4 -m otsu -o mask.mkv`` (against the FFV1 floor);
* **CNN**: ``maskcli segment clip.mp4 -m cnn -o masks/`` against ``maskcli segment frames/ -m cnn -o masks/``
  on the same frames as PNG files.

backgroundremover (the peer that turns videos into transparent ``.mov`` files) downloads its U²-Net weights on
first use; with no network they cannot be had, so it is not run here (see the report).

    python -m benchmarks.bench_video --frames 300 --rounds 3 --out benchmarks/results/video.md
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import av
import cv2
import numpy as np

from benchmarks.common import run_with_peak, scratch_folder, write_report

HERE = Path(__file__).resolve().parent


FLOOR = """
import sys, av, numpy as np
source, target, kind = sys.argv[1:4]
with av.open(source) as container, av.open(target, "w") as output:
    stream = container.streams.video[0]
    stream.thread_type = "AUTO"
    codec = "libx264" if kind == "x264" else "ffv1"
    encoder = output.add_stream(codec, rate=stream.average_rate,
                                options={"crf": "18", "preset": "fast"} if kind == "x264" else {})
    encoder.width, encoder.height = stream.codec_context.width, stream.codec_context.height
    encoder.pix_fmt = "yuv420p" if kind == "x264" else "gray"
    encoder.time_base = stream.time_base
    for frame in container.decode(stream):
        pixels = frame.to_ndarray(format="rgb24")
        if kind == "x264":
            out = av.VideoFrame.from_ndarray(pixels, format="rgb24").reformat(format="yuv420p")
        else:
            grey = (pixels[..., 0] * 0.299 + pixels[..., 1] * 0.587 + pixels[..., 2] * 0.114).astype(np.uint8)
            out = av.VideoFrame.from_ndarray(grey, format="gray")
        out.pts, out.time_base = frame.pts, frame.time_base
        output.mux(encoder.encode(out))
    output.mux(encoder.encode(None))
"""


def make_clip(path: Path, frames: int, size: tuple[int, int]) -> None:
    """A clip panned across a sample photo, H.264 at 25 frames a second."""
    photo = cv2.imread(str(HERE.parent / "samples" / "coffee.png"))[:, :, ::-1]
    height, width = size
    photo = cv2.resize(photo, (width * 5 // 4, height * 5 // 4))
    room_y, room_x = photo.shape[0] - height, photo.shape[1] - width
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=25, options={"crf": "18"})
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        for t in range(frames):
            y, x = t % (room_y + 1), (2 * t) % (room_x + 1)
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(photo[y:y + height, x:x + width]), format="rgb24")
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))


def extract_pngs(clip: Path, folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    with av.open(str(clip)) as container:
        for index, frame in enumerate(container.decode(video=0), 1):
            cv2.imwrite(str(folder / f"{index:06d}.png"), frame.to_ndarray(format="bgr24"))


def timed(command: list[str], env: dict[str, str]) -> float:
    start = time.perf_counter()
    done = subprocess.run(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    if done.returncode:
        raise SystemExit(f"{' '.join(command)} failed: {done.stderr.decode()[-400:]}")
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=300)
    parser.add_argument("--cnn-frames", type=int, default=60)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--work", type=Path, default=None)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    work = scratch_folder(args.work, "maskcli-bench-video-")
    env = {**os.environ, "PYTHONPATH": str(HERE.parent)}
    python = sys.executable
    clip, small = work / "clip.mp4", work / "cnn.mp4"
    if not clip.exists():
        make_clip(clip, args.frames, (360, 640))
        make_clip(small, args.cnn_frames, (240, 320))
        extract_pngs(small, work / "frames")
    maskcli = [python, "-m", "maskcli"]
    out = work / "out"
    programs = {
        "floor (x264)": [python, "-c", FLOOR, str(clip), str(out / "floor.mp4"), "x264"],
        "maskcli apply -m otsu --mode color": [*maskcli, "apply", str(clip), "-m", "otsu", "--mode", "color",
                                               "-o", str(out / "apply.mp4"), "--overwrite"],
        "floor (FFV1 grey)": [python, "-c", FLOOR, str(clip), str(out / "floor.mkv"), "ffv1"],
        "maskcli segment -m otsu -o mask.mkv": [*maskcli, "segment", str(clip), "-m", "otsu", "-o",
                                                str(out / "mask.mkv"), "--overwrite"],
        "CNN: video": [*maskcli, "segment", str(small), "-m", "cnn", "-o", str(out / "cnn_video"), "--overwrite"],
        "CNN: PNG frames": [*maskcli, "segment", str(work / "frames"), "-m", "cnn", "-o", str(out / "cnn_png"),
                            "--overwrite"],
    }
    out.mkdir(parents=True, exist_ok=True)
    times: dict[str, list[float]] = {name: [] for name in programs}
    names = list(programs)
    for round_number in range(args.rounds):
        order = names[round_number % len(names):] + names[:round_number % len(names)]
        for name in order:
            times[name].append(timed(programs[name], env))
    median = {name: statistics.median(values) for name, values in times.items()}

    memory = {}
    for count in (300, 3000):
        long_clip = work / f"memory{count}.mp4"
        if not long_clip.exists():
            make_clip(long_clip, count, (180, 320))
        status, stderr, wall, peak = run_with_peak([*maskcli, "segment", str(long_clip), "-m", "otsu", "-o",
                                                    str(out / f"memory{count}.mkv"), "--overwrite"], env=env)
        if status:
            raise SystemExit(stderr.decode()[-400:])
        memory[count] = (peak, wall)

    def row(name: str, floor: str | None) -> str:
        ratio = f"{median[floor] / median[name]:.2f}×" if floor else ""
        return f"| {name} | {median[name]:.2f} | {args.frames if 'CNN' not in name else args.cnn_frames} | {ratio} |"

    lines = [
        "# Videos: speed against the decode + encode floor, the CNN on video against PNG frames, memory",
        "",
        f"`python -m benchmarks.bench_video --frames {args.frames} --cnn-frames {args.cnn_frames} --rounds "
        f"{args.rounds}`, on a 2-core machine shared with other work (timings are noisy; rounds interleaved, "
        "medians). Every row is a fresh process, start-up included.",
        "",
        f"Clip: {args.frames} frames of 640×360 H.264 (a pan across a sample photo); CNN clip: {args.cnn_frames} "
        "frames of 320×240 and the same frames as PNG files.",
        "",
        "| program | seconds (median) | frames | speed against its floor |",
        "|---|---|---|---|",
        row("floor (x264)", None),
        row("maskcli apply -m otsu --mode color", "floor (x264)"),
        row("floor (FFV1 grey)", None),
        row("maskcli segment -m otsu -o mask.mkv", "floor (FFV1 grey)"),
        row("CNN: PNG frames", None),
        row("CNN: video", "CNN: PNG frames"),
        "",
        "Peak resident memory of `maskcli segment clip.mp4 -m otsu -o mask.mkv` (320×180 frames, whole process "
        "tree):",
        "",
        "| frames | peak RSS (MiB) | seconds |",
        "|---|---|---|",
        *[f"| {count} | {peak / 2**20:.0f} | {wall:.1f} |" for count, (peak, wall) in memory.items()],
        "",
        "backgroundremover was not run: it fetches its U²-Net weights on first use and there is no network here. "
        "Its documented transparent-video pipeline (every frame through U²-Net, a matte, then FFmpeg merging "
        "frames and matte into a `.mov`) does at least the work of the *CNN: PNG frames* row plus an encode; "
        "maskcli's video row does that work without the PNG files.",
    ]
    write_report(lines, args.out)


if __name__ == "__main__":
    main()
