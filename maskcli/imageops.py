"""The few conversions between image forms, in one place: grey, RGB, integer samples to the float convention and
back (8-bit round trips), and the bands that large images are worked in.

Images follow the one image convention (float32 grey H×W or RGB H×W×3 in [0, 1]); these helpers give the form a
step needs (OpenCV's 8-bit BGR for GrabCut, RGB for a model or a thumbnail, grey for a threshold).

Examples
--------
>>> import numpy as np
>>> to_rgb(np.array([[0.5]], np.float32)).tolist(), to_grey(np.ones((1, 1, 3), np.float32)).tolist()
([[[0.5, 0.5, 0.5]]], [[1.0]])
>>> to_uint8(np.array([[0.0, 0.5, 1.0, 1.5]], np.float32)).tolist(), from_uint8(np.array([[0, 255]], np.uint8))
([[0, 128, 255, 255]], array([[0., 1.]], dtype=float32))
"""

from __future__ import annotations

import cv2
import numpy as np

__all__ = ["BAND_PIXELS", "bands", "from_uint8", "to_bgr8", "to_grey", "to_rgb", "to_uint8", "to_unit_float"]

#: Pixel-by-pixel work on a large image goes in bands of rows of about this many pixels: a quarter megapixel keeps
#: the float temporaries of a band to a few MB, small beside any large image, and large enough that the loop
#: costs nothing measurable.
BAND_PIXELS = 1 << 18


def to_unit_float(samples: np.ndarray) -> np.ndarray:
    """uint8/uint16 samples to float32 in [0, 1], in one pass (not a cast and then a scale).

    >>> to_unit_float(np.array([[0, 65535]], np.uint16))
    array([[0., 1.]], dtype=float32)
    """
    return np.multiply(samples, np.float32(1.0 / np.iinfo(samples.dtype).max), dtype=np.float32)


def bands(height: int, width: int, pixels: int | None = None) -> list[slice]:
    """Row ranges covering ``height`` rows in bands of about ``pixels`` pixels (default :data:`BAND_PIXELS`).

    >>> bands(10, 4, pixels=12)
    [slice(0, 3, None), slice(3, 6, None), slice(6, 9, None), slice(9, 10, None)]
    """
    rows = max(1, (BAND_PIXELS if pixels is None else pixels) // max(width, 1))
    return [slice(top, min(height, top + rows)) for top in range(0, height, rows)]


def to_grey(image: np.ndarray) -> np.ndarray:
    """Grey levels H×W float32: Rec. 601 luma (0.299 R + 0.587 G + 0.114 B, as OpenCV, Pillow and JPEG use);
    a grey image as it is; alpha ignored."""
    if image.ndim == 2:
        return np.ascontiguousarray(image, dtype=np.float32)
    if image.ndim == 3 and image.shape[2] == 1:
        return np.ascontiguousarray(image[..., 0], dtype=np.float32)
    return cv2.cvtColor(np.ascontiguousarray(image[..., :3], dtype=np.float32), cv2.COLOR_RGB2GRAY)


def to_rgb(image: np.ndarray) -> np.ndarray:
    """RGB H×W×3 float32: grey repeated on three channels, alpha dropped, RGB as it is."""
    image = np.asarray(image, dtype=np.float32)
    if image.ndim == 2:
        return cv2.merge([image, image, image])
    if image.shape[2] == 1:
        return cv2.merge([image[..., 0]] * 3)
    if image.shape[2] == 4:
        return np.ascontiguousarray(image[..., :3])
    return image


def to_uint8(pixels: np.ndarray) -> np.ndarray:
    """[0, 1] float to 0..255 bytes, rounded to nearest, out-of-range values clipped."""
    return (np.clip(pixels, 0.0, 1.0) * 255 + 0.5).astype(np.uint8)


def from_uint8(pixels: np.ndarray) -> np.ndarray:
    """0..255 bytes to [0, 1] float32 (:func:`to_unit_float`)."""
    return to_unit_float(pixels)


def to_bgr8(image: np.ndarray) -> np.ndarray:
    """8-bit BGR H×W×3, contiguous: what OpenCV's colour functions (GrabCut) take."""
    return np.ascontiguousarray(to_uint8(to_rgb(image))[..., ::-1])
