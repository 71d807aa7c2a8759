"""Channels and colour spaces of images in the one image convention (float32 grey H×W or RGB H×W×3 in [0, 1]).

Every conversion works on float32 directly, so 16-bit sources keep their precision (they arrive as float32 after
decoding; nothing here rounds them to 8 bits).

>>> import numpy as np
>>> rgb = np.zeros((1, 2, 3), np.float32); rgb[0, 0] = (1, 0, 0)
>>> channel(rgb, "r")
array([[1., 0.]], dtype=float32)
>>> round(float(channel(rgb, "h")[0, 0]), 3), round(float(channel(rgb, "s")[0, 0]), 3)
(0.0, 1.0)
"""

from __future__ import annotations

import cv2
import numpy as np

from maskcli.errors import OptionError
from maskcli.imageops import to_grey, to_rgb

__all__ = ["CHANNELS", "channel", "to_gray", "to_rgb", "to_hsv", "to_lab"]

#: Channel names accepted by ``--channel``: grey, the RGB primaries, HSV and CIE Lab components.
CHANNELS = ("gray", "r", "g", "b", "h", "s", "v", "l", "a", "b*")
_ALIASES = {"grey": "gray", "luma": "gray", "red": "r", "green": "g", "blue": "b", "hue": "h",
            "saturation": "s", "value": "v", "lightness": "l", "b_star": "b*", "bstar": "b*"}


def to_gray(image: np.ndarray) -> np.ndarray:
    """Grey levels of an image (:func:`maskcli.imageops.to_grey`).

    >>> to_gray(np.ones((2, 2, 3), np.float32)).shape
    (2, 2)
    """
    return to_grey(image)


def to_hsv(image: np.ndarray) -> np.ndarray:
    """HSV with hue in degrees [0, 360) and saturation, value in [0, 1].

    >>> [round(v, 3) for v in to_hsv(np.array([[[0, 1, 0]]], np.float32))[0, 0].tolist()]
    [120.0, 1.0, 1.0]
    """
    return cv2.cvtColor(to_rgb(image), cv2.COLOR_RGB2HSV)


def to_lab(image: np.ndarray) -> np.ndarray:
    """CIE L*a*b* (D65) with L in [0, 100] and a, b about [-128, 127], from sRGB values.

    >>> [round(v) for v in to_lab(np.ones((1, 1, 3), np.float32))[0, 0].tolist()]
    [100, 0, 0]
    """
    return cv2.cvtColor(to_rgb(image), cv2.COLOR_RGB2Lab)


def check_channel(name: str, option: str = "channel") -> str:
    """The canonical channel name, or an ``OptionError`` listing the valid ones.

    >>> check_channel("Grey")
    'gray'
    """
    key = str(name).strip().lower()
    key = _ALIASES.get(key, key)
    if key not in CHANNELS:
        raise OptionError(option, f"unknown channel {name!r}; valid: {' | '.join(CHANNELS)}")
    return key


def channel(image: np.ndarray, name: str = "gray") -> np.ndarray:
    """One channel of an image as float32 H×W in [0, 1].

    ``h`` is hue / 360; ``l`` is L* / 100; ``a`` and ``b*`` map [-127, 127] onto [0, 1] (0.5 is neutral grey).
    On a grey image every colour channel is the grey itself, and hue, saturation, a and b* are neutral.

    >>> grey = np.full((1, 1), 0.25, np.float32)
    >>> float(channel(grey, "r")[0, 0]), float(channel(grey, "s")[0, 0]), float(channel(grey, "a")[0, 0])
    (0.25, 0.0, 0.5)
    """
    key = check_channel(name)
    if key == "gray":
        return to_gray(image)
    grey_input = image.ndim == 2 or (image.ndim == 3 and image.shape[2] == 1)
    if key in ("r", "g", "b"):
        if grey_input:
            return to_gray(image)
        return np.ascontiguousarray(image[..., "rgb".index(key)], dtype=np.float32)
    if key in ("h", "s", "v"):
        if grey_input:
            gray = to_gray(image)
            return gray if key == "v" else np.zeros_like(gray)
        hsv = to_hsv(image)
        out = hsv[..., "hsv".index(key)]
        if key == "h":
            out = out * np.float32(1 / 360)
        return np.clip(out, 0, 1).astype(np.float32)
    lab = to_lab(image)
    if key == "l":
        out = lab[..., 0] * np.float32(0.01)
    else:
        out = (lab[..., 1 if key == "a" else 2] + np.float32(127)) * np.float32(1 / 254)
    return np.clip(out, 0, 1).astype(np.float32)
