"""Scoring masks per object: predicted instances matched to true ones by IoU, per object and per image.

Either side may be a COCO file (one object per annotation), a folder of instance label images (one object per
value, as ``segment`` writes them from prompts, or ``export --to labels --instances``) or a folder of plain masks
(one object per 8-connected region). Images pair by relative path without suffix, else by a stem only one entry
has, as ``eval`` pairs masks. In each image, predictions and truths of the same category are matched one to one
so that the sum of their IoUs is largest (the Hungarian method); a truth left without a prediction scores 0.

Per object: its IoU with its match. Per image: the mean IoU of its true objects, and precision and recall at
``match_level`` (a match below it is a miss on both sides).

>>> truth = [Region("horse", _box(0, 0, 4, 4)), Region("horse", _box(6, 0, 10, 4))]
>>> found = [Region("horse", _box(6, 0, 10, 3), 0.9)]
>>> image = match_objects("a", found, truth)
>>> [(o.truth, o.prediction, round(o.iou, 2)) for o in image.objects]
[(1, None, 0.0), (2, 1, 0.75)]
>>> image.mean_iou, image.precision, image.recall
(0.375, 1.0, 0.5)
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Sequence
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np

from maskcli.errors import InputError, SetupError
from maskcli.formats import Region


def _box(x0: int, y0: int, x1: int, y1: int, shape: tuple[int, int] = (8, 12)) -> np.ndarray:
    mask = np.zeros(shape, bool)
    mask[y0:y1, x0:x1] = True
    return mask


@dataclasses.dataclass
class ObjectScore:
    """One true object (``truth``, from 1) and its matched prediction (``prediction``, or None), or a prediction
    matched to nothing (``truth`` None)."""

    image: str
    truth: int | None
    prediction: int | None
    category: str
    iou: float
    score: float | None = None

    def record(self) -> dict[str, Any]:
        return {"image": self.image, "truth": self.truth, "prediction": self.prediction, "category": self.category,
                "iou": round(self.iou, 6), "score": self.score}


@dataclasses.dataclass
class ImageObjects:
    """The objects of one image, scored."""

    key: str
    truths: int
    predictions: int
    objects: list[ObjectScore]
    matched: int  # matches at or above the level
    error: str | None = None

    @property
    def mean_iou(self) -> float:
        ious = [o.iou for o in self.objects if o.truth is not None]
        return float(np.mean(ious)) if ious else (1.0 if not self.predictions else 0.0)

    @property
    def precision(self) -> float:
        return self.matched / self.predictions if self.predictions else 1.0

    @property
    def recall(self) -> float:
        return self.matched / self.truths if self.truths else 1.0

    def record(self) -> dict[str, Any]:
        if self.error:
            return {"image": self.key, "error": self.error}
        return {"image": self.key, "truths": self.truths, "predictions": self.predictions, "matched": self.matched,
                "mean_iou": round(self.mean_iou, 6), "precision": round(self.precision, 6),
                "recall": round(self.recall, 6), "objects": [o.record() for o in self.objects]}


@dataclasses.dataclass
class InstanceEvaluation:
    images: list[ImageObjects]
    unpaired_predictions: list[str]
    unpaired_truths: list[str]
    problems: list[str]
    match_level: float

    @property
    def scored(self) -> list[ImageObjects]:
        return [image for image in self.images if image.error is None]

    @property
    def failed(self) -> list[ImageObjects]:
        return [image for image in self.images if image.error is not None]

    def means(self) -> dict[str, float]:
        """Over every true object: the mean IoU; over the whole set: precision and recall at the level."""
        scored = self.scored
        truths = [o.iou for image in scored for o in image.objects if o.truth is not None]
        predictions = sum(image.predictions for image in scored)
        matched = sum(image.matched for image in scored)
        return {"object_iou": float(np.mean(truths)) if truths else float("nan"),
                "precision": matched / predictions if predictions else float("nan"),
                "recall": matched / len(truths) if truths else float("nan"),
                "objects": float(len(truths))}


def match_objects(key: str, predictions: Sequence[Region], truths: Sequence[Region],
                  match_level: float = 0.5) -> ImageObjects:
    """Predictions matched one to one to truths of the same category, the sum of IoUs largest."""
    from scipy.optimize import linear_sum_assignment

    ious = np.zeros((len(truths), len(predictions)))
    for t, truth in enumerate(truths):
        area = np.count_nonzero(truth.mask)
        for p, found in enumerate(predictions):
            if found.category != truth.category or found.mask.shape != truth.mask.shape:
                continue
            union = area + np.count_nonzero(found.mask) - np.count_nonzero(truth.mask & found.mask)
            ious[t, p] = np.count_nonzero(truth.mask & found.mask) / union if union else 0.0
    rows, cols = linear_sum_assignment(-ious) if ious.size else ((), ())
    match = {int(t): int(p) for t, p in zip(rows, cols) if ious[t, p] > 0}
    objects = [ObjectScore(key, t + 1, match[t] + 1 if t in match else None, truth.category,
                           float(ious[t, match[t]]) if t in match else 0.0,
                           predictions[match[t]].score if t in match else None)
               for t, truth in enumerate(truths)]
    used = set(match.values())
    objects += [ObjectScore(key, None, p + 1, found.category, 0.0, found.score)
                for p, found in enumerate(predictions) if p not in used]
    matched = sum(1 for t, p in match.items() if ious[t, p] >= match_level)
    return ImageObjects(key, len(truths), len(predictions), objects, matched)


class _Objects:
    """One side: each image's objects, by key (relative path without suffix)."""

    def __init__(self, path: str | os.PathLike[str], classes: Sequence[str] | None = None) -> None:
        from maskcli.formats.labels import LabelFolder, has_legend
        from maskcli.masksources.sets import is_coco_file

        self.path = Path(path)
        self.classes = set(classes) if classes else None
        self.problems: list[str] = []
        self.entries: dict[str, Any] = {}
        if is_coco_file(self.path):
            from maskcli.formats.coco import CocoAnnotations

            self.coco: Any = CocoAnnotations.load(self.path)
            self.problems += [f"{self.path}: {problem}" for problem in self.coco.problems]
            self.entries = dict(self.coco.images)
            self.kind = "coco"
        elif has_legend(self.path):
            self.labels = LabelFolder.open(self.path)
            listed = self.labels.legend.instances if self.labels.legend.kind == "instances" else None
            for file in sorted(p for p in self.path.rglob("*.png") if p.is_file()):
                relpath = file.relative_to(self.path).as_posix()
                if listed is None or relpath in listed:  # objects' own masks may lie beside the label images
                    self.entries[_key(relpath)] = file
            self.kind = "labels"
        elif self.path.is_dir():
            from maskcli.io.sources import walk_folder

            for source in walk_folder(self.path, recursive=True):
                if source.error:
                    self.problems.append(f"{source.path}: {source.error}")
                else:
                    self.entries[_key(source.relpath.as_posix())] = source.path
            self.kind = "masks"
        else:
            raise SetupError(f"{self.path}: neither a COCO file nor a folder")

    def regions(self, key: str) -> list[Region]:
        entry = self.entries[key]
        if self.kind == "coco":
            regions = self.coco.regions(entry)
        elif self.kind == "labels":
            regions, _ = self.labels.regions(entry)
        else:
            from maskcli.formats import split_instances
            from maskcli.masksources import read_mask_file

            mask = read_mask_file(Path(entry))  # grey levels as stored, or the mask convention
            half = (int(np.iinfo(mask.dtype).max) + 1) // 2 if mask.dtype.kind == "u" else 0.5
            return split_instances([Region("foreground", mask >= half)])  # no category to choose from
        return [r for r in regions if self.classes is None or r.category in self.classes]


