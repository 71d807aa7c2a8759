"""Small synthetic image folders for tests that need many files (real data lives in samples/ and ../shared)."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np


def write_many(folder: Path, count: int, size: tuple[int, int] = (64, 80)) -> Path:
    """``count`` PNGs of a bright disc at varying places on a dark background."""
    folder.mkdir(parents=True, exist_ok=True)
    height, width = size
    yy, xx = np.mgrid[:height, :width]
    for index in range(count):
        cy, cx = height * (0.3 + 0.4 * ((index * 7) % 10) / 10), width * (0.3 + 0.4 * ((index * 3) % 10) / 10)
        disc = ((yy - cy) ** 2 + (xx - cx) ** 2) < (min(size) / 5) ** 2
        cv2.imwrite(str(folder / f"{index:05d}.png"), np.where(disc, 200, 40).astype(np.uint8))
    return folder
