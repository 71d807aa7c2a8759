"""Metric values worked out by hand on tiny masks, and the conventions for empty masks."""

from __future__ import annotations

import numpy as np
import pytest

from maskcli.errors import ShapeMismatch
from maskcli.metrics import (
    SCORE_KEYS,
    both_class_iou,
    boundary_f,
    dice,
    foreground_fraction,
    iou,
    mae,
    precision,
    recall,
    score,
)


def m(rows: list[list[float]]) -> np.ndarray:
    return np.array(rows, np.float32)


LEFT = m([[1, 1, 0, 0], [1, 1, 0, 0]])  # 4 pixels on the left half
RIGHT = m([[0, 0, 1, 1], [0, 0, 1, 1]])
THREE = m([[0, 1, 1, 0], [0, 1, 1, 0]])  # the middle: 2 of its 4 pixels overlap LEFT
EMPTY = np.zeros((2, 4), np.float32)


def test_identical_masks_score_perfectly():
    assert iou(LEFT, LEFT) == dice(LEFT, LEFT) == precision(LEFT, LEFT) == recall(LEFT, LEFT) == 1.0
    assert boundary_f(LEFT, LEFT, 0) == 1.0
    assert mae(LEFT, LEFT) == 0.0


def test_disjoint_masks_score_zero():
    assert iou(LEFT, RIGHT) == dice(LEFT, RIGHT) == precision(LEFT, RIGHT) == recall(LEFT, RIGHT) == 0.0
    assert mae(LEFT, RIGHT) == 1.0


def test_half_overlap():
    # |P ∩ T| = 2, |P ∪ T| = 6, |P| = |T| = 4
    assert iou(THREE, LEFT) == pytest.approx(2 / 6)
    assert dice(THREE, LEFT) == pytest.approx(2 * 2 / 8)
    assert precision(THREE, LEFT) == recall(THREE, LEFT) == 0.5
    assert mae(THREE, LEFT) == pytest.approx(4 / 8)


def test_precision_and_recall_are_not_symmetric():
    big = np.ones((2, 4), np.float32)
    assert precision(big, LEFT) == 0.5 and recall(big, LEFT) == 1.0
    assert precision(LEFT, big) == 1.0 and recall(LEFT, big) == 0.5


@pytest.mark.parametrize("function", [iou, dice, precision, recall, both_class_iou])
def test_empty_prediction_and_empty_truth(function):
    assert function(EMPTY, EMPTY) == 1.0  # nothing to find, nothing claimed: exactly right
    if function is both_class_iou:
        assert function(EMPTY, LEFT) == pytest.approx((0 + 4 / 8) / 2)
    else:
        assert function(EMPTY, LEFT) == 0.0  # missed everything
        assert function(LEFT, EMPTY) == 0.0  # claimed foreground where there is none


def test_boundary_f_of_empty_masks():
    assert boundary_f(EMPTY, EMPTY) == 1.0
    assert boundary_f(EMPTY, LEFT) == 0.0
    assert boundary_f(LEFT, EMPTY) == 0.0
    full = np.ones((2, 4), np.float32)
    assert boundary_f(full, full) == 1.0  # the image border is not a boundary: both outlines are empty


def test_dice_is_the_harmonic_mean_of_precision_and_recall():
    rng = np.random.default_rng(1)
    for _ in range(5):
        a = (rng.random((9, 9)) > 0.5).astype(np.float32)
        b = (rng.random((9, 9)) > 0.6).astype(np.float32)
        p, r = precision(a, b), recall(a, b)
        assert dice(a, b) == pytest.approx(2 * p * r / (p + r))


def square(top: int, left: int, size: int = 6, shape: tuple[int, int] = (16, 16)) -> np.ndarray:
    mask = np.zeros(shape, np.float32)
    mask[top:top + size, left:left + size] = 1
    return mask


def test_boundary_f_tolerance():
    truth = square(4, 4)  # outline: a 6×6 ring of 20 pixels, x and y from 4 to 9
    shifted = square(4, 6)  # the same, 2 pixels right: x from 6 to 11
    # Shared ring pixels: the top and bottom rows from x=6 to 9 (2 × 4); each side's other pixels lie inside the
    # other square, so at tolerance 0 precision = recall = 8/20.
    assert boundary_f(shifted, truth, 0) == pytest.approx(0.4)
    assert boundary_f(shifted, truth, 1) < 1.0  # the truth's left column is 2 pixels from any shifted outline
    assert boundary_f(shifted, truth, 2) == 1.0  # every outline pixel has a partner at most 2 pixels away
    assert boundary_f(shifted, truth, 5) == 1.0


def test_boundary_f_by_hand():
    # A 4×4 square and the same square 1 pixel right: each 12-pixel ring shares 6 pixels with the other
    # (the top and bottom rows overlap by 3 each), so at tolerance 0 precision = recall = 6/12.
    truth = square(2, 2, 4, (8, 8))
    shifted = square(2, 3, 4, (8, 8))
    assert boundary_f(shifted, truth, 0) == pytest.approx(0.5)
    assert boundary_f(shifted, truth, 1) == 1.0


def test_soft_predictions_are_binarised_at_the_level_and_mae_uses_soft_values():
    soft = m([[0.9, 0.6, 0.4, 0.1]])
    truth = m([[1, 1, 0, 0]])
    assert iou(soft, truth) == 1.0
    assert iou(soft, truth, level=0.7) == 0.5
    assert mae(soft, truth) == pytest.approx((0.1 + 0.4 + 0.4 + 0.1) / 4)
    assert foreground_fraction(soft) == 0.5
    assert foreground_fraction(soft, level=None) == pytest.approx(0.5)


def test_both_class_iou_gives_no_credit_to_an_all_foreground_mask():
    truth = m([[1, 1, 1, 0]])
    full = np.ones((1, 4), np.float32)
    assert iou(full, truth) == 0.75
    assert both_class_iou(full, truth) == pytest.approx((0.75 + 0.0) / 2)
    assert both_class_iou(truth, truth) == 1.0


def test_score_holds_every_key_and_agrees_with_the_functions():
    s = score(THREE, LEFT, tolerance=1)
    assert tuple(s) == SCORE_KEYS
    assert s["iou"] == iou(THREE, LEFT) and s["dice"] == dice(THREE, LEFT)
    assert s["precision"] == precision(THREE, LEFT) and s["recall"] == recall(THREE, LEFT)
    assert s["boundary_f"] == boundary_f(THREE, LEFT, 1)
    assert s["iou_both"] == pytest.approx(both_class_iou(THREE, LEFT))
    assert s["pred_fraction"] == s["truth_fraction"] == 0.5


def test_different_sizes_are_an_error():
    with pytest.raises(ShapeMismatch, match="4×2 but the truth is 3×2"):
        score(LEFT, np.zeros((2, 3), np.float32))
