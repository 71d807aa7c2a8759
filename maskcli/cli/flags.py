"""The library's words turned into the command line's: one table from parameter names to the flags that set them.

The library never names a flag. Its errors carry parameter names (:attr:`maskcli.errors.OptionError.option`) and its
messages write a parameter in single backquotes, alone or with a value (`` `resize_mask=True` ``, ``
`existing='overwrite'` ``). :class:`Wording` rewrites both for the command that runs, by the rule ``--`` + name with
dashes for the names of :data:`NAMED` and by :data:`FLAGS` for the exceptions, so a user reads ``--resize-mask`` and
``--overwrite``. An error's parameter the running command has no flag for stays as it is (a method option such as
``level`` is given with ``-p level=...``, whatever another command's ``--level`` means); a parameter a message refers to
is always written as its flag, since a message names it to point at that flag.

>>> print(Wording().text("mask is 4×2 but the image is 3×2 (use `resize_mask=True` to scale the mask)"))
mask is 4×2 but the image is 3×2 (use --resize-mask to scale the mask)
>>> print(Wording().text("use `existing='overwrite'` to replace or `existing='skip'`; pass `weights=PATH`"))
use --overwrite to replace or --skip-existing; pass --weights PATH
>>> segment = Wording(frozenset({"--hard"}))
>>> print(segment.text("with `hard`, not `soft=True`"), segment.option("level"), Wording().option("level"))
with --hard, not --soft level --level
"""

from __future__ import annotations

import contextlib
import contextvars
import dataclasses
import functools
import inspect
import re
import typing
from collections.abc import Callable, Collection, Iterator
from typing import Any

from maskcli.errors import OptionError

#: Library parameters whose flag follows the rule: ``--`` and the name with dashes (``max_pixels`` → ``--max-pixels``).
NAMED: frozenset[str] = frozenset({
    # inputs and outputs
    "output", "recursive", "from_file", "max_pixels", "overwrite", "format", "quality", "jobs",
    # methods
    "method", "preset", "polarity", "channel", "sigma", "model", "weights", "device", "batch_size", "classes",
    "labels",
    # prompts
    "union", "boxes", "box", "point", "class_list",
    # videos and watched folders
    "watch", "shard",
    # the server
    "port", "token", "timeout", "batch_window",
    # the refinement chain
    "open", "close", "erode", "dilate", "fill_holes", "max_hole", "min_size", "keep_largest", "refine",
    "matting_solver", "matting_band", "matting_max_side", "invert", "feather", "hard", "soft",
    # where apply's masks come from, and what it does with them
    "masks", "mask", "mask_name", "alpha", "class", "resize_mask", "mode", "background",
    # eval, preview, export
    "to", "category", "polygons", "instances", "methods", "level", "tolerance", "both_classes", "sheet", "columns",
    "cell", "opacity", "outline", "images",
    # train
    "val_images", "val_masks", "size", "crop", "epochs", "patience", "lr", "freeze", "flips", "seed", "resume",
    "time",
})

#: The exceptions to that rule: a parameter (``name``, or ``name=value`` where a value has a flag of its own) whose
#: flag is spelled otherwise. A name alone given a value (`` `weights=PATH` ``) reads as the flag followed by the value.
FLAGS: dict[str, str] = {
    "template": "--name",
    "existing=overwrite": "--overwrite",
    "existing=skip": "--skip-existing",
    "bits": "--mask-bits",
    "num_cpus": "--jobs",
    "soft=False": "--no-soft",
    "val_fraction": "--val",
    "records_on_stdout": "--json",
}


def flag_table() -> dict[str, str]:
    """Every parameter with a flag → its flag: the rule's names and the exceptions.

    >>> table = flag_table()
    >>> table["max_pixels"], table["template"], table["existing=skip"]
    ('--max-pixels', '--name', '--skip-existing')
    """
    return {**{name: "--" + name.replace("_", "-") for name in NAMED}, **FLAGS}


def _flag(key: str) -> str | None:
    """The flag of one parameter (``name`` or ``name=value``), or None where it has none."""
    if key in FLAGS:
        return FLAGS[key]
    return "--" + key.replace("_", "-") if key in NAMED else None


#: A parameter reference in a library message: `name` or `name=value`.
_REFERENCE = re.compile(r"(?<![`:\w])`([a-z_]+)(?:=([^`]*))?`(?!`)")


def _unquoted(value: str) -> str:
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
        return value[1:-1]
    return value


@dataclasses.dataclass(frozen=True)
class Wording:
    """Library messages in the words of one command.

    Parameters
    ----------
    options : collection of str, optional
        The flags of the command that runs; None: any flag of the table.
    """

    options: Collection[str] | None = None

    @classmethod
    def of_command(cls, function: Callable[..., Any]) -> Wording:
        """The wording of a Typer command function: the long flags it declares."""
        return cls(_flags_of(function))

    @classmethod
    def current(cls) -> Wording:
        """The wording of the command that runs now (any flag outside one)."""
        return _current.get() or cls()

    @contextlib.contextmanager
    def current_for_command(self) -> Iterator[Wording]:
        """Make this the wording of the block (a command's run)."""
        token = _current.set(self)
        try:
            yield self
        finally:
            _current.reset(token)

    def _usable(self, flag: str) -> bool:
        return self.options is None or flag in self.options

    def flag(self, name: str, value: str | None = None, *, anywhere: bool = False) -> str | None:
        """The command-line form of parameter ``name`` (given ``value``), or None where this command (or, with
        ``anywhere``, the table) has none."""
        if value is not None:
            plain = _unquoted(value)
            exact = _flag(f"{name}={plain}")
            if exact is not None:
                return exact if anywhere or self._usable(exact) else None
        flag = _flag(name)
        if flag is None or not (anywhere or self._usable(flag)):
            return None
        if value is None or value == "True":
            return flag
        return f"{flag} {_unquoted(value)}"

    def text(self, text: str) -> str:
        """``text`` with every parameter reference of the table written as its flag."""
        def replace(match: re.Match[str]) -> str:
            return self.flag(match.group(1), match.group(2), anywhere=True) or match.group(0)

        return _REFERENCE.sub(replace, text)

    def option(self, name: str) -> str:
        """The flag for the parameter ``name`` (as it is, when the command has none)."""
        return self.flag(name) or name

    def message(self, error: BaseException) -> str:
        """The one line an error is shown as."""
        if isinstance(error, OptionError):
            return f"{self.option(error.option)}: {self.text(error.message)}"
        return self.text(str(error))


_current: contextvars.ContextVar[Wording | None] = contextvars.ContextVar("maskcli_wording", default=None)


@functools.cache
def _flags_of(function: Callable[..., Any]) -> frozenset[str]:
    """The long flags (``--hard``, ``--no-soft``) of the options a Typer command function declares."""
    found: set[str] = set()
    for parameter in inspect.signature(function, eval_str=True).parameters.values():
        if typing.get_origin(parameter.annotation) is not typing.Annotated:
            continue
        for info in typing.get_args(parameter.annotation)[1:]:
            declared = [getattr(info, "default", None), *(getattr(info, "param_decls", None) or ())]
            found.update(part.strip() for decl in declared if isinstance(decl, str) for part in decl.split("/")
                         if part.strip().startswith("--"))
    return frozenset(found)
