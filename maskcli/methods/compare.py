"""From a level to a mask: the one comparison every threshold shares, and which side is the foreground.

A global threshold compares the plane with one level (:func:`split_above`, :func:`above_level`), a local one with a
threshold image (:func:`compare_above`); either way the pixels above are uint8 0/255, and the polarity, chosen in
one place (:func:`choose_polarity`, :func:`polarity_of`), says whether they or their complement are the mask
(:func:`binary_of`, :func:`mask_of`).

>>> plane = np.zeros((5, 5), np.float32); plane[1:4, 1:4] = 1
>>> above = above_level(plane, 0.5)
>>> polarity_of(above, "auto"), int(mask_of(above, "dark").sum())
('bright', 16)
"""

from __future__ import annotations

import cv2
import numpy as np

from maskcli.methods.histogram import Histogram

__all__ = ["AUTO_BORDER_WEIGHT", "POLARITIES", "above_level", "binary_of", "choose_polarity", "compare",
           "compare_above", "mask_of", "polarity_of", "split_above"]

POLARITIES = ("bright", "dark", "auto")

# Auto polarity rule (see ``choose_polarity``): each side of the threshold scores its share of the image plus ¾ of its
# share of the image border; the side with the smaller score is the foreground (an object is the smaller part and
# stands inside its background, which runs off the frame). Mean IoU on ../shared/data, reproduced by
# ``python -m benchmarks.quality_classical --polarity``:
#
#   rule (weight of the border share)    Otsu: nuclei  horses     Li: nuclei  horses
#   bright (fixed)                             0.443    0.150         0.573    0.162
#   dark (fixed)                               0.078    0.336         0.039    0.338
#   minority side only (0)                     0.443    0.307         0.573    0.334
#   area + ½ border                            0.443    0.332         0.573    0.341
#   area + ¾ border (this rule)                0.443    0.337         0.573    0.351
#   area + 1 × border                          0.443    0.340         0.559    0.351
#   border side only (∞)                       0.428    0.349         0.559    0.365
#
# ¾ is the only weight tried that is at least as good as the better fixed polarity on both sets for both methods.
AUTO_BORDER_WEIGHT = 0.75

def split_above(plane: np.ndarray, hist: Histogram, level: float) -> np.ndarray:
    """uint8 0/255: the pixels whose bin centre lies above ``level`` (the histogram split at ``level``).

    >>> from maskcli.methods.histogram import histogram
    >>> plane = np.array([[0.0, 0.3, 0.45, 1.0]], np.float32)
    >>> split_above(plane, histogram(plane, bins=2), 0.3).tolist()  # 0.45 shares the lower bin with 0.3
    [[0, 0, 0, 255]]
    >>> split_above(np.array([[10, 200]], np.uint8), histogram(np.array([[10, 200]], np.uint8)), 0.5).tolist()
    [[0, 255]]
    """
    split = int(np.searchsorted(hist.centers, level, side="right")) - 1  # the last bin of the lower class
    if hist.index is None:  # a constant plane: one bin
        return above_level(plane, level)
    if plane.dtype in (np.uint8, np.uint16):
        # The highest level whose bin is in the lower class; levels increase with bins, so one comparison.
        lower = np.flatnonzero(hist.index <= split) if split >= 0 else np.empty(0, np.intp)
        cut = int(lower[-1]) if lower.size else -1
        return _integer_above(plane, cut)
    if hist.index.dtype == np.uint8:
        _, above = cv2.threshold(hist.index, split, 255, cv2.THRESH_BINARY)
        return above
    return np.where(hist.index > split, np.uint8(255), np.uint8(0))


def _integer_above(plane: np.ndarray, cut: int) -> np.ndarray:
    """uint8 0/255 where the integer plane is above level ``cut``."""
    if cut < 0:
        return np.full(plane.shape, 255, np.uint8)
    if plane.dtype == np.uint8:
        _, above = cv2.threshold(plane, cut, 255, cv2.THRESH_BINARY)
        return above
    return cv2.compare(plane, np.full(plane.shape, cut, plane.dtype), cv2.CMP_GT)


def above_level(plane: np.ndarray, level: float) -> np.ndarray:
    """uint8 0/255 where ``plane > level`` (``level`` in image units; an integer plane compares its levels).

    >>> above_level(np.array([[127, 128, 129]], np.uint8), 128 / 255).tolist()
    [[0, 0, 255]]
    """
    if level != level:  # NaN: nothing passes
        return np.zeros(plane.shape, np.uint8)
    if plane.dtype in (np.uint8, np.uint16):
        top = np.iinfo(plane.dtype).max
        # A level given as k/255 must compare as level k: a hair of tolerance for its rounding.
        return _integer_above(plane, int(np.clip(np.floor(level * top + 1e-6), -1, top)))
    return cv2.compare(plane, np.full(plane.shape, level, np.float32), cv2.CMP_GT) if plane.size == 1 else \
        cv2.threshold(plane, float(level), 255, cv2.THRESH_BINARY)[1].astype(np.uint8)


