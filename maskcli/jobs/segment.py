"""Making masks for a batch of images: the job that ``maskcli segment`` runs.

>>> from maskcli.jobs.segment import segment_image
>>> from maskcli.methods import methods
>>> import numpy as np
>>> image = np.zeros((4, 4), np.float32); image[1:3, 1:3] = 1
>>> float(segment_image(image, methods.create("otsu")).mask.sum())
4.0
"""

from __future__ import annotations

import dataclasses
from typing import Any, Protocol

import numpy as np

from maskcli.errors import OptionError
from maskcli.io.decode import DEFAULT_MAX_PIXELS, Image, decode_image, read_image
from maskcli.io.files import WriteGate, write_atomic
from maskcli.io.masks import check_bits, encode_binary_mask, encode_mask
from maskcli.io.sinks import Sink
from maskcli.io.sources import Item
from maskcli.masks import check_mask, is_hard
from maskcli.methods.base import Method, Segmentation
from maskcli.work import JobBase, Result, Timer


class Refiner(Protocol):
    """Anything that turns a raw mask into a final one (``maskcli.refine.Refinement``)."""

    def apply(self, mask: np.ndarray, image: np.ndarray) -> np.ndarray: ...


def segment_image(image: np.ndarray, method: Method, refiner: Refiner | None = None) -> Segmentation:
    """The mask of one image: the method, then the refinement chain, with empty or full masks flagged."""
    (segmentation,) = segment_images([image], method, refiner)
    return segmentation


def segment_images(images: list[np.ndarray], method: Method, refiner: Refiner | None = None) -> list[Segmentation]:
    """Masks of several images at once (batched methods see them as one batch)."""
    segmentations = method.compute_batch(images)
    for image, segmentation in zip(images, segmentations):
        # Where a method's output enters the pipeline: a mask off the convention (int64, 0..255) fails here,
        # named, instead of passing unchecked into refinement and encoding.
        if segmentation.binary is None:  # bytes from a method's own 8-bit fast path are 0/255 by construction
            check_mask(segmentation.mask, what=f"the {method.name} method's mask")
        if refiner is not None:
            segmentation.mask = refiner.apply(segmentation.mask, image)
        _flag_degenerate(segmentation)
    return segmentations


def _flag_degenerate(segmentation: Segmentation) -> None:
    share = segmentation.fraction
    segmentation.facts["foreground_fraction"] = round(share, 6)
    warnings = segmentation.facts.get("warnings", [])
    if share == 0.0 and not any("empty" in w for w in warnings):
        segmentation.warn("empty mask: nothing was kept")
    elif share == 1.0 and not any("full" in w for w in warnings):
        segmentation.warn("full mask: everything was kept")


def load_item(item: Item, max_pixels: int, *, gray: bool = False) -> Image:
    """Decode an item's image, from its file or from the bytes read from a stream (``gray``: as grey)."""
    if item.source.data is not None:
        return decode_image(item.source.data, max_pixels=max_pixels, gray=gray)
    return read_image(item.source.path, max_pixels=max_pixels, gray=gray)


def write_output(sink: Sink | None, item: Item, data: bytes, gate: WriteGate) -> str | None:
    """Write an output through its sink (or, without one, to the item's planned destination) and the run's
    ``gate``; returns where."""
    if sink is not None:
        return sink.write(item, data, gate)
    assert item.destination is not None
    write_atomic(item.destination, data, gate=gate)
    return str(item.destination)


def method_input(image: Image, method: Method, refiner: Refiner | None) -> np.ndarray:
    """What the method is given: the integer samples when it works on them and nothing else needs floats (no
    refinement that looks at the image), else the float pixels. Skipping the float copy saves 4 bytes per pixel
    and about a quarter of a threshold's time per image."""
    refiner_looks = refiner is not None and bool(getattr(refiner, "needs_color", True))
    if method.integer_samples and image.samples is not None and not refiner_looks:
        return image.samples
    return image.pixels


