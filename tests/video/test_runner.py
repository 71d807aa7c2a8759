"""Videos as inputs of segment and apply: frames through the same runner, outputs that keep the source's timing,
rotation and audio, lossless mask videos, alpha only where a codec carries it, truncated files, flat memory."""

from __future__ import annotations

import json
import tracemalloc
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np
import pytest

from conftest import SAMPLES, run_cli
from video_clips import make_clip, panned, probe


def _photo() -> np.ndarray:
    return cv2.imread(str(SAMPLES / "chelsea.png"))[:, :, ::-1]


@pytest.fixture
def clip(tmp_path: Path) -> tuple[Path, list[int]]:
    """A 12-frame clip panned across a sample photo, variable frame rate, turned 90°, with a tone as audio."""
    photo = _photo()
    frames = [photo[y:y + 96, x:x + 128] for y, x in panned(photo, 12, (96, 128), step=(2, 3))]
    path = tmp_path / "clip.mp4"
    stamps = make_clip(path, frames, variable=True, rotation=90, audio_seconds=0.6)
    return path, stamps


def _otsu(frame: np.ndarray) -> np.ndarray:
    grey = cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY)
    return cv2.threshold(grey, 0, 255, cv2.THRESH_BINARY + cv2.THRESH_OTSU)[1]


def test_segment_writes_one_mask_per_frame(clip, tmp_path: Path) -> None:
    path = clip[0]
    done = run_cli("segment", str(path), "-o", str(tmp_path / "masks"), "--json")
    assert done.returncode == 0, done.stderr
    record = json.loads(done.stdout)
    assert record["status"] == "written" and record["frames"] == 12 and record["output"] == str(tmp_path / "masks/clip")
    written = sorted((tmp_path / "masks" / "clip").iterdir())
    assert [p.name for p in written] == [f"{n:06d}.png" for n in range(1, 13)]
    with av.open(str(path)) as container:
        first = next(container.decode(video=0)).to_ndarray(format="rgb24")
    mask = cv2.imread(str(written[0]), cv2.IMREAD_GRAYSCALE)
    assert mask.shape == (96, 128)
    agreement = float((mask == _otsu(first)).mean())
    assert agreement > 0.97  # the frame's own Otsu mask (the method runs on 8-bit levels, as here)


def test_name_template_with_frame_numbers(clip, tmp_path: Path) -> None:
    done = run_cli("segment", str(clip[0]), "-o", str(tmp_path / "m"), "--name", "{stem}-{frame:03d}.png")
    assert done.returncode == 0, done.stderr
    assert sorted(p.name for p in (tmp_path / "m").iterdir()) == [f"clip-{n:03d}.png" for n in range(1, 13)]


def test_mask_video_is_lossless_and_matches_the_frames(clip, tmp_path: Path) -> None:
    path = clip[0]
    assert run_cli("segment", str(path), "-o", str(tmp_path / "m")).returncode == 0
    done = run_cli("segment", str(path), "-o", str(tmp_path / "clip_mask.mkv"))
    assert done.returncode == 0, done.stderr
    facts = probe(tmp_path / "clip_mask.mkv")
    assert (facts["codec"], facts["pix_fmt"], facts["frames"]) == ("ffv1", "gray", 12)
    with av.open(str(tmp_path / "clip_mask.mkv")) as container:
        decoded = [frame.to_ndarray() for frame in container.decode(video=0)]
    for number, mask in enumerate(decoded, 1):
        assert np.array_equal(mask, cv2.imread(str(tmp_path / "m" / "clip" / f"{number:06d}.png"), 0))


def test_apply_keeps_frames_timestamps_rotation_and_copies_the_audio(clip, tmp_path: Path) -> None:
    path, stamps = clip
    out = tmp_path / "out.mp4"
    done = run_cli("apply", str(path), "-m", "otsu", "--mode", "blur", "-o", str(out))
    assert done.returncode == 0, done.stderr
    source, result = probe(path), probe(out)
    assert result["frames"] == source["frames"] == 12
    assert result["stamps"] == source["stamps"] == stamps  # variable frame rate kept
    assert result["size"] == source["size"] == (128, 96)
    assert result["rotation"] == source["rotation"] != 0
    assert result["audio"]["codec"] == "aac"
    assert result["audio"]["packets"] == source["audio"]["packets"]  # copied, not re-encoded
    assert abs(result["duration"] - source["duration"]) < 50_000  # microseconds


