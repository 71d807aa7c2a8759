"""Hostile inputs: files that are not images, names that lie, outputs that would land on inputs, signals and
killed parents. Every test here once failed on maskcli 0.1."""

from __future__ import annotations

import os
import stat
import sys

import cv2
import numpy as np
import pytest

from conftest import SAMPLES, run_cli
from maskcli.errors import InputError
from maskcli.io.decode import read_image

posix_only = pytest.mark.skipif(sys.platform == "win32", reason="FIFOs and device files are POSIX")


@posix_only
@pytest.mark.parametrize("kind", ["fifo", "zero", "urandom"])
def test_only_regular_files_are_read(tmp_path, kind):
    path = tmp_path / "x.png"
    if kind == "fifo":
        os.mkfifo(path)
    else:
        path.symlink_to(f"/dev/{kind}")
    expected = "not a regular file (FIFO)" if kind == "fifo" else "not a regular file (character device)"
    with pytest.raises(InputError, match=r"^" + expected.replace("(", r"\(").replace(")", r"\)") + "$"):
        read_image(path)
    done = run_cli("segment", str(path), str(SAMPLES / "coins.png"), "-o", str(tmp_path / "out"), timeout=60)
    assert done.returncode == 1
    assert done.stderr.decode().splitlines()[0] == f"maskcli: error: {path}: {expected}"
    assert (tmp_path / "out" / "coins.png").is_file()


def test_stdin_is_read_no_further_than_the_pixel_limit(tmp_path):
    png = (SAMPLES / "coins.png").read_bytes()
    done = run_cli("segment", "-", "-o", str(tmp_path / "m.png"), "--max-pixels", "100",
                   stdin=png + b"\0" * (20 << 20))
    assert done.returncode == 1
    assert "more than 16,778,816 bytes" in done.stderr.decode()
    assert not (tmp_path / "m.png").exists()
