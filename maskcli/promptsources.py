"""Where ``segment``'s prompts come from: one class per kind, registered by name in :data:`prompt_sources`.

A prompt source answers, for an input, which prompts go with it (:meth:`PromptSource.prompts`, given the decoded
image's size, since YOLO's boxes are fractions of it and a COCO file records each image's size). Images are
matched as mask folders and COCO files match masks: by relative path without suffix, else by a stem only one
entry has. :meth:`PromptSource.pair`, while the items are planned, fails an input the source does not name.

The kinds: ``coco`` (a COCO file's ``bbox`` annotations, labelled with their categories), ``yolo`` (a folder of
YOLO detection ``.txt`` files, ``class cx cy w h`` in fractions of the image, with ``classes.txt`` or a given list
of class names), ``jsonl`` (JSON Lines, one object per line: ``{"image": "a.jpg", "box": [x0, y0, x1, y1],
"points": [[x, y, 1], [x, y, 0]], "label": "horse"}``) and ``given`` (the same prompts for every input, from the
command line's boxes and points). :func:`open_prompts` picks the kind a path is.

>>> import tempfile
>>> from pathlib import Path, PurePosixPath
>>> from maskcli.io.sources import Source
>>> scratch = tempfile.TemporaryDirectory(); root = Path(scratch.name)
>>> _ = (root / "p.jsonl").write_text('{"image": "sub/a.jpg", "box": [1, 1, 5, 4], "label": "cat"}\\n')
>>> source = open_prompts(root / "p.jsonl")
>>> [p.label for p in source.prompts(Source("x/sub/a.png", PurePosixPath("sub/a.png")), 8, 6)]
['cat']
>>> prompt_sources.names()
['coco', 'given', 'jsonl', 'yolo']
>>> scratch.cleanup()
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path, PurePosixPath
from typing import Any, ClassVar, Generic, Protocol, TypeVar

from maskcli.errors import InputError, OptionError, SetupError
from maskcli.io.files import regular_file_problem
from maskcli.io.sources import STDIN, Source
from maskcli.prompts import Prompt, check_prompts, prompt_from_record
from maskcli.registry import Registry

prompt_sources: Registry[Any] = Registry("prompt source")

T = TypeVar("T")


class PromptSource(Protocol):
    """Pairs inputs with their prompts (see the module)."""

    name: ClassVar[str]
    path: str

    def pair(self, source: Source) -> None: ...

    def prompts(self, source: Source, width: int, height: int) -> list[Prompt]: ...


def _key(relpath: str | PurePosixPath) -> str:
    path = PurePosixPath(str(relpath).replace("\\", "/"))
    return str(path.with_suffix("")) if path.suffix else str(path)


class _Index(Generic[T]):
    """Entries by relative path without suffix, and by a stem only one entry has."""

    def __init__(self) -> None:
        self.entries: dict[str, T] = {}
        self._by_stem: dict[str, str | None] = {}

    def get_or_add(self, name: str, factory: Any) -> T:
        key = _key(name)
        if key not in self.entries:
            self.entries[key] = factory()
            stem = PurePosixPath(key).name
            self._by_stem[stem] = None if stem in self._by_stem else key
        return self.entries[key]

    def find(self, relpath: str | PurePosixPath) -> T | None:
        key = _key(relpath)
        if key in self.entries:
            return self.entries[key]
        by_stem = self._by_stem.get(PurePosixPath(key).name)
        return self.entries[by_stem] if by_stem is not None else None


class _Named:
    """Sources that list prompts per image name."""

    path: str

    def _entry(self, source: Source) -> Any:
        raise NotImplementedError

    def pair(self, source: Source) -> None:
        if source.path == STDIN:
            raise InputError(f"{self.path} names its images; an image on stdin takes boxes and points given "
                             "on the command line")
        self._entry(source)


@prompt_sources.register("coco")
class CocoPrompts(_Named):
    """The ``bbox`` (``[x, y, width, height]``) of each annotation of a COCO file, labelled with its category.

    ``classes`` keeps the annotations of those categories only. An image the file lists without annotations has
    no prompts (and no objects).
    """

    def __init__(self, path: str | os.PathLike[str], classes: Sequence[str] | None = None) -> None:
        from maskcli.formats.coco import CocoAnnotations

        self.path = str(path)
        coco = CocoAnnotations.load(path)
        self.problems = [f"{self.path}: {problem}" for problem in coco.problems]
        chosen = coco.category_ids(classes)
        self.categories = [coco.categories[k] for k in sorted(coco.categories) if chosen is None or k in chosen]
        self._images: _Index[tuple[int, int, list[Prompt]]] = _Index()
        for key, image in coco.images.items():
            prompts = []
            for annotation in image.annotations:
                where = f"{self.path}: annotation {annotation.get('id')} of {image.file_name}"
                category = annotation.get("category_id")
                if category not in coco.categories:
                    self.problems.append(f"{where}: category id {category} is not in categories; ignored")
                    continue
                if chosen is not None and category not in chosen:
                    continue
                box = annotation.get("bbox")
                if not isinstance(box, list) or len(box) != 4 or \
                        not all(isinstance(v, (int, float)) for v in box):
                    self.problems.append(f"{where}: no bbox [x, y, width, height]; ignored")
                    continue
                x, y, w, h = (float(v) for v in box)
                prompts.append(Prompt(box=(x, y, x + w, y + h), label=coco.categories[category]))
            entry = (image.width, image.height, prompts)
            self._images.get_or_add(key, lambda entry=entry: entry)

    def _entry(self, source: Source) -> tuple[int, int, list[Prompt]]:
        entry = self._images.find(source.relpath)
        if entry is None:
            raise InputError(f"{self.path} has no image named {source.relpath.name}")
        return entry

    def prompts(self, source: Source, width: int, height: int) -> list[Prompt]:
        file_width, file_height, prompts = self._entry(source)
        if (file_width, file_height) != (width, height):
            raise InputError(f"{self.path} gives {source.relpath.name} as {file_width}×{file_height}, but the "
                             f"image is {width}×{height}")
        return check_prompts(prompts, width, height)


@prompt_sources.register("yolo")
class YoloPrompts(_Named):
    """A folder of YOLO detection files: ``NAME.txt`` per image (``NAME`` its relative path without suffix), a
    line ``class cx cy w h`` per object in fractions of the image's width and height.

    The class names come from ``classes`` (a list, or a text file with one name a line), else from the folder's
    ``classes.txt``; without either, an object's label is its class number.
    """

    def __init__(self, folder: str | os.PathLike[str], classes: Sequence[str] | str | os.PathLike[str] | None = None
                 ) -> None:
        self.path = str(folder)
        root = Path(folder)
        if not root.is_dir():
            raise OptionError("boxes", f"{folder} is not a folder of YOLO .txt files")
        names = _class_names(root, classes)
        self.categories = list(names)
        self.problems: list[str] = []
        self._images: _Index[list[tuple[str, float, float, float, float]]] = _Index()
        for path in sorted(root.rglob("*.txt")):
            relpath = path.relative_to(root).as_posix()
            if relpath == "classes.txt":
                continue
            problem = regular_file_problem(path)
            if problem is not None:  # a FIFO or a device would block or never end
                self.problems.append(f"{path}: {problem}; ignored")
                continue
            boxes = self._images.get_or_add(relpath, list)
            for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
                if not line.strip():
                    continue
                fields = line.split()
                try:
                    if len(fields) not in (5, 6):  # a sixth value is a detector's confidence
                        raise ValueError
                    klass = int(fields[0])
                    cx, cy, w, h = (float(v) for v in fields[1:5])
                except ValueError:
                    self.problems.append(f"{path}:{number}: not `class cx cy w h`; ignored")
                    continue
                if names and not 0 <= klass < len(names):
                    self.problems.append(f"{path}:{number}: class {klass} is not in the class list; ignored")
                    continue
                boxes.append((names[klass] if names else str(klass), cx, cy, w, h))

    def _entry(self, source: Source) -> list[tuple[str, float, float, float, float]]:
        boxes = self._images.find(source.relpath)
        if boxes is None:
            raise InputError(f"{self.path} has no {_key(source.relpath)}.txt")
        return boxes

    def prompts(self, source: Source, width: int, height: int) -> list[Prompt]:
        prompts = [Prompt(box=((cx - w / 2) * width, (cy - h / 2) * height, (cx + w / 2) * width,
                               (cy + h / 2) * height), label=label)
                   for label, cx, cy, w, h in self._entry(source)]
        return check_prompts(prompts, width, height)


def _class_names(root: Path, classes: Sequence[str] | str | os.PathLike[str] | None) -> list[str]:
    if classes is None:
        listed = root / "classes.txt"
        if not listed.is_file():
            return []
        classes = listed
    if isinstance(classes, (str, os.PathLike)):
        problem = regular_file_problem(classes)
        if problem not in (None, "no such file", "permission denied"):  # those two: said below, as before
            raise OptionError("class_list", f"{classes}: {problem}")
        try:
            text = Path(classes).read_text(encoding="utf-8")
        except OSError as error:
            raise SetupError(f"class list {classes}: cannot read ({error.strerror or error})") from None
        return [line.strip() for line in text.splitlines() if line.strip()]
    return list(classes)


@prompt_sources.register("jsonl")
class JsonLinesPrompts(_Named):
    """JSON Lines: one prompt per line, ``{"image": ..., "box": [...], "points": [...], "label": ...}``; an
    image's prompts are its lines in file order. A malformed line fails the images it names (or, when it names
    none, is a problem of the file)."""

    def __init__(self, path: str | os.PathLike[str], classes: Sequence[str] | None = None) -> None:
        self.path = str(path)
        self.problems: list[str] = []
        self._images: _Index[list[Prompt | str]] = _Index()
        try:
            lines = Path(path).read_text(encoding="utf-8").splitlines()
        except (OSError, UnicodeDecodeError) as error:
            raise SetupError(f"{path}: cannot read ({error})") from None
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            where = f"{self.path} line {number}"
            try:
                record = json.loads(line)
                image = record["image"]
                if not isinstance(image, str):
                    raise TypeError
            except (ValueError, KeyError, TypeError):
                self.problems.append(f"{where}: not a JSON object naming its image; ignored")
                continue
            entry = self._images.get_or_add(image, list)
            try:
                prompt: Prompt | str = prompt_from_record(record, where)
            except InputError as error:
                prompt = str(error)  # fails this image, not the file
            if classes and isinstance(prompt, Prompt) and prompt.label not in classes:
                continue
            entry.append(prompt)
        labels = {p.label for entry in self._images.entries.values() for p in entry if isinstance(p, Prompt)}
        self.categories = sorted(labels)

    def _entry(self, source: Source) -> list[Prompt | str]:
        entry = self._images.find(source.relpath)
        if entry is None:
            raise InputError(f"{self.path} has no line for {source.relpath.name}")
        return entry

    def prompts(self, source: Source, width: int, height: int) -> list[Prompt]:
        entry = self._entry(source)
        errors = [p for p in entry if isinstance(p, str)]
        if errors:
            raise InputError(errors[0])
        return check_prompts([p for p in entry if isinstance(p, Prompt)], width, height)


@prompt_sources.register("given")
class GivenPrompts:
    """The same prompts for every input: boxes and points given by hand (the command line's ``box`` and
    ``point``). Points with no box make one prompt together; with one box they seed it; with several boxes,
    points are ambiguous and refused.

    >>> from maskcli.prompts import parse_box
    >>> [p.record() for p in GivenPrompts([parse_box("0,0,4,4")], [(1, 1, 1)], label="cat").all]
    [{'box': [0, 0, 4, 4], 'points': [[1, 1, 1]], 'label': 'cat'}]
    """

    path = "the command line"

    def __init__(self, boxes: Sequence[Prompt] = (), points: Sequence[tuple[float, float, int]] = (),
                 label: str = "object") -> None:
        if len(boxes) > 1 and points:
            raise OptionError("point", "points go with one box (or with none); with several boxes, say which "
                                       "box each point seeds in a JSON Lines file")
        if boxes:
            self.all = [Prompt(box=box.box, points=tuple(points), label=label) for box in boxes]
        elif points:
            self.all = [Prompt(points=tuple(points), label=label)]
        else:
            raise OptionError("box", "give at least one box or point")
        self.categories = [label]
        self.problems: list[str] = []

    def pair(self, source: Source) -> None:
        return None

    def prompts(self, source: Source, width: int, height: int) -> list[Prompt]:
        return check_prompts(self.all, width, height)


def open_prompts(path: str | os.PathLike[str], classes: Sequence[str] | None = None,
                 class_list: str | os.PathLike[str] | None = None) -> Any:
    """The prompt source a path names: a COCO file (``.json``), JSON Lines (``.jsonl``), or a folder of YOLO
    ``.txt`` files (``class_list``: its class names, one a line; default its ``classes.txt``).

    ``classes`` keeps only the prompts of those categories (COCO, JSON Lines).
    """
    path = Path(path)
    if path.is_dir():
        source: Any = YoloPrompts(path, class_list)
        if classes:
            raise OptionError("class", "YOLO boxes are kept whatever their class; choose classes in a COCO or "
                                       "JSON Lines file")
        return source
    if class_list is not None:
        raise OptionError("class_list", "a class list names the classes of a folder of YOLO .txt files")
    problem = regular_file_problem(path)
    if problem not in (None, "no such file", "permission denied"):  # those two: said by the readers, as before
        raise OptionError("boxes", f"{path}: {problem}")
    if path.suffix.lower() == ".json":
        return CocoPrompts(path, classes)
    if path.suffix.lower() in (".jsonl", ".ndjson"):
        return JsonLinesPrompts(path, classes)
    if not path.exists():
        raise OptionError("boxes", f"{path} does not exist")
    raise OptionError("boxes", f"{path} is neither a COCO file (.json), JSON Lines (.jsonl) nor a folder of YOLO "
                               ".txt files")


__all__ = ["CocoPrompts", "GivenPrompts", "JsonLinesPrompts", "PromptSource", "YoloPrompts", "open_prompts",
           "prompt_sources"]
