"""Where ``apply``'s masks come from: one class per kind, registered by name in :data:`mask_sources`.

A mask source answers two questions:

* :meth:`MaskSource.pair`, while the items are planned (in the calling process, in input order): which mask file
  goes with this input? It returns a path, or None when the mask is not a file of its own, and raises
  :class:`~maskcli.errors.InputError` when there is none (that item fails, the batch goes on);
* :meth:`MaskSource.load`, when an item is decoded (maybe in a worker process): the mask itself, in the mask
  convention or as a file's integer grey levels (converted band by band where used), or None when a method makes
  it from the decoded image (:class:`MethodMasks`).

The kinds: ``folder`` (a folder of per-image masks matched by relative path and stem, as ``maskcli segment``
writes them), ``file`` (one static mask for every image), ``alpha`` (the image's own alpha channel), ``records``
(the masks named by the JSON records ``maskcli segment --json`` prints), ``method`` (a mask method run on the
fly), and, from :mod:`maskcli.formats.sources`, ``coco`` (a COCO file) and ``labels`` (a folder of label images
with its ``labels.json`` legend), each image's mask the union of the chosen classes. Adding a kind is adding one
class here (or in another module, named in :data:`_ELSEWHERE`) with ``@mask_sources.register(NAME)``.
:func:`open_masks` picks the kind a path given as "the masks" is: a COCO file, a label folder, or a folder.

Examples
--------
>>> import tempfile
>>> from pathlib import Path, PurePosixPath
>>> from maskcli.io.sources import Source
>>> scratch = tempfile.TemporaryDirectory(); root = Path(scratch.name)
>>> (root / "sub").mkdir(); _ = (root / "sub" / "a.png").write_bytes(b"")
>>> MaskFolder(root).pair(Source("photos/sub/a.jpg", PurePosixPath("sub/a.jpg"))).relative_to(root).as_posix()
'sub/a.png'
>>> mask_sources.names()
['alpha', 'coco', 'file', 'folder', 'labels', 'method', 'records']
>>> type(open_masks(root)).__name__
'MaskFolder'
>>> scratch.cleanup()
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterable, Iterator
from pathlib import Path, PurePosixPath
from typing import IO, Any, ClassVar, Protocol

import numpy as np

from maskcli.errors import InputError, OptionError
from maskcli.io.decode import DEFAULT_MAX_PIXELS, IMAGE_SUFFIXES, Image
from maskcli.io.files import regular_file_problem
from maskcli.io.sources import STDIN, Item, Source
from maskcli.registry import Registry

#: Modules that register mask sources of their own (imported when the registry is listed or asked for a name
#: not yet registered).
_ELSEWHERE = ("maskcli.formats.sources",)


def _load_elsewhere() -> None:
    import importlib

    for module in _ELSEWHERE:
        importlib.import_module(module)


mask_sources: Registry[Any] = Registry("mask source", loader=_load_elsewhere)


class MaskSource(Protocol):
    """Pairs inputs with masks (see the module)."""

    name: ClassVar[str]
    #: The method that makes the masks, for sources that run one (else None).
    method: Any

    def pair(self, source: Source) -> Path | None: ...

    def load(self, item: Item, image: Image, *, max_pixels: int) -> np.ndarray | None: ...


def paired(items: Iterable[Item], masks: MaskSource) -> Iterator[Item]:
    """The items with their mask files (``item.mask``); an input without a mask fails with the reason."""
    for item in items:
        if not item.error and not item.skip:
            try:
                item.mask = masks.pair(item.source)
            except InputError as error:
                item.error = str(error)
        yield item


def read_mask_file(path: Path, max_pixels: int = DEFAULT_MAX_PIXELS) -> np.ndarray:
    """A mask file's mask: its integer levels (uint8/uint16) when it holds plain grey ones, 1 byte per pixel
    instead of 4 until used, else the mask convention; a failure names the mask file."""
    from maskcli.io.decode import read_image
    from maskcli.io.masks import mask_from_image

    try:
        image = read_image(path, max_pixels=max_pixels)
    except InputError as error:
        raise InputError(f"mask {path}: {error}") from None
    if image.alpha is None and image.samples is not None and image.samples.ndim == 2:
        return image.samples
    return mask_from_image(image)


class _FileMasks:
    """Sources whose masks are files paired while planning."""

    method = None

    def load(self, item: Item, image: Image, *, max_pixels: int) -> np.ndarray | None:
        if item.mask is None:
            raise InputError("no mask for this image")
        return read_mask_file(item.mask, max_pixels)


@mask_sources.register("folder")
@dataclasses.dataclass
class MaskFolder(_FileMasks):
    """Per-image masks in ``folder``, matched by relative path and stem.

    ``template`` names the mask of an input (fields ``{stem}``, ``{name}``, ``{ext}``, ``{relpath}``); when that
    file is missing, any image file at the same relative path with the same stem is taken.
    """

    folder: Path
    template: str = "{stem}.png"

    def __post_init__(self) -> None:
        self.folder = Path(self.folder)
        if not self.folder.is_dir():
            raise OptionError("masks", f"{self.folder} is not a folder")

    def pair(self, source: Source) -> Path | None:
        if source.path == STDIN:
            raise InputError("`masks` pairs files by name; an image on stdin needs `mask=FILE`, `alpha` or `method`")
        return find_mask(self.folder, source, self.template)


def find_mask(folder: Path, source: Source, template: str = "{stem}.png") -> Path:
    """The mask file for ``source`` in ``folder``: the template rendered at the same relative path, else any
    image file there with the same stem. Raises :class:`InputError` saying where it looked.
    """
    rel = source.relpath
    stem = PurePosixPath(rel.name).stem
    fields = {"stem": stem, "name": rel.name, "ext": PurePosixPath(rel.name).suffix.lstrip("."),
              "relpath": str(rel.with_suffix("")), "index": 0}
    try:
        rendered = template.format(**fields)
    except (KeyError, IndexError, ValueError) as error:
        raise OptionError("mask_name", f"bad template {template!r}: {error}") from None
    candidate = folder / (rendered if "{relpath" in template else rel.parent / rendered)
    siblings = folder / rel.parent
    unreadable: list[tuple[Path, str]] = []  # found, but not a file to read (a FIFO, a device): said, not skipped
    for path in (candidate, *(siblings / f"{stem}{suffix}" for suffix in sorted(IMAGE_SUFFIXES))):
        problem = regular_file_problem(path, "an image")
        if problem is None:
            return path
        if problem != "no such file":
            unreadable.append((path, problem))
    if unreadable:
        path, problem = unreadable[0]
        raise InputError(f"mask {path}: {problem}")
    raise InputError(f"no mask found (looked for {candidate})")


@mask_sources.register("file")
@dataclasses.dataclass
class StaticMask:
    """One mask file for every image (read once per process)."""

    path: Path
    method: ClassVar[Any] = None
    _mask: np.ndarray | None = dataclasses.field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        self.path = Path(self.path)
        problem = regular_file_problem(self.path, "an image")
        if problem is not None:
            raise OptionError("mask", f"{self.path}: {problem}")

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_mask": None}  # each worker reads the mask once for itself

    def pair(self, source: Source) -> Path | None:
        return None

    def load(self, item: Item, image: Image, *, max_pixels: int) -> np.ndarray | None:
        if self._mask is None:
            self._mask = read_mask_file(self.path, max_pixels)
        return self._mask


@mask_sources.register("alpha")
@dataclasses.dataclass
class AlphaMasks:
    """Each image's own alpha channel."""

    method: ClassVar[Any] = None

    def pair(self, source: Source) -> Path | None:
        return None

    def load(self, item: Item, image: Image, *, max_pixels: int) -> np.ndarray | None:
        if image.alpha is None:
            raise InputError("image has no alpha channel to use as its mask")
        return image.alpha


