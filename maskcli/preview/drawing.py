"""Drawing previews: overlays (a tint and an outline over the image) and contact sheets (one grid of thumbnails).

The drawing functions are pure: :func:`overlay_image`, :func:`thumbnail` and :func:`contact_sheet` return float32
RGB arrays in [0, 1].

Sheet layout (all in pixels): each cell is a ``cell`` × ``cell`` square holding the thumbnail (scaled to fit,
centred) above a ``label_height`` strip holding its name; cells are ``gap`` apart and ``gap`` from the edges. For
``n`` tiles in ``columns`` columns the sheet uses ``c = min(columns, n)`` columns and ``r = ceil(n / c)`` rows, so
it is ``c·cell + (c+1)·gap`` wide and ``r·(cell + label_height) + (r+1)·gap`` high.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable, Sequence
from typing import Any

import cv2
import numpy as np

from maskcli.errors import OptionError, SetupError

__all__ = ["BACKGROUND", "BOX_COLOR", "OFF_COLOR", "ON_COLOR", "TEXT", "SheetLayout", "contact_sheet", "draw_prompts",
           "overlay_image", "place_tile", "scaled_to", "stretch_levels", "thumbnail"]

#: Sheet background and label colours (RGB in [0, 1]): dark grey, so that both bright and dark images stand out.
BACKGROUND = (0.12, 0.12, 0.12)
TEXT = (0.92, 0.92, 0.92)
_FONT = cv2.FONT_HERSHEY_SIMPLEX


@dataclasses.dataclass(frozen=True)
class SheetLayout:
    """Where each tile of a contact sheet goes.

    >>> layout = SheetLayout.for_count(7, columns=3, cell=100, label_height=20, gap=4)
    >>> layout.rows, layout.columns, layout.width, layout.height
    (3, 3, 316, 376)
    >>> layout.origin(4)  # row 1, column 1: (y, x) of the thumbnail's top-left corner
    (128, 108)
    """

    count: int
    rows: int
    columns: int
    cell: int
    label_height: int
    gap: int

    @classmethod
    def for_count(cls, count: int, *, columns: int = 6, cell: int = 160, label_height: int = 18,
                  gap: int = 4) -> SheetLayout:
        if count < 1:
            raise SetupError("nothing to put on the contact sheet")
        if columns < 1:
            raise OptionError("columns", f"must be 1 or more, not {columns}")
        if cell < 16:
            raise OptionError("cell", f"must be at least 16 pixels, not {cell}")
        if label_height < 0 or gap < 0:
            raise OptionError("label_height", "label height and gap must not be negative")
        used = min(columns, count)
        return cls(count, math.ceil(count / used), used, cell, label_height, gap)

    @property
    def width(self) -> int:
        return self.columns * self.cell + (self.columns + 1) * self.gap

    @property
    def height(self) -> int:
        return self.rows * (self.cell + self.label_height) + (self.rows + 1) * self.gap

    def origin(self, index: int) -> tuple[int, int]:
        """(y, x) of tile ``index``'s thumbnail square; its label strip lies just below it."""
        row, column = divmod(index, self.columns)
        return (self.gap + row * (self.cell + self.label_height + self.gap),
                self.gap + column * (self.cell + self.gap))

    def canvas(self) -> np.ndarray:
        return np.full((self.height, self.width, 3), BACKGROUND, np.float32)


def stretch_levels(pixels: np.ndarray) -> np.ndarray:
    """Spread the 0.5–99.5 percentiles over [0, 1], for images that use a sliver of their range."""
    low, high = np.percentile(pixels, (0.5, 99.5))
    if high <= low:
        return pixels
    return np.clip((pixels - low) / (high - low), 0.0, 1.0).astype(np.float32)


