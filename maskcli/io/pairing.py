"""Which file goes with which: the one pairing rule of ``eval``, ``train``, ``preview``, ``export`` and the mask
sources.

Files pair by **key**, the relative path without its suffix: ``sub/a.jpg`` (an image) and ``sub/a.png`` (its mask
or its truth) share the key ``sub/a``. Where a side may be laid out differently (a COCO file naming ``a.jpg`` for
the image ``photos/a.jpg``, label images in another folder tree), a key also finds the one entry with the same
**stem** (``a``), when no other entry has that stem. A key held by two files of one side (``a.png`` and ``a.jpg``)
keeps its first file in name order; the others are reported, never silently dropped.

Only paths are handled here, never pixels.

Examples
--------
>>> index = KeyIndex()
>>> for key in ("photos/a", "photos/b", "other/b"):
...     _ = index.add(key, key.upper())
>>> index.find(pair_key("sub/a.png")), index.find("b"), index.find(pair_key("photos/b.jpg")), index.find("c")
('PHOTOS/A', None, 'PHOTOS/B', None)
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Iterator, Mapping
from pathlib import Path, PurePosixPath
from typing import Generic, TypeVar

from maskcli.errors import SetupError
from maskcli.io.sources import Source, walk_folder

__all__ = ["KeyIndex", "Pair", "Pairing", "index_files", "listing", "name_key", "pair_files", "pair_indexes",
           "pair_key"]

T = TypeVar("T")


def pair_key(relpath: PurePosixPath | str) -> str:
    """The key that pairs files: the relative path without its suffix.

    >>> pair_key(PurePosixPath("sub/a.jpg")), pair_key("b.png"), pair_key("c.tar.png"), pair_key("d")
    ('sub/a', 'b', 'c.tar', 'd')
    """
    path = PurePosixPath(relpath)
    return str(path.with_suffix("")) if path.suffix else str(path)


def name_key(name: str | PurePosixPath) -> str:
    """The key of a name recorded in a file (a COCO entry's ``file_name``), where a backslash separates folders as
    Windows tools write them.

    >>> name_key("photos\\\\a.jpg"), name_key(PurePosixPath("b.png"))
    ('photos/a', 'b')
    """
    return pair_key(str(name).replace("\\", "/"))


def _stem(key: str) -> str:
    return PurePosixPath(key).name


class KeyIndex(Mapping[str, T], Generic[T]):
    """Entries by key, found by key or else by a stem that only one key has.

    A read-only mapping of key → entry, filled with :meth:`add` (the first entry of a key stays).

    >>> index = KeyIndex(); index.add("a", 1), index.add("a", 2), dict(index)
    (True, False, {'a': 1})
    """

    def __init__(self) -> None:
        self._entries: dict[str, T] = {}
        #: Stem → the key that has it, or None once two keys have it.
        self._stems: dict[str, str | None] = {}

    def add(self, key: str, entry: T) -> bool:
        """Index ``entry`` under ``key``; False (and nothing changes) when the key already has an entry."""
        if key in self._entries:
            return False
        self._entries[key] = entry
        stem = _stem(key)
        self._stems[stem] = None if stem in self._stems else key
        return True

    def match(self, key: str) -> str | None:
        """The indexed key that ``key`` pairs with: itself, else the only indexed key with its stem; else None.

        >>> index = KeyIndex(); _ = index.add("photos/a", 1); _ = index.add("x/b", 2); _ = index.add("y/b", 3)
        >>> index.match("photos/a"), index.match("a"), index.match("other/a"), index.match("b")
        ('photos/a', 'photos/a', 'photos/a', None)
        """
        return key if key in self._entries else self._stems.get(_stem(key))

    def find(self, key: str) -> T | None:
        """The entry that ``key`` pairs with (:meth:`match`), or None."""
        match = self.match(key)
        return None if match is None else self._entries[match]

    def __getitem__(self, key: str) -> T:
        return self._entries[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._entries)

    def __len__(self) -> int:
        return len(self._entries)

    def __repr__(self) -> str:
        return f"KeyIndex({self._entries!r})"


@dataclasses.dataclass
class Pair:
    """A prediction (or an image) and its truth (or its mask), found under the same key."""

    key: str
    source: str
    truth: str
    #: The frame of a video ``source`` this pair holds, counted from 1 (:mod:`maskcli.io.frames` reads it); None
    #: for a still image.
    frame: int | None = None


@dataclasses.dataclass
class Pairing:
    """Pairs in key order, and the files of each side that found no partner (or whose listing failed)."""

    pairs: list[Pair]
    unpaired_sources: list[str]
    unpaired_truths: list[str]
    #: Files (or folders) that could not be listed or share a key with another file, with the reason.
    problems: list[tuple[str, str]] = dataclasses.field(default_factory=list)


def listing(path: Path) -> Iterator[Source]:
    """The image files under ``path`` (walked recursively, in name order), or ``path`` itself when it is a file."""
    if path.is_dir():
        yield from walk_folder(path, recursive=True)
    elif path.exists():
        yield Source(str(path), PurePosixPath(path.name))
    else:
        yield Source(str(path), PurePosixPath(path.name), error="no such file or folder")


def index_files(path: Path, problems: list[tuple[str, str]] | None = None) -> KeyIndex[Source]:
    """The image files under ``path`` by key; unreadable entries and later files of a key taken are added to
    ``problems`` with the reason (when given).

    >>> import tempfile
    >>> scratch = tempfile.TemporaryDirectory(); root = Path(scratch.name)
    >>> for name in ("a.jpg", "a.png", "sub/b.png"):
    ...     (root / name).parent.mkdir(exist_ok=True); _ = (root / name).write_bytes(b"")
    >>> problems = []; index = index_files(root, problems)
    >>> sorted(index), index["a"].relpath.as_posix(), [why for _, why in problems]
    (['a', 'sub/b'], 'a.jpg', ['same name as ...a.jpg; only that one is used'])
    >>> scratch.cleanup()
    """
    index: KeyIndex[Source] = KeyIndex()
    for source in listing(path):
        if source.error:
            if problems is not None:
                problems.append((source.path, source.error))
        elif not index.add(pair_key(source.relpath), source) and problems is not None:
            problems.append((source.path, f"same name as {index[pair_key(source.relpath)].path}; only that one "
                                          "is used"))
    return index


def pair_files(sources: str | os.PathLike[str], truths: str | os.PathLike[str]) -> Pairing:
    """Pair the image files under ``sources`` with those under ``truths`` by key (relative path and stem).

    Both folders are walked recursively. Two single files pair with each other whatever their names. A key held by
    two files of one side (``a.png`` and ``a.jpg``) pairs its first file in name order; the others are reported
    in ``problems``. The unpaired files are named by their relative paths.

    Examples
    --------
    >>> import tempfile
    >>> scratch = tempfile.TemporaryDirectory(); root = Path(scratch.name)
    >>> for name in ("pred/a.png", "pred/sub/b.png", "pred/c.png", "gt/a.png", "gt/sub/b.png", "gt/d.png"):
    ...     (root / name).parent.mkdir(parents=True, exist_ok=True); _ = (root / name).write_bytes(b"")
    >>> pairing = pair_files(root / "pred", root / "gt")
    >>> [p.key for p in pairing.pairs], pairing.unpaired_sources, pairing.unpaired_truths
    (['a', 'sub/b'], ['c.png'], ['d.png'])
    >>> scratch.cleanup()
    """
    sources, truths = Path(sources), Path(truths)
    if sources.is_file() and truths.is_file():
        return Pairing([Pair(pair_key(sources.name), str(sources), str(truths))], [], [])
    for path in (sources, truths):
        if not path.exists():
            raise SetupError(f"{path}: no such file or folder")
    problems: list[tuple[str, str]] = []
    truth_index = index_files(truths, problems)
    source_index = index_files(sources, problems)
    pairs = [Pair(key, source.path, truth_index[key].path) for key, source in source_index.items()
             if key in truth_index]
    frames = _video_frame_pairs(source_index, truth_index)
    pairs += frames
    taken = {pair.key for pair in pairs}
    videos = {PurePosixPath(pair.key).parent.as_posix() for pair in frames}
    unpaired_sources = [str(source.relpath) for key, source in source_index.items()
                        if key not in truth_index and key not in videos]
    unpaired_truths = sorted(str(truth.relpath) for key, truth in truth_index.items() if key not in taken)
    pairs.sort(key=lambda pair: pair.key)
    return Pairing(pairs, unpaired_sources, unpaired_truths, problems)


def _video_frame_pairs(sources: KeyIndex[Source], truths: KeyIndex[Source]) -> list[Pair]:
    """A video ``clip.mp4`` paired with the per-frame files ``clip/000001.png`` … (the names ``maskcli segment``
    gives a video's frames): one pair per numbered file, the frame being its number."""
    by_parent: dict[str, list[tuple[str, int]]] = {}
    for key in truths:
        parent, _, name = key.rpartition("/")
        if name.isdigit() and int(name) >= 1:
            by_parent.setdefault(parent, []).append((key, int(name)))
    if not by_parent:
        return []
    if "" in by_parent and len(sources) == 1:  # one video, and its frames' folder itself
        by_parent[next(iter(sources))] = by_parent.pop("")
    from maskcli.io.video import is_video_path

    pairs = []
    for key, source in sources.items():
        numbered = by_parent.get(key)
        if numbered and key not in truths and is_video_path(source.path):
            pairs += [Pair(frame_key, source.path, truths[frame_key].path, frame) for frame_key, frame in numbered]
    return pairs


def pair_indexes(left: Mapping[str, str], right: KeyIndex[str],
                 problems: list[tuple[str, str]] | None = None) -> Pairing:
    """Pair two sides given as key → name, a left key finding its right partner by key or else by stem
    (:meth:`KeyIndex.match`); the unpaired of each side are named by their keys.

    >>> right = KeyIndex(); _ = right.add("photos/a", "A.png"); _ = right.add("photos/c", "C.png")
    >>> pairing = pair_indexes({"a": "a.png", "b": "b.png"}, right)
    >>> [(p.key, p.source, p.truth) for p in pairing.pairs], pairing.unpaired_sources, pairing.unpaired_truths
    ([('a', 'a.png', 'A.png')], ['b'], ['photos/c'])
    """
    pairs = []
    unpaired = []
    used = set()
    for key in sorted(left):
        match = right.match(key)
        if match is None:
            unpaired.append(key)
        else:
            used.add(match)
            pairs.append(Pair(key, left[key], right[match]))
    return Pairing(pairs, unpaired, sorted(key for key in right if key not in used), list(problems or []))
