"""Edges into regions: an edge map (Canny, Sobel, Scharr, Laplacian), closed and filled into solid regions.

The result is a foreground mask: edges are closed with a disc of ``close`` px (bridging small gaps), the regions they
enclose are filled, and the fill is opened by the same disc so that stray edge lines that enclose nothing do not
remain as thin lines. ``output=edges`` returns the edge map itself.

>>> import numpy as np
>>> image = np.zeros((40, 40), np.float32); image[10:30, 12:28] = 1
>>> mask = Canny().compute(image).mask
>>> int(mask[12:28, 14:26].min()), int(mask[:8].max())  # a filled square, nothing outside
(1, 0)
"""

from __future__ import annotations

import dataclasses
from typing import Any, ClassVar

import cv2
import numpy as np

from maskcli.color import CHANNELS, check_channel
from maskcli.errors import OptionError
from maskcli.masks import fill_binary_holes
from maskcli.methods.base import Method, Segmentation, methods
from maskcli.methods.histogram import histogram, prepare, unit
from maskcli.methods.thresholding import otsu_level
from maskcli.registry import option

OUTPUTS = ("regions", "edges")


@dataclasses.dataclass
class EdgeMethod(Method):
    """Shared options: channel, smoothing, and how edges become regions."""

    channel: str = option("gray", "Channel whose edges are found: " + " | ".join(CHANNELS) + ".")
    sigma: float = option(1.0, "Gaussian pre-smoothing in pixels (0: none; at most twice the "
                                    "image's long side: larger is clamped).")
    close: int = option(3, "Closing radius in pixels that bridges gaps in the edges before filling.")
    output: str = option("regions", "regions (filled foreground) or edges (the edge map).", choices=OUTPUTS)

    def __post_init__(self) -> None:
        self.channel = check_channel(self.channel)
        if not self.sigma >= 0 or not np.isfinite(self.sigma):
            raise OptionError("sigma", f"must be ≥ 0 pixels, got {self.sigma}")
        if not 0 <= self.close <= 100:
            raise OptionError("close", f"must be a radius in pixels between 0 and 100, got {self.close}")
        if self.output not in OUTPUTS:
            raise OptionError("output", f"must be one of {', '.join(OUTPUTS)}, not {self.output!r}")

    def edge_map(self, plane: np.ndarray, facts: dict[str, Any]) -> np.ndarray:
        """uint8 0/255 edge pixels of the prepared plane."""
        raise NotImplementedError

    #: Every edge method takes the image's samples; only Canny works on the levels themselves, the others make
    #: their own float plane (not kept with the image: 4 bytes per pixel less at the peak).
    integer_samples: ClassVar[bool] = True
    integer_plane: ClassVar[bool] = False
    releases_gil: ClassVar[bool] = True  # every step on the image is one OpenCV call

    def compute(self, image: np.ndarray) -> Segmentation:
        plane = prepare(image, self.channel, self.sigma, integer=self.integer_plane)
        facts: dict[str, Any] = {}
        edges = self.edge_map(plane, facts) if min(plane.shape) >= 3 else np.zeros(plane.shape, np.uint8)
        facts["edge_fraction"] = round(cv2.countNonZero(edges) / edges.size if edges.size else 0.0, 6)
        if self.output == "edges":
            return Segmentation(facts=facts, binary=edges)
        # All in uint8 0/255, the levels of the mask written (about 4× faster than float masks at 1 MP, and no
        # conversion pass between steps): close, fill, open.
        regions = edges
        if self.close:
            disc = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * self.close + 1, 2 * self.close + 1))
            regions = cv2.morphologyEx(regions, cv2.MORPH_CLOSE, disc, borderType=cv2.BORDER_REPLICATE)
        regions = fill_binary_holes(regions, value=255)
        if self.close:
            regions = cv2.morphologyEx(regions, cv2.MORPH_OPEN, disc, borderType=cv2.BORDER_REPLICATE)
        return Segmentation(facts=facts, binary=regions)


def _gradient_edges(magnitude: np.ndarray, level: float | None, facts: dict[str, Any]) -> np.ndarray:
    top = float(magnitude.max()) if magnitude.size else 0.0
    if top <= 0:
        facts["threshold"] = 0.0
        return np.zeros(magnitude.shape, np.uint8)
    scaled = np.multiply(magnitude, np.float32(1 / top), out=magnitude)  # the magnitude is ours to reuse
    threshold = level if level is not None else otsu_level(histogram(scaled))
    facts["threshold"] = round(float(threshold), 6)
    return cv2.threshold(scaled, float(threshold), 255, cv2.THRESH_BINARY)[1].astype(np.uint8)


