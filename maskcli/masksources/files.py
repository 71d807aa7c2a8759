"""Masks that are files: a folder of per-image masks (``folder``), one mask for every image (``file``), and the masks
that ``maskcli segment --json`` recorded (``records``)."""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Iterable, Iterator
from pathlib import Path, PurePosixPath
from typing import IO, Any, ClassVar

import numpy as np

from maskcli.errors import InputError, OptionError
from maskcli.io.decode import DEFAULT_MAX_PIXELS, IMAGE_SUFFIXES, Image
from maskcli.io.files import regular_file_problem
from maskcli.io.frames import FrameReader
from maskcli.io.sources import STDIN, Item, Source, render_name
from maskcli.masksources.base import mask_sources


def read_mask_file(path: Path, max_pixels: int = DEFAULT_MAX_PIXELS) -> np.ndarray:
    """A mask file's mask: its integer levels (uint8/uint16) when it holds plain grey ones, 1 byte per pixel
    instead of 4 until used, else the mask convention; a failure names the mask file."""
    from maskcli.io.decode import read_image
    from maskcli.io.masks import mask_from_image

    try:
        image = read_image(path, max_pixels=max_pixels)
    except InputError as error:
        raise InputError(f"mask {path}: {error}") from None
    if image.alpha is None and image.samples is not None and image.samples.ndim == 2:
        return image.samples
    return mask_from_image(image)


class _FileMasks:
    """Sources whose masks are files paired while planning.

    A video's mask is a folder of per-frame files (``clip/000001.png`` …, what ``segment`` writes for a video) or a
    mask video: each frame of the video reads its own (:func:`frame_mask`).
    """

    method = None

    def load(self, item: Item, image: Image, *, max_pixels: int) -> np.ndarray | None:
        if item.mask is None:
            raise InputError("no mask for this image")
        frame = getattr(item.source, "frame", None)  # a video frame's item (maskcli.video.runner.FrameSource)
        if frame is not None:
            frames = self.__dict__.get("_frames")
            if frames is None:  # one reader for every frame of the run (its decoders stay open between frames)
                frames = self.__dict__["_frames"] = FrameReader(max_pixels)
            return frame_mask(item.mask, frame.index + 1, frames, max_pixels)
        return read_mask_file(item.mask, max_pixels)

    def __getstate__(self) -> dict[str, Any]:
        return {key: value for key, value in self.__dict__.items() if key != "_frames"}


def frame_mask(mask: Path, number: int, frames: FrameReader, max_pixels: int) -> np.ndarray:
    """Frame ``number``'s mask (from 1): a file of the frames' folder ``mask``, or that frame of the mask video."""
    if mask.is_dir():
        return read_mask_file(mask / f"{number:06d}.png", max_pixels)
    from maskcli.io.masks import mask_from_image

    try:
        return mask_from_image(frames.read(mask, number))
    except InputError as error:
        raise InputError(f"mask {mask}: {error}") from None


def video_masks(folder: Path, source: Source) -> Path | None:
    """Where a video's masks are in a mask folder: the folder of its frames' masks (``clip/``, as ``segment`` names
    them), else a mask video with its stem (``clip.mkv``); None when it holds neither."""
    from maskcli.io.video import ANIMATION_SUFFIXES, VIDEO_SUFFIXES, is_video_path

    if not is_video_path(source.path):
        return None
    rel = PurePosixPath(source.relpath)
    frames = folder / rel.parent / PurePosixPath(rel.name).stem
    if frames.is_dir():
        return frames
    for suffix in sorted(VIDEO_SUFFIXES | ANIMATION_SUFFIXES):
        video = folder / rel.parent / f"{PurePosixPath(rel.name).stem}{suffix}"
        if video.is_file() and os.path.realpath(video) != os.path.realpath(source.path):
            return video
    return None


