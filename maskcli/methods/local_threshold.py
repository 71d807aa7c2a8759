"""Local (adaptive) thresholds, and background subtraction before a global threshold, for uneven illumination.

Each method computes a *threshold image* (one level per pixel, as ``skimage.filters.threshold_local`` does) and
hands it to the one comparison shared with the global thresholds
(:func:`maskcli.methods.compare.compare`), with the polarity chosen in the same one place. Window sums use
OpenCV box and Gaussian filters, so the cost does not grow with the window.

Facts per image: ``threshold`` (the mean of the threshold image, in [0, 1] image units) and ``polarity``.

>>> import numpy as np
>>> from maskcli.methods import methods
>>> ramp = np.tile(np.linspace(0.1, 0.6, 40, dtype=np.float32), (40, 1))  # uneven lighting
>>> image = ramp.copy(); image[15:25, 5:10] += 0.3; image[15:25, 30:35] += 0.3
>>> int(methods.create("local", {"block_size": 15, "offset": 0.05}).compute(image).mask.sum())
100
"""

from __future__ import annotations

import dataclasses
from typing import Any, ClassVar

import cv2
import numpy as np

from maskcli.errors import OptionError
from maskcli.imageops import BAND_PIXELS, bands, from_uint8
from maskcli.methods.base import Segmentation, methods
from maskcli.methods.compare import binary_of, compare_above, polarity_of
from maskcli.methods.global_threshold import PlaneMethod
from maskcli.methods.histogram import prepare
from maskcli.registry import option

__all__ = ["local_mean_std", "LocalThreshold", "Niblack", "Sauvola", "Background"]

LOCAL_KINDS = ("gaussian", "mean", "median")


def fitted_window(window: int, shape: tuple[int, ...]) -> int:
    """A ``window`` clamped to the odd size that spans the image's longer side: reflected at the borders, a larger
    one adds nothing but time and memory (a window of 999999 once took 2.6 GB). Decided once per image, never per
    band, so that a plane taken in bands gives the whole plane's levels.

    >>> fitted_window(15, (100, 200)), fitted_window(999999, (100, 200))
    (15, 201)
    """
    return min(window, max(3, max(shape[:2]) | 1))  # 3: the least window there is


def local_mean_std(plane: np.ndarray, window: int) -> tuple[np.ndarray, np.ndarray]:
    """Mean and standard deviation of every ``window`` × ``window`` neighbourhood (reflected borders).

    >>> mean, std = local_mean_std(np.array([[0, 1], [0, 1]], np.float32), 3)
    >>> mean.astype(float).round(3).tolist(), std.astype(float).round(3).tolist()
    ([[0.333, 0.667], [0.333, 0.667]], [[0.471, 0.471], [0.471, 0.471]])
    """
    size = (window, window)
    mean = cv2.boxFilter(plane, cv2.CV_32F, size, borderType=cv2.BORDER_REFLECT)
    square = cv2.sqrBoxFilter(plane, cv2.CV_32F, size, borderType=cv2.BORDER_REFLECT)
    return mean, np.sqrt(np.maximum(square - mean * mean, 0))


