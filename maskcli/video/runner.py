"""Videos in a batch: each video's frames flow through the same job and engine as images do.

:func:`run_media` is :func:`maskcli.pipeline.run` for batches that may hold videos: images go to the runner as
before; a video becomes a stream of frame items, decoded one at a time and fed to the local engine
(:class:`~maskcli.engines.threads.InProcess`: decoding ahead, a CNN's batches, several frames at once), and comes back
as one result naming its output. Only a small window of frames is ever in flight, so memory stays flat however long
the video is.

What a video becomes depends on the job:

* ``segment``: one mask per frame under the output folder (``{stem}/{frame:06d}.png`` by default; a name
  template with ``{frame}`` says otherwise), or a lossless mask video when the output's name ends in a video suffix;
* ``apply``: a video of the composites with the source's frame count, timestamps, size, rotation, colour tags and
  audio (copied without re-encoding); a cut-out with transparency goes to a codec that carries it.

Masks may be smoothed over time (:class:`maskcli.video.temporal.TemporalSmoother`) before they are written or
composited. A video that stops decoding part way gives the frames it has, then fails with the reason.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Generator, Iterable, Iterator
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from maskcli.errors import Interrupted, MaskcliError, OptionError, OutputTaken
from maskcli.imageops import to_unit_float
from maskcli.io.ahead import ReadAhead
from maskcli.io.decode import Image
from maskcli.io.encode import quantise
from maskcli.io.files import WriteGate, write_atomic
from maskcli.io.masks import encode_binary_mask, encode_mask
from maskcli.io.sources import Destinations, Item, Source, guard_inputs
from maskcli.io.video import (
    ANIMATION_SUFFIXES,
    VIDEO_SUFFIXES,
    Frame,
    Prepared,
    VideoInfo,
    VideoReader,
    VideoWriter,
    check_output,
    container_alpha,
    is_video_path,
    prepare_frame,
)
from maskcli.masks import is_hard
from maskcli.pipeline import run
from maskcli.video.temporal import TemporalSmoother
from maskcli.work import JobBase, Result, Timer, check_job, failed


@dataclasses.dataclass
class FrameSource(Source):
    """A source that is one decoded frame of a video."""

    frame: Frame | None = dataclasses.field(default=None, repr=False)


@dataclasses.dataclass
class FrameResult(Result):
    """A frame's result inside a video's run: what it decoded to and its mask, handed back in frame order."""

    frame: Frame | None = None
    image: Image | None = None
    mask: np.ndarray | None = None
    #: The frame's output (mask samples, a composite, a PNG), when the engine made it.
    payload: Any = None


def is_video_item(item: Item) -> bool:
    """Whether an item's input is read as a video."""
    return item.source.data is None and not item.source.error and is_video_path(item.source.path)


def run_media(items: Iterable[Item], job: Any, *, temporal: float | None = None, executor: Any = None,
              jobs: int | None = None, ordered: bool = True, fail_fast: bool = False,
              reads: Iterable[Any] = ()) -> Generator[Result, None, None]:
    """:func:`maskcli.pipeline.run` for a batch of images and videos, one result per input.

    Parameters
    ----------
    temporal : float, optional
        Smooth each video's masks over time with this strength (:class:`~maskcli.video.temporal.TemporalSmoother`).
    executor, jobs, ordered, fail_fast, reads
        As for :func:`maskcli.pipeline.run`; a video always runs on the local engine, in input order.
    """
    reads = [*reads]
    items = guard_inputs(items, also=[*check_job(job).reads, *reads])
    options = {"executor": executor, "jobs": jobs, "ordered": ordered, "fail_fast": fail_fast, "reads": reads}
    if not any(is_video_item(item) for item in items):
        yield from run(items, job, **options)
        return
    images: list[Item] = []
    try:
        for item in items:
            if not is_video_item(item):
                images.append(item)
                continue
            if images:
                for result in run(images, job, **options):
                    yield result
                    if fail_fast and result.status == "failed":
                        return
                images = []
            result = run_video(item, job, temporal=temporal, jobs=jobs)
            yield result
            if fail_fast and result.status == "failed":
                return
        if images:
            yield from run(images, job, **options)
    except KeyboardInterrupt as stop:
        if isinstance(stop, Interrupted):
            raise
        raise Interrupted([]) from None