def test_cutout_goes_to_a_codec_with_alpha_or_fails_in_one_line(clip, tmp_path: Path) -> None:
    path = clip[0]
    refused = run_cli("apply", str(path), "-m", "otsu", "-o", str(tmp_path / "cut.mp4"))
    assert refused.returncode == 1 and not (tmp_path / "cut.mp4").exists()
    lines = [line for line in refused.stderr.decode().splitlines() if "transparency" in line]
    assert len(lines) == 1 and ".webm" in lines[0]
    done = run_cli("apply", str(path), "-m", "otsu", "-o", str(tmp_path / "cuts"))
    assert done.returncode == 0, done.stderr
    facts = probe(tmp_path / "cuts" / "clip.mov")
    assert facts["codec"] == "prores" and facts["pix_fmt"].startswith("yuva") and facts["frames"] == 12
    with av.open(str(tmp_path / "cuts" / "clip.mov")) as container:
        alpha = next(container.decode(video=0)).to_ndarray(format="rgba")[..., 3]
    assert 0.05 < float((alpha > 128).mean()) < 0.95  # both kept and removed pixels


def test_truncated_video_gives_its_frames_then_one_error(tmp_path: Path) -> None:
    photo = _photo()
    frames = [photo[y:y + 96, x:x + 128] for y, x in panned(photo, 30, (96, 128))]
    whole = tmp_path / "whole.mkv"
    make_clip(whole, frames)
    data = whole.read_bytes()
    cut = tmp_path / "cut.mkv"
    cut.write_bytes(data[:len(data) * 6 // 10])
    done = run_cli("segment", str(cut), "-o", str(tmp_path / "m"))
    assert done.returncode == 1
    errors = [line for line in done.stderr.decode().splitlines() if "cut.mkv" in line]
    assert len(errors) == 1 and "truncated" in errors[0], done.stderr
    written = list((tmp_path / "m" / "cut").iterdir())
    assert 0 < len(written) < 30


def test_animated_gif_is_a_video(tmp_path: Path) -> None:
    from PIL import Image

    photo = _photo()
    pictures = [Image.fromarray(np.ascontiguousarray(photo[y:y + 64, x:x + 80]))
                for y, x in panned(photo, 5, (64, 80), step=(3, 3))]
    pictures[0].save(tmp_path / "anim.gif", save_all=True, append_images=pictures[1:], duration=80, loop=0)
    done = run_cli("apply", str(tmp_path / "anim.gif"), "-m", "otsu", "-o", str(tmp_path / "out"))
    assert done.returncode == 0, done.stderr
    with Image.open(tmp_path / "out" / "anim.gif") as result:
        assert result.n_frames == 5 and result.size == (80, 64)


def _peak_bytes(path: Path, output: Path) -> int:
    from maskcli.io.sinks import FolderSink
    from maskcli.io.sources import expand_inputs
    from maskcli.jobs.segment import SegmentJob
    from maskcli.methods import methods
    from maskcli.video.runner import run_media

    job = SegmentJob(methods.create("otsu"))
    job.sink = FolderSink(output, "{stem}.mkv")
    tracemalloc.start()
    try:
        (result,) = run_media(job.sink.items(expand_inputs([str(path)])), job, jobs=1)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert result.status == "written", result.error
    return peak


def test_memory_stays_flat_in_the_videos_length(tmp_path: Path) -> None:
    photo = _photo()
    short = [photo[y:y + 120, x:x + 160] for y, x in panned(photo, 30, (120, 160))]
    make_clip(tmp_path / "short.mkv", short)
    make_clip(tmp_path / "long.mkv", short * 8)
    peak_short = _peak_bytes(tmp_path / "short.mkv", tmp_path / "a")
    peak_long = _peak_bytes(tmp_path / "long.mkv", tmp_path / "b")
    frame_bytes = 120 * 160 * 3
    assert peak_long < peak_short + 20 * frame_bytes  # 210 more frames would be 210 frames' worth if kept


def test_a_video_never_replaces_a_file_that_appeared_while_it_was_written(tmp_path: Path) -> None:
    from maskcli.errors import OutputTaken
    from maskcli.io.video import VideoWriter

    target = tmp_path / "mask.mkv"
    writer = VideoWriter(target, width=32, height=16, kind="mask", replace=False)
    for index in range(3):
        writer.write(np.full((16, 32), 255 * (index % 2), np.uint8), pts=index * 40, time_base=Fraction(1, 1000))
    target.write_bytes(b"another run's video")  # lands before this one is renamed into place
    with pytest.raises(OutputTaken):
        writer.close()
    assert target.read_bytes() == b"another run's video"
    assert [path.name for path in tmp_path.iterdir()] == ["mask.mkv"]  # no temp file left
