"""A hard mask under an opaque colour is composited on the 8-bit samples: exactly what the float path gives."""

from __future__ import annotations

import numpy as np
import pytest

from maskcli.composite import modes
from maskcli.io.decode import read_image
from maskcli.io.encode import quantise
from maskcli.jobs.apply import ApplyJob
from maskcli.methods import methods

from conftest import SAMPLES


@pytest.mark.parametrize("sample", ["chelsea.png", "coins.png", "retina.jpg"])
@pytest.mark.parametrize("background", ["white", "#ff8000", "0.3,0.3,0.3"])
@pytest.mark.parametrize("as_levels", [False, True])
def test_the_samples_path_equals_the_float_path(sample, background, as_levels):
    image = read_image(SAMPLES / sample)
    mask = methods.create("otsu").compute(image.pixels).mask  # hard: 0 and 1
    if as_levels:
        mask = (mask * 255).astype(np.uint8)
    mode = modes.create("color", {"background": background})
    job = ApplyJob.__new__(ApplyJob)
    job.mode = mode
    fast = job._on_samples(image, mask)
    if image.samples.ndim == 2 and background == "#ff8000":  # a grey image on a colour: the float path's RGB
        assert fast is None
        return
    assert fast is not None and fast.dtype == np.uint8
    slow = quantise(mode(image.pixels, mask.astype(np.float32) / (255 if as_levels else 1)), np.uint8)
    assert np.array_equal(fast, slow)


def test_a_soft_mask_or_a_translucent_colour_keeps_the_float_path():
    image = read_image(SAMPLES / "coins.png")
    job = ApplyJob.__new__(ApplyJob)
    job.mode = modes.create("color", {"background": "white"})
    soft = np.full(image.pixels.shape[:2], 0.5, np.float32)
    assert job._on_samples(image, soft) is None
    job.mode = modes.create("color", {"background": "#ffffff80"})
    assert job._on_samples(image, np.ones(image.pixels.shape[:2], np.float32)) is None
    job.mode = modes.create("cutout")
    assert job._on_samples(image, np.ones(image.pixels.shape[:2], np.float32)) is None
