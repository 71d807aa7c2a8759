"""Write ``docs/cli-reference.md`` from the Typer app itself, so that the page says what ``--help`` says.

Every command and sub-command, in the order ``maskcli --help`` lists them: its help text, its usage line, its
arguments, and its options grouped under the headings of its ``--help`` (option, value, default, help). Run it
after changing a command's options; ``--check`` only compares (exit 1 when the page is stale), as the tests do::

    python docs/make_cli_reference.py            # rewrites docs/cli-reference.md
    python docs/make_cli_reference.py --check    # exit 1 when docs/cli-reference.md differs from the app
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path
from typing import Any

import typer

REPO = Path(__file__).resolve().parents[1]
PAGE = REPO / "docs" / "cli-reference.md"
#: The heading of options that name no help panel, as Typer's help shows them.
OPTIONS = "Options"


def _is_option(param: Any) -> bool:
    # Typer carries its own copy of Click, so the parameter classes are told apart by kind, not by import.
    return param.param_type_name == "option"


def _cell(text: str) -> str:
    """One line of Markdown table text: whitespace collapsed, pipes escaped."""
    return re.sub(r"\s+", " ", text).strip().replace("|", "\\|")


def _code(text: str) -> str:
    """A table cell in code type (metavars such as ``<path>`` would otherwise read as HTML), or nothing."""
    return f"`{_cell(text)}`" if text else ""


def _help(command: Any) -> list[str]:
    """The command's help text as Markdown paragraphs (Click's ``\\b`` no-rewrap markers become code blocks)."""
    lines: list[str] = []
    for paragraph in re.split(r"\n\s*\n", (command.help or "").strip()):
        if paragraph.startswith("\b"):
            body = paragraph[1:].strip("\n")
            lines += ["```", *body.splitlines(), "```", ""]
        elif paragraph:
            lines += [re.sub(r"\s+", " ", paragraph).strip(), ""]
    return lines


def _value(param: Any, ctx: Any) -> str:
    if _is_option(param) and param.is_flag:
        return ""
    try:
        metavar = param.make_metavar(ctx)  # type: ignore[call-arg]  # Click >= 8.2 takes the context
    except TypeError:
        metavar = param.make_metavar()  # type: ignore[call-arg]
    return metavar.replace("...", "…")


def _default(param: Any) -> str:
    default = param.default
    if not param.show_default or default is None or callable(default) or (param.is_flag and default is False):
        return ""
    if param.is_flag and param.secondary_opts:
        return param.opts[0] if default else param.secondary_opts[0]
    if isinstance(default, (list, tuple)):
        return ", ".join(map(str, default)) if default else ""
    return str(default)


def _option_names(param: Any) -> str:
    names = sorted(param.opts, key=lambda name: (name.startswith("--"), name))[::-1]
    text = ", ".join(f"`{name}`" for name in names)
    if param.secondary_opts:
        text += " / " + ", ".join(f"`{name}`" for name in param.secondary_opts)
    return text


def _command(command: Any, ctx: Any, level: int) -> list[str]:
    path = ctx.command_path
    lines = [f"{'#' * level} `{path}`", "", *_help(command)]
    usage = " ".join(command.collect_usage_pieces(ctx))
    lines += ["```", f"{path} {usage}".rstrip(), "```", ""]
    arguments = [p for p in command.params if p.param_type_name == "argument"]
    if arguments:
        lines += ["| argument | value | help |", "| --- | --- | --- |"]
        lines += [f"| `{p.human_readable_name}` | {_code(_value(p, ctx))} | {_cell(getattr(p, 'help', '') or '')} |"
                  for p in arguments]
        lines.append("")
    panels: dict[str, list[Any]] = {}
    for param in command.params:
        if _is_option(param) and not param.hidden:
            panels.setdefault(getattr(param, "rich_help_panel", None) or OPTIONS, []).append(param)
    for panel, options in panels.items():
        lines += [f"**{panel}**", "", "| option | value | default | help |", "| --- | --- | --- | --- |"]
        lines += [f"| {_option_names(o)} | {_code(_value(o, ctx))} | {_cell(_default(o))} | {_cell(o.help or '')} |"
                  for o in options]
        lines.append("")
    if hasattr(command, "list_commands"):
        for name in command.list_commands(ctx):
            sub = command.get_command(ctx, name)
            if sub is not None and not sub.hidden:
                lines += _command(sub, sub.context_class(sub, info_name=name, parent=ctx), level + 1)
    return lines


def render() -> str:
    """The whole page, from the app as it is now."""
    from maskcli.cli.app import app

    root = typer.main.get_command(app)
    ctx = root.context_class(root, info_name="maskcli")
    lines = ["# Command-line reference", "",
             "Generated from the command-line app by `python docs/make_cli_reference.py`; do not edit by hand (a "
             "test fails when this page and the app differ). The same text, wrapped for a terminal, is in "
             "`maskcli COMMAND --help`. How the options work together: [the user guide](user-guide.md).", ""]
    names = root.list_commands(ctx) if hasattr(root, "list_commands") else []
    lines += ["Commands: " + ", ".join(f"[`{name}`](#maskcli-{name})" for name in names) + ".", ""]
    lines += _command(root, ctx, 2)
    return "\n".join(lines).rstrip("\n") + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only compare: exit 1 when the page is stale")
    args = parser.parse_args(argv)
    text = render()
    if args.check:
        if not PAGE.is_file() or PAGE.read_text(encoding="utf-8") != text:
            print(f"{PAGE.name} is stale: run python docs/make_cli_reference.py", file=sys.stderr)
            return 1
        return 0
    PAGE.write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
