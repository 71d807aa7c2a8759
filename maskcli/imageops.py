"""The few conversions between image forms, in one place: grey, RGB, and 8-bit round trips.

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

__all__ = ["from_uint8", "to_bgr8", "to_grey", "to_rgb", "to_uint8"]


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
    """0..255 bytes to [0, 1] float32."""
    return pixels.astype(np.float32) * np.float32(1 / 255)


def to_bgr8(image: np.ndarray) -> np.ndarray:
    """8-bit BGR H×W×3, contiguous: what OpenCV's colour functions (GrabCut) take."""
    return np.ascontiguousarray(to_uint8(to_rgb(image))[..., ::-1])
