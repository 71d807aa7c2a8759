"""A prompt (a box, points) in the form every Segment Anything decoder export takes: one rule for
:mod:`maskcli.cnn.sam` and :mod:`maskcli.cnn.efficient_sam`."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def point_prompts(box: Sequence[float] | None, points: Sequence[tuple[float, float, int]]
                  ) -> tuple[np.ndarray, np.ndarray]:
    """A prompt as SAM's decoder takes it, in image pixels: the points (label 1 on the object, 0 off it), then
    the box's corners (labels 2 and 3); without a box, a padding point (label -1) as the official export needs.

    >>> coords, labels = point_prompts(None, [(5, 6, 1)])
    >>> coords.tolist(), labels.tolist()
    ([[5.0, 6.0], [0.0, 0.0]], [1.0, -1.0])
    """
    coords = [(x, y) for x, y, _ in points]
    labels = [float(sign) for *_, sign in points]
    if box is not None:
        coords += [(box[0], box[1]), (box[2], box[3])]
        labels += [2.0, 3.0]
    else:
        coords.append((0.0, 0.0))
        labels.append(-1.0)
    return np.asarray(coords, np.float32), np.asarray(labels, np.float32)


__all__ = ["point_prompts"]