def run_video(item: Item, job: Any, *, temporal: float | None = None, jobs: int | None = None) -> Result:
    """Run ``job`` over the frames of one video item and write its output; one result for the video."""
    from maskcli.cores import cores_for
    from maskcli.engines.threads import InProcess

    if item.error:
        return failed(item, item.error)
    if item.skip:
        return Result(item.index, item.name, _str(item.destination), "skipped")
    timer = Timer()
    gate = WriteGate()  # this video's writes: its frames' files, stopped with the frames' engine
    try:
        output = _VideoOutput.for_job(job, item, gate)
        with VideoReader(item.source.path, max_pixels=getattr(job, "max_pixels", None)) as reader:
            output.like = reader.info
            smoother = TemporalSmoother(temporal) if temporal else None
            # Without smoothing, each frame's output is made in the engine's threads, side by side; with it, in
            # frame order here.
            stage = _FrameStage(job, None if smoother is not None else output.render)
            count = 0
            try:
                engine = InProcess(threads=max(1, cores_for(jobs)))
                # Frames are decoded on a thread of their own while this one encodes: FFmpeg releases the GIL.
                with ReadAhead(reader.frames(), depth=4) as decoded:
                    results = engine.execute(stage, _frame_items(item, decoded), ordered=True, gate=gate)
                    count = _write_frames(results, output, job, smoother, timer)
                with timer("write"):
                    path = output.finish(reader)
            except BaseException:
                output.abort()
                raise
    except _FrameFailed as error:
        return failed(item, str(error))
    except (MaskcliError, OSError) as error:
        return failed(item, error)
    facts = {"video": True, "frames": count, "width": reader.info.width, "height": reader.info.height,
             "audio": reader.info.has_audio, **output.facts}
    if smoother is not None:
        facts["temporal"] = {"strength": temporal, "cuts": smoother.cuts}
    result = Result(item.index, item.name, path, "written", facts=facts, timings=timer.timings,
                    relpath=item.source.relpath.as_posix())
    if reader.error:  # the frames before the damage are written; the video still counts as failed
        result.status, result.error = "failed", f"{reader.error}; {count} frames written to {path}"
    return result


def _write_frames(results: Iterator[Result], output: _VideoOutput, job: Any, smoother: TemporalSmoother | None,
                  timer: Timer) -> int:
    """Write the frames' results in frame order (smoothed first, when asked); how many were written."""
    count = 0
    for result in results:
        if result.status == "failed" or not isinstance(result, FrameResult):
            raise _FrameFailed(f"frame {count + 1}: {result.error}")
        assert result.frame is not None  # every frame's result carries its frame
        payload = result.payload
        if smoother is not None:  # in frame order, here: each mask depends on the one before
            assert result.image is not None and result.mask is not None
            with timer("temporal"):
                mask = to_unit_float(result.mask) if result.mask.dtype == np.uint8 else result.mask
                hard = is_hard(mask)
                mask = smoother(mask, result.frame.pixels[..., :3])
                if hard:  # a hard method's masks stay hard: the average is a vote over time
                    mask = (mask >= 0.5).astype(np.float32)
                payload = output.render(result.image, mask, job)
        with timer("write"):
            output.put(result.frame, payload)
        count += 1
    return count


class _FrameFailed(Exception):
    pass


def _str(path: Path | None) -> str | None:
    return None if path is None else str(path)


def _frame_items(item: Item, frames: Iterable[Frame]) -> Iterator[Item]:
    """A video's frames as items, as the engine asks for them."""
    for frame in frames:
        source = FrameSource(item.source.path, item.source.relpath, frame=frame)
        yield Item(frame.index, source, mask=item.mask)  # a video's masks: each frame reads its own


