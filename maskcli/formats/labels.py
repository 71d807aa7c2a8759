"""Label images: one integer per pixel (0 the background, 1, 2 ... a class or an instance), with a JSON legend.

A label image is a single-channel PNG, 8-bit when its largest label fits, else 16-bit: napari
(``viewer.add_labels(imread(path))``, or File > Open as a Labels layer) and Fiji (Image > Lookup Tables > glasbey)
read the integers as they are. The folder's ``labels.json`` says what the integers mean::

    {"format": "maskcli-labels", "version": 1, "kind": "classes", "background": 0,
     "classes": {"1": "person", "2": "dog"}}

With ``"kind": "instances"`` each image numbers its own regions, and ``"instances"`` maps each image (its path
relative to the folder) to the class of each number: ``{"a.png": {"1": "cell", "2": "cell"}}``.

>>> labels = np.array([[0, 1], [2, 2]], np.uint16)
>>> legend = Legend("classes", {1: "person", 2: "dog"})
>>> [(r.category, int(r.mask.sum())) for r in labels_to_regions(labels, legend)]
[('person', 1), ('dog', 2)]
>>> bool((regions_to_labels(labels_to_regions(labels, legend), legend.names(), (2, 2))[0] == labels).all())
True
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import cv2
import numpy as np

from maskcli.errors import InputError, MaskcliError, OptionError, OutputError, SetupError
from maskcli.formats import Encoded, ExportFormat, ImageRegions, Region, export_formats

LEGEND = "labels.json"
_FORMAT = "maskcli-labels"
Kind = Literal["classes", "instances"]


@dataclasses.dataclass
class Legend:
    """What the integers of a folder's label images mean."""

    kind: Kind
    #: ``classes``: label value → class name. ``instances``: unused (each image has its own map).
    classes: dict[int, str] = dataclasses.field(default_factory=dict)
    #: ``instances``: image path (relative, POSIX) → label value → class name.
    instances: dict[str, dict[int, str]] = dataclasses.field(default_factory=dict)
    #: ``instances``: every class name, in order.
    class_names: list[str] = dataclasses.field(default_factory=list)
    #: ``instances``, where known: image path → label value → the score of the object (the model's predicted
    #: IoU, a method's confidence), exported as COCO's ``score``.
    scores: dict[str, dict[int, float]] = dataclasses.field(default_factory=dict)

    def names(self) -> list[str]:
        """The class names, in label order."""
        if self.kind == "classes":
            return [self.classes[k] for k in sorted(self.classes)]
        return list(self.class_names)

    def document(self) -> dict[str, Any]:
        document: dict[str, Any] = {"format": _FORMAT, "version": 1, "kind": self.kind, "background": 0}
        if self.kind == "classes":
            document["classes"] = {str(k): v for k, v in sorted(self.classes.items())}
        else:
            document["classes"] = self.class_names
            document["instances"] = {image: {str(k): v for k, v in sorted(values.items())}
                                     for image, values in sorted(self.instances.items())}
            if any(self.scores.values()):
                document["scores"] = {image: {str(k): v for k, v in sorted(values.items())}
                                      for image, values in sorted(self.scores.items()) if values}
        return document

    def categories_of(self, relpath: str) -> dict[int, str]:
        """Label value → class name for one image."""
        if self.kind == "classes":
            return self.classes
        return self.instances.get(relpath, {})


def legend_for(classes: Sequence[str]) -> Legend:
    """A ``classes`` legend numbering ``classes`` from 1."""
    return Legend("classes", {number: name for number, name in enumerate(classes, start=1)})


def write_legend(folder: Path, legend: Legend) -> Path:
    """Write ``labels.json`` in ``folder``, atomically."""
    from maskcli.io.files import write_atomic

    path = Path(folder) / LEGEND
    write_atomic(path, (json.dumps(legend.document(), indent=1) + "\n").encode())
    return path


