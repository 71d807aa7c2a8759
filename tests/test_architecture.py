"""The dependency direction of the design: nothing imports the CLI, and only the CNN part imports torch.

(That the commands without a model start without importing torch is proved by running them, in test_cli.py.)"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from conftest import REPO

PACKAGE = REPO / "maskcli"


def _imports(path: Path) -> set[str]:
    """Every module a file imports, at any depth (lazy imports inside functions count too)."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return found


def _library_files() -> list[Path]:
    # __main__.py is the entry point of `python -m maskcli`: it is the CLI's front door, not library code.
    return [p for p in sorted(PACKAGE.rglob("*.py"))
            if p.relative_to(PACKAGE).parts[0] != "cli" and p.name != "__main__.py"]


def test_the_package_has_the_files_this_test_walks() -> None:
    names = {p.relative_to(PACKAGE).as_posix() for p in _library_files()}
    assert {"pipeline.py", "io/decode.py", "methods/base.py"} <= names


@pytest.mark.parametrize("path", _library_files(), ids=lambda p: p.relative_to(PACKAGE).as_posix())
def test_the_library_never_imports_the_cli(path: Path) -> None:
    wrong = sorted(m for m in _imports(path) if m == "maskcli.cli" or m.startswith("maskcli.cli."))
    assert not wrong, f"{path.name} imports {wrong}: the CLI sits on top of the library, never below it"


@pytest.mark.parametrize("path", sorted(PACKAGE.rglob("*.py")), ids=lambda p: p.relative_to(PACKAGE).as_posix())
def test_only_the_cnn_part_imports_torch(path: Path) -> None:
    relative = path.relative_to(PACKAGE).as_posix()
    allowed = relative.startswith("cnn/") or relative == "methods/cnn.py"
    heavy = sorted(m for m in _imports(path) if m.split(".")[0] in {"torch", "torchvision"})
    assert allowed or not heavy, f"{relative} imports {heavy}; only maskcli/cnn/ may"


@pytest.mark.parametrize("path", sorted(PACKAGE.rglob("*.py")), ids=lambda p: p.relative_to(PACKAGE).as_posix())
def test_only_the_ray_engine_imports_ray(path: Path) -> None:
    relative = path.relative_to(PACKAGE).as_posix()
    wrong = sorted(m for m in _imports(path) if m.split(".")[0] == "ray")
    assert relative == "engines/ray.py" or not wrong, f"{relative} imports {wrong}; only maskcli/engines/ray.py may"
