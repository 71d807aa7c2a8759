"""Where outputs go: a folder (one file per input), one named file, or a stream such as stdout.

An :class:`OutputPlan` fixes the format and the suffix of every output once, from what the command makes (a mask,
or an image with or without transparency) and what was asked for; the destination's suffix and the encoder's
format both come from it. A sink plans the items (each input with its checked destination, see
:class:`maskcli.io.sources.Destinations`) and writes each output's bytes atomically.

Examples
--------
>>> plan = OutputPlan.for_images(None, alpha=True)
>>> plan.format_for(".jpg"), plan.suffix_for(".jpg"), OutputPlan.for_images(None, alpha=False).format_for(".jpg")
('PNG', '.png', 'JPEG')
"""

from __future__ import annotations

import dataclasses
import os
import threading
from collections.abc import Iterable, Iterator
from pathlib import Path, PurePosixPath
from typing import BinaryIO, Protocol

from maskcli.errors import OptionError, OutputTaken
from maskcli.io.decode import IMAGE_SUFFIXES
from maskcli.io.encode import FORMATS, SUFFIX_OF
from maskcli.io.files import WriteGate, write_atomic
from maskcli.io.sources import STDIN, TEMPLATE_FIELDS, Destinations, Existing, Item, Source, check_template

#: Formats that hold an alpha channel.
ALPHA_FORMATS = frozenset({"PNG", "WEBP", "TIFF"})


@dataclasses.dataclass(frozen=True)
class OutputPlan:
    """The format of every output, decided in one place.

    Parameters
    ----------
    requested : str, optional
        A format asked for (``png``, ``jpg``, ``webp``, ``tiff``); None keeps each input's format where it can
        hold the result, else PNG.
    alpha : bool
        Whether outputs carry transparency (then only PNG, WebP or TIFF will do).
    """

    requested: str | None = None
    alpha: bool = False

    def __post_init__(self) -> None:
        if self.requested is None:
            return
        format = FORMATS.get("." + self.requested.lower().lstrip("."))
        if format is None:
            raise OptionError("format", f"unknown format {self.requested!r}; choose png, jpg, webp or tiff")
        if self.alpha and format not in ALPHA_FORMATS:
            raise OptionError(
                "format", f"{format} has no transparency; choose png, webp or tiff, or flatten the result on a "
                "colour with `background` (e.g. `background='white'`)"
            )

    @classmethod
    def for_masks(cls) -> OutputPlan:
        """Masks are PNG files, whatever the input."""
        return cls("png")

    @classmethod
    def for_images(cls, requested: str | None, *, alpha: bool) -> OutputPlan:
        """Composited images: the format asked for, else the input's, PNG where transparency needs it."""
        return cls(requested, alpha)

    def format_for(self, input_suffix: str) -> str:
        """The output format for an input of this suffix (``.jpg``; a decoded format name such as ``.jpeg``
        works too, for inputs read from a stream)."""
        if self.requested is not None:
            return FORMATS["." + self.requested.lower().lstrip(".")]
        format = FORMATS.get(input_suffix.lower(), "PNG")
        return "PNG" if self.alpha and format not in ALPHA_FORMATS else format

    def suffix_for(self, input_suffix: str) -> str:
        """The suffix of the output of an input with this suffix."""
        return SUFFIX_OF[self.format_for(input_suffix)]

    def format_of(self, source: Source, decoded_format: str | None) -> str:
        """The output format of one input: by its suffix, or (read from a stream) by its decoded format."""
        suffix = PurePosixPath(source.relpath.name).suffix
        if source.path == STDIN or not suffix:
            suffix = "." + (decoded_format or "png").lower()
        return self.format_for(suffix)


class Sink(Protocol):
    """Where a batch's outputs go: plans the items, then writes each output's bytes through the run's write gate
    (:class:`~maskcli.io.files.WriteGate`: a stopped run renames nothing more into place)."""

    plan: OutputPlan

    def items(self, sources: Iterable[Source]) -> Iterator[Item]: ...

    def write(self, item: Item, data: bytes, gate: WriteGate) -> str | None: ...


