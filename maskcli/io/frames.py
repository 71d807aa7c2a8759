"""Single frames of videos, read by number, for the commands that pair files (``eval --methods``, ``preview``).

A video paired with a folder of per-frame files (``clip.mp4`` with ``truth/clip/000001.png`` …, the names
``maskcli segment clip.mp4 -o masks/`` writes) is read one frame at a time, in frame order. :class:`FrameReader`
keeps one decoder per video where the last frame was read and a few frames back, so reading the frames of a video
in order decodes it once, and threads asking for neighbouring frames slightly out of order decode nothing twice.
A job holds its own reader; a worker process gets a fresh one (open decoders do not travel).

Examples
--------
>>> import tempfile
>>> from fractions import Fraction
>>> from pathlib import Path
>>> import numpy as np
>>> from maskcli.io.video import VideoWriter
>>> scratch = tempfile.TemporaryDirectory(); clip = Path(scratch.name) / "clip.mkv"
>>> writer = VideoWriter(clip, width=8, height=6, kind="mask")
>>> for level in (0, 100, 200):
...     writer.write(np.full((6, 8), level, np.uint8), pts=None, time_base=Fraction(1, 25))
>>> writer.close()
>>> frames = FrameReader()
>>> [int(frames.read(clip, number).samples.mean()) for number in (1, 3, 2)]
[0, 200, 100]
>>> frames.read(clip, 4)
Traceback (most recent call last):
...
maskcli.errors.InputError: the video has 3 frames, no frame 4
>>> frames.close(); scratch.cleanup()
"""

from __future__ import annotations

import collections
import os
import threading
from collections.abc import Iterator
from typing import Any

from maskcli.errors import InputError
from maskcli.io.decode import Image, read_image
from maskcli.io.pairing import Pair

#: Frames kept behind the last one read, for threads that ask slightly out of order.
KEPT = 8


class _Cursor:
    """One video's decoder, where it stands, and the frames it decoded last."""

    def __init__(self, path: str, max_pixels: int | None) -> None:
        from maskcli.io.video import VideoReader

        self.reader = VideoReader(path, max_pixels=max_pixels)
        self.frames: Iterator[Any] = self.reader.frames()
        self.position = 0  # frames decoded so far
        self.kept: collections.OrderedDict[int, Image] = collections.OrderedDict()

    def read(self, number: int) -> Image | None:
        """Frame ``number`` (from 1), or None when it lies behind what is kept (the caller starts afresh)."""
        if number in self.kept:
            return self.kept[number]
        if number <= self.position:
            return None
        for frame in self.frames:
            self.position += 1
            image = Image(samples=frame.pixels[..., :3], alpha=None)  # as a video's own run decodes its frames
            self.kept[self.position] = image
            if len(self.kept) > KEPT:
                self.kept.popitem(last=False)
            if self.position == number:
                return image
        if self.reader.error:
            raise InputError(f"frame {number}: {self.reader.error}")
        raise InputError(f"the video has {self.position} frames, no frame {number}")

    def close(self) -> None:
        self.reader.close()


def read_paired_image(pair: Pair, frames: FrameReader) -> Image:
    """The image a pair's source holds: its file, or its frame of a video (``pair.frame``)."""
    if pair.frame is None:
        return read_image(pair.source)
    return frames.read(pair.source, pair.frame)


class FrameReader:
    """Frames of videos by number, each video decoded forward once (see the module); safe across threads."""

    def __init__(self, max_pixels: int | None = None) -> None:
        self.max_pixels = max_pixels
        self._cursors: dict[str, _Cursor] = {}
        self._lock = threading.Lock()

    def read(self, path: str | os.PathLike[str], number: int) -> Image:
        """Frame ``number`` of the video at ``path``, counted from 1, as a decoded image (RGB in [0, 1])."""
        if number < 1:
            raise InputError(f"frames are counted from 1, not {number}")
        key = os.fspath(path)
        with self._lock:
            cursor = self._cursors.get(key)
            image = cursor.read(number) if cursor is not None else None
            if image is None:  # not open yet, or asked for a frame already passed: decode from the start
                if cursor is not None:
                    cursor.close()
                cursor = self._cursors[key] = _Cursor(key, self.max_pixels)
                image = cursor.read(number)
            assert image is not None
            return image

    def close(self) -> None:
        with self._lock:
            for cursor in self._cursors.values():
                cursor.close()
            self._cursors.clear()

    def __getstate__(self) -> dict[str, Any]:
        return {"max_pixels": self.max_pixels}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(state["max_pixels"])  # type: ignore[misc]  # a fresh reader in each process


__all__ = ["FrameReader", "KEPT", "read_paired_image"]
