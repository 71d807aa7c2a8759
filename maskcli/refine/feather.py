"""Feathering: soft edges of a given width."""

from __future__ import annotations

import cv2
import numpy as np

from maskcli.masks import is_hard

__all__ = ["feather"]


def feather(mask: np.ndarray, px: float) -> np.ndarray:
    """Soft edges ``px`` pixels wide, centred on the mask's edge.

    A hard mask gets an exact linear ramp from the Euclidean distance to its edge: a pixel at distance d inside
    (centre to edge) has value 0.5 + d / px, one outside 0.5 − d / px, clipped to [0, 1]. A soft mask is smoothed
    by a Gaussian whose 10–90 % rise is ``px`` wide (σ = px / 2.56).

    >>> mask = np.zeros((1, 8), np.float32); mask[0, 4:] = 1
    >>> feather(mask, 4).tolist()
    [[0.0, 0.0, 0.125, 0.375, 0.625, 0.875, 1.0, 1.0]]
    """
    if not px or px <= 0 or mask.size == 0:
        return mask
    if not is_hard(mask):
        if px / 2.56 > 6:  # a wide feather: time and memory bounded by the image, whatever px is
            from maskcli.composite.blend import gaussian_blur

            return np.clip(gaussian_blur(mask, px / 2.56), 0, 1).astype(np.float32)
        out = cv2.GaussianBlur(mask, (0, 0), px / 2.56, borderType=cv2.BORDER_REPLICATE)
        return np.clip(out, 0, 1).astype(np.float32)
    binary = mask.astype(np.uint8)
    if binary.all() or not binary.any():
        return mask
    inside = cv2.distanceTransform(binary, cv2.DIST_L2, cv2.DIST_MASK_PRECISE)
    outside = cv2.distanceTransform(1 - binary, cv2.DIST_L2, cv2.DIST_MASK_PRECISE)
    # distanceTransform measures to the nearest pixel of the other side; the edge lies half a pixel before it.
    signed = np.where(binary > 0, inside - 0.5, 0.5 - outside)
    return np.clip(0.5 + signed / np.float32(px), 0, 1).astype(np.float32)
