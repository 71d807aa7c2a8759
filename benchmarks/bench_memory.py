"""Peak memory per image: every classical method of ``maskcli segment`` and every mode of ``maskcli apply`` on one
large image, as bytes per pixel of the whole process tree.

The peak is the largest sum of the resident set sizes of maskcli and all its descendants (worker processes
included), sampled from ``/proc`` every few milliseconds while the command runs, so it counts what a scheduler or
the OOM killer sees. The CNN and GrabCut are left out (a model's memory does not scale with the image).

The input is a photo-like RGB JPEG of ``--megapixels`` (default 100) and a hard mask of the same size (as
``maskcli segment`` writes them). The start-up figure is the tree's peak for one small image (the README's claim).

    python -m benchmarks.bench_memory --megapixels 100 --out benchmarks/results/memory.md
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
from pathlib import Path

from benchmarks.common import run_with_peak, scratch_folder, write_report

HERE = Path(__file__).resolve().parent


#: Options some methods and modes need to run at all.
METHOD_OPTIONS = {"color_range": ["-p", "key=green"]}
MODE_OPTIONS = {"enhance": ["-s", "contrast=1.5"], "color": ["-b", "white"]}
SKIP_METHODS = {"cnn", "grabcut"}
#: Further rows: options that take another path through a mode (CLAHE equalises the whole image's lightness).
VARIANTS = {"enhance, clahe=2": ("enhance", ["-s", "clahe=2"])}


def peak_of(command: list[str]) -> tuple[float, float, int]:
    """(peak bytes of the process tree, seconds, exit status) of ``command``."""
    status, err, seconds, peak = run_with_peak(command)
    if status:
        print(err.decode(errors="replace").strip(), file=sys.stderr)
    return peak, seconds, status


def make_inputs(folder: Path, megapixels: float) -> tuple[Path, Path, int]:
    """A photo-like RGB JPEG of about ``megapixels`` and its hard mask (PNG), made with little memory."""
    import cv2
    import numpy as np

    width = int((megapixels * 1e6 * 4 / 3) ** 0.5)
    height = int(megapixels * 1e6 / width)
    images, masks = folder / "images", folder / "masks"
    images.mkdir(parents=True, exist_ok=True)
    masks.mkdir(parents=True, exist_ok=True)
    image_path, mask_path = images / "big.jpg", masks / "big.png"
    if not image_path.exists():
        row = np.linspace(40, 120, width, dtype=np.float32)
        picture = np.empty((height, width, 3), np.uint8)
        rng = np.random.default_rng(0)
        for top in range(0, height, 512):
            bottom = min(height, top + 512)
            noise = rng.normal(0, 6, (bottom - top, width)).astype(np.float32)
            for c, gain in enumerate((1.0, 0.8, 0.6)):
                picture[top:bottom, :, c] = np.clip(row * gain + noise, 0, 255).astype(np.uint8)
        mask = np.zeros((height, width), np.uint8)
        cv2.ellipse(mask, (width // 2, height // 2), (width // 4, height // 3), 0, 0, 360, 255, -1)
        picture[mask > 0] = (200, 180, 90)
        cv2.imwrite(str(image_path), picture, [cv2.IMWRITE_JPEG_QUALITY, 90])
        cv2.imwrite(str(mask_path), mask)
    return images, masks, width * height


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--megapixels", type=float, default=100.0)
    parser.add_argument("--work", type=Path, default=None,
                        help="scratch folder, kept for the next run (default: a temp folder, removed at the end)")
    parser.add_argument("--out", type=Path, default=None, help="write the Markdown table here")
    parser.add_argument("--only", nargs="*", default=None, help="run only these methods/modes")
    parser.add_argument("--folder", type=Path, default=None,
                        help="also measure `maskcli segment FOLDER -m otsu` with the default --jobs and --jobs 1 "
                             "(the README's figure for a folder of photos)")
    parser.add_argument("--skip-large", action="store_true", help="only the start-up and --folder rows")
    parser.add_argument("--whole-megapixels", type=float, default=None,
                        help="run the modes that need the whole image in float (no bands) on an image of this size "
                             "instead (bytes per pixel hardly depend on the size; this spares a shared machine)")
    args = parser.parse_args()

    from maskcli.composite import modes
    from maskcli.methods import methods

    work = scratch_folder(args.work, "maskcli-mem-")
    images, masks, pixels = make_inputs(work, args.megapixels)
    whole = make_inputs(work / "whole", args.whole_megapixels) if args.whole_megapixels else None
    maskcli = [sys.executable, "-m", "maskcli"]
    rows: list[tuple[str, str, float, float, float, int]] = []

    def measure(kind: str, name: str, command: list[str], size: int = pixels, jobs: list[str] | None = None) -> None:
        if args.only and name not in args.only or args.skip_large and kind in ("segment", "apply"):
            return
        out = work / "out"
        shutil.rmtree(out, ignore_errors=True)
        peak, seconds, status = peak_of(command + ["-o", str(out), *(["--jobs", "1"] if jobs is None else jobs),
                                                   "--quiet"])
        rows.append((kind, name, size, peak, seconds, status))
        print(f"{kind} {name}: {peak / 2**20:.0f} MiB, {peak / size:.1f} B/px, {seconds:.1f} s, exit {status}",
              file=sys.stderr)

    small = work / "small"
    small.mkdir(exist_ok=True)
    import cv2
    import numpy as np

    cv2.imwrite(str(small / "one.jpg"), np.full((480, 640, 3), 128, np.uint8))
    measure("start-up", "otsu", [*maskcli, "segment", str(small), "-m", "otsu"])
    if args.folder:
        count = sum(1 for _ in args.folder.iterdir())
        for jobs in ([], ["--jobs", "1"]):
            measure("folder", f"otsu, {count} images, {' '.join(jobs) or 'default --jobs'}",
                    [*maskcli, "segment", str(args.folder), "-m", "otsu"], jobs=jobs)
    for name in methods.names():
        if name not in SKIP_METHODS:
            measure("segment", name, [*maskcli, "segment", str(images), "-m", name, *METHOD_OPTIONS.get(name, [])])
    background = work / "background.jpg"
    cv2.imwrite(str(background), np.full((300, 400, 3), 90, np.uint8))
    for name in modes.names():
        extra = ["-b", str(background)] if name == "image" else MODE_OPTIONS.get(name, [])
        options = {"background": str(background)} if name == "image" else dict(
            pair.split("=", 1) if "=" in pair else ("background", pair) for pair in extra[1::2])
        banded = modes.create(name, options).halo(np.zeros((4, 4), np.uint8)) is not None
        folder, mask_folder, size = (images, masks, pixels) if banded or whole is None else whole
        measure("apply", name, [*maskcli, "apply", str(folder), "--masks", str(mask_folder), "--mode", name, *extra],
                size)
    for label, (name, extra) in VARIANTS.items():
        measure("apply", label, [*maskcli, "apply", str(images), "--masks", str(masks), "--mode", name, *extra])

    lines = [f"# Peak memory of the whole process tree, one {pixels / 1e6:.0f}-megapixel RGB JPEG "
             f"({os.cpu_count()} cores, `--jobs 1`)", "",
             "Target: at most 16 bytes per pixel for every method and mode except the CNN and GrabCut. "
             "The start-up row is one 640×480 image: what the process tree costs before any large image.", "",
             "| command | method / mode | megapixels | peak MiB | bytes per pixel | seconds | exit |",
             "| --- | --- | ---: | ---: | ---: | ---: | ---: |"]
    for kind, name, size, peak, seconds, status in rows:
        per_pixel = "" if kind in ("start-up", "folder") else f"{peak / size:.1f}"
        megapixels = {"start-up": "0.3", "folder": "1 each"}.get(kind, f"{size / 1e6:.1f}")
        lines.append(f"| {kind} | {name} | {megapixels} | {peak / 2**20:.0f} | {per_pixel} | {seconds:.1f} "
                     f"| {status} |")
    command = f"python -m benchmarks.bench_memory --megapixels {args.megapixels:g}"
    if args.whole_megapixels:
        command += f" --whole-megapixels {args.whole_megapixels:g}"
    lines += ["", "    " + command]
    write_report(lines, args.out)


if __name__ == "__main__":
    main()
