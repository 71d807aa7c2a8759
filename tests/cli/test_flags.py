"""The one table from library parameter names to CLI flags, pinned from both sides: renaming a flag, or a parameter
the library's messages name, breaks a test here; and a library error reaches the user in the command's words."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import numpy as np
import pytest

from maskcli.cli.flags import FLAGS, NAMED, Wording, flag_table
from maskcli.errors import OptionError, ShapeMismatch

from conftest import REPO, run_cli

PACKAGE = REPO / "maskcli"
_REFERENCE = re.compile(r"(?<![`:\w])`([a-z_]+)(?:=[^`]*)?`(?!`)")


def _library_files() -> list[Path]:
    return [p for p in sorted(PACKAGE.rglob("*.py")) if p.relative_to(PACKAGE).parts[0] != "cli"
            and p.name != "__main__.py"]


def _command_flags() -> dict[str, set[str]]:
    import typer.main

    from maskcli.cli.app import app

    group = typer.main.get_command(app)
    found: dict[str, set[str]] = {}

    def walk(command: object, name: str) -> None:
        found[name] = {o for p in command.params for o in (*p.opts, *p.secondary_opts)}  # type: ignore[attr-defined]
        for sub, inner in getattr(command, "commands", {}).items():
            walk(inner, f"{name} {sub}".strip())

    walk(group, "")
    return found


def _library_names() -> tuple[set[str], set[str], set[str]]:
    """Names the library gives errors (constant first arguments of OptionError and its kinds), the names its
    messages refer to in backquotes, and its parameters and fields (function arguments, class attributes, the
    options of registered methods and modes, and the registries' kinds)."""
    from maskcli.composite import modes
    from maskcli.methods import methods
    from maskcli.registry import options_of

    options: set[str] = set()
    references: set[str] = set()
    parameters = {methods.kind, modes.kind} | {
        info.name for registry in (methods, modes) for _, cls in registry.items() for info in options_of(cls)}
    for path in _library_files():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.arg):
                parameters.add(node.arg)
            elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
                parameters.add(node.target.id)
            if (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
                    and node.func.id in {"OptionError", "OutputExists"} and node.args
                    and isinstance(node.args[0], ast.Constant)):
                options.add(node.args[0].value)
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and "\n" not in node.value:
                references.update(_REFERENCE.findall(node.value))
    return options, references, parameters


def test_every_flag_of_the_table_is_a_flag_of_some_command() -> None:
    every = set().union(*_command_flags().values())
    missing = {name: flag for name, flag in flag_table().items() if flag not in every}
    assert not missing, f"the table maps to flags no command has: {missing}"


def test_every_name_of_the_table_is_one_the_library_uses() -> None:
    options, references, parameters = _library_names()
    used = options | references | parameters
    unused = sorted(key for key in flag_table() if key.split("=")[0] not in used)
    assert not unused, f"the table names parameters the library no longer has: {unused}"


def test_every_parameter_a_message_refers_to_has_a_flag() -> None:
    _, references, _ = _library_names()
    assert {"resize_mask", "existing", "max_pixels", "weights"} <= references
    assert not sorted(references - {key.split("=")[0] for key in flag_table()})


def test_every_library_error_name_with_a_flag_of_that_spelling_is_in_the_table() -> None:
    # A new error naming, say, "tolerance" is shown as --tolerance only through the table.
    options, _, _ = _library_names()
    every = set().union(*_command_flags().values())
    # Kept out on purpose: an inference engine (torch | onnxruntime) and a method's "level" are not the flags of
    # the same spelling (--engine picks local or Ray; --level is eval's).
    spelled = {name for name in options if "--" + name.replace("_", "-") in every} - {"engine"}
    assert not sorted(spelled - set(flag_table()))


def test_the_exceptions_table_holds_only_exceptions_to_the_naming_rule() -> None:
    rule = {key: flag for key, flag in FLAGS.items() if flag == "--" + key.replace("_", "-")}
    assert not rule, f"these follow the rule --name-with-dashes: list them in NAMED instead: {rule}"
    assert not NAMED & set(FLAGS)
    assert Wording().option("max_pixels") == "--max-pixels" and Wording().option("val_fraction") == "--val"


def test_wording_follows_the_command() -> None:
    words = Wording()
    assert words.message(OptionError("val_fraction", "must be between 0 and 1, not 2")) == \
        "--val: must be between 0 and 1, not 2"
    assert words.text("gives soft edges; it cannot be combined with `soft=False`") == \
        "gives soft edges; it cannot be combined with --no-soft"
    assert words.text("use `device='cpu'` or `device='auto'`") == "use --device cpu or --device auto"
    assert words.message(OptionError("block_size", "must be odd")) == "block_size: must be odd"
    from maskcli.cli.segment import segment_command

    declared = {flag for flag in _command_flags()["segment"] if flag.startswith("--") and flag != "--help"}
    assert Wording.of_command(segment_command) == Wording(frozenset(declared))
    segment = Wording.of_command(segment_command)
    assert segment.option("level") == "level"  # a method's option, given with -p: segment has no --level
    assert Wording(frozenset(_command_flags()["eval"])).option("level") == "--level"


def test_a_size_mismatch_carries_both_sizes_and_names_the_parameter() -> None:
    from maskcli.masks import require_same_size

    with pytest.raises(ShapeMismatch) as caught:
        require_same_size(np.zeros((2, 4), np.float32), (3, 5, 3))
    assert (caught.value.size, caught.value.expected) == ((4, 2), (5, 3))
    assert str(caught.value) == "mask is 4×2 but the image is 5×3 (use `resize_mask=True` to scale the mask)"


def test_the_cli_shows_library_errors_with_its_flags(tmp_path: Path) -> None:
    import cv2

    cv2.imwrite(str(tmp_path / "a.png"), np.full((6, 8, 3), 200, np.uint8))
    (tmp_path / "masks").mkdir()
    cv2.imwrite(str(tmp_path / "masks" / "a.png"), np.zeros((3, 4), np.uint8))
    done = run_cli("apply", str(tmp_path / "a.png"), "--masks", str(tmp_path / "masks"), "-o", str(tmp_path / "o"),
                   "--json")
    assert done.returncode == 1
    assert b"mask is 4\xc3\x973 but the image is 8\xc3\x976 (use --resize-mask to scale the mask)" in done.stderr
    assert b"(use --resize-mask to scale the mask)" in done.stdout  # the --json record speaks the same words
    done = run_cli("segment", str(tmp_path / "a.png"), "-o", str(tmp_path / "m"), "--hard", "0.5", "--soft")
    assert done.returncode == 2 and b"maskcli: error: --hard: cannot be combined with --soft\n" in done.stderr
    done = run_cli("segment", str(tmp_path / "a.png"), "-o", str(tmp_path / "m"), "-m", "otsu", "-p", "sigma=-1")
    assert done.returncode == 2 and done.stderr.startswith(b"maskcli: error: --sigma: ")
    (tmp_path / "empty").mkdir()
    done = run_cli("segment", str(tmp_path / "empty"), "-o", str(tmp_path / "m2"))
    assert b"no images in this folder (sub-folders are searched with --recursive)" in done.stderr
    assert run_cli("segment", str(tmp_path / "a.png"), "-o", str(tmp_path / "m"), "-q").returncode == 0
    done = run_cli("segment", str(tmp_path / "a.png"), "-o", str(tmp_path / "m"))
    assert done.returncode == 1
    assert b"exists (use --overwrite to replace or --skip-existing)" in done.stderr
