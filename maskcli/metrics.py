"""How close a mask is to the truth: IoU, Dice, precision, recall, boundary F-score, MAE, foreground fraction.

Every function takes masks in the one mask convention (float32 H×W in [0, 1]); a prediction may be soft. The
region scores (IoU, Dice, precision, recall, boundary F) binarise both masks at ``level`` (a pixel is foreground
when its value is ``>= level``, as :func:`maskcli.masks.to_hard` does); :func:`mae` compares the soft values.

Conventions for empty masks
---------------------------
A score must not reward an empty mask on an image that has foreground, nor punish a correct empty answer:

* **both empty** (no foreground in the prediction nor in the truth): IoU, Dice, precision, recall and boundary F
  are all 1: the prediction is exactly right;
* **one empty, the other not**: all of them are 0. Precision of an empty prediction is 0 (not an undefined 0/0
  read as perfect), and so is the recall against an empty truth; this keeps Dice equal to the harmonic mean of
  precision and recall in every case;
* a mask whose foreground has no boundary inside the image (a full mask: the image border is not a boundary)
  counts as having an empty boundary for :func:`boundary_f`.

>>> pred = np.array([[1, 1, 0, 0]], np.float32)
>>> truth = np.array([[1, 0, 0, 0]], np.float32)
>>> iou(pred, truth), dice(pred, truth), precision(pred, truth), recall(pred, truth)
(0.5, 0.6666666666666666, 0.5, 1.0)
"""

from __future__ import annotations

from typing import Any

import cv2
import numpy as np

from maskcli.errors import ShapeMismatch

__all__ = [
    "iou",
    "dice",
    "precision",
    "recall",
    "boundary_f",
    "mae",
    "foreground_fraction",
    "both_class_iou",
    "score",
    "SCORE_KEYS",
]

#: The keys of :func:`score`'s dict, in the order tables show them.
SCORE_KEYS = (
    "iou",
    "dice",
    "precision",
    "recall",
    "boundary_f",
    "mae",
    "iou_background",
    "iou_both",
    "pred_fraction",
    "truth_fraction",
)


def _check_pair(pred: np.ndarray, truth: np.ndarray) -> None:
    if pred.shape[:2] != truth.shape[:2]:
        ph, pw = pred.shape[:2]
        th, tw = truth.shape[:2]
        raise ShapeMismatch("prediction", (pw, ph), (tw, th), against="the truth", hint="")


def _binary(mask: np.ndarray, level: float) -> np.ndarray:
    return np.asarray(mask) >= level


def _counts(pred: np.ndarray, truth: np.ndarray, level: float) -> tuple[int, int, int, int]:
    """True positives, false positives, false negatives, true negatives."""
    _check_pair(pred, truth)
    p = _binary(pred, level)
    t = _binary(truth, level)
    tp = int(np.count_nonzero(p & t))
    predicted = int(np.count_nonzero(p))
    actual = int(np.count_nonzero(t))
    fp = predicted - tp
    fn = actual - tp
    tn = p.size - tp - fp - fn
    return tp, fp, fn, tn


def _ratio(numerator: int, denominator: int) -> float:
    # The only 0/0 left after the conventions above is "both empty": a perfect answer.
    return 1.0 if denominator == 0 else numerator / denominator


def _iou_counts(tp: int, fp: int, fn: int) -> float:
    return _ratio(tp, tp + fp + fn)


def _dice_counts(tp: int, fp: int, fn: int) -> float:
    return _ratio(2 * tp, 2 * tp + fp + fn)


def _precision_counts(tp: int, fp: int, fn: int) -> float:
    if tp + fp == 0:  # nothing predicted: right only if there was nothing to find
        return 1.0 if fn == 0 else 0.0
    return tp / (tp + fp)


def _recall_counts(tp: int, fp: int, fn: int) -> float:
    if tp + fn == 0:  # nothing to find: right only if nothing was claimed
        return 1.0 if fp == 0 else 0.0
    return tp / (tp + fn)


