"""Scoring masks against ground truth: how good are these masks?

:func:`evaluate_folders` pairs prediction files with truth files by relative path and stem (``sub/a.jpg``'s mask
``sub/a.png`` pairs with the truth ``sub/a.png``; the rule is :mod:`maskcli.io.pairing`'s), scores each pair with
:func:`maskcli.metrics.score`, and lists what could not be paired on either side. Ranking methods on a user's own
images (which method for my data?) is :mod:`maskcli.compare`, built on the scores here.

Files are streamed: only the paths are listed up front, and one image (with its masks) is in memory at a time.
Nothing here prints; results come back as data and the CLI shows them.
"""

from __future__ import annotations

import dataclasses
import math
import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

import numpy as np

from maskcli.errors import InputError, OptionError, SetupError
from maskcli.io.pairing import Pair, Pairing, pair_files
from maskcli.masksources.sets import open_mask_sets
from maskcli.masksources.truths import pair_sets, set_reader
from maskcli.metrics import SCORE_KEYS, score

__all__ = [
    "ImageScore",
    "Evaluation",
    "check_level",
    "evaluate_pairs",
    "evaluate_folders",
    "mean_scores",
    "worst_first",
]


@dataclasses.dataclass
class ImageScore:
    """The scores of one image (or why it could not be scored)."""

    key: str
    source: str
    truth: str
    scores: dict[str, float] = dataclasses.field(default_factory=dict)
    error: str | None = None
    #: Seconds the method (and refinement) took on this image, when a method made the mask.
    seconds: float | None = None
    #: The method's facts (threshold, confidence, warnings), when a method made the mask.
    facts: dict[str, Any] = dataclasses.field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.error is None

    def record(self) -> dict[str, Any]:
        """JSON-friendly form."""
        record: dict[str, Any] = {"key": self.key, "source": self.source, "truth": self.truth, "error": self.error}
        record.update({k: _round(v) for k, v in self.scores.items()})
        if self.seconds is not None:
            record["ms"] = round(self.seconds * 1000, 2)
        if self.facts:
            record["facts"] = self.facts
        return record


@dataclasses.dataclass
class Evaluation:
    """Scores of a folder of predictions against a folder of truths."""

    images: list[ImageScore]
    pairing: Pairing
    level: float
    tolerance: float

    @property
    def scored(self) -> list[ImageScore]:
        return [image for image in self.images if image.ok]

    @property
    def failed(self) -> list[ImageScore]:
        return [image for image in self.images if not image.ok]

    @property
    def means(self) -> dict[str, float]:
        return mean_scores(self.images)


def _round(value: Any) -> Any:
    return round(value, 6) if isinstance(value, float) and math.isfinite(value) else value


def _read_mask(path: str) -> np.ndarray:
    from maskcli.io.masks import read_mask

    return read_mask(path)


def evaluate_pairs(pairs: Iterable[Pair], *, level: float = 0.5, tolerance: float = 2,
                   read_source: Callable[[Pair], np.ndarray] | None = None,
                   read_truth: Callable[[Pair], np.ndarray] | None = None) -> Iterator[ImageScore]:
    """Score each pair, lazily: one line of :class:`ImageScore` per pair, failures carrying their reason.

    ``read_source`` and ``read_truth`` read a side that is not a mask file (a COCO file's or label images'
    masks); by default each side is read from its path."""
    for pair in pairs:
        try:
            prediction = read_source(pair) if read_source else _read_mask(pair.source)
            truth = read_truth(pair) if read_truth else _read_mask(pair.truth)
            yield ImageScore(pair.key, pair.source, pair.truth, score(prediction, truth, level=level,
                                                                      tolerance=tolerance))
        except InputError as error:
            yield ImageScore(pair.key, pair.source, pair.truth, error=str(error))


def evaluate_folders(
    predictions: str | os.PathLike[str],
    truths: str | os.PathLike[str],
    *,
    level: float = 0.5,
    tolerance: float = 2,
    classes: Sequence[str] | None = None,
) -> Evaluation:
    """Pair and score a folder of predicted masks against a folder of true masks.

    Either side may instead be a COCO file or a folder of label images (with ``labels.json``): its masks are the union
    of ``classes`` (default: every class), paired by file name. Raises :class:`~maskcli.errors.SetupError` when a folder
    is missing or nothing pairs.

    Examples
    --------
    >>> import tempfile
    >>> from pathlib import Path
    >>> from maskcli.io.files import write_atomic
    >>> from maskcli.io.masks import encode_mask
    >>> scratch = tempfile.TemporaryDirectory(); root = Path(scratch.name)
    >>> truth = np.zeros((4, 4), np.float32); truth[:2] = 1
    >>> write_atomic(root / "gt" / "a.png", encode_mask(truth))
    >>> write_atomic(root / "pred" / "a.png", encode_mask(np.ones((4, 4), np.float32)))
    >>> result = evaluate_folders(root / "pred", root / "gt")
    >>> result.means["iou"], result.images[0].key
    (0.5, 'a')
    >>> scratch.cleanup()
    """
    check_level(level, tolerance)
    sets = open_mask_sets([predictions, truths], classes)
    if sets == [None, None]:
        pairing = pair_files(predictions, truths)
    else:
        pairing = pair_sets(predictions, truths, *sets)
    if not pairing.pairs:
        raise SetupError(f"no prediction in {predictions} has a truth of the same name in {truths}")
    read_source, read_truth = (set_reader(path, mask_set, side) for path, mask_set, side in
                               ((predictions, sets[0], "source"), (truths, sets[1], "truth")))
    images = list(evaluate_pairs(pairing.pairs, level=level, tolerance=tolerance, read_source=read_source,
                                 read_truth=read_truth))
    return Evaluation(images, pairing, level, tolerance)


def check_level(level: float, tolerance: float) -> None:
    if not 0.0 < level <= 1.0:
        raise OptionError("level", f"must be in (0, 1], not {level}")
    if tolerance < 0:
        raise OptionError("tolerance", f"must be 0 or more pixels, not {tolerance}")


def mean_scores(images: Iterable[ImageScore]) -> dict[str, float]:
    """Mean of each score over the images that were scored (failed ones are left out); empty if none.

    >>> mean_scores([ImageScore("a", "", "", {"iou": 1.0}), ImageScore("b", "", "", {"iou": 0.5}),
    ...              ImageScore("c", "", "", error="unreadable")])
    {'iou': 0.75}
    """
    totals: dict[str, float] = {}
    count = 0
    for image in images:
        if not image.ok:
            continue
        count += 1
        for key, value in image.scores.items():
            totals[key] = totals.get(key, 0.0) + value
    return {key: totals[key] / count for key in _ordered(totals)} if count else {}


def _ordered(keys: Iterable[str]) -> list[str]:
    keys = list(keys)
    return [k for k in SCORE_KEYS if k in keys] + [k for k in keys if k not in SCORE_KEYS]


def worst_first(images: Iterable[ImageScore], key: str = "iou") -> list[ImageScore]:
    """Images by ascending ``key`` score (ties by name); failed images come first, since they are worst of all.

    >>> [i.key for i in worst_first([ImageScore("a", "", "", {"iou": 0.9}), ImageScore("b", "", "", {"iou": 0.2})])]
    ['b', 'a']
    """
    return sorted(images, key=lambda i: (i.ok, i.scores.get(key, -1.0) if i.ok else -1.0, i.key))