def _key(relpath: str) -> str:
    path = PurePosixPath(relpath.replace("\\", "/"))
    return str(path.with_suffix("")) if path.suffix else str(path)


def evaluate_instances(predictions: str | os.PathLike[str], truths: str | os.PathLike[str], *,
                       classes: Sequence[str] | None = None, match_level: float = 0.5) -> InstanceEvaluation:
    """Score predicted objects against true ones, image by image (see the module).

    ``classes`` keeps only the objects of those categories, on both sides. A plain folder of masks has one
    category, ``foreground``; name the other side's with ``classes`` to compare them.

    Raises
    ------
    SetupError
        A side is neither a COCO file nor a folder, or no image pairs.
    """
    if not 0 < match_level <= 1:
        from maskcli.errors import OptionError

        raise OptionError("match_level", f"must be in (0, 1], not {match_level}")
    found, true = _Objects(predictions, classes), _Objects(truths, classes)
    stems: dict[str, str | None] = {}
    for key in true.entries:
        stem = PurePosixPath(key).name
        stems[stem] = None if stem in stems else key
    images, unpaired, used = [], [], set()
    for key in sorted(found.entries):
        match = key if key in true.entries else stems.get(PurePosixPath(key).name)
        if match is None:
            unpaired.append(key)
            continue
        used.add(match)
        try:
            images.append(match_objects(key, _plain(found.regions(key), classes),
                                        _plain(true.regions(match), classes), match_level))
        except InputError as error:
            images.append(ImageObjects(key, 0, 0, [], 0, str(error)))
    if not images:
        raise SetupError(f"no image of {predictions} has a truth of the same name in {truths}")
    return InstanceEvaluation(images, unpaired, sorted(k for k in true.entries if k not in used),
                              found.problems + true.problems, match_level)


def _plain(regions: list[Region], classes: Sequence[str] | None) -> list[Region]:
    """Plain masks have no category: with one chosen class, their objects are of that class."""
    if classes and len(classes) == 1 and all(r.category == "foreground" for r in regions):
        return [Region(classes[0], r.mask, r.score) for r in regions]
    return regions


__all__ = ["ImageObjects", "InstanceEvaluation", "ObjectScore", "evaluate_instances", "match_objects"]
