"""What a signal does at each moment of a command's run; the state lives here, apart from the front door
(:mod:`maskcli.cli.entry`) and the app (:mod:`maskcli.cli.app`), which both use it.

The first SIGINT (Ctrl-C) or SIGTERM stops maskcli within a second, with exit status 130 and never a traceback:

* while the command starts (imports), nothing has been written: the process ends at once;
* afterwards it is a ``KeyboardInterrupt``: a running batch stops its workers and its report names every file
  written; at any other moment (reading options, loading a model) the command unwinds, removing any temp file.

A second signal ends the process at once.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
from collections.abc import Iterator
from typing import Any

from maskcli.cli.context import Exit

_SIGNALS = (signal.SIGINT, signal.SIGTERM)
_state = {"signals": 0, "ready": False, "holding": 0, "held": False}


def _on_signal(signum: int, frame: object) -> None:
    _state["signals"] += 1
    if _state["signals"] > 1 or not _state["ready"]:
        os.write(2, b"maskcli: interrupted\n")
        exit_now(Exit.INTERRUPTED)
    if _state["holding"]:
        _state["held"] = True  # raised when the block that must not be cut in half ends
        return
    # A running batch answers it (renames stopped, workers stopped, finished items reported); a command that
    # saves on Ctrl-C (train's resume checkpoint) still can.
    raise KeyboardInterrupt


def exit_now(status: int) -> None:
    """End the process at once (``os._exit``), first ending its worker processes and releasing the named
    semaphores their pool made.

    ``os._exit`` skips multiprocessing's exit handlers, which unlink them; its resource tracker, outliving this
    process by a moment, would then print ``resource_tracker: There appear to be 5 leaked semaphore objects`` on
    the user's terminal. Workers go first (they would end with this process anyway): one still starting would
    print a traceback on finding its pool's semaphores gone. The release runs in a thread, bounded: one that waits
    on a lock held by the interrupted code must not hold the exit.
    """
    util = sys.modules.get("multiprocessing.util")
    if util is not None:
        children = sys.modules["multiprocessing"].active_children()
        for child in children:
            with contextlib.suppress(OSError):
                child.kill()
        release = threading.Thread(target=util._run_finalizers, args=(0,), daemon=True)  # those of exit, priority 0+
        release.start()
        release.join(0.5)
    os._exit(status)


@contextlib.contextmanager
def interrupts_held() -> Iterator[None]:
    """Hold a first signal's ``KeyboardInterrupt`` back until the block ends, so the block runs whole or not at
    all: a result's count, line and ``--json`` record are reported together (a record cut after its text and
    before its newline would run into the next one). A second signal still ends the process at once."""
    _state["holding"] += 1
    try:
        yield
    finally:
        _state["holding"] -= 1
        if not _state["holding"] and _state["held"]:
            _state["held"] = False
            raise KeyboardInterrupt


def install(*, ready: bool) -> dict[int, Any]:
    """Take SIGINT and SIGTERM; returns the handlers they had. ``ready``: start-up is over."""
    _state.update(signals=0, ready=ready, holding=0, held=False)
    previous: dict[int, Any] = {}
    for number in _SIGNALS:
        previous[number] = signal.getsignal(number)
        if previous[number] is not signal.SIG_IGN:  # ignored (nohup, a shell's background job): stays ignored
            signal.signal(number, _on_signal)
    return previous


def restore(previous: dict[int, Any]) -> None:
    for number, handler in previous.items():
        signal.signal(number, handler)


def interrupted() -> bool:
    """Whether a signal came during this command."""
    return bool(_state["signals"])
