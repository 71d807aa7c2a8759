"""Options shared by the batch commands, declared once, and the library settings they make.

Planning (inputs → items, outputs → a sink) is the library's: :mod:`maskcli.io.planning`, :mod:`maskcli.batch`."""

from __future__ import annotations

import dataclasses
import functools
import inspect
import os
import typing
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Optional

import typer

from maskcli.cli.context import current
from maskcli.errors import OptionError
from maskcli.io import DEFAULT_MAX_PIXELS

if TYPE_CHECKING:  # the types alone: the library loads when a command runs, not for --help
    from maskcli.batch import BatchSettings
    from maskcli.io.sources import Existing

BATCH = "Inputs and outputs"
METHOD = "Method"
CNN = "CNN methods"
RUN = "Running"
REPORT = "Reporting"

Inputs = Annotated[
    Optional[list[str]],
    typer.Argument(
        help="Image files, folders, glob patterns, or - for one image on stdin. "
        "None: read a list of paths (or, for apply, segment's --json records) from stdin.",
        show_default=False,
    ),
]
Output = Annotated[
    Optional[Path],
    typer.Option("--output", "-o", help="Output folder (a file name for one image from stdin; - for stdout).",
                 rich_help_panel=BATCH, show_default=False),
]
Recursive = Annotated[
    bool, typer.Option("--recursive", "-r", help="Descend into sub-folders; outputs mirror the tree.",
                       rich_help_panel=BATCH)
]
FromFile = Annotated[
    Optional[str],
    typer.Option("--from-file", "-T", help="Read input paths from this file, one per line (- for stdin).",
                 rich_help_panel=BATCH, show_default=False),
]
Null = Annotated[
    bool, typer.Option("--null", "-0", help="Paths in lists are NUL-separated (find -print0).", rich_help_panel=BATCH)
]
SkipExisting = Annotated[
    bool, typer.Option("--skip-existing", help="Skip items whose output exists (resume a batch).",
                       rich_help_panel=BATCH)
]
Overwrite = Annotated[
    bool,
    typer.Option("--overwrite", help="Replace existing outputs. Default: an existing output is an error for that "
                 "item, and nothing is replaced.", rich_help_panel=BATCH),
]
MaxPixels = Annotated[
    int, typer.Option("--max-pixels", help="Refuse images larger than this many pixels (decompression-bomb guard).",
                      rich_help_panel=BATCH, min=1)
]
Jobs = Annotated[
    Optional[int],
    typer.Option("--jobs", "-j", help="Cores to use: worker processes, or threads in one process for the CNN and, "
                 "up to 4 cores, for methods made of OpenCV calls (thresholds, edges). Default: the number of cores "
                 "(at most the cores this process may use: larger is clamped).",
                 rich_help_panel=RUN, min=1, show_default=False),
]
Engine = Annotated[
    str,
    typer.Option("--engine", help="Where the work runs: local (this machine) or ray (a Ray cluster; needs "
                 "pip install 'maskcli\\[ray]').", rich_help_panel=RUN),  # \\[: rich markup would eat [ray]
]
RayAddress = Annotated[
    Optional[str],
    typer.Option("--ray-address", help="With --engine ray: the cluster to use (auto, HOST:PORT or "
                 "ray://HOST:10001; default: $RAY_ADDRESS, else a Ray instance started on this machine for the run).",
                 rich_help_panel=RUN, show_default=False),
]
Unordered = Annotated[
    bool, typer.Option("--unordered", help="Report results as they finish instead of in input order.",
                       rich_help_panel=RUN)
]
FailFast = Annotated[bool, typer.Option("--fail-fast", help="Stop at the first failed item.", rich_help_panel=RUN)]
Temporal = Annotated[Optional[float], typer.Option(
    "--temporal", help="Videos: smooth masks over time with this strength in (0, 1), e.g. 0.75 (motion-compensated, "
    "reset at scene cuts). Off by default.", rich_help_panel=RUN, min=0.0, max=0.95, show_default=False)]