class _FrameStage(JobBase):
    """The job's load and compute on video frames; ``render`` (when given) makes each frame's output in the
    engine's save threads. What comes back to the video's run, in frame order, it smooths (when asked), renders if
    not yet done, and writes."""

    def __init__(self, job: Any, render: Any = None) -> None:
        self.job, self.render = job, render
        self._batched, self._batch_size = bool(job.batched), int(job.batch_size)
        self.apply = hasattr(job, "masks_of")

    @property
    def batched(self) -> bool:
        return self._batched

    @property
    def batch_size(self) -> int:
        return self._batch_size

    def load(self, item: Item) -> Any:
        frame = item.source.frame  # type: ignore[attr-defined]  # a frame item's source is a FrameSource
        image = Image(samples=frame.pixels[..., :3], alpha=None)
        if self.apply:
            from maskcli.jobs.apply import Loaded

            mask = self.job.masks.load(item, image, max_pixels=self.job.max_pixels)
            return frame, Loaded(image, mask, Timer())
        return frame, image

    def compute(self, loaded: list[Any]) -> list[np.ndarray]:
        if self.apply:
            entries = [entry for _, entry in loaded]
            masks, _ = self.job.masks_of(entries)
            return [self.job.adjust(mask, entry.image) for mask, entry in zip(masks, entries)]
        from maskcli.jobs.segment import method_input, segment_images

        job = self.job
        inputs = [method_input(image, job.method, job.refiner) for _, image in loaded]
        # A hard mask a method made as bytes stays bytes (no float copy per frame).
        return [s.binary if s.binary is not None else s.mask
                for s in segment_images(inputs, job.method, job.refiner)]

    def save(self, item: Item, loaded: Any, mask: np.ndarray, gate: WriteGate) -> Result:
        frame, entry = loaded
        image = entry.image if self.apply else entry
        payload = self.render(image, mask, self.job) if self.render is not None else None
        return FrameResult(item.index, item.name, None, "written", frame=frame, image=image, mask=mask,
                           payload=payload)


