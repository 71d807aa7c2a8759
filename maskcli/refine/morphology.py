"""Morphology on masks: open, close, erode, dilate with a disc; grey-level on soft masks, so they stay soft."""

from __future__ import annotations

import cv2
import numpy as np

__all__ = ["disc", "morphology"]


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
    """
    if not radius:
        return mask
    ops = {"open": cv2.MORPH_OPEN, "close": cv2.MORPH_CLOSE, "erode": cv2.MORPH_ERODE, "dilate": cv2.MORPH_DILATE}
    out = cv2.morphologyEx(mask, ops[operation], disc(int(radius)), borderType=cv2.BORDER_REPLICATE)
    return out.astype(np.float32, copy=False)
