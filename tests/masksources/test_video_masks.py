"""A video's masks from a mask folder: the per-frame files `segment` writes for it, or a mask video, one per frame."""

from __future__ import annotations

from pathlib import Path

import av
import cv2
import numpy as np
import pytest

from conftest import SAMPLES, run_cli
from video_clips import panned_clip

FRAMES = 5


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("video-masks")
    picture = cv2.cvtColor(cv2.imread(str(SAMPLES / "coins.png")), cv2.COLOR_BGR2RGB)
    panned_clip(root / "walk.mp4", picture, FRAMES)
    return root / "walk.mp4"


def _alpha(path: Path) -> list[np.ndarray]:
    with av.open(str(path)) as container:
        return [frame.to_ndarray(format="rgba")[..., 3] for frame in container.decode(container.streams.video[0])]


@pytest.mark.parametrize("masks_as", ["frames", "video"])
def test_apply_takes_a_videos_masks_frame_by_frame(clip, tmp_path, masks_as):
    masks = tmp_path / "masks"
    target = masks / ("walk.mkv" if masks_as == "video" else "")
    done = run_cli("segment", str(clip), "-o", str(target), "-m", "otsu", "-q")
    assert done.returncode == 0, done.stderr
    direct = run_cli("apply", str(clip), "-m", "otsu", "--mode", "cutout", "-o", str(tmp_path / "a.mov"))
    paired = run_cli("apply", str(clip), "--masks", str(masks), "--mode", "cutout", "-o",
                     str(tmp_path / "b.mov"))
    assert direct.returncode == 0 and paired.returncode == 0, (direct.stderr, paired.stderr)
    ours, theirs = _alpha(tmp_path / "a.mov"), _alpha(tmp_path / "b.mov")
    assert len(ours) == len(theirs) == FRAMES
    # Each frame got its own mask: the alpha moves with the camera, and equals the method's run on that frame.
    assert not np.array_equal(theirs[0], theirs[-1])
    assert all(np.array_equal(a, b) for a, b in zip(ours, theirs))


def test_a_missing_frame_mask_fails_the_video_in_one_line(clip, tmp_path):
    masks = tmp_path / "masks"
    assert run_cli("segment", str(clip), "-o", str(masks), "-m", "otsu", "-q").returncode == 0
    (masks / "walk" / "000003.png").unlink()
    done = run_cli("apply", str(clip), "--masks", str(masks), "--mode", "cutout", "-o", str(tmp_path / "out.mov"))
    assert done.returncode == 1
    errors = [line for line in done.stderr.decode().splitlines() if "error" in line]
    assert len(errors) == 1 and "frame 3" in errors[0] and "000003.png" in errors[0], done.stderr
    assert not (tmp_path / "out.mov").exists()