def iou(pred: np.ndarray, truth: np.ndarray, *, level: float = 0.5) -> float:
    """Intersection over union (Jaccard index) of the foregrounds.

    Parameters
    ----------
    pred, truth : ndarray
        Masks of the same height and width, binarised at ``level``.
    level : float
        A pixel is foreground when its value is ``>= level``.

    Returns
    -------
    float
        ``|P ∩ T| / |P ∪ T|`` in [0, 1]; 1 when both are empty.

    Raises
    ------
    ShapeMismatch
        When the masks differ in size.

    Examples
    --------
    >>> a = np.array([[1, 1, 0, 0]], np.float32)
    >>> iou(a, a), iou(a, 1 - a), iou(0 * a, 0 * a)
    (1.0, 0.0, 1.0)
    """
    tp, fp, fn, _ = _counts(pred, truth, level)
    return _iou_counts(tp, fp, fn)


def dice(pred: np.ndarray, truth: np.ndarray, *, level: float = 0.5) -> float:
    """Dice coefficient (F1 of the pixels): ``2 |P ∩ T| / (|P| + |T|)``; 1 when both are empty.

    Examples
    --------
    >>> pred = np.array([[1, 1, 0, 0]], np.float32)
    >>> dice(pred, np.array([[0, 1, 1, 0]], np.float32))
    0.5
    """
    tp, fp, fn, _ = _counts(pred, truth, level)
    return _dice_counts(tp, fp, fn)


def precision(pred: np.ndarray, truth: np.ndarray, *, level: float = 0.5) -> float:
    """Share of the predicted foreground that is truly foreground.

    An empty prediction scores 1 on an empty truth and 0 otherwise (see the module's conventions).

    Examples
    --------
    >>> precision(np.array([[1, 1, 1, 1]], np.float32), np.array([[1, 0, 0, 0]], np.float32))
    0.25
    >>> precision(np.zeros((1, 4), np.float32), np.array([[1, 0, 0, 0]], np.float32))
    0.0
    """
    tp, fp, fn, _ = _counts(pred, truth, level)
    return _precision_counts(tp, fp, fn)


def recall(pred: np.ndarray, truth: np.ndarray, *, level: float = 0.5) -> float:
    """Share of the true foreground that the prediction covers.

    Against an empty truth it is 1 for an empty prediction and 0 otherwise.

    Examples
    --------
    >>> recall(np.array([[1, 1, 1, 1]], np.float32), np.array([[1, 0, 0, 0]], np.float32))
    1.0
    """
    tp, fp, fn, _ = _counts(pred, truth, level)
    return _recall_counts(tp, fp, fn)


def both_class_iou(pred: np.ndarray, truth: np.ndarray, *, level: float = 0.5) -> float:
    """Mean of the foreground IoU and the background IoU (the IoU of the inverted masks).

    For sets where the foreground covers most of the image (cells between membranes), an all-foreground mask
    already has a high foreground IoU; the background term gives it no credit.

    Examples
    --------
    >>> truth = np.array([[1, 1, 1, 0]], np.float32)
    >>> iou(np.ones((1, 4), np.float32), truth), both_class_iou(np.ones((1, 4), np.float32), truth)
    (0.75, 0.375)
    """
    tp, fp, fn, tn = _counts(pred, truth, level)
    # The background's confusion counts are the foreground's mirrored: tn is its intersection.
    return (_iou_counts(tp, fp, fn) + _iou_counts(tn, fn, fp)) / 2


_CROSS = cv2.getStructuringElement(cv2.MORPH_CROSS, (3, 3))


def _boundary(mask: np.ndarray) -> np.ndarray:
    """Inner boundary: foreground pixels with a 4-neighbour in the background (the image border is not one)."""
    m = mask.astype(np.uint8)
    # cv2.erode pads with +inf by default, so pixels on the image border keep their value: a full mask has no
    # boundary, and a region touching the border is not outlined along it.
    eroded = cv2.erode(m, _CROSS)
    return (m - eroded).astype(bool)


def _within(edges: np.ndarray, reference: np.ndarray, tolerance: float) -> int:
    """How many ``edges`` pixels lie within ``tolerance`` pixels (Euclidean) of a ``reference`` pixel."""
    if tolerance <= 0:
        return int(np.count_nonzero(edges & reference))
    # distanceTransform gives each non-zero pixel its distance to the nearest zero: zeros on the reference.
    distance = cv2.distanceTransform((~reference).astype(np.uint8), cv2.DIST_L2, cv2.DIST_MASK_PRECISE)
    return int(np.count_nonzero(distance[edges] <= tolerance))