@methods.register("canny")
@dataclasses.dataclass
class Canny(EdgeMethod):
    """Canny edges, closed and filled into regions.

    Thresholds ``low`` and ``high`` are in [0, 1] grey units of the 8-bit plane; by default ``high`` is Otsu's level
    of the smoothed plane and ``low`` half of it (``auto=median`` uses 0.66 and 1.33 × the median instead).
    """

    summary: ClassVar[str] = "Canny edges closed and filled into solid regions (or output=edges)."
    #: Canny works on 8-bit levels: an 8-bit image is smoothed and traced as it is, with no float round trip.
    integer_plane: ClassVar[bool] = True
    example: ClassVar[str] = "maskcli segment parts/ -o masks/ -m canny -p close=5"
    low: float | None = option(None, "Low hysteresis threshold in [0, 1] (default: high / 2).")
    high: float | None = option(None, "High hysteresis threshold in [0, 1] (default: from the image).")
    auto: str = option("otsu", "Automatic thresholds: otsu | median.", choices=("otsu", "median"))

    def __post_init__(self) -> None:
        super().__post_init__()
        for name in ("low", "high"):
            value = getattr(self, name)
            if value is not None and not 0 <= value <= 1:
                raise OptionError(name, f"must be in [0, 1], got {value}")
        if self.low is not None and self.high is not None and self.low > self.high:
            raise OptionError("low", f"must not exceed high ({self.high}), got {self.low}")
        if self.auto not in ("otsu", "median"):
            raise OptionError("auto", f"must be otsu or median, not {self.auto!r}")

    def edge_map(self, plane: np.ndarray, facts: dict[str, Any]) -> np.ndarray:
        grey = plane if plane.dtype == np.uint8 else cv2.convertScaleAbs(plane, alpha=255 * unit(plane))
        if self.high is not None:
            high = self.high * 255
        elif self.auto == "median":
            high = 1.33 * float(np.median(grey))
        else:
            high, _ = cv2.threshold(grey, 0, 255, cv2.THRESH_BINARY | cv2.THRESH_OTSU)
        low = self.low * 255 if self.low is not None else (0.66 / 1.33 if self.auto == "median" else 0.5) * high
        facts.update(threshold=round(high / 255, 6), low=round(low / 255, 6))
        return cv2.Canny(grey, low, high, L2gradient=True)  # 0/255 already


@dataclasses.dataclass
class GradientMethod(EdgeMethod):
    level: float | None = option(None, "Edge level as a fraction of the strongest gradient (default: Otsu's).")

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.level is not None and not 0 <= self.level <= 1:
            raise OptionError("level", f"must be in [0, 1], got {self.level}")

    def magnitude(self, plane: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def edge_map(self, plane: np.ndarray, facts: dict[str, Any]) -> np.ndarray:
        return _gradient_edges(self.magnitude(plane), self.level, facts)


@methods.register("sobel")
@dataclasses.dataclass
class Sobel(GradientMethod):
    """Sobel gradient magnitude above a level, closed and filled into regions."""

    summary: ClassVar[str] = "Sobel gradient magnitude, thresholded, closed and filled into regions."
    example: ClassVar[str] = "maskcli segment parts/ -o masks/ -m sobel -p level=0.2"

    def magnitude(self, plane: np.ndarray) -> np.ndarray:
        across = cv2.Sobel(plane, cv2.CV_32F, 1, 0)
        return cv2.magnitude(across, cv2.Sobel(plane, cv2.CV_32F, 0, 1), across)


@methods.register("scharr")
@dataclasses.dataclass
class Scharr(GradientMethod):
    """Scharr gradient magnitude (more rotation-invariant than Sobel), closed and filled into regions."""

    summary: ClassVar[str] = "Scharr gradient magnitude, thresholded, closed and filled into regions."
    example: ClassVar[str] = "maskcli segment parts/ -o masks/ -m scharr"

    def magnitude(self, plane: np.ndarray) -> np.ndarray:
        across = cv2.Scharr(plane, cv2.CV_32F, 1, 0)
        return cv2.magnitude(across, cv2.Scharr(plane, cv2.CV_32F, 0, 1), across)


@methods.register("laplacian")
@dataclasses.dataclass
class Laplacian(GradientMethod):
    """Magnitude of the Laplacian (of the Gaussian-smoothed plane), closed and filled into regions."""

    summary: ClassVar[str] = "Laplacian magnitude, thresholded, closed and filled into regions."
    example: ClassVar[str] = "maskcli segment blobs/ -o masks/ -m laplacian --sigma 2"

    def magnitude(self, plane: np.ndarray) -> np.ndarray:
        laplacian = cv2.Laplacian(plane, cv2.CV_32F, ksize=3)
        return np.abs(laplacian, out=laplacian)