@dataclasses.dataclass
class FolderSink:
    """One file per input under ``folder``, named by ``template`` (:class:`~maskcli.io.sources.Destinations`),
    its suffix from the plan. ``existing``: an existing output is an item error, skipped, or replaced."""

    folder: Path
    template: str = "{stem}.png"
    existing: Existing = "error"
    plan: OutputPlan = dataclasses.field(default_factory=OutputPlan.for_masks)
    #: Refuse a template whose suffix names another format than the plan's (masks: always PNG), rather than
    #: replace it silently (a composite's default template ends in .png whatever the format asked for).
    strict_suffix: bool = False

    def __post_init__(self) -> None:
        self.folder = Path(self.folder)
        if self.folder.exists() and not self.folder.is_dir():
            raise OptionError("output", f"{self.folder} exists and is not a folder")
        check_template(self.template)
        suffix = PurePosixPath(self.template.format(**TEMPLATE_FIELDS)).suffix.lower()
        if self.plan.requested is not None and self.strict_suffix and suffix in IMAGE_SUFFIXES | FORMATS.keys():
            format = self.plan.format_for(suffix)
            if FORMATS.get(suffix) != format:
                # Silently writing a PNG named by a template that says .jpg would surprise: say so instead.
                raise OptionError("template", f"the name template ends in {suffix}, but the outputs are {format} "
                                              f"files; end it in {SUFFIX_OF[format]} or leave the suffix out")

    def items(self, sources: Iterable[Source]) -> Iterator[Item]:
        def suffix(source: Source) -> str:
            return self.plan.suffix_for(PurePosixPath(source.relpath.name).suffix)

        return Destinations(self.folder, self.template, self.existing, suffix=suffix).plan(sources)

    def write(self, item: Item, data: bytes, gate: WriteGate) -> str | None:
        assert item.destination is not None
        write_as_planned(item.destination, data, self.existing, gate)
        return str(item.destination)


@dataclasses.dataclass
class FileSink:
    """One output file, for one input (an image read from stdin)."""

    path: Path
    existing: Existing = "error"
    plan: OutputPlan = dataclasses.field(default_factory=OutputPlan.for_masks)

    def __post_init__(self) -> None:
        self.path = Path(self.path)
        if self.path.is_dir():
            raise OptionError("output", "with one image on stdin, `output` names a file, not a folder")

    def items(self, sources: Iterable[Source]) -> Iterator[Item]:
        for index, source in enumerate(sources):
            item = Item(index, source, destination=self.path, error=source.error)
            if index:
                item.error = "one output file takes one input"
            elif os.path.lexists(self.path) and not item.error and self.existing != "overwrite":
                item.error = f"output {self.path} exists (use `existing='overwrite'` to replace it)"
            yield item

    def write(self, item: Item, data: bytes, gate: WriteGate) -> str | None:
        write_as_planned(self.path, data, self.existing, gate)
        return str(self.path)


def write_as_planned(path: Path, data: bytes, existing: Existing, gate: WriteGate) -> None:
    """Write an output under the batch's policy for existing files, which holds until the rename: without
    ``overwrite``, a file that appeared after planning (another run into the same folder) is not replaced, and
    :class:`~maskcli.errors.OutputTaken` says whether the item counts as skipped."""
    try:
        write_atomic(path, data, replace=existing == "overwrite", gate=gate)
    except OutputTaken as taken:
        raise OutputTaken(taken.path, skip=existing == "skip") from None


class StreamSink:
    """Outputs written one after another to a binary stream (stdout, for one image read from stdin)."""

    def __init__(self, stream: BinaryIO, plan: OutputPlan | None = None) -> None:
        self.stream = stream
        self.plan = plan or OutputPlan.for_masks()
        self._lock = threading.Lock()  # saver threads must not interleave two outputs' bytes

    def items(self, sources: Iterable[Source]) -> Iterator[Item]:
        for index, source in enumerate(sources):
            yield Item(index, source, error=source.error)

    def write(self, item: Item, data: bytes, gate: WriteGate) -> str | None:
        with self._lock:
            self.stream.write(data)
            self.stream.flush()
        return None

    def __getstate__(self) -> dict[str, object]:
        raise TypeError("a stream sink stays in the process that opened it")


__all__ = ["ALPHA_FORMATS", "FileSink", "FolderSink", "OutputPlan", "Sink", "StreamSink", "write_as_planned"]