def boundary_f(pred: np.ndarray, truth: np.ndarray, tolerance_px: float = 2, *, level: float = 0.5) -> float:
    """Boundary F-score: how well the outlines agree, allowing ``tolerance_px`` pixels of displacement.

    Outlines are the inner boundaries of the binarised masks (morphological gradient with a 3×3 cross). Boundary
    precision is the share of predicted boundary pixels within ``tolerance_px`` (Euclidean) of a true boundary
    pixel; boundary recall the share of true boundary pixels within ``tolerance_px`` of a predicted one; the score
    is their harmonic mean. Both outlines empty: 1; one empty: 0.

    Parameters
    ----------
    pred, truth : ndarray
        Masks of the same height and width.
    tolerance_px : float
        Largest distance in pixels at which two boundary pixels still match; 0 asks for the same pixels.
    level : float
        Binarisation level.

    Examples
    --------
    >>> truth = np.zeros((8, 8), np.float32); truth[2:6, 2:6] = 1
    >>> shifted = np.roll(truth, 1, axis=1)
    >>> boundary_f(truth, truth), boundary_f(shifted, truth, 0), boundary_f(shifted, truth, 1)
    (1.0, 0.5, 1.0)
    """
    _check_pair(pred, truth)
    pred_edges = _boundary(_binary(pred, level))
    truth_edges = _boundary(_binary(truth, level))
    n_pred = int(np.count_nonzero(pred_edges))
    n_truth = int(np.count_nonzero(truth_edges))
    if n_pred == 0 or n_truth == 0:
        return 1.0 if n_pred == n_truth else 0.0
    p = _within(pred_edges, truth_edges, tolerance_px) / n_pred
    r = _within(truth_edges, pred_edges, tolerance_px) / n_truth
    return 0.0 if p + r == 0 else 2 * p * r / (p + r)


def mae(pred: np.ndarray, truth: np.ndarray) -> float:
    """Mean absolute error of the soft values (0 is perfect); the usual score of soft foreground maps.

    Examples
    --------
    >>> mae(np.array([[0.5, 1.0]], np.float32), np.array([[1, 1]], np.float32))
    0.25
    """
    _check_pair(pred, truth)
    if pred.size == 0:
        return 0.0
    difference = np.abs(np.asarray(pred, np.float32) - np.asarray(truth, np.float32))
    return float(difference.mean(dtype=np.float64))


def foreground_fraction(mask: np.ndarray, *, level: float | None = 0.5) -> float:
    """Share of the pixels that are foreground (``>= level``); with ``level=None``, the soft area (the mean).

    Examples
    --------
    >>> m = np.array([[0.2, 0.6, 1.0, 0.0]], np.float32)
    >>> foreground_fraction(m), round(foreground_fraction(m, level=None), 3)
    (0.5, 0.45)
    """
    if mask.size == 0:
        return 0.0
    if level is None:
        return float(np.asarray(mask).mean(dtype=np.float64))
    return int(np.count_nonzero(_binary(mask, level))) / mask.size


def score(pred: np.ndarray, truth: np.ndarray, *, level: float = 0.5, tolerance: float = 2) -> dict[str, Any]:
    """Every score of one prediction against its truth, binarising each mask once.

    Returns
    -------
    dict
        ``iou``, ``dice``, ``precision``, ``recall``, ``boundary_f`` (at ``tolerance`` pixels), ``mae`` (soft
        values), ``iou_background`` (IoU of the inverted masks), ``iou_both`` (mean of the two IoUs),
        ``pred_fraction`` and ``truth_fraction`` (foreground shares at ``level``). Keys in :data:`SCORE_KEYS`.

    Examples
    --------
    >>> truth = np.zeros((4, 4), np.float32); truth[:2] = 1
    >>> s = score(truth, truth)
    >>> s["iou"], s["boundary_f"], s["mae"], s["truth_fraction"]
    (1.0, 1.0, 0.0, 0.5)
    """
    tp, fp, fn, tn = _counts(pred, truth, level)
    total = max(tp + fp + fn + tn, 1)
    foreground = _iou_counts(tp, fp, fn)
    background = _iou_counts(tn, fn, fp)
    return {
        "iou": foreground,
        "dice": _dice_counts(tp, fp, fn),
        "precision": _precision_counts(tp, fp, fn),
        "recall": _recall_counts(tp, fp, fn),
        "boundary_f": boundary_f(pred, truth, tolerance, level=level),
        "mae": mae(pred, truth),
        "iou_background": background,
        "iou_both": (foreground + background) / 2,
        "pred_fraction": (tp + fp) / total,
        "truth_fraction": (tp + fn) / total,
    }
