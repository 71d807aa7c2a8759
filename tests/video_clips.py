"""Video clips made in tests: frames panned across a real photo (the camera motion is known, so the true mask of
every frame is too), optional sensor noise, a display rotation, and a generated tone as audio."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import numpy as np


def panned(
    picture: np.ndarray, count: int, size: tuple[int, int], step: tuple[int, int] = (1, 2)
) -> list[tuple[int, int]]:
    """Top-left corners of ``count`` windows of ``size`` (height, width) moving ``step`` pixels a frame, bouncing
    inside ``picture``."""
    height, width = size
    room_y, room_x = picture.shape[0] - height, picture.shape[1] - width
    corners = []
    for t in range(count):
        y, x = (t * step[0]) % (2 * room_y or 1), (t * step[1]) % (2 * room_x or 1)
        corners.append((y if y <= room_y else 2 * room_y - y, x if x <= room_x else 2 * room_x - x))
    return corners


def make_clip(path: Path, frames: list[np.ndarray], *, codec: str = "libx264", rate: int = 25,
              variable: bool = False, rotation: int = 0, audio_seconds: float = 0.0) -> list[int]:
    """Write uint8 RGB frames as a video (lossless H.264 by default); returns the frames' timestamps in ms.

    ``variable``: frame durations alternate 40 and 60 ms (a variable frame rate). ``audio_seconds``: an AAC tone.
    """
    container = av.open(str(path), "w")
    stream = container.add_stream(codec, rate=rate, options={"qp": "0"} if codec == "libx264" else {})
    stream.height, stream.width = frames[0].shape[:2]
    stream.pix_fmt = "yuv444p" if codec == "libx264" else "yuv420p"
    stream.time_base = stream.codec_context.time_base = Fraction(1, 1000)
    if rotation:
        stream.set_display_rotation(rotation)
    audio = None
    if audio_seconds:
        audio = container.add_stream("aac", rate=44100)
        audio.layout = "mono"
    stamps, clock = [], 0
    for index, pixels in enumerate(frames):
        frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(pixels), format="rgb24")
        frame.pts, frame.time_base = clock, Fraction(1, 1000)
        stamps.append(clock)
        clock += (60 if index % 2 else 40) if variable else 1000 // rate
        container.mux(stream.encode(frame))
    container.mux(stream.encode(None))
    if audio is not None:
        samples = int(44100 * audio_seconds)
        tone = (0.3 * np.sin(2 * np.pi * 440 * np.arange(samples) / 44100)).astype(np.float32)
        for start in range(0, samples, 1024):
            chunk = av.AudioFrame.from_ndarray(tone[None, start:start + 1024], format="flt", layout="mono")
            chunk.sample_rate, chunk.pts = 44100, start
            container.mux(audio.encode(chunk))
        container.mux(audio.encode(None))
    container.close()
    return stamps


def probe(path: Path) -> dict:
    """What ffprobe would say: per stream its kind, codec and frame count, the video's timestamps (ms), its
    rotation, and the audio packets' bytes."""
    with av.open(str(path)) as container:
        video = container.streams.video[0]
        decoded = list(container.decode(video))
        facts = {"codec": video.codec_context.name, "frames": len(decoded), "pix_fmt": decoded[0].format.name,
                 "size": (decoded[0].width, decoded[0].height), "rotation": decoded[0].rotation,
                 "stamps": [round(float(f.pts * f.time_base) * 1000) for f in decoded],
                 "duration": container.duration, "audio": None}
    with av.open(str(path)) as container:
        if container.streams.audio:
            stream = container.streams.audio[0]
            packets = [bytes(p) for p in container.demux(stream) if p.size]
            facts["audio"] = {"codec": stream.codec_context.name, "packets": packets}
    return facts


def panned_clip(path: Path, picture: np.ndarray, count: int, size: tuple[int, int] = (96, 128),
                step: tuple[int, int] = (4, 6)) -> Path:
    """A lossless clip of ``count`` windows of ``size`` panned across ``picture`` (uint8 RGB): every frame differs."""
    height, width = size
    make_clip(path, [np.ascontiguousarray(picture[y:y + height, x:x + width])
                     for y, x in panned(picture, count, size, step=step)])
    return path
