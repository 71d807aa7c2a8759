"""Command-line inputs to a stream of items, each with a safe destination.

Inputs are files, folders (``recursive`` mirrors the tree under the output folder), glob patterns, lists of paths
(a file or stdin, newline- or NUL-separated) and ``-`` for one image on stdin. Nothing here reads a pixel: the
stream is lazy, so a folder of a million files costs no memory up front.

Destinations come from a name template rendered under the output folder. A destination is refused, with a reason
the item reports, when it would leave the output folder (``..``, absolute parts, symlinks), when it is the item's
own input, or when it exists and the policy says so: by default an existing output is an error (nothing is ever
replaced silently); ``skip`` resumes a batch, ``overwrite`` replaces.
"""

from __future__ import annotations

import dataclasses
import glob
import io
import os
import stat
import string
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path, PurePosixPath
from typing import BinaryIO, Literal

from maskcli.errors import InputError, OptionError
from maskcli.io.decode import DEFAULT_MAX_PIXELS, IMAGE_SUFFIXES, read_bounded
from maskcli.io.video import VIDEO_SUFFIXES

Existing = Literal["error", "skip", "overwrite"]
STDIN = "-"


@dataclasses.dataclass
class Source:
    """One input: a path (or ``-`` for stdin) and its path relative to the folder it was found in."""

    path: str
    relpath: PurePosixPath
    #: Set when the input could not even be listed (a glob that matches nothing): the item fails with it.
    error: str | None = None
    #: The input's bytes, when it was read from a stream (``-``: one image on stdin) rather than a file.
    data: bytes | None = dataclasses.field(default=None, repr=False)
    #: The part of the file this input is, when not the whole file: a video's frame, numbered from 1.
    part: int | None = None


@dataclasses.dataclass
class Item:
    """One unit of work: a source, its destination, and the mask file paired with it (apply)."""

    index: int
    source: Source
    destination: Path | None = None  # None: the output goes to a stream
    skip: bool = False
    error: str | None = None
    #: The mask file a mask source paired with this input (a mask folder, segment's records), if any.
    mask: Path | None = None

    @property
    def name(self) -> str:
        return self.source.path

    @property
    def inputs(self) -> list[str]:
        """Every file this item reads: its source, and its mask when it is paired with one."""
        paths = [] if self.source.path == STDIN else [self.source.path]
        if self.mask is not None:
            paths.append(os.fspath(self.mask))
        return paths


def _identity(path: str | int) -> tuple[str | None, tuple[int, int] | None]:
    """A file's real path, and its device and inode when it exists (a hard link has another path, same inode).

    An int is an open file (0: stdin): a regular file behind it has a device and inode, and no path.
    """
    if isinstance(path, int):
        try:
            info = os.fstat(path)
        except OSError:
            return None, None
        return None, ((info.st_dev, info.st_ino) if stat.S_ISREG(info.st_mode) else None)
    real = os.path.realpath(path)
    try:
        info = os.stat(real)
    except OSError:
        return real, None
    return real, (info.st_dev, info.st_ino)


def same_file(a: str | os.PathLike[str], b: str | os.PathLike[str]) -> bool:
    """Whether two paths name one file (the same real path, or the same device and inode).

    >>> same_file("samples/coins.png", "samples/./coins.png"), same_file("samples/coins.png", "samples/nope.png")
    (True, False)
    """
    real_a, inode_a = _identity(os.fspath(a))
    real_b, inode_b = _identity(os.fspath(b))
    return real_a == real_b or (inode_a is not None and inode_a == inode_b)


def _input_name(path: str | os.PathLike[str] | int) -> str:
    return ("stdin" if path == 0 else f"file descriptor {path}") if isinstance(path, int) else os.fspath(path)