@mask_sources.register("records")
class SegmentRecords(_FileMasks):
    """The masks that ``maskcli segment --json`` wrote, read from its records (one JSON object per line).

    The records are the inputs too: :meth:`sources` yields each record's image, and :meth:`pair` its mask.

    >>> records = SegmentRecords(['{"input": "a.jpg", "relpath": "a.jpg", "output": "m/a.png"}', "not json"])
    >>> [(s.path, s.error) for s in records.sources()]
    [('a.jpg', None), ('<stdin line 2>', 'not a maskcli record (expected a JSON object with input and output)')]
    >>> records.pair(Source("a.jpg", PurePosixPath("a.jpg")))
    PosixPath('m/a.png')
    """

    def __init__(self, lines: Iterable[str] | IO[str]) -> None:
        self.lines = lines
        self._masks: dict[str, str] = {}

    def __getstate__(self) -> dict[str, Any]:
        return {"lines": (), "_masks": {}}  # pairing happens while planning, in the calling process

    def sources(self) -> Iterator[Source]:
        for number, line in enumerate(self.lines, start=1):
            line = line.strip()
            if not line:
                continue
            try:
                record = json.loads(line)
                image = record["input"]
            except (ValueError, KeyError, TypeError):
                yield Source(f"<stdin line {number}>", PurePosixPath(f"line{number}"),
                             error="not a maskcli record (expected a JSON object with input and output)")
                continue
            source = Source(image, PurePosixPath(record.get("relpath") or Path(image).name))
            if record.get("status") == "failed" or not record.get("output"):
                source.error = f"no mask: segment failed ({record.get('error') or 'no output'})"
            else:
                self._masks[image] = record["output"]
            yield source

    def pair(self, source: Source) -> Path | None:
        path = self._masks.pop(source.path, None)
        if path is None:
            raise InputError("no mask for this image")
        return Path(path)