@dataclasses.dataclass
class _VideoOutput:
    """Where one video's results go: a folder of mask files, a mask video, or a video of composites."""

    destination: Path
    kind: str  # "frames", "mask" or "image"
    template: Destinations | None = None
    writer: VideoWriter | None = None
    facts: dict[str, Any] = dataclasses.field(default_factory=dict)
    source: Source | None = None
    quality: int = 92
    replace: bool = False  # an existing output is replaced only under existing='overwrite'
    like: VideoInfo | None = None
    gate: WriteGate = dataclasses.field(default_factory=WriteGate)  # the video's run's: frame files go through it

    @classmethod
    def for_job(cls, job: Any, item: Item, gate: WriteGate) -> _VideoOutput:
        destination = item.destination
        if destination is None:
            raise OptionError("output", "a video's outputs go to files: give an output folder or a video file")
        sink = getattr(job, "sink", None)
        if hasattr(job, "masks_of"):  # apply
            alpha = bool(getattr(job.mode, "output_alpha", False))
            suffix = destination.suffix.lower()
            if suffix not in VIDEO_SUFFIXES and suffix not in ANIMATION_SUFFIXES:
                # A folder output: the source's container where it can hold the result, else one that can.
                suffix = item.source.relpath.suffix.lower()
                if alpha and not container_alpha(suffix):
                    suffix = ".mov"
                destination = _unused(destination.with_suffix(suffix), sink, item)
            check_output(suffix, "alpha" if alpha else "image")
            return cls(destination, "image", facts={"mode": job.mode.name, "format": suffix.lstrip(".")},
                       replace=getattr(sink, "existing", "error") == "overwrite",
                       source=item.source, quality=getattr(job, "quality", 92), gate=gate)
        if getattr(job, "labels", False):
            raise OptionError("labels", "label images are written for still images only, not for videos")
        method = {"method": job.method.name}
        if destination.suffix.lower() in VIDEO_SUFFIXES or destination.suffix.lower() in ANIMATION_SUFFIXES:
            check_output(destination.suffix, "mask")
            return cls(destination, "mask", facts=method, source=item.source,
                       replace=getattr(sink, "existing", "error") == "overwrite", gate=gate)
        folder = getattr(sink, "folder", None)
        template = getattr(sink, "template", "{stem}.png")
        if folder is None:
            raise OptionError("output", "a video's masks go to a folder or a mask video (.mkv, .mov)")
        if "{frame" not in template:
            template = str(Path(template).with_suffix("")) + "/{frame:06d}.png"
        existing: Any = getattr(sink, "existing", "error")
        frames = Destinations(Path(folder), template, existing, suffix=".png")
        return cls(destination.with_suffix(""), "frames", template=frames, facts=method, source=item.source,
                   gate=gate)

    def render(self, image: Image, mask: np.ndarray, job: Any) -> Any:
        """A frame's output: PNG bytes of its mask, its mask's samples, or its composite's RGB(A) samples."""
        if self.kind == "frames":
            if mask.dtype == np.uint8:
                return encode_binary_mask(mask)
            return encode_mask(mask, bits=getattr(job, "mask_bits", 8))
        if self.kind == "mask":
            return quantise(mask, np.uint8)
        pixels = quantise(job.composite(image, mask), np.uint8)
        pixels = cv2.cvtColor(pixels, cv2.COLOR_GRAY2RGB) if pixels.ndim == 2 else pixels
        # Converted to the encoder's pixel format here, in the engine's threads: the one thread that encodes only
        # encodes (a 640×360 frame's conversion is a fifth of its encoding).
        return prepare_frame(pixels, self.destination.suffix.lower(), like=self.like, quality=self.quality)

    def put(self, frame: Frame, payload: Any) -> None:
        """Write one frame's output: its own file, or the next frame of the video."""
        if self.kind == "frames":
            assert self.template is not None and self.source is not None
            relative = self.template.render(self.source, 0, frame=frame.index + 1)
            path, error = self.template.check(self.source, relative)
            if path is None:
                raise _FrameFailed(f"frame {frame.index + 1}: {error}")
            if os.path.lexists(path) and self.template.existing != "overwrite":
                if self.template.existing == "skip":
                    return
                raise _FrameFailed(f"output {path} exists (use `existing='overwrite'` to replace or "
                                   "`existing='skip'`)")
            if frame.index == 0:
                self.destination = path.parent
            try:  # a frame's file that appeared after the check above is never replaced, as any output
                write_atomic(path, payload, replace=self.template.existing == "overwrite", gate=self.gate)
            except OutputTaken:
                if self.template.existing != "skip":
                    raise
            return
        if self.writer is None:
            if isinstance(payload, Prepared):
                height, width, kind = payload.height, payload.width, payload.kind
            else:
                height, width = payload.shape[:2]
                kind = "mask" if self.kind == "mask" else ("alpha" if payload.ndim == 3 and payload.shape[2] == 4
                                                           else "image")
            # The ignore below: kind is one of the writer's literals, chosen just above.
            self.writer = VideoWriter(self.destination, width=width, height=height, kind=kind,  # type: ignore[arg-type]
                                      like=self.like, quality=self.quality, replace=self.replace)
        self.writer.write(payload, pts=frame.pts, time_base=frame.time_base)

    def finish(self, reader: VideoReader) -> str:
        if self.writer is not None:
            self.writer.close()
        elif self.kind != "frames":
            raise _FrameFailed(reader.error or "the video has no frames")
        return str(self.destination)

    def abort(self) -> None:
        if self.writer is not None:
            self.writer.abort()


def _unused(destination: Path, sink: Any, item: Item) -> Path:
    """A re-suffixed destination, checked against the existing-output policy like the planned one, and never
    the video's own input (an animated GIF applied in its own folder keeps its suffix), whatever the policy."""
    from maskcli.io.sources import same_file

    if same_file(destination, item.source.path):
        raise OptionError("output", f"output {destination} is the input itself; choose another output folder")
    existing = getattr(sink, "existing", "error")
    if os.path.lexists(destination) and existing == "error":
        raise OptionError("output", f"output {destination} exists (use `existing='overwrite'` to replace or "
                                    "`existing='skip'`)")
    return destination


__all__ = ["FrameResult", "FrameSource", "is_video_item", "run_media", "run_video"]
