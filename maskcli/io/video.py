"""Videos and animations as streams of frames: read and written with PyAV (FFmpeg's libraries), animated GIF and
WebP with Pillow.

A :class:`VideoReader` yields :class:`Frame` objects one at a time (8-bit RGB samples, the stored orientation, the
frame's own timestamp), so a video of any length costs the memory of a few frames. A file that stops decoding part
way (a truncated download) yields the frames it has and then says why in :attr:`VideoReader.error`.

A :class:`VideoWriter` writes frames with the timestamps they came with (variable frame rates stay variable), the
source's rotation and colour tags, and the source's audio packets copied as they are (no re-encoding). It writes a
temp file in the destination's folder and renames it into place on :meth:`~VideoWriter.close`, so a reader never
sees a partial video. The codec follows the suffix and what the frames are:

=============  ==========================  ===============================  ==================================
suffix         masks (grey, lossless)      images                           images with transparency
=============  ==========================  ===============================  ==================================
.mkv           FFV1                        H.264                            FFV1 (lossless RGBA)
.mov           PNG                         H.264                            ProRes 4444
.webm          --                          VP9                              VP9 with alpha
.mp4 .m4v      --                          H.264                            --
.avi           FFV1                        H.264                            --
.gif .webp     animation (Pillow)          animation (Pillow)               animation (Pillow)
=============  ==========================  ===============================  ==================================

>>> import tempfile, numpy as np
>>> from pathlib import Path
>>> folder = tempfile.TemporaryDirectory(); clip = Path(folder.name) / "clip.mkv"
>>> writer = VideoWriter(clip, width=32, height=16, kind="mask")
>>> for t in range(3):
...     writer.write(np.full((16, 32), 80 * t, np.uint8), pts=t, time_base=Fraction(1, 25))
>>> writer.close()
>>> with VideoReader(clip) as reader:
...     [int(frame.pixels[0, 0, 0]) for frame in reader.frames()], reader.error
([0, 80, 160], None)
>>> folder.cleanup()
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import uuid
from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path
from typing import Any, Literal

import numpy as np

from maskcli.errors import InputError, OptionError, OutputError, SetupError

#: Containers read with PyAV.
VIDEO_SUFFIXES = frozenset({".mp4", ".m4v", ".mov", ".mkv", ".webm", ".avi"})
#: Still-image suffixes that may hold an animation: a video when they have more than one frame.
ANIMATION_SUFFIXES = frozenset({".gif", ".webp"})
_CONTAINERS = {".mp4": "mp4", ".m4v": "mp4", ".mov": "mov", ".mkv": "matroska", ".webm": "webm", ".avi": "avi"}
_TEMP_PREFIX = ".maskcli-tmp-"

Kind = Literal["mask", "image", "alpha"]


def _pyav() -> Any:
    """PyAV, or a setup error saying how to install it."""
    try:
        import av
    except ImportError:
        raise SetupError("videos need PyAV: pip install 'maskcli[video]'") from None
    return av


def is_video_path(path: str | os.PathLike[str]) -> bool:
    """Whether a file is read as a video: a video container's suffix, or a GIF or WebP with several frames.

    >>> is_video_path("clip.MP4"), is_video_path("photo.jpg")
    (True, False)
    """
    suffix = os.path.splitext(os.fspath(path))[1].lower()
    if suffix in VIDEO_SUFFIXES:
        return True
    return suffix in ANIMATION_SUFFIXES and _frame_count(path) > 1


def _frame_count(path: str | os.PathLike[str]) -> int:
    from PIL import Image

    try:
        with Image.open(path) as header:
            return int(getattr(header, "n_frames", 1))
    except Exception:  # not readable here: the image reader names the reason
        return 1


@dataclasses.dataclass
class Frame:
    """One decoded frame: 8-bit RGB samples (H×W×3, or H×W×4 with alpha), its number from 0 and its timestamp."""

    index: int
    pixels: np.ndarray
    pts: int | None
    time_base: Fraction


@dataclasses.dataclass
class VideoInfo:
    """What a writer needs to keep of its source: size, timing, rotation, colour tags, audio."""

    width: int
    height: int
    #: Frames the container declares (0 when it does not say).
    frames: int = 0
    rate: Fraction | None = None
    time_base: Fraction = Fraction(1, 25)
    #: Degrees a player turns the stored frames (the display matrix), kept on the output; known once the first
    #: frame is decoded.
    rotation: int = 0
    #: The source's colour tags (primaries, transfer, matrix, range) as FFmpeg numbers.
    color: dict[str, int] = dataclasses.field(default_factory=dict)
    has_audio: bool = False
    path: str | None = None
    #: Seconds the container's header declares (0 when it does not say).
    duration: float = 0.0


class VideoReader:
    """Frames of a video or an animation, decoded one at a time (see the module's doctest)."""

    def __init__(self, path: str | os.PathLike[str], *, max_pixels: int | None = None) -> None:
        self.path = os.fspath(path)
        self.error: str | None = None
        self._container: Any = None
        suffix = os.path.splitext(self.path)[1].lower()
        self._animation = suffix in ANIMATION_SUFFIXES
        try:
            self.info = self._open_animation() if self._animation else self._open_video()
        except InputError:
            self.close()
            raise
        if max_pixels is not None and self.info.width * self.info.height > max_pixels:
            self.close()
            raise InputError(f"video frames are {self.info.width}×{self.info.height}, over the limit of "
                             f"{max_pixels:,} pixels (raise it with `max_pixels` if you trust this file)")

    def _open_video(self) -> VideoInfo:
        av = _pyav()

        try:
            self._container = av.open(self.path)
        except (av.FFmpegError, OSError) as error:
            raise InputError(f"not a readable video ({_reason(error)})") from None
        if not self._container.streams.video:
            raise InputError("no video stream in this file")
        stream = self._container.streams.video[0]
        stream.thread_type = "AUTO"  # FFmpeg decodes on its own threads
        context = stream.codec_context
        color = {name: int(getattr(context, name)) for name in ("color_primaries", "color_trc", "colorspace",
                                                                "color_range") if getattr(context, name, None)}
        return VideoInfo(width=context.width, height=context.height, frames=int(stream.frames or 0),
                         rate=stream.average_rate or stream.guessed_rate, time_base=stream.time_base or Fraction(1, 25),
                         color=color,
                         has_audio=bool(self._container.streams.audio), path=self.path,
                         duration=_declared_seconds(self._container, stream))

    def _open_animation(self) -> VideoInfo:
        from PIL import Image

        try:
            self._container = Image.open(self.path)
        except Exception as error:
            raise InputError(f"not a readable animation ({_reason(error)})") from None
        width, height = self._container.size
        return VideoInfo(width=width, height=height, frames=int(getattr(self._container, "n_frames", 1)),
                         time_base=Fraction(1, 1000), path=self.path)

    def frames(self) -> Iterator[Frame]:
        """The frames in order; a decoding error ends them and is kept in :attr:`error`."""
        iterator = self._animation_frames() if self._animation else self._video_frames()
        count, last = 0, None
        try:
            for frame in iterator:
                count, last = count + 1, frame
                yield frame
        except Exception as error:  # FFmpeg and Pillow raise many kinds on damaged data
            self.error = f"video stops decoding after frame {count} ({_reason(error)})"
            return
        if self._animation:
            return
        if self.info.frames and count < self.info.frames:
            self.error = f"video declares {self.info.frames} frames but only {count} could be decoded (truncated?)"
        elif self.info.duration and self.info.rate:
            # A container that keeps no frame count (Matroska, WebM) still declares its duration: a file cut short
            # ends well before it.
            reached = float(last.pts * last.time_base) if last is not None and last.pts is not None else 0.0
            if reached + 2.5 / float(self.info.rate) < self.info.duration:
                self.error = (f"video stops at {reached:.2f} s of the {self.info.duration:.2f} s it declares, after "
                              f"frame {count} (truncated?)")

    def _video_frames(self) -> Iterator[Frame]:
        stream = self._container.streams.video[0]
        for index, frame in enumerate(self._container.decode(stream)):
            if index == 0:  # the display matrix travels with the frames (PyAV does not turn them)
                self.info.rotation = int(getattr(frame, "rotation", 0) or 0) % 360
            pixels = frame.to_ndarray(format="rgb24")
            yield Frame(index, pixels, frame.pts, frame.time_base or self.info.time_base)

    def _animation_frames(self) -> Iterator[Frame]:
        from PIL import ImageSequence

        clock = 0
        for index, picture in enumerate(ImageSequence.Iterator(self._container)):
            has_alpha = picture.mode in ("RGBA", "LA", "PA") or "transparency" in picture.info
            pixels = np.asarray(picture.convert("RGBA" if has_alpha else "RGB"))
            yield Frame(index, pixels, clock, Fraction(1, 1000))
            clock += int(picture.info.get("duration", 100) or 100)

    def close(self) -> None:
        if self._container is not None:
            with contextlib.suppress(Exception):
                self._container.close()
            self._container = None

    def __enter__(self) -> VideoReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _declared_seconds(container: Any, stream: Any) -> float:
    """When the video stream declares it ends, in seconds on its timestamps' clock (0: it does not say)."""
    if stream.duration and stream.time_base:
        return float((stream.duration + (stream.start_time or 0)) * stream.time_base)  # the end, as pts say
    return container.duration / 1_000_000 if container.duration else 0.0


def _reason(error: BaseException) -> str:
    text = str(error).strip().rstrip(".")
    return text or type(error).__name__


def container_alpha(suffix: str) -> bool:
    """Whether a video or animation of this suffix can carry transparency.

    >>> container_alpha(".webm"), container_alpha(".mp4")
    (True, False)
    """
    return suffix.lower() in {".webm", ".mov", ".mkv", ".gif", ".webp"}


def check_output(suffix: str, kind: Kind) -> None:
    """Refuse, in one line, an output suffix whose codecs cannot hold what will be written."""
    suffix = suffix.lower()
    if suffix not in VIDEO_SUFFIXES and suffix not in ANIMATION_SUFFIXES:
        raise OptionError("output", f"{suffix or 'no suffix'} is not a video; write .mp4, .mov, .mkv, .webm, "
                                    ".avi, .gif or .webp")
    if kind == "mask" and suffix not in {".mkv", ".mov", ".avi", ".gif", ".webp"}:
        raise OptionError("output", f"a mask video must be lossless: {suffix} has no lossless grey codec here; "
                                    "write .mkv (FFV1), .mov (PNG) or .avi (FFV1)")
    if kind == "alpha" and not container_alpha(suffix):
        raise OptionError("output", f"{suffix} video (H.264) cannot carry transparency; write .webm (VP9), .mov "
                                    "(ProRes 4444) or .mkv (FFV1), or flatten the cut-out with a background colour")


class VideoWriter:
    """Frames to a video or animation file, written through a temp file and renamed into place on :meth:`close`.

    Parameters
    ----------
    path : path
        The video to write; its suffix picks the container and codec (see the module's table).
    width, height : int
        The frames' size.
    kind : {"mask", "image", "alpha"}
        Grey masks (lossless), RGB images, or RGBA images.
    like : VideoInfo, optional
        The source: its time base, frame rate, rotation and colour tags are kept, and its audio copied.
    quality : int
        1–100 for lossy codecs (mapped to the encoder's quality scale).
    replace : bool
        Replace a file at ``path``; ``False``: never, even one that appeared while this wrote (``OutputTaken``).
    """

    def __init__(self, path: str | os.PathLike[str], *, width: int, height: int, kind: Kind = "image",
                 like: VideoInfo | None = None, quality: int = 92, replace: bool = True) -> None:
        self.path = Path(path)
        self.replace = replace
        self.suffix = self.path.suffix.lower()
        check_output(self.suffix, kind)
        self.kind, self.width, self.height, self.like = kind, width, height, like
        self.quality = quality
        self.frames_written = 0
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._temp = self.path.parent / f"{_TEMP_PREFIX}{os.getpid()}-{uuid.uuid4().hex[:8]}{self.suffix}"
        self._animation: list[Any] | None = [] if self.suffix in ANIMATION_SUFFIXES else None
        self._durations: list[int] = []
        self._last_pts: int | None = None
        self._audio: Any = None
        if self._animation is None:
            try:
                self._open()
            except Exception as error:
                self.abort()
                if isinstance(error, (OptionError, SetupError)):
                    raise
                raise OutputError(f"cannot write {self.path}: {_reason(error)}") from None

    def _open(self) -> None:
        av = _pyav()

        like = self.like
        self._output = av.open(str(self._temp), "w", format=_CONTAINERS[self.suffix])
        codec, pixel_format, options = self._codec()
        rate = like.rate if like is not None and like.rate else Fraction(25)
        stream = self._output.add_stream(codec, rate=rate, options=options)
        stream.width, stream.height, stream.pix_fmt = self.width, self.height, pixel_format
        self._time_base = like.time_base if like is not None else Fraction(1, 1000)
        stream.time_base = self._time_base
        stream.codec_context.time_base = self._time_base
        if like is not None and self.kind != "mask":
            for name, value in like.color.items():
                with contextlib.suppress(Exception):
                    setattr(stream.codec_context, name, value)
        if like is not None and like.rotation:
            stream.set_display_rotation(like.rotation)
        self._stream = stream
        if like is not None and like.has_audio and like.path is not None:
            self._audio = _AudioCopy(like.path, self._output)

    def _codec(self) -> tuple[str, str, dict[str, str]]:
        return codec_for(self.suffix, self.kind, self.width, self.height, self.quality)

    def write(self, pixels: np.ndarray | Prepared, *, pts: int | None, time_base: Fraction) -> None:
        """Add one frame: uint8 grey H×W (masks), RGB H×W×3 or RGBA H×W×4, or a frame already converted for this
        writer (:func:`prepare_frame`), with its source timestamp."""
        if isinstance(pixels, Prepared):
            if (pixels.height, pixels.width) != (self.height, self.width):
                raise OutputError(f"frame of {pixels.width}×{pixels.height} in a {self.width}×{self.height} video")
            self._encode(pixels.frame, pts, time_base)
            return
        if pixels.shape[:2] != (self.height, self.width):
            raise OutputError(f"frame of {pixels.shape[1]}×{pixels.shape[0]} in a {self.width}×{self.height} video")
        if self._animation is not None:
            self._add_picture(pixels, pts, time_base)
            return
        self._encode(_converted(pixels, self._stream.pix_fmt, self.like), pts, time_base)

    def _encode(self, frame: Any, pts: int | None, time_base: Fraction) -> None:
        av = _pyav()

        frame.pts = self._pts(pts, time_base)
        frame.time_base = self._time_base
        if self._audio is not None:
            self._audio.until(float(frame.pts * self._time_base))
        try:
            self._output.mux(self._stream.encode(frame))
        except av.FFmpegError as error:
            raise OutputError(f"cannot encode frame {self.frames_written + 1} of {self.path}: "
                              f"{_reason(error)}") from None
        self.frames_written += 1

    def _pts(self, pts: int | None, time_base: Fraction) -> int:
        """The frame's timestamp in the output's time base; strictly increasing (an encoder refuses repeats)."""
        if pts is None:
            value = self.frames_written if self._last_pts is None else self._last_pts + 1
        else:
            value = round(pts * time_base / self._time_base)
        if self._last_pts is not None and value <= self._last_pts:
            value = self._last_pts + 1
        self._last_pts = value
        return value

    def _add_picture(self, pixels: np.ndarray, pts: int | None, time_base: Fraction) -> None:
        from PIL import Image

        assert self._animation is not None
        milliseconds = round((pts or 0) * time_base * 1000)
        if self._animation and self._last_pts is not None:
            self._durations.append(max(10, milliseconds - self._last_pts))
        self._last_pts = milliseconds
        self._animation.append(Image.fromarray(np.ascontiguousarray(pixels)))
        self.frames_written += 1

    def close(self) -> None:
        """Flush the encoder, copy the rest of the audio, and rename the file into place (never over an existing
        file unless ``replace``)."""
        from maskcli.io.files import rename_into

        try:
            if self._animation is not None:
                self._save_animation()
            else:
                self._output.mux(self._stream.encode(None))
                if self._audio is not None:
                    self._audio.until(None)
                    self._audio.close()
                self._output.close()
            rename_into(self._temp, self.path, replace=self.replace)
        except BaseException as error:
            self.abort()
            if isinstance(error, (OutputError, KeyboardInterrupt)):
                raise
            raise OutputError(f"cannot write {self.path}: {_reason(error)}") from None

    def _save_animation(self) -> None:
        assert self._animation is not None
        if not self._animation:
            raise OutputError("no frames to write")
        durations = [*self._durations, self._durations[-1] if self._durations else 100]
        first, *rest = self._animation
        options: dict[str, Any] = {"save_all": True, "append_images": rest, "duration": durations, "loop": 0}
        if self.suffix == ".webp":
            options["lossless"] = self.kind == "mask"
            options["quality"] = self.quality
        else:
            options["disposal"] = 2
        first.save(self._temp, format="WEBP" if self.suffix == ".webp" else "GIF", **options)

    def abort(self) -> None:
        """Drop the video: nothing is left at the destination or in its folder."""
        if self._audio is not None:
            self._audio.close()
        output = getattr(self, "_output", None)
        if output is not None:
            with contextlib.suppress(Exception):
                output.close()
        with contextlib.suppress(OSError):
            os.unlink(self._temp)


def codec_for(suffix: str, kind: str, width: int, height: int, quality: int) -> tuple[str, str, dict[str, str]]:
    """The encoder, its pixel format and options for a video of this suffix and kind (see the module's table)."""
    if kind == "mask":
        return ("png", "gray", {}) if suffix == ".mov" else ("ffv1", "gray", {})
    if kind == "alpha":
        if suffix == ".webm":
            return "libvpx-vp9", "yuva420p", {"crf": str(_crf(quality, 63)), "b": "0"}
        if suffix == ".mov":
            return "prores_ks", "yuva444p10le", {"profile": "4444"}
        return "ffv1", "bgra", {}
    even = width % 2 == 0 and height % 2 == 0
    if suffix == ".webm":
        return "libvpx-vp9", "yuv420p" if even else "yuv444p", {"crf": str(_crf(quality, 63)), "b": "0"}
    return "libx264", "yuv420p" if even else "yuv444p", {"crf": str(_crf(quality, 51)), "preset": "fast"}


@dataclasses.dataclass
class Prepared:
    """A frame converted to its writer's pixel format ahead of writing (:func:`prepare_frame`)."""

    frame: Any
    width: int
    height: int
    kind: str  # "image" or "alpha", as VideoWriter's kind


def prepare_frame(pixels: np.ndarray, suffix: str, *, like: VideoInfo | None = None, quality: int = 92
                  ) -> Prepared | np.ndarray:
    """A composite's RGB or RGBA samples converted to the pixel format :class:`VideoWriter` encodes ``suffix``
    with: the conversion, which would otherwise wait for the one thread that encodes, runs where this is called
    (a frame's render, in the engine's threads). Animations (GIF, WebP) take the samples as they are."""
    if suffix in ANIMATION_SUFFIXES:
        return pixels
    height, width = pixels.shape[:2]
    kind = "alpha" if pixels.ndim == 3 and pixels.shape[2] == 4 else "image"
    _, pixel_format, _ = codec_for(suffix, kind, width, height, quality)
    return Prepared(_converted(pixels, pixel_format, like), width, height, kind)


def _converted(pixels: np.ndarray, pixel_format: str, like: VideoInfo | None) -> Any:
    av = _pyav()

    layout = {2: "gray", 3: "rgb24", 4: "rgba"}[pixels.ndim if pixels.ndim == 2 else pixels.shape[2]]
    frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(pixels), format=layout)
    return frame.reformat(format=pixel_format, dst_colorspace=_matrix(like),
                          dst_color_range=like.color.get("color_range") if like else None)


