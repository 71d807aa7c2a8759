"""Images to bytes: the format asked for, keeping the ICC profile and EXIF where the format allows, upright (the
orientation tag was reset when decoding).

Masks have their own codec (:mod:`maskcli.io.masks`); writing bytes to files is :mod:`maskcli.io.files`'s.
"""

from __future__ import annotations

import io
import struct
import zlib

import cv2
import numpy as np
from PIL import Image as PILImage

from maskcli.errors import OptionError, OutputError
from maskcli.imageops import to_unit_float

#: Output formats by the suffixes that name them.
FORMATS = {".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG", ".webp": "WEBP", ".tif": "TIFF", ".tiff": "TIFF"}
SUFFIX_OF = {"PNG": ".png", "JPEG": ".jpg", "WEBP": ".webp", "TIFF": ".tif", "BMP": ".bmp", "MPO": ".jpg"}


def encode_image(
    pixels: np.ndarray,
    *,
    format: str,
    bit_depth: int = 8,
    quality: int = 92,
    icc_profile: bytes | None = None,
    exif: bytes | None = None,
) -> bytes:
    """Bytes of an image in ``format`` (PNG, JPEG, WEBP, TIFF).

    ``pixels``: float32 in [0, 1], H×W (grey), H×W×3 (RGB) or H×W×4 (RGBA, straight alpha), or samples already
    of the format's type (see :func:`sample_type`; written as they are). ``bit_depth`` 16 is kept where the format
    holds it (PNG, TIFF); 32 (float samples) is kept as float32 by TIFF and written as 16-bit by PNG; JPEG and WebP
    are 8-bit. An alpha result asked for as JPEG is an error: flatten it on a background colour first.

    >>> from PIL import Image as PILImage
    >>> grey = np.array([[0.0, 0.25, 1.0]], np.float32)
    >>> [PILImage.open(io.BytesIO(encode_image(grey, format=f, bit_depth=b))).mode
    ...  for f, b in (("TIFF", 32), ("TIFF", 16), ("PNG", 32), ("JPEG", 16))]
    ['F', 'I;16', 'I;16', 'L']
    """
    format = format.upper()
    if format == "JPG":
        format = "JPEG"
    if format not in ("PNG", "JPEG", "WEBP", "TIFF", "BMP"):
        raise OptionError("format", f"cannot write {format!r}; choose png, jpg, webp or tiff")
    has_alpha = pixels.ndim == 3 and pixels.shape[2] == 4
    if has_alpha and format in ("JPEG", "BMP"):
        raise OptionError(
            "format", f"{format} has no transparency; choose png, webp or tiff, or give a background colour"
        )
    if not 1 <= quality <= 100:
        raise OptionError("quality", f"must be between 1 and 100, not {quality}")
    kind = sample_type(format, bit_depth)
    if kind is np.float32:
        return _encode_float_tiff(quantise(pixels, np.float32), icc_profile, exif)
    array = pixels if pixels.dtype == kind else quantise(pixels, kind)
    if format == "PNG":
        # OpenCV writes PNG twice as fast as Pillow and holds 16-bit colour; metadata goes in as chunks.
        return _with_png_chunks(_encode_cv2(array, format, quality), icc_profile, exif)
    needs_pillow = bool(icc_profile or exif) or format == "WEBP"
    if not needs_pillow and format in ("JPEG", "TIFF", "BMP"):
        return _encode_cv2(array, format, quality)
    return _encode_pillow(array, format, quality, icc_profile, exif)


def sample_type(format: str, bit_depth: int) -> type:
    """The sample type a file of ``format`` holds for a source of ``bit_depth`` (8, 16 or 32 for float).

    >>> [sample_type(f, b).__name__ for f, b in (("PNG", 16), ("JPEG", 16), ("TIFF", 32), ("PNG", 32))]
    ['uint16', 'uint8', 'float32', 'uint16']
    """
    format = "JPEG" if format.upper() == "JPG" else format.upper()
    if bit_depth == 32 and format == "TIFF":
        return np.float32
    return np.uint16 if bit_depth >= 16 and format in ("PNG", "TIFF") else np.uint8


def quantise(pixels: np.ndarray, kind: type) -> np.ndarray:
    """Pixels (float in [0, 1], or integer samples of another type) as samples of ``kind`` (see
    :func:`sample_type`): rounded to nearest and saturated, or clipped floats.

    >>> quantise(np.array([[0.5, 2.0]], np.float32), np.uint16)
    array([[32768, 65535]], dtype=uint16)
    """
    if pixels.dtype == kind:
        return pixels
    if pixels.dtype in (np.uint8, np.uint16):
        pixels = to_unit_float(pixels)
    if kind is np.float32:
        return np.clip(pixels, 0.0, 1.0).astype(np.float32, copy=False)
    return quantise_unit(pixels, int(np.iinfo(kind).max), kind)


