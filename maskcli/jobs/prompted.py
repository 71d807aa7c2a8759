"""Masks from prompts, one per object: the job ``maskcli segment`` runs when boxes or points are given.

Each image is decoded, its prompts found and checked against its size (a prompt that does not fit fails the
image, named; the batch goes on), the prompted method makes one mask per prompt, the refinement chain cleans
each, and the outputs are written:

* ``labels`` (default): a label image per input (object ``k`` of the image's prompts is the value ``k``; where
  objects overlap, the smaller one is on top), described by the folder's ``labels.json``
  (:func:`instance_legend`: each value's label and score);
* ``union``: one mask per input, the union of its objects, instead of the label image;
* ``objects``: besides, one mask per object, ``{stem}_{index}_{label}.png`` beside the input's output.

>>> from maskcli.prompts import Prompt
>>> objects = [{"index": 1, "label": "horse", "score": 0.9}, {"index": 2, "label": "dog", "score": 0.5}]
>>> legend = instance_legend({"a.png": objects}, ["horse"])
>>> legend.class_names, legend.instances["a.png"], legend.scores["a.png"]
(['horse', 'dog'], {1: 'horse', 2: 'dog'}, {1: 0.9, 2: 0.5})
>>> object_name("photo", 2, "traffic light/left")
'photo_2_traffic_light_left.png'
"""

from __future__ import annotations

import dataclasses
import os
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from maskcli.errors import InputError, OptionError
from maskcli.io.decode import DEFAULT_MAX_PIXELS, Image
from maskcli.io.files import WriteGate, write_atomic
from maskcli.io.masks import encode_mask
from maskcli.io.sinks import Sink
from maskcli.io.sources import Item
from maskcli.jobs.segment import Refiner, load_item, write_output
from maskcli.masks import check_mask, is_hard
from maskcli.methods.base import Segmentation
from maskcli.work import JobBase, Result, Timer

OUTPUTS = ("labels", "union", "objects")


def object_name(stem: str, index: int, label: str) -> str:
    """The file name of one object's mask: ``{stem}_{index}_{label}.png``, the label made safe for a name."""
    safe = re.sub(r"[^\w.-]+", "_", label).strip("._") or "object"
    return f"{stem}_{index}_{safe}.png"


@dataclasses.dataclass
class PromptedSegmentJob(JobBase):
    """Decode → prompts → one mask per prompt → label image / union / per-object masks.

    Parameters
    ----------
    method : PromptedMethod
        A method with ``compute_prompts`` (``grabcut-box``, ``cnn-box``, ``sam`` ...).
    prompts : PromptSource
        Where each input's prompts come from (:mod:`maskcli.promptsources`).
    outputs : sequence of str
        What is written: ``labels`` or ``union`` (the input's own output), and/or ``objects``.
    existing : {"error", "skip", "overwrite"}
        For per-object files: an existing one fails the image, is kept, or is replaced.
    """

    method: Any
    prompts: Any
    refiner: Refiner | None = None
    outputs: Sequence[str] = ("labels",)
    max_pixels: int = DEFAULT_MAX_PIXELS
    sink: Sink | None = None
    existing: str = "error"

    def __post_init__(self) -> None:
        if not hasattr(self.method, "compute_prompts"):
            raise OptionError("method", f"method {self.method.name!r} takes no prompts; prompted methods: "
                                        f"{', '.join(prompted_methods())}")
        unknown = sorted(set(self.outputs) - set(OUTPUTS))
        if unknown or not self.outputs:
            raise OptionError("outputs", f"choose from {', '.join(OUTPUTS)}, not {unknown or 'nothing'}")
        if {"labels", "union"} <= set(self.outputs):
            raise OptionError("outputs", "an input's output is either its label image or its union mask")

    @property
    def batched(self) -> bool:
        return bool(self.method.batched)

    @property
    def batch_size(self) -> int:
        return max(1, int(self.method.batch_size))

    @property
    def releases_gil(self) -> bool:
        return bool(self.method.releases_gil) and self.refiner is None

    def load(self, item: Item) -> tuple[Image, list[Any], Timer]:
        timer = Timer()
        with timer("decode"):
            image = load_item(item, self.max_pixels)
            prompts = self.prompts.prompts(item.source, image.width, image.height)
        if not getattr(self.method, "takes_points_alone", False):
            alone = [n for n, prompt in enumerate(prompts, start=1) if prompt.box is None]
            if alone:
                raise InputError(f"prompt {alone[0]} has points but no box; {self.method.name} needs a box per "
                                 "prompt (the sam methods take points alone)")
        return image, prompts, timer

    def compute(self, loaded: list[tuple[Image, list[Any], Timer]]) -> list[list[Segmentation]]:
        results = []
        for image, prompts, timer in loaded:
            with timer("compute"):
                segmentations = self.method.compute_prompts(image.pixels, prompts) if prompts else []
                for segmentation in segmentations:
                    check_mask(segmentation.mask, what=f"the {self.method.name} method's mask")
                    if self.refiner is not None:
                        segmentation.mask = self.refiner.apply(segmentation.mask, image.pixels)
            results.append(segmentations)
        return results

    def save(self, item: Item, loaded: tuple[Image, list[Any], Timer], objects: list[Segmentation],
             gate: WriteGate) -> Result:
        image, prompts, timer = loaded
        shape = (image.height, image.width)
        records = []
        for index, (prompt, segmentation) in enumerate(_answered(prompts, objects), start=1):
            score = segmentation.facts.get("score")
            records.append({"index": index, **prompt.record(), "score": score,
                            "area": int(np.count_nonzero(segmentation.mask >= 0.5))})
        facts: dict[str, Any] = {"method": self.method.name, "width": image.width, "height": image.height,
                                 "objects": records}
        written: list[str] = []
        with timer("encode"):
            files = self._object_files(item, prompts, objects) if "objects" in self.outputs else []
            if "labels" in self.outputs:
                main = encode_instance_labels([s.mask for s in objects], shape)
            elif "union" in self.outputs:
                union = np.zeros(shape, np.float32)
                for segmentation in objects:
                    np.maximum(union, segmentation.mask, out=union)
                main = encode_mask(union, hard=is_hard(union))
            else:
                main = None
        with timer("write"):
            for path, data in files:
                write_atomic(path, data, gate=gate)
                written.append(str(path))
            output = write_output(self.sink, item, main, gate) if main is not None else None
        if written:
            facts["object_files"] = written
        if image.warnings:
            facts["warnings"] = list(image.warnings)
        return Result(item.index, item.name, output or (written[0] if written else None), "written", facts=facts,
                      timings=timer.timings)

    def _object_files(self, item: Item, prompts: Sequence[Any], objects: Sequence[Segmentation]
                      ) -> list[tuple[Path, bytes]]:
        if item.destination is None:
            raise OptionError("outputs", "one file per object needs an output folder")
        stem = Path(item.source.relpath.name).stem
        files = []
        for index, (prompt, segmentation) in enumerate(_answered(prompts, objects), start=1):
            path = item.destination.parent / object_name(stem, index, prompt.label)
            if os.path.lexists(path) and self.existing == "error":
                raise InputError(f"output {path} exists (use `existing='overwrite'` to replace it)")
            if not (os.path.lexists(path) and self.existing == "skip"):
                files.append((path, encode_mask(segmentation.mask, hard=is_hard(segmentation.mask))))
        return files


