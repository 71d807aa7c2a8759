"""Region steps, on the mask binarised at a level but editing the mask itself (soft values stay soft): holes
filled, small regions removed, the largest kept."""

from __future__ import annotations

import cv2
import numpy as np

from maskcli.masks import binary as binarised
from maskcli.masks import fill_binary_holes

__all__ = ["fill_holes", "keep_largest", "remove_small"]


def fill_holes(mask: np.ndarray, max_hole: int | None = None, level: float = 0.5) -> np.ndarray:
    """Set to 1 the background regions (4-connected) that do not touch the border, up to ``max_hole`` px each.

    >>> mask = np.ones((5, 6), np.float32); mask[1:3, 1:3] = 0; mask[3, 4] = 0
    >>> int(fill_holes(mask).sum()), int(fill_holes(mask, max_hole=1).sum())
    (30, 26)
    """
    binary = binarised(mask, level)
    if binary.size == 0 or binary.all() or not binary.any():
        return mask
    if max_hole is None:  # fast path: flood the background from the border; what stays unreached is a hole
        holes = fill_binary_holes(binary) > binary
        if not holes.any():
            return mask
        out = mask.copy()
        out[holes] = 1.0
        return out
    count, labels, stats, _ = cv2.connectedComponentsWithStats(1 - binary, connectivity=4)
    height, width = binary.shape
    x, y, w, h, area = (stats[:, i] for i in range(5))
    hole = (x > 0) & (y > 0) & (x + w < width) & (y + h < height)
    if max_hole is not None:
        hole &= area <= max_hole
    hole[0] = False  # label 0 is the foreground itself
    if not hole[1:].any():
        return mask
    out = mask.copy()
    out[hole[labels]] = 1.0
    return out


def _components(mask: np.ndarray, level: float) -> tuple[np.ndarray, np.ndarray]:
    _, labels, stats, _ = cv2.connectedComponentsWithStats(binarised(mask, level), connectivity=8)
    return labels, stats[:, cv2.CC_STAT_AREA]


def remove_small(mask: np.ndarray, min_size: int, level: float = 0.5) -> np.ndarray:
    """Clear foreground regions (8-connected) smaller than ``min_size`` px.

    >>> mask = np.zeros((4, 6), np.float32); mask[:2, :2] = 1; mask[3, 5] = 1
    >>> remove_small(mask, 2).sum()
    np.float32(4.0)
    """
    if not min_size or not mask.any():
        return mask
    labels, area = _components(mask, level)
    small = area < min_size
    small[0] = False
    if not small.any():
        return mask
    out = mask.copy()
    out[small[labels]] = 0.0
    return out


def keep_largest(mask: np.ndarray, k: int = 1, level: float = 0.5) -> np.ndarray:
    """Keep the ``k`` largest foreground regions (8-connected); ties keep the region found first.

    >>> mask = np.zeros((4, 7), np.float32); mask[:2, :2] = 1; mask[0, 4:7] = 1; mask[3, 0] = 1
    >>> keep_largest(mask, 1).sum(), keep_largest(mask, 2).sum()
    (np.float32(4.0), np.float32(7.0))
    """
    if not k or not mask.any():
        return mask
    labels, area = _components(mask, level)
    if len(area) - 1 <= k:
        return mask
    order = np.argsort(-area[1:], kind="stable") + 1
    keep = np.zeros(len(area), bool)
    keep[order[:k]] = True
    out = mask.copy()
    out[~keep[labels]] = 0.0
    return out
