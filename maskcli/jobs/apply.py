"""Applying masks to a batch of images: the job that ``maskcli apply`` runs.

Each item pairs an image with a mask from a mask source (:mod:`maskcli.masksources`: a folder matched by relative
path and stem, one static mask, the image's alpha, segment's records, a method run on the fly; or a COCO file or a
folder of label images, :mod:`maskcli.masksources.sets`, its chosen classes made one mask). The mask is
fitted to its image (an error naming both sizes, or scaled with ``resize_mask``), adjusted (``hard``,
``feather``, ``invert``: the refinement chain of :mod:`maskcli.refine`, in its order) and handed to the compositing
mode. The output plan
(:class:`maskcli.io.sinks.OutputPlan`) fixes the format: the input's where that format can hold the result (an
alpha result from a JPEG becomes PNG), 16-bit kept where the format allows, ICC profile and EXIF kept.

A whole batch, from inputs to written images, is :func:`maskcli.batch.apply_batch`.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from maskcli.imageops import BAND_PIXELS, bands, to_unit_float
from maskcli.io.decode import DEFAULT_MAX_PIXELS, Image
from maskcli.io.encode import encode_image, quantise, sample_type
from maskcli.io.files import WriteGate
from maskcli.io.sinks import OutputPlan, Sink
from maskcli.io.sources import Item
from maskcli.jobs.segment import Refiner, load_item, method_input, segment_images, write_output
from maskcli.masks import is_hard, require_same_size, resize_mask
from maskcli.masksources import MaskSource, MethodMasks, StaticMask
from maskcli.work import JobBase, Result, Timer


@dataclasses.dataclass
class Loaded:
    """One decoded item: the image, its stored mask (None when a method makes it), the stage timer."""

    image: Image
    mask: np.ndarray | None
    timer: Timer
    #: The output's format, decided once per item (:meth:`OutputPlan.format_of`): the composite's samples and the
    #: encoder both follow it. None for a video frame.
    format: str | None = None


@dataclasses.dataclass
class ApplyJob(JobBase):
    """Decode image (and mask) → fit and adjust the mask → compositing mode → encode, for the runner."""

    mode: Any  # a registered compositing mode: mode(pixels, mask) -> pixels
    masks: MaskSource
    plan: OutputPlan = dataclasses.field(default_factory=OutputPlan)
    sink: Sink | None = None
    #: The refinement chain (:func:`maskcli.refine.refinement`), run on each mask once it fits its image.
    refiner: Refiner | None = None
    resize_mask: bool = False
    quality: int = 92
    max_pixels: int = DEFAULT_MAX_PIXELS

    def __post_init__(self) -> None:
        # An alpha matte (refine="matting") comes with its own foreground estimate for the soft edge's colour.
        estimator = getattr(self.refiner, "foreground_estimator", None)
        if estimator is not None and hasattr(self.mode, "with_foreground"):
            self.mode = self.mode.with_foreground(estimator)

    @property
    def reads(self) -> list[Path]:
        """Files every item reads (the static mask, the mode's background image): no output may replace them."""
        static = [self.masks.path] if isinstance(self.masks, StaticMask) else []
        return static + [Path(path) for path in getattr(self.mode, "reads", ())]

    @property
    def batched(self) -> bool:
        return self.masks.method is not None and self.masks.method.batched

    @property
    def batch_size(self) -> int:
        return self.masks.method.batch_size if self.masks.method is not None else 1

    # -- the three stages -------------------------------------------------------------------------------------

    def load(self, item: Item) -> Loaded:
        timer = Timer()
        with timer("decode"):
            image = load_item(item, self.max_pixels)
            mask = self.masks.load(item, image, max_pixels=self.max_pixels)
        return Loaded(image, mask, timer, self.plan.format_of(item.source, image.format))

    def compute(self, loaded: list[Loaded]) -> list[tuple[np.ndarray, dict]]:
        masks, facts = self.masks_of(loaded)
        results = []
        for entry, mask, item_facts in zip(loaded, masks, facts):
            if mask.shape != entry.image.shape[:2] and self.resize_mask and _stretched(mask.shape, entry.image.shape):
                item_facts.setdefault("warnings", []).append(
                    f"mask is {mask.shape[1]}×{mask.shape[0]}, stretched to the image's {entry.image.width}×"
                    f"{entry.image.height} (another aspect ratio)")
            with entry.timer("composite"):
                results.append((self.composite(entry.image, self.adjust(mask, entry.image), entry.format),
                                item_facts))
            if not self.batched:
                # Only the result is written from here on: let the input's pixels and the mask go before the
                # encoder makes its copies (a batch may be retried item by item, so batched jobs keep them).
                entry.mask = None
                entry.image.release()
        return results

    def masks_of(self, loaded: list[Loaded]) -> tuple[list[np.ndarray], list[dict[str, Any]]]:
        """Each item's mask as stored or as the method makes it (in one batch), with the method's facts."""
        facts: list[dict[str, Any]] = [{} for _ in loaded]
        masks = [entry.mask for entry in loaded]
        method = self.masks.method
        if method is not None:
            timer = Timer()
            with timer("segment"):
                made = segment_images([method_input(entry.image, method, None) for entry in loaded], method)
            for index, segmentation in enumerate(made):
                masks[index] = segmentation.binary if segmentation.binary is not None else segmentation.mask
                facts[index] = {"method": method.name, **segmentation.facts}
                loaded[index].timer.timings["segment"] = timer.timings["segment"] / len(loaded)
        assert all(mask is not None for mask in masks)
        return masks, facts  # type: ignore[return-value]  # checked just above: no mask is None

    def adjust(self, mask: np.ndarray, image: Image) -> np.ndarray:
        """The mask fitted to its image and through the refinement chain (without one, integer levels stay
        integer: they are converted band by band)."""
        fitted = self.fit(mask, image)
        if self.refiner is not None:
            fitted = self.refiner.apply(_unit(fitted), image.pixels)
        return fitted

    def _on_samples(self, image: Image, mask: np.ndarray) -> np.ndarray | None:
        """The mode's 8-bit result straight from the image's samples, for a hard mask where the mode has one
        (:meth:`maskcli.composite.base.Mode.on_samples`); None otherwise."""
        from maskcli.composite.base import Mode

        if image.samples is None or image.samples.dtype != np.uint8 or type(self.mode).on_samples is Mode.on_samples:
            return None
        inside = _hard_inside(mask)
        return None if inside is None else self.mode.on_samples(image.samples, inside)

    def composite(self, image: Image, mask: np.ndarray, format: str | None = None) -> np.ndarray:
        """The mode's result: float32 for a small image; for a large one, computed band by band (where the mode
        allows) straight into samples of the output's type, so that no float copy of the whole image is held.
        On a 100-megapixel RGB photo this took the peak of a cut-out from about 45 to under 16 bytes per pixel
        (benchmarks/bench_memory.py). A mode that shows a window of the image (crop) has only that window
        composited; one that needs figures from the whole image (enhance's contrast pivot, its CLAHE lightness) gets
        them from survey passes over the same bands first.
        """
        mode = self.mode
        fast = self._on_samples(image, mask)
        if fast is not None:
            return fast
        height, width = image.height, image.width
        halo = mode.halo(mask) if height * width > BAND_PIXELS else None
        if halo is None:
            return mode(image.pixels, _unit(mask))
        box = mode.window(mask)
        top, left, bottom, right = box if box is not None else (0, 0, height, width)
        t, l, b, r = max(top, 0), max(left, 0), min(bottom, height), min(right, width)
        columns = slice(l, r) if (l, r) != (0, width) else slice(None)

        def rows_of(rows: slice) -> tuple[slice, np.ndarray, np.ndarray]:
            """Rows ``rows`` of the window with their context: (their place in the image, pixels, mask)."""
            start, stop = max(t, t + rows.start - halo), min(b, t + rows.stop + halo)
            source = image.samples if image.samples is not None else image.pixels
            pixels = source[start:stop, columns]
            pixels = to_unit_float(pixels) if pixels.dtype != np.float32 else np.ascontiguousarray(pixels)
            return slice(start, stop), pixels, _unit(np.ascontiguousarray(mask[start:stop, columns]))

        # Bands at least twice as tall as their context, so that a wide context (a strong blur) costs at most
        # twice the work of the whole image.
        row_bands = bands(b - t, r - l, max(BAND_PIXELS, 8 * (r - l), 2 * halo * (r - l)))
        surveys: list[np.ndarray] = []
        while True:  # the survey passes, each over every band (rows of the window, context trimmed off)
            stacked: np.ndarray | None = None
            for rows in row_bands:
                place, pixels, part_mask = rows_of(rows)
                figures = mode.survey(pixels, part_mask, slice(place.start - t, place.stop - t), surveys)
                if figures is None:
                    break
                if stacked is None:
                    stacked = np.empty((b - t,) + figures.shape[1:], figures.dtype)
                stacked[rows] = figures[t + rows.start - place.start:t + rows.stop - place.start]
            if stacked is None:
                break
            surveys.append(mode.surveyed(stacked, len(surveys)))
        # The samples the output's format will hold: the item's format; without an item (a video frame, a direct
        # call), the plan's for the decoded format, as for an image read from a stream.
        kind = sample_type(format or self.plan.format_for("." + (image.format or "png").lower()), image.bit_depth)
        out: np.ndarray | None = None
        for rows in row_bands:
            place, pixels, part_mask = rows_of(rows)
            part = mode.band(pixels, part_mask, slice(place.start - t, place.stop - t), (height, width), surveys)
            part = part[t + rows.start - place.start:t + rows.stop - place.start]
            if out is None:
                out = np.empty((bottom - top, right - left) + part.shape[2:], kind)
                if (t, l, b, r) != (top, left, bottom, right):
                    out[...] = quantise(np.broadcast_to(np.float32(mode.padding), (1, 1) + part.shape[2:]).copy(), kind)
            out[t - top + rows.start:t - top + rows.stop, l - left:r - left] = quantise(part, kind)
        assert out is not None
        return out

    def save(self, item: Item, loaded: Loaded, computed: tuple[np.ndarray, dict], gate: WriteGate) -> Result:
        image, timer = loaded.image, loaded.timer
        pixels, facts = computed
        format = loaded.format
        assert format is not None  # decided when the item was loaded
        with timer("encode"):
            data = encode_image(pixels, format=format, bit_depth=image.bit_depth, quality=self.quality,
                                icc_profile=image.icc_profile, exif=image.exif)
        facts = {"mode": self.mode.name, "format": format, "width": int(pixels.shape[1]),
                 "height": int(pixels.shape[0]), **facts}
        if image.warnings:
            facts["warnings"] = [*image.warnings, *facts.get("warnings", [])]
        with timer("write"):
            output = write_output(self.sink, item, data, gate)
        return Result(item.index, item.name, output, "written", facts=facts, timings=timer.timings)

    # -- masks ------------------------------------------------------------------------------------------------

    def fit(self, mask: np.ndarray, image: Image) -> np.ndarray:
        """The mask at the image's size: as it is, scaled (``resize_mask``), or an error naming both sizes."""
        if mask.shape == image.shape[:2]:
            return mask
        if not self.resize_mask:
            require_same_size(mask, image.shape)
        height, width = image.shape[:2]
        return resize_mask(_unit(mask), (height, width))


def _stretched(mask_shape: tuple[int, ...], image_shape: tuple[int, ...]) -> bool:
    """Whether scaling a mask to its image changes its aspect ratio by more than a pixel's rounding.

    >>> _stretched((50, 100), (100, 200)), _stretched((50, 100), (100, 100))
    (False, True)
    """
    (mh, mw), (ih, iw) = mask_shape[:2], image_shape[:2]
    return abs(mw * ih / mh - iw) > max(1.0, iw / mw) + 0.5


def _hard_inside(mask: np.ndarray) -> np.ndarray | None:
    """Where a hard mask keeps the image (nonzero: bool, or the 0/255 levels themselves), or None for a soft
    mask."""
    if mask.dtype == np.uint8:
        between = cv2.inRange(mask, 1, 254)  # OpenCV: one pass, no temporary the size of the image in numpy
        return mask if not cv2.countNonZero(between) else None
    return mask >= 0.5 if is_hard(mask) else None


def _unit(mask: np.ndarray) -> np.ndarray:
    """A mask in the convention (float32 in [0, 1]) from integer levels; a float mask as it is."""
    return to_unit_float(mask) if mask.dtype in (np.uint8, np.uint16) else mask


__all__ = ["ApplyJob", "MethodMasks"]
