"""``maskcli methods`` and ``maskcli modes``: what the registries hold, read from the registries."""

from __future__ import annotations

from typing import Annotated, Any, Optional

import typer

from maskcli.cli.context import current
from maskcli.registry import Registry, options_of


def _table(registry: Registry[Any], title: str) -> None:
    from rich.table import Table

    table = Table(title=title, title_justify="left")
    table.add_column("name", style="bold")
    table.add_column("summary")
    for name, cls in registry.items():
        table.add_row(name, getattr(cls, "summary", ""))
    current().console().print(table)


def _detail(registry: Registry[Any], name: str, flag: str = "-p") -> None:
    from rich.table import Table

    cls = registry.get(name)
    console = current().console()
    console.print(f"[bold]{name}[/bold]: {getattr(cls, 'summary', '')}")
    doc = (cls.__doc__ or "").strip().split("\n\n")[0]
    if doc and not doc.startswith(cls.__name__ + "("):
        console.print(doc, markup=False)
    table = Table(title=f"options ({flag} KEY=VALUE)", title_justify="left")
    for column in ("option", "type", "default", "meaning"):
        table.add_column(column)
    for info in options_of(cls):
        table.add_row(info.name, info.type_name, repr(info.default), info.help)
    console.print(table)
    if getattr(cls, "example", ""):
        console.print(f"example: {cls.example}", markup=False, highlight=False)


def _presets_table() -> None:
    from rich.table import Table

    from maskcli.presets import PRESETS

    table = Table(title="presets (--preset NAME)", title_justify="left")
    for column in ("name", "method", "settings", "for"):
        table.add_column(column)
    for name, preset in sorted(PRESETS.items()):
        settings = {**preset.options, **preset.refinement}
        table.add_row(name, preset.method, " ".join(f"{k}={v}" for k, v in settings.items()), preset.summary)
    current().console().print(table)


def methods_command(
    name: Annotated[Optional[str], typer.Argument(help="Show this method's options, defaults and an example.")] = None,
    presets: Annotated[bool, typer.Option("--presets", help="List the named presets instead.")] = False,
) -> None:
    """List the mask methods, or show one method's options."""
    from maskcli.methods import methods

    if presets:
        _presets_table()
    elif name is None:
        _table(methods, "mask methods (maskcli segment -m NAME)")
    else:
        _detail(methods, name)


def modes_command(
    name: Annotated[Optional[str], typer.Argument(help="Show this mode's options, defaults and an example.")] = None,
) -> None:
    """List the compositing modes of `maskcli apply`, or show one mode's options."""
    from maskcli.composite import modes

    if name is None:
        _table(modes, "compositing modes (maskcli apply --mode NAME)")
    else:
        _detail(modes, name, flag="-s")