def needs_color(method: Method, refiner: Refiner | None) -> bool:
    """Whether the method or the refinement looks at colour (GrabCut and the guided filter do)."""
    return method.needs_color or bool(getattr(refiner, "needs_color", refiner is not None))


@dataclasses.dataclass
class SegmentJob(JobBase):
    """Decode → method → refinement → PNG mask, for :func:`maskcli.pipeline.run`.

    ``sink`` writes the masks (:mod:`maskcli.io.sinks`); without one each goes to its item's destination.
    """

    method: Method
    refiner: Refiner | None = None
    max_pixels: int = DEFAULT_MAX_PIXELS
    mask_bits: int = 8
    sink: Sink | None = None
    #: Write label images (a class index per pixel, ``maskcli.formats.labels``) instead of masks; needs a
    #: method with classes (a semantic CNN) and no refinement.
    labels: bool = False

    def __post_init__(self) -> None:
        if self.labels:
            if not hasattr(self.method, "compute_labels"):
                raise OptionError("labels", f"method {self.method.name!r} has no classes; label images come from "
                                            "a semantic CNN model (`model='deeplabv3-resnet50'` ...)")
            if self.refiner is not None:
                raise OptionError("labels", "refinement works on one mask, not on label images; drop the "
                                            "refinement options or `labels`")
            # The ignore below: a labels method has them (checked when the job is made).
            self.class_names = list(self.method.class_names)  # type: ignore[attr-defined]
        check_bits(self.mask_bits)  # now, not at the first item's encoding

    @property
    def batched(self) -> bool:
        return self.method.batched

    @property
    def batch_size(self) -> int:
        return self.method.batch_size

    @property
    def releases_gil(self) -> bool:
        """Whether decode, method and encode all run in C that releases the GIL: OpenCV's codecs do; a
        refinement may not."""
        return self.method.releases_gil and self.refiner is None and not self.labels

    def load(self, item: Item) -> tuple[Image, Timer]:
        timer = Timer()
        with timer("decode"):
            image = load_item(item, self.max_pixels, gray=not needs_color(self.method, self.refiner))
        return image, timer

    def compute(self, loaded: list[tuple[Image, Timer]]) -> list[Segmentation]:
        timer = Timer()
        with timer("compute"):
            if self.labels:
                pixels = [image.pixels for image, _ in loaded]
                # The ignore below: a labels method has them (checked when the job is made).
                segmentations = self.method.compute_labels(pixels)  # type: ignore[attr-defined]
            else:
                segmentations = segment_images([method_input(image, self.method, self.refiner)
                                                for image, _ in loaded], self.method, self.refiner)
        share = timer.timings["compute"] / len(loaded)
        for _, item_timer in loaded:
            item_timer.timings["compute"] = share
        return segmentations

    def save(self, item: Item, loaded: tuple[Image, Timer], segmentation: Segmentation,
             gate: WriteGate) -> Result:
        image, timer = loaded
        hard = segmentation.binary is not None or is_hard(segmentation.mask)
        with timer("encode"):
            if self.labels:
                from maskcli.formats.labels import encode_labels

                assert segmentation.labels is not None  # a labels job's methods give labels
                data = encode_labels(segmentation.labels)
            elif segmentation.binary is not None:
                data = encode_binary_mask(segmentation.binary)
            else:
                data = encode_mask(segmentation.mask, bits=self.mask_bits, hard=hard)
        facts: dict[str, Any] = {"method": self.method.name, "width": image.width, "height": image.height}
        facts["hard"] = hard
        facts.update(segmentation.facts)
        if image.warnings:
            facts["warnings"] = [*image.warnings, *facts.get("warnings", [])]
        with timer("write"):
            output = write_output(self.sink, item, data, gate)
        return Result(item.index, item.name, output, "written", facts=facts, timings=timer.timings)