def quantise_unit(pixels: np.ndarray, peak: int, dtype: type) -> np.ndarray:
    """Float [0, 1] to integers, rounded to nearest and saturated.

    For 8 bits OpenCV does it in one pass (about 1 ms per RGBA megapixel, against 19 ms for numpy's clip, scale,
    round and cast, which were the largest cost of a cut-out after PNG encoding).

    >>> quantise_unit(np.array([[-0.1, 0.0, 0.5, 1.0, 1.5]], np.float32), 255, np.uint8)
    array([[  0,   0, 128, 255, 255]], dtype=uint8)
    >>> quantise_unit(np.array([[1.0]], np.float32), 255, np.uint8).shape
    (1, 1)
    """
    # OpenCV reads a 1×1 array next to a scalar as a scalar too (cv2.max of a 1×1 and 0.0 gives 4×1): numpy there.
    one_pixel = pixels.shape[0] * pixels.shape[1] == 1
    if dtype is np.uint8 and pixels.dtype == np.float32 and (pixels.ndim == 2 or pixels.shape[2] in (3, 4)) \
            and not one_pixel:
        return cv2.convertScaleAbs(cv2.max(pixels, 0.0), alpha=float(peak))
    return (np.clip(pixels, 0.0, 1.0) * peak + 0.5).astype(dtype)


def _encode_float_tiff(pixels: np.ndarray, icc_profile: bytes | None, exif: bytes | None) -> bytes:
    """float32 TIFF: grey through Pillow (mode F, metadata kept), colour through OpenCV (Pillow has no float
    colour mode)."""
    array = np.clip(pixels, 0.0, 1.0).astype(np.float32, copy=False)
    if array.ndim == 3:
        return _encode_cv2(array, "TIFF", 100)
    return _encode_pillow(array, "TIFF", 100, icc_profile, exif)


def _encode_cv2(array: np.ndarray, format: str, quality: int) -> bytes:
    if array.ndim == 3:
        code = cv2.COLOR_RGBA2BGRA if array.shape[2] == 4 else cv2.COLOR_RGB2BGR
        array = cv2.cvtColor(array, code)
    suffix = SUFFIX_OF[format]
    params = [cv2.IMWRITE_JPEG_QUALITY, quality] if format == "JPEG" else []
    ok, buffer = cv2.imencode(suffix, array, params)
    if not ok:
        raise OutputError(f"OpenCV could not encode the image as {format}")
    return buffer.tobytes()


def _png_chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)


def _with_png_chunks(png: bytes, icc_profile: bytes | None, exif: bytes | None) -> bytes:
    """Insert an ICC profile (iCCP) and EXIF (eXIf) right after the PNG's header chunk, where readers expect them.

    >>> from PIL import Image as PILImage
    >>> png = _encode_cv2(np.zeros((2, 3), np.uint8), "PNG", 90)
    >>> exif = PILImage.Exif(); exif[0x0110] = "maskcli"
    >>> PILImage.open(io.BytesIO(_with_png_chunks(png, None, exif.tobytes()))).getexif()[0x0110]
    'maskcli'
    """
    if not icc_profile and not exif:
        return png
    header_end = 8 + 8 + 13 + 4  # signature, then IHDR: length, type, 13 bytes of data, CRC
    extra = b""
    if icc_profile:
        extra += _png_chunk(b"iCCP", b"ICC profile\x00\x00" + zlib.compress(icc_profile))
    if exif:
        extra += _png_chunk(b"eXIf", exif[6:] if exif.startswith(b"Exif\x00\x00") else exif)
    return png[:header_end] + extra + png[header_end:]


def _encode_pillow(
    array: np.ndarray, format: str, quality: int, icc_profile: bytes | None, exif: bytes | None
) -> bytes:
    if array.ndim == 3 and array.dtype != np.uint8:
        # Pillow holds no 16-bit or float colour (PNG, the usual case, never comes here); metadata is dropped.
        return _encode_cv2(array, format, quality)
    picture = PILImage.fromarray(array)  # uint16 gives I;16, float32 gives F
    options: dict[str, object] = {}
    if icc_profile:
        options["icc_profile"] = icc_profile
    if exif and format in ("JPEG", "PNG", "WEBP", "TIFF"):
        options["exif"] = exif
    if format in ("JPEG", "WEBP"):
        options["quality"] = quality
    buffer = io.BytesIO()
    picture.save(buffer, format=format, **options)
    return buffer.getvalue()


__all__ = ["FORMATS", "SUFFIX_OF", "encode_image", "quantise", "quantise_unit", "sample_type"]