def guard_inputs(items: Iterable[Item], also: Iterable[str | os.PathLike[str] | int] = ()) -> list[Item]:
    """The batch with every input known before anything is written: duplicates dropped, and each destination
    that is, or resolves to, any input of the batch refused.

    An input given twice (``a.png a.png``, a folder and a file in it) is processed once, under its first name.
    A destination is an input when its real path, or its device and inode, is an input's: whatever the policy
    for existing outputs, so ``--overwrite`` never replaces an input. ``also``: files the whole batch reads (one
    static mask, a background image, a list of paths), as paths, or as open file descriptors (``0``: stdin, when
    a regular file is redirected to it). The list is built in full, so this reads every entry of a path list
    before the first write.

    >>> a = Item(0, Source("samples/coins.png", PurePosixPath("coins.png")), destination=Path("samples/coins.png"))
    >>> b = Item(1, Source("samples/./coins.png", PurePosixPath("coins.png")))
    >>> [item.error for item in guard_inputs([a, b])]  # doctest: +ELLIPSIS
    ['output samples/coins.png is the input itself; ...']
    """
    items = list(items)
    reals: dict[str, str] = {}
    inodes: dict[tuple[int, int], str] = {}
    kept: list[Item] = []
    seen: set[object] = set()
    for path in also:
        real, inode = _identity(path if isinstance(path, int) else os.fspath(path))
        if real is not None:
            reals.setdefault(real, _input_name(path))
        if inode is not None:
            inodes.setdefault(inode, _input_name(path))
    for item in items:
        for number, path in enumerate(item.inputs):
            real, inode = _identity(path)
            assert real is not None
            reals.setdefault(real, path)
            if inode is not None:
                inodes.setdefault(inode, path)
            if number == 0 and not item.source.error:
                key = (inode or real, item.source.part)  # a video's frames are inputs each
                if key in seen:
                    break  # the same input again: once is enough
                seen.add(key)
        else:
            kept.append(item)
    for item in kept:
        if item.destination is None or item.error:
            continue
        real, inode = _identity(os.fspath(item.destination))
        owner = reals.get(real or "") or (inodes.get(inode) if inode is not None else None)
        if owner is None:
            continue
        item.skip = False
        own_real, own_inode = _identity(item.inputs[0]) if item.inputs else ("", None)
        if real == own_real or (inode is not None and inode == own_inode):
            item.error = f"output {item.destination} is the input itself; choose another output folder or name"
        else:
            item.error = (f"output {item.destination} is {owner}, an input of this batch; "
                          "choose another output folder or name")
    return kept


def _is_image_name(name: str) -> bool:
    suffix = os.path.splitext(name)[1].lower()
    return suffix in IMAGE_SUFFIXES or suffix in VIDEO_SUFFIXES


def walk_folder(root: Path, *, recursive: bool, exclude: Iterable[str | os.PathLike[str]] = ()) -> Iterator[Source]:
    """Image and video files of a folder in name order, lazily; sub-folders only when ``recursive``.

    Symlinked folders are not followed (a loop would never end); symlinked files are read like files. Sub-folders
    in ``exclude`` (the trees the run writes: its output folder inside the input folder) are not entered, so a
    second run never takes the first one's outputs as inputs.
    """
    skipped = {os.path.realpath(folder) for folder in exclude}
    try:
        entries = sorted(os.scandir(root), key=lambda entry: entry.name)
    except OSError as error:
        yield Source(str(root), PurePosixPath(root.name), error=f"cannot list folder: {error.strerror or error}")
        return
    stack = [(entries, PurePosixPath())]
    while stack:
        entries, prefix = stack.pop()
        folders = []
        for entry in entries:
            try:
                if entry.is_dir(follow_symlinks=False):
                    if recursive and not (skipped and os.path.realpath(entry.path) in skipped):
                        folders.append(entry)
                    continue
            except OSError:
                continue
            if _is_image_name(entry.name) and not entry.name.startswith("."):
                yield Source(entry.path, prefix / entry.name)
        for folder in reversed(folders):
            try:
                children = sorted(os.scandir(folder.path), key=lambda entry: entry.name)
            except OSError as error:
                reason = f"cannot list folder: {error.strerror or error}"
                yield Source(folder.path, prefix / folder.name, error=reason)
                continue
            stack.append((children, prefix / folder.name))