class _AudioCopy:
    """The source's audio packets, muxed unchanged into the output as the video reaches their time."""

    def __init__(self, path: str, output: Any) -> None:
        av = _pyav()

        self._input = av.open(path)
        source = self._input.streams.audio[0]
        self._stream = output.add_stream_from_template(source)
        self._packets = self._input.demux(source)
        self._output = output
        self._pending: Any = None

    def until(self, seconds: float | None) -> None:
        """Mux the packets that start before ``seconds`` (None: all that are left)."""
        while True:
            packet = self._pending or next(self._packets, None)
            self._pending = None
            if packet is None:
                return
            if packet.dts is None:  # the demuxer's final, empty packet
                continue
            if seconds is not None and packet.pts is not None and float(packet.pts * packet.time_base) > seconds:
                self._pending = packet
                return
            packet.stream = self._stream
            self._output.mux(packet)

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self._input.close()


def _crf(quality: int, worst: int) -> int:
    """An encoder's constant-quality number for a 1–100 quality: 92 (the default) gives 18 on x264's 0–51 scale,
    its "visually lossless" setting, and 22 on VP9's 0–63."""
    return max(0, min(worst, round((100 - quality) / 100 * worst * 4.4)))


def _matrix(like: VideoInfo | None) -> int | None:
    return like.color.get("colorspace") if like is not None else None


__all__ = ["ANIMATION_SUFFIXES", "Frame", "Prepared", "VIDEO_SUFFIXES", "VideoInfo", "VideoReader", "VideoWriter",
           "check_output", "codec_for", "container_alpha", "is_video_path", "prepare_frame"]