@dataclasses.dataclass
class LocalMethod(PlaneMethod):
    """Shared compute of the local thresholds; subclasses return a threshold image."""

    def _odd_window(self, name: str, value: int) -> None:
        if value < 3 or value % 2 == 0:
            raise OptionError(name, f"must be an odd number of pixels ≥ 3, got {value}")

    def level_image(self, plane: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def final_levels(self, plane: np.ndarray, base: np.ndarray, polarity: str) -> np.ndarray:
        """The threshold image for the chosen polarity, from the neutral local level ``base``."""
        return base

    def halo(self) -> int | None:
        """Rows of context a band of rows needs for its levels to equal the whole image's (None: the whole
        image is needed)."""
        return None

    #: The field holding the neighbourhood's width, clamped to the image by :func:`fitted_window`.
    window_field: ClassVar[str | None] = None

    def compute(self, image: np.ndarray) -> Segmentation:
        plane = prepare(image, self.channel, self.sigma)
        if self.window_field is not None:
            window = getattr(self, self.window_field)
            if fitted_window(window, plane.shape) != window:
                fitted: dict[str, Any] = {self.window_field: fitted_window(window, plane.shape)}
                return dataclasses.replace(self, **fitted)._levels(plane)
        return self._levels(plane)

    def _levels(self, plane: np.ndarray) -> Segmentation:
        facts: dict[str, Any] = {}
        if plane.size == 0 or plane.min() == plane.max():
            facts["warnings"] = ["constant image: no threshold separates anything"]
        halo = self.halo()
        height, width = plane.shape
        # Levels are local: a large plane goes in bands (with the context each needs), so that only the plane
        # and the mask are held whole, not the threshold images (4 to 12 bytes per pixel more).
        rows = [slice(0, height)] if halo is None or height * width <= 4 * BAND_PIXELS else bands(height, width)

        def levels_of(band: slice, polarity: str | None) -> tuple[np.ndarray, np.ndarray]:
            if halo is None:
                start, stop = 0, height
            else:
                start, stop = max(0, band.start - halo), min(height, band.stop + halo)
            part = plane[start:stop]
            base = self.level_image(part)
            levels = base if polarity is None else self.final_levels(part, base, polarity)
            inner = slice(band.start - start, band.stop - start)
            return plane[band], np.ascontiguousarray(levels[inner])

        polarity = self.polarity
        if polarity == "auto":  # decided on the neutral level, then shifted
            above = np.empty((height, width), np.uint8)
            for band in rows:
                above[band] = binary_of(compare_above(*levels_of(band, None)), "bright")
            polarity = polarity_of(above, "auto")
            del above
        binary = np.empty((height, width), np.uint8)
        total = 0.0
        for band in rows:
            values, levels = levels_of(band, polarity)
            binary[band] = binary_of(compare_above(values, levels), polarity)
            total += float(levels.sum(dtype=np.float64))
        facts.update(threshold=round(total / plane.size if plane.size else 0.0, 6), polarity=polarity)
        return Segmentation(binary=binary, facts=facts)


@methods.register("local")
@dataclasses.dataclass
class LocalThreshold(LocalMethod):
    """A local threshold: the Gaussian-weighted, mean or median level of each pixel's ``block_size`` neighbourhood.

    ``offset`` is the margin by which a pixel must lie past its neighbourhood's level to be foreground, in [0, 1]
    image units: above level + offset for bright objects, at or below level − offset for dark ones (note: the
    opposite sign of scikit-image's ``offset`` for bright objects; a negative offset loosens). The Gaussian's σ is
    (block_size − 1) / 6, as in ``skimage.filters.threshold_local``; the median works on 8-bit levels.

    >>> image = np.zeros((9, 9), np.float32); image[4, 4] = 1
    >>> LocalThreshold(block_size=5, kind="mean").compute(image).mask.sum()
    np.float32(1.0)
    """

    summary: ClassVar[str] = "Local threshold (gaussian | mean | median of a block) for uneven lighting."
    window_field: ClassVar[str | None] = "block_size"
    example: ClassVar[str] = "maskcli segment scans/ -o masks/ -m local -p block_size=51 -p offset=0.02 --polarity dark"
    block_size: int = option(51, "Neighbourhood width in pixels (odd; at most the image's long "
                                   "side: larger is clamped).")
    offset: float = option(0.0, "How far past the local level a pixel must be, in [0, 1] units.")
    kind: str = option("gaussian", "Local level: gaussian | mean | median.", choices=LOCAL_KINDS)

    def __post_init__(self) -> None:
        super().__post_init__()
        self._odd_window("block_size", self.block_size)
        if self.kind not in LOCAL_KINDS:
            raise OptionError("kind", f"must be one of {', '.join(LOCAL_KINDS)}, not {self.kind!r}")
        if not -1 <= self.offset <= 1:
            raise OptionError("offset", f"must be in [-1, 1] image units, got {self.offset}")

    def halo(self) -> int | None:
        return self.block_size // 2

    def level_image(self, plane: np.ndarray) -> np.ndarray:
        size = (self.block_size, self.block_size)
        if self.kind == "mean":
            return cv2.boxFilter(plane, cv2.CV_32F, size, borderType=cv2.BORDER_REFLECT)
        if self.kind == "median":
            levels = cv2.medianBlur(cv2.convertScaleAbs(plane, alpha=255), self.block_size)
            return from_uint8(levels)
        sigma = (self.block_size - 1) / 6
        return cv2.GaussianBlur(plane, size, sigma, borderType=cv2.BORDER_REFLECT)

    def final_levels(self, plane: np.ndarray, base: np.ndarray, polarity: str) -> np.ndarray:
        if not self.offset:
            return base
        return base + np.float32(self.offset if polarity == "bright" else -self.offset)


@methods.register("niblack")
@dataclasses.dataclass
class Niblack(LocalMethod):
    """Niblack: a pixel is foreground when it lies ``k`` local standard deviations past the local mean.

    Bright objects: above m + k·s; dark objects: at or below m − k·s (scikit-image's ``threshold_niblack``).

    Parameters
    ----------
    window : int
        Odd side of the local window, in pixels.
    k : float
        Standard deviations past the local mean.
    polarity, channel, sigma
        As for every threshold method.

    Returns
    -------
    Segmentation
        From :meth:`compute`: the mask, with the mean threshold and the polarity among its facts.

    References
    ----------
    .. [1] W. Niblack, *An Introduction to Digital Image Processing*, Prentice-Hall, 1986, pp. 115–116.
    .. [2] J. Sauvola and M. Pietikäinen, "Adaptive Document Image Binarization", Pattern Recognition 33(2),
       225–236, 2000 (which compares against Niblack's). https://doi.org/10.1016/S0031-3203(99)00055-2

    Examples
    --------
    >>> image = np.zeros((9, 9), np.float32); image[3:6, 3:6] = 1
    >>> Niblack(window=7, k=0.2).compute(image).mask[4].tolist()
    [0.0, 0.0, 0.0, 1.0, 1.0, 1.0, 0.0, 0.0, 0.0]
    """

    summary: ClassVar[str] = "Niblack local threshold: mean − k × standard deviation of a window."
    window_field: ClassVar[str | None] = "window"
    example: ClassVar[str] = "maskcli segment text/ -o masks/ -m niblack -p window=25 -p k=0.2 --polarity dark"
    window: int = option(25, "Neighbourhood width in pixels (odd; at most the image's long side: larger is clamped).")
    k: float = option(0.2, "Weight of the local standard deviation (sign flips for dark objects).")

    def __post_init__(self) -> None:
        super().__post_init__()
        self._odd_window("window", self.window)

    def halo(self) -> int | None:
        return self.window // 2

    def level_image(self, plane: np.ndarray) -> np.ndarray:
        return cv2.boxFilter(plane, cv2.CV_32F, (self.window, self.window),
                             borderType=cv2.BORDER_REFLECT)

    def final_levels(self, plane: np.ndarray, base: np.ndarray, polarity: str) -> np.ndarray:
        _, std = local_mean_std(plane, self.window)
        return base + np.float32(self.k if polarity == "bright" else -self.k) * std


@methods.register("sauvola")
@dataclasses.dataclass
class Sauvola(LocalMethod):
    """Sauvola: level m·(1 + k·(s / r − 1)); the document binarisation standard (dark text: ``--polarity dark``).

    That level is for dark objects (``skimage.filters.threshold_sauvola``); bright objects get the mirror image,
    1 − (1 − m)·(1 + k·(s / r − 1)).

    Parameters
    ----------
    window : int
        Odd side of the local window, in pixels.
    k : float
        How far the standard deviation pulls the level below the mean.
    r : float
        The dynamic range of the standard deviation.
    polarity, channel, sigma
        As for every threshold method.

    Returns
    -------
    Segmentation
        From :meth:`compute`: the mask, with the mean threshold and the polarity among its facts.

    References
    ----------
    .. [1] J. Sauvola and M. Pietikäinen, "Adaptive Document Image Binarization", Pattern Recognition 33(2),
       225–236, 2000. https://doi.org/10.1016/S0031-3203(99)00055-2

    Examples
    --------
    >>> page = np.full((20, 20), 0.9, np.float32); page[8:12, 3:17] = 0.2  # a dark stroke on paper
    >>> int(Sauvola(window=15, polarity="dark").compute(page).mask.sum())
    56
    """

    summary: ClassVar[str] = "Sauvola local threshold: scanned documents and text."
    window_field: ClassVar[str | None] = "window"
    example: ClassVar[str] = "maskcli segment scans/ -o masks/ -m sauvola --polarity dark"
    window: int = option(25, "Neighbourhood width in pixels (odd; at most the image's long side: larger is clamped).")
    k: float = option(0.2, "Sensitivity to the local contrast (0.2–0.5).")
    r: float = option(0.5, "Dynamic range of the standard deviation, in [0, 1] units (128 of 255).")

    def __post_init__(self) -> None:
        super().__post_init__()
        self._odd_window("window", self.window)
        if not self.r > 0:
            raise OptionError("r", f"must be > 0, got {self.r}")

    def halo(self) -> int | None:
        return self.window // 2

    def level_image(self, plane: np.ndarray) -> np.ndarray:
        return cv2.boxFilter(plane, cv2.CV_32F, (self.window, self.window),
                             borderType=cv2.BORDER_REFLECT)

    def final_levels(self, plane: np.ndarray, base: np.ndarray, polarity: str) -> np.ndarray:
        _, std = local_mean_std(plane, self.window)
        gain = 1 + np.float32(self.k) * (std / np.float32(self.r) - 1)
        return base * gain if polarity == "dark" else 1 - (1 - base) * gain


BACKGROUNDS = ("blur", "median", "ball")


@methods.register("background")
@dataclasses.dataclass
class Background(LocalMethod):
    """Background subtraction, then a global threshold: for objects on an unevenly lit background.

    The background is estimated with a Gaussian of σ = ``radius`` (``blur``), a median of a ``radius``-wide window
    (``median``, robust to the objects; computed at reduced size), or a rolling ball of ``radius`` px (``ball``,
    scikit-image's, from below for bright objects and from above for dark ones; at reduced size). The difference
    image + ½ is thresholded by the global method named by ``threshold`` (``otsu`` ...).

    >>> ramp = np.tile(np.linspace(0.1, 0.6, 64, dtype=np.float32), (64, 1))
    >>> image = ramp.copy(); image[20:30, 5:15] += 0.3; image[30:40, 45:55] += 0.3
    >>> int(Background(radius=15, estimate="median").compute(image).mask.sum())
    200
    """

    summary: ClassVar[str] = "Subtract a smooth background (blur, median, rolling ball), then a global threshold."
    example: ClassVar[str] = "maskcli segment cells/ -o masks/ -m background -p radius=40 -p threshold=li"
    radius: float = option(30.0, "Background scale in pixels: larger than the objects.")
    estimate: str = option("blur", "Background estimate: blur | median | ball.", choices=BACKGROUNDS)
    threshold: str = option("otsu", "Global threshold applied after subtraction (a method name).")

    def __post_init__(self) -> None:
        super().__post_init__()
        if not self.radius > 0:
            raise OptionError("radius", f"must be > 0 pixels, got {self.radius}")
        if self.estimate not in BACKGROUNDS:
            raise OptionError("estimate", f"must be one of {', '.join(BACKGROUNDS)}, not {self.estimate!r}")
        from maskcli.methods.global_threshold import ThresholdMethod

        valid = [name for name, cls in methods.items() if issubclass(cls, ThresholdMethod)]
        if self.threshold not in valid:
            raise OptionError("threshold", f"must name a global threshold method ({', '.join(valid)}), "
                              f"not {self.threshold!r}")

    def _background(self, plane: np.ndarray) -> np.ndarray:
        height, width = plane.shape
        # A background is smooth: estimate it at 8 px per radius (a 60 px blur costs 0.7 s per megapixel at full
        # size and 10 ms this way), then upsample it bilinearly.
        factor = min(1.0, 8.0 / self.radius)
        size = (max(1, round(width * factor)), max(1, round(height * factor)))
        small = cv2.resize(plane, size, interpolation=cv2.INTER_AREA) if factor < 1 else plane
        radius = max(1, round(self.radius * factor))
        if self.estimate == "blur":
            background = cv2.GaussianBlur(small, (0, 0), self.radius * factor, borderType=cv2.BORDER_REFLECT)
        elif self.estimate == "median":
            window = min(2 * radius + 1, 255)
            background = cv2.medianBlur(cv2.convertScaleAbs(small, alpha=255), window if window > 1 else 3)
            background = from_uint8(background)
        else:
            from skimage.restoration import rolling_ball

            flip = self.polarity == "dark"
            source = 1 - small if flip else small
            background = rolling_ball(source, radius=radius).astype(np.float32)
            background = 1 - background if flip else background
        if background.shape != plane.shape:
            background = cv2.resize(background, (width, height), interpolation=cv2.INTER_LINEAR)
        return background

    def _levels(self, plane: np.ndarray) -> Segmentation:
        if plane.size == 0:
            return Segmentation(np.zeros(plane.shape, np.float32), {"polarity": self.polarity})
        corrected = np.clip(plane - self._background(plane) + np.float32(0.5), 0, 1)
        method = methods.create(self.threshold, {"polarity": self.polarity})
        segmentation = method.compute(corrected)
        segmentation.facts["background"] = self.estimate
        return segmentation
