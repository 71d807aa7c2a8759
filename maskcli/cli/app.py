"""The ``maskcli`` command: a thin Typer app over the library.

Each command parses options, builds the library's settings and makes one library call (:mod:`maskcli.batch` for
the batches), then reports; :func:`exit_status` maps errors to exit statuses: 0 all done, 1 some items failed,
2 usage error, 3 setup error, 130 interrupted.
"""

from __future__ import annotations

import contextlib
import functools
import os
import sys
import threading
import time
from collections.abc import Callable
from typing import IO, Annotated, Any, Optional

import typer

from maskcli import __version__
from maskcli.cli import signals
from maskcli.cli.context import Exit, IOContext, current, using
from maskcli.cli.flags import Wording
from maskcli.cli.report import error_line
from maskcli.errors import MaskcliError, OptionError

app = typer.Typer(
    name="maskcli",
    help="Make image segmentation masks and apply them, over folders, globs, lists and pipes.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(value: bool) -> None:
    if value:
        print(f"maskcli {__version__}", file=current().stdout)
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        Optional[bool],
        typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit."),
    ] = None,
) -> None:
    """Make image segmentation masks (segment) and apply them (apply)."""


def _interruptible(command: Callable[..., Any]) -> Callable[..., Any]:
    """The command, ending with status 130 and one line on Ctrl-C or SIGTERM (Click would print "Aborted!" and
    exit 1; batches report what they finished before this), and with one line in the command's own words for a
    library error (exit status 2 for a usage error, 3 for a setup error)."""

    @functools.wraps(command)
    def interruptible(*args: Any, **kwargs: Any) -> Any:
        wording = Wording.of_command(command)
        try:
            with wording.current_for_command():
                return command(*args, **kwargs)
        except (KeyboardInterrupt, MaskcliError) as error:
            raise typer.Exit(exit_status(error, wording, current().stderr)) from None

    return interruptible


def exit_status(error: KeyboardInterrupt | MaskcliError, wording: Wording, stream: IO[str]) -> Exit:
    """The one place an error ends a command: its one line on ``stream`` (a library error in ``wording``), and the
    exit status it means: 130 for Ctrl-C or SIGTERM, 2 for a usage error, 3 for a setup error."""
    if isinstance(error, KeyboardInterrupt):
        print("maskcli: interrupted", file=stream, flush=True)
        return Exit.INTERRUPTED
    error_line(wording.message(error), stream=stream)
    return Exit.USAGE if isinstance(error, OptionError) else Exit.SETUP


def _register() -> None:
    from maskcli.cli import apply, evaluate, export, methods, models, preview, segment, serve, train

    app.command("segment", no_args_is_help=False)(_interruptible(segment.segment_command))
    app.command("apply")(_interruptible(apply.apply_command))
    app.command("methods")(_interruptible(methods.methods_command))
    app.command("modes")(_interruptible(methods.modes_command))
    for command in models.app.registered_commands:
        # The ignore below: Typer's callback type is narrower than the wrapper it runs.
        command.callback = _interruptible(command.callback)  # type: ignore[arg-type]
    app.add_typer(models.app, name="models")
    app.command("eval")(_interruptible(evaluate.eval_command))
    app.command("preview")(_interruptible(preview.preview_command))
    app.command("export")(_interruptible(export.export_command))
    app.command("train")(_interruptible(train.train_command))
    app.command("serve")(_interruptible(serve.serve_command))


_register()


def main(argv: list[str] | None = None, io: IOContext | None = None) -> int:
    """Run the CLI and return its exit status (never raises for user errors).

    Typer handles usage errors (exit 2), ``--help`` and Ctrl-C (exit 130); the library's own errors are mapped
    here, each printed as one line. ``io``: the streams the commands use (default: the process's), handed to
    every command through Click's context.
    """
    # The command owns its process, so it (not the library) silences OpenCV's own warnings on stderr: maskcli
    # reports every failure itself, one line per file. Read by OpenCV when it loads (workers inherit it).
    os.environ.setdefault("OPENCV_LOG_LEVEL", "SILENT")
    if "cv2" in sys.modules:  # already loaded (main() called from Python): tell it directly
        cv2 = sys.modules["cv2"]
        cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_SILENT)
    previous = signals.install(ready=True)
    try:
        return _main(argv, io or IOContext.of_process())
    finally:
        signals.restore(previous)


def _main(argv: list[str] | None, io: IOContext) -> int:
    try:
        with using(io):
            app(args=argv, prog_name="maskcli")
    except SystemExit as done:
        status = done.code if isinstance(done.code, int) else (0 if done.code is None else 1)
        if signals.interrupted() and status != Exit.INTERRUPTED:
            # A signal outside a batch unwound the command.
            return exit_status(KeyboardInterrupt(), Wording(), io.stderr)
        return status
    except (KeyboardInterrupt, MaskcliError) as error:  # outside a command (the commands report their own)
        return exit_status(error, Wording(), io.stderr)
    except BrokenPipeError:
        # A reader such as `head` closed the pipe: stop quietly, as other Unix tools do.
        sys.stderr.close()
        return 1
    return 0


def run() -> None:
    status = main()
    if status == Exit.INTERRUPTED:
        _exit_promptly(status)
    sys.exit(status)


def _exit_promptly(status: int) -> None:
    """After an interrupt, threads still inside a long decode or computation would hold the interpreter's exit
    until they return; their results are not wanted and they write nothing (writes were stopped): end now."""
    deadline = time.monotonic() + 0.3
    for thread in threading.enumerate():
        if thread is not threading.current_thread() and not thread.daemon:
            with contextlib.suppress(RuntimeError):  # a thread still starting cannot be joined yet
                thread.join(max(0.0, deadline - time.monotonic()))
    if any(t.is_alive() and not t.daemon for t in threading.enumerate() if t is not threading.current_thread()):
        # A thread cut off mid-write leaves no temp file: the stopped run discarded its writes' temp files.
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(Exception):
                stream.flush()
        signals.exit_now(status)
