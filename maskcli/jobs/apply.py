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
from maskcli.imageops import BAND_PIXELS, bands, to_unit_float
from maskcli.io.encode import FORMATS, encode_image, mask_from_image, quantise, sample_type, write_atomic
from maskcli.io.sources import Item, Source
from maskcli.jobs.segment import Refiner, load_item, method_input, segment_images
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
class Loaded:
    """One decoded item: the image, its stored mask (None when a method makes it), the stage timer."""

    image: Image
    mask: np.ndarray | None
    timer: Timer


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

    def load(self, item: Item) -> Loaded:
        timer = Timer()
        with timer("decode"):
            image = load_item(item, self.max_pixels)
            mask = self._stored_mask(item, image)
        return Loaded(image, mask, timer)

    def compute(self, loaded: list[Loaded]) -> list[tuple[np.ndarray, dict]]:
        facts: list[dict[str, Any]] = [{} for _ in loaded]
        masks = [entry.mask for entry in loaded]
        if self.mask_source == "method":
            timer = Timer()
            with timer("segment"):
                assert self.method is not None
                made = segment_images([method_input(entry.image, self.method, self.refiner) for entry in loaded],
                                      self.method, self.refiner)
            for index, segmentation in enumerate(made):
                masks[index] = segmentation.binary if segmentation.binary is not None else segmentation.mask
                facts[index] = {"method": self.method.name, **segmentation.facts}
                loaded[index].timer.timings["segment"] = timer.timings["segment"] / len(loaded)
        results = []
        for entry, mask, item_facts in zip(loaded, masks, facts):
            assert mask is not None
            with entry.timer("composite"):
                fitted = self.fit(mask, entry.image)
                if self.edge is not None:
                    fitted = self.edge.apply(_unit(fitted), entry.image.pixels)
                fitted = self.adjust(fitted)
                results.append((self.composite(entry.image, fitted), item_facts))
            if not self.batched:
                # Only the result is written from here on: let the input's pixels and the mask go before the
                # encoder makes its copies (a batch may be retried item by item, so batched jobs keep them).
                entry.mask = None
                entry.image.release()
        return results

    def composite(self, image: Image, mask: np.ndarray) -> np.ndarray:
        """The mode's result: float32 for a small image; for a large one, computed band by band (where the mode
        allows) straight into samples of the output's type, so that no float copy of the whole image is held.

        On a 100-megapixel RGB photo this took the peak of a cut-out from about 45 to under 16 bytes per pixel
        (benchmarks/bench_memory.py).
        """
        height, width = image.height, image.width
        halo = self.mode.halo(mask) if height * width > BAND_PIXELS else None
        if halo is None:
            return self.mode(image.pixels, _unit(mask))
        kind = sample_type(self._format_for(image), image.bit_depth)
        out: np.ndarray | None = None
        for rows in bands(height, width, max(BAND_PIXELS, 8 * width)):
            top, bottom = rows.start, rows.stop
            start, stop = max(0, top - halo), min(height, bottom + halo)
            if image.samples is not None:
                pixels = to_unit_float(image.samples[start:stop])
            else:
                pixels = image.pixels[start:stop]
            part = self.mode(pixels, _unit(mask[start:stop]))[top - start:bottom - start]
            if out is None:
                out = np.empty((height, width) + part.shape[2:], kind)
            out[top:bottom] = quantise(part, kind)
        assert out is not None
        return out

    def _format_for(self, image: Image) -> str:
        # Only the sample type matters here; the file's format is fixed in save (the same rule, same answer).
        alpha = bool(getattr(self.mode, "output_alpha", False))
        return output_format("." + (image.format or "png").lower(), self.format, alpha)

    def save(self, item: Item, loaded: Loaded, computed: tuple[np.ndarray, dict]) -> Result:
        image, timer = loaded.image, loaded.timer
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
        if mask.shape == image.shape[:2]:
            return mask
        if not self.resize_mask:
            require_same_size(mask, image.shape)
        return resize_mask(_unit(mask), image.shape[:2])

    def adjust(self, mask: np.ndarray) -> np.ndarray:
        """``hard``, then ``feather``, then ``invert``: the documented order."""
        if self.hard is None and not self.feather > 0 and not self.invert:
            return mask  # integer levels stay integer (converted band by band)
        mask = _unit(mask)
        if self.hard is not None:
            mask = to_hard(mask, self.hard)
        if self.feather > 0:
            from maskcli.refine import feather

            mask = feather(mask, self.feather)
        if self.invert:
            mask = 1.0 - mask
        return mask


def _unit(mask: np.ndarray) -> np.ndarray:
    """A mask in the convention (float32 in [0, 1]) from integer levels; a float mask as it is."""
    return to_unit_float(mask) if mask.dtype in (np.uint8, np.uint16) else mask


def _read_mask_file(path: Path, max_pixels: int) -> np.ndarray:
    """A mask file's mask: its integer levels when it has plain grey ones (1 byte per pixel instead of 4 until
    used), else the mask convention."""
    from maskcli.io.decode import read_image

    try:
        image = read_image(path, max_pixels=max_pixels)
    except InputError as error:
        raise InputError(f"mask {path}: {error}") from None
    if image.alpha is None and image.samples is not None and image.samples.ndim == 2:
        return image.samples
    return mask_from_image(image)

