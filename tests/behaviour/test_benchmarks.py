"""The benchmarks are a package run as ``python -m benchmarks.NAME``: each answers ``--help``, none edits
``sys.path``, imports a private name of the library or installs anything."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import REPO

BENCHMARKS = REPO / "benchmarks"
#: Modules that only serve the others (no command of their own).
HELPERS = {"__init__", "common"}
#: Commands that install software; a benchmark names them at most in a message.
INSTALLERS = {"apt-get", "apt", "sudo", "yum", "dnf", "brew"}


def _modules() -> list[Path]:
    return sorted(BENCHMARKS.glob("*.py"))


def _commands() -> list[str]:
    return [path.stem for path in _modules() if path.stem not in HELPERS]


def _tree(path: Path) -> ast.Module:
    return ast.parse(path.read_text(encoding="utf-8"), filename=str(path))


def test_benchmarks_is_a_package_of_commands():
    assert (BENCHMARKS / "__init__.py").is_file()
    assert len(_commands()) >= 20
    for name in _commands():
        assert 'if __name__ == "__main__":' in (BENCHMARKS / f"{name}.py").read_text(encoding="utf-8"), name


@pytest.mark.parametrize("path", _modules(), ids=lambda path: path.stem)
def test_a_benchmark_leaves_the_import_path_alone(path):
    for node in ast.walk(_tree(path)):
        if isinstance(node, ast.Attribute) and node.attr == "path" and isinstance(node.value, ast.Name):
            assert node.value.id != "sys", f"{path.name}:{node.lineno} uses sys.path"


@pytest.mark.parametrize("path", _modules(), ids=lambda path: path.stem)
def test_a_benchmark_imports_only_public_names(path):
    for node in ast.walk(_tree(path)):
        if isinstance(node, ast.ImportFrom) and node.module:
            modules = [node.module, *(f"{node.module}.{alias.name}" for alias in node.names)]
        elif isinstance(node, ast.Import):
            modules = [alias.name for alias in node.names]
        else:
            continue
        for module in modules:
            if module.split(".")[0] in ("maskcli", "benchmarks"):
                private = [part for part in module.split(".") if part.startswith("_") and part != "__future__"]
                assert not private, f"{path.name}:{node.lineno} imports {module}"


@pytest.mark.parametrize("path", _modules(), ids=lambda path: path.stem)
def test_a_benchmark_installs_nothing(path):
    for node in ast.walk(_tree(path)):
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            assert node.value not in INSTALLERS, f"{path.name}:{node.lineno} runs {node.value}"


def test_the_checks_above_can_fail(tmp_path):
    """The same checks on a benchmark written the old way: each finds its fault."""
    old = tmp_path / "old.py"
    old.write_text('import sys\nsys.path.insert(0, "x")\nfrom maskcli.evaluate import _build\n'
                   'import subprocess\nsubprocess.run(["apt-get", "install", "-y", "imagemagick"])\n')
    with pytest.raises(AssertionError, match="sys.path"):
        test_a_benchmark_leaves_the_import_path_alone(old)
    with pytest.raises(AssertionError, match="_build"):
        test_a_benchmark_imports_only_public_names(old)
    with pytest.raises(AssertionError, match="apt-get"):
        test_a_benchmark_installs_nothing(old)


@pytest.mark.parametrize("name", _commands())
def test_every_benchmark_answers_help_as_a_module(name):
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    done = subprocess.run([sys.executable, "-m", f"benchmarks.{name}", "--help"], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.startswith("usage: "), done.stdout[:200]
