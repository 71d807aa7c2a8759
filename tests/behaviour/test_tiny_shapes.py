"""A mask always has its image's size, for every shape down to 1×1, 1×N and N×1: through every method of
``maskcli segment`` and then every mode of ``maskcli apply`` on the masks it wrote."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from maskcli.composite import modes
from maskcli.io.masks import encode_mask
from maskcli.methods import methods

from conftest import run_main

SHAPES = [(1, 1), (1, 7), (7, 1), (2, 2)]
#: Options a method needs to run at all (the CNN needs weights and is tested with them elsewhere).
METHOD_OPTIONS = {"color_range": ["-p", "key=green"]}
MODE_OPTIONS = {"enhance": ["-s", "contrast=1.5"]}



@pytest.fixture(scope="module")
def images(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("tiny")
    for height, width in SHAPES:
        ramp = (np.arange(height * width).reshape(height, width) * 97 % 256).astype(np.uint8)
        ramp.flat[0] = 250  # never constant, so a threshold has something to split
        cv2.imwrite(str(folder / f"grey-{height}x{width}.png"), ramp)
        cv2.imwrite(str(folder / f"colour-{height}x{width}.png"), np.dstack([ramp, 255 - ramp, ramp // 2]))
    return folder


@pytest.mark.parametrize("shape", SHAPES + [(1, 1, 3), (1, 1, 4)])
def test_encoded_mask_keeps_its_shape(shape):
    mask = np.ones(shape[:2], np.float32)
    for hard in (True, False):
        data = encode_mask(mask if hard else mask * 0.5, hard=hard)
        assert cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED).shape == shape[:2]


@pytest.mark.parametrize("method", [name for name in methods.names() if name not in ("cnn", "sam")])  # weights
def test_every_method_gives_masks_of_the_image_size_and_apply_takes_them(method, images, tmp_path, capsys):
    masks = tmp_path / "masks"
    status, err = run_main(["segment", str(images), "-o", str(masks), "-m", method, *METHOD_OPTIONS.get(method, []),
                         "--jobs", "1", "-q"], capsys)
    assert status == 0, err
    for path in sorted(images.iterdir()):
        image = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
        mask = cv2.imread(str(masks / path.name), cv2.IMREAD_UNCHANGED)
        assert mask is not None and mask.shape == image.shape[:2], f"{method} on {path.name}: {mask.shape}"
    if method != "otsu":
        return
    for mode in modes.names():
        if mode in ("image", "crop"):
            continue  # crop may refuse an empty mask; image needs a background file: both covered elsewhere
        out = tmp_path / mode
        status, err = run_main(["apply", str(images), "--masks", str(masks), "--mode", mode,
                             *MODE_OPTIONS.get(mode, []), "-o", str(out), "--jobs", "1", "-q"], capsys)
        assert status == 0, f"{mode}: {err}"
        for path in sorted(images.iterdir()):
            written = cv2.imread(str(out / path.name), cv2.IMREAD_UNCHANGED)
            assert written.shape[:2] == cv2.imread(str(path), cv2.IMREAD_UNCHANGED).shape[:2], f"{mode} {path}"
