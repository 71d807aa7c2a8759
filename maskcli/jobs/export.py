"""Exporting masks to a data-set format: the job that ``maskcli export`` runs.

Each item is one mask file (a binary mask as ``maskcli segment`` writes it, or a label image of a folder with a
``labels.json`` legend). ``load`` reads it into regions, ``compute`` encodes them in the chosen format, and
``save`` writes the image's own file (YOLO, labels) atomically; what spans the batch (COCO's document, the
legend, ``classes.txt``) comes back in each result's ``data`` and :func:`finish_export` writes it once every
item is done.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from pathlib import Path, PurePosixPath
from typing import Any

from maskcli.errors import InputError, OptionError
from maskcli.formats import Encoded, ExportFormat, ImageRegions, Region
from maskcli.formats.labels import LabelFolder
from maskcli.io.decode import DEFAULT_MAX_PIXELS
from maskcli.io.files import WriteGate, write_atomic
from maskcli.io.pairing import index_files, pair_key
from maskcli.io.sources import Item, Source
from maskcli.work import JobBase, Result, Timer


def image_size(path: str) -> tuple[int, int]:
    """(height, width) of an image file, from its header only (EXIF rotation applied, as decoding does)."""
    from PIL import Image as PILImage

    try:
        with PILImage.open(path) as header:
            width, height = header.size
            orientation = header.getexif().get(0x0112, 1)
    except OSError as error:
        raise InputError(f"image {path}: cannot read ({error})") from None
    return (width, height) if orientation in (5, 6, 7, 8) else (height, width)


@dataclasses.dataclass
class ExportJob(JobBase):
    """Mask file → regions → the format's encoding → its file, for :func:`maskcli.pipeline.run`.

    Parameters
    ----------
    format : ExportFormat
        A registered export format, built with the categories.
    category : str
        The class of binary masks (label images name their own).
    level : float
        Binary masks: pixels at or above this level are foreground (soft masks are binarised here).
    labels : LabelFolder, optional
        Set when the masks are label images of this folder.
    output : Path, optional
        The output folder of per-image formats (each result records its file relative to it).

    images : ImageIndex, optional
        The images the masks belong to: each mask is recorded under its image's name and must have its size.
        Without it, a mask is recorded under its own relative path.
    """

    format: ExportFormat
    category: str = "foreground"
    level: float = 0.5
    labels: LabelFolder | None = None
    output: Path | None = None
    images: ImageIndex | None = None
    max_pixels: int = DEFAULT_MAX_PIXELS

    def __post_init__(self) -> None:
        if not 0.0 < self.level <= 1.0:
            raise OptionError("level", f"must be in (0, 1], not {self.level}")

    def load(self, item: Item) -> tuple[ImageRegions, Timer]:
        from maskcli.io.masks import read_mask

        timer = Timer()
        with timer("decode"):
            if self.labels is not None:
                regions, (height, width) = self.labels.regions(item.source.path)
            else:
                mask = read_mask(item.source.path, max_pixels=self.max_pixels) >= self.level
                height, width = mask.shape
                regions = [Region(self.category, mask)]
            file_name = item.source.relpath.as_posix()
            if self.images is not None:
                image = self.images.find(item.source.relpath)
                image_height, image_width = image_size(image.path)
                if (image_height, image_width) != (height, width):
                    raise InputError(f"mask is {width}×{height} but its image {image.path} is "
                                     f"{image_width}×{image_height}")
                file_name = image.relpath.as_posix()
        return ImageRegions(file_name, int(width), int(height), regions), timer

    def compute(self, loaded: list[tuple[ImageRegions, Timer]]) -> list[Encoded]:
        encoded = []
        for image, timer in loaded:
            with timer("encode"):
                encoded.append(self.format.encode(image))
        return encoded

    def save(self, item: Item, loaded: tuple[ImageRegions, Timer], encoded: Encoded, gate: WriteGate) -> Result:
        image, timer = loaded
        meta = dict(encoded.meta)
        facts: dict[str, Any] = {"format": self.format.name, "file_name": image.file_name,
                                 "regions": len(image.regions)}
        if item.destination is not None:
            with timer("write"):
                write_atomic(item.destination, encoded.data, gate=gate)
            if self.output is not None:
                meta["relpath"] = item.destination.relative_to(self.output).as_posix()
        facts["export"] = meta  # what the batch-wide file needs; finish_export takes it from here
        output = str(item.destination) if item.destination is not None else None
        return Result(item.index, item.name, output, "written", facts=facts, timings=timer.timings)


def finish_export(format: ExportFormat, output: Path, results: Sequence[Result]) -> list[Path]:
    """Write the batch-wide file(s) from the written results, in input order."""
    return format.finish(output, [result.facts["export"] for result in results if result.status == "written"])


@dataclasses.dataclass
class ImageIndex:
    """The images of a folder (walked recursively) by key (:mod:`maskcli.io.pairing`), for pairing masks."""

    folder: Path
    images: Mapping[str, Source] = dataclasses.field(default_factory=dict)

    @classmethod
    def of(cls, folder: Path) -> ImageIndex:
        if not folder.is_dir():
            raise OptionError("images", f"{folder} is not a folder")
        return cls(folder, index_files(folder))

    def find(self, relpath: PurePosixPath) -> Source:
        """The image with the mask's relative path and stem; an :class:`InputError` when there is none."""
        image = self.images.get(pair_key(relpath))
        if image is None:
            raise InputError(f"no image named {pair_key(relpath)}.* in {self.folder}")
        return image
