"""What the user sees: one error line per failed item, a progress bar on a terminal, JSON records, a summary,
and the exit status.

Data goes to stdout (records, or an image when writing to stdout); everything else goes to stderr.
"""

from __future__ import annotations

import json
import re
import time
from typing import IO, TYPE_CHECKING, Any

from maskcli.cli.context import Exit, IOContext, current
from maskcli.cli.flags import Wording
from maskcli.cli.signals import interrupts_held
from maskcli.io.streams import isatty

if TYPE_CHECKING:  # the types alone: importing the runner here would load the decoders before --help
    from maskcli.batch.run import BatchOutcome, Result


_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\udc80-\udcff]")
_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _escaped(match: re.Match[str]) -> str:
    char = match.group()
    code = ord(char)
    if char in _NAMED:
        return _NAMED[char]
    if 0xDC80 <= code <= 0xDCFF:  # a byte that is not UTF-8, kept by Python as a lone surrogate
        return f"\\x{code - 0xDC00:02x}"
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def escape(text: str) -> str:
    """``text`` made one printable line: control characters (a newline in a file name, an escape sequence that
    would drive the terminal), line separators and undecodable bytes are written as escapes.

    Every human-readable line goes through it, so a file name can never fake a line of its own; JSON records
    keep names exactly.

    >>> print(escape("a\\nmaskcli: 0 failed\\x1b[2J.png"))
    a\\nmaskcli: 0 failed\\x1b[2J.png
    """
    return _CONTROL.sub(_escaped, text)


def say(line: str, *, stream: IO[str] | None = None) -> None:
    """One human-readable line on stderr (escaped)."""
    print(escape(line), file=stream or current().stderr, flush=True)


def error_line(message: str, path: str | None = None, *, stream: IO[str] | None = None) -> None:
    """``maskcli: error: <path>: <reason>`` on stderr."""
    where = f"{path}: " if path else ""
    say(f"maskcli: error: {where}{message}", stream=stream)


def progress_bar(stream: IO[str], kind: str) -> Any:
    """The one progress bar (rich, transient, started) on ``stream``: ``batch`` counts items and their rate,
    ``steps`` names what runs, ``download`` counts bytes."""
    from rich import progress as p

    columns: dict[str, tuple[Any, ...]] = {
        "batch": (p.SpinnerColumn(), p.TextColumn("{task.description}"), p.BarColumn(), p.MofNCompleteColumn(),
                  p.TextColumn("{task.fields[rate]}"), p.TimeElapsedColumn()),
        "steps": (p.SpinnerColumn(), p.TextColumn("{task.description}"), p.TimeElapsedColumn()),
        "download": (p.TextColumn("{task.description}"), p.BarColumn(), p.DownloadColumn(),
                     p.TransferSpeedColumn()),
    }
    bar = p.Progress(*columns[kind], console=current().console(stream), transient=True)
    bar.start()
    return bar


