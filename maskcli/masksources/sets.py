"""A COCO file (``coco``) or a folder of label images (``labels``) as a source of masks, matched to images by file
name (:mod:`maskcli.io.pairing`).

Both answer the same two questions, so ``apply`` (masks for images) and ``eval`` (truths for predictions) take
either: which images do you have masks for (:meth:`keys`, by relative path without suffix), and what is the mask
of this one (:meth:`mask`), restricted to the chosen classes.

>>> open_mask_set("masks/")  # a plain folder of masks: not an annotation set
"""

from __future__ import annotations

import abc
import os
from collections.abc import Iterable, Sequence
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np

from maskcli.errors import InputError, OptionError
from maskcli.io.pairing import KeyIndex, name_key
from maskcli.masksources.base import mask_sources
from maskcli.masksources.files import MaskFolder


class _MaskSet(abc.ABC):
    """What both kinds share: the mask source interface of ``apply`` (pair while planning, load per item)."""

    #: Masks come from the set, not from a method run on the image.
    method = None

    @abc.abstractmethod
    def mask(self, relpath: str | PurePosixPath, shape: tuple[int, int] | None = None) -> np.ndarray:
        """The mask of the image at ``relpath`` (``shape``: the image's height and width, where known)."""

    def pair(self, source: Any) -> Path | None:
        """No mask file of its own per image: an image the set does not name fails now, with the reason."""
        self.mask_entry(source.relpath)
        return None

    def load(self, item: Any, image: Any, *, max_pixels: int = 0) -> np.ndarray:
        """The mask of a decoded image (its size checked where the set records one)."""
        return self.mask(item.source.relpath, (image.height, image.width))

    @abc.abstractmethod
    def mask_entry(self, relpath: str | PurePosixPath) -> Any:
        """The set's entry for the image at ``relpath``; an :class:`InputError` when it has none."""


@mask_sources.register("coco")
class CocoMasks(_MaskSet):
    """The masks of a COCO file: for an image, the union of its annotations of the chosen categories.

    Parameters
    ----------
    path : path
        The COCO JSON file.
    classes : sequence of str, optional
        Category names to keep (default: all); an unknown name is an :class:`OptionError`.
    """

    def __init__(self, path: str | os.PathLike[str], classes: Sequence[str] | None = None) -> None:
        from maskcli.formats.coco import CocoAnnotations, pycocotools_mask

        pycocotools_mask()  # a missing extra stops the run before any image
        self.path = str(path)
        self.coco = CocoAnnotations.load(path)
        self.category_ids = self.coco.category_ids(classes)

    @property
    def problems(self) -> list[str]:
        return [f"{self.path}: {problem}" for problem in self.coco.problems]

    def keys(self) -> dict[str, str]:
        """Key (relative path without suffix) → the image's name in the file."""
        return {key: image.file_name for key, image in self.coco.images.items()}

    def mask(self, relpath: str | PurePosixPath, shape: tuple[int, int] | None = None) -> np.ndarray:
        """The mask of the image at ``relpath``; ``shape`` (the image's height, width) must match the file's."""
        return self.coco.mask(self.mask_entry(relpath), shape, self.category_ids)

    def mask_entry(self, relpath: str | PurePosixPath) -> Any:
        image = self.coco.find(relpath)
        if image is None:
            raise InputError(f"{self.path} has no image named {PurePosixPath(str(relpath)).name}")
        return image


@mask_sources.register("labels")
class LabelMasks(_MaskSet):
    """The masks of a folder of label images (with ``labels.json``): the union of the chosen classes."""

    def __init__(self, folder: str | os.PathLike[str], classes: Sequence[str] | None = None) -> None:
        from maskcli.formats.labels import LabelFolder
        from maskcli.io.sources import walk_folder

        self.path = str(folder)
        self.folder = LabelFolder.open(folder)
        self.classes = self.folder.check_classes(classes)
        self.problems: list[str] = []
        self._files: KeyIndex[str] = KeyIndex()
        for source in walk_folder(Path(folder), recursive=True):
            if source.error or not self._files.add(name_key(source.relpath), source.path):
                self.problems.append(f"{source.path}: {source.error or 'same name as another label image'}; "
                                     "ignored")

    def keys(self) -> dict[str, str]:
        return dict(self._files)

    def mask(self, relpath: str | PurePosixPath, shape: tuple[int, int] | None = None) -> np.ndarray:
        """The mask of the image at ``relpath`` (its size is the label image's; fitting it is the caller's)."""
        return self.folder.mask(self.mask_entry(relpath), self.classes)

    def pair(self, source: Any) -> Path:
        """The label image this input's mask comes from: an input of the batch, which no output may replace."""
        return Path(self.mask_entry(source.relpath))

    def mask_entry(self, relpath: str | PurePosixPath) -> Any:
        key = name_key(relpath)
        path = self._files.find(key)
        if path is None:
            raise InputError(f"no label image named {PurePosixPath(key).name}.* in {self.path}")
        return path


def open_mask_set(path: str | os.PathLike[str], classes: Sequence[str] | None = None) -> CocoMasks | LabelMasks | None:
    """A COCO file (``*.json``) or a label folder (holding ``labels.json``) as masks; None for anything else.

    Choosing classes of anything else is an :class:`OptionError`: plain masks have one class.
    """
    from maskcli.formats.labels import has_legend

    path = Path(path)
    if is_coco_file(path):
        return CocoMasks(path, classes)
    if has_legend(path):
        return LabelMasks(path, classes)
    if classes:
        raise OptionError("class", f"{path} is neither a COCO file nor a folder of label images (with "
                                   "labels.json); its masks have no classes to choose from")
    return None


def is_coco_file(path: str | os.PathLike[str]) -> bool:
    """Whether ``path`` names a COCO file (by its ``.json`` suffix; its content is checked when read)."""
    return Path(path).suffix.lower() == ".json" and not Path(path).is_dir()


def open_mask_sets(paths: Sequence[str | os.PathLike[str]],
                   classes: Sequence[str] | None = None) -> list[CocoMasks | LabelMasks | None]:
    """:func:`open_mask_set` for each path, ``classes`` applying to those that are mask sets; choosing classes
    when none is one is an :class:`OptionError`."""
    return [open_mask_set(path, chosen) for path, chosen in zip(paths, classes_for(paths, classes))]


def classes_for(paths: Sequence[str | os.PathLike[str]],
                classes: Sequence[str] | None) -> list[Sequence[str] | None]:
    """``classes`` for each path that is a mask set (a COCO file, label images), None for the others; choosing
    classes when no path is a mask set is an :class:`OptionError`."""
    from maskcli.formats.labels import has_legend

    sets = [is_coco_file(path) or has_legend(path) for path in paths]
    if classes and not any(sets):
        open_mask_set(paths[-1], classes)  # raises, naming the path
    return [classes if is_set else None for is_set in sets]


def open_masks(path: str | os.PathLike[str], template: str = "{stem}.png", classes: Iterable[str] | None = None) -> Any:
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
    chosen = list(classes) if classes else None
    annotations = open_mask_set(path, chosen)
    if annotations is not None:
        return annotations
    if not Path(path).is_dir():
        raise OptionError("masks", f"{path} is neither a folder nor a COCO file (.json)")
    return MaskFolder(Path(path), template)
