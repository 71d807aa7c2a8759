"""Make the README's gallery from ``samples/``: run maskcli as a user would, then lay the results out small.

For each photo sample, one strip: the CNN's mask outlined on the photo (``apply --mode highlight``), the cut-out on
a checkerboard (``--mode cutout``), a colour background (``--mode color``), a blurred background (``--mode blur``)
and an enhanced subject on a dimmed, greyed background (``--mode enhance``). Then one ``preview --gt`` contact
sheet: GrabCut's masks (``--preset subject``) scored against the CNN's, worst first (the samples carry no
hand-made truth, so the CNN's masks stand in as the reference and the sheet shows where the two disagree).

Every mask comes from the U²-Net-P weights shipped with maskcli: nothing is downloaded. The images are JPEGs a
few tens of kB each; run this after a change that alters what maskcli draws::

    python docs/make_gallery.py            # writes docs/gallery/*.jpg (about a minute on 2 cores)
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

import cv2
import numpy as np

REPO = Path(__file__).resolve().parents[1]
SAMPLES = REPO / "samples"
GALLERY = REPO / "docs" / "gallery"
PHOTOS = ("astronaut", "chelsea", "coffee", "coins")
HEIGHT = 150
QUALITY = 80


def maskcli(*args: str) -> None:
    subprocess.run([sys.executable, "-m", "maskcli", *args, "--quiet"], check=True, cwd=REPO)


def checkerboard(height: int, width: int, square: int = 12) -> np.ndarray:
    yy, xx = np.mgrid[:height, :width]
    light = ((yy // square + xx // square) % 2).astype(np.float32)
    return (0.8 + 0.15 * light)[..., None].repeat(3, axis=2)


def read(path: Path) -> np.ndarray:
    """float32 RGB in [0, 1]; an RGBA image is laid over a checkerboard, as image viewers show transparency."""
    pixels = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if pixels.ndim == 2:
        pixels = cv2.cvtColor(pixels, cv2.COLOR_GRAY2BGR)
    scale = 65535.0 if pixels.dtype == np.uint16 else 255.0
    pixels = pixels.astype(np.float32) / scale
    if pixels.shape[2] == 4:
        alpha = pixels[..., 3:]
        rgb = cv2.cvtColor(pixels[..., :3], cv2.COLOR_BGR2RGB)
        return alpha * rgb + (1 - alpha) * checkerboard(*pixels.shape[:2])
    return cv2.cvtColor(pixels, cv2.COLOR_BGR2RGB)


def strip(tiles: list[np.ndarray], gap: int = 4) -> np.ndarray:
    scaled = []
    for tile in tiles:
        width = round(tile.shape[1] * HEIGHT / tile.shape[0])
        scaled.append(cv2.resize(tile, (width, HEIGHT), interpolation=cv2.INTER_AREA))
        scaled.append(np.ones((HEIGHT, gap, 3), np.float32))
    return np.concatenate(scaled[:-1], axis=1)


def write_jpeg(path: Path, rgb: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    bgr = cv2.cvtColor(np.round(np.clip(rgb, 0, 1) * 255).astype(np.uint8), cv2.COLOR_RGB2BGR)
    cv2.imwrite(str(path), bgr, [cv2.IMWRITE_JPEG_QUALITY, QUALITY, cv2.IMWRITE_JPEG_OPTIMIZE, 1])


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="maskcli-gallery-") as folder:
        work = Path(folder)
        photos = [str(SAMPLES / f"{stem}.png") for stem in PHOTOS]
        maskcli("segment", *photos, "-o", str(work / "cnn"), "--method", "cnn")
        modes = {
            "outline": ["--mode", "highlight"],
            "cutout": ["--mode", "cutout"],
            "color": ["--mode", "color", "-b", "#3b6ea5"],
            "blur": ["--mode", "blur", "-s", "strength=12"],
            "enhance": ["--mode", "enhance", "-s", "contrast=1.3", "-s", "saturation=1.4", "-s",
                        "outside_brightness=0.55", "-s", "outside_saturation=0.2"],
        }
        for name, options in modes.items():
            maskcli("apply", *photos, "--masks", str(work / "cnn"), *options, "-o", str(work / name),
                    "--format", "png")
        for stem in PHOTOS:
            write_jpeg(GALLERY / f"{stem}.jpg", strip([read(work / name / f"{stem}.png") for name in modes]))

        maskcli("segment", *photos, "-o", str(work / "grabcut"), "--preset", "subject")
        sheet = work / "sheet.png"
        chosen = work / "photos"
        chosen.mkdir()
        for stem in PHOTOS:
            (chosen / f"{stem}.png").write_bytes((SAMPLES / f"{stem}.png").read_bytes())
        maskcli("preview", str(chosen), str(work / "grabcut"), "--gt", str(work / "cnn"), "--sheet", str(sheet),
                "--cell", "140", "--columns", "4")
        write_jpeg(GALLERY / "preview-gt.jpg", read(sheet))
    total = sum(path.stat().st_size for path in GALLERY.glob("*.jpg"))
    print(f"wrote {len(list(GALLERY.glob('*.jpg')))} images, {total / 1000:.0f} kB, to {GALLERY.relative_to(REPO)}")


if __name__ == "__main__":
    main()
