"""Temporal smoothing: steadier masks on clips with a known truth, no loss of IoU, a fresh start at scene cuts."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from maskcli.metrics import iou
from maskcli.video.temporal import TemporalSmoother, flicker

from conftest import DATA, SAMPLES, needs_data, needs_u2netp, run_cli


@needs_data
@needs_u2netp
def test_smoothing_cuts_flicker_without_losing_iou() -> None:
    from benchmarks.bench_temporal import clip
    from maskcli.methods import methods

    method = methods.create("cnn")
    rng = np.random.default_rng(0)
    raw_flicker = smooth_flicker = raw_iou = smooth_iou = 0.0
    for name in ("horse001.png", "horse007.png", "horse012.png"):  # the first three of the benchmark's clips
        photo = cv2.imread(str(DATA / "weizmann_horses" / "images" / name))
        size = (int(photo.shape[0] * 0.8) // 2 * 2, int(photo.shape[1] * 0.8) // 2 * 2)
        pictures, truths = clip(name, 20, size, (1, 2), 12.0, rng)
        raw = [s.mask for s in method.compute_batch([p.astype(np.float32) / 255 for p in pictures])]
        smoother = TemporalSmoother(0.75)
        smoothed = [smoother(mask, picture) for mask, picture in zip(raw, pictures)]
        assert smoother.cuts == []  # a pan is no scene cut
        raw_flicker += flicker(raw, truths)
        smooth_flicker += flicker(smoothed, truths)
        raw_iou += float(np.mean([iou(m, t) for m, t in zip(raw, truths)]))
        smooth_iou += float(np.mean([iou(m, t) for m, t in zip(smoothed, truths)]))
    assert smooth_flicker <= 0.6 * raw_flicker
    assert smooth_iou >= raw_iou - 1e-3


def test_a_scene_cut_starts_afresh() -> None:
    first = cv2.imread(str(SAMPLES / "coins.png"), cv2.IMREAD_GRAYSCALE)
    other = cv2.resize(cv2.imread(str(SAMPLES / "camera.png"), cv2.IMREAD_GRAYSCALE), first.shape[::-1])
    smoother = TemporalSmoother(0.8)
    ones, zeros = np.ones(first.shape, np.float32), np.zeros(first.shape, np.float32)
    smoother(ones, first)
    assert float(smoother(zeros, first).mean()) == pytest.approx(0.8, abs=0.01)  # the past weighs in
    assert float(smoother(ones, other).max()) == 1.0 and smoother.cuts == [2]  # a new shot: the past is dropped


def test_cli_temporal_makes_steadier_masks(tmp_path: Path) -> None:
    from video_clips import make_clip

    # A still camera: what changes from frame to frame is the sensor noise alone.
    photo = cv2.imread(str(SAMPLES / "coffee.png"))[:, :, ::-1][:160, :240].astype(np.float32)
    rng = np.random.default_rng(3)
    frames = [np.clip(photo + rng.normal(0, 14, photo.shape), 0, 255).astype(np.uint8) for _ in range(10)]
    make_clip(tmp_path / "noisy.mkv", frames)
    for option, folder in (([], "plain"), (["--temporal", "0.75"], "smooth")):
        done = run_cli("segment", str(tmp_path / "noisy.mkv"), "-o", str(tmp_path / folder), *option)
        assert done.returncode == 0, done.stderr

    def changes(folder: str) -> float:
        masks = [cv2.imread(str(p), 0) > 0 for p in sorted((tmp_path / folder / "noisy").iterdir())]
        return float(np.mean([np.mean(a != b) for a, b in zip(masks, masks[1:])]))

    assert changes("smooth") < 0.6 * changes("plain")
