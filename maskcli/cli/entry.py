"""The ``maskcli`` console script: the signals are taken (:mod:`maskcli.cli.signals`) before the slower imports
of the command line, so a first Ctrl-C during start-up ends the process at once, having written nothing."""

from __future__ import annotations

from maskcli.cli import signals


def main() -> None:
    """The console script."""
    signals.install(ready=False)
    from maskcli.cli.app import run

    run()
