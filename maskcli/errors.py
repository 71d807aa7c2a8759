"""The errors maskcli raises.

The library never prints and never exits: it raises one of these, and the CLI maps each kind to an exit status
(see ``maskcli.cli.report``). Every message names what went wrong and, where it helps, what to do about it.

Messages speak of the library's parameters, never of the command line's flags: a parameter is written in single
backquotes, alone or with a value (`` `resize_mask=True` ``, `` `existing='overwrite'` ``), and
:attr:`OptionError.option` names the parameter whose value is wrong. The command line turns each into the flag
that sets it (``--resize-mask``, ``--overwrite``) from its one table, so a Python caller and a shell user each read
their own words.

>>> str(ShapeMismatch("mask", (4, 2), (3, 2)))
'mask is 4×2 but the image is 3×2 (use `resize_mask=True` to scale the mask)'
"""

from __future__ import annotations

from collections.abc import Sequence


def did_you_mean(name: str, choices: object) -> str:
    """The hint for an unknown name: ``"; did you mean 'x'?"`` for the closest of ``choices``, else ``""``.

    >>> did_you_mean("otzu", ["otsu", "li"]), did_you_mean("zzz", ["otsu"])
    ("; did you mean 'otsu'?", '')
    """
    import difflib

    # The ignore below: the choices are strings; typeshed's overloads want a Sequence[str].
    close = difflib.get_close_matches(name, list(choices), n=1)  # type: ignore[call-overload]
    return f"; did you mean {close[0]!r}?" if close else ""


class MaskcliError(Exception):
    """Base class of every error maskcli raises on purpose."""


class InputError(MaskcliError):
    """One input cannot be used: unreadable, not an image, too large, missing its mask.

    This fails one item of a batch; the batch goes on.
    """


class PixelLimit(InputError):
    """An image (or mask) is larger than the pixel limit (``max_pixels``): refused before any pixel is decoded."""


class OptionError(MaskcliError, ValueError):
    """An option has a value that cannot work (a usage error, exit status 2).

    Parameters
    ----------
    option : str
        The parameter's name (``block_size``, ``hard``).
    message : str
        What is wrong with the value and what would be right (other parameters in backquotes, see the module).
    """

    def __init__(self, option: str, message: str) -> None:
        self.option = option
        self.message = message
        super().__init__(f"{option}: {message}")


class OutputExists(OptionError):
    """An output that exists would be replaced and ``overwrite`` was not asked for (a usage error)."""

    def __init__(self, option: str, path: str) -> None:
        self.path = path
        super().__init__(option, f"{path} exists; replace it with `overwrite=True` or choose another file")


class SetupError(MaskcliError):
    """The run cannot start: no inputs, weights or device unavailable (exit status 3)."""


class WeightsUnavailable(SetupError):
    """Pretrained weights are missing, corrupt, or of the wrong architecture."""


class DeviceUnavailable(SetupError):
    """The compute device asked for does not exist on this machine."""


class ShapeMismatch(InputError):
    """A mask's size differs from its image's size; ``size`` and ``expected`` are both, as (width, height).

    Parameters
    ----------
    what : str
        What does not fit ("mask", "prediction").
    size, expected : tuple of int
        Its width and height, and those it should have.
    against : str
        What it should fit ("the image", "the truth").
    hint : str
        How to make it fit, or "".
    """

    def __init__(self, what: str, size: tuple[int, int], expected: tuple[int, int], *, against: str = "the image",
                 hint: str = " (use `resize_mask=True` to scale the mask)") -> None:
        self.what, self.size, self.expected = what, tuple(size), tuple(expected)
        (width, height), (expected_width, expected_height) = self.size, self.expected
        super().__init__(f"{what} is {width}×{height} but {against} is {expected_width}×{expected_height}{hint}")


class OutputError(InputError):
    """An output cannot be written (read-only folder, would overwrite an input, outside the output folder)."""


class OutputTaken(OutputError):
    """An output that was not to be replaced exists: it appeared after the batch was planned (another run writing
    into the same folder). ``skip``: the batch skips such items (``existing='skip'``) rather than failing them."""

    def __init__(self, path: str, *, skip: bool = False) -> None:
        self.path, self.skip = path, skip
        super().__init__(f"output {path} exists: another process wrote it during this run (use "
                         "`existing='overwrite'` to replace or `existing='skip'`)")


class OutputUnavailable(SetupError, OutputError):
    """The output folder can take no file (read-only, no permission, full): the batch stops (exit status 3),
    since every other item would fail the same way."""


class Interrupted(KeyboardInterrupt):
    """The run was stopped (Ctrl-C, SIGTERM); ``finished`` holds the results of items that completed meanwhile,
    so every file left on disk can be reported."""

    def __init__(self, finished: Sequence[object] | None = None) -> None:
        super().__init__()
        self.finished = list(finished or [])


class WriteStopped(MaskcliError):
    """A write was abandoned (its temp file removed) because the run is stopping."""
