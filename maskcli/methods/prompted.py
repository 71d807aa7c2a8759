"""What a method that takes prompts is: one mask per prompt (:mod:`maskcli.prompts`), each with a score.

A prompted method is a mask method like the others (it sits in the same registry, with the same options and
contract), plus :meth:`PromptedMethod.compute_prompts`: the image and its prompts in, one
:class:`~maskcli.methods.base.Segmentation` per prompt out, in the prompts' order, each with a ``score`` in its
facts (higher is surer: the model's predicted IoU, GrabCut's stability). Called without prompts (``compute``),
the whole image is the one box.

Shared here: cutting a box out with a margin and pasting a mask back (:func:`crop_box`, :func:`paste`), what
points do to a mask made from a box (:func:`keep_pointed`), and who owns a pixel that overlapping boxes' masks
both claim (:func:`settle_overlaps`).

>>> import numpy as np
>>> from maskcli.prompts import Prompt
>>> crop_box(Prompt(box=(10, 10, 20, 30)), 100, 50, margin=0.1)
(9, 8, 21, 32)
>>> mask = np.zeros((6, 9), np.float32); mask[1:3, 1:3] = 1; mask[3:5, 5:8] = 1
>>> int(keep_pointed(mask, ((6, 4, 1),)).sum()), int(keep_pointed(mask, ((6, 4, 0),)).sum())
(6, 4)
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

import cv2
import numpy as np

from maskcli.methods.base import Method, Segmentation
from maskcli.prompts import Prompt


class PromptedMethod(Method):
    """Base class of methods that take prompts (see the module)."""

    #: Whether prompts without a box are understood (points alone).
    takes_points_alone: ClassVar[bool] = False

    def compute_prompts(self, image: np.ndarray, prompts: Sequence[Prompt]) -> list[Segmentation]:
        """One mask per prompt, each with its ``score`` in its facts; a method that gives several masks for a
        prompt says in each one's ``prompt`` fact which prompt (from 1) it answers."""
        raise NotImplementedError

    def compute(self, image: np.ndarray) -> Segmentation:
        height, width = image.shape[:2]
        (segmentation,) = self.compute_prompts(image, [Prompt(box=(0, 0, width, height))])
        segmentation.facts["prompts"] = "none: the whole image as the box"
        return segmentation


def crop_box(prompt: Prompt, width: int, height: int, margin: float) -> tuple[int, int, int, int]:
    """The box widened by ``margin`` × its size on each side, in whole pixels inside the image:
    ``(x0, y0, x1, y1)``."""
    assert prompt.box is not None
    x0, y0, x1, y1 = prompt.box
    dx, dy = (x1 - x0) * margin, (y1 - y0) * margin
    return (max(0, int(np.floor(x0 - dx))), max(0, int(np.floor(y0 - dy))),
            min(width, int(np.ceil(x1 + dx))), min(height, int(np.ceil(y1 + dy))))


def paste(part: np.ndarray, window: tuple[int, int, int, int], height: int, width: int) -> np.ndarray:
    """A mask of the whole image, zero but for ``part`` placed at ``window`` (``x0, y0, x1, y1``)."""
    mask = np.zeros((height, width), np.float32)
    x0, y0, x1, y1 = window
    mask[y0:y1, x0:x1] = part
    return mask


def keep_pointed(mask: np.ndarray, points: Sequence[tuple[float, float, int]], level: float = 0.5) -> np.ndarray:
    """What points say about a mask made from a box: the regions (8-connected) under a positive point are kept
    and the others dropped (when there is one), a region under a negative point is dropped."""
    if not points:
        return mask
    count, regions = cv2.connectedComponents((mask >= level).astype(np.uint8), connectivity=8)
    if count <= 1:
        return mask
    height, width = mask.shape

    def region_at(x: float, y: float) -> int:
        return int(regions[min(int(y), height - 1), min(int(x), width - 1)])

    positive = {region_at(x, y) for x, y, sign in points if sign} - {0}
    negative = {region_at(x, y) for x, y, sign in points if not sign} - {0}
    keep = (set(range(1, count)) if not positive else positive) - negative
    if keep == set(range(1, count)):
        return mask
    return np.where(np.isin(regions, sorted(keep)), mask, 0).astype(np.float32)


def settle_overlaps(masks: list[np.ndarray], rects: Sequence[tuple[int, int, int, int]], rule: str = "smaller",
                    scores: Sequence[float] | None = None, level: float = 0.5) -> list[np.ndarray]:
    """Each pixel that several objects' masks claim (at or above ``level``) kept by one object only: the one with
    the smaller box (``rule="smaller"``: where boxes overlap, the smaller object is usually the one in front, the
    larger one's box holding it), or the higher score (``"score"``); ``"none"`` leaves the masks as they are.
    ``rects`` are the boxes as ``(x, y, w, h)``. The masks are changed in place and returned.

    >>> a = np.ones((4, 6), np.float32); b = np.zeros((4, 6), np.float32); b[1:3, 3:6] = 1
    >>> a, b = settle_overlaps([a, b], [(0, 0, 6, 4), (3, 1, 3, 2)])
    >>> int(a.sum()), int(b.sum())
    (18, 6)
    """
    if rule == "none" or len(masks) < 2:
        return masks
    if rule == "score":
        assert scores is not None
        rank = [-float(score) for score in scores]
    else:
        rank = [float(w * h) for _, _, w, h in rects]
    for i in range(len(masks)):
        for j in range(i + 1, len(masks)):
            (xi, yi, wi, hi), (xj, yj, wj, hj) = rects[i], rects[j]
            x0, y0, x1, y1 = max(xi, xj), max(yi, yj), min(xi + wi, xj + wj), min(yi + hi, yj + hj)
            if x1 <= x0 or y1 <= y0:
                continue
            loser = masks[j] if rank[i] <= rank[j] else masks[i]
            winner = masks[i] if loser is masks[j] else masks[j]
            window = loser[y0:y1, x0:x1]
            window[(window >= level) & (winner[y0:y1, x0:x1] >= level)] = 0
    return masks


__all__ = ["PromptedMethod", "crop_box", "keep_pointed", "paste", "settle_overlaps"]
