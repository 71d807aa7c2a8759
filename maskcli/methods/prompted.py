"""What a method that takes prompts is: one mask per prompt (:mod:`maskcli.prompts`), each with a score.

A prompted method is a mask method like the others (it sits in the same registry, with the same options and
contract), plus :meth:`PromptedMethod.compute_prompts`: the image and its prompts in, one
:class:`~maskcli.methods.base.Segmentation` per prompt out, in the prompts' order, each with a ``score`` in its
facts (higher is surer: the model's predicted IoU, GrabCut's stability). Called without prompts (``compute``),
the whole image is the one box.

Shared here: cutting a box out with a margin and pasting a mask back (:func:`crop_box`, :func:`paste`), and what
points do to a mask made from a box (:func:`keep_pointed`).

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


__all__ = ["PromptedMethod", "crop_box", "keep_pointed", "paste"]
