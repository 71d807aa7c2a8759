"""``maskcli models``: the CNN model zoo and the Segment Anything models, whether each model's weights are cached,
downloading and details."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Annotated, Any

import typer

from maskcli.cli.context import current

app = typer.Typer(
    help="The pretrained CNN models: list them (with whether their weights are cached), download one, show one.",
    invoke_without_command=True,
    add_completion=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _size(spec: Any) -> str:
    size_bytes = getattr(spec, "size_bytes", None)
    if size_bytes:
        return f"{size_bytes / 1e6:.1f} MB"
    return f"~{spec.size_mb:.0f} MB"


@app.callback()
def models_command(ctx: typer.Context) -> None:
    """List the models; `maskcli models info NAME` shows one, `maskcli models download NAME` fetches one."""
    if ctx.invoked_subcommand is not None:
        return
    from rich.table import Table

    from maskcli.cnn import specs, weights

    table = Table(title="CNN models (maskcli segment --model NAME)", title_justify="left")
    table.add_column("name", no_wrap=True)
    for column in ("kind", "size", "licence", "input", "cached"):
        table.add_column(column, overflow="fold")
    for name, spec in specs.SPECS.items():
        cached = weights.find_cached(spec)
        label = f"{name} (default)" if name == specs.DEFAULT_MODEL else name
        input_size = (f"{spec.input_size}×{spec.input_size}" if spec.kind == "salient"
                      else f"short side {spec.input_size}")
        where = "shipped in the package" if weights.bundled_path(spec) else f"yes: {cached}" if cached else "no"
        table.add_row(label, spec.kind, _size(spec), spec.licence.split(";")[0], input_size, where)
    console = current().console()
    console.print(table)
    console.print(_sam_table())
    console.print(f"cache: {weights.cache_dir()} (set MASKCLI_HOME to move it)", highlight=False)


def _sam_table() -> object:
    """The Segment Anything models (`-m sam --model NAME`): two files each, prompts in."""
    from rich.table import Table

    from maskcli.cnn import sam, weights

    table = Table(title="Segment Anything models (maskcli segment -m sam -p model=NAME, with --box/--point/--boxes)",
                  title_justify="left")
    table.add_column("name", no_wrap=True)
    for column in ("takes", "size", "licence", "cached"):
        table.add_column(column, overflow="fold")
    for name in sam.names():
        spec = sam.get(name)
        cached = [weights.find_cached(part) for part in spec.parts]
        label = f"{name} (default)" if name == sam.DEFAULT else name
        where = "yes" if all(cached) else "encoder only" if cached[0] else "decoder only" if cached[1] else "no"
        table.add_row(label, spec.takes, f"~{spec.size_mb:.0f} MB", spec.licence, where)
    return table


@app.command("info")
def info_command(name: Annotated[str, typer.Argument(help="The model's name, or a checkpoint file written by "
                                                      "`maskcli train`.")]) -> None:
    """Show everything known about one model, and where its weights are (or would be) cached; for a checkpoint
    file, the metadata its training saved."""
    from rich.table import Table

    from maskcli.cnn import specs, weights

    if name not in specs.SPECS and Path(name).is_file():
        _checkpoint_info(Path(name))
        return
    spec = specs.get(name)
    rows = []
    for field in dataclasses.fields(spec):
        value = getattr(spec, field.name)
        if field.name == "categories":
            value = ", ".join(value) if value else "none (class-agnostic foreground)"
        rows.append((field.name, "unknown" if value is None else str(value)))
    rows.append(("checksum", spec.checksum()))
    cached = weights.find_cached(spec)
    rows.append(("cache path", str(weights.cache_path(spec))))
    rows.append(("cached", f"yes: {cached}" if cached else "no"))
    if not current().stdout_isatty:
        # Piped or redirected: one unwrapped "field: value" line each, so a URL or checksum can be copied whole.
        for field_name, value in rows:
            print(f"{field_name}: {value}", file=current().stdout)
        return
    table = Table(title=f"model {spec.name}", title_justify="left", show_header=False)
    table.add_column("field", style="bold")
    table.add_column("value", overflow="fold")
    for field_name, value in rows:
        table.add_row(field_name, value)
    current().console().print(table)


def _checkpoint_info(path: Path) -> None:
    from rich.table import Table

    from maskcli.cnn import weights
    from maskcli.errors import WeightsUnavailable

    meta = weights.checkpoint_meta(path)
    if meta is None:
        raise WeightsUnavailable(f"{path} is not a checkpoint written by `maskcli train` (model names: "
                                 f"`maskcli models`)")
    table = Table(title=f"checkpoint {path}", title_justify="left", show_header=False)
    table.add_column("field", style="bold")
    table.add_column("value", overflow="fold")
    for key, value in meta.items():
        if isinstance(value, dict):
            value = ", ".join(f"{k} {v:.4f}" if isinstance(v, float) else f"{k} {v}" for k, v in value.items())
        elif isinstance(value, (list, tuple)):
            value = ", ".join(str(v) for v in value)
        table.add_row(key, str(value))
    table.add_row("use it", f"maskcli segment IMAGES -o MASKS --model {meta.get('base_model')} --weights {path}")
    current().console().print(table)


@app.command("download")
def download_command(
    name: Annotated[str, typer.Argument(help="The model's name (`maskcli models`).")],
    force: Annotated[bool, typer.Option("--force", help="Download again even if a verified file is cached.")] = False,
) -> None:
    """Download a model's weights into the cache and verify their checksum."""
    from maskcli.cnn import specs, weights

    spec = specs.get(name)
    bundled = weights.bundled_path(spec)
    if bundled is not None:
        weights.verify(spec, bundled)
        print(f"maskcli: {spec.name}: shipped with maskcli at {bundled}; nothing to download", file=current().stderr)
        return
    cached = weights.find_cached(spec)
    if cached is not None and not force:
        weights.verify(spec, cached)
        print(f"maskcli: {spec.name}: already cached at {cached}", file=current().stderr)
        return
    if weights.offline_mode():
        weights.download(spec)  # raises the one clear message
    if current().stderr_isatty:
        from maskcli.cli.report import progress_bar

        with progress_bar(current().stderr, "download") as bar:
            task = bar.add_task(spec.filename, total=None)
            path = weights.download(spec, progress=lambda done, total: bar.update(task, completed=done, total=total))
    else:
        path = weights.download(spec)
    print(f"maskcli: {spec.name}: downloaded and verified: {path}", file=current().stderr)


__all__ = ["app"]
