"""Global thresholds: one level for the whole image, then one comparison.

Every method here is a registry entry over a *value*: its level comes from a pure function of the image's
histogram (:mod:`maskcli.methods.thresholding`, as scikit-image's ``threshold_*`` functions), and :func:`compare`
turns image and value into the mask, with the polarity chosen in one place (:func:`choose_polarity`). The plane and
its histogram are computed once per image (:mod:`maskcli.methods.histogram`).

Integer images (8- and 16-bit samples, as decoded) are thresholded on their integer levels: the mask is one
integer comparison, so no float copy of the image is made. A bin is never split by the mask: every pixel of a bin
lies on the side of the threshold its bin centre does, so the mask is exactly the histogram split the method chose
(a float comparison at a bin centre would put the upper half of that bin's levels on the other side: on 16-bit
data, a whole background level).

Facts reported per image: ``threshold`` (in [0, 1] image units), ``polarity`` (the one used), and ``confidence``:
Otsu's separability η = σ_B² / σ_T² of the histogram split at the threshold used (1 for two spikes, near 0 when the
threshold separates nothing).

>>> import numpy as np
>>> from maskcli.methods import methods
>>> image = np.zeros((4, 4), np.float32); image[1:3, 1:3] = 0.8
>>> result = methods.create("otsu").compute(image)
>>> result.mask.sum(), result.facts["polarity"], result.facts["confidence"]
(np.float32(4.0), 'bright', 1.0)
"""

from __future__ import annotations

import dataclasses
from typing import Any, ClassVar

import numpy as np

from maskcli.color import CHANNELS, check_channel
from maskcli.errors import OptionError
from maskcli.imageops import to_unit_float
from maskcli.methods.base import Method, Segmentation, methods
from maskcli.methods.compare import POLARITIES, above_level, binary_of, polarity_of, split_above
from maskcli.methods.histogram import Histogram, histogram, prepare, separability
from maskcli.methods.thresholding import (
    HISTOGRAM_LEVELS,
    NoLevel,
    fixed_level,
    mean_level,
    multiotsu_levels,
    otsu_level,
    percentile_level,
    relative_level,
)
from maskcli.registry import option

__all__ = ["PlaneMethod", "ThresholdMethod"]

@dataclasses.dataclass
class PlaneMethod(Method):
    """The options every threshold shares, global or local: which side, which channel, how much smoothing."""

    polarity: str = option("bright", "Which side is foreground: bright (above), dark (at or below), auto (the "
                           "smaller side that touches the border less; see choose_polarity).", choices=POLARITIES)
    channel: str = option("gray", "Channel thresholded: " + " | ".join(CHANNELS) + ".")
    sigma: float = option(0.0, "Gaussian pre-smoothing in pixels (0: none; at most twice the "
                                    "image's long side: larger is clamped).")
    #: Thresholds take the image's samples: global ones work on the levels, local ones make their own float plane
    #: (not kept with the image: 4 bytes per pixel less at the peak).
    integer_samples: ClassVar[bool] = True

    def __post_init__(self) -> None:
        if self.polarity not in POLARITIES:
            raise OptionError("polarity", f"must be one of {', '.join(POLARITIES)}, not {self.polarity!r}")
        self.channel = check_channel(self.channel)
        if not self.sigma >= 0 or not np.isfinite(self.sigma):
            raise OptionError("sigma", f"must be ≥ 0 pixels, got {self.sigma}")


