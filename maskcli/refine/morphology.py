"""Morphology on masks: open, close, erode, dilate with a disc; grey-level on soft masks, so they stay soft.

Any radius is taken, with time and memory bounded by the image, not by the radius: a disc wider than the image's
diagonal reaches every pixel from any other, so a larger radius gives the same result as the diagonal's (it is
clamped to it); a large disc on a hard mask is the Euclidean distance to the other side; on a soft mask it is a
series of smaller discs (a disc of radius a + b is a disc of a grown by one of b), so OpenCV never holds the
offsets of a huge kernel (a radius of 5000 once took 1.8 GB).
"""

from __future__ import annotations

import math

import cv2
import numpy as np

from maskcli.masks import is_hard

__all__ = ["disc", "morphology"]

#: Largest disc handed to OpenCV at once: larger ones are distances (hard masks) or a series of these (soft ones).
STEP_RADIUS = 32


def disc(radius: int) -> np.ndarray:
    """An elliptical structuring element of ``radius`` pixels (``2r+1`` wide)."""
    return cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1, 2 * radius + 1))


def morphology(mask: np.ndarray, operation: str, radius: int) -> np.ndarray:
    """``open``, ``close``, ``erode`` or ``dilate`` with a disc of ``radius`` px (grey-level on soft masks).

    Pixels beyond the border count as background for erosion-like steps (an object cut by the frame keeps its edge
    at the frame) and are ignored by dilation-like steps.

    >>> mask = np.zeros((5, 5), np.float32); mask[2, 2] = 1
    >>> morphology(mask, "dilate", 1).astype(int).tolist()[1:4]
    [[0, 0, 1, 0, 0], [0, 1, 1, 1, 0], [0, 0, 1, 0, 0]]
    >>> morphology(mask, "open", 1).sum()
    np.float32(0.0)
    >>> float(morphology(mask, "dilate", 10**9).min())  # the whole image within reach, in no time
    1.0
    """
    if not radius:
        return mask
    radius = min(int(radius), math.ceil(math.hypot(*mask.shape[:2])))
    if operation == "open":
        return _grow(_grow(mask, radius, shrink=True), radius, shrink=False)
    if operation == "close":
        return _grow(_grow(mask, radius, shrink=False), radius, shrink=True)
    if operation not in ("erode", "dilate"):
        raise ValueError(f"unknown morphology {operation!r}")
    return _grow(mask, radius, shrink=operation == "erode")


def _grow(mask: np.ndarray, radius: int, *, shrink: bool) -> np.ndarray:
    """Dilate (or erode, ``shrink``) by a disc of ``radius``."""
    if radius <= STEP_RADIUS:
        op = cv2.MORPH_ERODE if shrink else cv2.MORPH_DILATE
        out = cv2.morphologyEx(mask, op, disc(radius), borderType=cv2.BORDER_REPLICATE)
        return out.astype(np.float32, copy=False)
    if is_hard(mask):
        # Within the radius of the other side: the Euclidean disc, in time and memory linear in the pixels.
        side = (mask > 0) if shrink else (mask == 0)
        if side.all() or not side.any():
            return mask.copy()
        distance = cv2.distanceTransform(side.astype(np.uint8), cv2.DIST_L2, cv2.DIST_MASK_PRECISE)
        if shrink:
            return ((mask > 0) & (distance > radius)).astype(np.float32)
        return (distance <= radius).astype(np.float32)
    out = mask
    for _ in range(radius // STEP_RADIUS):
        out = _grow(out, STEP_RADIUS, shrink=shrink)
    return _grow(out, radius % STEP_RADIUS, shrink=shrink) if radius % STEP_RADIUS else out