def write_legend_for(folder: Path, classes: Sequence[str], *, overwrite: bool = False) -> Path:
    """Write the legend of label images of ``classes`` in ``folder``, before the images: a legend there that
    says otherwise is kept unless ``overwrite`` (the folder's older label images would lose their meaning), and
    refusing it is an :class:`OptionError` of ``labels``."""
    legend = legend_for(classes)
    if has_legend(folder) and not overwrite:
        try:
            same = read_legend(folder) == legend
        except MaskcliError:
            same = False
        if not same:
            raise OptionError("labels", f"{Path(folder) / LEGEND} exists with other classes (use `overwrite` to "
                                        "replace it, or another output folder)")
    return write_legend(folder, legend)


def has_legend(folder: str | os.PathLike[str]) -> bool:
    """Whether ``folder`` is a folder of label images (it holds a ``labels.json``)."""
    return Path(folder).is_dir() and (Path(folder) / LEGEND).is_file()


def read_legend(folder: str | os.PathLike[str]) -> Legend:
    """The legend of a label folder; a missing or malformed one is a :class:`SetupError` naming the file."""
    path = Path(folder) / LEGEND
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except OSError as error:
        raise SetupError(f"{path}: cannot read: {error.strerror or error}") from None
    except ValueError as error:
        raise SetupError(f"{path}: not a JSON file ({error})") from None
    try:
        if document.get("format") != _FORMAT:
            raise ValueError(f"format is not {_FORMAT!r}")
        kind = document["kind"]
        if kind == "classes":
            return Legend("classes", _numbered(document["classes"]))
        if kind == "instances":
            instances = {str(image): _numbered(values) for image, values in document["instances"].items()}
            scores = {str(image): {int(k): float(v) for k, v in values.items()}
                      for image, values in (document.get("scores") or {}).items()}
            return Legend("instances", instances=instances, class_names=[str(c) for c in document["classes"]],
                          scores=scores)
        raise ValueError(f"kind {kind!r} is neither 'classes' nor 'instances'")
    except (AttributeError, KeyError, TypeError, ValueError) as error:
        raise SetupError(f"{path}: not a label legend ({error})") from None


def _numbered(values: dict[str, Any]) -> dict[int, str]:
    numbered = {int(k): str(v) for k, v in values.items()}
    if any(k < 1 for k in numbered):
        raise ValueError("label values start at 1 (0 is the background)")
    return numbered


def encode_labels(labels: np.ndarray) -> bytes:
    """PNG bytes of a label image: 8-bit when every label fits, else 16-bit.

    >>> encode_labels(np.array([[0, 70000]]))
    Traceback (most recent call last):
    ...
    maskcli.errors.OutputError: 70000 labels do not fit a 16-bit label image (at most 65535)
    """
    peak = int(labels.max()) if labels.size else 0
    if peak > 65535:
        raise OutputError(f"{peak} labels do not fit a 16-bit label image (at most 65535)")
    ok, buffer = cv2.imencode(".png", labels.astype(np.uint8 if peak <= 255 else np.uint16))
    if not ok:
        raise OutputError("OpenCV could not encode the label image as PNG")
    return buffer.tobytes()


def read_labels(path: str | os.PathLike[str]) -> np.ndarray:
    """A label image as an int32 H×W array; anything but a one-channel 8- or 16-bit image is an InputError."""
    array = cv2.imread(os.fspath(path), cv2.IMREAD_UNCHANGED)
    if array is None:
        raise InputError(f"{path}: not a readable image")
    if array.ndim != 2 or array.dtype not in (np.uint8, np.uint16):
        raise InputError(f"{path}: not a label image (one channel of 8- or 16-bit integers expected, got "
                         f"{array.shape[2] if array.ndim == 3 else 1} channel(s) of {array.dtype})")
    return array.astype(np.int32)


def labels_to_regions(labels: np.ndarray, legend: Legend, relpath: str = "") -> list[Region]:
    """One region per label value present (class or instance), in value order; a value the legend does not name
    is an :class:`InputError`."""
    names = legend.categories_of(relpath)
    scores = legend.scores.get(relpath, {})
    regions = []
    for value in np.unique(labels):
        if value == 0:
            continue
        if int(value) not in names:
            raise InputError(f"label {int(value)} is not in the legend {LEGEND}")
        regions.append(Region(names[int(value)], labels == value, scores.get(int(value))))
    return regions