def nested_in_inputs(inputs: Iterable[str], folders: Iterable[str | os.PathLike[str]]) -> list[tuple[str, str]]:
    """The ``folders`` (a run's output trees) that lie inside an input folder, each with that input: a recursive
    walk leaves them out (:func:`walk_folder`), and the caller may say so.

    >>> nested_in_inputs(["photos"], ["photos/masks", "elsewhere"])
    [('photos/masks', 'photos')]
    """
    roots = [(raw, os.path.realpath(raw)) for raw in inputs if raw != STDIN and not glob.has_magic(raw)]
    found = []
    for folder in folders:
        real = os.path.realpath(folder)
        for raw, root in roots:
            if real != root and real.startswith(root.rstrip(os.sep) + os.sep):
                found.append((os.fspath(folder), raw))
                break
    return found


def expand_inputs(inputs: Iterable[str], *, recursive: bool = False,
                  exclude: Iterable[str | os.PathLike[str]] = ()) -> Iterator[Source]:
    """Files, folders, glob patterns and ``-`` to sources, in the order given. ``exclude``: folders a recursive
    walk does not enter (see :func:`walk_folder`).

    >>> import maskcli
    >>> samples = Path(maskcli.__file__).parents[1] / "samples"
    >>> [s.relpath.name for s in expand_inputs([str(samples / "c*.png"), str(samples / "missing.png")])]
    ['camera.png', 'cell.png', 'chelsea.png', 'coffee.png', 'coins.png', 'missing.png']
    """
    exclude = list(exclude)
    for raw in inputs:
        if raw == STDIN:
            yield Source(STDIN, PurePosixPath("stdin"))
            continue
        path = Path(raw)
        if path.is_dir():
            found = False
            for source in walk_folder(path, recursive=recursive, exclude=exclude):
                found = True
                yield source
            if not found:
                hint = "" if recursive else " (sub-folders are searched with `recursive=True`)"
                yield Source(raw, PurePosixPath(path.name), error=f"no images in this folder{hint}")
        elif os.path.lexists(raw):
            yield Source(raw, PurePosixPath(path.name))
        elif glob.has_magic(raw):
            matches = sorted(glob.iglob(raw, recursive=True))
            files = [m for m in matches if not os.path.isdir(m)]
            if not files:
                yield Source(raw, PurePosixPath(path.name), error="no files match this pattern")
            for match in files:
                yield Source(match, PurePosixPath(Path(match).name))
        else:
            yield Source(raw, PurePosixPath(path.name), error="no such file or folder")


def stream_source(stream: BinaryIO, max_pixels: int = DEFAULT_MAX_PIXELS) -> Source:
    """One input read whole from a binary stream (an image on stdin), no more than an image within
    ``max_pixels`` can need (a longer stream is that item's error, and is not read on).

    >>> stream_source(io.BytesIO(b"\\x89PNG...")).data[:4]
    b'\\x89PNG'
    >>> stream_source(io.BytesIO(b"x" * 20_000_000), max_pixels=1).error
    'stdin holds more than 16,777,232 bytes, more than an image within the pixel limit of 1 can need'
    """
    try:
        return Source(STDIN, PurePosixPath("stdin"), data=read_bounded(stream, max_pixels))
    except InputError as error:
        return Source(STDIN, PurePosixPath("stdin"), error=f"stdin holds {error}")


def listed_files(paths: Iterable[str]) -> Iterator[Source]:
    """Entries of a path list (``find … | maskcli``) as sources, each taken as one file, exactly.

    A list is already explicit, so nothing in it is expanded: a folder listed by ``find`` is an error for that
    entry (not a second, recursive walk), and a name with ``*`` in it is a name, not a pattern.
    """
    for raw in paths:
        error = None if os.path.lexists(raw) else "no such file"
        yield Source(raw, PurePosixPath(Path(raw).name), error=error)