@mask_sources.register("folder")
@dataclasses.dataclass
class MaskFolder(_FileMasks):
    """Per-image masks in ``folder``, matched by relative path and stem.

    ``template`` names the mask of an input (fields ``{stem}``, ``{name}``, ``{ext}``, ``{relpath}``); when that
    file is missing, any image file at the same relative path with the same stem is taken.
    """

    folder: Path
    template: str = "{stem}.png"

    def __post_init__(self) -> None:
        self.folder = Path(self.folder)
        if not self.folder.is_dir():
            raise OptionError("masks", f"{self.folder} is not a folder")

    def pair(self, source: Source) -> Path | None:
        if source.path == STDIN:
            raise InputError("`masks` pairs files by name; an image on stdin needs `mask=FILE`, `alpha` or `method`")
        return video_masks(self.folder, source) or find_mask(self.folder, source, self.template)


def find_mask(folder: Path, source: Source, template: str = "{stem}.png") -> Path:
    """The mask file for ``source`` in ``folder``: the template rendered at the same relative path (as outputs are
    named, :func:`maskcli.io.sources.render_name`), else any image file there with the same stem. Raises
    :class:`InputError` saying where it looked.
    """
    rel = source.relpath
    try:
        candidate = folder / render_name(template, rel)
    except (KeyError, IndexError, ValueError) as error:
        raise OptionError("mask_name", f"bad template {template!r}: {error}") from None
    siblings = folder / rel.parent
    stem = PurePosixPath(rel.name).stem
    unreadable: list[tuple[Path, str]] = []  # found, but not a file to read (a FIFO, a device): said, not skipped
    for path in (candidate, *(siblings / f"{stem}{suffix}" for suffix in sorted(IMAGE_SUFFIXES))):
        problem = regular_file_problem(path, "an image")
        if problem is None:
            return path
        if problem != "no such file":
            unreadable.append((path, problem))
    if unreadable:
        path, problem = unreadable[0]
        raise InputError(f"mask {path}: {problem}")
    raise InputError(f"no mask found (looked for {candidate})")


@mask_sources.register("file")
@dataclasses.dataclass
class StaticMask:
    """One mask file for every image (read once per process)."""

    path: Path
    method: ClassVar[Any] = None
    _mask: np.ndarray | None = dataclasses.field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        self.path = Path(self.path)
        problem = regular_file_problem(self.path, "an image")
        if problem is not None:
            raise OptionError("mask", f"{self.path}: {problem}")

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_mask": None}  # each worker reads the mask once for itself

    def pair(self, source: Source) -> Path | None:
        return None

    def load(self, item: Item, image: Image, *, max_pixels: int) -> np.ndarray | None:
        if self._mask is None:
            self._mask = read_mask_file(self.path, max_pixels)
        return self._mask


@mask_sources.register("records")
class SegmentRecords(_FileMasks):
    """The masks that ``maskcli segment --json`` wrote, read from its records (one JSON object per line).

    The records are the inputs too: :meth:`sources` yields each record's image, and :meth:`pair` its mask.

    >>> records = SegmentRecords(['{"input": "a.jpg", "relpath": "a.jpg", "output": "m/a.png"}', "not json"])
    >>> [(s.path, s.error) for s in records.sources()]
    [('a.jpg', None), ('<stdin line 2>', 'not a maskcli record (expected a JSON object with input and output)')]
    >>> records.pair(Source("a.jpg", PurePosixPath("a.jpg")))
    PosixPath('m/a.png')
    """

    def __init__(self, lines: Iterable[str] | IO[str]) -> None:
        self.lines = lines
        self._masks: dict[str, str] = {}

    def __getstate__(self) -> dict[str, Any]:
        return {"lines": (), "_masks": {}}  # pairing happens while planning, in the calling process

    def sources(self) -> Iterator[Source]:
        for number, line in enumerate(self.lines, start=1):
            line = line.strip()
            if not line:
                continue
            try:
                record = json.loads(line)
                image = record["input"]
            except (ValueError, KeyError, TypeError):
                yield Source(f"<stdin line {number}>", PurePosixPath(f"line{number}"),
                             error="not a maskcli record (expected a JSON object with input and output)")
                continue
            source = Source(image, PurePosixPath(record.get("relpath") or Path(image).name))
            if record.get("status") == "failed" or not record.get("output"):
                source.error = f"no mask: segment failed ({record.get('error') or 'no output'})"
            else:
                self._masks[image] = record["output"]
            yield source

    def pair(self, source: Source) -> Path | None:
        path = self._masks.pop(source.path, None)
        if path is None:
            raise InputError("no mask for this image")
        return Path(path)
