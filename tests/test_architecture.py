"""The dependency direction of the design: nothing imports the CLI, and only the CNN part imports torch.

(That the commands without a model start without importing torch is proved by running them, in test_cli.py.)"""

from __future__ import annotations

import ast
import re
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


def test_naming_one_method_imports_only_its_module() -> None:
    import subprocess
    import sys

    code = ("import sys; from maskcli.methods import methods; methods.create('otsu'); "
            "from maskcli.composite import modes; modes.create('cutout'); "
            "print(sorted(m for m in sys.modules if m.startswith(('maskcli.methods.', 'maskcli.composite.'))))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO)
    assert done.stdout.strip() == str(["maskcli.composite.base", "maskcli.composite.blend", "maskcli.composite.colors",
                                       "maskcli.composite.isolate", "maskcli.methods.base",
                                       "maskcli.methods.compare", "maskcli.methods.global_threshold",
                                       "maskcli.methods.histogram", "maskcli.methods.thresholding"]), done.stderr


def test_the_command_line_starts_without_the_decoders() -> None:
    import subprocess
    import sys

    code = "import sys, maskcli.cli.app; print(sorted({'cv2', 'numpy', 'PIL', 'torch'} & set(sys.modules)))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO)
    assert done.stdout.strip() == "[]", done.stderr


@pytest.mark.parametrize("path", _library_files(), ids=lambda p: p.relative_to(PACKAGE).as_posix())
def test_only_the_cli_imports_typer_and_rich(path: Path) -> None:
    wrong = sorted(m for m in _imports(path) if m.split(".")[0] in {"typer", "rich", "click"})
    assert not wrong, f"{path.name} imports {wrong}: the command-line toolkit stays in maskcli/cli/"


#: The layers of the design, bottom up: a module may import its own layer and those below, never above.
_LAYERS = (
    {"_version", "errors", "registry", "masks", "imageops", "cores"},
    {"io", "masksources", "methods", "refine", "composite", "formats", "metrics", "presets", "color", "matting",
     "cnn", "prompts", "promptsources"},
    {"pipeline", "engines", "jobs", "evaluate", "compare", "preview", "train", "instances"},
    {"batch"},  # whole batches, one call per command
    {"serve"},  # the HTTP server, over the jobs
)


def _layer(module: str) -> int | None:
    parts = module.split(".")
    if parts[0] != "maskcli" or len(parts) < 2:
        return None
    for level, names in enumerate(_LAYERS):
        if parts[1] in names:
            return level
    return None


@pytest.mark.parametrize("path", _library_files(), ids=lambda p: p.relative_to(PACKAGE).as_posix())
def test_dependencies_point_down_the_layers(path: Path) -> None:
    own = _layer("maskcli." + ".".join(path.relative_to(PACKAGE).with_suffix("").parts))
    if own is None:
        return
    upward = sorted(m for m in _imports(path) if (_layer(m) or 0) > own)
    assert not upward, f"{path.name} (layer {own}) imports {upward} from a layer above it"


#: A command-line flag (``--resize-mask``) in a text.
_FLAG = re.compile(r"(?<![\w-])--(?:[a-z]|$)")
#: A whole command line quoted in a message (`` `maskcli segment --json` ``): an example, like ``example``.
_COMMAND = re.compile(r"`maskcli [^`]*`")


def _flagged(text: str) -> bool:
    return bool(_FLAG.search(_COMMAND.sub("", text)))


def _texts(path: Path) -> list[tuple[int, str]]:
    """The string constants of a file that can reach a user as a message: every one but docstrings and the
    ``example`` command lines that registered methods and modes carry for ``maskcli methods NAME``."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    skipped: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
                skipped.add(id(first.value))
        if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name) and node.target.id == "example":
            skipped.update(id(inner) for inner in ast.walk(node))
    return [(node.lineno, node.value) for node in ast.walk(tree)
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in skipped]


def test_the_text_walk_sees_messages_and_skips_docstrings(tmp_path: Path) -> None:
    sample = tmp_path / "sample.py"
    sample.write_text('"""Run ``maskcli segment --json``."""\n'
                      'class Otsu:\n    example: str = "maskcli segment a/ -o b/ --sigma 2"\n'
                      'def check(x):\n    """Doc --x."""\n    raise ValueError(f"bad {x} (use --resize-mask)")\n'
                      'PIPE = "pipe `maskcli segment --json` records"\n')
    assert [text for _, text in _texts(sample) if _flagged(text)] == [" (use --resize-mask)"]


@pytest.mark.parametrize("path", _library_files(), ids=lambda p: p.relative_to(PACKAGE).as_posix())
def test_library_messages_name_parameters_not_flags(path: Path) -> None:
    flagged = [f"line {line}: {text!r}" for line, text in _texts(path) if _flagged(text)]
    assert not flagged, (f"{path.name} words a message with a command-line flag: {flagged}; name the parameter "
                         "(`name` or `name=value` in backquotes) and map it in maskcli/cli/flags.py")


@pytest.mark.parametrize("path", sorted(PACKAGE.rglob("*.py")), ids=lambda p: p.relative_to(PACKAGE).as_posix())
def test_only_the_ray_engine_imports_ray(path: Path) -> None:
    relative = path.relative_to(PACKAGE).as_posix()
    wrong = sorted(m for m in _imports(path) if m.split(".")[0] == "ray")
    assert relative == "engines/ray.py" or not wrong, f"{relative} imports {wrong}; only maskcli/engines/ray.py may"


@pytest.mark.parametrize("path", sorted(PACKAGE.rglob("*.py")), ids=lambda p: p.relative_to(PACKAGE).as_posix())
def test_only_the_server_imports_the_web_stack(path: Path) -> None:
    relative = path.relative_to(PACKAGE).as_posix()
    web = sorted(m for m in _imports(path) if m.split(".")[0] in {"starlette", "uvicorn", "fastapi", "multipart"})
    assert relative.startswith("serve/") or not web, f"{relative} imports {web}; only maskcli/serve/ may"


def test_the_serve_command_loads_the_web_stack_only_when_it_runs() -> None:
    import subprocess
    import sys

    code = ("import sys, maskcli.cli.app, maskcli.cli.serve, maskcli.serve; "
            "print(sorted(m for m in {'starlette', 'uvicorn'} if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", code], check=False, capture_output=True, text=True, cwd=REPO)
    assert done.stdout.strip() == "[]", done.stderr


def _cycles(files: list[Path], root: Path = REPO) -> list[list[str]]:
    """The import circles among ``files`` (lazy imports count: a circle is one idea split in two, wherever the
    import sits), each as the modules around it; module names are the files' paths under ``root``."""
    names = {".".join(p.relative_to(root).with_suffix("").parts).removesuffix(".__init__"): p for p in files}
    edges = {name: sorted(m for m in _imports(path) if m in names and m != name) for name, path in names.items()}
    found: list[list[str]] = []
    state: dict[str, int] = {}

    def visit(name: str, trail: list[str]) -> None:
        state[name] = 1
        for after in edges[name]:
            if state.get(after) == 1:
                found.append(trail[trail.index(after):] + [name] if after in trail else [after, name])
            elif after not in state:
                visit(after, [*trail, name])
        state[name] = 2

    for name in sorted(names):
        if name not in state:
            visit(name, [])
    return found


def test_the_cycle_walk_finds_a_circle(tmp_path: Path) -> None:
    (tmp_path / "a.py").write_text("from b import x\n")
    (tmp_path / "b.py").write_text("def f():\n    import a\n")
    (tmp_path / "c.py").write_text("import a\n")
    assert _cycles([tmp_path / name for name in ("a.py", "b.py", "c.py")], tmp_path) == [["a", "b"]]
    assert not _cycles([tmp_path / name for name in ("b.py", "c.py")], tmp_path)


@pytest.mark.parametrize("path", sorted((PACKAGE / "cli").glob("*.py")), ids=lambda p: p.name)
def test_the_commands_make_library_calls_not_runs(path: Path) -> None:
    # A command builds settings and makes one library call (maskcli.batch and the like): the runner, the jobs
    # and the mask sources are the library's business.
    inner = ("maskcli.pipeline", "maskcli.masksources", "maskcli.jobs")
    wrong = sorted(m for m in _imports(path) if m in inner or m.startswith(tuple(f"{name}." for name in inner)))
    assert not wrong, f"cli/{path.name} imports {wrong}"


def test_the_command_line_has_no_import_circle() -> None:
    circles = _cycles(sorted((PACKAGE / "cli").glob("*.py")))
    assert not circles, f"modules of maskcli/cli import each other: {circles}"