def overlay_image(pixels: np.ndarray, mask: np.ndarray, *, color: tuple[float, float, float] = (1.0, 0.25, 0.25),
                  opacity: float = 0.4, outline: int = 2, level: float = 0.5, stretch: bool = False) -> np.ndarray:
    """The image with its mask tinted and outlined (:func:`maskcli.composite.overlay.overlay`), as float32 RGB.

    A mask of another size is scaled to the image first (a preview is for the eye; ``maskcli eval`` is strict).
    ``stretch`` spreads the image's 0.5–99.5 percentiles over the full range first, for dim images.

    Examples
    --------
    >>> image = np.zeros((4, 4), np.float32)
    >>> out = overlay_image(image, np.ones((2, 2), np.float32), color=(1, 0, 0), opacity=0.5, outline=0)
    >>> out.shape, out[0, 0].tolist()
    ((4, 4, 3), [0.5, 0.0, 0.0])
    """
    from maskcli.composite.overlay import overlay
    from maskcli.masks import resize_mask

    if stretch:
        pixels = stretch_levels(pixels)
    mask = resize_mask(mask, pixels.shape[:2])
    return overlay(pixels, mask, color=color, opacity=opacity, outline=outline, level=level)


#: Prompt colours (RGB in [0, 1]): boxes, points on the object, points off it.
BOX_COLOR, ON_COLOR, OFF_COLOR = (1.0, 0.85, 0.0), (0.1, 0.9, 0.2), (0.95, 0.1, 0.9)


def draw_prompts(picture: np.ndarray, prompts: Sequence[Any], scale: float = 1.0) -> np.ndarray:
    """The prompts drawn on an RGB picture (float32 in [0, 1]): each box outlined with its number and label, each
    point a dot (green on the object, magenta off it). ``scale``: the picture's size over the image's.

    >>> from maskcli.prompts import Prompt
    >>> out = draw_prompts(np.zeros((20, 30, 3), np.float32), [Prompt(box=(2, 2, 20, 15), points=((8, 8, 0),))])
    >>> [round(v, 2) for v in out[2, 10]] == list(BOX_COLOR), [round(v, 2) for v in out[8, 8]] == list(OFF_COLOR)
    (True, True)
    """
    if not prompts:
        return picture
    # Drawn on 8-bit samples (OpenCV writes text on nothing else); a preview is shown and saved at 8 bits anyway.
    picture = np.ascontiguousarray(np.clip(picture * 255 + 0.5, 0, 255).astype(np.uint8))
    height, width = picture.shape[:2]
    thick = max(1, round(max(height, width) / 300))
    for number, prompt in enumerate(prompts, start=1):
        if prompt.box is not None:
            x0, y0, x1, y1 = (round(v * scale) for v in prompt.box)
            cv2.rectangle(picture, (x0, y0), (max(x0, x1 - 1), max(y0, y1 - 1)), _bytes(BOX_COLOR), thick)
            if max(height, width) >= 64:  # no room for words on a thumbnail this small
                baseline = y0 - 3 if y0 >= 12 * thick else y0 + 12 * thick
                cv2.putText(picture, f"{number} {prompt.label}", (x0 + 2, baseline), cv2.FONT_HERSHEY_SIMPLEX,
                            0.35 * thick, _bytes(BOX_COLOR), thick, cv2.LINE_AA)
        for x, y, sign in prompt.points:
            cv2.circle(picture, (round(x * scale), round(y * scale)), 2 * thick + 1,
                       _bytes(ON_COLOR if sign else OFF_COLOR), -1)
    return picture.astype(np.float32) * np.float32(1 / 255)


def _bytes(color: tuple[float, float, float]) -> tuple[int, int, int]:
    return (round(color[0] * 255), round(color[1] * 255), round(color[2] * 255))


def scaled_to(array: np.ndarray, cell: int) -> np.ndarray:
    """``array`` scaled so that its longer side is ``cell`` pixels (area averaging when shrinking)."""
    height, width = array.shape[:2]
    scale = min(cell / width, cell / height)
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    if size == (width, height):
        return array
    return cv2.resize(array, size, interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)


