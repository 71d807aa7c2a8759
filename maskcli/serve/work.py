"""One request's work, done by the library's own jobs: :class:`~maskcli.jobs.segment.SegmentJob` and
:class:`~maskcli.jobs.apply.ApplyJob`, their outputs kept in memory instead of written to files.

The work comes in three steps so that the server can run a batched method (the CNN) for many requests at once:
:meth:`Work.load` decodes the upload, :meth:`Work.model_input` is what the method is given, and
:meth:`Work.finish` runs the rest of the job (refinement, compositing, encoding) on the method's result, or runs
the whole job when no batch ran.

>>> import numpy as np
>>> from maskcli.io.encode import encode_image
>>> from maskcli.methods import methods
>>> from maskcli.serve.options import Plan
>>> picture = np.zeros((6, 6), np.float32); picture[2:4, 2:4] = 1
>>> work = Work.segment(Plan(methods.create("otsu"), {}, "PNG"), encode_image(picture, format="PNG"), "a.png")
>>> work.load(); output = work.finish()
>>> output.media_type, output.record["foreground_fraction"], output.data[:4]
('image/png', 0.111111, b'\\x89PNG')
"""

from __future__ import annotations

import dataclasses
from pathlib import PurePosixPath
from typing import Any, ClassVar

import numpy as np

from maskcli.io.decode import DEFAULT_MAX_PIXELS, Image
from maskcli.io.files import WriteGate
from maskcli.io.sinks import OutputPlan
from maskcli.io.sources import Item, Source
from maskcli.serve.options import MEDIA_TYPES, Plan


class MemorySink:
    """A sink that keeps the one output's bytes (a request's answer) instead of writing a file."""

    def __init__(self, plan: OutputPlan) -> None:
        self.plan = plan
        self.data: bytes | None = None

    def items(self, sources: Any) -> Any:  # the server makes its one item itself
        raise NotImplementedError

    def write(self, item: Item, data: bytes, gate: WriteGate) -> str | None:
        self.data = data
        return None


@dataclasses.dataclass
class UploadedMask:
    """The mask uploaded with the image (``POST /apply`` with a ``mask`` part), decoded under the pixel limit."""

    data: bytes
    name: ClassVar[str] = "upload"
    method: ClassVar[Any] = None

    def pair(self, source: Source) -> None:
        return None

    def load(self, item: Item, image: Image, *, max_pixels: int) -> np.ndarray:
        from maskcli.errors import InputError, PixelLimit
        from maskcli.io.decode import decode_image
        from maskcli.io.masks import mask_from_image

        try:
            return mask_from_image(decode_image(self.data, max_pixels=max_pixels))
        except PixelLimit as error:
            raise PixelLimit(f"mask: {error}") from None
        except InputError as error:
            raise InputError(f"mask: {error}") from None


class Computed:
    """The method as a job sees it once a batch has run it: the same method, its results already made."""

    def __init__(self, method: Any, segmentations: list[Any]) -> None:
        self._method = method
        self._segmentations = segmentations

    def __getattr__(self, name: str) -> Any:
        return getattr(self._method, name)

    def compute_batch(self, images: Any) -> list[Any]:
        return self._segmentations


@dataclasses.dataclass
class Output:
    """A request's answer: the bytes, their media type and the item's record."""

    data: bytes
    media_type: str
    record: dict[str, Any]


class Work:
    """One upload through a job, in steps (see the module)."""

    def __init__(self, plan: Plan, job_of: Any, data: bytes, name: str, method: Any) -> None:
        self.plan = plan
        self.job_of = job_of  # method (the plan's, or a Computed one) -> the job
        self.method = method
        # No suffix: the output format follows the decoded format, as for an image read from stdin.
        self.item = Item(0, Source(name, PurePosixPath("upload"), data=data))
        self.loaded: Any = None

    @classmethod
    def segment(cls, plan: Plan, data: bytes, name: str, max_pixels: int = DEFAULT_MAX_PIXELS) -> Work:
        from maskcli.jobs.segment import SegmentJob
        from maskcli.refine import refinement

        refiner = refinement(plan.refinement)

        def job_of(method: Any) -> SegmentJob:
            return SegmentJob(method, refiner, max_pixels=max_pixels, mask_bits=plan.mask_bits,
                              sink=MemorySink(OutputPlan.for_masks()))

        return cls(plan, job_of, data, name, plan.method)

    @classmethod
    def apply(cls, plan: Plan, data: bytes, name: str, mask: bytes | None = None,
              max_pixels: int = DEFAULT_MAX_PIXELS) -> Work:
        from maskcli.jobs.apply import ApplyJob
        from maskcli.masksources import AlphaMasks, MethodMasks
        from maskcli.refine import refinement

        refiner = refinement(plan.refinement)
        output_plan = OutputPlan.for_images(plan.format, alpha=bool(getattr(plan.mode, "output_alpha", False)))

        def job_of(method: Any) -> ApplyJob:
            masks: Any = MethodMasks(method) if method is not None else UploadedMask(mask) if mask is not None \
                else AlphaMasks()
            return ApplyJob(plan.mode, masks, output_plan, MemorySink(output_plan), refiner=refiner,
                            resize_mask=plan.resize_mask, quality=plan.quality, max_pixels=max_pixels)

        return cls(plan, job_of, data, name, plan.method)

    @property
    def batched(self) -> bool:
        """Whether the method is best run in batches shared with other requests (a CNN)."""
        return self.method is not None and bool(self.method.batched)

    def load(self) -> None:
        """Decode the upload (and its mask)."""
        self.loaded = self.job_of(self.method).load(self.item)

    def model_input(self) -> np.ndarray:
        """What the method is given for this image, as the job would give it."""
        from maskcli.jobs.segment import method_input

        job = self.job_of(self.method)
        image = self.loaded[0] if isinstance(self.loaded, tuple) else self.loaded.image
        return method_input(image, self.method, getattr(job, "refiner", None) if self.plan.mode is None else None)

    def finish(self, segmentation: Any = None, batch_ms: float | None = None) -> Output:
        """The rest of the job (all of it without ``segmentation``, the method's result from a batch, which took
        ``batch_ms`` from the request's arrival in its queue to its result)."""
        method = self.method if segmentation is None else Computed(self.method, [segmentation])
        job = self.job_of(method)
        (computed,) = job.compute([self.loaded])
        result = job.save(self.item, self.loaded, computed, WriteGate())  # the sink keeps the bytes: no file
        data = job.sink.data
        assert data is not None
        record = result.record()
        format = record.get("format", "PNG")
        if self.plan.mode is None and self.plan.format not in (None, "PNG"):
            data = _mask_as(data, self.plan.format, self.plan.quality)
            format = self.plan.format
        record["format"] = format
        if batch_ms is not None:
            record["timings_ms"]["batch"] = round(batch_ms, 2)
        for key in ("output", "relpath"):
            record.pop(key, None)
        return Output(data, MEDIA_TYPES.get(format, "application/octet-stream"), record)


def _mask_as(png: bytes, format: str, quality: int) -> bytes:
    """A mask PNG written in another format (a grey image, 8- or 16-bit as the format allows)."""
    from maskcli.io.decode import decode_image
    from maskcli.io.encode import encode_image

    mask = decode_image(png)
    return encode_image(mask.pixels, format=format, bit_depth=mask.bit_depth, quality=quality)


__all__ = ["Computed", "MemorySink", "Output", "UploadedMask", "Work"]
