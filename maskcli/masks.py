"""The one mask convention: a float32 H×W array in [0, 1]; a hard mask holds exactly 0 and 1.

Every method returns such an array and every compositing mode takes one. Conversions to and from file
encodings (0/255 bytes, 16-bit) live in ``maskcli.io``; the helpers here work inside the convention.
"""

from __future__ import annotations

import numpy as np

from maskcli.errors import OptionError, ShapeMismatch

__all__ = ["binary", "check_mask", "fill_binary_holes", "fraction", "invert", "is_hard", "resize_mask", "to_hard"]


def check_mask(mask: np.ndarray, *, what: str = "a mask") -> np.ndarray:
    """Return ``mask`` if it follows the convention, else raise ``ValueError`` saying how ``what`` breaks it.

    >>> check_mask(np.zeros((2, 3), np.float32)).shape
    (2, 3)
    >>> check_mask(np.zeros((2, 3), np.uint8))
    Traceback (most recent call last):
    ...
    ValueError: a mask must be float32, not uint8
    """
    if mask.dtype != np.float32:
        raise ValueError(f"{what} must be float32, not {mask.dtype}")
    if mask.ndim != 2:
        raise ValueError(f"{what} must be 2-D (H×W), not of shape {mask.shape}")
    if mask.size and not (mask.min() >= 0 and mask.max() <= 1):  # NaN fails both comparisons
        raise ValueError(f"{what} must hold values in [0, 1]")
    return mask


def is_hard(mask: np.ndarray) -> bool:
    """True when every value is exactly 0 or 1.

    >>> is_hard(np.array([[0, 1]], np.float32)), is_hard(np.array([[0, 0.5]], np.float32))
    (True, False)
    """
    return bool(np.all((mask == 0) | (mask == 1)))


def to_hard(mask: np.ndarray, level: float = 0.5) -> np.ndarray:
    """Binarise: 1 where ``mask >= level``, else 0.

    ``level`` 0.5 keeps the pixels more likely in than out; a soft mask thresholded at its own hard values is
    unchanged.

    >>> to_hard(np.array([[0.2, 0.5, 0.9]], np.float32))
    array([[0., 1., 1.]], dtype=float32)
    """
    if not 0.0 < level <= 1.0:
        raise OptionError("hard", f"level must be in (0, 1], got {level}")
    return (mask >= level).astype(np.float32)


def binary(mask: np.ndarray, level: float = 0.5) -> np.ndarray:
    """The mask binarised at ``level`` as uint8 0/1, the form OpenCV's region functions take.

    >>> binary(np.array([[0.2, 0.5, 0.9]], np.float32)).tolist()
    [[0, 1, 1]]
    """
    return (mask >= level).view(np.uint8) if mask.dtype == np.bool_ else (mask >= level).astype(np.uint8)


def fill_binary_holes(binary: np.ndarray, value: int = 1) -> np.ndarray:
    """A uint8 0/``value`` mask with every hole (background not 4-connected to the border) set to ``value``.

    ``value`` is 1 or 255: the mask comes back in the levels it was given in, so an 8-bit 0/255 mask needs no
    conversion pass either way.

    >>> ring = np.ones((3, 3), np.uint8); ring[1, 1] = 0
    >>> int(fill_binary_holes(ring).sum()), int(fill_binary_holes(ring * 255, value=255).min())
    (9, 255)
    """
    import cv2

    if value not in (1, 255):
        raise ValueError(f"value must be 1 or 255, not {value}")
    padded = cv2.copyMakeBorder(binary, 1, 1, 1, 1, cv2.BORDER_CONSTANT, value=0)
    outside = 2 if value == 1 else 1  # a level the mask does not use marks the background reached from outside
    cv2.floodFill(padded, None, (0, 0), outside)
    inside = padded[1:-1, 1:-1]
    if value == 1 or inside.size <= 4:  # OpenCV would take an array of up to 4 values for a scalar
        return np.multiply(inside != outside, np.uint8(value), dtype=np.uint8)
    return cv2.compare(inside, outside, cv2.CMP_NE)  # type: ignore[call-overload]  # 0/255 in one pass; stubs want an array


def invert(mask: np.ndarray) -> np.ndarray:
    """Swap foreground and background: ``1 - mask``.

    >>> invert(np.array([[0, 0.25, 1]], np.float32))
    array([[1.  , 0.75, 0.  ]], dtype=float32)
    """
    return (1.0 - mask).astype(np.float32)


def resize_mask(mask: np.ndarray, size: tuple[int, int], *, hard: bool | None = None) -> np.ndarray:
    """Scale a mask to ``size`` = (height, width): nearest for hard masks (stays hard), bilinear for soft ones.

    >>> resize_mask(np.array([[0, 1]], np.float32), (2, 4))
    array([[0., 0., 1., 1.],
           [0., 0., 1., 1.]], dtype=float32)
    """
    import cv2

    height, width = size
    if mask.shape == (height, width):
        return mask
    if hard is None:
        hard = is_hard(mask)
    shrinking = height * width < mask.size
    interpolation = cv2.INTER_NEAREST if hard else (cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR)
    out = cv2.resize(mask, (width, height), interpolation=interpolation)
    return np.clip(out, 0.0, 1.0, out=out).astype(np.float32, copy=False)


def require_same_size(mask: np.ndarray, image_shape: tuple[int, ...], *, what: str = "mask") -> None:
    """Raise ``ShapeMismatch`` naming both sizes when ``mask`` does not cover the image pixel for pixel."""
    if mask.shape[:2] != tuple(image_shape[:2]):
        mh, mw = mask.shape[:2]
        ih, iw = image_shape[:2]
        raise ShapeMismatch(what, (mw, mh), (iw, ih))


def fraction(mask: np.ndarray) -> float:
    """The foreground fraction: the mean of the mask (the soft area for a soft mask).

    >>> fraction(np.array([[0, 1, 1, 0]], np.float32))
    0.5
    """
    return float(mask.mean()) if mask.size else 0.0
