"""Planning a batch: where its inputs come from (arguments, a list of paths, stdin) and where its outputs go (a
folder, one file, stdout).

>>> import io, tempfile
>>> from pathlib import Path
>>> scratch = tempfile.TemporaryDirectory(); root = Path(scratch.name)
>>> _ = (root / "a.png").write_bytes(b"")
>>> sources, kind = Inputs([str(root / "a.png")]).gather()
>>> [source.relpath.as_posix() for source in sources], kind
(['a.png'], 'args')
>>> Inputs(stdin=io.TextIOWrapper(io.BufferedReader(io.BytesIO(b"")))).gather()
Traceback (most recent call last):
...
maskcli.errors.SetupError: no inputs: give image files, folders or patterns, or pipe a list of paths on stdin
>>> scratch.cleanup()
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, BinaryIO

from maskcli.errors import OptionError, SetupError
from maskcli.io import DEFAULT_MAX_PIXELS
from maskcli.io.streams import stdin_kind

if TYPE_CHECKING:  # the types alone: the decoders load when a batch runs
    from maskcli.io.sinks import OutputPlan, Sink
    from maskcli.io.sources import Existing, Source

#: The name of standard input (as an input) and standard output (as the output).
STDIN = "-"


def _ignore(message: str) -> None:
    """Warnings nobody asked to see."""


@dataclasses.dataclass
class Inputs:
    """Where a batch's inputs come from.

    Parameters
    ----------
    paths : list of str, optional
        Image files, folders, glob patterns, or ``-`` for one image on ``stdin``.
    recursive : bool
        Descend into sub-folders.
    from_file : str, optional
        A file listing input paths, one a line (``-``: ``stdin``).
    null : bool
        Paths in lists are NUL-separated.
    max_pixels : int
        Refuse images larger than this many pixels.
    stdin : text stream, optional
        The standard input (its ``buffer`` holds the bytes): without paths and a list it holds one image, a list
        of paths, or ``maskcli segment --json`` records. None: there is none.
    """

    paths: list[str] | None = None
    recursive: bool = False
    from_file: str | None = None
    null: bool = False
    max_pixels: int = DEFAULT_MAX_PIXELS
    stdin: IO[str] | None = None

    def _stdin_bytes(self) -> BinaryIO | None:
        # The ignore below: IO[str] declares no buffer; text streams have one.
        return None if self.stdin is None else self.stdin.buffer  # type: ignore[attr-defined]

    def _stdin_required(self) -> BinaryIO:
        stdin = self._stdin_bytes()
        if stdin is None:
            raise SetupError("- reads stdin, and this run has none")
        return stdin

    def gather(self, *, allow_records: bool = False, exclude: Sequence[Path | None] = (),
               warn: Callable[[str], None] = _ignore) -> tuple[Iterator[Source], str]:
        """The sources, and what they came from: "args", "paths" (a list), "image" (one on stdin), or "records"
        (``maskcli segment --json`` piped in; the sources are then empty: the mask source reads the records).

        ``exclude``: the folders the run writes (its output) or reads otherwise (apply's masks); a recursive walk
        leaves them out, and says so once through ``warn``.
        """
        from maskcli.io.sources import expand_inputs, listed_files, nested_in_inputs, read_path_list, stream_source

        paths = self.paths
        left_out = [folder for folder in exclude if folder is not None and str(folder) != STDIN]
        if paths and self.recursive:
            for folder, root in nested_in_inputs(paths, left_out):
                warn(f"{folder} is inside the input folder {root}; this run does not read it as input")

        stdin = self._stdin_bytes()
        streams: list[Iterator[Source]] = []
        kind = "none"
        if paths:
            if paths.count(STDIN) and len(paths) > 1:
                raise OptionError("inputs", "- (one image on stdin) cannot be mixed with other inputs")
            if paths == [STDIN]:
                return iter([stream_source(self._stdin_required(), self.max_pixels)]), "image"
            streams.append(expand_inputs(paths, recursive=self.recursive, exclude=left_out))
            kind = "args"
        if self.from_file is not None:
            if self.from_file == STDIN:
                stream = self._stdin_required()
            else:
                from maskcli.io.files import regular_file_problem

                problem = regular_file_problem(self.from_file, "a list of paths")
                if problem not in (None, "no such file", "permission denied"):  # a pipe's list comes on stdin
                    raise OptionError("from_file", f"{self.from_file}: {problem}; for a list on a pipe, give - "
                                      "and pipe it in")
                try:
                    stream = open(self.from_file, "rb")  # noqa: SIM115 (read lazily while the batch runs)
                except OSError as error:
                    raise SetupError(f"cannot read the list {self.from_file}: {error.strerror or error}") from None
            streams.append(listed_files(read_path_list(stream, null=self.null)))
            kind = "paths"
        if not streams:
            kind = stdin_kind(stdin) if stdin is not None else "none"
            if kind == "paths":
                streams.append(listed_files(read_path_list(self._stdin_required(), null=self.null)))
            elif kind == "image":
                return iter([stream_source(self._stdin_required(), self.max_pixels)]), kind
            elif kind == "records" and allow_records:
                return iter(()), kind
            elif kind == "records":
                raise OptionError("inputs", "stdin holds JSON records; only `maskcli apply` reads them")
            else:
                raise SetupError("no inputs: give image files, folders or patterns, or pipe a list of paths on stdin")

        def chained() -> Iterator[Source]:
            for stream in streams:
                yield from stream

        return chained(), kind

    def files_read(self) -> list[str | int]:
        """Files the batch reads besides its images and masks, which no output may replace: its list of paths
        (``from_file``), and stdin (file descriptor 0), which counts when a regular file is redirected to it."""
        listed = [self.from_file] if self.from_file not in (None, STDIN) else []
        return [*listed, 0]

    def watch(self, output: Path | None) -> Any:
        """A watch of the input folders for new files (:class:`maskcli.io.watch.FolderWatch`), leaving out the
        output folder."""
        from maskcli.io.watch import FolderWatch

        folders = [path for path in self.paths or [] if Path(path).is_dir()]
        if not folders:
            raise OptionError("watch", "give the folders to watch as inputs")
        return FolderWatch(folders, recursive=self.recursive, ignore=[output] if output is not None else [])


@dataclasses.dataclass
class Outputs:
    """Where a batch's outputs go.

    Parameters
    ----------
    output : Path, optional
        The output folder; a file for one input (one image from stdin, one video); ``-`` or None with one image
        from stdin: ``stdout``.
    template : str
        The output name template (:class:`maskcli.io.sources.Destinations`).
    existing : {"error", "skip", "overwrite"}
        What an existing output means.
    stdout : callable, optional
        Opens standard output for image bytes (it may refuse, say, a terminal); None: there is none.
    records_on_stdout : bool
        Results are written as records on stdout, which therefore cannot carry an image.
    """

    output: Path | None = None
    template: str = "{stem}.png"
    existing: Existing = "error"
    stdout: Callable[[], BinaryIO] | None = None
    records_on_stdout: bool = False

    def sink(self, kind: str, plan: OutputPlan, *, strict_suffix: bool = False) -> Sink:
        """The sink for inputs of ``kind`` (see :meth:`Inputs.gather`): one image from stdin goes to stdout
        unless an output file is named; one video to a file so named; else a folder."""
        from maskcli.io.sinks import FileSink, FolderSink, StreamSink
        from maskcli.io.video import VIDEO_SUFFIXES

        output = self.output
        if output is not None and kind == "args" and output.suffix.lower() in VIDEO_SUFFIXES and not output.is_dir():
            return FileSink(output, self.existing, plan)  # one video in, one video out
        if kind == "image":
            if output is not None and str(output) != STDIN:
                return FileSink(output, self.existing, plan)
            if self.stdout is None:
                raise OptionError("output", "there is no standard output here: give an output file")
            stream = self.stdout()
            if self.records_on_stdout:
                raise OptionError("records_on_stdout", "records go to stdout, which carries the image; give -o FILE")
            return StreamSink(stream, plan)
        if output is None or str(output) == STDIN:
            raise OptionError("output", "give an output folder with -o/`output` (stdout takes one image from stdin)")
        return FolderSink(output, self.template, self.existing, plan, strict_suffix=strict_suffix)