Watch = Annotated[bool, typer.Option(
    "--watch", help="Process the input folders, then keep watching them and process each new file once it is "
    "complete; Ctrl-C stops.", rich_help_panel=RUN)]
ShardOption = Annotated[Optional[str], typer.Option(
    "--shard", help="K/N: only the K-th of N disjoint shares of the inputs (by a hash of each path), so that N "
    "runs with 1/N … N/N cover a batch exactly once and write what one run would.", rich_help_panel=RUN,
    show_default=False)]
Json = Annotated[
    bool, typer.Option("--json", help="One JSON record per item on stdout (input, output, status, error, timings, "
                       "method facts).", rich_help_panel=REPORT)
]
Quiet = Annotated[bool, typer.Option("--quiet", "-q", help="No progress, warnings or summary; errors only.",
                                     rich_help_panel=REPORT)]


def _method_names() -> list[str]:
    from maskcli.methods import methods

    return methods.names()


MethodName = Annotated[
        Optional[str],
        typer.Option("--method", "-m", help="How to make the mask; `maskcli methods` lists them. Default: otsu.",
                     rich_help_panel=METHOD, show_default=False, autocompletion=_method_names),
    ]
#: apply's --method: one of its mask sources, so it has no default (apply without a mask source is an error).
ApplyMethodName = Annotated[
        Optional[str],
        typer.Option("--method", "-m", help="Make each image's mask on the fly with this method (`maskcli methods` "
                     "lists them); one of the mask sources, with no default.",
                     rich_help_panel=METHOD, show_default=False, autocompletion=_method_names),
    ]
Preset = Annotated[
        Optional[str],
        typer.Option("--preset", help="Named settings for a kind of data (`maskcli methods --presets`); "
                     "options given here override it.", rich_help_panel=METHOD, show_default=False),
    ]
Polarity = Annotated[
        Optional[str], typer.Option("--polarity", help="bright | dark | auto: which side of a threshold is "
                                    "foreground.", rich_help_panel=METHOD, show_default=False)]
Channel = Annotated[
        Optional[str], typer.Option("--channel", help="gray | r | g | b | h | s | v | l | a | b*: the channel "
                                    "thresholded.", rich_help_panel=METHOD, show_default=False)]
Sigma = Annotated[
        Optional[float], typer.Option("--sigma", help="Gaussian pre-smoothing in pixels (at most twice the "
                                      "image's long side: larger is clamped).", rich_help_panel=METHOD,
                                      show_default=False)]
Model = Annotated[Optional[str], typer.Option("--model", help="CNN model (`maskcli models`); implies "
                                                 "--method cnn.", rich_help_panel=CNN, show_default=False)]
Weights = Annotated[Optional[Path], typer.Option("--weights", help="A local weights file for the model.",
                                                    rich_help_panel=CNN, show_default=False)]
Device = Annotated[Optional[str], typer.Option("--device", help="auto | cpu | cuda | cuda:N.",
                                                  rich_help_panel=CNN, show_default=False)]
BatchSize = Annotated[Optional[int], typer.Option("--batch-size", help="Images per CNN batch (at most 64: "
                                                      "larger is clamped).", rich_help_panel=CNN, min=1,
                                                      show_default=False)]
Classes = Annotated[Optional[str], typer.Option("--classes", help="Semantic models: comma-separated class "
                                                   "names kept as foreground.", rich_help_panel=CNN,
                                                   show_default=False)]

MATTING = "Alpha matting (--refine matting; needs pymatting)"
MattingSolver = Annotated[Optional[str], typer.Option(
    "--matting-solver", help="pymatting's alpha solver: sm (shared matting, default), cf (closed-form), knn, "
    "lkm, rw.",
    rich_help_panel=MATTING, show_default=False)]
MattingBand = Annotated[Optional[float], typer.Option(
    "--matting-band", help="Half-width of the unknown band around the edge, as a fraction of the long side "
    "(default 0.03), and around the mask's own unsure pixels.", rich_help_panel=MATTING, show_default=False)]