@dataclasses.dataclass
class ThresholdMethod(PlaneMethod):
    """Shared options and the shared compute of the global thresholds; a subclass is a registry entry whose level
    is its entry of :data:`~maskcli.methods.thresholding.HISTOGRAM_LEVELS`, or which says how its options make
    one (:meth:`threshold`)."""

    bins: int = option(256, "Histogram bins over the image's own range (more, e.g. 4096, for 16-bit detail).")
    #: True when the level comes from the histogram: the mask is then the histogram's split (whole bins).
    from_histogram: ClassVar[bool] = True
    #: The image-sized work (smoothing, histogram, comparison) is OpenCV and NumPy; the level is found on the
    #: histogram alone.
    releases_gil: ClassVar[bool] = True

    def __post_init__(self) -> None:
        super().__post_init__()
        if not 2 <= self.bins <= 65536:
            raise OptionError("bins", f"must be between 2 and 65536, got {self.bins}")

    def threshold(self, plane: np.ndarray, hist: Histogram) -> float:
        """The level (image units) for a plane that is not constant: by default the method's histogram level.

        Raises
        ------
        NoLevel
            The method finds none on this histogram.
        """
        return HISTOGRAM_LEVELS[self.name](hist)

    def find_level(self, plane: np.ndarray, hist: Histogram) -> tuple[float, dict[str, Any]]:
        """The level and the facts found with it (reported before the level): a constant plane has none to find;
        where the method finds none, Otsu's level, with a warning."""
        if hist.constant:
            return hist.lo, {"warnings": ["constant image: no threshold separates anything"]}
        try:
            return float(self.threshold(plane, hist)), {}
        except NoLevel as why:
            return otsu_level(hist), {"warnings": [f"{self.name}: {why}; used Otsu's level instead"]}

    def plane(self, image: np.ndarray) -> np.ndarray:
        """The plane thresholded: integer levels when the image has them and nothing smooths them."""
        return prepare(image, self.channel, self.sigma, integer=not self.sigma)

    def compute(self, image: np.ndarray) -> Segmentation:
        plane = self.plane(image)
        hist = histogram(plane, self.bins)
        level, facts = self.find_level(plane, hist)
        above = split_above(plane, hist, level) if self.from_histogram else above_level(plane, level)
        polarity = polarity_of(above, self.polarity)
        facts.update(threshold=round(float(level), 6), polarity=polarity,
                     confidence=round(separability(hist, level), 4))
        return Segmentation(facts=facts, binary=binary_of(above, polarity))


@methods.register("fixed")
@dataclasses.dataclass
class Fixed(ThresholdMethod):
    """A fixed level: absolute (``level`` in [0, 1], or 8-bit units when above 1) or a fraction of the range.

    >>> image = np.array([[0.2, 0.4, 0.6]], np.float32)
    >>> Fixed(level=0.5).compute(image).mask.tolist()
    [[0.0, 0.0, 1.0]]
    >>> Fixed(level=0.25, relative=True).compute(image).facts["threshold"]  # 0.2 + 0.25 × 0.4
    0.3
    """

    summary: ClassVar[str] = "A fixed level: absolute, 8-bit units, or a fraction of the image's range."
    example: ClassVar[str] = "maskcli segment scans/ -o masks/ -m fixed -p level=128"
    level: float = option(0.5, "The level: in [0, 1], or in 8-bit units (1, 255]; with relative, a fraction "
                          "of [min, max].")
    relative: bool = option(False, "Read level as a fraction of the image's own range [min, max].")
    from_histogram: ClassVar[bool] = False

    def __post_init__(self) -> None:
        super().__post_init__()
        if not 0 <= self.level <= 255 or (self.relative and self.level > 1):
            raise OptionError("level", f"must be in [0, 1] (or 8-bit units up to 255 when absolute), "
                              f"got {self.level}")

    def find_level(self, plane: np.ndarray, hist: Histogram) -> tuple[float, dict[str, Any]]:
        if self.relative:
            return super().find_level(plane, hist)
        return fixed_level(self.level), {}  # a constant image still has a meaningful comparison with it

    def threshold(self, plane: np.ndarray, hist: Histogram) -> float:
        return relative_level(hist, self.level)


@methods.register("otsu")
@dataclasses.dataclass
class Otsu(ThresholdMethod):
    """Otsu's method: the level that maximises the between-class variance of the histogram.

    >>> Otsu().compute(np.array([[0.1, 0.2, 0.8, 0.9]], np.float32)).mask.tolist()
    [[0.0, 0.0, 1.0, 1.0]]
    """

    summary: ClassVar[str] = "Otsu's threshold: the level that best separates two classes (the default)."
    example: ClassVar[str] = "maskcli segment cells/ -o masks/ -m otsu --polarity auto --sigma 1"


