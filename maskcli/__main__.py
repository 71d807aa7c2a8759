"""``python -m maskcli``."""

from maskcli.cli.app import run

run()
