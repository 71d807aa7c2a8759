"""Images (or predictions) paired with their true masks, as ``maskcli eval``, ``train`` and ``preview`` pair them.

The truths are a folder of mask files (paired by :func:`maskcli.io.pairing.pair_files`), or a COCO file or a folder
of label images (a mask set of :mod:`maskcli.masksources.sets`, paired by the key of each entry's file name, else
its stem). Either way a caller gets the :class:`~maskcli.io.pairing.Pairing` and a reader of a pair's truth.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from maskcli.errors import SetupError
from maskcli.io.pairing import KeyIndex, Pair, Pairing, index_files, pair_files, pair_indexes
from maskcli.masksources.sets import open_mask_set

__all__ = ["pair_sets", "pair_truths", "read_truth_file", "set_reader"]


def read_truth_file(pair: Pair) -> np.ndarray:
    """A pair's truth read from its mask file, in the mask convention."""
    from maskcli.io.masks import read_mask

    return read_mask(pair.truth)


def pair_truths(images: str | os.PathLike[str], truths: str | os.PathLike[str],
                classes: Sequence[str] | None = None) -> tuple[Pairing, Callable[[Pair], np.ndarray]]:
    """Pair images with their true masks as ``maskcli eval`` and ``maskcli train`` do, and say how to read a truth.

    ``truths`` is a folder of mask files (paired by relative path and stem, :func:`~maskcli.io.pairing.pair_files`),
    a COCO file or a folder of label images with its ``labels.json`` (paired by the key of each entry's file name,
    the mask being the union of ``classes``, default all; :func:`pair_sets`).

    Returns
    -------
    Pairing
        The pairs and what could not be paired.
    callable
        Reads a pair's truth in the mask convention (float32 H×W in [0, 1]); picklable, for worker processes.

    Examples
    --------
    >>> import tempfile
    >>> from maskcli.io.files import write_atomic
    >>> from maskcli.io.masks import encode_mask
    >>> scratch = tempfile.TemporaryDirectory(); root = Path(scratch.name)
    >>> write_atomic(root / "photos" / "a.jpg", b"not decoded here")
    >>> write_atomic(root / "truth" / "a.png", encode_mask(np.ones((2, 3), np.float32)))
    >>> pairing, read_truth = pair_truths(root / "photos", root / "truth")
    >>> [pair.key for pair in pairing.pairs], read_truth(pairing.pairs[0]).shape
    (['a'], (2, 3))
    >>> scratch.cleanup()
    """
    truth_set = open_mask_set(truths, classes)
    if truth_set is None:
        return pair_files(images, truths), read_truth_file
    return pair_sets(images, truths, None, truth_set), _SetReader(truth_set, _set_keys(truths, truth_set), "truth")


def set_reader(path: Any, mask_set: Any, side: str) -> Callable[[Pair], np.ndarray] | None:
    """Reads one side (``"source"`` or ``"truth"``) of pairs from a mask set, by the name :func:`pair_sets` gave
    it; None when the side is not a set."""
    if mask_set is None:
        return None
    return _SetReader(mask_set, _set_keys(path, mask_set), side)


def _set_keys(path: Any, mask_set: Any) -> dict[str, str]:
    """The set's keys under the names :func:`pair_sets` gives its entries."""
    return {_set_name(path, name): key for key, name in mask_set.keys().items()}


@dataclasses.dataclass
class _SetReader:
    """One side of pairs read from a mask set; a class, not a closure, so that worker processes get it."""

    mask_set: Any
    keys: dict[str, str]
    side: str

    def __call__(self, pair: Pair) -> np.ndarray:
        return self.mask_set.mask(self.keys[getattr(pair, self.side)])


def _set_name(path: Any, name: str) -> str:
    """How a pair names an entry of a mask set: the set's path and the entry's name."""
    return f"{Path(path)}:{name}"


def pair_sets(sources: str | os.PathLike[str], truths: str | os.PathLike[str], source_set: Any = None,
              truth_set: Any = None) -> Pairing:
    """Pair by key (relative path without suffix, else a stem only one truth has) when a side is a COCO file or
    label images (a mask set of :mod:`maskcli.masksources.sets`, given as ``source_set`` / ``truth_set``) and the
    other may be a folder. The unpaired of each side are named by their keys."""
    sides = []
    problems: list[tuple[str, str]] = []
    for path, mask_set in ((sources, source_set), (truths, truth_set)):
        path = Path(path)
        if mask_set is not None:
            problems += [(str(path), problem) for problem in mask_set.problems]
            sides.append({key: _set_name(path, name) for key, name in mask_set.keys().items()})
            continue
        if not path.exists():
            raise SetupError(f"{path}: no such file or folder")
        sides.append({key: source.path for key, source in index_files(path, problems).items()})
    left, right = sides
    index: KeyIndex[str] = KeyIndex()
    for key, name in right.items():
        index.add(key, name)
    return pair_indexes(left, index, problems)
