"""Decoding: formats, bit depths, colour modes, orientation, and the refusals."""

from __future__ import annotations

import io
import os

import cv2
import numpy as np
import pytest
from PIL import Image as PILImage
from PIL import ImageOps

from maskcli.errors import InputError
from maskcli.io.decode import decode_image, read_image

from conftest import png_declaring


def _encode(picture: PILImage.Image, format: str, **options) -> bytes:
    buffer = io.BytesIO()
    picture.save(buffer, format=format, **options)
    return buffer.getvalue()


RGB = np.dstack([np.arange(48, dtype=np.uint8).reshape(6, 8) * 5, np.full((6, 8), 30, np.uint8),
                 np.full((6, 8), 220, np.uint8)])


@pytest.mark.parametrize("format", ["PNG", "TIFF", "BMP", "WEBP"])
def test_lossless_rgb_formats_decode_exactly(format):
    options = {"lossless": True} if format == "WEBP" else {}
    image = decode_image(_encode(PILImage.fromarray(RGB), format, **options))
    assert image.pixels.dtype == np.float32 and image.pixels.shape == (6, 8, 3)
    assert np.array_equal(np.round(image.pixels * 255).astype(np.uint8), RGB)
    assert image.bit_depth == 8 and image.format == format


def test_jpeg_decodes_as_pillow_does(samples):
    data = (samples / "retina.jpg").read_bytes()
    image = decode_image(data)
    reference = np.asarray(PILImage.open(io.BytesIO(data)), np.float32) / 255
    assert image.pixels.shape == reference.shape == (1411, 1411, 3)
    assert np.abs(image.pixels - reference).max() <= 1.5 / 255


def test_grey_16_bit_png_keeps_full_precision():
    values = np.array([[0, 1, 2, 65535], [30000, 30001, 40000, 65534]], np.uint16)
    ok, data = cv2.imencode(".png", values)
    image = decode_image(data.tobytes())
    assert image.bit_depth == 16 and image.is_gray
    assert np.array_equal(np.round(image.pixels.astype(np.float64) * 65535).astype(np.uint16), values)


@pytest.mark.parametrize("suffix", [".png", ".tif"])
def test_colour_16_bit_keeps_full_precision(suffix):
    # Pillow would cut 16-bit colour to 8 bits; maskcli must not.
    values = (np.arange(2 * 3 * 3, dtype=np.uint16).reshape(2, 3, 3) * 3001)
    ok, data = cv2.imencode(suffix, cv2.cvtColor(values, cv2.COLOR_RGB2BGR))
    image = decode_image(data.tobytes())
    assert image.bit_depth == 16
    assert np.array_equal(np.round(image.pixels.astype(np.float64) * 65535).astype(np.uint16), values)


@pytest.mark.parametrize("suffix", [".png", ".tif"])
def test_grey_decode_of_16_bit_colour_keeps_precision(suffix):
    rgb = np.random.default_rng(3).integers(0, 65536, (6, 9, 3), dtype=np.uint16)
    data = cv2.imencode(suffix, rgb[..., ::-1])[1].tobytes()
    grey = decode_image(data, gray=True)
    expected = cv2.cvtColor(rgb.astype(np.float32) / 65535, cv2.COLOR_RGB2GRAY)
    assert grey.pixels.shape == (6, 9) and grey.bit_depth == 16
    # libpng's fixed-point luma is within a few 16-bit steps; an 8-bit detour would be 257 steps off.
    assert np.abs(grey.pixels - expected).max() < 4 / 65535


def test_rgba_png_splits_alpha():
    rgba = np.dstack([RGB, np.linspace(0, 255, 48).astype(np.uint8).reshape(6, 8)])
    image = decode_image(_encode(PILImage.fromarray(rgba, "RGBA"), "PNG"))
    assert image.pixels.shape == (6, 8, 3)
    assert np.array_equal(np.round(image.alpha * 255).astype(np.uint8), rgba[..., 3])


def test_palette_png_with_transparency_gives_alpha():
    picture = PILImage.fromarray(RGB).convert("P", palette=PILImage.Palette.ADAPTIVE, colors=8)
    picture.info["transparency"] = 0
    image = decode_image(_encode(picture, "PNG", transparency=0))
    assert image.alpha is not None and image.pixels.shape == (6, 8, 3)
    assert set(np.unique(image.alpha)) <= {0.0, 1.0}


def test_cmyk_jpeg_becomes_rgb():
    picture = PILImage.fromarray(np.tile(RGB, (4, 4, 1))).convert("CMYK")
    image = decode_image(_encode(picture, "JPEG", quality=95))
    assert image.pixels.shape == (24, 32, 3)
    reference = np.asarray(picture.convert("RGB"), np.float32) / 255
    assert np.abs(image.pixels - reference).mean() < 0.03


def test_one_bit_and_grey_alpha_modes():
    bilevel = PILImage.fromarray(RGB[..., 0] > 100).convert("1")
    image = decode_image(_encode(bilevel, "PNG"))
    assert image.is_gray and set(np.unique(image.pixels)) == {0.0, 1.0}
    grey_alpha = PILImage.fromarray(np.dstack([RGB[..., 0], RGB[..., 2]]), "LA")
    image = decode_image(_encode(grey_alpha, "PNG"))
    assert image.is_gray and image.alpha is not None and np.allclose(image.alpha, 220 / 255)