def choose_polarity(plane: np.ndarray, threshold: float | np.ndarray, polarity: str) -> str:
    """Which side of ``threshold`` is foreground: ``bright`` (above) or ``dark`` (at or below).

    ``threshold`` is a level, or a threshold image of the plane's shape (local thresholds). ``auto`` scores each
    side by its share of the image plus ¾ of its share of the image border and picks the side with the smaller
    score (ties go to bright): the object is the smaller part, and the background runs off the frame. See
    ``AUTO_BORDER_WEIGHT`` for the measurement behind the rule.

    >>> plane = np.zeros((5, 5), np.float32); plane[1:4, 1:4] = 1
    >>> choose_polarity(plane, 0.5, "auto"), choose_polarity(1 - plane, 0.5, "auto")
    ('bright', 'dark')
    """
    if polarity != "auto":
        return polarity
    return polarity_of(compare(plane, threshold, "bright"), polarity)


def polarity_of(above: np.ndarray, polarity: str) -> str:
    """:func:`choose_polarity` from the pixels above the threshold (any non-zero value counts as above)."""
    if polarity != "auto":
        return polarity
    if above.shape[0] < 3 or above.shape[1] < 3:
        return "bright"
    bright_share = cv2.countNonZero(above) / above.size
    border = np.concatenate([above[0], above[-1], above[1:-1, 0], above[1:-1, -1]])
    border_share = float(np.count_nonzero(border)) / border.size
    # score(bright) = a + w·b, score(dark) = (1 − a) + w·(1 − b); bright wins when a + w·b ≤ (1 + w) / 2.
    weight = AUTO_BORDER_WEIGHT
    return "bright" if bright_share + weight * border_share <= (1 + weight) / 2 else "dark"


def binary_of(above: np.ndarray, polarity: str) -> np.ndarray:
    """The uint8 0/255 foreground from uint8 0/255 ``above``: as it is for bright, its complement for dark."""
    if polarity == "bright":
        return above
    return cv2.bitwise_not(above) if above.size > 1 else 255 - above


def mask_of(above: np.ndarray, polarity: str) -> np.ndarray:
    """The float32 0/1 mask from uint8 0/255 ``above``: as it is for bright, its complement for dark.

    >>> mask_of(np.array([[0, 255]], np.uint8), "dark")
    array([[1., 0.]], dtype=float32)
    """
    return np.multiply(binary_of(above, polarity), np.float32(1 / 255), dtype=np.float32)


def compare(plane: np.ndarray, threshold: float | np.ndarray, polarity: str) -> np.ndarray:
    """The one comparison every threshold shares: bright ⇒ ``plane > threshold``; dark is its exact complement.

    ``threshold`` is a level or a threshold image (local methods).

    >>> compare(np.array([[0.2, 0.5, 0.7]], np.float32), 0.5, "bright")
    array([[0., 0., 1.]], dtype=float32)
    >>> compare(np.array([[0.2, 0.5, 0.7]], np.float32), 0.5, "dark")
    array([[1., 1., 0.]], dtype=float32)
    >>> compare(np.array([[0.2, 0.5]], np.float32), np.array([[0.1, 0.6]], np.float32), "bright")
    array([[1., 0.]], dtype=float32)
    """
    if isinstance(threshold, np.ndarray) and threshold.ndim:
        return mask_of(compare_above(plane, threshold), polarity)
    kind = cv2.THRESH_BINARY if polarity == "bright" else cv2.THRESH_BINARY_INV
    if threshold != threshold:  # NaN: nothing passes
        threshold = np.inf
    _, mask = cv2.threshold(plane, float(threshold), 1.0, kind)
    return mask


def compare_above(plane: np.ndarray, levels: np.ndarray) -> np.ndarray:
    """uint8 0/255 where ``plane > levels`` (a threshold image of the plane's shape).

    >>> compare_above(np.array([[0.2, 0.5]], np.float32), np.array([[0.1, 0.6]], np.float32)).tolist()
    [[255, 0]]
    """
    if plane.size == 1:  # OpenCV would read a 1×1 array as a scalar
        return np.where(plane > levels, np.uint8(255), np.uint8(0))
    return cv2.compare(plane, levels.astype(np.float32, copy=False), cv2.CMP_GT)
