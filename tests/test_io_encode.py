"""Encoding masks and images, and atomic writes."""

from __future__ import annotations

import io
import os

import cv2
import numpy as np
import pytest
from PIL import Image as PILImage

from conftest import SAMPLES
from maskcli.errors import OptionError, OutputError
from maskcli.io import encode
from maskcli.io.decode import decode_image
from maskcli.io.encode import TEMP_PREFIX, encode_image, encode_mask, mask_from_array, write_atomic


def test_hard_mask_is_one_bit_png_reading_back_as_0_and_255():
    mask = np.zeros((37, 50), np.float32)
    mask[5:20, 7:40] = 1
    data = encode_mask(mask)
    assert PILImage.open(io.BytesIO(data)).mode == "1"
    back = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    assert np.array_equal(back, (mask * 255).astype(np.uint8))


@pytest.mark.parametrize("bits, dtype", [(8, np.uint8), (16, np.uint16)])
def test_soft_mask_round_trips_within_one_level(bits, dtype):
    mask = np.linspace(0, 1, 64 * 3, dtype=np.float32).reshape(3, 64)
    back = cv2.imdecode(np.frombuffer(encode_mask(mask, bits=bits), np.uint8), cv2.IMREAD_UNCHANGED)
    assert back.dtype == dtype
    assert np.abs(mask_from_array(back) - mask).max() <= 0.5 / np.iinfo(dtype).max + 1e-7


def test_mask_bits_are_checked():
    with pytest.raises(OptionError, match="bits: must be 8 or 16, not 12") as caught:
        encode_mask(np.zeros((2, 2), np.float32), bits=12)
    assert caught.value.option == "bits"


def test_mask_from_array_prefers_alpha():
    rgba = np.zeros((2, 2, 4), np.uint8)
    rgba[..., 3] = [[0, 255], [255, 0]]
    assert np.array_equal(mask_from_array(rgba), np.array([[0, 1], [1, 0]], np.float32))


def test_rgba_cannot_be_jpeg():
    with pytest.raises(OptionError, match="no transparency"):
        encode_image(np.zeros((2, 2, 4), np.float32), format="jpeg")


@pytest.mark.parametrize("format", ["PNG", "TIFF"])
def test_16_bit_output_is_kept(format):
    pixels = np.linspace(0, 1, 2 * 5 * 3, dtype=np.float32).reshape(2, 5, 3)
    image = decode_image(encode_image(pixels, format=format, bit_depth=16))
    assert image.bit_depth == 16
    assert np.abs(image.pixels - pixels).max() < 1e-4


def test_metadata_is_kept():
    from PIL import ImageCms

    profile = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    exif = PILImage.Exif()
    exif[0x010F] = "maskcli-test-camera"  # Make
    pixels = np.full((4, 4, 3), 0.5, np.float32)
    for format in ("JPEG", "PNG", "WEBP", "TIFF"):
        data = encode_image(pixels, format=format, icc_profile=profile, exif=exif.tobytes())
        back = decode_image(data)
        assert back.icc_profile == profile, format
        reread = PILImage.Exif()
        reread.load(back.exif)
        assert reread[0x010F] == "maskcli-test-camera", format


def test_write_atomic_replaces_and_leaves_no_temp(tmp_path):
    target = tmp_path / "deep" / "out.png"
    write_atomic(target, b"first")
    write_atomic(target, b"second")
    assert target.read_bytes() == b"second"
    assert [p.name for p in target.parent.iterdir()] == ["out.png"]


def test_write_atomic_failure_removes_the_temp_and_keeps_the_old_file(tmp_path, monkeypatch):
    target = tmp_path / "out.png"
    target.write_bytes(b"old")

    def broken_replace(src, dst):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", broken_replace)
    with pytest.raises(OutputError, match="No space left"):
        write_atomic(target, b"new")
    assert target.read_bytes() == b"old"
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(TEMP_PREFIX)]


def test_write_atomic_interrupted_leaves_no_partial_file(tmp_path, monkeypatch):
    target = tmp_path / "out.png"

    def interrupted(src, dst):
        raise KeyboardInterrupt

    monkeypatch.setattr(os, "replace", interrupted)
    with pytest.raises(KeyboardInterrupt):
        write_atomic(target, b"data")
    assert list(tmp_path.iterdir()) == []