def read_path_list(stream: BinaryIO | bytes, *, null: bool = False) -> Iterator[str]:
    """Paths from a list, lazily: newline-separated (blank lines skipped, ends trimmed), or NUL-separated with
    ``null`` (as ``find -print0`` writes them, names taken exactly).

    Read as a stream, so ``find ... | maskcli segment`` starts on the first path while ``find`` still runs.

    >>> list(read_path_list(b"a.png\\nb c.jpg\\n\\n"))
    ['a.png', 'b c.jpg']
    >>> list(read_path_list(b"a.png\\0b.png\\0", null=True))
    ['a.png', 'b.png']
    """
    if isinstance(stream, bytes):
        stream = io.BytesIO(stream)
    separator = b"\0" if null else b"\n"
    pending = b""
    while True:
        chunk = stream.read1(65536) if hasattr(stream, "read1") else stream.read(65536)
        if not chunk:
            break
        pending += chunk
        *complete, pending = pending.split(separator)
        for raw in complete:
            if (path := _list_entry(raw, null)) is not None:
                yield path
    if (path := _list_entry(pending, null)) is not None:
        yield path


def _list_entry(raw: bytes, null: bool) -> str | None:
    text = os.fsdecode(raw) if null else os.fsdecode(raw.rstrip(b"\r")).strip()
    return text if text.strip() else None


#: The fields of a name template, with a value of each kind for checking a template before any item.
TEMPLATE_FIELDS = {"stem": "a", "name": "a.png", "ext": "png", "relpath": "a", "index": 0, "frame": 1}


def check_template(template: str) -> None:
    """Refuse a name template that uses anything but its documented fields (with format specs, as in
    ``{index:05d}``): attribute or item access, conversions and positional fields are usage errors, as is a
    template that names no file.

    >>> check_template("{stem}_{index:03d}.png")
    >>> check_template("{stem.__class__}.png")
    Traceback (most recent call last):
    ...
    maskcli.errors.OptionError: template: unknown field {stem.__class__} in the name template; use {stem}, {name}, ...
    """
    fields = ", ".join(f"{{{field}}}" for field in list(TEMPLATE_FIELDS)[:-1]) + f" or {{{list(TEMPLATE_FIELDS)[-1]}}}"
    try:
        parsed = list(string.Formatter().parse(template))
    except ValueError as error:
        raise OptionError("template", f"bad name template {template!r}: {error}") from None
    for _, field, spec, conversion in parsed:
        if field is None:
            continue
        if field not in TEMPLATE_FIELDS:
            raise OptionError("template", f"unknown field {{{field}}} in the name template; use {fields}, with a "
                                          "format spec if need be ({index:05d})")
        if conversion or "{" in (spec or ""):
            shown = f"{{{field}!{conversion}}}" if conversion else f"{{{field}:{spec}}}"
            raise OptionError("template", f"{shown} in the name template: a field takes a format spec only, "
                                          "as in {index:05d}")
    try:
        name = PurePosixPath(template.format(**TEMPLATE_FIELDS).replace("\\", "/")).name
    except (ValueError, TypeError) as error:
        raise OptionError("template", f"bad name template {template!r}: {error}") from None
    if name in ("", ".", ".."):
        raise OptionError("template", f"the name template {template!r} names no file; e.g. {{stem}}.png")


def render_name(template: str, relpath: PurePosixPath, *, index: int = 0, frame: int = 1) -> PurePosixPath:
    """The file a name template gives the input at ``relpath``, relative to the folder it goes in: under the input's
    sub-folder unless the template uses ``{relpath}`` (fields: see :class:`Destinations`). An output's name and a
    mask's expected name are both rendered here; a bad template raises ``KeyError``, ``IndexError`` or
    ``ValueError``.

    >>> render_name("{stem}_mask.png", PurePosixPath("sub/a.b.jpg")).as_posix()
    'sub/a.b_mask.png'
    >>> render_name("{relpath}-{index:03d}.{ext}", PurePosixPath("sub/a.jpg"), index=7).as_posix()
    'sub/a-007.jpg'
    """
    fields = {
        "stem": PurePosixPath(relpath.name).stem,
        "name": relpath.name,
        "ext": PurePosixPath(relpath.name).suffix.lstrip("."),
        "relpath": str(relpath.with_suffix("")) if relpath.suffix else str(relpath),
        "index": index,
        "frame": frame,
    }
    relative = PurePosixPath(template.format(**fields).replace("\\", "/"))
    return relative if "{relpath" in template else relpath.parent / relative


