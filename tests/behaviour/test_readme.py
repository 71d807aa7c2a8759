"""The README opens with the two commands a new user runs; CI must run the second one exactly."""

from __future__ import annotations

import re

from conftest import REPO


def _opening_commands() -> list[str]:
    text = (REPO / "README.md").read_text(encoding="utf-8")
    return re.findall(r"```sh\n(.+?)\n```", text)[:2]


def test_ci_runs_the_readme_test_command_exactly():
    demo, tests = _opening_commands()
    ci = (REPO / ".ci" / "run").read_text(encoding="utf-8").splitlines()
    assert tests in ci  # the very line, whatever CI checks besides
    assert demo.startswith("python3 -m venv .venv && ") and "maskcli segment samples/" in demo
    assert "maskcli apply samples/" in demo


def test_the_readme_demo_can_run_again():
    """Every output of the demo exists after a first run, and none is replaced by default: each command that
    writes must say --overwrite (the contact sheet follows the same rule as masks and cut-outs)."""
    demo, _ = _opening_commands()
    commands = [part.strip() for part in demo.split("&&") if "maskcli " in part]
    assert [c.split()[1] for c in commands] == ["segment", "apply", "preview"]
    assert all("--overwrite" in command.split() for command in commands), commands
