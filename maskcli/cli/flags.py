"""The library's words turned into the command line's: one table from parameter names to the flags that set them.

The library never names a flag. Its errors carry parameter names (:attr:`maskcli.errors.OptionError.option`) and
its messages write a parameter in single backquotes, alone or with a value (`` `resize_mask=True` ``,
`` `existing='overwrite'` ``). :class:`Wording` rewrites both with :data:`FLAGS` for the command that runs, so a
user reads ``--resize-mask`` and ``--overwrite``. An error's parameter the running command has no flag for stays as it is (a
method option such as ``level`` is given with ``-p level=...``, whatever another command's ``--level`` means); a
parameter a message refers to is always written as its flag, since a message names it to point at that flag.

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

#: Library parameter (``name``, or ``name=value`` where a value has a flag of its own) → the flag that sets it.
#: A name alone given a value (`` `weights=PATH` ``) reads as the flag followed by the value.
FLAGS: dict[str, str] = {
    # inputs and outputs
    "output": "--output",
    "template": "--name",
    "recursive": "--recursive",
    "max_pixels": "--max-pixels",
    "existing=overwrite": "--overwrite",
    "existing=skip": "--skip-existing",
    "overwrite": "--overwrite",
    "format": "--format",
    "quality": "--quality",
    "bits": "--mask-bits",
    "jobs": "--jobs",
    "num_cpus": "--jobs",
    # methods
    "method": "--method",
    "preset": "--preset",
    "polarity": "--polarity",
    "channel": "--channel",
    "sigma": "--sigma",
    "model": "--model",
    "weights": "--weights",
    "device": "--device",
    "batch_size": "--batch-size",
    "classes": "--classes",
    "labels": "--labels",
    # prompts
    "boxes": "--boxes",
    "box": "--box",
    "point": "--point",
    "class_list": "--class-list",
    # videos and watched folders
    "watch": "--watch",
    # the server
    "port": "--port",
    "token": "--token",
    "timeout": "--timeout",
    "batch_window": "--batch-window",
    # the refinement chain
    "open": "--open",
    "close": "--close",
    "erode": "--erode",
    "dilate": "--dilate",
    "fill_holes": "--fill-holes",
    "max_hole": "--max-hole",
    "min_size": "--min-size",
    "keep_largest": "--keep-largest",
    "refine": "--refine",
    "matting_solver": "--matting-solver",
    "matting_band": "--matting-band",
    "matting_max_side": "--matting-max-side",
    "invert": "--invert",
    "feather": "--feather",
    "hard": "--hard",
    "soft": "--soft",
    "soft=False": "--no-soft",
    # where apply's masks come from, and what it does with them
    "masks": "--masks",
    "mask": "--mask",
    "mask_name": "--mask-name",
    "alpha": "--alpha",
    "class": "--class",
    "resize_mask": "--resize-mask",
    "mode": "--mode",
    "background": "--background",
    # eval, preview, export
    "methods": "--methods",
    "level": "--level",
    "tolerance": "--tolerance",
    "both_classes": "--both-classes",
    "sheet": "--sheet",
    "columns": "--columns",
    "cell": "--cell",
    "opacity": "--opacity",
    "outline": "--outline",
    "images": "--images",
    # train
    "val_fraction": "--val",
    "val_images": "--val-images",
    "val_masks": "--val-masks",
    "size": "--size",
    "crop": "--crop",
    "epochs": "--epochs",
    "patience": "--patience",
    "lr": "--lr",
    "freeze": "--freeze",
    "flips": "--flips",
    "seed": "--seed",
    "resume": "--resume",
    "time": "--time",
}

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
            exact = FLAGS.get(f"{name}={plain}")
            if exact is not None:
                return exact if anywhere or self._usable(exact) else None
        flag = FLAGS.get(name)
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


@functools.lru_cache(maxsize=None)
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
