"""Colours as users type them, to float RGBA in [0, 1].

Accepted: CSS/X11 names (``white``, ``rebeccapurple``), ``transparent``, hex ``#0f0``, ``#00ff00``, ``#00ff0080``,
``rgb(0,255,0)`` / ``rgba(...)`` / ``hsl(...)`` (as Pillow's ImageColor reads them), comma-separated 0–255 integers
``0,255,0`` (a fourth value is alpha), comma-separated fractions ``0.2,0.5,1.0`` (any value with a decimal point
makes the whole list fractions in [0, 1]), and one number for a grey level (``128`` or ``0.5``).
"""

from __future__ import annotations

import re

from maskcli.errors import OptionError

__all__ = ["parse_color"]

_EXAMPLES = "e.g. white, #00ff00, #00ff0080, 0,255,0, 0.2,0.5,1.0, rgb(0,255,0) or transparent"
_NUMBER = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)$")


def parse_color(text: str, *, option: str = "background") -> tuple[float, float, float, float]:
    """Parse a colour into ``(r, g, b, a)`` floats in [0, 1]; alpha is 1 unless the text gives one.

    Raises :class:`~maskcli.errors.OptionError` naming ``option`` and the accepted notations for anything else.

    Examples
    --------
    >>> parse_color("white")
    (1.0, 1.0, 1.0, 1.0)
    >>> parse_color("#0f0"), parse_color("0,255,0") == parse_color("rgb(0,255,0)")
    ((0.0, 1.0, 0.0, 1.0), True)
    >>> parse_color("0.2,0.5,1.0")
    (0.2, 0.5, 1.0, 1.0)
    >>> parse_color("transparent")[3]
    0.0
    >>> parse_color("blurple")
    Traceback (most recent call last):
    ...
    maskcli.errors.OptionError: background: not a colour: 'blurple' (e.g. white, #00ff00, ...)
    """
    raw = str(text).strip()
    lowered = raw.lower().replace(" ", "")
    if lowered in ("transparent", "none"):
        return (0.0, 0.0, 0.0, 0.0)
    parts = lowered.split(",")
    if all(_NUMBER.match(part) for part in parts):
        return _from_numbers(parts, raw, option)
    from PIL import ImageColor

    try:
        values = ImageColor.getrgb(lowered)
    except (ValueError, AttributeError):
        raise OptionError(option, f"not a colour: {raw!r} ({_EXAMPLES})") from None
    rgba = tuple(v / 255.0 for v in values)
    return (rgba[0], rgba[1], rgba[2], rgba[3] if len(rgba) == 4 else 1.0)


def _from_numbers(parts: list[str], raw: str, option: str) -> tuple[float, float, float, float]:
    if len(parts) not in (1, 3, 4):
        raise OptionError(option, f"a colour has 1 (grey), 3 (RGB) or 4 (RGBA) values, not {len(parts)}: {raw!r}")
    fractions = any("." in part for part in parts)
    values = [float(part) for part in parts]
    top = 1.0 if fractions else 255.0
    if any(v < 0 or v > top for v in values):
        unit = "fractions in [0, 1]" if fractions else "integers in 0–255"
        raise OptionError(option, f"colour values must be {unit}: {raw!r}")
    values = [v / top for v in values]
    if len(values) == 1:
        values = values * 3
    if len(values) == 3:
        values.append(1.0)
    return (values[0], values[1], values[2], values[3])
