"""Applying masks to a batch of images: the job that ``maskcli apply`` runs.

Each item pairs an image with a mask from one of these sources:

* ``folder``: per-image mask files, matched by relative path and stem (as ``maskcli segment`` writes them);
* ``file``: one static mask for every image;
* ``alpha``: the image's own alpha channel;
* ``records``: the ``output`` of each record ``maskcli segment --json`` printed (the CLI fills ``mask_path``);
* ``method``: a mask method run on the fly (any registered method, the CNN included);
* ``annotations``: a COCO file or a folder of label images (:mod:`maskcli.formats.sources`), matched by file
  name, its chosen classes made one mask.

The mask is fitted to its image (an error naming both sizes, or scaled with ``resize_mask``), adjusted
(``hard``, ``feather``, ``invert``, in that order) and handed to the compositing mode. The result is written in the
input's format where that format can hold it (an alpha result from a JPEG becomes PNG), 16-bit kept where the
format allows, ICC profile and EXIF kept.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path, PurePosixPath
from typing import Any, Literal

import numpy as np

from maskcli.errors import InputError, OptionError
from maskcli.io.decode import DEFAULT_MAX_PIXELS, IMAGE_SUFFIXES, Image
from maskcli.io.encode import FORMATS, encode_image, read_mask, write_atomic
from maskcli.io.sources import Item, Source
from maskcli.jobs.segment import Refiner, load_item, segment_images
from maskcli.masks import require_same_size, resize_mask, to_hard
from maskcli.methods.base import Method
from maskcli.pipeline import Result, Timer

MaskSource = Literal["folder", "file", "alpha", "records", "method", "annotations"]
_ALPHA_FORMATS = {"PNG", "WEBP", "TIFF"}


def output_format(input_suffix: str, requested: str | None, alpha: bool) -> str:
    """The format of an output: the one asked for, else the input's, else PNG; PNG where alpha needs it.

    >>> output_format(".jpg", None, alpha=True), output_format(".jpg", None, alpha=False)
    ('PNG', 'JPEG')
    >>> output_format(".png", "jpg", alpha=True)
    Traceback (most recent call last):
    ...
    maskcli.errors.OptionError: --format: JPEG has no transparency; choose png, webp or tiff, or flatten the result on a colour with -b (e.g. -b white)
    """
    if requested:
        format = FORMATS.get("." + requested.lower().lstrip("."))
        if format is None:
            raise OptionError("--format", f"unknown format {requested!r}; choose png, jpg, webp or tiff")
        if alpha and format not in _ALPHA_FORMATS:
            raise OptionError(
                "--format", f"{format} has no transparency; choose png, webp or tiff, or flatten the result on a "
                "colour with -b (e.g. -b white)"
            )
        return format
    format = FORMATS.get(input_suffix.lower(), "PNG")
    return "PNG" if alpha and format not in _ALPHA_FORMATS else format


def find_mask(folder: Path, source: Source, template: str = "{stem}.png") -> Path:
    """The mask file for ``source`` in ``folder``: the template rendered at the same relative path, else any
    image file there with the same stem. Raises :class:`InputError` saying where it looked.
    """
    rel = source.relpath
    stem = PurePosixPath(rel.name).stem
    fields = {"stem": stem, "name": rel.name, "ext": PurePosixPath(rel.name).suffix.lstrip("."),
              "relpath": str(rel.with_suffix("")), "index": 0}
    try:
        rendered = template.format(**fields)
    except (KeyError, IndexError, ValueError) as error:
        raise OptionError("--mask-name", f"bad template {template!r}: {error}") from None
    candidate = folder / (rendered if "{relpath" in template else rel.parent / rendered)
    if candidate.is_file():
        return candidate
    siblings = folder / rel.parent
    for suffix in sorted(IMAGE_SUFFIXES):
        other = siblings / f"{stem}{suffix}"
        if other.is_file():
            return other
    raise InputError(f"no mask found (looked for {candidate})")


@dataclasses.dataclass
class ApplyJob:
    """Decode image (and mask) → fit and adjust the mask → compositing mode → encode, for the runner."""

    mode: Any  # a registered compositing mode: mode(pixels, mask) -> pixels
    mask_source: MaskSource
    static_mask: Path | None = None
    method: Method | None = None
    refiner: Refiner | None = None
    #: Applied to every mask, whatever its source, once fitted to its image (``apply --refine matting``).
    edge: Refiner | None = None
    #: ``annotations``: a COCO file's or a label folder's masks (``maskcli.formats.sources``).
    annotations: Any = None
    resize_mask: bool = False
    hard: float | None = None
    feather: float = 0.0
    invert: bool = False
    format: str | None = None
    quality: int = 92
    max_pixels: int = DEFAULT_MAX_PIXELS
    _static: np.ndarray | None = dataclasses.field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        if self.mask_source == "file" and self.static_mask is None:
            raise OptionError("--mask", "a static mask file is needed")
        if self.mask_source == "annotations" and self.annotations is None:
            raise OptionError("--masks", "a COCO file or a folder of label images is needed")
        if self.mask_source == "method" and self.method is None:
            raise OptionError("--method", "a method is needed to make masks on the fly")
        if self.hard is not None and not 0 < self.hard <= 1:
            raise OptionError("--hard", f"level must be in (0, 1], got {self.hard}")
        if self.feather < 0:
            raise OptionError("--feather", f"must be at least 0, got {self.feather}")

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_static"] = None  # each worker reads the static mask once for itself
        return state

    @property
    def reads(self) -> list[Path]:
        """Files every item reads (the static mask): no output may replace them."""
        return [self.static_mask] if self.mask_source == "file" and self.static_mask is not None else []

    @property
    def batched(self) -> bool:
        return self.mask_source == "method" and self.method is not None and self.method.batched

    @property
    def batch_size(self) -> int:
        return self.method.batch_size if self.method is not None else 1

    # -- the three stages -------------------------------------------------------------------------------------

    def load(self, item: Item) -> tuple[Image, np.ndarray | None, Timer]:
        timer = Timer()
        with timer("decode"):
            image = load_item(item, self.max_pixels)
            mask = self._stored_mask(item, image)
        return image, mask, timer

    def compute(self, loaded: list[tuple[Image, np.ndarray | None, Timer]]) -> list[tuple[np.ndarray, dict]]:
        facts: list[dict[str, Any]] = [{} for _ in loaded]
        masks = [mask for _, mask, _ in loaded]
        if self.mask_source == "method":
            timer = Timer()
            with timer("segment"):
                assert self.method is not None
                made = segment_images([image.pixels for image, _, _ in loaded], self.method, self.refiner)
            for index, segmentation in enumerate(made):
                masks[index] = segmentation.mask
                facts[index] = {"method": self.method.name, **segmentation.facts}
                loaded[index][2].timings["segment"] = timer.timings["segment"] / len(loaded)
        results = []
        for (image, _, item_timer), mask, item_facts in zip(loaded, masks, facts):
            assert mask is not None
            with item_timer("composite"):
                fitted = self.fit(mask, image)
                if self.edge is not None:
                    fitted = self.edge.apply(fitted, image.pixels)
                fitted = self.adjust(fitted)
                results.append((self.mode(image.pixels, fitted), item_facts))
        return results

    def save(self, item: Item, loaded: tuple[Image, np.ndarray | None, Timer],
             computed: tuple[np.ndarray, dict]) -> Result:
        image, _, timer = loaded
        pixels, facts = computed
        alpha = pixels.ndim == 3 and pixels.shape[2] == 4
        # A planned destination already carries the format's suffix; stdout keeps the input's format.
        suffix = item.destination.suffix if item.destination is not None else "." + (image.format or "png")
        format = output_format(suffix, self.format, alpha)
        with timer("encode"):
            data = encode_image(pixels, format=format, bit_depth=image.bit_depth, quality=self.quality,
                                icc_profile=image.icc_profile, exif=image.exif)
        facts = {"mode": self.mode.name, "format": format, "width": int(pixels.shape[1]),
                 "height": int(pixels.shape[0]), **facts}
        if image.warnings:
            facts["warnings"] = [*image.warnings, *facts.get("warnings", [])]
        if item.destination is None:
            return Result(item.index, item.name, None, "written", facts=facts, timings=timer.timings, data=data)
        with timer("write"):
            write_atomic(item.destination, data)
        return Result(item.index, item.name, str(item.destination), "written", facts=facts, timings=timer.timings)

    # -- masks ------------------------------------------------------------------------------------------------

    def _stored_mask(self, item: Item, image: Image) -> np.ndarray | None:
        if self.mask_source == "method":
            return None
        if self.mask_source == "alpha":
            if image.alpha is None:
                raise InputError("image has no alpha channel to use as its mask")
            return image.alpha
        if self.mask_source == "annotations":
            return self.annotations.load(item, image, max_pixels=self.max_pixels)
        if self.mask_source == "file":
            if self._static is None:
                assert self.static_mask is not None
                self._static = _read_mask_file(self.static_mask, self.max_pixels)
            return self._static
        path = item.extra.get("mask_path")
        if path is None:
            raise InputError(str(item.extra.get("mask_error", "no mask for this image")))
        return _read_mask_file(Path(str(path)), self.max_pixels)

    def fit(self, mask: np.ndarray, image: Image) -> np.ndarray:
        """The mask at the image's size: as it is, scaled (``resize_mask``), or an error naming both sizes."""
        if mask.shape == image.pixels.shape[:2]:
            return mask
        if not self.resize_mask:
            require_same_size(mask, image.pixels.shape)
        return resize_mask(mask, image.pixels.shape[:2])

    def adjust(self, mask: np.ndarray) -> np.ndarray:
        """``hard``, then ``feather``, then ``invert``: the documented order."""
        if self.hard is not None:
            mask = to_hard(mask, self.hard)
        if self.feather > 0:
            from maskcli.refine import feather

            mask = feather(mask, self.feather)
        if self.invert:
            mask = 1.0 - mask
        return mask


def _read_mask_file(path: Path, max_pixels: int) -> np.ndarray:
    try:
        return read_mask(path, max_pixels=max_pixels)
    except InputError as error:
        raise InputError(f"mask {path}: {error}") from None