def _answered(prompts: Sequence[Any], objects: Sequence[Segmentation]) -> list[tuple[Any, Segmentation]]:
    """Each object with the prompt it answers: the one its ``prompt`` fact names (from 1), else the prompt in
    the same place."""
    return [(prompts[segmentation.facts.get("prompt", index + 1) - 1], segmentation)
            for index, segmentation in enumerate(objects)]


def encode_instance_labels(masks: Sequence[np.ndarray], shape: tuple[int, int], level: float = 0.5) -> bytes:
    """PNG bytes of a label image: mask ``k`` (from 1) is the value ``k``; larger objects are painted first, so
    where objects overlap the smaller one stays visible."""
    from maskcli.formats.labels import encode_labels

    labels = np.zeros(shape, np.int32)
    areas = [int(np.count_nonzero(mask >= level)) for mask in masks]
    for index in sorted(range(len(masks)), key=lambda k: -areas[k]):
        labels[masks[index] >= level] = index + 1
    return encode_labels(labels)


def instance_legend(objects: Mapping[str, Sequence[Mapping[str, Any]]], categories: Sequence[str] = ()) -> Any:
    """The ``instances`` legend of a folder of label images: for each image (its label image's path relative to
    the folder), each value's label and score. ``categories`` come first in the class list, then any other
    label met."""
    from maskcli.formats.labels import Legend

    names = list(dict.fromkeys(categories))
    instances: dict[str, dict[int, str]] = {}
    scores: dict[str, dict[int, float]] = {}
    for relpath, records in objects.items():
        instances[relpath] = {int(r["index"]): str(r["label"]) for r in records}
        scores[relpath] = {int(r["index"]): float(r["score"]) for r in records if r.get("score") is not None}
        names.extend(label for label in instances[relpath].values() if label not in names)
    return Legend("instances", instances=instances, class_names=names, scores=scores)


def legend_of_results(results: Sequence[Result], output: Path, categories: Sequence[str] = (),
                      previous: Any = None) -> Any:
    """The legend of what a run wrote in ``output``, from its results (their ``objects`` facts); the images of
    an earlier ``instances`` legend (``previous``) that this run did not write again are kept."""
    objects: dict[str, Any] = {}
    if previous is not None and previous.kind == "instances":
        for relpath, values in previous.instances.items():
            scores = previous.scores.get(relpath, {})
            objects[relpath] = [{"index": k, "label": v, "score": scores.get(k)} for k, v in values.items()]
        categories = [*previous.class_names, *categories]
    for result in results:
        if result.status == "written" and result.output and "objects" in result.facts:
            relpath = Path(result.output).resolve().relative_to(Path(output).resolve()).as_posix()
            objects[relpath] = result.facts["objects"]
    return instance_legend(objects, categories)


def prompted_methods() -> list[str]:
    """The names of the registered methods that take prompts."""
    from maskcli.methods import methods

    return [name for name, cls in methods.items() if hasattr(cls, "compute_prompts")]


__all__ = ["OUTPUTS", "PromptedSegmentJob", "encode_instance_labels", "instance_legend", "legend_of_results",
           "object_name", "prompted_methods"]