@pytest.mark.parametrize("orientation", range(1, 9))
def test_exif_orientation_is_applied_like_pillow(orientation):
    picture = PILImage.fromarray(RGB)
    exif = picture.getexif()
    exif[0x0112] = orientation
    data = _encode(picture, "JPEG", quality=100, exif=exif.tobytes())
    expected = np.asarray(ImageOps.exif_transpose(PILImage.open(io.BytesIO(data))), np.float32) / 255
    image = decode_image(data)
    assert image.pixels.shape == expected.shape
    assert np.abs(image.pixels - expected).max() < 2 / 255
    reloaded = PILImage.Exif()
    reloaded.load(image.exif)
    assert reloaded.get(0x0112, 1) == 1  # pixels are upright now
    grey = decode_image(data, gray=True)  # the grey fast path orients the same way
    assert np.abs(grey.pixels - cv2.cvtColor(expected, cv2.COLOR_RGB2GRAY)).max() < 2 / 255


def test_icc_profile_is_kept():
    from PIL import ImageCms

    profile = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    image = decode_image(_encode(PILImage.fromarray(RGB), "PNG", icc_profile=profile))
    assert image.icc_profile == profile


# -- refusals: one clear reason each ------------------------------------------------------------------------


def test_empty_file(tmp_path):
    (tmp_path / "empty.png").write_bytes(b"")
    with pytest.raises(InputError, match="empty file"):
        read_image(tmp_path / "empty.png")


def test_text_renamed_to_png(tmp_path):
    (tmp_path / "notes.png").write_text("these are my notes, not a picture\n" * 20)
    with pytest.raises(InputError, match="not a readable image"):
        read_image(tmp_path / "notes.png")


def test_random_bytes(tmp_path):
    (tmp_path / "noise.jpg").write_bytes(np.random.default_rng(1).bytes(5000))
    with pytest.raises(InputError, match="not a readable image"):
        read_image(tmp_path / "noise.jpg")


@pytest.mark.parametrize("format", ["JPEG", "PNG"])
def test_truncated_files(format, capfd):
    data = _encode(PILImage.fromarray(np.tile(RGB, (20, 20, 1))), format)
    with pytest.raises(InputError, match="truncated"):
        decode_image(data[: len(data) // 2])
    assert capfd.readouterr().err == ""  # no library chatter on stderr: maskcli reports it once


def test_folder_named_like_an_image(tmp_path):
    (tmp_path / "photo.jpg").mkdir()
    with pytest.raises(InputError, match="is a folder"):
        read_image(tmp_path / "photo.jpg")


def test_symlink_loop(tmp_path):
    (tmp_path / "a.png").symlink_to(tmp_path / "b.png")
    (tmp_path / "b.png").symlink_to(tmp_path / "a.png")
    with pytest.raises(InputError, match="symbolic links"):
        read_image(tmp_path / "a.png")


def test_unreadable_file(tmp_path, monkeypatch):
    path = tmp_path / "secret.png"
    path.write_bytes(_encode(PILImage.fromarray(RGB), "PNG"))
    path.chmod(0)
    # root reads any file whatever its mode; make the read fail as it does for other users
    real_open = os.open

    def refuse(name, *args, **kwargs):
        if os.path.basename(name) == "secret.png":
            raise PermissionError(13, "Permission denied", str(name))
        return real_open(name, *args, **kwargs)

    monkeypatch.setattr(os, "open", refuse)
    with pytest.raises(InputError, match="permission denied"):
        read_image(path)


def test_huge_declared_size_is_refused_before_decoding():
    with pytest.raises(InputError, match=r"100000×100000 = 10,000,000,000 pixels, over the limit.*`max_pixels`"):
        decode_image(png_declaring(100_000, 100_000))


def test_pixel_limit_can_be_raised():
    data = _encode(PILImage.fromarray(RGB), "PNG")
    with pytest.raises(InputError, match="over the limit of 10"):
        decode_image(data, max_pixels=10)
    assert decode_image(data, max_pixels=48).pixels.shape == (6, 8, 3)


def test_samples_decode(samples):
    for path in sorted(samples.glob("*.*")):
        if path.suffix in (".png", ".jpg"):
            image = read_image(path)
            assert image.pixels.dtype == np.float32
            assert 0.0 <= image.pixels.min() and image.pixels.max() <= 1.0


@pytest.mark.parametrize("channels", [3, 4])
def test_8_bit_pngs_decode_as_opencv_does_colour_and_grey(samples, channels):
    """8-bit PNGs are decoded by Pillow (libpng inside OpenCV writes to the terminal): the pixels, and the grey
    levels of the grey decode, are those OpenCV gives."""
    photo = cv2.imread(str(samples / "chelsea.png"))
    if channels == 4:
        photo = np.dstack([photo, np.arange(photo.shape[0] * photo.shape[1], dtype=np.uint32).reshape(
            photo.shape[:2]).astype(np.uint8)])
    data = cv2.imencode(".png", photo)[1].tobytes()
    colour = decode_image(data)
    opencv = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    assert np.array_equal(colour.samples, cv2.cvtColor(opencv[..., :3], cv2.COLOR_BGR2RGB))
    grey = decode_image(data, gray=True)
    expected = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_GRAYSCALE | cv2.IMREAD_IGNORE_ORIENTATION)
    assert grey.samples.dtype == np.uint8 and np.array_equal(grey.samples, expected)
    assert grey.alpha is None