class Reporter:
    """Follows a batch's results; :meth:`finish` prints the summary and returns the exit status."""

    def __init__(
        self,
        *,
        json_records: bool = False,
        quiet: bool = False,
        verb: str = "written",
        stdout: IO[str] | None = None,
        stderr: IO[str] | None = None,
        io: IOContext | None = None,
        wording: Wording | None = None,
    ) -> None:
        self.json_records = json_records
        #: Item errors and warnings come from the library: they are shown in the command's words.
        self.wording = wording or Wording.current()
        self.quiet = quiet
        self.verb = verb
        self.io = io or current()
        self.stdout, self.stderr = stdout or self.io.stdout, stderr or self.io.stderr
        self.counts = {"written": 0, "skipped": 0, "failed": 0}
        self.started = time.perf_counter()
        self._progress: Any = None
        self._task: Any = None
        self._reported: set[int] = set()
        if not quiet and (self.io.stderr_isatty if stderr is None else isatty(stderr)):
            self._start_progress()

    def _start_progress(self) -> None:
        self._progress = progress_bar(self.stderr, "batch")
        self._task = self._progress.add_task("maskcli", total=None, rate="")

    def _echo_err(self, text: str) -> None:
        text = escape(text)
        if self._progress is not None:
            self._progress.console.print(text, markup=False, highlight=False, soft_wrap=True)
        else:
            print(text, file=self.stderr, flush=True)

    def result(self, result: Result) -> None:
        """Count and report one result, once: a stopping run offers again the result whose report a signal may
        have cut short, so one already reported is skipped."""
        with interrupts_held():
            if result.index in self._reported:
                return
            self._report(result)
            self._reported.add(result.index)

    def _report(self, result: Result) -> None:
        self.counts[result.status] += 1
        if result.status == "failed":
            self._echo_err(f"maskcli: error: {result.input}: {self.wording.text(str(result.error))}")
        elif not self.quiet:
            for warning in result.facts.get("warnings", []):
                self._echo_err(f"maskcli: warning: {result.input}: {self.wording.text(str(warning))}")
        if self.json_records:
            record = result.record()
            if record.get("error"):
                record["error"] = self.wording.text(record["error"])
            # One write for the record and its newline.
            self.stdout.write(json.dumps(record, default=_jsonable) + "\n")
            self.stdout.flush()
        if self._progress is not None:
            done = sum(self.counts.values())
            rate = done / max(time.perf_counter() - self.started, 1e-9)
            self._progress.update(self._task, advance=1, rate=f"{rate:.1f} img/s",
                                  description=escape(result.input)[-40:])

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    def summary(self) -> str:
        elapsed = time.perf_counter() - self.started
        rate = f", {self.total / elapsed:.1f} img/s" if elapsed > 0 and self.total > 1 else ""
        c = self.counts
        return (f"maskcli: {c['written']} {self.verb}, {c['skipped']} skipped, {c['failed']} failed "
                f"in {elapsed:.1f} s{rate}")

    def finish(self, *, interrupted: bool = False, stopped: bool = False) -> Exit:
        """Print the summary (also with ``quiet`` for a run that did not end by itself) and return the status."""
        if self._progress is not None:
            self._progress.stop()
        if stopped:
            print(f"{self.summary()} (stopped)", file=self.stderr, flush=True)
            return Exit.SETUP
        if interrupted:
            print(f"{self.summary()} (interrupted)", file=self.stderr, flush=True)
            return Exit.INTERRUPTED
        if not self.quiet:
            print(self.summary(), file=self.stderr, flush=True)
        return Exit.of_batch(self.counts["failed"])


class BatchReport:
    """What the user sees of a library batch (:mod:`maskcli.batch`): its warnings, then its results through a
    :class:`Reporter` from the moment it starts; :meth:`finish` sums it up and gives the exit status."""

    def __init__(self, *, json_records: bool = False, quiet: bool = False, verb: str = "written") -> None:
        self.json_records, self.quiet, self.verb = json_records, quiet, verb
        self.reporter: Reporter | None = None

    def warning(self, message: str) -> None:
        """``maskcli: warning: ...`` on stderr (a library message, in the command's words), unless quiet."""
        if not self.quiet:
            print(f"maskcli: warning: {Wording.current().text(message)}", file=current().stderr, flush=True)

    def started(self, *, image_on_stdout: bool) -> None:
        # An image on stdout is the whole output: the summary stays off stderr too.
        self.reporter = Reporter(json_records=self.json_records, quiet=self.quiet or image_on_stdout, verb=self.verb)

    def result(self, result: Result) -> None:
        assert self.reporter is not None
        self.reporter.result(result)

    def finish(self, outcome: BatchOutcome) -> Exit:
        """The summary, after the line that says why the run stopped or what it could not write."""
        assert self.reporter is not None
        if outcome.stopped is not None:
            error_line(Wording.current().message(outcome.stopped))
            return self.reporter.finish(stopped=True)
        if outcome.interrupted:
            return self.reporter.finish(interrupted=True)
        if outcome.problem is not None:
            error_line(outcome.problem)
        return self.reporter.finish()


def _jsonable(value: Any) -> Any:
    try:
        import numpy as np

        if isinstance(value, np.generic):
            return value.item()
        if isinstance(value, np.ndarray):
            return value.tolist()
    except ImportError:  # pragma: no cover
        pass
    return str(value)
