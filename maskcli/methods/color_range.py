"""Colour ranges: keep the pixels whose HSV or Lab values lie within given ranges (chroma key, coloured backdrops).

Hue is in degrees and wraps around: ``h=340,20`` keeps reds on both sides of 0°. ``key=green`` (or ``blue``) is a
ready-made backdrop range; ``invert`` then drops the backdrop and keeps the subject.

>>> import numpy as np
>>> image = np.zeros((1, 3, 3), np.float32)
>>> image[0, 0] = (0.1, 0.8, 0.1); image[0, 1] = (0.9, 0.1, 0.1); image[0, 2] = (0.9, 0.1, 0.3)
>>> ColorRange(key="green").compute(image).mask.tolist()
[[1.0, 0.0, 0.0]]
>>> ColorRange(h=(340, 20), s=(0.5, 1)).compute(image).mask.tolist()  # reds, across 0°
[[0.0, 1.0, 1.0]]
"""

from __future__ import annotations

import dataclasses
from typing import ClassVar

import cv2
import numpy as np

from maskcli.color import to_hsv, to_lab
from maskcli.errors import OptionError
from maskcli.imageops import bands, to_unit_float
from maskcli.methods.base import Method, Segmentation, methods
from maskcli.registry import option

#: Backdrop ranges for ``key``: hue span in degrees, minimum saturation and value. Studio green and blue screens are
#: saturated; the minima keep grey shadows and dark hair out of the key.
KEYS = {
    "green": {"h": (75.0, 165.0), "s": (0.25, 1.0), "v": (0.15, 1.0)},
    "blue": {"h": (190.0, 255.0), "s": (0.25, 1.0), "v": (0.15, 1.0)},
}
SPACES = ("hsv", "lab")


def _pair(name: str, value: tuple[float, ...] | None, low: float, high: float) -> tuple[float, float] | None:
    if value is None:
        return None
    value = tuple(float(v) for v in value)
    if len(value) != 2:
        raise OptionError(name, f"must be two numbers LOW,HIGH, got {value}")
    if not all(low <= v <= high for v in value):
        raise OptionError(name, f"values must lie in [{low:g}, {high:g}], got {value}")
    return value


@methods.register("color_range")
@dataclasses.dataclass
class ColorRange(Method):
    """Keep pixels within HSV ranges (h in degrees, wrapping; s, v in [0, 1]) or Lab ranges (l 0–100, a, b ±128).

    Unset ranges keep everything. ``key`` fills in the HSV ranges of a green or blue backdrop.
    """

    summary: ClassVar[str] = "Keep pixels within HSV or Lab ranges; chroma key with key=green|blue (+invert)."
    example: ClassVar[str] = "maskcli segment studio/ -o masks/ -m color_range -p key=green -p invert=true"
    space: str = option("hsv", "Colour space of the ranges: hsv | lab.", choices=SPACES)
    key: str | None = option(None, "A backdrop's HSV ranges: green | blue.")
    h: tuple[float, ...] | None = option(None, "Hue range LOW,HIGH in degrees; LOW > HIGH wraps through 0.")
    s: tuple[float, ...] | None = option(None, "Saturation range LOW,HIGH in [0, 1].")
    v: tuple[float, ...] | None = option(None, "Value range LOW,HIGH in [0, 1].")
    l: tuple[float, ...] | None = option(None, "Lab lightness range LOW,HIGH in [0, 100].")  # noqa: E741
    a: tuple[float, ...] | None = option(None, "Lab a* range LOW,HIGH (green − / red +).")
    b: tuple[float, ...] | None = option(None, "Lab b* range LOW,HIGH (blue − / yellow +).")
    invert: bool = option(False, "Keep the pixels outside the ranges (drop the backdrop).")

    def __post_init__(self) -> None:
        if self.space not in SPACES:
            raise OptionError("space", f"must be one of {', '.join(SPACES)}, not {self.space!r}")
        if self.key is not None:
            self.key = str(self.key).lower()
            if self.key not in KEYS:
                raise OptionError("key", f"must be one of {', '.join(KEYS)}, not {self.key!r}")
            if self.space != "hsv":
                raise OptionError("key", "key ranges are HSV ranges; use space=hsv")
            for name, value in KEYS[self.key].items():
                if getattr(self, name) is None:
                    setattr(self, name, value)
        self.h = _pair("h", self.h, 0, 360)
        self.s = _pair("s", self.s, 0, 1)
        self.v = _pair("v", self.v, 0, 1)
        self.l = _pair("l", self.l, 0, 100)
        self.a = _pair("a", self.a, -128, 128)
        self.b = _pair("b", self.b, -128, 128)
        for name in ("s", "v", "l", "a", "b"):
            pair = getattr(self, name)
            if pair is not None and pair[0] > pair[1]:
                raise OptionError(name, f"LOW must not exceed HIGH, got {pair}")
        hsv_set, lab_set = any((self.h, self.s, self.v)), any((self.l, self.a, self.b))
        if self.space == "hsv" and lab_set or self.space == "lab" and hsv_set:
            raise OptionError("space", f"space={self.space} but ranges of the other space were given")
        if not hsv_set and not lab_set:
            raise OptionError("key", "give a key (green | blue) or at least one range (h, s, v or l, a, b)")

    #: Pixel by pixel, so a large image goes in bands from its samples: no float copy of the whole image.
    integer_samples: ClassVar[bool] = True

    def compute(self, image: np.ndarray) -> Segmentation:
        inside = np.empty(image.shape[:2], np.uint8)
        for rows in bands(*image.shape[:2]):
            part = image[rows]
            inside[rows] = self._inside(to_unit_float(part) if part.dtype != np.float32 else part)
        if self.invert:
            inside = np.asarray(cv2.bitwise_not(inside) if inside.size > 1 else 255 - inside, np.uint8)
        kept = cv2.countNonZero(inside) / inside.size if inside.size else 0.0
        return Segmentation(binary=inside, facts={"space": self.space, "in_range_fraction": round(
            kept if not self.invert else 1 - kept, 6)})

    def _inside(self, image: np.ndarray) -> np.ndarray:
        """uint8 0/255: the pixels within the ranges (before ``invert``)."""
        if self.space == "hsv":
            values, names = to_hsv(image), ("h", "s", "v")
        else:
            values, names = to_lab(image), ("l", "a", "b")
        low = [-1e9, -1e9, -1e9]
        high = [1e9, 1e9, 1e9]
        wrap = None
        for index, name in enumerate(names):
            pair = getattr(self, name)
            if pair is None:
                continue
            if name == "h" and pair[0] > pair[1]:
                wrap = pair
                continue
            low[index], high[index] = pair
        inside = cv2.inRange(values, np.array(low, np.float32), np.array(high, np.float32))
        if wrap is not None:  # hue LOW..360 or 0..HIGH
            hue = np.ascontiguousarray(values[..., 0])
            hue_ok = cv2.bitwise_or(cv2.inRange(hue, wrap[0], 360.0), cv2.inRange(hue, 0.0, wrap[1]))
            inside = cv2.bitwise_and(inside, hue_ok)
        return inside.reshape(image.shape[:2])
