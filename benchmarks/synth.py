"""Reproducible benchmark inputs: one-megapixel photo-like JPEGs (and matching masks) made from a seed.

The images are committed as this generator, not as files. Each is a smooth, lit background with a few textured
blobs in front and camera-like noise, so decoders, thresholds and edge detectors do realistic amounts of work
(a flat synthetic image would compress and threshold unrealistically fast).

    python -m benchmarks.synth /tmp/bench 200         # 200 JPEGs in /tmp/bench
"""

from __future__ import annotations

import argparse
from pathlib import Path

import cv2
import numpy as np

#: 1152 × 864 ≈ 1.0 megapixel, a 4:3 camera frame.
SIZE = (864, 1152)


def make_image(rng: np.random.Generator, size: tuple[int, int] = SIZE) -> tuple[np.ndarray, np.ndarray]:
    """One BGR uint8 photo-like image and its 0/255 foreground mask."""
    height, width = size
    yy, xx = np.mgrid[:height, :width].astype(np.float32)
    # A lit backdrop: a colour gradient with a soft vignette.
    base = rng.uniform(40, 120, 3).astype(np.float32)
    tilt = rng.uniform(-40, 40, 3).astype(np.float32)
    gradient = (xx / width)[..., None] * tilt + base
    vignette = 1 - 0.35 * (((xx - width / 2) / width) ** 2 + ((yy - height / 2) / height) ** 2)[..., None]
    image = gradient * vignette
    mask = np.zeros((height, width), np.uint8)
    for _ in range(int(rng.integers(2, 5))):
        centre = (int(rng.uniform(0.2, 0.8) * width), int(rng.uniform(0.2, 0.8) * height))
        axes = (int(rng.uniform(0.08, 0.22) * width), int(rng.uniform(0.08, 0.25) * height))
        blob = np.zeros_like(mask)
        cv2.ellipse(blob, centre, axes, float(rng.uniform(0, 180)), 0, 360, 255, -1)
        colour = rng.uniform(140, 240, 3).astype(np.float32)
        stripes = 18 * np.sin(xx / rng.uniform(4, 12) + yy / rng.uniform(6, 20))[..., None]
        image = np.where(blob[..., None] > 0, colour + stripes, image)
        mask |= blob
    image += rng.normal(0, 6, image.shape).astype(np.float32)
    image = cv2.GaussianBlur(image, (0, 0), 0.8)
    return np.clip(image, 0, 255).astype(np.uint8), mask


def make_jpegs(folder: Path, count: int, seed: int = 0, quality: int = 90, masks: Path | None = None) -> Path:
    """Write ``count`` JPEGs named ``00000.jpg`` … into ``folder`` (and their PNG masks into ``masks``).

    The same seed always gives the same files; existing files of the right name are kept, so a second call is cheap.
    """
    folder.mkdir(parents=True, exist_ok=True)
    if masks is not None:
        masks.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    for index in range(count):
        image, mask = make_image(rng)
        path = folder / f"{index:05d}.jpg"
        if not path.exists():
            cv2.imwrite(str(path), image, [cv2.IMWRITE_JPEG_QUALITY, quality])
        if masks is not None and not (masks / f"{index:05d}.png").exists():
            cv2.imwrite(str(masks / f"{index:05d}.png"), mask)
    return folder


def make_discs(folder: Path, count: int, size: tuple[int, int] = (64, 80)) -> Path:
    """``count`` tiny PNGs named ``00000.png`` …: a bright disc at varying places on a dark background (images
    where the work is nothing, to show a runner's own cost per item)."""
    folder.mkdir(parents=True, exist_ok=True)
    height, width = size
    yy, xx = np.mgrid[:height, :width]
    for index in range(count):
        cy, cx = height * (0.3 + 0.4 * ((index * 7) % 10) / 10), width * (0.3 + 0.4 * ((index * 3) % 10) / 10)
        disc = ((yy - cy) ** 2 + (xx - cx) ** 2) < (min(size) / 5) ** 2
        cv2.imwrite(str(folder / f"{index:05d}.png"), np.where(disc, 200, 40).astype(np.uint8))
    return folder


def main() -> None:
    parser = argparse.ArgumentParser(description="Write reproducible one-megapixel benchmark JPEGs.")
    parser.add_argument("folder", type=Path, help="where the JPEGs go (made when missing)")
    parser.add_argument("count", type=int, nargs="?", default=200, help="how many (default 200)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    make_jpegs(args.folder, args.count, seed=args.seed)


if __name__ == "__main__":
    main()