MattingMaxSide = Annotated[Optional[int], typer.Option(
    "--matting-max-side", help="Solve the band's bounding box at most this many pixels on its long side, then "
    "upsample alpha (default 800): bounds time and memory.", rich_help_panel=MATTING, show_default=False)]


def refine_option(panel: str) -> Any:
    """``--refine``, shown in ``panel`` of the help (segment's refinement chain, apply's masks)."""
    return Annotated[Optional[str], typer.Option(
        "--refine", help="Refine the mask against the image: matting (an alpha matte for hair and fur), guided "
        "(soft edges snapped to the image's) or grabcut (re-segmented, seeded by the mask).",
        rich_help_panel=panel, show_default=False)]


def class_option(panel: str | None = None, given_as: str = "") -> Any:
    """``--class``: the classes of a COCO file or label images that make the mask (apply, eval, preview, train),
    shown in ``panel`` of the help; ``given_as`` names the option that takes such a file, where there are several."""
    return Annotated[Optional[list[str]], typer.Option(
        "--class", help=f"With a COCO file or label images{given_as}: the classes that make the mask (repeatable or "
        "comma-separated; default all).", rich_help_panel=panel, show_default=False)]


Params = Annotated[
    Optional[list[str]],
    typer.Option("--param", "-p", help="A method option as KEY=VALUE (repeatable); see `maskcli methods NAME`.",
                 rich_help_panel=METHOD, show_default=False),
]


@dataclasses.dataclass
class BatchOptions:
    """How a batch verb finds its inputs, treats existing outputs, runs and reports (segment and apply)."""

    recursive: Recursive = False
    from_file: FromFile = None
    null: Null = False
    skip_existing: SkipExisting = False
    overwrite: Overwrite = False
    max_pixels: MaxPixels = DEFAULT_MAX_PIXELS
    jobs: Jobs = None
    engine: Engine = "local"
    ray_address: RayAddress = None
    unordered: Unordered = False
    fail_fast: FailFast = False
    temporal: Temporal = None
    watch: Watch = False
    shard: ShardOption = None
    json_records: Json = False
    quiet: Quiet = False

    def existing(self) -> Existing:
        """What an existing output means."""
        return existing_policy(self.skip_existing, self.overwrite)

    def executor(self) -> Any:
        """The engine's executor (None: the local engine)."""
        return executor_for(self.engine, self.ray_address, self.jobs)

    def settings(self, inputs: list[str] | None, output: Path | None, name: str = "{stem}.png") -> BatchSettings:
        """The library's batch settings, with this command's streams."""
        from maskcli.batch import BatchSettings
        from maskcli.io.shards import Shard

        io = current()
        shard = Shard.parse(self.shard) if self.shard is not None else None
        executor = self.executor()
        return BatchSettings(inputs, output, name, self.recursive, self.from_file, self.null, self.existing(),
                             self.max_pixels, self.jobs, executor, not self.unordered, self.fail_fast,
                             self.temporal, self.watch, io.stdin, io.binary_stdout, self.json_records, shard)


@dataclasses.dataclass
class MethodOptions:
    """The mask method's settings beside its name: a preset, KEY=VALUE pairs and the named flags (segment and
    apply's on-the-fly masks)."""

    preset: Preset = None
    params: Params = None
    polarity: Polarity = None
    channel: Channel = None
    sigma: Sigma = None
    model: Model = None
    weights: Weights = None
    device: Device = None
    batch_size: BatchSize = None
    classes: Classes = None

    def named(self) -> dict[str, Any]:
        """The named flags, as method options (None where not given)."""
        return {"polarity": self.polarity, "channel": self.channel, "sigma": self.sigma, "model": self.model,
                "weights": str(self.weights) if self.weights else None, "device": self.device,
                "batch_size": self.batch_size, "classes": self.classes}

    def options(self) -> dict[str, Any]:
        """The method's options given: -p pairs, then the named flags."""
        options: dict[str, Any] = parse_params(self.params)
        options.update({k: v for k, v in self.named().items() if v is not None})
        return options