@methods.register("multiotsu")
@dataclasses.dataclass
class MultiOtsu(ThresholdMethod):
    """Multi-Otsu: ``classes`` classes split by ``classes - 1`` levels; the foreground is chosen among them.

    By default the foreground lies above the highest level (bright) or at or below the lowest (dark). ``level``
    picks another split (0 = lowest); ``keep`` names the classes kept outright (0 = darkest), e.g. ``keep=1,2``.

    >>> image = np.array([[0.0, 0.0, 0.5, 0.5, 1.0, 1.0]], np.float32)
    >>> MultiOtsu().compute(image).mask.tolist()
    [[0.0, 0.0, 0.0, 0.0, 1.0, 1.0]]
    >>> MultiOtsu(keep=(1,)).compute(image).mask.tolist()
    [[0.0, 0.0, 1.0, 1.0, 0.0, 0.0]]
    """

    summary: ClassVar[str] = "Multi-level Otsu: several classes; keep the brightest, darkest or chosen ones."
    example: ClassVar[str] = "maskcli segment tissue/ -o masks/ -m multiotsu -p classes=3 -p keep=1,2"
    classes: int = option(3, "Number of classes (2–5).")
    level: int | None = option(None, "Which level splits foreground from background (0 = lowest); default: "
                               "the highest for bright, the lowest for dark.")
    keep: tuple[int, ...] | None = option(None, "Classes kept as foreground, e.g. 1,2 (0 = darkest); overrides "
                                          "level and polarity.")

    def __post_init__(self) -> None:
        super().__post_init__()
        if not 2 <= self.classes <= 5:
            raise OptionError("classes", f"must be between 2 and 5, got {self.classes}")
        if self.level is not None and not -(self.classes - 1) <= self.level < self.classes - 1:
            raise OptionError("level", f"must index one of the {self.classes - 1} levels, got {self.level}")
        if self.keep is not None:
            self.keep = tuple(int(k) for k in self.keep)
            bad = [k for k in self.keep if not 0 <= k < self.classes]
            if bad or not self.keep:
                raise OptionError("keep", f"classes are numbered 0..{self.classes - 1}, got {self.keep}")

    def find_level(self, plane: np.ndarray, hist: Histogram) -> tuple[float, dict[str, Any]]:
        if hist.constant:
            return super().find_level(plane, hist)
        levels = multiotsu_levels(hist, self.classes)
        chosen = levels[self.level] if self.level is not None else levels[0 if self.polarity == "dark" else -1]
        return float(chosen), {"levels": [round(float(v), 6) for v in levels]}

    def compute(self, image: np.ndarray) -> Segmentation:
        if self.keep is None:
            return super().compute(image)
        plane = self.plane(image)
        hist = histogram(plane, self.bins)
        if plane.dtype != np.float32:
            plane = to_unit_float(plane)
        levels = multiotsu_levels(hist, self.classes) if not hist.constant else np.full(self.classes - 1, hist.lo)
        labels = np.digitize(plane, levels, right=True)  # class k: levels[k-1] < v <= levels[k]
        mask = np.isin(labels, self.keep).astype(np.float32)
        facts = {"levels": [round(float(v), 6) for v in levels], "threshold": round(float(levels[-1]), 6),
                 "polarity": "classes", "kept": list(self.keep),
                 "confidence": round(separability(hist, float(levels[-1])), 4)}
        return Segmentation(mask, facts)


@methods.register("li")
@dataclasses.dataclass
class Li(ThresholdMethod):
    """Li's minimum cross-entropy threshold, iterated on the histogram (:func:`.thresholding.li_level`).

    >>> round(Li().compute(np.array([[0.1, 0.2, 0.3, 0.8, 0.9]], np.float32)).facts["threshold"], 3)  # skimage: 0.423
    0.423
    """

    summary: ClassVar[str] = "Li's minimum cross-entropy threshold (good for dim objects, e.g. nuclei)."
    example: ClassVar[str] = "maskcli segment nuclei/ -o masks/ -m li --sigma 2 --fill-holes"

    # Li's iteration drifts on coarse bins of quantised levels: the float copy of an 8-bit 128-pixel cell image
    # gave 0.438 on 256 bins against scikit-image's 0.266 (its own levels: 0.266); 4096 bins give 0.266 for a
    # millisecond or two. An 8-bit image keeps one bin per level.
    bins: int = option(4096, "Histogram bins over the image's own range (Li drifts on coarse bins: keep 4096).")


