"""Masks in the formats data-set tools read, out and in: COCO (RLE or polygons), YOLO segmentation, label images.

Out: an export format turns the regions of one image (:class:`ImageRegions`: a category and a hard mask per
region) into bytes, one image at a time inside the runner, and :meth:`ExportFormat.finish` writes what spans the
whole batch (COCO's single document, YOLO's class list, the label images' legend). Adding a format is adding one
file here that registers a class in :data:`export_formats`.

In: :mod:`maskcli.formats.coco` and :mod:`maskcli.formats.labels` read a COCO file or a folder of label images
as masks matched to images by file name, for ``apply`` and ``eval``.

>>> sorted(export_formats.names())
['coco', 'labels', 'yolo']
"""

from __future__ import annotations

import abc
import dataclasses
import importlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from maskcli.registry import Registry


@dataclasses.dataclass
class Region:
    """One annotated region: its category, its pixels (boolean H×W) and, where known, its score."""

    category: str
    mask: np.ndarray
    score: float | None = None


@dataclasses.dataclass
class ImageRegions:
    """The regions of one image, and the image as a data set records it."""

    file_name: str  # the image's path relative to the data set's image folder
    width: int
    height: int
    regions: list[Region]


@dataclasses.dataclass
class Encoded:
    """One image in an export format: the file written for it (YOLO, labels), or its part of the document."""

    data: bytes
    #: What the batch-wide file needs from this image (COCO: the annotations; labels: instance categories).
    meta: dict[str, Any] = dataclasses.field(default_factory=dict)


class ExportFormat(abc.ABC):
    """Base class of export formats.

    Parameters
    ----------
    categories : sequence of str
        The categories, in the order their ids are given (COCO ids from 1, YOLO classes from 0, label values
        from 1).
    polygons : bool
        Write outlines as polygons (COCO; YOLO always does) instead of run-length encoding.
    instances : bool
        One region per connected component (labels: one value per instance).
    """

    name: ClassVar[str]
    summary: ClassVar[str] = ""
    #: Suffix of the file written per image, or None when the whole batch goes into one file.
    suffix: ClassVar[str | None] = None

    def __init__(self, categories: Sequence[str], *, polygons: bool = False, instances: bool = False) -> None:
        self.categories = list(categories)
        self.polygons = polygons
        self.instances = instances

    def regions(self, image: ImageRegions) -> list[Region]:
        """The image's regions as this format writes them: one per connected component with ``instances``."""
        return split_instances(image.regions) if self.instances else list(image.regions)

    @abc.abstractmethod
    def encode(self, image: ImageRegions) -> Encoded:
        """One image's file (or its part of the batch's document). Runs in the runner's workers."""

    @abc.abstractmethod
    def finish(self, output: Path, parts: Sequence[dict[str, Any]]) -> list[Path]:
        """Write the batch-wide file(s) into or at ``output`` from each image's ``Encoded.meta``, in input order
        (``meta["relpath"]``: where the image's own file went, relative to ``output``); returns what was
        written."""


def _load_all() -> None:
    for module in ("coco", "yolo", "labels"):
        importlib.import_module(f"maskcli.formats.{module}")


export_formats: Registry[ExportFormat] = Registry("export format", loader=_load_all)


def split_instances(regions: Sequence[Region]) -> list[Region]:
    """Each region split into its 8-connected components, largest first.

    >>> m = np.zeros((3, 5), bool); m[0, 0] = m[2, 2:5] = True
    >>> [(r.category, int(r.mask.sum())) for r in split_instances([Region("cell", m)])]
    [('cell', 3), ('cell', 1)]
    """
    from maskcli.formats.geometry import components

    return [Region(region.category, part, region.score) for region in regions for part in components(region.mask)]


__all__ = ["Encoded", "ExportFormat", "ImageRegions", "Region", "export_formats", "split_instances"]
