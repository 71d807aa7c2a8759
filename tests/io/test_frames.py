"""Videos where files are paired: a clip with the per-frame files `segment` writes for it, in `eval --methods` and
`preview`, and the frame reader under them."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import cv2
import numpy as np
import pytest

from maskcli.errors import InputError
from maskcli.io.frames import FrameReader
from maskcli.io.pairing import pair_files

from conftest import SAMPLES, run_cli
from video_clips import panned_clip

FRAMES = 6


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> Path:
    """clips/walk.mp4: six frames panned across the coins photo (lossless H.264), and its frames as PNG files."""
    root = tmp_path_factory.mktemp("frames")
    picture = cv2.cvtColor(cv2.imread(str(SAMPLES / "coins.png")), cv2.COLOR_BGR2RGB)
    (root / "clips").mkdir()
    panned_clip(root / "clips" / "walk.mp4", picture, FRAMES, step=(3, 5))
    return root / "clips" / "walk.mp4"


def test_frames_are_read_by_number_in_any_order(clip):
    frames = FrameReader()
    forward = [frames.read(clip, number).samples.copy() for number in range(1, FRAMES + 1)]
    assert all(frame.shape == (96, 128, 3) for frame in forward)
    assert not np.array_equal(forward[0], forward[1])  # the camera moves
    # Back to an early frame (decoded afresh), then a kept one.
    assert np.array_equal(frames.read(clip, 1).samples, forward[0])
    assert np.array_equal(frames.read(clip, 2).samples, forward[1])
    with pytest.raises(InputError, match="the video has 6 frames, no frame 7"):
        frames.read(clip, FRAMES + 1)
    frames.close()


def test_threads_reading_neighbouring_frames_get_each_its_own(clip):
    frames, expected = FrameReader(), {}
    single = FrameReader()
    for number in range(1, FRAMES + 1):
        expected[number] = single.read(clip, number).samples.copy()
    got: dict[int, np.ndarray] = {}

    def read(number: int) -> None:
        got[number] = frames.read(clip, number).samples

    threads = [threading.Thread(target=read, args=(number,)) for number in (2, 1, 3, 5, 4, 6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert all(np.array_equal(got[number], expected[number]) for number in expected)


def test_a_reader_travels_to_a_worker_process_without_its_decoders(clip):
    import pickle

    frames = FrameReader(max_pixels=10**6)
    frames.read(clip, 2)
    copy = pickle.loads(pickle.dumps(frames))
    assert copy.max_pixels == 10**6 and np.array_equal(copy.read(clip, 2).samples, frames.read(clip, 2).samples)


def test_a_video_pairs_with_the_frames_segment_wrote_for_it(clip, tmp_path):
    masks = tmp_path / "masks"
    done = run_cli("segment", str(clip.parent), "-o", str(masks), "-m", "otsu", "-q")
    assert done.returncode == 0, done.stderr
    assert sorted(p.name for p in (masks / "walk").iterdir()) == [f"{n:06d}.png" for n in range(1, FRAMES + 1)]
    (masks / "walk" / "000009.png").write_bytes((masks / "walk" / "000001.png").read_bytes())  # no such frame
    pairing = pair_files(clip.parent, masks)
    assert [(p.key, p.frame) for p in pairing.pairs][:2] == [("walk/000001", 1), ("walk/000002", 2)]
    assert len(pairing.pairs) == FRAMES + 1 and not pairing.unpaired_sources and not pairing.unpaired_truths
    # The video alone, with its frames' folder itself.
    assert [p.frame for p in pair_files(clip, masks / "walk").pairs] == [*range(1, FRAMES + 1), 9]


def test_eval_methods_scores_every_frame_of_a_video(clip, tmp_path):
    truth = tmp_path / "truth"
    done = run_cli("segment", str(clip.parent), "-o", str(truth), "-m", "otsu", "-q")
    assert done.returncode == 0, done.stderr
    done = run_cli("eval", "--methods", "otsu,li", str(clip.parent), str(truth), "--json")
    assert done.returncode == 0, done.stderr
    ranking = {entry["label"]: entry["images"] for entry in json.loads(done.stdout.splitlines()[0])["ranking"]}
    assert [image["key"] for image in ranking["otsu"]] == [f"walk/{n:06d}" for n in range(1, FRAMES + 1)]
    # The same decoder and the same method as the truth: every frame agrees exactly; Li's level differs.
    assert all(image["iou"] == 1.0 for image in ranking["otsu"]), ranking["otsu"]
    assert len(ranking["li"]) == FRAMES and min(image["iou"] for image in ranking["li"]) < 1.0


def test_preview_draws_each_frame_of_a_video(clip, tmp_path):
    masks = tmp_path / "masks"
    assert run_cli("segment", str(clip.parent), "-o", str(masks), "-m", "otsu", "-q").returncode == 0
    done = run_cli("preview", str(clip.parent), str(masks), "-o", str(tmp_path / "overlays"), "--sheet",
                   str(tmp_path / "sheet.png"))
    assert done.returncode == 0, done.stderr
    overlays = sorted((tmp_path / "overlays" / "walk").iterdir())
    assert [p.name for p in overlays] == [f"{n:06d}.png" for n in range(1, FRAMES + 1)]
    first, second = (cv2.imread(str(path)) for path in overlays[:2])
    assert first.shape == (96, 128, 3) and not np.array_equal(first, second)  # each its own frame
    assert (tmp_path / "sheet.png").stat().st_size > 0