@dataclasses.dataclass
class MattingOptions:
    """The alpha matting refinement's settings."""

    matting_solver: MattingSolver = None
    matting_band: MattingBand = None
    matting_max_side: MattingMaxSide = None

    def settings(self) -> dict[str, Any]:
        """Those given, as refinement settings."""
        given = {"matting_solver": self.matting_solver, "matting_band": self.matting_band,
                 "matting_max_side": self.matting_max_side}
        return {key: value for key, value in given.items() if value is not None}


def grouped(command: Callable[..., Any]) -> Callable[..., Any]:
    """``command`` with each parameter typed as an option group (a dataclass of Typer options, such as
    :class:`BatchOptions`) spelled out as the group's options for Typer, and packed back into the group when the
    command runs: a block of options is declared once and shared by the commands that take it."""
    signature = inspect.signature(command, eval_str=True)
    parameters: list[inspect.Parameter] = []
    groups: dict[str, tuple[type, list[str]]] = {}
    for parameter in signature.parameters.values():
        group = parameter.annotation
        if not (isinstance(group, type) and dataclasses.is_dataclass(group)):
            parameters.append(parameter)
            continue
        hints = typing.get_type_hints(group, include_extras=True)
        fields = [field for field in dataclasses.fields(group) if field.init]
        groups[parameter.name] = (group, [field.name for field in fields])
        parameters += [inspect.Parameter(field.name, parameter.kind, default=field.default,
                                         annotation=hints[field.name]) for field in fields]

    @functools.wraps(command)
    def with_groups(**kwargs: Any) -> Any:
        for name, (group, names) in groups.items():
            kwargs[name] = group(**{key: kwargs.pop(key) for key in names})
        return command(**kwargs)

    # The ignore below: Typer reads the signature a function says it has.
    with_groups.__signature__ = signature.replace(parameters=parameters)  # type: ignore[attr-defined]
    with_groups.__annotations__ = {p.name: p.annotation for p in parameters}
    return with_groups


def executor_for(engine: str, ray_address: str | None, jobs: int | None) -> Any:
    """The engine's executor (None: the local engine, which takes ``jobs``), checking the options it takes."""
    if engine not in ("local", "ray"):
        raise OptionError("--engine", f"expected local or ray, not {engine!r}")
    if engine == "local":
        if ray_address is not None:
            raise OptionError("--ray-address", "needs --engine ray")
        return None
    from maskcli.engines.ray import RayExecutor

    address = ray_address or os.environ.get("RAY_ADDRESS") or None
    if address is not None and jobs is not None:
        raise OptionError("--jobs", f"the Ray cluster at {address} has its own CPUs; drop --jobs")
    return RayExecutor(address, num_cpus=jobs)


def split_names(values: list[str] | None) -> list[str] | None:
    """Names from a repeatable, comma-separated option (``--class a,b --class c``); None when none given.

    >>> split_names(["person,dog", " cat "])
    ['person', 'dog', 'cat']
    """
    names = [name.strip() for value in values or [] for name in value.split(",") if name.strip()]
    return names or None


def parse_params(params: list[str] | None, option: str = "param") -> dict[str, str]:
    """``["k=v", ...]`` to a dict; a pair without ``=`` is a usage error naming the option."""
    parsed: dict[str, str] = {}
    for pair in params or []:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise OptionError(f"--{option}", f"expected KEY=VALUE, got {pair!r}")
        parsed[key.strip().replace("-", "_")] = value.strip()
    return parsed


def existing_policy(skip_existing: bool, overwrite: bool) -> Existing:
    if skip_existing and overwrite:
        raise OptionError("--skip-existing", "cannot be combined with --overwrite")
    return "skip" if skip_existing else "overwrite" if overwrite else "error"