def thumbnail(pixels: np.ndarray, cell: int) -> np.ndarray:
    """The image scaled to fit a ``cell`` × ``cell`` square (aspect kept), centred on the sheet's background.

    Examples
    --------
    >>> t = thumbnail(np.ones((10, 20, 3), np.float32), 8)
    >>> t.shape, float(t[4, 4, 0]), round(float(t[0, 4, 0]), 2)  # an 8×4 band in the middle
    ((8, 8, 3), 1.0, 0.12)
    """
    from maskcli.composite.blend import as_rgb

    small = scaled_to(as_rgb(pixels), cell)
    new_h, new_w = small.shape[:2]
    square = np.full((cell, cell, 3), BACKGROUND, np.float32)
    top, left = (cell - new_h) // 2, (cell - new_w) // 2
    square[top:top + new_h, left:left + new_w] = np.clip(small, 0.0, 1.0)
    return square


def _fit_text(text: str, width: int, height: int) -> tuple[str, float, int]:
    """The text (cut at the start with '..' if needed), font scale and thickness that fit ``width`` × ``height``."""
    scale = max(0.3, (height - 4) / 22)  # Hershey Simplex is about 22 px tall (cap height and descent) at scale 1
    thickness = 1
    shown = text
    while shown:
        (text_w, _), _ = cv2.getTextSize(shown, _FONT, scale, thickness)
        if text_w <= width - 4:
            return shown, scale, thickness
        # Names of a series differ at their ends (t01, t02 ...): keep the end, drop the start.
        shown = ".." + shown[3:] if shown.startswith("..") else ".." + shown[1:]
        if len(shown) <= 3:
            break
    return "", scale, thickness


def _label(text: str, width: int, height: int) -> np.ndarray:
    strip = np.zeros((height, width, 3), np.uint8)
    strip[:] = np.round(np.asarray(BACKGROUND) * 255).astype(np.uint8)
    shown, scale, thickness = _fit_text(text, width, height)
    if shown and height >= 6:
        (_, text_h), baseline = cv2.getTextSize(shown, _FONT, scale, thickness)
        y = (height + text_h) // 2 - max(0, baseline // 2 - 1)
        color = tuple(int(round(c * 255)) for c in TEXT)
        cv2.putText(strip, shown, (2, y), _FONT, scale, color, thickness, cv2.LINE_AA)
    return strip.astype(np.float32) / 255


def place_tile(canvas: np.ndarray, layout: SheetLayout, index: int, label: str, pixels: np.ndarray) -> None:
    """Put tile ``index`` (its thumbnail and its label strip) in its cell of the sheet ``canvas``."""
    y, x = layout.origin(index)
    canvas[y:y + layout.cell, x:x + layout.cell] = thumbnail(pixels, layout.cell)
    if layout.label_height:
        canvas[y + layout.cell:y + layout.cell + layout.label_height, x:x + layout.cell] = _label(
            label, layout.cell, layout.label_height)


def contact_sheet(tiles: Iterable[tuple[str, np.ndarray]], *, count: int | None = None, columns: int = 6,
                  cell: int = 160, label_height: int = 18, gap: int = 4) -> np.ndarray:
    """One float32 RGB grid of labelled thumbnails, row by row in the order given (see the module's layout).

    Parameters
    ----------
    tiles : iterable of (label, pixels)
        Labels and images (grey or RGB float32); consumed lazily when ``count`` is given.
    count : int, optional
        The number of tiles, when ``tiles`` is a stream; otherwise it is read into a list first.
    columns, cell, label_height, gap : int
        The grid: columns at most, square cell side, label strip height and spacing, in pixels.

    Examples
    --------
    >>> tiles = [(f"img{i}", np.full((30, 40), i / 4, np.float32)) for i in range(5)]
    >>> contact_sheet(tiles, columns=2, cell=32, label_height=10, gap=2).shape
    (134, 70, 3)
    """
    if count is None:
        tiles = list(tiles)
        count = len(tiles)
    layout = SheetLayout.for_count(count, columns=columns, cell=cell, label_height=label_height, gap=gap)
    canvas = layout.canvas()
    for index, (label, pixels) in enumerate(tiles):
        if index >= count:
            raise ValueError(f"more tiles than the count of {count}")
        place_tile(canvas, layout, index, label, pixels)
    return canvas