def regions_to_labels(regions: Sequence[Region], classes: Sequence[str], shape: tuple[int, int], *,
                      instances: bool = False) -> tuple[np.ndarray, dict[int, str]]:
    """A label image from regions (later regions over earlier ones) and what its values mean.

    Classes: a region of class ``c`` is labelled ``classes.index(c) + 1``. Instances: each region gets the
    next number from 1.
    """
    labels = np.zeros(shape, np.int32)
    meaning: dict[int, str] = {}
    for number, region in enumerate(regions, start=1):
        if instances:
            value = number
        else:
            if region.category not in classes:
                raise InputError(f"class {region.category!r} is not one of {', '.join(classes)}")
            value = classes.index(region.category) + 1
        labels[region.mask] = value
        meaning[value] = region.category
    return labels, meaning


@export_formats.register("labels")
class LabelsFormat(ExportFormat):
    """Label images (a class, or with ``instances`` an instance, per integer) and the ``labels.json`` legend."""

    summary = "8/16-bit label PNGs (napari, Fiji) and a labels.json legend."
    suffix = ".png"

    def encode(self, image: ImageRegions) -> Encoded:
        regions = self.regions(image)
        labels, meaning = regions_to_labels(regions, self.categories, (image.height, image.width),
                                            instances=self.instances)
        return Encoded(encode_labels(labels), {"labels": {str(k): v for k, v in meaning.items()}})

    def finish(self, output: Path, parts: Sequence[dict[str, Any]]) -> list[Path]:
        if self.instances:
            legend = Legend("instances", class_names=self.categories, instances={
                part["relpath"]: {int(k): v for k, v in part["labels"].items()} for part in parts})
        else:
            legend = legend_for(self.categories)
        return [write_legend(output, legend)]


@dataclasses.dataclass
class LabelFolder:
    """A folder of label images with its legend, read as masks of chosen classes.

    >>> import tempfile
    >>> from maskcli.io.files import write_atomic
    >>> scratch = tempfile.TemporaryDirectory(); root = Path(scratch.name)
    >>> write_atomic(root / "a.png", encode_labels(np.array([[0, 1], [2, 2]])))
    >>> _ = write_legend(root, legend_for(["person", "dog"]))
    >>> folder = LabelFolder.open(root)
    >>> folder.mask(root / "a.png", folder.check_classes(["dog"])).tolist()
    [[0.0, 0.0], [1.0, 1.0]]
    >>> scratch.cleanup()
    """

    root: Path
    legend: Legend

    @classmethod
    def open(cls, root: str | os.PathLike[str]) -> LabelFolder:
        return cls(Path(root), read_legend(root))

    def check_classes(self, classes: Sequence[str] | None) -> set[str] | None:
        """The chosen class names (None: every class); an unknown one is an :class:`OptionError`."""
        if not classes:
            return None
        names = self.legend.names()
        unknown = [name for name in classes if name not in names]
        if unknown:
            raise OptionError("class", f"{self.root / LEGEND} has no class {unknown[0]!r}; its classes: "
                                       f"{', '.join(names) or 'none'}")
        return set(classes)

    def regions(self, path: str | os.PathLike[str]) -> tuple[list[Region], tuple[int, int]]:
        """The regions of the label image at ``path`` (a file in this folder), and its (height, width)."""
        relpath = Path(path).relative_to(self.root).as_posix()
        labels = read_labels(path)
        try:
            return labels_to_regions(labels, self.legend, relpath), (labels.shape[0], labels.shape[1])
        except InputError as error:
            raise InputError(f"{path}: {error}") from None

    def mask(self, path: str | os.PathLike[str], classes: set[str] | None = None) -> np.ndarray:
        """The union of the chosen classes (None: all) in the label image at ``path``, as a float32 hard mask."""
        labels = read_labels(path)
        relpath = Path(path).relative_to(self.root).as_posix()
        names = self.legend.categories_of(relpath)
        unknown = sorted(set(np.unique(labels).tolist()) - set(names) - {0})
        if unknown:
            raise InputError(f"{path}: label {unknown[0]} is not in the legend {LEGEND}")
        values = [value for value, name in names.items() if classes is None or name in classes]
        return np.isin(labels, values).astype(np.float32)
