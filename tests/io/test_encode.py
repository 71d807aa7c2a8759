"""Encoding masks and images."""

from __future__ import annotations

import io

import cv2
import numpy as np
import pytest
from PIL import Image as PILImage

from maskcli.errors import OptionError
from maskcli.io.decode import decode_image
from maskcli.io.encode import encode_image
from maskcli.io.masks import encode_mask, mask_from_array

from conftest import SAMPLES


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