def test_stopping_writes_waits_for_a_rename_under_way_and_then_refuses_the_next(tmp_path, monkeypatch):
    """Once ``stop_writes`` returns, every rename begun before is complete (so its writer reports the file) and
    none begins after: a stopping run can list every file it leaves."""
    import threading

    from maskcli.errors import WriteStopped

    renaming, release = threading.Event(), threading.Event()
    real_replace = os.replace

    def slow_replace(source, target):
        renaming.set()
        release.wait(10)
        real_replace(source, target)

    monkeypatch.setattr(os, "replace", slow_replace)
    writer = threading.Thread(target=write_atomic, args=(tmp_path / "a.png", b"a"))
    writer.start()
    assert renaming.wait(10)
    stopper = threading.Thread(target=encode.stop_writes)
    stopper.start()
    try:
        stopper.join(0.3)
        assert stopper.is_alive()  # waits for the rename under way
    finally:
        release.set()
        stopper.join(10)
        writer.join(10)
    try:
        assert (tmp_path / "a.png").read_bytes() == b"a"
        with pytest.raises(WriteStopped):
            write_atomic(tmp_path / "b.png", b"b")
        assert sorted(p.name for p in tmp_path.iterdir()) == ["a.png"]
    finally:
        encode.resume_writes()


def test_read_only_folder_is_one_clear_error(tmp_path, monkeypatch):
    def refuse(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(encode.tempfile, "mkstemp", refuse)
    with pytest.raises(OutputError, match="permission denied"):
        write_atomic(tmp_path / "out.png", b"x")


def test_png_keeps_icc_and_exif_at_16_bits_of_colour():
    icc = PILImage.open(SAMPLES / "chelsea.png").info["icc_profile"]
    exif = PILImage.Exif()
    exif[0x010E] = "a test picture"  # ImageDescription
    pixels = np.random.default_rng(1).random((5, 7, 3)).astype(np.float32)
    data = encode_image(pixels, format="PNG", bit_depth=16, icc_profile=icc, exif=exif.tobytes())
    image = decode_image(data)
    assert image.bit_depth == 16 and image.icc_profile == icc
    assert PILImage.open(io.BytesIO(data)).getexif()[0x010E] == "a test picture"
    assert np.abs(image.pixels - pixels).max() <= 0.5 / 65535 + 1e-7


def test_the_temp_files_of_killed_processes_are_removed_and_no_others(tmp_path: Path) -> None:
    from maskcli.io.encode import remove_temp_files

    left = tmp_path / f"{TEMP_PREFIX}4242-abc.png"  # what a worker killed mid-write leaves
    other = tmp_path / f"{TEMP_PREFIX}4243-def.png"  # another process's write in progress
    kept = tmp_path / "4242.png"
    for path in (left, other, kept):
        path.write_bytes(b"x")
    remove_temp_files([tmp_path, tmp_path / "missing"], [4242])
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([other.name, kept.name])


def test_a_temp_file_names_its_process(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    from maskcli.io import encode

    seen: list[str] = []
    real_replace = os.replace
    monkeypatch.setattr(encode.os, "replace", lambda src, dst: (seen.append(os.path.basename(src)),
                                                                 real_replace(src, dst)))
    write_atomic(tmp_path / "a.png", b"data")
    assert seen and seen[0].startswith(f"{TEMP_PREFIX}{os.getpid()}-")


def test_the_temp_files_of_dead_processes_are_removed_and_a_live_ones_kept(tmp_path: Path) -> None:
    import os
    import subprocess
    import sys

    from maskcli.io.encode import remove_temp_files_of_dead_processes

    done = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    dead = int(done.stdout)  # a process that has exited
    (tmp_path / f"{TEMP_PREFIX}{dead}-abc.png").write_bytes(b"x")
    (tmp_path / f"{TEMP_PREFIX}{os.getpid()}-def.png").write_bytes(b"x")  # this live process's write
    remove_temp_files_of_dead_processes([tmp_path])
    assert [p.name for p in tmp_path.iterdir()] == [f"{TEMP_PREFIX}{os.getpid()}-def.png"]


def test_a_process_ending_mid_write_leaves_no_temp_file(tmp_path, monkeypatch):
    """discard_temp_files (an interrupted process's last step, before os._exit) removes the temp file of a write
    still under way in another thread, and no new one is made after it."""
    import threading

    from maskcli.errors import WriteStopped

    writing, release = threading.Event(), threading.Event()
    real_fdopen = os.fdopen

    class Slow:
        def __init__(self, stream):
            self.stream = stream

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.stream.close()

        def write(self, data):
            writing.set()
            release.wait(10)
            return self.stream.write(data)

    monkeypatch.setattr(os, "fdopen", lambda *a, **k: Slow(real_fdopen(*a, **k)))
    outcome = []

    def write():
        try:
            write_atomic(tmp_path / "a.png", b"a")
        except WriteStopped:
            outcome.append("stopped")

    writer = threading.Thread(target=write)
    writer.start()
    try:
        assert writing.wait(10)
        assert [p.name for p in tmp_path.iterdir()][0].startswith(TEMP_PREFIX)
        encode.discard_temp_files()
        assert list(tmp_path.iterdir()) == []  # what os._exit would leave now
        with pytest.raises(WriteStopped):
            write_atomic(tmp_path / "b.png", b"b")
    finally:
        release.set()
        writer.join(10)
        encode.resume_writes()
    assert outcome == ["stopped"] and list(tmp_path.iterdir()) == []
