"""Highlighting a mask over its image, for checking masks by eye: a coloured tint of the region and its outline."""

from __future__ import annotations

import dataclasses
from typing import Any, ClassVar

import cv2
import numpy as np

from maskcli.composite.base import Mode, modes
from maskcli.composite.blend import as_rgb, blend
from maskcli.errors import OptionError
from maskcli.masks import binary
from maskcli.registry import option

__all__ = ["overlay", "outline_of", "Highlight"]


def outline_of(mask: np.ndarray, width: int = 2, level: float = 0.5) -> np.ndarray:
    """Boolean H×W: the inner band, ``width`` pixels wide, of the region where ``mask >= level``.

    The image's own border is not an edge: a region touching it is outlined only where it meets the background.

    >>> mask = np.zeros((5, 5), np.float32); mask[1:4, 1:4] = 1
    >>> outline_of(mask, 1).astype(int)
    array([[0, 0, 0, 0, 0],
           [0, 1, 1, 1, 0],
           [0, 1, 0, 1, 0],
           [0, 1, 1, 1, 0],
           [0, 0, 0, 0, 0]])
    """
    inside = binary(mask, level)
    if width <= 0:
        return np.zeros(mask.shape, bool)
    kernel = np.ones((2 * width + 1, 2 * width + 1), np.uint8)
    # Erosion's default border value is the maximum, so the image's edge does not erode the region.
    core = cv2.erode(inside, kernel)
    return (inside > core)


def overlay(pixels: np.ndarray, mask: np.ndarray, *, color: tuple[float, float, float] = (1.0, 0.25, 0.25),
            opacity: float = 0.4, outline: int = 2, level: float = 0.5) -> np.ndarray:
    """The image with the masked region tinted and outlined, as float32 RGB H×W×3.

    Parameters
    ----------
    pixels : ndarray
        float32 grey H×W or RGB H×W×3 in [0, 1].
    mask : ndarray
        float32 H×W in [0, 1]. A soft mask tints in proportion to its value.
    color : tuple of float
        The tint and outline colour, RGB in [0, 1].
    opacity : float
        How strongly the region is tinted, in [0, 1]: 0 leaves it as it is, 1 paints it over.
    outline : int
        Width of the outline in pixels, drawn in ``color`` on the inner edge of ``mask >= level``; 0 for none.
    level : float
        Where the outline is drawn in a soft mask.

    Returns
    -------
    ndarray
        float32 RGB H×W×3 in [0, 1].

    Examples
    --------
    >>> image = np.zeros((1, 2), np.float32)
    >>> overlay(image, np.array([[1, 0]], np.float32), color=(1, 0, 0), opacity=0.5, outline=0)[0].tolist()
    [[0.5, 0.0, 0.0], [0.0, 0.0, 0.0]]
    """
    if not 0.0 <= opacity <= 1.0:
        raise OptionError("opacity", f"must be in [0, 1], got {opacity}")
    rgb = as_rgb(pixels)
    tint = np.asarray(color, dtype=np.float32).reshape(3)
    weights = np.asarray(mask, dtype=np.float32) * np.float32(opacity)
    # The image keeps weight 1 − opacity·M, so where M = 0 it is unchanged, bit for bit.
    out = blend(rgb, tint, np.float32(1.0) - weights) if opacity > 0 else rgb.copy()
    if outline > 0:
        out[outline_of(mask, outline, level)] = tint
    return out


@modes.register("highlight")
@dataclasses.dataclass
class Highlight(Mode):
    """A coloured tint of the masked region and its outline over the image, to check masks by eye."""

    summary: ClassVar[str] = "Tint the masked region and outline it over the image, to check masks by eye."
    example: ClassVar[str] = "maskcli apply photos/ --masks masks/ --mode highlight -s color=#00ff00 -o check/"

    color: str = option("#ff4040", "Tint and outline colour (name, #rrggbb, r,g,b).")
    opacity: float = option(0.4, "Strength of the tint in [0, 1].")
    outline: int = option(2, "Outline width in pixels (0 for none).")
    level: float = option(0.5, "Mask level where the outline is drawn.")
    background: str | None = option(None, "Same as color (so that -b sets the highlight colour).")
    _rgb: Any = dataclasses.field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        from maskcli.composite.colors import parse_color

        if self.background is not None:
            self.color = self.background
        rgba = parse_color(self.color, option="color")
        self._rgb = tuple(rgba[:3])
        if not 0.0 <= self.opacity <= 1.0:
            raise OptionError("opacity", f"must be in [0, 1], got {self.opacity}")
        if self.outline < 0:
            raise OptionError("outline", f"must be at least 0, got {self.outline}")
        if not 0.0 < self.level <= 1.0:
            raise OptionError("level", f"must be in (0, 1], got {self.level}")

    def halo(self, mask: np.ndarray) -> int | None:
        return self.outline  # the outline looks this far across the mask's edge

    def __call__(self, pixels: np.ndarray, mask: np.ndarray) -> np.ndarray:
        return overlay(pixels, mask, color=self._rgb, opacity=self.opacity, outline=self.outline, level=self.level)
