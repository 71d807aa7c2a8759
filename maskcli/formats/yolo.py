"""YOLO segmentation labels: one ``.txt`` per image, a line per region, ``class x1 y1 x2 y2 ...`` normalised to
[0, 1], and ``classes.txt`` naming the classes (line ``n`` is class ``n``), as Ultralytics and Darknet read them.

>>> import numpy as np
>>> mask = np.zeros((4, 8), bool); mask[0:2, 0:4] = True
>>> from maskcli.formats import ImageRegions, Region
>>> YoloFormat(["cat"]).encode(ImageRegions("a.png", 8, 4, [Region("cat", mask)])).data
b'0 0.03125 0.0625 0.03125 0.4375 0.46875 0.4375 0.46875 0.0625\\n'
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from maskcli.formats import Encoded, ExportFormat, ImageRegions, export_formats
from maskcli.formats.geometry import mask_to_polygons


@export_formats.register("yolo")
class YoloFormat(ExportFormat):
    """YOLO segmentation: one normalised polygon per line, a ``.txt`` per image, and ``classes.txt``."""

    summary = "YOLO segmentation .txt per image (normalised polygons) and classes.txt."
    suffix = ".txt"

    def encode(self, image: ImageRegions) -> Encoded:
        regions = self.regions(image)
        lines = []
        for region in regions:
            number = self.categories.index(region.category)
            for polygon in mask_to_polygons(region.mask):
                xs = [x / image.width for x in polygon[0::2]]
                ys = [y / image.height for y in polygon[1::2]]
                points = " ".join(f"{x:.6g} {y:.6g}" for x, y in zip(xs, ys))
                lines.append(f"{number} {points}\n")
        return Encoded("".join(lines).encode())

    def finish(self, output: Path, parts: Sequence[dict[str, Any]]) -> list[Path]:
        from maskcli.io.files import write_atomic

        path = output / "classes.txt"
        write_atomic(path, "".join(f"{name}\n" for name in self.categories).encode())
        return [path]
