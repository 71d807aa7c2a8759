"""Prompts: where the objects of an image are, as a box and/or points, each asking for one mask.

A :class:`Prompt` holds a box ``(x0, y0, x1, y1)`` in image pixels (corners, x to the right, y down), points
``(x, y, positive)`` (positive 1: on the object, 0: not on it), and a label (the object's category). A prompted
method (:class:`maskcli.methods.prompted.PromptedMethod`) turns each prompt into one mask.

Prompts come from a file or the command line (:mod:`maskcli.promptsources`) before the image is read, so their
coordinates are checked against the decoded image (:func:`check_prompts`): a prompt that does not fit fails its
image with a message naming the prompt, and the batch goes on.

>>> prompt = Prompt(box=(10, 5, 50, 40), points=((30, 20, 1),), label="horse")
>>> prompt.rect()
(10, 5, 40, 35)
>>> check_prompts([prompt], width=60, height=45) == [prompt]
True
>>> check_prompts([Prompt(box=(10, 5, 80, 40), label="horse")], width=60, height=45)
Traceback (most recent call last):
...
maskcli.errors.InputError: prompt 1 (horse): box [10, 5, 80, 40] reaches past the 60×45 image
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

from maskcli.errors import InputError, OptionError


@dataclasses.dataclass(frozen=True)
class Prompt:
    """One object asked for: a box, points, or both, and its label."""

    box: tuple[float, float, float, float] | None = None
    points: tuple[tuple[float, float, int], ...] = ()
    label: str = "object"

    def __post_init__(self) -> None:
        if self.box is None and not self.points:
            raise ValueError("a prompt needs a box or at least one point")

    def rect(self) -> tuple[int, int, int, int]:
        """The box as whole pixels ``(x, y, w, h)`` (at least one pixel wide and high), as OpenCV takes it."""
        assert self.box is not None
        x0, y0 = int(self.box[0]), int(self.box[1])
        x1, y1 = max(x0 + 1, round(self.box[2])), max(y0 + 1, round(self.box[3]))
        return x0, y0, x1 - x0, y1 - y0

    def record(self) -> dict[str, Any]:
        """The prompt as JSON (the JSON Lines form :mod:`maskcli.promptsources` reads, without the image).

        >>> Prompt(box=(1, 2, 3, 4), label="cat").record()
        {'box': [1, 2, 3, 4], 'label': 'cat'}
        """
        record: dict[str, Any] = {}
        if self.box is not None:
            record["box"] = [_number(v) for v in self.box]
        if self.points:
            record["points"] = [[_number(x), _number(y), int(positive)] for x, y, positive in self.points]
        record["label"] = self.label
        return record


def _number(value: float) -> float | int:
    return int(value) if float(value).is_integer() else round(float(value), 3)


def check_prompts(prompts: Sequence[Prompt], width: int, height: int) -> list[Prompt]:
    """The prompts, each checked against a ``width`` × ``height`` image; the first that does not fit is an
    :class:`InputError` naming it (its number from 1 and its label).

    A box must have x0 < x1 and y0 < y1 and lie inside ``[0, width] × [0, height]`` (its corners may touch the
    far edges); a point must lie inside ``[0, width) × [0, height)``.
    """
    for number, prompt in enumerate(prompts, start=1):
        where = f"prompt {number} ({prompt.label})"
        if prompt.box is not None:
            x0, y0, x1, y1 = prompt.box
            shown = [_number(v) for v in prompt.box]
            if not (x0 < x1 and y0 < y1):
                raise InputError(f"{where}: box {shown} is empty (x0 < x1 and y0 < y1 needed)")
            if x0 < 0 or y0 < 0 or x1 > width or y1 > height:
                raise InputError(f"{where}: box {shown} reaches past the {width}×{height} image")
        for x, y, _ in prompt.points:
            if not (0 <= x < width and 0 <= y < height):
                raise InputError(f"{where}: point [{_number(x)}, {_number(y)}] lies outside the {width}×{height} "
                                 "image")
    return list(prompts)


def parse_box(text: str, label: str = "object") -> Prompt:
    """A box prompt from ``X0,Y0,X1,Y1`` (pixels).

    >>> parse_box("10,20,30.5,40").box
    (10.0, 20.0, 30.5, 40.0)
    >>> parse_box("10,20,30")
    Traceback (most recent call last):
    ...
    maskcli.errors.OptionError: box: expected X0,Y0,X1,Y1 in pixels, got '10,20,30'
    """
    values = _numbers(text, "box", "X0,Y0,X1,Y1 in pixels", (4,))
    return Prompt(box=(values[0], values[1], values[2], values[3]), label=label)


def parse_point(text: str) -> tuple[float, float, int]:
    """A point from ``X,Y`` (on the object) or ``X,Y,0`` (not on it).

    >>> parse_point("12,30"), parse_point("5,6,0")
    ((12.0, 30.0, 1), (5.0, 6.0, 0))
    """
    values = _numbers(text, "point", "X,Y or X,Y,0|1 in pixels", (2, 3))
    positive = 1 if len(values) == 2 else values[2]
    if positive not in (0, 1):
        raise OptionError("point", f"the third value says whether the point is on the object: 1 or 0, not "
                                   f"{_number(positive)}")
    return values[0], values[1], int(positive)


def _numbers(text: str, option: str, expected: str, counts: tuple[int, ...]) -> list[float]:
    try:
        values = [float(part) for part in text.split(",")]
    except ValueError:
        values = []
    if len(values) not in counts:
        raise OptionError(option, f"expected {expected}, got {text!r}")
    return values


def prompt_from_record(record: Any, where: str) -> Prompt:
    """A prompt from its JSON form ``{"box": [x0, y0, x1, y1], "points": [[x, y, 1], ...], "label": ...}``; a
    malformed one is an :class:`InputError` that says ``where`` it is.

    >>> prompt_from_record({"points": [[3, 4]], "label": "dog"}, "line 1").points
    ((3.0, 4.0, 1),)
    >>> prompt_from_record({"box": [1, 2, 3]}, "line 2")
    Traceback (most recent call last):
    ...
    maskcli.errors.InputError: line 2: box must be [x0, y0, x1, y1] (4 numbers), got [1, 2, 3]
    """
    if not isinstance(record, dict):
        raise InputError(f"{where}: a prompt is a JSON object with a box and/or points")
    box = record.get("box")
    if box is not None:
        if not isinstance(box, list) or len(box) != 4 or not all(_is_number(v) for v in box):
            raise InputError(f"{where}: box must be [x0, y0, x1, y1] (4 numbers), got {box!r}")
        box = tuple(float(v) for v in box)
    points = []
    for point in record.get("points") or []:
        if not isinstance(point, list) or len(point) not in (2, 3) or not all(_is_number(v) for v in point) \
                or (len(point) == 3 and point[2] not in (0, 1)):
            raise InputError(f"{where}: a point is [x, y] or [x, y, 1|0] (0: not on the object), got {point!r}")
        points.append((float(point[0]), float(point[1]), int(point[2]) if len(point) == 3 else 1))
    if box is None and not points:
        raise InputError(f"{where}: a prompt needs a box or points")
    label = record.get("label", "object")
    return Prompt(box=box, points=tuple(points), label=str(label) if label is not None else "object")


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


__all__ = ["Prompt", "check_prompts", "parse_box", "parse_point", "prompt_from_record"]