@methods.register("yen")
@dataclasses.dataclass
class Yen(ThresholdMethod):
    """Yen's maximum correlation criterion on the shared histogram (:func:`.thresholding.yen_level`).

    >>> Yen().compute(np.array([[0.1, 0.2, 0.8, 0.9]], np.float32)).mask.tolist()
    [[0.0, 0.0, 1.0, 1.0]]
    """

    summary: ClassVar[str] = "Yen's maximum-correlation threshold (bright small objects)."
    example: ClassVar[str] = "maskcli segment stars/ -o masks/ -m yen"


@methods.register("isodata")
@dataclasses.dataclass
class Isodata(ThresholdMethod):
    """Ridler–Calvard ISODATA: the level midway between the two class means it separates.

    >>> Isodata().compute(np.array([[0.1, 0.2, 0.8, 0.9]], np.float32)).mask.tolist()
    [[0.0, 0.0, 1.0, 1.0]]
    """

    summary: ClassVar[str] = "ISODATA (Ridler–Calvard): midway between the two class means."
    example: ClassVar[str] = "maskcli segment scans/ -o masks/ -m isodata --polarity dark"


@methods.register("minimum")
@dataclasses.dataclass
class Minimum(ThresholdMethod):
    """The valley between the two peaks of the smoothed histogram (Otsu's level if it never becomes bimodal).

    >>> image = np.repeat(np.array([0.1, 0.15, 0.2, 0.8, 0.85, 0.9], np.float32), [3, 5, 3, 3, 5, 3])[None]
    >>> float(Minimum(bins=16).compute(image).mask.sum())
    11.0
    """

    summary: ClassVar[str] = "The valley between the two histogram peaks (bimodal images)."
    example: ClassVar[str] = "maskcli segment parts/ -o masks/ -m minimum"


@methods.register("triangle")
@dataclasses.dataclass
class Triangle(ThresholdMethod):
    """Zack's triangle method: the level farthest below the line from the histogram peak to its far end.

    >>> image = np.concatenate([np.full(50, 0.1), np.linspace(0.2, 1, 20)]).astype(np.float32)[None]
    >>> Triangle(bins=64).compute(image).facts["threshold"] < 0.3
    True
    """

    summary: ClassVar[str] = "Triangle threshold: for one big peak and a long tail (sparse objects)."
    example: ClassVar[str] = "maskcli segment sparse/ -o masks/ -m triangle"


@methods.register("mean")
@dataclasses.dataclass
class Mean(ThresholdMethod):
    """The mean grey level as the threshold.

    >>> Mean().compute(np.array([[0.0, 0.2, 1.0]], np.float32)).facts["threshold"]
    0.4
    """

    summary: ClassVar[str] = "The mean level: a quick, robust split of evenly lit scenes."
    example: ClassVar[str] = "maskcli segment scans/ -o masks/ -m mean --polarity dark"

    from_histogram: ClassVar[bool] = False

    def threshold(self, plane: np.ndarray, hist: Histogram) -> float:
        return mean_level(plane)


@methods.register("percentile")
@dataclasses.dataclass
class Percentile(ThresholdMethod):
    """The ``q``-th percentile of the levels: with bright polarity about (100 − q) % of the pixels are kept.

    >>> Percentile(q=75).compute(np.arange(8, dtype=np.float32)[None] / 7).mask.sum()
    np.float32(2.0)
    """

    summary: ClassVar[str] = "The q-th percentile: keep a known share of the pixels."
    example: ClassVar[str] = "maskcli segment sky/ -o masks/ -m percentile -p q=90"
    q: float = option(50.0, "Percentile in [0, 100]; bright keeps the levels above it.")
    from_histogram: ClassVar[bool] = False

    def __post_init__(self) -> None:
        super().__post_init__()
        if not 0 <= self.q <= 100:
            raise OptionError("q", f"must be in [0, 100], got {self.q}")

    def threshold(self, plane: np.ndarray, hist: Histogram) -> float:
        return percentile_level(plane, self.q)
