"""Cropping to the subject: the mask's bounding box with a margin, optionally on a square canvas."""

from __future__ import annotations

import dataclasses
from typing import Any, ClassVar

import numpy as np

from maskcli.composite.base import Mode, modes
from maskcli.composite.blend import as_rgb, blend, has_soft_band, with_alpha
from maskcli.composite.colors import parse_color
from maskcli.errors import InputError, OptionError
from maskcli.imageops import bands, to_unit_float
from maskcli.registry import option

__all__ = ["Crop", "parse_margin", "crop_box"]


def parse_margin(text: str | float) -> tuple[float, bool]:
    """A margin as ``(value, is_percent)``: ``"12"`` is 12 pixels, ``"5%"`` is 5 % of the subject's longer side.

    >>> parse_margin("12"), parse_margin("5%")
    ((12.0, False), (5.0, True))
    """
    raw = str(text).strip()
    percent = raw.endswith("%")
    try:
        value = float(raw.rstrip("%").strip())
    except ValueError:
        raise OptionError("margin", f"expected pixels (10) or a percentage (5%), got {raw!r}") from None
    if not value >= 0 or value != value:
        raise OptionError("margin", f"must be at least 0, got {raw!r}")
    return value, percent


def crop_box(mask: np.ndarray, *, margin: str | float = 0, square: bool = False,
             cutoff: float = 0.05) -> tuple[int, int, int, int]:
    """The crop ``(top, left, bottom, right)`` (ends exclusive) around the pixels where ``mask > cutoff``.

    ``mask`` is float in [0, 1] or integer levels (uint8, uint16: the cut-off is a fraction of their maximum).
    The box grows by the margin on every side. Without ``square`` it stays within the image; with it, the shorter
    side grows to the longer one about the subject's centre, and the box may reach past the image (padding).

    Raises :class:`~maskcli.errors.InputError` when no pixel is above the cut-off.

    >>> mask = np.zeros((10, 10), np.float32); mask[2:4, 3:8] = 1; mask[9, 9] = 0.01
    >>> crop_box(mask), crop_box(mask, margin=1), crop_box(mask, margin="20%")
    ((2, 3, 4, 8), (1, 2, 5, 9), (1, 2, 5, 9))
    >>> crop_box(mask, square=True)
    (1, 3, 6, 8)
    """
    height, width = mask.shape
    # Band by band, so that a large mask (integer levels, as stored) is never held whole as floats or booleans.
    rows_inside, cols_inside = np.zeros(height, bool), np.zeros(width, bool)
    for band in bands(height, width):
        part = mask[band]
        inside = (to_unit_float(part) if part.dtype in (np.uint8, np.uint16) else part) > cutoff
        rows_inside[band] = inside.any(axis=1)
        cols_inside |= inside.any(axis=0)
    rows, cols = np.flatnonzero(rows_inside), np.flatnonzero(cols_inside)
    if rows.size == 0:
        raise InputError("mask is empty: nothing to crop" + (f" (no value above cutoff {cutoff})" if cutoff else ""))
    top, bottom, left, right = int(rows[0]), int(rows[-1]) + 1, int(cols[0]), int(cols[-1]) + 1
    value, percent = parse_margin(margin)
    pad = round(value * max(bottom - top, right - left) / 100) if percent else round(value)
    top, left, bottom, right = top - pad, left - pad, bottom + pad, right + pad
    if not square:
        return max(top, 0), max(left, 0), min(bottom, height), min(right, width)
    side = max(bottom - top, right - left)
    # Centre the square on the subject; an odd leftover pixel goes after it.
    top -= (side - (bottom - top)) // 2
    left -= (side - (right - left)) // 2
    return top, left, top + side, left + side


@modes.register("crop")
@dataclasses.dataclass
class Crop(Mode):
    """The image cropped to the subject's bounding box plus a margin; a square canvas centres the subject.

    Where the square reaches past the image the padding is ``background`` (transparent by default with
    ``cutout``, else white). With ``cutout`` the crop is RGBA with the mask as alpha.
    """

    summary: ClassVar[str] = "Crop to the mask's bounding box plus a margin (px or %), optionally square."
    example: ClassVar[str] = "maskcli apply products/ --masks masks/ --mode crop -s margin=5% -s square=yes -o crops/"

    margin: str = option("0", "Margin around the subject: pixels (10) or percent of its longer side (5%).")
    square: bool = option(False, "A square canvas with the subject centred.")
    cutoff: float = option(0.05, "Mask values at or below this do not count towards the box.")
    cutout: bool = option(False, "Cut the subject out (RGBA, mask as alpha) instead of keeping the pixels.")
    decontaminate: bool = option(True, "With cutout: estimate the subject's colour in the soft edge.")
    background: str | None = option(None, "Padding colour (default: transparent with cutout, else white).")
    _rgba: Any = dataclasses.field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        parse_margin(self.margin)
        if not 0.0 <= self.cutoff < 1.0:
            raise OptionError("cutoff", f"must be in [0, 1), got {self.cutoff}")
        default = "transparent" if self.cutout else "white"
        self._rgba = parse_color(self.background or default, option="background")

    @property
    def output_alpha(self) -> bool:
        return self._rgba[3] < 1.0

    @property
    def padding(self) -> Any:
        r, g, b, _ = self._rgba
        if self.output_alpha:
            return self._rgba
        return r if r == g == b else (r, g, b)

    def window(self, mask: np.ndarray) -> tuple[int, int, int, int]:
        return crop_box(mask, margin=self.margin, square=self.square, cutoff=self.cutoff)

    def halo(self, mask: np.ndarray) -> int | None:
        # Pixel by pixel, unless the subject's colour is estimated in a soft edge (box blurs over the window).
        return None if self.cutout and self.decontaminate and has_soft_band(mask) else 0

    def band(self, pixels: np.ndarray, mask: np.ndarray, rows: slice, size: tuple[int, int],
             surveys: list[np.ndarray]) -> np.ndarray:
        """The window's content (its part inside the image): the pixels, cut out or flattened on the padding."""
        alpha = mask
        if self.cutout:
            pixels = self.subject(pixels, alpha)
        else:
            alpha = np.ones(alpha.shape, np.float32)
        r_, g_, b_, _ = self._rgba
        if self.output_alpha:
            return with_alpha(pixels, alpha)
        if pixels.ndim == 2 and not r_ == g_ == b_:
            pixels = as_rgb(pixels)
        colour = np.float32(r_) if pixels.ndim == 2 else np.array((r_, g_, b_), np.float32)
        return blend(pixels, colour, alpha) if self.cutout else pixels

    def __call__(self, pixels: np.ndarray, mask: np.ndarray) -> np.ndarray:
        top, left, bottom, right = self.window(mask)
        height, width = mask.shape
        # The part of the box inside the image, and where it lands on the canvas.
        t, l, b, r = max(top, 0), max(left, 0), min(bottom, height), min(right, width)
        content = self.band(pixels[t:b, l:r], mask[t:b, l:r], slice(t, b), (height, width), [])
        if (t, l, b, r) == (top, left, bottom, right):
            return np.ascontiguousarray(content)
        canvas = np.empty((bottom - top, right - left) + content.shape[2:], np.float32)
        canvas[...] = np.asarray(self.padding, np.float32)
        canvas[t - top:b - top, l - left:r - left] = content
        return canvas
