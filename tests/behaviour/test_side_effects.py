"""Importing and using the library changes nothing process-wide: Pillow's bomb guard, OpenCV's logging and the
umask stay as the program that imports maskcli set them; limits are passed per call instead."""

from __future__ import annotations

import os
import subprocess
import sys
import threading

import numpy as np
import pytest
from PIL import Image as PILImage

from maskcli.errors import InputError
from maskcli.io.decode import decode_image
from maskcli.io.encode import encode_image
from maskcli.io.files import write_atomic

from conftest import REPO


def test_importing_and_decoding_leave_pillow_and_opencv_as_they_were():
    code = (
        "import cv2, PIL.Image as P; limit = P.MAX_IMAGE_PIXELS; level = cv2.utils.logging.getLogLevel()\n"
        "import numpy as np, maskcli.io.decode as d, maskcli.io.encode as e, maskcli.pipeline, maskcli.masksources\n"
        "d.decode_image(e.encode_image(np.zeros((4, 4), np.float32), format='PNG'))\n"
        "print(P.MAX_IMAGE_PIXELS == limit, cv2.utils.logging.getLogLevel() == level)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO)
    assert done.stdout.split() == ["True", "True"], done.stderr


def test_the_pixel_limit_is_maskcli_s_per_call_not_pillow_s(monkeypatch):
    data = encode_image(np.zeros((20, 20), np.float32), format="PNG")
    monkeypatch.setattr(PILImage, "MAX_IMAGE_PIXELS", 10)  # Pillow would refuse 400 px as a bomb (over 2 × 10)
    assert decode_image(data, max_pixels=1000).pixels.shape == (20, 20)
    with pytest.raises(InputError, match="over the limit of 399"):
        decode_image(data, max_pixels=399)
    assert PILImage.MAX_IMAGE_PIXELS == 10


def test_writes_keep_the_umask_and_honour_it(tmp_path):
    old = os.umask(0o027)
    try:
        threads = [threading.Thread(target=write_atomic, args=(tmp_path / f"{i}.bin", b"x")) for i in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert os.umask(0o027) == 0o027  # nobody changed it meanwhile
    finally:
        os.umask(old)
    assert {oct((tmp_path / f"{i}.bin").stat().st_mode & 0o777) for i in range(8)} == {oct(0o640)}