@dataclasses.dataclass
class Destinations:
    """Renders and checks destinations under one output folder.

    Template fields: ``{stem}`` (input name without suffix), ``{name}`` (input file name), ``{ext}`` (its suffix,
    no dot), ``{relpath}`` (the path relative to the input folder, without suffix), ``{index}`` (position in the
    batch), ``{frame}`` (a video frame's number from 1; a still image is frame 1). Unless the template uses
    ``{relpath}``, outputs mirror the input's sub-folders.

    >>> d = Destinations(Path("out"), "{stem}_mask.png")
    >>> d.render(Source("in/sub/a.jpg", PurePosixPath("sub/a.jpg")), 0).as_posix()
    'sub/a_mask.png'
    """

    output: Path
    template: str
    existing: Existing = "error"
    #: The output's suffix, replacing the template's: fixed (".png"), or chosen per source (by format).
    suffix: str | Callable[[Source], str | None] | None = None

    def __post_init__(self) -> None:
        if not self.template.strip():
            raise OptionError("template", "the name template is empty")
        check_template(self.template)
        self._root = Path(os.path.realpath(self.output))
        self._taken: dict[Path, str] = {}

    def render(self, source: Source, index: int, *, frame: int = 1) -> PurePosixPath:
        """The destination relative to the output folder (not yet checked); ``frame``: a video frame's number."""
        relative = render_name(self.template, source.relpath, index=index, frame=frame)
        suffix = self.suffix(source) if callable(self.suffix) else self.suffix
        if suffix:
            relative = relative.with_suffix(suffix)
        return relative

    def check(self, source: Source, relative: PurePosixPath) -> tuple[Path | None, str | None]:
        """The destination for ``source``, or None and why it may not be written."""
        if relative.is_absolute() or ".." in relative.parts or not relative.parts:
            return None, f"output name {relative.as_posix()!r} would leave the output folder"
        destination = self.output / relative
        if os.path.islink(destination):
            return None, f"{destination} is a symlink; maskcli does not write through links"
        real_parent = Path(os.path.realpath(destination.parent))
        if real_parent != self._root and self._root not in real_parent.parents:
            return None, f"{destination.parent} leads outside the output folder (through a symlink)"
        real = real_parent / destination.name
        if source.path != STDIN and os.path.realpath(source.path) == str(real):
            return None, f"output {destination} is the input itself; choose another output folder or name"
        owner = self._taken.get(real)
        if owner is not None and owner != source.path:
            return None, f"output {destination} is also the output of {owner}; use {{relpath}} or {{ext}} in `template`"
        self._taken[real] = source.path
        return destination, None

    def plan(self, sources: Iterable[Source]) -> Iterator[Item]:
        """Items with destinations, each checked; refused ones carry the reason, existing ones the policy."""
        for index, source in enumerate(sources):
            item = Item(index, source)
            if source.error:
                item.error = source.error
                yield item
                continue
            try:
                relative = self.render(source, index)
            except OptionError:
                raise
            except (ValueError, IndexError) as error:
                raise OptionError("template", f"bad name template {self.template!r}: {error}") from None
            destination, item.error = self.check(source, relative)
            item.destination = destination
            if destination is not None and os.path.lexists(destination):
                if self.existing == "skip":
                    item.skip = True
                elif self.existing == "error":
                    item.error = (f"output {destination} exists (use `existing='overwrite'` to replace or "
                                  "`existing='skip'`)")
            yield item
