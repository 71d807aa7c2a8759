"""The dependency direction of the design: nothing imports the CLI, and only the CNN part imports torch.

(That the commands without a model start without importing torch is proved by running them, in test_cli.py.)"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from conftest import REPO

PACKAGE = REPO / "maskcli"


def _import_statements(path: Path) -> Iterator[tuple[str, list[str]]]:
    """(module, names) for every absolute import in a file, at any depth (lazy imports inside functions and
    TYPE_CHECKING imports count too); names is empty for ``import module``."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from ((alias.name, []) for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            yield node.module, [alias.name for alias in node.names]


def _imports(path: Path) -> set[str]:
    """Every module a file imports, and every name it takes from one as ``module.name``."""
    found: set[str] = set()
    for module, names in _import_statements(path):
        found.add(module)
        found.update(f"{module}.{name}" for name in names)
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


#: The layers of the design, bottom up; a module sits in the layer of its longest listed prefix and may import its
#: own layer and those below, never above (docs/architecture.md draws it).
LAYERS: dict[str, int] = {
    # 0 base: facts and vocabulary every part shares
    "maskcli._version": 0, "maskcli.errors": 0, "maskcli.registry": 0, "maskcli.cores": 0, "maskcli.masks": 0,
    "maskcli.imageops": 0, "maskcli.color": 0, "maskcli.prompts": 0,
    # 1 files and the runner's vocabulary
    "maskcli.io": 1, "maskcli.work": 1,
    # 2 domain: what a mask is made from, how it is cleaned, applied, scored, stored, drawn
    "maskcli.methods": 2, "maskcli.refine": 2, "maskcli.composite": 2, "maskcli.formats": 2, "maskcli.cnn": 2,
    "maskcli.masksources": 2, "maskcli.metrics": 2, "maskcli.matting": 2, "maskcli.presets": 2,
    "maskcli.instances": 2, "maskcli.promptsources": 2, "maskcli.evaluate": 2, "maskcli.preview.drawing": 2,
    "maskcli.video.temporal": 2, "maskcli.train_defaults": 2,
    # 3 jobs and engines: one runner drives every verb
    "maskcli.jobs": 3, "maskcli.engines": 3, "maskcli.pipeline": 3, "maskcli.video": 3, "maskcli.watching": 3,
    "maskcli.compare": 3, "maskcli.train": 3, "maskcli.preview": 3,
    # 4 the library's batch API (whole batches, one call per command), the package's functions, the server
    "maskcli": 4, "maskcli.batch": 4, "maskcli.serve": 4,
    # 5 the command line
    "maskcli.cli": 5, "maskcli.__main__": 5,
}

#: Library files allowed past 400 lines, and why each still holds one idea.
LONG_FILES = {
    "io/decode.py": "one decoder with the checks every format needs before its pixels are trusted",
    "io/sources.py": "inputs to items: folders, globs, lists and stdin under one set of walking rules",
    "io/video.py": "PyAV decode and encode of one video, its frames and timing",
    "engines/ray.py": "the Ray engine: its actors, the driver loop and its stop, which only work together",
    "train.py": "fine_tune: pairing, the split, resume and the checkpoint of one training run",
    "io/files.py": "reading regular files and writing them atomically under one write gate",
    "cnn/weights.py": "the weights cache: download, checksum, checkpoints and their metadata",
}


def _module_name(path: Path, root: Path = REPO) -> str:
    return ".".join(path.relative_to(root).with_suffix("").parts).removesuffix(".__init__")


def _module_imports(path: Path, modules: set[str]) -> set[str]:
    """The modules among ``modules`` that a file imports: ``from a import b`` is an import of ``a.b`` where that is
    a module, else of ``a``."""
    found: set[str] = set()
    for module, names in _import_statements(path):
        inner = {f"{module}.{name}" for name in names} & modules
        found.update(inner)
        if not names or len(inner) < len(names):
            found.add(module)
    resolved = set()
    for name in found:  # a name inside a module (maskcli.io.files.write_atomic) is that module
        while name and name not in modules:
            name = name.rpartition(".")[0]
        if name:
            resolved.add(name)
    return resolved


def _layer(module: str) -> int | None:
    parts = module.split(".")
    for size in range(len(parts), 0, -1):
        level = LAYERS.get(".".join(parts[:size]))
        if level is not None:
            return level
    return None


_MODULES = {_module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


@pytest.mark.parametrize("name", sorted(_MODULES))
def test_every_module_has_a_layer(name: str) -> None:
    assert _layer(name) is not None, f"{name} is in no layer of LAYERS: add it where it belongs"


@pytest.mark.parametrize("name", sorted(_MODULES))
def test_dependencies_point_down_the_layers(name: str) -> None:
    own = _layer(name)
    assert own is not None
    upward = sorted(m for m in _module_imports(_MODULES[name], set(_MODULES)) if (_layer(m) or 0) > own)
    assert not upward, f"{name} (layer {own}) imports {upward} from a layer above it"


def test_the_layer_walk_sees_a_lazy_import_up(tmp_path: Path) -> None:
    (tmp_path / "maskcli").mkdir()
    (tmp_path / "maskcli" / "errors.py").write_text("def f():\n    from maskcli.batch import run\n")
    (tmp_path / "maskcli" / "batch.py").write_text("run = 1\n")
    modules = {"maskcli.errors", "maskcli.batch"}
    assert _module_imports(tmp_path / "maskcli" / "errors.py", modules) == {"maskcli.batch"}
    assert _layer("maskcli.batch") > _layer("maskcli.errors")


def test_the_package_has_no_import_circle() -> None:
    circles = _cycles(list(_MODULES.values()))
    assert not circles, f"modules of maskcli import each other: {circles}"


@pytest.mark.parametrize("path", _library_files(), ids=lambda p: p.relative_to(PACKAGE).as_posix())
def test_a_library_file_holds_one_idea(path: Path) -> None:
    relative = path.relative_to(PACKAGE).as_posix()
    lines = len(path.read_text(encoding="utf-8").splitlines())
    assert lines <= 400 or relative in LONG_FILES, f"{relative} has {lines} lines: split it, or say why in LONG_FILES"


def test_the_long_files_named_are_long() -> None:
    short = sorted(name for name in LONG_FILES
                   if len((PACKAGE / name).read_text(encoding="utf-8").splitlines()) <= 400)
    assert not short, f"{short} are 400 lines or fewer now: take them out of LONG_FILES"


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
    names = {_module_name(p, root): p for p in files}
    edges = {name: sorted(m for m in _module_imports(path, set(names)) if m != name) for name, path in names.items()}
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