@mask_sources.register("method")
@dataclasses.dataclass
class MethodMasks:
    """Masks made on the fly by a mask method (any registered method, the CNN included)."""

    method: Any

    def pair(self, source: Source) -> Path | None:
        return None

    def load(self, item: Item, image: Image, *, max_pixels: int) -> np.ndarray | None:
        return None  # made from the decoded image, in the job's compute stage (batched for a CNN)


def open_masks(path: str | Path, template: str = "{stem}.png", classes: Iterable[str] | None = None) -> Any:
    """The mask source a path given as "the masks" names: a COCO file (``*.json``), a folder of label images (with
    ``labels.json``), or else a folder of per-image masks named by ``template``.

    Parameters
    ----------
    path : path
        The COCO file or the folder.
    template : str
        For a folder of masks: the mask file name of an input (see :class:`MaskFolder`).
    classes : iterable of str, optional
        For a COCO file or label images: the classes whose union is the mask (default all). Plain masks have one
        class, so choosing classes of a folder of them is an :class:`~maskcli.errors.OptionError`.

    Returns
    -------
    MaskSource
        A ``coco``, ``labels`` or ``folder`` source; :attr:`problems` of a COCO file or label folder lists what
        in it was left out.

    Raises
    ------
    OptionError
        ``path`` is neither a folder nor a COCO file.
    """
    from maskcli.formats.sources import open_mask_set

    chosen = list(classes) if classes else None
    annotations = open_mask_set(path, chosen)
    if annotations is not None:
        return annotations
    if not Path(path).is_dir():
        raise OptionError("masks", f"{path} is neither a folder nor a COCO file (.json)")
    return MaskFolder(Path(path), template)


__all__ = ["AlphaMasks", "MaskFolder", "MaskSource", "MethodMasks", "SegmentRecords", "StaticMask", "find_mask",
           "mask_sources", "open_masks", "paired", "read_mask_file"]
