"""HEIC/HEIF and AVIF photos: read upright (EXIF orientation applied), their ICC profile and EXIF kept in outputs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageCms

from conftest import SAMPLES, run_cli

pillow_heif = pytest.importorskip("pillow_heif")


def _write(path: Path, fmt: str) -> None:
    """The sample photo stored sideways with orientation 6 ("turn 90° clockwise to show"), a profile and a Make."""
    upright = Image.open(SAMPLES / "chelsea.png").convert("RGB")
    stored = upright.transpose(Image.Transpose.ROTATE_90)  # what a camera held sideways stores
    exif = Image.Exif()
    exif[0x0112], exif[0x010F] = 6, "TestCam"
    profile = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    if fmt == "HEIF":
        pillow_heif.from_pillow(stored).save(path, exif=exif.tobytes(), icc_profile=profile, quality=95)
    else:
        stored.save(path, format=fmt, exif=exif.tobytes(), icc_profile=profile, quality=95)


@pytest.mark.parametrize(("name", "fmt"), [("photo.heic", "HEIF"), ("photo.avif", "AVIF")])
def test_read_upright_with_profile_and_exif_kept(tmp_path: Path, name: str, fmt: str) -> None:
    from maskcli.io.decode import read_image

    _write(tmp_path / name, fmt)
    image = read_image(tmp_path / name)
    upright = np.asarray(Image.open(SAMPLES / "chelsea.png").convert("RGB"), np.float32) / 255
    assert image.shape == upright.shape  # turned back: 300 rows, 451 columns
    assert float(np.abs(image.pixels - upright).mean()) < 0.03  # the same picture, not a rotated one
    assert image.icc_profile

    folder = tmp_path / "in"
    folder.mkdir()
    (tmp_path / name).rename(folder / name)
    done = run_cli("apply", str(folder), "-m", "otsu", "--mode", "blur", "-o", str(tmp_path / "out"))
    assert done.returncode == 0, done.stderr
    (written,) = (tmp_path / "out").iterdir()
    with Image.open(written) as result:
        assert result.size == (451, 300)
        assert result.info.get("icc_profile") == image.icc_profile
        exif = result.getexif()
        assert exif.get(0x010F) == "TestCam" and exif.get(0x0112, 1) == 1
    masks = run_cli("segment", str(folder), "-o", str(tmp_path / "masks"))
    assert masks.returncode == 0, masks.stderr
    assert Image.open(tmp_path / "masks" / "photo.png").size == (451, 300)
